"""Sparse term vectors of short texts (host-side numpy): tokens, a vocabulary, IDF, and padded ids + weights."""

import collections
import dataclasses
import math
import re
from collections.abc import Collection, Iterable, Sequence

import numpy as np

from ace_jax.errors import check, one_of

# unicode: a token is a maximal run of Unicode letters and digits after lower-casing; everything else
# (spaces, punctuation, apostrophes, hyphens, underscores) separates: "Depp's" -> "depp", "s".
# ascii: runs of [a-z0-9] after lower-casing (accented letters separate).
TOKENIZERS = {"unicode": re.compile(r"[^\W_]+"), "ascii": re.compile(r"[a-z0-9]+")}
TF = ("raw", "sublinear", "binary")
IDF = ("log", "smooth", "smooth1", "none")
# Function words: articles, pronouns, prepositions, conjunctions, auxiliaries and a few adverbs, written for
# this project. They carry little of a sentence's topic; whether dropping them helps is chosen on dev data.
STOP_WORDS = frozenset("""
a an the this that these those there here
i me my mine we us our ours you your yours he him his she her hers it its they them their theirs
one ones someone something somebody anyone anything
am is are was were be been being do does did doing done have has had having
will would shall should can could may might must
and or but nor so yet if then than because as while when where why how what which who whom whose
of in on at by for with without about against between into through during before after above below
to from up down out off over under again further once
all any both each few more most other some such no not only own same too very just also
s t d ll m re ve don doesn didn isn aren wasn weren hasn haven hadn won wouldn shouldn couldn can't
""".split())


@dataclasses.dataclass(frozen=True)
class Weighting:
    """How a text becomes term weights: w(t) = tf(n_t) · idf(t) over the tokens `tokenizer` finds.

    tf: raw (the count n), sublinear (1 + log n) or binary (1 for a word present).
    idf: log (log N/df), smooth (log (N+1)/(df+1)), smooth1 (the same, + 1: a word in every text keeps
      weight 1) or none (1), over the N texts the IDF is computed on.
    stop_words: drop STOP_WORDS from the vocabulary.
    """

    tf: str = "raw"
    idf: str = "log"
    tokenizer: str = "unicode"
    stop_words: bool = False

    def __post_init__(self):
        check([(self.tf in TF, "tf", self.tf, one_of(TF)), (self.idf in IDF, "idf", self.idf, one_of(IDF)),
               (self.tokenizer in TOKENIZERS, "tokenizer", self.tokenizer, one_of(TOKENIZERS))])

    def tf_weight(self, count: int) -> float:
        return {"raw": float(count), "sublinear": 1.0 + math.log(count), "binary": 1.0}[self.tf]


WEIGHTINGS = {"tfidf": Weighting(), "binary": Weighting(tf="binary", idf="none")}


def weighting_of(weighting: "str | Weighting") -> Weighting:
    if isinstance(weighting, Weighting):
        return weighting
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)} or a Weighting, not {weighting!r}")
    return WEIGHTINGS[weighting]


def tokenize(text: str, tokenizer: str = "unicode") -> list[str]:
    """Lower case, then the runs of letters and digits: "What movies, Johnny-Depp?" -> [what, movies, johnny, depp]."""
    return TOKENIZERS[tokenizer].findall(text.lower())


def document_frequencies(texts: Iterable[str], tokenizer: str = "unicode") -> tuple[collections.Counter, int]:
    """(word -> number of texts containing it, number of texts)."""
    df = collections.Counter()
    num_texts = 0
    for text in texts:
        df.update(set(tokenize(text, tokenizer)))
        num_texts += 1
    return df, num_texts


def build_vocab(texts: Iterable[str], min_df: int = 1, weighting: "str | Weighting" = "tfidf") -> dict[str, int]:
    """word -> id for the words in at least `min_df` texts (stop words dropped if the weighting says so), ids in
    order of document frequency (descending), ties by word, so the same texts always give the same ids."""
    weighting = weighting_of(weighting)
    df, _ = document_frequencies(texts, weighting.tokenizer)
    words = sorted((w for w, n in df.items() if n >= min_df and not (weighting.stop_words and w in STOP_WORDS)),
                   key=lambda w: (-df[w], w))
    return {w: i for i, w in enumerate(words)}


