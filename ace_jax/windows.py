"""Skip-gram and CBOW examples made on the device from the encoded corpus: subsampling, dynamic windows, static shapes."""

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from ace_jax.train import Batch


class DeviceCorpus(flax.struct.PyTreeNode):
    """The encoded corpus as it lives on the device.

    tokens: [N + chunk] int32, the corpus followed by −1 padding so every chunk slice is in bounds.
    keep_probs: [V] float32, word2vec's probability of keeping each word when subsampling.
    key: the data PRNG key, apart from the game's, so every sampler with the same seed sees the same pairs.
    """

    tokens: jax.Array
    keep_probs: jax.Array
    key: jax.Array


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec.c: keep w with prob (sqrt(f/t) + 1) · t/f, f = count / total; sample = 0 keeps everything."""
    counts = np.asarray(counts, np.float64)
    if sample <= 0:
        return np.ones(len(counts), np.float32)
    threshold = sample * counts.sum()
    with np.errstate(divide="ignore"):  # a count of 0 gives inf, clipped to 1
        return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts).astype(np.float32)


def make_device_corpus(tokens: np.ndarray, counts: np.ndarray, *, sample: float, chunk: int, key: jax.Array) -> DeviceCorpus:
    padded = np.concatenate([np.asarray(tokens, np.int32), np.full(chunk, -1, np.int32)])
    return DeviceCorpus(jnp.asarray(padded), jnp.asarray(keep_probabilities(counts, sample)), key)


def steps_per_epoch(num_tokens: int, chunk: int) -> int:
    return -(-num_tokens // chunk)


LAYOUTS = ("skipgram", "windows", "cbow")


def make_batch(corpus: DeviceCorpus, step: jax.Array, *, chunk: int, window: int, epoch_steps: int,
               layout: str = "skipgram") -> Batch:
    """The examples of one step: the chunk of `chunk` raw tokens at (step mod epoch_steps) · chunk.

    Words are subsampled, the survivors packed to the front (a dropped word no longer separates
    its neighbours, as in word2vec), and each centre i gets a window b_i ~ U{1..window}.
    skipgram: query = centre, positives = its 2·window context slots.
    windows: the same pairs in word2vec's orientation, for shared negatives: queries = the context
      slots [2·window], positive = the centre, mask = which contexts are real (GameConfig.shared_negatives).
    cbow: query = the context bag [2·window], positive = the centre.
    Contexts do not cross chunk boundaries, as gensim's do not cross its 10,000-word jobs.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    k_keep, k_window = jax.random.split(jax.random.fold_in(corpus.key, step))
    start = (step % epoch_steps) * chunk
    raw = jax.lax.dynamic_slice(corpus.tokens, (start,), (chunk,))  # [C]
    keep = (raw >= 0) & (jax.random.uniform(k_keep, (chunk,)) < corpus.keep_probs[jnp.maximum(raw, 0)])
    rank = jnp.cumsum(keep) - 1
    kept = jnp.full((chunk,), -1, jnp.int32).at[jnp.where(keep, rank, chunk)].set(raw, mode="drop")  # [C]
    num_kept = keep.sum()

    offsets = jnp.concatenate([jnp.arange(-window, 0), jnp.arange(1, window + 1)])  # [2W]
    reach = jax.random.randint(k_window, (chunk, 1), 1, window + 1)  # [C, 1]
    position = jnp.arange(chunk)[:, None] + offsets[None, :]  # [C, 2W]
    is_centre = jnp.arange(chunk) < num_kept  # [C]
    in_window = (jnp.abs(offsets)[None, :] <= reach) & (position >= 0) & (position < num_kept) & is_centre[:, None]
    context = jnp.where(in_window, kept[jnp.clip(position, 0, chunk - 1)], -1)  # [C, 2W]
    if layout == "cbow":
        return Batch(queries=context, positives=kept[:, None], mask=in_window.any(-1, keepdims=True))
    if layout == "windows":
        return Batch(queries=context, positives=kept[:, None], mask=in_window)
    return Batch(queries=kept, positives=context, mask=in_window)
