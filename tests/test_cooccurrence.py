"""Known positives from a corpus's window counts, against hand-counted pairs and PMI."""

import numpy as np
import pytest

from ace_jax import cooccurrence

# Tokens 0 1 0 1 2 with window 1: the pairs either way are (0,1) ×3, (1,0) ×3, (1,2) ×1, (2,1) ×1; N = 8,
# c(0) = 3, c(1) = 4, c(2) = 1; PMI(0, 1) = log(3·8 / (3·4)) = log 2, PMI(1, 2) = log(1·8 / (4·1)) = log 2.
TOKENS = np.array([0, 1, 0, 1, 2])


def test_pair_counts_by_hand():
    counts = cooccurrence.pair_counts(TOKENS, 3, window=1).toarray()
    np.testing.assert_array_equal(counts, [[0, 3, 0], [3, 0, 1], [0, 1, 0]])
    # Window 2 adds the offset-2 pairs (0,0), (1,1), (0,2), each way.
    counts = cooccurrence.pair_counts(TOKENS, 3, window=2).toarray()
    np.testing.assert_array_equal(counts, [[2, 3, 1], [3, 2, 1], [1, 1, 0]])


@pytest.mark.parametrize("min_pairs,min_pmi,expected", [
    (1, 0.5, [[1, -1], [0, 2], [1, -1]]),  # both pairs at log 2 ≈ 0.69; word 1's most frequent partner first
    (2, 0.5, [[1, -1], [0, -1], [-1, -1]]),  # (1, 2) has one pair
    (1, 0.7, [[-1, -1], [-1, -1], [-1, -1]]),  # log 2 < 0.7
])
def test_known_positives_by_hand(min_pairs, min_pmi, expected):
    table = cooccurrence.known_positives(TOKENS, 3, window=1, k=2, min_pmi=min_pmi, min_pairs=min_pairs)
    np.testing.assert_array_equal(table, expected)
    assert table.dtype == np.int32


def test_known_positives_keep_the_k_most_frequent_in_id_order_on_ties():
    # Word 0 sits beside 1 four times, beside 2 and 3 once each: 2 wins the tie with 3 by its lower id.
    tokens = np.array([1, 0, 1, 0, 1, 4, 2, 0, 3])
    table = cooccurrence.known_positives(tokens, 5, window=1, k=2, min_pmi=-10.0, min_pairs=1)
    np.testing.assert_array_equal(table[0], [1, 2])
