"""The learned conditional sampler g_θ(y|x): a softmax over all candidates with its own small tables.

The game's generator parts (Exact, Pool, Kbgan) give a step's Proposal: logits over what the generator
chooses among, and their VJP for its update.
"""

import dataclasses
from typing import NamedTuple
from collections.abc import Callable

import jax
import jax.numpy as jnp

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


def sample(key: jax.Array, logits: jax.Array, num: int, block: int = 128) -> jax.Array:
    """Draws `num` ids per row exactly from softmax(logits): [B, V] -> [B, num] int32.

    Inverse CDF in two levels: a block of `block` ids by the CDF of the block masses, then an id
    inside the block by that block's own CDF and a second uniform. Gumbel-max would need B·num·V
    random numbers and a full-row cumsum is a slow pass on CPU; this reads [B, V] once and then only
    B·num·block values. Each level is scaled by its own computed total, so float rounding can never
    land on an id of probability zero.
    """
    num_rows, vocab_size = logits.shape
    block = min(block, vocab_size)
    pad = -vocab_size % block
    k_block, k_inner = jax.random.split(key)
    probs = jax.nn.softmax(logits, axis=-1)
    probs = jnp.pad(probs, ((0, 0), (0, pad))).reshape(num_rows, -1, block)  # [B, nb, block]
    block_cdf = jnp.cumsum(probs.sum(-1), axis=-1)  # [B, nb]
    chosen = draw_from_cdf(k_block, block_cdf[:, None, :], (num_rows, num))  # [B, num]
    inner_cdf = jnp.cumsum(jnp.take_along_axis(probs, chosen[..., None], axis=1), axis=-1)  # [B, num, block]
    inner = draw_from_cdf(k_inner, inner_cdf, (num_rows, num))
    return (chosen * block + inner).astype(jnp.int32)


def draw_from_cdf(key: jax.Array, cdf: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Index i with cdf[i−1] ≤ u < cdf[i], u uniform below the last entry; cdf [..., n] broadcasts to shape + (n,)."""
    total = cdf[..., -1:]
    u = jnp.minimum(jax.random.uniform(key, shape + (1,)) * total, jnp.nextafter(total, 0.0))
    return (cdf <= u).sum(-1)


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

    def propose(self, params, batch, noise_data, key, *, family, game, sparse: bool) -> Proposal:
        if sparse:
            raise ValueError("the exact generator reads every row: give it an optax transform")
        queries = family.generator_queries(batch)
        scores, vjp = jax.vjp(lambda p: logits(p, queries, jnp.dtype(self.matmul_dtype)), params)
        return Proposal(scores, vjp)


@dataclasses.dataclass(frozen=True)
class Pool:
    """softmax over `candidates` noise draws shared by the batch, minus log q (`candidate_logits`): B·n·d
    a step instead of B·V·d, and a row-sparse optimiser updates only the rows read."""

    candidates: int = 1024

    def draw_shape(self, num_queries: int) -> tuple[int, ...]:
        return (self.candidates,)

    def propose(self, params, batch, noise_data, key, *, family, game, sparse: bool) -> Proposal:
        queries = family.generator_queries(batch)
        draws = game.noise.sample(noise_data, key, batch, self.draw_shape(queries.shape[0]))
        log_q = game.noise.log_prob(noise_data, draws)

        def rows_of(p):
            return candidate_rows(p, queries, draws)

        def logits_of(x):
            return candidate_logits(x if sparse else rows_of(x), queries >= 0, log_q)

        scores, vjp = jax.vjp(logits_of, rows_of(params) if sparse else params)
        return Proposal(scores, vjp, draws, {"query": queries, "cand": draws, "bias": draws} if sparse else None)


@dataclasses.dataclass(frozen=True)
class Kbgan(Pool):
    """As Pool, over `candidates` noise draws of each query's own (KBGAN-style)."""

    candidates: int = 64

    def draw_shape(self, num_queries: int) -> tuple[int, ...]:
        return (num_queries, self.candidates)
