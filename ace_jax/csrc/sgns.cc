// One fused skip-gram negative-sampling update on the CPU: gather, score, gradient and scatter-add in
// place, for XLA through the FFI (ace_jax/cpu_kernels.py builds and registers it).
//
// The update equals the pure-JAX path of train.train_step with SGD: every gradient is taken at the
// tables as they were before the step (a synchronous batch, not word2vec's Hogwild), and a row that
// occurs several times gets the sum of its updates, added in batch order, so the result does not
// depend on how many threads ran it. With a row clip, each row's move in the step (the sum of its
// updates) is scaled down to norm learning_rate · clip where larger (sparse_optim.clip_rows).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include <sys/mman.h>
#if defined(__linux__) && !defined(MADV_COLLAPSE)
#define MADV_COLLAPSE 25  // Linux 6.1's value; older kernels answer EINVAL, which is ignored
#endif

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// Rows are processed 8 floats at a time with GCC's portable vector type (AVX on x86, NEON pairs on ARM),
// the few left over (d % 8) one by one. Several dot products share a pass over d with one accumulator
// each: a single dot of d = 100 is a chain of dependent adds, several are independent.
typedef float V8 __attribute__((vector_size(32)));
typedef float V8u __attribute__((vector_size(32), aligned(4), may_alias));
constexpr int64_t kW = 8;
inline V8 Load(const float* p) { return *reinterpret_cast<const V8u*>(p); }
inline void Store(float* p, V8 v) { *reinterpret_cast<V8u*>(p) = v; }
inline float Sum(V8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

// s[k] = row · others[k] for k < 4 (pass the same row again where there are fewer).
void Dot4(const float* row, const float* const others[4], int64_t d, float s[4]) {
  V8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + kW <= d; i += kW) {
    const V8 x = Load(row + i);
    a0 += x * Load(others[0] + i);
    a1 += x * Load(others[1] + i);
    a2 += x * Load(others[2] + i);
    a3 += x * Load(others[3] + i);
  }
  s[0] = Sum(a0), s[1] = Sum(a1), s[2] = Sum(a2), s[3] = Sum(a3);
  for (; i < d; ++i) {
    for (int k = 0; k < 4; ++k) s[k] += row[i] * others[k][i];
  }
}

// y += Σ_k alpha[k] · x[k] over the rows with alpha[k] ≠ 0, in order of k.
void AddScaled(int64_t count, const float* alpha, const float* const* x, float* y, int64_t d) {
  for (int64_t k = 0; k < count; ++k) {
    if (alpha[k] == 0.0f) continue;
    const float a = alpha[k];
    const float* row = x[k];
    int64_t i = 0;
    for (; i + kW <= d; i += kW) Store(y + i, Load(y + i) + a * Load(row + i));
    for (; i < d; ++i) y[i] += a * row[i];
  }
}

// Asks for a row's cache lines ahead of use: rows sit at random places in tables larger than the caches,
// and a step's time is mostly waiting for them otherwise.
void Prefetch(const float* row, int64_t d) {
  for (int64_t i = 0; i < d; i += 64 / sizeof(float)) __builtin_prefetch(row + i);
}

// A table of many rows read at random misses the TLB on nearly every row with 4 KiB pages. Once per
// table buffer (the step updates it in place, so the buffer stays), ask Linux for 2 MiB pages: mark the
// range, and collapse what is already there (MADV_COLLAPSE, Linux 6.1+; elsewhere a no-op).
void AdviseHugePages(float* table, int64_t bytes) {
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  if (bytes < int64_t{64} << 20) return;  // small tables stay in the caches anyway
  static std::mutex mutex;
  static std::unordered_set<float*> seen;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!seen.insert(table).second) return;
  }
  const uintptr_t start = (reinterpret_cast<uintptr_t>(table) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(table) + bytes) & ~(kHuge - 1);
  if (end <= start) return;
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
#endif
#ifdef MADV_COLLAPSE
  madvise(reinterpret_cast<void*>(start), end - start, MADV_COLLAPSE);
#endif
}

// The logistic term of a logit s, −log σ(x) with x = s for the positive and −s for a negative, is
// log(1 + e) + max(−x, 0), e = exp(−|s|); its derivative is σ(s) − 1 (positive) or σ(s) (negative).
// Both come from the one exp; the log is left to the caller, which multiplies the (1 + e) of terms of
// weight 1 and takes one log per query row (a log per term was a fifth of the kernel's time).
struct Term {
  float one_plus_e, rest, slope;
};
Term LogisticTerm(float s, bool positive) {
  const float e = std::exp(-std::fabs(s));
  const float sig = s >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  return {1.0f + e, std::max(positive ? -s : s, 0.0f), positive ? sig - 1.0f : sig};
}

