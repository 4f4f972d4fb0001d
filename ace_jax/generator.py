"""The learned conditional sampler g_θ(y|x): a softmax over all candidates, from its own small tables (the
paper's form) or from the discriminator's own rows.

The game's generator parts (Exact, Pool, Kbgan; Tied) give a step's Proposal: logits over what the generator
chooses among, and their VJP for its update; full_logits gives the exact softmax's logits over every candidate
(for the hardness measures and `ace-jax negatives`).
"""

import dataclasses
from typing import NamedTuple
from collections.abc import Callable

import jax
import jax.numpy as jnp

from ace_jax import noise
from ace_jax.scorers.skipgram import combine_query, embed_queries


def init(key: jax.Array, num_queries: int, num_candidates: int, dim: int, bias: jax.Array | None = None) -> dict:
    """Parameters of g_θ(y|x) = softmax_y(a_x · b_y + c_y).

    a starts small and random, b at zero (word2vec's own initialisation), so the first distribution
    is softmax(c). With `bias` = the noise log-probabilities the generator starts as p_nce and learns
    how to depart from it; with zeros it starts uniform.
    """
    query = jax.random.uniform(key, (num_queries, dim), minval=-0.5 / dim, maxval=0.5 / dim)
    cand = jnp.zeros((num_candidates, dim))
    bias = jnp.zeros((num_candidates,)) if bias is None else jnp.asarray(bias, jnp.float32)
    return {"query": query, "cand": cand, "bias": bias}


def logits(params: dict, queries: jax.Array, matmul_dtype=jnp.float32) -> jax.Array:
    """queries: [B] int32, or [B, M] with −1 padding (mean of the rows, as CBOW) -> logits [B, V].

    One [B, d] x [d, V] product per batch; matmul_dtype=bfloat16 runs it on bf16 inputs with float32
    accumulation (the fast path of GPU and TPU matrix units), the rest stays float32.
    """
    query = embed_queries(params["query"], queries).astype(matmul_dtype)
    scores = jnp.matmul(query, params["cand"].astype(matmul_dtype).T, preferred_element_type=jnp.float32)
    return scores + params["bias"][None, :]


def candidate_rows(params: dict, queries: jax.Array, draws: jax.Array) -> dict:
    """The rows the candidate generators read: the queries' a rows, and b, c at the draws."""
    return {"query": params["query"][jnp.maximum(queries, 0)], "cand": params["cand"][draws],
            "bias": params["bias"][draws]}


def candidate_logits(rows: dict, query_mask: jax.Array, log_q: jax.Array) -> jax.Array:
    """The generator restricted to noise draws: [B, n] logits a_x · b_y + c_y − log q(y) over draws
    [n] (one pool shared by the batch) or [B, n] (per query, KBGAN-style), from `candidate_rows`.

    Subtracting log q makes a softmax over draws from q estimate the full softmax (sampled softmax):
    the cost is B·n·d instead of B·V·d, and the gradient reaches only the rows read. A generator
    started at c = log q picks uniformly among the draws, so its negatives start as the noise's.
    """
    query = combine_query(rows["query"], query_mask)  # [B, d]
    offset = rows["bias"] - log_q  # like the draws
    if rows["cand"].ndim == 2:
        return query @ rows["cand"].T + offset[None, :]  # [B, n]
    return jnp.einsum("bd,bnd->bn", query, rows["cand"]) + offset


def sample(key: jax.Array, logits: jax.Array, num: int, block: int = 32) -> jax.Array:
    """Draws `num` ids per row exactly from softmax(logits): [B, V] -> [B, num] int32 (`draw`)."""
    return draw(key, jax.nn.softmax(logits, axis=-1), num, block)


