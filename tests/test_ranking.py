"""Filtered ranking against a brute-force numpy evaluator on small graphs, ties included."""

import functools

import jax.numpy as jnp
import numpy as np
import pytest

from ace_jax.evaluate import ranking

E, R = 7, 2


def table_scores(params, given, relations, side):
    """A score for every (head, relation, tail): params [E, R, E]."""
    return params[given, relations, :] if side == "tail" else params[:, relations, given].T


def brute_force(scores: np.ndarray, triples: np.ndarray, known: set) -> dict:
    out = {}
    for side in ("tail", "head"):
        low, high = [], []
        for h, r, t in triples:
            row = scores[h, r, :] if side == "tail" else scores[:, r, t]
            target = t if side == "tail" else h
            others = [e for e in range(E) if e != target
                      and ((h, r, e) if side == "tail" else (e, r, t)) not in known]
            low.append(1 + sum(row[e] > row[target] for e in others))
            high.append(low[-1] + sum(row[e] == row[target] for e in others))
        out[side] = (np.array(low) + np.array(high)) / 2
        out[side + "_optimistic"], out[side + "_pessimistic"] = np.array(low), np.array(high)
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("batch", [3, 64])
def test_ranks_match_a_brute_force_evaluator_with_ties(seed, batch):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 3, (E, R, E)).astype(np.float32)  # three values over 7 entities: ties everywhere
    known = {tuple(int(x) for x in t) for t in np.stack([rng.integers(0, E, 30), rng.integers(0, R, 30),
                                                         rng.integers(0, E, 30)], 1)}
    triples = np.array(sorted(known)[::2], np.int32)  # a "test split" inside the known triples
    index = ranking.FilterIndex.build(np.array(sorted(known)), R)
    got = ranking.filtered_ranks(table_scores, jnp.asarray(scores), triples, index, batch=batch)
    expected = brute_force(scores, triples, known)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    metrics = ranking.evaluate(table_scores, jnp.asarray(scores), triples, index, batch=batch)
    both = np.concatenate([expected["tail"], expected["head"]])
    assert metrics["mrr"] == pytest.approx(np.mean(1 / both)) and metrics["mr"] == pytest.approx(np.mean(both))
    assert metrics["hits@3"] == pytest.approx(np.mean(both <= 3)) and metrics["triples"] == len(triples)


def test_a_constant_scorer_is_ranked_in_the_middle_not_first():
    # One known triple (0, 0, 1): each side ranks its target among 7 equal scores, the other 6 all unfiltered.
    index = ranking.FilterIndex.build(np.array([[0, 0, 1]]), R)
    ranks = ranking.filtered_ranks(table_scores, jnp.zeros((E, R, E)), np.array([[0, 0, 1]]), index)
    np.testing.assert_array_equal([ranks["tail"], ranks["head"]], [[4.0], [4.0]])  # (1 + 7) / 2
    nan = ranking.filtered_ranks(table_scores, jnp.full((E, R, E), jnp.nan), np.array([[0, 0, 1]]), index)
    np.testing.assert_array_equal(nan["tail"], [4.0])  # NaN scores tie at -inf: no better than a constant


def test_other_true_answers_are_left_out_and_the_filter_width_is_a_power_of_two():
    known = np.array([[0, 0, 1], [0, 0, 2], [0, 0, 3], [5, 1, 1]])
    index = ranking.FilterIndex.build(known, R)
    answers = index.answers(np.array([0, 5, 6]), np.array([0, 1, 0]), "tail")
    assert answers.shape == (3, 4)
    np.testing.assert_array_equal(answers, [[1, 2, 3, -1], [1, -1, -1, -1], [-1, -1, -1, -1]])
    np.testing.assert_array_equal(index.answers(np.array([1]), np.array([0]), "head"), [[0]])
    scores = np.zeros((E, R, E), np.float32)
    scores[0, 0] = [0, 1, 5, 4, 3, 2, 0]  # tail 1 scores 1: below 2, 3 (filtered), 4, 5 (not): rank 3
    ranks = ranking.filtered_ranks(table_scores, jnp.asarray(scores), known[:1], index)
    assert ranks["tail_optimistic"][0] == 3 and ranks["tail_pessimistic"][0] == 3


def test_metrics_of_realistic_ranks_by_hand():
    metrics = ranking.metrics_of(np.array([1.0, 2.0, 10.5, 4.0]))
    assert metrics["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 10.5 + 1 / 4) / 4)
    assert metrics["mr"] == pytest.approx(17.5 / 4)
    assert (metrics["hits@1"], metrics["hits@3"], metrics["hits@10"]) == (0.25, 0.5, 0.75)  # 10.5 is not in the top 10


def test_the_ranking_compiles_once_per_side_and_width():
    scores = jnp.asarray(np.random.default_rng(0).normal(size=(E, R, E)), jnp.float32)
    known = np.array([[0, 0, 1], [1, 1, 2], [2, 0, 3], [3, 1, 4], [4, 0, 5]])
    index = ranking.FilterIndex.build(known, R)
    calls = []

    def counting(params, given, relations, side):
        calls.append(side)
        return table_scores(params, given, relations, side)

    fn = functools.partial(counting)
    for _ in range(2):
        ranking.filtered_ranks(fn, scores, known, index, batch=2)  # three batches a side, the last one padded
    assert sorted(calls) == ["head", "tail"]
