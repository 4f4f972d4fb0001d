"""Knowledge-graph scorers by hand, their gradients, and scoring against every entity as a loop does."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from ace_jax.errors import SettingError
from ace_jax.kg_config import TABLES
from ace_jax.scorers.kg import KgScorer


def rows(**tables):
    return {name: jnp.array(value, jnp.float32) for name, value in tables.items()}


@pytest.mark.parametrize("norm, expected", [(1, -3.0), (2, -math.sqrt(5.0))])
def test_transe_is_minus_the_distance_of_h_plus_r_from_t(norm, expected):
    # h + r − t = [1, 0] + [0, 2] − [0, 0] = [1, 2]
    score = KgScorer("transe", norm).score(rows(entity=[1, 0]), rows(relation=[0, 2]), rows(entity=[0, 0]))
    assert float(score) == pytest.approx(expected, rel=1e-6)


def test_transd_projects_each_entity_by_its_own_and_the_relations_vectors():
    # h⊥ = h + (h_p · h) r_p = [1, 0] + 2 · [0, 1] = [1, 2]; t⊥ = [0, 1] + (t_p · t = 0) r_p = [0, 1]
    # h⊥ + r − t⊥ = [1, 2] + [1, 0] − [0, 1] = [2, 1]: L1 3, L2 √5
    h, t = rows(entity=[1, 0], entity_proj=[2, 5]), rows(entity=[0, 1], entity_proj=[3, 0])
    r = rows(relation=[1, 0], relation_proj=[0, 1])
    assert float(KgScorer("transd", 1).score(h, r, t)) == pytest.approx(-3.0)
    assert float(KgScorer("transd", 2).score(h, r, t)) == pytest.approx(-math.sqrt(5.0), rel=1e-6)


def test_distmult_and_complex_by_hand():
    assert float(KgScorer("distmult").score(rows(entity=[1, 2]), rows(relation=[3, 4]), rows(entity=[5, 6]))) == 63
    # One complex coordinate: h = 1 + 2i, r = 3 − i, t = 2 + i. h r conj(t) = (5 + 5i)(2 − i) = 15 + 5i: Re 15.
    h, r, t = rows(entity=[1], entity_im=[2]), rows(relation=[3], relation_im=[-1]), rows(entity=[2], entity_im=[1])
    assert float(KgScorer("complex").score(h, r, t)) == pytest.approx(15.0)
    # Not symmetric, as DistMult is: swapping h and t gives Re((2 + i)(3 − i)(1 − 2i)) = Re((7 + i)(1 − 2i)) = 9.
    assert float(KgScorer("complex").score(t, r, h)) == pytest.approx(9.0)


def test_order_energy_is_the_squared_violation_of_the_hypernym_below_the_hyponym():
    # h (hyponym) = [1, 0, 2], t (hypernym) = [2, 0, 1]: max(0, t − h) = [1, 0, 0], E = 1; as hypernym of t: [0, 0, 1]
    h, t = rows(entity=[1, 0, 2]), rows(entity=[2, 0, 1])
    scorer = KgScorer("order")
    assert float(scorer.score(h, {}, t)) == -1.0
    assert float(scorer.score(h, {}, rows(entity=[0.5, 0, 2]))) == 0.0  # below h everywhere: no violation
    assert float(scorer.score(rows(entity=[0, 0, 0]), {}, rows(entity=[3, 1, 0]))) == -10.0
    params = scorer.init(jax.random.key(0), 50, 1, 8)
    assert float(params["entity"].min()) == 0.0 and 0.3 < float((params["entity"] == 0).mean()) < 0.7
    np.testing.assert_array_equal(scorer.constrain({"entity": jnp.array([[-1.0, 2.0]])})["entity"], [[0.0, 2.0]])


def test_rotate_rotates_the_head_by_the_phase():
    # h = (1, 0) rotated by π/2 is (0, 1): at t = (0, 1) the distance is 0; at t = (0, −1), 2.
    h, r = rows(entity=[1.0], entity_im=[0.0]), rows(relation_phase=[math.pi / 2])
    scorer = KgScorer("rotate")
    assert float(scorer.score(h, r, rows(entity=[0.0], entity_im=[1.0]))) == pytest.approx(0.0, abs=1e-5)
    assert float(scorer.score(h, r, rows(entity=[0.0], entity_im=[-1.0]))) == pytest.approx(-2.0, abs=1e-5)


@pytest.mark.parametrize("model", TABLES)
@pytest.mark.parametrize("side", ["tail", "head"])
def test_score_all_is_the_triple_by_triple_score(model, side):
    scorer = KgScorer(model, 2 if model == "transd" else 1)
    params = scorer.init(jax.random.key(0), 6, 3, 4)
    given, relations = jnp.array([0, 5, 2]), jnp.array([1, 0, 2])
    got = scorer.score_all(params, given, relations, side)
    assert got.shape == (3, 6)
    for i in range(3):
        for e in range(6):
            h, t = (given[i], e) if side == "tail" else (e, given[i])
            one = scorer.score(scorer.entity_rows(params, h), scorer.relation_rows(params, relations[i]),
                               scorer.entity_rows(params, t))
            np.testing.assert_allclose(got[i, e], one, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", TABLES)
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-triple"])
def test_score_corruptions_is_the_triple_by_triple_score_by_side(model, shared):
    scorer = KgScorer(model, 2 if model == "transd" else 1)
    params = scorer.init(jax.random.key(0), 6, 3, 4)
    params = {k: v + 0.3 * jax.random.normal(jax.random.key(1), v.shape) for k, v in params.items()}  # off init
    kept, relations, corrupt_head = jnp.array([0, 5, 2, 4]), jnp.array([1, 0, 2, 2]), jnp.array([1, 0, 0, 1], bool)
    cands = jnp.array([[3, 1, 5]]) if shared else jnp.array([[3, 1, 5], [0, 0, 2], [4, 5, 1], [2, 3, 3]])
    got = scorer.score_corruptions({k: v[:, None] for k, v in scorer.entity_rows(params, kept).items()},
                                   {k: v[:, None] for k, v in scorer.relation_rows(params, relations).items()},
                                   scorer.entity_rows(params, cands), corrupt_head)
    assert got.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            y = int(cands[0 if shared else i, j])
            h, t = (y, kept[i]) if corrupt_head[i] else (kept[i], y)
            one = scorer.score(scorer.entity_rows(params, h), scorer.relation_rows(params, relations[i]),
                               scorer.entity_rows(params, t))
            np.testing.assert_allclose(got[i, j], one, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", TABLES)
def test_gradients_match_finite_differences(model):
    scorer = KgScorer(model, 2)
    params = scorer.init(jax.random.key(1), 4, 2, 3)
    if model == "order":  # rows off the kinks of max(0, ·): no coordinate of t − h at 0
        params = {"entity": jnp.array([[0.1, 2.0, 0.7], [1.3, 0.2, 0.5], [0.6, 1.1, 2.4], [1.9, 0.4, 1.5]])}

    def total(p):
        h, r, t = jnp.array([0, 1, 2]), jnp.array([0, 1, 1]), jnp.array([3, 0, 1])
        return scorer.score(scorer.entity_rows(p, h), scorer.relation_rows(p, r), scorer.entity_rows(p, t)).sum()

    check_grads(total, (params,), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)


def test_init_tables_and_the_unit_norm_constraint():
    scorer = KgScorer("transd")
    params = scorer.init(jax.random.key(2), 10, 3, 8)
    assert {k: v.shape for k, v in params.items()} == {"entity": (10, 8), "entity_proj": (10, 8),
                                                       "relation": (3, 8), "relation_proj": (3, 8)}
    np.testing.assert_allclose(jnp.linalg.norm(params["relation"], axis=-1), 1.0, rtol=1e-5)
    grown = {**params, "entity": params["entity"].at[0].set(3.0).at[1].set(0.01)}
    kept = scorer.constrain(grown)["entity"]
    assert float(jnp.linalg.norm(kept[0])) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_array_equal(kept[1], grown["entity"][1])  # a row inside the ball is left alone
    assert KgScorer("distmult").constrain(grown) is grown


def test_transes_paper_norm_puts_every_entity_row_on_the_unit_sphere():
    scorer = KgScorer("transe", 1, sphere=True)
    rows = jnp.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    np.testing.assert_allclose(scorer.project(rows), [[0.6, 0.8], [0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(KgScorer("transe").project(rows), [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]], rtol=1e-6)


def test_a_bad_model_or_norm_is_one_setting_error():
    with pytest.raises(SettingError, match="model must be one of"):
        KgScorer("transx")
    with pytest.raises(SettingError, match="norm must be 1 or 2"):
        KgScorer("transe", 3)
    with pytest.raises(SettingError, match="sphere keeps TransE's entities at norm 1"):
        KgScorer("transd", 1, sphere=True)