def draw(key: jax.Array, weights: jax.Array, num: int, block: int = 32) -> jax.Array:
    """Draws `num` ids per row in proportion to weights [R, N] (non-negative, each row's sum positive).

    Inverse CDF by levels: ids in blocks of `block`, a block drawn by its mass (the same draw, one level up,
    over the R × N / block block masses), then an id inside it by that block's own CDF and a second uniform.
    Gumbel-max would need R·num·N random numbers; this reads [R, N] once, in one product with a triangle of
    ones per level (XLA's CPU cumsum is a reduce-window, quadratic in the axis: it cost 8-12 ms of a 36 ms
    pool step), and then R·num·block values per level. Each level is scaled by its own computed total. The
    product runs at full float32 precision (not TF32 on a GPU), and a dot kernel accumulates every column of
    the triangle over the same inputs in the same order (the zeros add nothing), so each CDF comes out
    non-decreasing and flat over an id of weight zero, and rounding cannot draw such an id. That is an
    assumption about XLA's kernels, not a documented guarantee: tests/test_sampling.py checks it at the edge.
    """
    rows, size = weights.shape
    block = min(block, size)
    weights = jnp.pad(weights, ((0, 0), (0, -size % block))).reshape(rows, -1, block)
    triangle = jnp.triu(jnp.ones((block, block), weights.dtype))  # column j sums entries 0..j
    inner_cdf = jnp.matmul(weights, triangle, precision=jax.lax.Precision.HIGHEST)  # [R, nb, block]
    k_blocks, k_inner = jax.random.split(key)
    if inner_cdf.shape[1] == 1:
        blocks = jnp.zeros((rows, num), jnp.int32)
    else:
        blocks = draw(k_blocks, inner_cdf[..., -1], num, block)
    cdf = inner_cdf[jnp.arange(rows)[:, None], blocks]  # [R, num, block]: each draw's block
    u = uniform_below(k_inner, cdf[..., -1], (rows, num))
    return (blocks * block + (cdf <= u[..., None]).sum(-1)).astype(jnp.int32)


