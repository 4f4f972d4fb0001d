"""Fixed noise samplers p_nce built from counts: O(1) alias-method sampling inside jit, with log-probabilities."""

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np


class NoiseDistribution(flax.struct.PyTreeNode):
    """A fixed categorical over V ids, stored as Walker/Vose alias tables so a draw costs two gathers.

    Fields:
      log_probs: [V] float32, log p(y).
      accept: [V] float32, probability of keeping bucket i rather than jumping to alias[i].
      alias: [V] int32, the other id sharing bucket i.
    """

    log_probs: jax.Array
    accept: jax.Array
    alias: jax.Array

    @property
    def size(self) -> int:
        return self.log_probs.shape[0]


def build_alias_table(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias method: buckets i of mass 1/V holding id i with prob accept[i], else alias[i]."""
    n = len(probs)
    scaled = np.asarray(probs, np.float64) * n / np.sum(probs)
    accept = np.ones(n, np.float64)
    alias = np.arange(n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    # Whatever is left holds mass 1 up to rounding error.
    return accept.astype(np.float32), alias.astype(np.int32)


def from_probs(probs: np.ndarray) -> NoiseDistribution:
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 1 or len(probs) == 0 or np.any(probs < 0) or probs.sum() <= 0:
        raise ValueError("noise probabilities must be a non-empty, non-negative vector with positive sum")
    probs = probs / probs.sum()
    accept, alias = build_alias_table(probs)
    with np.errstate(divide="ignore"):
        log_probs = np.log(probs).astype(np.float32)
    return NoiseDistribution(jnp.asarray(log_probs), jnp.asarray(accept), jnp.asarray(alias))


def unigram(counts: np.ndarray, power: float = 0.75) -> NoiseDistribution:
    """word2vec's noise: p(y) ∝ count(y)^0.75 (word2vec.c InitUnigramTable, `power = 0.75`)."""
    return from_probs(np.asarray(counts, np.float64) ** power)


def uniform(size: int) -> NoiseDistribution:
    return from_probs(np.ones(size))


def uniform_ints(key: jax.Array, shape: tuple[int, ...], n: int) -> jax.Array:
    """Ints uniform on [0, n) (int32) from one 32-bit draw each: a bias of at most n / 2^32 (gensim's
    noise draws have the same 32-bit resolution). One PRNG call, where jax.random.randint makes three,
    and on a CPU each call is an XLA loop with a fixed cost of some microseconds."""
    return (jax.random.bits(key, shape, jnp.uint32) % jnp.uint32(n)).astype(jnp.int32)


def sample(noise: NoiseDistribution, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Draws ids of the given shape (int32) from one PRNG call: per draw, one 32-bit word picks the
    bucket (as uniform_ints) and another, as a 24-bit fraction, tosses its coin."""
    bits = jax.random.bits(key, (2, *shape), jnp.uint32)
    bucket = (bits[0] % jnp.uint32(noise.size)).astype(jnp.int32)
    coin = (bits[1] >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)  # [0, 1)
    return jnp.where(coin < noise.accept[bucket], bucket, noise.alias[bucket])


def log_prob(noise: NoiseDistribution, ids: jax.Array) -> jax.Array:
    return noise.log_probs[ids]
