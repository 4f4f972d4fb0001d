"""Tests of the S2Net family (ace_jax.families.s2net) in the game: losses by hand per sampler, the false-negative
rule, jit, determinism, and a toy run."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ace_jax import game, text_features
from ace_jax.families import s2net as s2net_family
from ace_jax.families.s2net import Batch, Candidates, PairBatch, S2NetConfig
from ace_jax.scorers import s2net

LR = 0.1
TX = optax.sgd(LR)
GEN_TX = optax.sgd(0.5)
# Rows of A are the projections of the one-term texts: t0 -> (1, 0), t1 -> (0, 1), t2 -> (1, 1), t3 -> (1, −1).
A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]], np.float32)
ROOT_HALF = math.sqrt(0.5)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def texts(*terms: int) -> tuple[jax.Array, jax.Array]:
    """One-term texts of weight 1, padded to T = 2: ids, weights [N, 2]."""
    ids = np.full((len(terms), 2), -1, np.int32)
    ids[:, 0] = terms
    return jnp.asarray(ids), jnp.asarray(ids >= 0, jnp.float32)


def make_batch(queries, positives, positive_index=None, query_index=None) -> PairBatch:
    n = len(queries)
    minus = jnp.full((n,), -1, jnp.int32)
    return PairBatch(*texts(*queries), *texts(*positives),
                     minus if positive_index is None else jnp.asarray(positive_index, jnp.int32),
                     minus if query_index is None else jnp.asarray(query_index, jnp.int32))


def make_state(config: S2NetConfig, seed: int = 0, params=None) -> game.GameState:
    params = {"A": jnp.asarray(A)} if params is None else params
    num_terms = params["A"].shape[0]
    gen = None
    if config.sampler == "ace":
        gen = s2net_family.init_generator(jax.random.key(seed + 1), num_terms, 2, scale=1.0)
    return game.create_state(jax.random.key(seed), params, TX, gen, GEN_TX if gen is not None else None)


def jitted_step(config: S2NetConfig):
    """step(state, pairs, candidates, gold=None), jitted once per config."""
    step = _jitted_step(config)
    return lambda state, pairs, candidates, gold=None: step(state, Batch(pairs, candidates, gold))


@functools.cache
def _jitted_step(config: S2NetConfig):
    return jax.jit(s2net_family.make_step(config))


def hand_loss(a, pairs_and_negs, gamma=10.0):
    """Mean over queries of Σ_negatives softplus(−γ(cos(q, p) − cos(q, n))), from one-term texts as rows of a."""
    def cos(i, j):
        u, v = a[i], a[j]
        return (u * v).sum() / jnp.sqrt((u * u).sum() * (v * v).sum())

    per_query = [sum(jax.nn.softplus(-gamma * (cos(q, p) - cos(q, n))) for n in negs) for q, p, negs in pairs_and_negs]
    return sum(per_query) / len(per_query)


def test_uniform_with_one_candidate_matches_hand_loss_and_sgd_update():
    # Every negative is the candidate t1. Query t0: cos(q, p) = cos((1,0), (1,1)) = √½, cos(q, n) = 0.
    # Query t3: cos((1,−1), (1,0)) = √½, cos((1,−1), (0,1)) = −√½.
    config = S2NetConfig(sampler="uniform", negatives=3)
    batch, cands = make_batch([0, 3], [2, 0]), Candidates(*texts(1))
    state, metrics = jitted_step(config)(make_state(config), batch, cands)
    expected = 3 * (softplus(-10 * ROOT_HALF) + softplus(-10 * 2 * ROOT_HALF)) / 2
    assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["false_negative_rate"]) == 0.0
    grad = jax.grad(hand_loss)(jnp.asarray(A), [(0, 2, [1, 1, 1]), (3, 0, [1, 1, 1])])
    np.testing.assert_allclose(state.params["A"], A - LR * grad, rtol=1e-5, atol=1e-7)
    assert int(state.step) == 1


def gold_preferences(better, worse, better_target=0.8, worse_target=0.2) -> s2net_family.Preferences:
    """One-term text pairs (i, j) as gold preferences: better[b] should score above worse[b]."""
    def gold(pairs, target):
        first, second = zip(*pairs)
        return s2net_family.GoldPairs(*texts(*first), *texts(*second), jnp.full((len(pairs),), target, jnp.float32))

    return s2net_family.Preferences(gold(better, better_target), gold(worse, worse_target))


@pytest.mark.parametrize("loss", ["logistic", "hinge", "mse"])
def test_gold_preferences_alone_by_hand_and_batch_ignored(loss):
    # Better pair (t0, t2): cos((1,0), (1,1)) = √½; worse pair (t0, t1): cos((1,0), (0,1)) = 0.
    config = S2NetConfig(sampler="none", loss=loss, margin=0.9)
    expected = {"logistic": softplus(-10 * ROOT_HALF), "hinge": 0.9 - ROOT_HALF,
                "mse": 0.5 * (0.8 - ROOT_HALF) ** 2 + 0.5 * 0.2**2}[loss]
    gold = gold_preferences([(0, 2)], [(0, 1)])
    state, metrics = jitted_step(config)(make_state(config), make_batch([0], [2]), Candidates(*texts(1)), gold)
    other = jitted_step(config)(make_state(config), make_batch([3], [1]), Candidates(*texts(2)), gold)[0]
    assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["gold_loss"]) == pytest.approx(expected, rel=1e-5)
    assert "mined_loss" not in metrics
    np.testing.assert_array_equal(state.params["A"], other.params["A"])
    with pytest.raises(ValueError, match="gold"):
        s2net_family.make_step(config)(make_state(config), Batch(make_batch([0], [2]), Candidates(*texts(1))))


def test_gold_and_mined_losses_add():
    # Gold as above; mined: query t0, positive t2, one candidate t1 (cos 0), K = 2.
    config = S2NetConfig(sampler="uniform", negatives=2)
    gold = gold_preferences([(0, 2), (0, 2)], [(0, 1), (0, 2)])  # the second has Δ = 0: softplus(0) = log 2
    _, metrics = jitted_step(config)(make_state(config), make_batch([0], [2]), Candidates(*texts(1)), gold)
    gold_expected = (softplus(-10 * ROOT_HALF) + math.log(2)) / 2
    assert float(metrics["gold_loss"]) == pytest.approx(gold_expected, rel=1e-5)
    assert float(metrics["mined_loss"]) == pytest.approx(2 * softplus(-10 * ROOT_HALF), rel=1e-5)
    assert float(metrics["loss"]) == pytest.approx(gold_expected + 2 * softplus(-10 * ROOT_HALF), rel=1e-5)


def test_mined_mse_is_positive_to_one_and_negatives_to_zero():
    # Query t0, positive t2 (cos √½), K = 3 copies of candidate t3: cos((1,0), (1,−1)) = √½.
    _, metrics = jitted_step(S2NetConfig(sampler="uniform", loss="mse", negatives=3))(
        make_state(S2NetConfig()), make_batch([0], [2]), Candidates(*texts(3)))
    expected = 0.5 * (1 - ROOT_HALF) ** 2 + 3 * 0.5 * 0.5
    assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("field", ["positive_index", "query_index"])
def test_false_negative_is_dropped_from_loss_and_penalised_as_reward(field):
    # The one candidate (t1) is query 0's own positive (or the query itself); query 1 keeps its negatives.
    # λ = 0: every slot comes from the generator, which has only t1 to pick.
    config = S2NetConfig(sampler="ace", negatives=2, lam=0.0, false_negative_penalty=0.7)
    batch = make_batch([1 if field == "query_index" else 0, 3], [1 if field == "positive_index" else 2, 0],
                       **{field: [0, -1]})
    _, metrics = jitted_step(config)(make_state(config), batch, Candidates(*texts(1)))
    kept = softplus(-10 * 2 * ROOT_HALF)  # query t3, positive t0, negative t1
    assert float(metrics["loss"]) == pytest.approx(2 * kept / 2, rel=1e-5)
    assert float(metrics["false_negative_rate"]) == 0.5
    assert float(metrics["reward"]) == pytest.approx((2 * -0.7 + 2 * kept) / 4, rel=1e-5)
    assert float(metrics["generated_fraction"]) == 1.0


def test_generator_never_proposes_the_query_or_its_positive():
    # Candidates t0, t1, t2; query row 0, positive row 1: the generator (λ = 0) can only pick row 2.
    config = S2NetConfig(sampler="ace", negatives=8, lam=0.0)
    batch = make_batch([0], [1], positive_index=[1], query_index=[0])
    state = make_state(config)
    logits = s2net_family.generator_logits(state.gen_params, batch, Candidates(*texts(0, 1, 2)))
    assert np.asarray(jax.nn.softmax(logits))[0].tolist() == [0.0, 0.0, 1.0]
    _, metrics = jitted_step(config)(state, batch, Candidates(*texts(0, 1, 2)))
    assert float(metrics["false_negative_rate"]) == 0.0


def test_in_batch_uses_exactly_the_other_positives():
    # B = 3 one-term pairs; K = 5 > B − 1 uses both others. The negatives are the other queries' positives,
    # read from the candidate set, where every positive is (positive_index).
    batch = make_batch([0, 3, 2], [2, 0, 1], positive_index=[0, 1, 2])
    cands = Candidates(*texts(2, 0, 1))
    expected = hand_loss(jnp.asarray(A), [(0, 2, [0, 1]), (3, 0, [2, 1]), (2, 1, [2, 0])])
    for k in (2, 5):
        _, metrics = jitted_step(S2NetConfig(sampler="in-batch", negatives=k))(
            make_state(S2NetConfig()), batch, cands)
        assert float(metrics["loss"]) == pytest.approx(float(expected), rel=1e-5)
    # Queries 0 and 1 share a positive (candidate 0, text t2): each drops the other's positive as a false negative.
    shared = make_batch([0, 3, 2], [2, 2, 1], positive_index=[0, 0, 1])
    _, metrics = jitted_step(S2NetConfig(sampler="in-batch", negatives=2))(make_state(S2NetConfig()), shared,
                                                                            Candidates(*texts(2, 1)))
    expected = hand_loss(jnp.asarray(A), [(0, 2, [1]), (3, 2, [1]), (2, 1, [2, 2])])
    assert float(metrics["loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(metrics["false_negative_rate"]) == pytest.approx(2 / 6)


def random_problem(num_terms=12, num_rows=4, num_cands=6, seed=0):
    """Random padded texts of 3 terms: a batch and a candidate set whose row 0 is query 0's positive."""
    rng = np.random.default_rng(seed)

    def rand_texts(n):
        ids, weights = rng.integers(0, num_terms, (n, 3)), rng.uniform(0.5, 2, (n, 3))
        return jnp.asarray(ids, jnp.int32), jnp.asarray(weights, jnp.float32)

    q, p, c = rand_texts(num_rows), rand_texts(num_rows), rand_texts(num_cands)
    c = (c[0].at[0].set(p[0][0]), c[1].at[0].set(p[1][0]))
    index = jnp.full((num_rows,), -1, jnp.int32).at[0].set(0)
    params = s2net.init(jax.random.key(seed), num_terms, 4)
    return PairBatch(*q, *p, index, jnp.full((num_rows,), -1, jnp.int32)), Candidates(*c), params


