"""Hardness of a game's negatives, measured at evaluation points: is the generator's draw harder for the
discriminator than the noise's, does it reach the discriminator's own top-k, and does it depend on the query?

The measures, for a fixed sample of queries and the tables as they are:
  noise_loss, gen_loss   the discriminator's mean loss on `draws` noise and generator draws per query: the
                         game's per-negative term (its REINFORCE reward), e.g. skip-gram's −log σ(−s) = softplus(s)
  loss_ratio             gen_loss / noise_loss: above 1, the generator's negatives are harder than the noise's
  noise_top_k, gen_top_k how often a draw is among the discriminator's `top_k` highest-scoring candidates
  noise_false, gen_false the fraction of draws that are no negatives (scored −inf by the caller: the positive, a
                         known triple); they are left out of the losses and top-k rates above
  gen_entropy            H(g(·|x)) in nats, mean over queries (noise_entropy: H(q), the noise's); for the pool and
                         KBGAN-style forms, over their draws, as training computes it (at most log n)
  gen_overlap            the mean Jaccard overlap of the generator's top-10 candidates between two queries:
                         1 for a generator that ignores its query, near 0 for one that conditions on it
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ace_jax import generator, losses, noise as noise_lib
from ace_jax.scorers import skipgram


@functools.partial(jax.jit, static_argnames=("loss", "draws", "top_k", "top_gen"))
def measure_chunk(scores: jax.Array, pos: jax.Array, gen_logits: jax.Array | None, noise_ids: jax.Array,
                  key: jax.Array, gen_draws: jax.Array | None = None, *, loss, draws: int, top_k: int,
                  top_gen: int) -> dict:
    """scores [c, C] of the discriminator (−inf where a candidate is no negative), the positive's score pos [c],
    gen_logits [c, n] or None, noise_ids [c, draws] -> per-query measures; loss: the game's loss part.
    gen_draws: the ids [n] or [c, n] the generator's columns stand for (its candidate draws); None: columns are
    ids (n = C)."""
    def side(ids):
        picked = jnp.take_along_axis(scores, ids, axis=1)  # [c, draws]
        negative = jnp.isfinite(picked)  # a draw that is no negative (−inf) is left out of the loss and top-k
        terms = loss(pos, jnp.where(negative, picked, 0.0))[1]
        # In the top k: fewer than k candidates score above it (the same as ≥ the k-th highest score, without
        # lax.top_k, whose sort of every row cost 2 s a chunk of 256 over 41k entities on this CPU).
        above = (scores[:, None, :] > picked[:, :, None]).sum(-1)  # [c, draws]
        count = negative.sum(1)

        def mean(values):  # over the query's negative draws; NaN where it has none
            return jnp.where(count > 0, jnp.where(negative, values, 0.0).sum(1) / jnp.maximum(count, 1), jnp.nan)

        return mean(terms), mean((above < top_k).astype(jnp.float32)), 1.0 - count / ids.shape[1]

    out = dict(zip(("noise_loss", "noise_top_k", "noise_false"), side(noise_ids)))
    if gen_logits is not None:
        columns = generator.Proposal(gen_logits, None, gen_draws)
        gen_ids = columns.ids(generator.sample(key, gen_logits, draws))  # [c, draws]
        out.update(zip(("gen_loss", "gen_top_k", "gen_false"), side(gen_ids)))
        out["gen_entropy"] = generator.entropy(gen_logits)
        out["gen_top"] = columns.ids(jax.lax.top_k(gen_logits, top_gen)[1])  # [c, top_gen]
    return out


def jaccard_overlap(tops: np.ndarray, rng: np.random.Generator, pairs: int = 2048) -> float:
    """Mean |A ∩ B| / |A ∪ B| of the top sets of random pairs of distinct queries: tops [Q, n]."""
    if len(tops) < 2:
        return float("nan")
    i = rng.integers(0, len(tops), pairs)
    j = (i + rng.integers(1, len(tops), pairs)) % len(tops)
    overlaps = [len(set(tops[a]) & set(tops[b])) / len(set(tops[a]) | set(tops[b])) for a, b in zip(i, j)]
    return float(np.mean(overlaps))


def summarize(parts: list[dict], noise_entropy: float) -> dict:
    """Per-chunk measures -> the means over queries, with the ratio and the top-10 overlap."""
    joined = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    result = {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in joined.items()
              if k != "gen_top"}
    result["noise_entropy"] = noise_entropy
    if "gen_loss" in result:
        result["loss_ratio"] = result["gen_loss"] / max(result["noise_loss"], 1e-12)
        result["gen_overlap"] = jaccard_overlap(joined["gen_top"], np.random.default_rng(0))
    return result


def word_hardness(params: dict, gen_of, noise: noise_lib.NoiseDistribution, queries: np.ndarray,
                  key: jax.Array, *, draws: int = 5, top_k: int = 100, top_gen: int = 10, chunk: int = 256) -> dict:
    """The measures for skip-gram queries [Q] (word ids): the discriminator scores u_x · v_y over every output
    row; gen_of(queries [c], key) -> (logits [c, n], draws [n] or [c, n] or None), the softmax a training step
    draws the generator's negatives from (embeddings.generator_draws_of: for the pool and KBGAN-style forms,
    over a fresh set of candidate draws; None: over every row); gen_of None (a noise-only sampler): the noise's
    measures only."""
    parts = []
    for start in range(0, len(queries), chunk):
        q = jnp.asarray(queries[start:start + chunk], jnp.int32)
        k_noise, k_gen, k_pool = jax.random.split(jax.random.fold_in(key, start), 3)
        scores = skipgram.score_all(params, q)  # [c, V]
        gen_logits, gen_draws = gen_of(q, k_pool) if gen_of else (None, None)
        noise_ids = noise_lib.sample(noise, k_noise, (len(q), draws))
        parts.append(measure_chunk(scores, jnp.zeros(len(q)), gen_logits, noise_ids, k_gen, gen_draws,
                                   loss=losses.Logistic(), draws=draws, top_k=min(top_k, scores.shape[1]),
                                   top_gen=min(top_gen, (scores if gen_logits is None else gen_logits).shape[1])))
    probs = np.exp(np.asarray(noise.log_probs, np.float64))
    noise_entropy = float(-(probs[probs > 0] * np.log(probs[probs > 0])).sum())
    return summarize(jax.device_get(parts), noise_entropy)


def text_hardness(unit: np.ndarray, queries: np.ndarray, partners: np.ndarray, gen_logits_of, loss, key: jax.Array,
                  *, draws: int = 5, top_k: int = 100, top_gen: int = 10, chunk: int = 256) -> dict:
    """The measures for S2Net's paraphrase queries: unit [C, k] the texts' projected unit vectors (the
    discriminator scores cosines), queries and partners [Q] rows of them; gen_logits_of(q, p) -> [c, C] or None
    (a noise-only sampler); noise draws are uniform over the texts; loss the game's loss part. A query's own
    text and its positive are no negatives: they are left out of the top-k and out of the draws."""
    parts, num_texts = [], unit.shape[0]
    for start in range(0, len(queries), chunk):
        q, p = queries[start:start + chunk], partners[start:start + chunk]
        rows = np.arange(len(q))
        cosines = unit[q] @ unit.T  # [c, C]
        pos = cosines[rows, p]
        cosines[rows, q] = cosines[rows, p] = -np.inf
        k_noise, k_gen = jax.random.split(jax.random.fold_in(key, start))
        # Uniform over the texts but q and p: draw from C − 2 slots and step over the two.
        low, high = np.minimum(q, p)[:, None], np.maximum(q, p)[:, None]
        noise_ids = jax.random.randint(k_noise, (len(q), draws), 0, num_texts - 2)
        noise_ids = noise_ids + (noise_ids >= low)
        noise_ids = noise_ids + (noise_ids >= high)
        gen_logits = gen_logits_of(q, p)
        parts.append(measure_chunk(jnp.asarray(cosines, jnp.float32), jnp.asarray(pos, jnp.float32), gen_logits,
                                   noise_ids, k_gen, loss=loss, draws=draws, top_k=min(top_k, num_texts - 2),
                                   top_gen=min(top_gen, num_texts)))
    return summarize(jax.device_get(parts), float(np.log(num_texts)))
