"""Sparse term vectors of short texts (host-side numpy): tokens, a vocabulary, IDF, and padded ids + weights."""

import collections
import re
from collections.abc import Iterable, Sequence

import numpy as np

# A token is a maximal run of Unicode letters and digits after lower-casing; everything else
# (spaces, punctuation, apostrophes, hyphens, underscores) separates: "Depp's" -> "depp", "s".
TOKEN = re.compile(r"[^\W_]+")
WEIGHTINGS = ("tfidf", "binary")


def tokenize(text: str) -> list[str]:
    """Lower case, then the runs of letters and digits: "What movies, Johnny-Depp?" -> [what, movies, johnny, depp]."""
    return TOKEN.findall(text.lower())


def document_frequencies(texts: Iterable[str]) -> tuple[collections.Counter, int]:
    """(word -> number of texts containing it, number of texts)."""
    df = collections.Counter()
    num_texts = 0
    for text in texts:
        df.update(set(tokenize(text)))
        num_texts += 1
    return df, num_texts


def build_vocab(texts: Iterable[str], min_df: int = 1) -> dict[str, int]:
    """word -> id for the words in at least `min_df` texts, ids in order of document frequency
    (descending), ties by word, so the same texts always give the same ids."""
    df, _ = document_frequencies(texts)
    words = sorted((w for w, n in df.items() if n >= min_df), key=lambda w: (-df[w], w))
    return {w: i for i, w in enumerate(words)}


def idf_weights(texts: Sequence[str], vocab: dict[str, int]) -> np.ndarray:
    """idf(w) = log(N / df(w)) over the N texts -> [d] float32.

    A word in every text gets 0; a vocabulary word absent from `texts` is counted as in one text
    (log N), so the weights stay finite when the IDF texts differ from the vocabulary's.
    """
    df, num_texts = document_frequencies(texts)
    counts = np.ones(len(vocab))
    for word, i in vocab.items():
        counts[i] = max(df[word], 1)
    return np.log(num_texts / counts).astype(np.float32)


def featurize(
    texts: Sequence[str],
    vocab: dict[str, int],
    idf: np.ndarray | None,
    weighting: str = "tfidf",
    max_terms: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Term vectors as padded ids and weights, never a dense [N, d] matrix.

    Args:
      idf: [d] from `idf_weights`; unused (may be None) for binary weights.
      weighting: tfidf (term count × idf) or binary (1 for each distinct word present).
      max_terms: keep each text's T largest weights (ties by id); default T = the most distinct
        vocabulary words of any text (at least 1).
    Returns:
      ids [N, T] int32, −1 padding, each text's terms by descending weight; weights [N, T] float32,
      0 at padding. Words outside the vocabulary are dropped; a text with none is all padding.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, not {weighting!r}")
    if weighting == "tfidf" and idf is None:
        raise ValueError("tfidf weighting needs the idf weights")
    rows = []
    for text in texts:
        counts = collections.Counter(vocab[w] for w in tokenize(text) if w in vocab)
        terms = [(i, 1.0 if weighting == "binary" else n * float(idf[i])) for i, n in counts.items()]
        rows.append(sorted(terms, key=lambda t: (-t[1], t[0]))[:max_terms])
    width = max_terms if max_terms is not None else max([len(r) for r in rows] + [1])
    ids = np.full((len(rows), width), -1, np.int32)
    weights = np.zeros((len(rows), width), np.float32)
    for n, row in enumerate(rows):
        if row:
            ids[n, : len(row)], weights[n, : len(row)] = zip(*row)
    return ids, weights