def run(config, steps=3, seed=0):
    batch, cands, params = random_problem()
    state = make_state(config, seed=seed, params=params)
    for _ in range(steps):
        state, metrics = jitted_step(config)(state, batch, cands)
    return state, metrics


def test_self_adv_at_small_temperature_equals_uniform():
    uniform, _ = run(S2NetConfig(sampler="uniform", negatives=4))
    cold, _ = run(S2NetConfig(sampler="self-adv", negatives=4, self_adv_temperature=1e-6))
    hot, _ = run(S2NetConfig(sampler="self-adv", negatives=4, self_adv_temperature=20.0))
    np.testing.assert_allclose(cold.params["A"], uniform.params["A"], rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(hot.params["A"]) - np.asarray(uniform.params["A"])).max() > 1e-3


def test_ace_with_lambda_one_moves_discriminator_like_uniform_and_only_the_entropy_term_moves_the_generator():
    # λ = 1: no generator draw is used, so REINFORCE has nothing to learn from and the baseline stays 0; the
    # entropy regulariser (6 candidates: H ≤ log 6 < the target 2 nats) still moves the generator.
    uniform, _ = run(S2NetConfig(sampler="uniform", negatives=4))
    config = S2NetConfig(sampler="ace", negatives=4, lam=1.0)
    ace, metrics = run(config)
    np.testing.assert_allclose(ace.params["A"], uniform.params["A"], rtol=1e-6, atol=1e-7)
    start = make_state(config, params=random_problem()[2])
    assert np.abs(np.asarray(ace.gen_params["A"]) - np.asarray(start.gen_params["A"])).max() > 1e-4
    assert float(metrics["generated_fraction"]) == 0.0
    assert float(ace.baseline) == 0.0 and float(metrics["reward"]) == 0.0
    assert float(metrics["gen_loss"]) == pytest.approx(0.1 * (2.0 - float(metrics["gen_entropy"])), rel=1e-5)