def uniform_below(key: jax.Array, total: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """u uniform on [0, total), total broadcasting to shape; never equal to total after rounding."""
    return jnp.minimum(noise.uniforms(key, shape) * total, jnp.nextafter(total, 0.0))


def log_prob(logits: jax.Array, ids: jax.Array) -> jax.Array:
    """log g(y|x) for ids [B, n] under logits [B, V] -> [B, n]."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_probs, ids, axis=-1)


def entropy(logits: jax.Array) -> jax.Array:
    """Exact H(g(·|x)) in nats: [B, V] -> [B]."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -(jnp.exp(log_probs) * log_probs).sum(-1)


class Proposal(NamedTuple):
    """A generator's offer for one step.

    logits: [B, n], one row per query.
    vjp: logit gradients [B, n] -> (gradients,) of the generator's parameters, or of `rows` where given.
    draws: [n] (shared) or [B, n] (per query): the ids column j of the logits stands for; None when the
      columns are the ids themselves (an exact softmax over all of them).
    rows: {table: ids} whose gathered rows the gradients are of, for a row-sparse optimiser; None: whole tables.
    """

    logits: jax.Array
    vjp: Callable
    draws: jax.Array | None = None
    rows: dict | None = None

    def ids(self, picks: jax.Array) -> jax.Array:
        """Columns [B, m] picked from the logits -> the ids they stand for."""
        if self.draws is None:
            return picks
        if self.draws.ndim == 1:
            return self.draws[picks]
        return jnp.take_along_axis(self.draws, picks, axis=1)


@dataclasses.dataclass(frozen=True)
class Exact:
    """softmax over every id from the generator's own tables ([B, V] per step); its family says what it
    conditions on (family.generator_queries). matmul_dtype: "bfloat16" runs the product on bf16 inputs."""

    matmul_dtype: str = "float32"

    def propose(self, params, batch, noise_data, key, *, family, game, sparse: bool, disc=None) -> Proposal:
        if sparse:
            raise ValueError("the exact generator reads every row: give it an optax transform")
        queries = family.generator_queries(batch)
        scores, vjp = jax.vjp(lambda p: logits(p, queries, jnp.dtype(self.matmul_dtype)), params)
        return Proposal(scores, vjp)

    def full_logits(self, params, disc, queries, family) -> jax.Array:
        return logits(params, queries)


@dataclasses.dataclass(frozen=True)
class Pool:
    """softmax over `candidates` noise draws shared by the batch, minus log q (`candidate_logits`): B·n·d
    a step instead of B·V·d, and a row-sparse optimiser updates only the rows read."""

    candidates: int = 1024

    def draw_shape(self, num_queries: int) -> tuple[int, ...]:
        return (self.candidates,)

    def propose(self, params, batch, noise_data, key, *, family, game, sparse: bool, disc=None) -> Proposal:
        queries = family.generator_queries(batch)
        draws = game.noise.sample(noise_data, key, batch, self.draw_shape(queries.shape[0]))
        log_q = game.noise.log_prob(noise_data, draws)

        def rows_of(p):
            return candidate_rows(p, queries, draws)

        def logits_of(x):
            return candidate_logits(x if sparse else rows_of(x), queries >= 0, log_q)

        scores, vjp = jax.vjp(logits_of, rows_of(params) if sparse else params)
        return Proposal(scores, vjp, draws, {"query": queries, "cand": draws, "bias": draws} if sparse else None)

    def full_logits(self, params, disc, queries, family) -> jax.Array:
        return logits(params, queries)


@dataclasses.dataclass(frozen=True)
class Kbgan(Pool):
    """As Pool, over `candidates` noise draws of each query's own (KBGAN-style)."""

    candidates: int = 64

    def draw_shape(self, num_queries: int) -> tuple[int, ...]:
        return (num_queries, self.candidates)


def tied_init(bias: jax.Array, temperature: float = 1.0) -> dict:
    """Parameters of the generator that reads the discriminator's rows (Tied): log β = −log T, and the bias c [V]."""
    return {"log_beta": -jnp.log(jnp.float32(temperature)), "bias": jnp.asarray(bias, jnp.float32)}


@dataclasses.dataclass(frozen=True)
class Tied:
    """g(y|x) = softmax_y(β · s_D(x, y) + c_y) from the discriminator's current rows, detached (as the ACE
    authors' knowledge-graph code with share_D_embedding): conditional and adversarial from the first step,
    since the discriminator's scores already depend on the query. It learns an inverse temperature
    β = exp(log_beta) and a bias c [V]; with c = log q it is the noise tilted by exp(β s_D). The family gives the
    rows: generator_rows(params, queries) -> (query vectors [B, d], candidate table [N, d]), s_D = query · row.

    candidates None: exact, a softmax over every row ([B, N] a step, as Exact); n: over n noise draws minus
    log q, shared by the batch (per_query False, as Pool) or each query's own (True, as Kbgan).
    min_entropy: an entropy floor in nats (0: none). Each query's β is capped at the largest value that keeps
    H(g(·|x)) at or above it (`entropy_floor_beta`), so the generator cannot collapse onto the discriminator's
    few top words; where the cap binds, log_beta gets no gradient from that query.
    A batch with known positives (word.Batch.known) takes them out of each query's softmax (`without_known`):
    with only β and a bias to learn, the generator could not learn to avoid them per query from the penalty.
    """

    candidates: int | None = None
    per_query: bool = False
    matmul_dtype: str = "float32"
    min_entropy: float = 0.0

    def scores(self, disc, queries, family) -> tuple[jax.Array, jax.Array]:
        """(query vectors [B, d], candidate table [N, d]) of the discriminator, detached."""
        return family.generator_rows(jax.lax.stop_gradient(disc), queries)

    def propose(self, params, batch, noise_data, key, *, family, game, sparse: bool, disc=None) -> Proposal:
        if sparse:
            raise ValueError("the tied generator learns a scalar and a bias vector: give it an optax transform")
        query, table = self.scores(disc, family.generator_queries(batch), family)
        if self.candidates is None:
            draws, offset = None, None
            dtype = jnp.dtype(self.matmul_dtype)
            scores = jnp.matmul(query.astype(dtype), table.astype(dtype).T, preferred_element_type=jnp.float32)
        else:
            shape = (query.shape[0], self.candidates) if self.per_query else (self.candidates,)
            draws = game.noise.sample(noise_data, key, batch, shape)
            offset = -game.noise.log_prob(noise_data, draws)
            rows = table[draws]
            scores = query @ rows.T if draws.ndim == 1 else jnp.einsum("bd,bnd->bn", query, rows)  # [B, n]
        known = getattr(batch, "known", None)
        if known is not None:
            base = jnp.zeros(scores.shape) if offset is None else jnp.broadcast_to(offset, scores.shape)
            offset = without_known(base, draws, known)

        def logits_of(p):
            bias = p["bias"] if draws is None else p["bias"][draws]  # [N], [n] or [B, n]
            bias = bias if bias.ndim == 2 else bias[None, :]
            if offset is not None:  # −log q of the draws, and the known positives out: [n] or [B, n]
                bias = bias + (offset if offset.ndim == 2 else offset[None, :])
            return self.tilt(p["log_beta"], scores, bias)

        gen_logits, vjp = jax.vjp(logits_of, params)
        return Proposal(gen_logits, vjp, draws)

    def tilt(self, log_beta: jax.Array, scores: jax.Array, bias: jax.Array) -> jax.Array:
        """β · scores + bias, β = exp(log_beta) capped per row by the entropy floor."""
        beta = jnp.exp(log_beta)
        if self.min_entropy > 0:
            cap = entropy_floor_beta(jax.lax.stop_gradient(scores), jax.lax.stop_gradient(bias), self.min_entropy,
                                     jax.lax.stop_gradient(beta))
            beta = jnp.minimum(beta, cap)[:, None]
        return beta * scores + bias

    def full_logits(self, params, disc, queries, family) -> jax.Array:
        query, table = self.scores(disc, queries, family)
        return self.tilt(params["log_beta"], query @ table.T, params["bias"][None, :])


def without_known(logits: jax.Array, ids: jax.Array | None, known: jax.Array) -> jax.Array:
    """logits [B, n] of ids [n] or [B, n] (None: the columns are the ids), with −1e30 (probability 0, and a
    finite entropy) where a column's id is one of its row's known positives, known [B, k] (−1 padding)."""
    if ids is None:  # every id a column: write the k known ones
        rows = jnp.arange(logits.shape[0])[:, None]
        return logits.at[rows, jnp.where(known < 0, logits.shape[1], known)].set(-1e30, mode="drop")
    hit = (jnp.broadcast_to(ids, logits.shape)[:, :, None] == known[:, None, :]).any(-1)
    return jnp.where(hit, -1e30, logits)


def entropy_floor_beta(scores: jax.Array, bias: jax.Array, floor: float, beta_max: jax.Array,
                       iterations: int = 20) -> jax.Array:
    """Per row, the largest β in [0, beta_max] found by bisection with H(softmax(β · scores + bias)) ≥ floor:
    beta_max itself where it keeps the floor, 0 where even β = 0 falls below it. [B, N] -> [B]."""
    def entropy_at(beta):
        return entropy(beta[:, None] * scores + bias)

    rows = scores.shape[0]
    high = jnp.broadcast_to(beta_max, (rows,)).astype(jnp.float32)
    low = jnp.zeros(rows, jnp.float32)

    def halve(_, bounds):
        low, high = bounds
        mid = 0.5 * (low + high)
        keeps = entropy_at(mid) >= floor  # invariant: H(low) ≥ floor (or low = 0), H(high) < floor
        return jnp.where(keeps, mid, low), jnp.where(keeps, high, mid)

    low, _ = jax.lax.fori_loop(0, iterations, halve, (low, high))
    return jnp.where(entropy_at(high) >= floor, high, low)