// What a row clip needs, since it bounds a row's summed update: each row an owner updates is kept as it
// was before its first update (Keep), its updates are added to the table as without a clip, and Finish
// scales each row's move down to the limit. Rows are found through an array over the table's ids, −1
// between passes: one read per occurrence, and the frequent words, the ones that repeat, have small ids.
class RowClip {
 public:
  void Start(int64_t table_rows, int64_t d) {
    if (static_cast<int64_t>(index_.size()) < table_rows) index_.resize(table_rows, -1);
    ids_.clear();
    d_ = d;
  }
  void Keep(int32_t id, const float* row) {
    if (index_[id] >= 0) return;
    index_[id] = static_cast<int32_t>(ids_.size());
    ids_.push_back(id);
    if (old_.size() < ids_.size() * d_) old_.resize(2 * ids_.size() * d_);
    std::copy_n(row, d_, &old_[(ids_.size() - 1) * d_]);
  }
  // Each kept row's move, table − old, scaled down to norm `limit` where larger; the id array back to −1.
  void Finish(float* table, float limit) {
    for (size_t r = 0; r < ids_.size(); ++r) {
      if (r + 8 < ids_.size()) Prefetch(&table[ids_[r + 8] * d_], d_);
      float* row = &table[ids_[r] * d_];
      const float* old = &old_[r * d_];
      V8 acc = {};
      size_t i = 0;
      for (; i + kW <= d_; i += kW) {
        const V8 move = Load(row + i) - Load(old + i);
        acc += move * move;
      }
      float norm2 = Sum(acc);
      for (; i < d_; ++i) norm2 += (row[i] - old[i]) * (row[i] - old[i]);
      if (norm2 > limit * limit) {
        const float scale = limit / std::sqrt(norm2);
        for (i = 0; i < d_; ++i) row[i] = old[i] + scale * (row[i] - old[i]);
      }
      index_[ids_[r]] = -1;
    }
  }

 private:
  size_t d_ = 0;
  std::vector<int32_t> index_, ids_;
  std::vector<float> old_;
};

// Runs work(item) for item in [0, items) on the calling thread and up to `helpers` tasks of XLA's
// intra-op pool, and returns when every item is done. Items are claimed from a shared counter, so the
// caller alone can finish them all: a helper that never starts is never waited for.
void ParallelFor(ffi::ThreadPool& pool, int64_t helpers, int64_t items, std::function<void(int64_t)> work) {
  struct Shared {
    std::atomic<int64_t> next{0}, done{0};
    int64_t items;
    std::function<void(int64_t)> work;
  };
  auto shared = std::make_shared<Shared>();
  shared->items = items;
  shared->work = std::move(work);
  auto run = [shared] {
    for (int64_t i; (i = shared->next.fetch_add(1)) < shared->items;) {
      shared->work(i);
      shared->done.fetch_add(1, std::memory_order_release);
    }
  };
  for (int64_t h = 0; h < std::min(helpers, items - 1); ++h) {
    auto task = run;
    pool.Schedule(std::move(task));
  }
  run();
  while (shared->done.load(std::memory_order_acquire) < items) std::this_thread::yield();
}