def idf_weights(texts: Sequence[str], vocab: dict[str, int], weighting: "str | Weighting" = "tfidf") -> np.ndarray:
    """idf(w) over the N texts -> [d] float32 (Weighting.idf; the default log(N / df(w))).

    A word in every text gets 0 under log; a vocabulary word absent from `texts` is counted as in one text,
    so the weights stay finite when the IDF texts differ from the vocabulary's.
    """
    weighting = weighting_of(weighting)
    df, num_texts = document_frequencies(texts, weighting.tokenizer)
    counts = np.ones(len(vocab))
    for word, i in vocab.items():
        counts[i] = max(df[word], 1)
    return idf_of(num_texts, counts, weighting.idf).astype(np.float32)


def idf_of(num_texts: int, df: np.ndarray, kind: str) -> np.ndarray:
    """Weighting.idf's formula for document frequencies df over N texts (log: df of 0 taken as 1)."""
    df = np.asarray(df, np.float64)
    return {"log": np.log(num_texts / np.maximum(df, 1)), "smooth": np.log((num_texts + 1) / (df + 1)),
            "smooth1": np.log((num_texts + 1) / (df + 1)) + 1.0, "none": np.ones_like(df)}[kind]


def unseen_idf(num_texts: int, weighting: "str | Weighting" = "tfidf") -> float:
    """The idf of a word in none of the N IDF texts (a df of 0)."""
    return float(idf_of(num_texts, np.zeros(1), weighting_of(weighting).idf)[0])


def with_unseen(texts: Sequence[str], vocab: dict[str, int], idf: np.ndarray, idf_unseen: float,
                weighting: "str | Weighting" = "tfidf",
                seen: Collection[str] = ()) -> tuple[dict[str, int], np.ndarray]:
    """The vocabulary and idf extended by the words of `texts` it lacks (stop words still dropped if the weighting
    says so), each at idf_unseen, with ids after the vocabulary's in sorted order: (vocab, idf [d + new]).
    seen: words the IDF texts do have, left out (a word below min_df is rare, not unseen)."""
    weighting = weighting_of(weighting)
    new = sorted({w for text in texts for w in tokenize(text, weighting.tokenizer)
                  if w not in vocab and w not in seen and not (weighting.stop_words and w in STOP_WORDS)})
    extended = {**vocab, **{w: len(vocab) + i for i, w in enumerate(new)}}
    return extended, np.concatenate([np.asarray(idf, np.float32), np.full(len(new), idf_unseen, np.float32)])


def featurize(
    texts: Sequence[str],
    vocab: dict[str, int],
    idf: np.ndarray | None,
    weighting: "str | Weighting" = "tfidf",
    max_terms: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Term vectors as padded ids and weights, never a dense [N, d] matrix.

    Args:
      idf: [d] from `idf_weights`; unused (may be None) when the weighting has no idf.
      weighting: "tfidf" (count × log idf), "binary" (1 for each distinct word present), or a Weighting.
      max_terms: keep each text's T largest weights (ties by id); default T = the most distinct
        vocabulary words of any text (at least 1).
    Returns:
      ids [N, T] int32, −1 padding, each text's terms by descending weight; weights [N, T] float32,
      0 at padding. Words outside the vocabulary are dropped; a text with none is all padding.
    """
    weighting = weighting_of(weighting)
    if weighting.idf != "none" and idf is None:
        raise ValueError("an idf weighting needs the idf weights")
    idf = np.ones(len(vocab), np.float32) if weighting.idf == "none" else idf
    rows = []
    for text in texts:
        counts = collections.Counter(vocab[w] for w in tokenize(text, weighting.tokenizer) if w in vocab)
        terms = [(i, weighting.tf_weight(n) * float(idf[i])) for i, n in counts.items()]
        rows.append(sorted(terms, key=lambda t: (-t[1], t[0]))[:max_terms])
    width = max_terms if max_terms is not None else max([len(r) for r in rows] + [1])
    ids = np.full((len(rows), width), -1, np.int32)
    weights = np.zeros((len(rows), width), np.float32)
    for n, row in enumerate(rows):
        if row:
            ids[n, : len(row)], weights[n, : len(row)] = zip(*row)
    return ids, weights
