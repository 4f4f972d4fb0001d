"""The learned conditional sampler g_θ(y|x): a softmax over all candidates with its own small tables."""

import jax
import jax.numpy as jnp

from ace_jax.scorers.skipgram import embed_queries


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


def logits(params: dict, queries: jax.Array) -> jax.Array:
    """queries: [B] int32, or [B, M] with −1 padding (mean of the rows, as CBOW) -> logits [B, V]."""
    return embed_queries(params["query"], queries) @ params["cand"].T + params["bias"]


def sample(key: jax.Array, logits: jax.Array, num: int) -> jax.Array:
    """Draws `num` ids per row by inverting the row's CDF: [B, V] -> [B, num] int32.

    Gumbel-max would need B·num·V random numbers; the inverse CDF needs B·num and a binary search.
    """
    cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)  # [B, V]
    u = jax.random.uniform(key, (logits.shape[0], num)) * cdf[:, -1:]  # scale out float32 rounding of the total
    ids = jax.vmap(lambda c, v: jnp.searchsorted(c, v, side="right", method="scan"))(cdf, u)
    return jnp.minimum(ids, logits.shape[-1] - 1).astype(jnp.int32)


def log_prob(logits: jax.Array, ids: jax.Array) -> jax.Array:
    """log g(y|x) for ids [B, n] under logits [B, V] -> [B, n]."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_probs, ids, axis=-1)


def entropy(logits: jax.Array) -> jax.Array:
    """Exact H(g(·|x)) in nats: [B, V] -> [B]."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -(jnp.exp(log_probs) * log_probs).sum(-1)
