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
    return embed_queries(params["query"], queries) @ params["cand"].T + params["bias"][None, :]


def sample(key: jax.Array, logits: jax.Array, num: int, block: int = 128) -> jax.Array:
    """Draws `num` ids per row exactly from softmax(logits): [B, V] -> [B, num] int32.

    Inverse CDF in two levels: pick a block of `block` ids by the CDF of block masses, then an id
    inside it. Gumbel-max would need B·num·V random numbers and a full cumsum is a slow pass on CPU;
    this reads [B, V] once and then only B·num·block values.
    """
    num_rows, vocab_size = logits.shape
    pad = -vocab_size % block
    probs = jax.nn.softmax(logits, axis=-1)
    probs = jnp.pad(probs, ((0, 0), (0, pad))).reshape(num_rows, -1, block)  # [B, nb, block]
    block_cdf = jnp.cumsum(probs.sum(-1), axis=-1)  # [B, nb]
    u = jax.random.uniform(key, (num_rows, num)) * block_cdf[:, -1:]  # scale out float32 rounding of the total
    chosen = jax.vmap(lambda c, v: jnp.searchsorted(c, v, side="right", method="scan"))(block_cdf, u)
    chosen = jnp.minimum(chosen, block_cdf.shape[1] - 1)  # [B, num]
    below = jnp.where(chosen > 0, jnp.take_along_axis(block_cdf, jnp.maximum(chosen - 1, 0), axis=-1), 0.0)
    inner_cdf = jnp.cumsum(jnp.take_along_axis(probs, chosen[..., None], axis=1), axis=-1)  # [B, num, block]
    inner = (inner_cdf <= (u - below)[..., None]).sum(-1)  # ids in the block whose CDF is passed
    ids = chosen * block + jnp.minimum(inner, block - 1)
    # Rounding can land on a zero-probability pad slot; fall back to the last real id.
    return jnp.minimum(ids, vocab_size - 1).astype(jnp.int32)


def log_prob(logits: jax.Array, ids: jax.Array) -> jax.Array:
    """log g(y|x) for ids [B, n] under logits [B, V] -> [B, n]."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_probs, ids, axis=-1)


def entropy(logits: jax.Array) -> jax.Array:
    """Exact H(g(·|x)) in nats: [B, V] -> [B]."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -(jnp.exp(log_probs) * log_probs).sum(-1)