def test_step_compiles_once_and_same_seed_gives_same_params():
    config = S2NetConfig(sampler="ace", negatives=3, lam=0.5)
    first, _ = run(config, steps=4)
    again, _ = run(config, steps=4)
    other, _ = run(config, steps=4, seed=5)
    assert _jitted_step(config)._cache_size() == 1
    for name in ("params", "gen_params"):
        np.testing.assert_array_equal(getattr(first, name)["A"], getattr(again, name)["A"])
    assert not np.array_equal(first.params["A"], other.params["A"])


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="sampler"):
        S2NetConfig(sampler="hard")
    with pytest.raises(ValueError, match="lam"):
        S2NetConfig(lam=1.5)
    with pytest.raises(ValueError, match="loss"):
        S2NetConfig(loss="squared")


def paraphrase_task(num_groups=8, seed=0):
    """Planted paraphrases: group g's queries use words a{g}_*, its positives disjoint words b{g}_*, both
    with two random filler words, so a query shares no topic word with its positive and A must learn
    that a{g}w* and b{g}w* mean the same."""
    rng = np.random.default_rng(seed)
    fill = [f"f{i}" for i in range(12)]
    queries, positives = [], []
    for g in range(num_groups):
        for _ in range(6):
            for side, texts in (("a", queries), ("b", positives)):
                topic = rng.choice([f"{side}{g}w{i}" for i in range(3)], 2, replace=False)
                texts.append(" ".join([*topic, *rng.choice(fill, 2)]))
    sentences = list(dict.fromkeys(queries + positives))
    vocab = text_features.build_vocab(sentences)
    ids, weights = text_features.featurize(sentences, vocab, None, "binary", max_terms=4)
    index = {s: i for i, s in enumerate(sentences)}
    q = np.array([index[s] for s in queries], np.int32)
    p = np.array([index[s] for s in positives], np.int32)
    return jnp.asarray(ids), jnp.asarray(weights), q, p, len(vocab)