// in [V_in, d], out [V_out, d]: the tables, updated in place (aliased to the first two results).
// queries [N, M]: each query row scores every candidate of its window; −1 is padding.
// candidates [N, C]: candidate 0 is the positive, the rest negatives; −1 is padding.
// weights [N, M, C]: each term's weight (0 for padding, masked pairs and false negatives). A query row
// whose weights are all 0 (an empty pair slot) is skipped: not read, not scored (logits 0), not moved.
// learning_rate []: SGD's step. row_clip []: the largest L2 norm of a row's summed gradient (0: no
// clip). threads: how many threads may share the work (1: the caller only).
// Results: the tables, logits [N, M, C] (before the update), loss [] = Σ weight · term.
ffi::Error SgnsUpdate(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> in_table, ffi::Buffer<ffi::F32> out_table,
                      ffi::Buffer<ffi::S32> queries, ffi::Buffer<ffi::S32> candidates,
                      ffi::Buffer<ffi::F32> weights, ffi::Buffer<ffi::F32> learning_rate,
                      ffi::Buffer<ffi::F32> row_clip, int64_t threads,
                      ffi::ResultBuffer<ffi::F32> in_result, ffi::ResultBuffer<ffi::F32> out_result,
                      ffi::ResultBuffer<ffi::F32> logits_result, ffi::ResultBuffer<ffi::F32> loss_result) {
  const auto in_dims = in_table.dimensions(), out_dims = out_table.dimensions();
  const auto q_dims = queries.dimensions(), c_dims = candidates.dimensions();
  if (in_dims.size() != 2 || out_dims.size() != 2 || in_dims[1] != out_dims[1] || q_dims.size() != 2 ||
      c_dims.size() != 2 || q_dims[0] != c_dims[0] || weights.element_count() != q_dims[0] * q_dims[1] * c_dims[1]) {
    return ffi::Error::InvalidArgument("sgns_update: inconsistent shapes");
  }
  const int64_t d = in_dims[1], v_in = in_dims[0], v_out = out_dims[0];
  const int64_t n = q_dims[0], m = q_dims[1], c = c_dims[1];
  float* in = in_result->typed_data();
  float* out = out_result->typed_data();
  // Without aliasing XLA hands over fresh result buffers: start them from the inputs.
  if (in != in_table.typed_data()) std::copy_n(in_table.typed_data(), v_in * d, in);
  if (out != out_table.typed_data()) std::copy_n(out_table.typed_data(), v_out * d, out);
  AdviseHugePages(in, v_in * d * sizeof(float));
  AdviseHugePages(out, v_out * d * sizeof(float));
  const int32_t* q = queries.typed_data();
  const int32_t* cand = candidates.typed_data();
  const float* w = weights.typed_data();
  float* logits = logits_result->typed_data();
  const float lr = learning_rate.typed_data()[0];
  const float clip = row_clip.typed_data()[0];
  const float limit = std::fabs(lr) * clip;  // on a row's update, lr · its gradient
  auto valid_in = [&](int32_t id) { return id >= 0 && id < v_in; };
  auto valid_out = [&](int32_t id) { return id >= 0 && id < v_out; };

  // Which query rows are scored, found once: a real id with a term of nonzero weight. Per-pair skip-gram
  // leaves 2/5 of its pair slots empty at window 5, and reading their rows would be most of a large
  // table's memory traffic. Kept between calls like the scratch below; a local reference for the helpers.
  thread_local std::vector<uint8_t> scored_rows;
  std::vector<uint8_t>& scored = scored_rows;
  scored.assign(n * m, 0);
  for (int64_t ij = 0; ij < n * m; ++ij) {
    if (!valid_in(q[ij])) continue;
    for (int64_t k = 0; k < c && !scored[ij]; ++k) scored[ij] = w[ij * c + k] != 0.0f;
  }
  // Prefetch about 48 rows ahead: enough to cover a trip to memory for the rows of a 1M-word table.
  const int64_t kAhead = std::max<int64_t>(2, 48 / (m + c));  // windows
  auto prefetch_window = [&](int64_t i) {
    if (i >= n) return;
    bool any = false;
    for (int64_t j = 0; j < m; ++j) {
      if (!scored[i * m + j]) continue;
      Prefetch(&in[q[i * m + j] * d], d);
      any = true;
    }
    for (int64_t k = 0; any && k < c; ++k) {
      if (valid_out(cand[i * c + k])) Prefetch(&out[cand[i * c + k] * d], d);
    }
  };

  // Pass 1, by blocks of windows: logits, coefficients g = −lr · weight · ∂term/∂logit, each query
  // row's update Σ_c g · out[c] (kept aside: out must stay as it was for pass 2), and the loss.
  constexpr int64_t kBlock = 32;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  // Scratch kept between calls (a fresh 1-2 MB buffer per step costs page faults). Local references, so
  // the helpers' lambdas see the caller's buffers, not their own threads'.
  thread_local std::vector<float> scratch[3];
  std::vector<float>& coef = scratch[0];
  std::vector<float>& in_delta = scratch[1];
  std::vector<float>& block_loss = scratch[2];
  coef.resize(n * m * c);
  in_delta.resize(n * m * d);
  block_loss.resize(blocks);
  const int64_t helpers = std::max<int64_t>(0, std::min<int64_t>(threads, pool.num_threads()) - 1);
  ParallelFor(pool, helpers, blocks, [&](int64_t block) {
    double loss = 0.0;
    std::vector<const float*> rows(c);
    for (int64_t i = block * kBlock; i < std::min(n, (block + 1) * kBlock); ++i) {
      prefetch_window(i + kAhead);
      for (int64_t k = 0; k < c; ++k) rows[k] = valid_out(cand[i * c + k]) ? &out[cand[i * c + k] * d] : nullptr;
      for (int64_t j = 0; j < m; ++j) {
        const int64_t ij = i * m + j;
        float* delta = &in_delta[ij * d];
        float* g = &coef[ij * c];
        float* s = &logits[ij * c];
        std::fill_n(delta, d, 0.0f);
        std::fill_n(g, c, 0.0f);
        std::fill_n(s, c, 0.0f);
        if (!scored[ij]) continue;
        const float* query = &in[q[ij] * d];
        for (int64_t k0 = 0; k0 < c; k0 += 4) {
          const float* four[4];
          for (int64_t k = 0; k < 4; ++k) four[k] = k0 + k < c && rows[k0 + k] ? rows[k0 + k] : query;
          float dots[4];
          Dot4(query, four, d, dots);
          for (int64_t k = k0; k < std::min(c, k0 + 4); ++k) s[k] = rows[k] ? dots[k - k0] : 0.0f;
        }
        double product = 1.0;  // of (1 + e) over the terms of weight 1, each at most 2
        for (int64_t k = 0; k < c; ++k) {
          const float weight = w[ij * c + k];
          if (!rows[k] || weight == 0.0f) continue;
          const Term term = LogisticTerm(s[k], k == 0);
          if (weight == 1.0f) {
            product *= term.one_plus_e;
            if (product > 0x1p500) {  // thousands of negatives: keep the product finite
              loss += std::log(product);
              product = 1.0;
            }
          } else {
            loss += weight * std::log(term.one_plus_e);
          }
          loss += weight * term.rest;
          g[k] = -lr * weight * term.slope;
        }
        loss += std::log(product);
        AddScaled(c, g, rows.data(), delta, d);  // rows with g = 0 (padding among them) are skipped
      }
    }
    block_loss[block] = static_cast<float>(loss);
  });

  // Passes 2 and 3 split the rows by id over `parts` owners; each owner adds its rows' updates in
  // batch order, so no two threads write one row and the sums never depend on the thread count. With a
  // clip, each owner measures its rows' moves against copies kept before their first update (RowClip).
  const int64_t parts = helpers + 1;
  // Which owner a row has: its id modulo parts, a mask where parts is a power of two (a division per
  // occurrence costs more than the rest of the owner's test).
  const bool pow2 = (parts & (parts - 1)) == 0;
  auto owner = [parts, pow2](int32_t id) -> int64_t { return pow2 ? (id & (parts - 1)) : id % parts; };
  const bool clipped = clip > 0.0f;
  thread_local RowClip kept;  // per owner thread, reused between calls like the scratch above
  ParallelFor(pool, helpers, parts, [&](int64_t part) {  // out[c] += Σ_j g · in[q_j], in still as it was
    RowClip& owned = kept;
    if (clipped) owned.Start(v_out, d);
    std::vector<const float*> rows(m);
    std::vector<float> g(m);
    for (int64_t i = 0; i < n; ++i) {
      prefetch_window(i + kAhead);
      for (int64_t j = 0; j < m; ++j) rows[j] = valid_in(q[i * m + j]) ? &in[q[i * m + j] * d] : nullptr;
      for (int64_t k = 0; k < c; ++k) {
        const int32_t cid = cand[i * c + k];
        if (!valid_out(cid) || owner(cid) != part) continue;
        bool moves = false;
        for (int64_t j = 0; j < m; ++j) {
          g[j] = coef[(i * m + j) * c + k];  // 0 for padding and skipped rows (pass 1)
          moves |= g[j] != 0.0f;
        }
        if (!moves) continue;
        if (clipped) owned.Keep(cid, &out[cid * d]);
        AddScaled(m, g.data(), rows.data(), &out[cid * d], d);
      }
    }
    if (clipped) owned.Finish(out, limit);
  });
  ParallelFor(pool, helpers, parts, [&](int64_t part) {  // in[q] += its update from pass 1
    RowClip& owned = kept;
    if (clipped) owned.Start(v_in, d);
    for (int64_t ij = 0; ij < n * m; ++ij) {
      const int64_t ahead = ij + kAhead * m;
      if (ahead < n * m && scored[ahead]) Prefetch(&in[q[ahead] * d], d);
      const int32_t qid = q[ij];
      if (!scored[ij] || owner(qid) != part) continue;
      const float one = 1.0f;
      const float* delta = &in_delta[ij * d];
      if (clipped) owned.Keep(qid, &in[qid * d]);
      AddScaled(1, &one, &delta, &in[qid * d], d);
    }
    if (clipped) owned.Finish(in, limit);
  });
  float loss = 0.0f;
  for (float part : block_loss) loss += part;
  loss_result->typed_data()[0] = loss;
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(AceSgnsUpdate, SgnsUpdate,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("threads")
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
