"""Fixed noise samplers p_nce built from counts: O(1) alias-method sampling inside jit, with log-probabilities."""

import dataclasses

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


def _mix32(x: jax.Array) -> jax.Array:
    """lowbias32 (C. Wellons, "hash prospector"): a bijection of uint32 with near-ideal avalanche."""
    x = (x ^ (x >> 16)) * jnp.uint32(0x7FEB352D)
    x = (x ^ (x >> 15)) * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def hashed_bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """32 random bits per element (uint32): each element's index hashed with the key's words.

    A counter-based generator as threefry is, but one elementwise pass that XLA fuses: on a CPU a threefry
    draw is an XLA while loop, about 150 µs for the 5,000 words a step's negatives need on the project's
    2-core machine (15 % of a fused step). The key itself still comes from threefry (fold_in, split), so
    streams for different steps and purposes stay independent; within one key the draws are a bijection
    of the index, as word2vec.c's LCG draws are of its state.
    """
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    size = int(np.prod(shape, dtype=np.int64))
    x = jax.lax.iota(jnp.uint32, size)
    for word in key.reshape(-1).astype(jnp.uint32):
        x = _mix32(x ^ word)
    return _mix32(x + jnp.uint32(0x9E3779B9)).reshape(shape)


def uniform_ints(key: jax.Array, shape: tuple[int, ...], n: int) -> jax.Array:
    """Ints uniform on [0, n) (int32) from 32 hashed bits each: a bias of at most n / 2^32, the resolution
    of gensim's own noise draws."""
    return (hashed_bits(key, shape) % jnp.uint32(n)).astype(jnp.int32)


def uniforms(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Floats uniform on [0, 1) (float32) from the top 24 of 32 hashed bits: every value a multiple of 2^−24."""
    return (hashed_bits(key, shape) >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)


def sample(noise: NoiseDistribution, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Draws ids of the given shape (int32): per draw, 32 hashed bits pick the bucket (as uniform_ints) and
    another 32, as a 24-bit fraction, toss its coin."""
    bits = hashed_bits(key, (2, *shape))
    bucket = (bits[0] % jnp.uint32(noise.size)).astype(jnp.int32)
    coin = (bits[1] >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)  # [0, 1), as `uniforms`
    return jnp.where(coin < noise.accept[bucket], bucket, noise.alias[bucket])


def log_prob(noise: NoiseDistribution, ids: jax.Array) -> jax.Array:
    return noise.log_probs[ids]


@dataclasses.dataclass(frozen=True)
class Fixed:
    """The game's noise part for a fixed distribution over ids: the step's noise data is its NoiseDistribution."""

    def sample(self, data: NoiseDistribution, key: jax.Array, batch, shape: tuple[int, ...]) -> jax.Array:
        return sample(data, key, shape)

    def log_prob(self, data: NoiseDistribution, ids: jax.Array) -> jax.Array:
        return log_prob(data, ids)
