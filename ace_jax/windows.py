"""Skip-gram and CBOW examples made on the device from the encoded corpus: subsampling, dynamic windows."""

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from ace_jax import noise as noise_lib
from ace_jax.families.word import Batch


class DeviceCorpus(flax.struct.PyTreeNode):
    """The encoded corpus as it lives on the device.

    tokens: [N] int32, the corpus.
    keep_probs: [V] float32, word2vec's probability of keeping each word when subsampling.
    key: the data PRNG key, apart from the game's, so every sampler with the same seed sees the same pairs.
    """

    tokens: jax.Array
    keep_probs: jax.Array
    key: jax.Array


class EpochStream(flax.struct.PyTreeNode):
    """One epoch of the corpus after subsampling, as the steps of that epoch read it.

    tokens: [N + chunk] int32, the kept tokens packed to the front (a dropped word no longer separates
      its neighbours, as in word2vec), then −1, so every step's slice is in bounds.
    num_kept: int32 [], how many were kept; the epoch has ceil(num_kept / chunk) steps.
    first_step: int32 [], the step that reads the first chunk.
    key: the corpus's data key, for the windows.
    """

    tokens: jax.Array
    num_kept: jax.Array
    first_step: jax.Array
    key: jax.Array


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec.c: keep w with prob (sqrt(f/t) + 1) · t/f, f = count / total; sample = 0 keeps everything."""
    counts = np.asarray(counts, np.float64)
    if sample <= 0:
        return np.ones(len(counts), np.float32)
    threshold = sample * counts.sum()
    with np.errstate(divide="ignore"):  # a count of 0 gives inf, clipped to 1
        return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts).astype(np.float32)


def make_device_corpus(tokens: np.ndarray, counts: np.ndarray, *, sample: float, key: jax.Array) -> DeviceCorpus:
    return DeviceCorpus(jnp.asarray(tokens, jnp.int32), jnp.asarray(keep_probabilities(counts, sample)), key)


def subsample_epoch(corpus: DeviceCorpus, epoch: jax.Array, first_step: jax.Array, *, chunk: int) -> EpochStream:
    """Keeps each token of the corpus with its word's keep probability, fresh draws every epoch (word2vec
    draws once per occurrence read), and packs the survivors, so every step reads `chunk` kept tokens."""
    raw = corpus.tokens
    key = jax.random.fold_in(jax.random.fold_in(corpus.key, 0), epoch)
    keep = jax.random.uniform(key, raw.shape) < corpus.keep_probs[raw]
    rank = jnp.cumsum(keep) - 1
    size = raw.shape[0] + chunk
    tokens = jnp.full((size,), -1, jnp.int32).at[jnp.where(keep, rank, size)].set(raw, mode="drop")
    return EpochStream(tokens, keep.sum(dtype=jnp.int32), jnp.asarray(first_step, jnp.int32), corpus.key)


def steps_in(num_kept: int, chunk: int) -> int:
    """Steps an epoch of `num_kept` kept tokens takes (at least one, so an empty epoch still ends)."""
    return max(1, -(-num_kept // chunk))


LAYOUTS = ("skipgram", "windows", "cbow")


def make_batch(stream: EpochStream, step: jax.Array, *, chunk: int, window: int, layout: str = "skipgram",
               fixed_reach: bool = False) -> Batch:
    """The examples of one step: `chunk` kept tokens of the epoch, from (step − first_step) · chunk.

    Each centre i gets a window b_i ~ U{1..window} (word2vec's dynamic window), or, with fixed_reach,
    exactly `window` words each side (the caller draws one reach for the whole step).
    skipgram: query = centre, positives = its 2·window context slots.
    windows: the same pairs in word2vec's orientation, for shared negatives: queries = the context
      slots [2·window], positive = the centre, mask = which contexts are real (GameConfig.shared_negatives).
    cbow: query = the context bag [2·window], positive = the centre.
    Contexts do not cross chunk boundaries, as gensim's do not cross its 10,000-word jobs.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    k_window = jax.random.fold_in(jax.random.fold_in(stream.key, 1), step)
    kept = jax.lax.dynamic_slice(stream.tokens, ((step - stream.first_step) * chunk,), (chunk,))  # [C]
    num_kept = (kept >= 0).sum()

    offsets = jnp.concatenate([jnp.arange(-window, 0), jnp.arange(1, window + 1)])  # [2W]
    reach = window if fixed_reach else 1 + noise_lib.uniform_ints(k_window, (chunk, 1), window)  # [C, 1]
    position = jnp.arange(chunk)[:, None] + offsets[None, :]  # [C, 2W]
    is_centre = jnp.arange(chunk) < num_kept  # [C]
    in_window = (jnp.abs(offsets)[None, :] <= reach) & (position >= 0) & (position < num_kept) & is_centre[:, None]
    context = jnp.where(in_window, kept[jnp.clip(position, 0, chunk - 1)], -1)  # [C, 2W]
    if layout == "cbow":
        return Batch(queries=context, positives=kept[:, None], mask=in_window.any(-1, keepdims=True))
    if layout == "windows":
        return Batch(queries=context, positives=kept[:, None], mask=in_window)
    return Batch(queries=kept, positives=context, mask=in_window)
