"""Known positives: for each word, the words the corpus pairs it with well above chance, to be treated as false
negatives of that word wherever they are drawn (GameConfig's window rule sees only the step's own window).

The hard negatives a generator finds are largely true contexts ("computer" -> science, graphics; results/
word_similarity-negatives.md). A pair (x, y) is a known positive when y falls within `window` words of x at least
`min_pairs` times and its PMI, log(c(x, y) N / (c(x) c(y))) over the window's pair counts, is at least `min_pmi`;
each word keeps its `k` most frequent such partners (the ones a sampler meets most).
"""

import numpy as np
import scipy.sparse


def pair_counts(tokens: np.ndarray, vocab_size: int, window: int) -> scipy.sparse.csr_matrix:
    """c(x, y): how often y falls within `window` words of x, either side (symmetric) -> [V, V] CSR, int64."""
    tokens = np.asarray(tokens, np.int64)
    counts = scipy.sparse.csr_matrix((vocab_size, vocab_size), dtype=np.int64)
    for offset in range(1, window + 1):
        left, right = tokens[:-offset], tokens[offset:]
        rows, cols = np.concatenate([left, right]), np.concatenate([right, left])
        counts = counts + scipy.sparse.csr_matrix((np.ones(len(rows), np.int64), (rows, cols)),
                                                  shape=(vocab_size, vocab_size))
    return counts


def known_positives(tokens: np.ndarray, vocab_size: int, *, window: int, k: int, min_pmi: float = 1.0,
                    min_pairs: int = 5) -> np.ndarray:
    """[V, k] int32: each word's up to k partners with at least `min_pairs` co-occurrences and PMI >= min_pmi,
    the most frequent first (ties: the lower id), −1 padding."""
    counts = pair_counts(tokens, vocab_size, window).tocoo()
    rows, cols, c = counts.row, counts.col, counts.data.astype(np.float64)
    marginal = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)  # c(x): pairs with x on either side
    pmi = np.log(c) + np.log(c.sum()) - np.log(marginal[rows]) - np.log(marginal[cols])
    chosen = (c >= min_pairs) & (pmi >= min_pmi)
    rows, cols, c = rows[chosen], cols[chosen], c[chosen]
    order = np.lexsort((cols, -c, rows))  # by row, then most frequent, then id
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(vocab_size))
    rank = np.arange(len(rows)) - starts[rows]
    table = np.full((vocab_size, k), -1, np.int32)
    kept = rank < k
    table[rows[kept], rank[kept]] = cols[kept]
    return table
