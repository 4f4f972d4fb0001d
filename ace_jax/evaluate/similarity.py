"""Word-similarity (Spearman ρ) and word-analogy (3CosAdd) evaluation of an embedding matrix."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from ace_jax.errors import AceJaxError

# Registry names of the word-similarity sets (ace_jax.data.registry resolves them to files).
SIMILARITY_SETS: tuple[str, ...] = (
    "ws353", "ws353-sim", "ws353-rel", "rw", "simlex999",
    "men", "mturk287", "mturk771", "rg65", "simverb3500",
)
# Spelled out rather than aliased so that adding a set above does not change default reports.
DEFAULT_SETS: tuple[str, ...] = (
    "ws353", "ws353-sim", "ws353-rel", "rw", "simlex999",
    "men", "mturk287", "mturk771", "rg65", "simverb3500",
)
# 1024 questions × 30k words is a 123 MB float32 score block: large enough for BLAS, small in memory.
_ANALOGY_BATCH = 1024
# Squared norms below this count as zero vectors, whose cosine with anything is 0 (as in gensim).
_MIN_SQUARED_NORM = 1e-24


def read_similarity_pairs(path: str | os.PathLike) -> list[tuple[str, str, float]]:
    """Read `word1 word2 score` lines (tab- or space-separated), skipping blank and `#` lines."""
    pairs = []
    for line_no, line in enumerate(_read_lines(path, "similarity file"), start=1):
        line = line.strip()  # also drops the \r of CRLF files (MTurk-771, SimVerb-3500, WS-353-ALL)
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        try:
            w1, w2, score = fields
            pairs.append((w1, w2, float(score)))
        except ValueError:
            raise AceJaxError(f"{path}: line {line_no}: expected 'word1 word2 score', got {line!r}") from None
    return pairs


def evaluate_similarity(
    vectors: np.ndarray,
    words: Sequence[str],
    pairs: Sequence[tuple[str, str, float]],
    *,
    lowercase: bool = True,
) -> dict:
    """Spearman ρ between gold scores and cosines over the pairs whose two words are known.

    Args:
      vectors: [V, d] embedding matrix, row i for `words[i]`; never modified.
      words: the V words; when one appears twice, the first (most frequent) row is used.
      pairs: `(word1, word2, gold score)` triples, e.g. from `read_similarity_pairs`.
      lowercase: match case-insensitively (the dataset words and the vocabulary are both lowercased).

    Returns:
      `{"spearman": ρ (nan under 2 pairs), "pairs": pairs used, "oov": pairs with an unknown word}`,
      the same ρ as gensim's `evaluate_word_pairs(..., dummy4unknown=False)`.
    """
    vectors = _check_vocabulary(vectors, words)
    index = _index_words(words, lowercase)
    rows_a, rows_b, gold = [], [], []
    for w1, w2, score in pairs:
        i, j = index.get(_key(w1, lowercase)), index.get(_key(w2, lowercase))
        if i is not None and j is not None:
            rows_a.append(i)
            rows_b.append(j)
            gold.append(score)
    oov = len(pairs) - len(gold)
    if len(gold) < 2:
        return {"spearman": math.nan, "pairs": len(gold), "oov": oov}
    a = vectors[rows_a].astype(np.float64)  # [P, d], a copy: fancy indexing never aliases `vectors`
    b = vectors[rows_b].astype(np.float64)  # [P, d]
    squared_norms_a = np.maximum((a * a).sum(1), _MIN_SQUARED_NORM)  # [P]
    squared_norms_b = np.maximum((b * b).sum(1), _MIN_SQUARED_NORM)  # [P]
    cosines = (a * b).sum(1) / np.sqrt(squared_norms_a * squared_norms_b)  # [P]
    with warnings.catch_warnings():
        # Constant scores give ρ = nan, which is the answer; scipy's warning adds nothing.
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho = stats.spearmanr(gold, cosines).statistic
    return {"spearman": float(rho), "pairs": len(gold), "oov": oov}


def evaluate_analogy(
    vectors: np.ndarray,
    words: Sequence[str],
    questions_path: str | os.PathLike,
    *,
    restrict_vocab: int = 30000,
    lowercase: bool = True,
) -> dict:
    """Accuracy of 3CosAdd on `a b c d` questions (a:b :: c:d), as gensim's `evaluate_word_analogies`.

    Only the first `restrict_vocab` rows (the most frequent words) are used, both to answer and as
    candidates; a question with a word outside them is skipped. The answer is the argmax over those
    rows, bar the three question words, of cos(x, b) − cos(x, a) + cos(x, c) (Mikolov et al. 2013).

    Returns:
      `{"accuracy", "questions": questions answered, "total": questions in the file, "semantic",
      "syntactic"}`; a section is syntactic when its name starts with `gram`. An accuracy over no
      questions is nan.
    """
    vectors = _check_vocabulary(vectors, words)
    if restrict_vocab < 1:
        raise AceJaxError(f"restrict_vocab must be at least 1, got {restrict_vocab}")
    questions = _read_analogy_questions(questions_path)
    kept_words = list(words[:restrict_vocab])
    index = _index_words(kept_words, lowercase)
    # canonical[i]: the row that answers for word i; differs from i only for a later case variant.
    canonical = np.array([index[_key(w, lowercase)] for w in kept_words], dtype=np.int64)  # [n]
    variants = np.flatnonzero(canonical != np.arange(len(kept_words)))  # [M]
    answerable, syntactic = [], []
    for is_syntactic, quad in questions:
        rows = [index.get(_key(w, lowercase)) for w in quad]
        if None not in rows:
            answerable.append(rows)
            syntactic.append(is_syntactic)
    quads = np.array(answerable, dtype=np.int64).reshape(-1, 4)  # [Q, 4]
    syntactic = np.array(syntactic, dtype=bool)  # [Q]
    normed = _normalize_rows(vectors[: len(kept_words)])  # [n, d]
    correct = np.zeros(len(quads), dtype=bool)  # [Q]
    for start in range(0, len(quads), _ANALOGY_BATCH):
        a, b, c, expected = quads[start : start + _ANALOGY_BATCH].T  # each [B]
        scores = (normed[b] - normed[a] + normed[c]) @ normed.T  # [B, n]
        batch = np.arange(len(a))
        for question_word in (a, b, c):
            scores[batch, question_word] = -np.inf
        if variants.size:
            # gensim compares case-folded words, so a case variant of a question word is excluded too.
            owner = canonical[variants][None, :]  # [1, M]
            excluded = (owner == a[:, None]) | (owner == b[:, None]) | (owner == c[:, None])  # [B, M]
            scores[:, variants] = np.where(excluded, -np.inf, scores[:, variants])
        correct[start : start + len(a)] = canonical[scores.argmax(1)] == expected
    return {
        "accuracy": _mean_or_nan(correct),
        "questions": len(quads),
        "total": len(questions),
        "semantic": _mean_or_nan(correct[~syntactic]),
        "syntactic": _mean_or_nan(correct[syntactic]),
    }


def nearest_neighbors(
    vectors: np.ndarray, words: Sequence[str], query: str, k: int = 10
) -> list[tuple[str, float]]:
    """The `k` words with the highest cosine to `query` (itself excluded), best first."""
    vectors = _check_vocabulary(vectors, words)
    try:
        row = list(words).index(query)
    except ValueError:
        raise AceJaxError(f"unknown word {query!r}") from None
    normed = _normalize_rows(vectors)  # [V, d]
    cosines = normed @ normed[row]  # [V]
    cosines[row] = -np.inf
    best = np.argsort(-cosines, kind="stable")[: max(0, min(k, len(words) - 1))]
    return [(words[i], float(cosines[i])) for i in best]


def evaluate_all(
    vectors: np.ndarray, words: Sequence[str], sets: Sequence[str] = DEFAULT_SETS, *, analogy: bool = True
) -> dict:
    """Evaluate on the named similarity sets and, if `analogy`, the Google analogy questions.

    Returns `{set: {"spearman", "pairs", "oov"}, ..., "analogy": evaluate_analogy's dict}`.
    """
    sets = (sets,) if isinstance(sets, str) else tuple(sets)
    unknown = [name for name in sets if name not in SIMILARITY_SETS]
    if unknown:
        raise AceJaxError(f"unknown similarity set {unknown[0]!r}; valid sets: {', '.join(SIMILARITY_SETS)}")
    # Imported here so that evaluating in-memory pairs never needs the dataset registry.
    from ace_jax.data.registry import resolve

    results = {}
    for name in sets:
        results[name] = evaluate_similarity(vectors, words, read_similarity_pairs(resolve(name)))
    if analogy:
        results["analogy"] = evaluate_analogy(vectors, words, resolve("analogy"))
    return results


def _read_lines(path: str | os.PathLike, what: str) -> list[str]:
    try:
        # split("\n"), not splitlines(): the latter also breaks at \x85 and \u2028, shifting line numbers.
        return Path(path).read_text(encoding="utf-8", errors="replace").split("\n")
    except FileNotFoundError:
        raise AceJaxError(f"{what} not found: {path}") from None
    except OSError as e:
        raise AceJaxError(f"cannot read {what} {path}: {e.strerror}") from None


def _read_analogy_questions(path: str | os.PathLike) -> list[tuple[bool, tuple[str, str, str, str]]]:
    """`(is_syntactic, (a, b, c, d))` per question of a `: section`-headed analogy file."""
    questions = []
    section = None
    for line_no, line in enumerate(_read_lines(path, "analogy file"), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        if section is None:
            raise AceJaxError(f"{path}: line {line_no}: question before the first ': section' header")
        quad = line.split()
        if len(quad) != 4:
            raise AceJaxError(f"{path}: line {line_no}: expected 4 words 'a b c d', got {line!r}")
        questions.append((section.startswith("gram"), tuple(quad)))
    return questions


def _check_vocabulary(vectors: np.ndarray, words: Sequence[str]) -> np.ndarray:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise AceJaxError(f"expected a [{len(words)}, d] matrix for {len(words)} words, got {vectors.shape}")
    return vectors


def _key(word: str, lowercase: bool) -> str:
    return word.lower() if lowercase else word


def _index_words(words: Sequence[str], lowercase: bool) -> dict[str, int]:
    """Word → first row holding it; rows are ordered by frequency, so the most frequent form wins."""
    index: dict[str, int] = {}
    for i, word in enumerate(words):
        index.setdefault(_key(word, lowercase), i)
    return index


def _normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """A float32 copy of `matrix` with unit rows (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    squared_norms = np.maximum(np.einsum("ij,ij->i", matrix, matrix), _MIN_SQUARED_NORM)  # [V]
    return matrix / np.sqrt(squared_norms)[:, None]


def _mean_or_nan(flags: np.ndarray) -> float:
    return float(flags.mean()) if flags.size else math.nan