def similarity_gap(params, ids, weights, q, p, seed=1):
    """Mean over queries of cos(q, its positive) − cos(q, a random text)."""
    proj = s2net.project(params, ids, weights)
    rand = np.random.default_rng(seed).integers(0, ids.shape[0], len(q))
    return float((s2net.cosine(proj[q], proj[p]) - s2net.cosine(proj[q], proj[rand])).mean())


@pytest.mark.parametrize("sampler", ["uniform", "ace"])
def test_planted_paraphrases_are_learned(sampler):
    ids, weights, q, p, num_terms = paraphrase_task()
    config = S2NetConfig(sampler=sampler, negatives=4, lam=0.5, entropy_target=2.0)
    params = s2net.init(jax.random.key(0), num_terms, 8)
    gen = s2net_family.init_generator(jax.random.key(1), num_terms, 8) if sampler == "ace" else None
    state = game.create_state(jax.random.key(2), params, optax.adam(0.05), gen,
                              optax.adam(0.05) if gen is not None else None, sparse_updates=False)
    before = similarity_gap(state.params, ids, weights, q, p)
    cands = Candidates(ids, weights)
    step = jitted_step(config)
    rng = np.random.default_rng(0)
    for _ in range(200):
        rows = rng.choice(len(q), 16, replace=False)
        batch = PairBatch(ids[q[rows]], weights[q[rows]], ids[p[rows]], weights[p[rows]],
                          jnp.asarray(p[rows]), jnp.asarray(q[rows]))
        state, metrics = step(state, batch, cands)
    after = similarity_gap(state.params, ids, weights, q, p)
    assert abs(before) < 0.15 and after > 0.5, (before, after)
    assert math.isfinite(float(metrics["loss"]))
