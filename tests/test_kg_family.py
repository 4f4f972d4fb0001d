"""The knowledge-graph family on the game: its step is a hand-written margin-loss SGD step, known triples are
false negatives, Bernoulli sides by hand, and TransE learns a small graph."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ace_jax import game, generator, kg_run, losses, noise, reinforce
from ace_jax.evaluate import ranking
from ace_jax.families import kg
from ace_jax.kg_config import KgRunConfig
from ace_jax.scorers.kg import KgScorer

E, R, DIM, K, LR, MARGIN = 6, 2, 4, 3, 0.1, 2.0
TRAIN = np.array([[0, 0, 1], [1, 0, 2], [2, 1, 3], [0, 1, 5], [4, 0, 1]], np.int32)


def one_hot_noise(entity: int) -> noise.NoiseDistribution:
    probs = np.zeros(E)
    probs[entity] = 1.0
    return noise.from_probs(probs)


def test_contains_is_set_membership():
    rng = np.random.default_rng(0)
    triples = np.stack([rng.integers(0, 9, 40), rng.integers(0, 3, 40), rng.integers(0, 9, 40)], 1)
    known = kg.KnownTriples.build(triples, 9, 3)
    queries = np.stack([rng.integers(0, 9, 300), rng.integers(0, 3, 300), rng.integers(0, 9, 300)], 1)
    queries = np.concatenate([queries, triples])
    got = known.contains_corruptions(jnp.asarray(queries[:, 0]), jnp.asarray(queries[:, 1]),  # tails as asked
                                     jnp.zeros(len(queries), bool), jnp.asarray(queries[:, 2:]))[:, 0]
    expected = [tuple(q) in {tuple(t) for t in triples} for q in queries]
    np.testing.assert_array_equal(got, expected)
    # The same set asked from each side: kept entities against a row of candidates each, heads or tails.
    kept, relations, head = rng.integers(0, 9, 30), rng.integers(0, 3, 30), rng.random(30) < 0.5
    candidates = rng.integers(0, 9, (30, 12))
    got = known.contains_corruptions(jnp.asarray(kept), jnp.asarray(relations), jnp.asarray(head),
                                     jnp.asarray(candidates))
    known_set = {tuple(t) for t in triples.tolist()}
    expected = [[((c, r, k) if h else (k, r, c)) in known_set for c in row]
                for k, r, h, row in zip(kept.tolist(), relations.tolist(), head.tolist(), candidates.tolist())]
    np.testing.assert_array_equal(got, expected)
    shared = known.contains_corruptions(jnp.asarray(kept), jnp.asarray(relations), jnp.asarray(head),
                                        jnp.asarray(candidates[0]))  # one row of candidates shared by all
    np.testing.assert_array_equal(shared[0], got[0])
    assert np.asarray(got).any() and not np.asarray(got).all()


def test_bernoulli_sides_by_hand():
    # Relation 0: heads 0, 1, 4 with 1, 1, 1 tails (tph 1); tails 1, 2 with 2, 1 heads (hpt 1.5): 1 / 2.5.
    # Relation 1: (2, 3) and (0, 5): tph 1, hpt 1: 0.5. Relation 2 has no triple: 0.5.
    np.testing.assert_allclose(kg.bernoulli_head_probs(TRAIN, 3), [0.4, 0.5, 0.5], rtol=1e-6)


def reference_step(params, triples, corrupt_head, negative, scorer):
    """The margin loss of every (positive, corruption) pair whose corruption is not a training triple, summed,
    one SGD step on whole tables, and the entity rows read put back in the scorer's set (TransE's, TransD's
    unit ball)."""
    train = {tuple(t) for t in TRAIN.tolist()}

    def loss_fn(p):
        total = 0.0
        for (h, r, t), head in zip(triples.tolist(), corrupt_head):
            pos = scorer.score(scorer.entity_rows(p, h), scorer.relation_rows(p, r), scorer.entity_rows(p, t))
            corrupted = (negative, r, t) if head else (h, r, negative)
            if corrupted in train:
                continue
            neg = scorer.score(scorer.entity_rows(p, corrupted[0]), scorer.relation_rows(p, r),
                               scorer.entity_rows(p, corrupted[2]))
            total = total + K * jax.nn.relu(MARGIN - pos + neg)  # K equal draws of the one noise entity
        return total

    loss, grads = jax.value_and_grad(loss_fn)(params)
    new = jax.tree.map(lambda p, g: p - LR * g, params, grads)
    read = np.unique(np.concatenate([triples[:, 0], triples[:, 2], [negative]]))
    return {**new, "entity": new["entity"].at[read].set(scorer.project(new["entity"][read]))}, loss


@pytest.mark.parametrize("model", ["transe", "transd", "complex", "rotate"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_the_step_is_the_margin_loss_sgd_step_without_known_corruptions(model, sparse):
    scorer = KgScorer(model, 1)
    family = kg.Triples(scorer)
    params = family.init(jax.random.key(0), E, R, DIM)
    known = kg.KnownTriples.build(TRAIN, E, R)
    # Corrupting (0, 0, 1)'s tail with 2 gives (0, 0, 2): not known; its head with 4: (4, 0, 1), known.
    triples = TRAIN[:3]
    corrupt_head = np.array([True, False, True])
    negative = 4
    batch = kg.TripleBatch(*(jnp.asarray(triples[:, i]) for i in range(3)), jnp.asarray(corrupt_head),
                           jnp.ones(3, bool), known)
    parts = game.Game(negatives=K, loss=losses.Hinge(MARGIN))
    state = game.create_state(jax.random.key(1), params, optax.sgd(LR), sparse_updates=sparse)
    update = game.updates.sparse if sparse else game.updates.dense
    step = jax.jit(functools.partial(game.step, family=family, game=parts, update=update))
    new_state, metrics = step(state, batch, one_hot_noise(negative))
    expected, loss = reference_step(params, triples, corrupt_head, negative, scorer)
    for name in params:
        np.testing.assert_allclose(new_state.params[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(metrics["false_negative_rate"], 1 / 3, rtol=1e-6)  # (4, 0, 1) only
    np.testing.assert_allclose(metrics["loss"] * 3, loss, rtol=1e-5)  # the mean over the three positives


def test_subsampling_weights_by_hand():
    # (h, r) counts: each of TRAIN's once. (t, r): (1, 0) twice (triples 0 and 4), the others once.
    np.testing.assert_allclose(kg.subsampling_weights(TRAIN, E, R), [1 / 3, 8 ** -0.5, 8 ** -0.5, 8 ** -0.5, 1 / 3],
                               rtol=1e-6)


@pytest.mark.parametrize("subsampled", [False, True], ids=["", "subsampled"])
@pytest.mark.parametrize("average", [False, True], ids=["summed", "averaged"])
def test_rotates_loss_averages_the_kept_negatives_terms(average, subsampled):
    """RotatE's eq. 5 with --average-negatives: per positive −log σ(s+) − Σ p_k log σ(−s-_k), the self-adversarial
    p summing to 1 over the kept negatives (here K equal draws of one entity: p = 1/K each); summed, as word2vec's,
    the negatives' term counts K times. (4, 0, 1) is known: that triple's only term is its positive's. Subsampled,
    the loss is the triples' mean weighted by the batch's weights; a padded fourth triple counts in neither."""
    scorer = KgScorer("transe", 1)
    family = kg.Triples(scorer, gamma=6.0, subsampling=subsampled)
    params = family.init(jax.random.key(0), E, R, DIM)
    triples, corrupt_head, negative = TRAIN[:4], np.array([True, False, True, False]), 4
    weights = np.array([0.5, 0.25, 1.0, 2.0], np.float32)
    batch = kg.TripleBatch(*(jnp.asarray(triples[:, i]) for i in range(3)), jnp.asarray(corrupt_head),
                           jnp.arange(4) < 3, kg.KnownTriples.build(TRAIN, E, R), jnp.asarray(weights))
    parts = game.Game(negatives=K, loss=losses.Logistic(), weighting=losses.SelfAdversarial(0.5), mean=True,
                      average_negatives=average)
    state = game.create_state(jax.random.key(1), params, optax.sgd(LR), sparse_updates=True)
    _, metrics = jax.jit(functools.partial(game.step, family=family, game=parts))(state, batch,
                                                                                  one_hot_noise(negative))
    train = {tuple(t) for t in TRAIN.tolist()}

    def score(h, r, t):
        return 6.0 + float(scorer.score(scorer.entity_rows(params, h), scorer.relation_rows(params, r),
                                        scorer.entity_rows(params, t)))

    terms = []
    for (h, r, t), head in zip(triples[:3].tolist(), corrupt_head):
        term = np.log1p(np.exp(-score(h, r, t)))  # −log σ(s+)
        corrupted = (negative, r, t) if head else (h, r, negative)
        if corrupted not in train:
            term += (1 if average else K) * np.log1p(np.exp(score(*corrupted)))  # −log σ(−s-)
        terms.append(term)
    expected = np.average(terms, weights=weights[:3] if subsampled else None)
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)


def test_transe_fits_a_small_graph():
    """A 4 × 4 grid, relation 0 one step right and relation 1 one step down (h + r = t can hold exactly): after
    300 uniform-corruption steps the training edges rank first (filtered MRR near 1; random is about 0.2)."""
    side, n = 4, 16
    edges = [[i * side + j, 0, i * side + j + 1] for i in range(side) for j in range(side - 1)]
    edges += [[i * side + j, 1, (i + 1) * side + j] for i in range(side - 1) for j in range(side)]
    train = np.array(edges, np.int32)
    scorer = KgScorer("transe", 1)
    family = kg.Triples(scorer)
    known = kg.KnownTriples.build(train, n, 2)
    parts = game.Game(negatives=4, loss=losses.Hinge(1.0))
    state = game.create_state(jax.random.key(1), family.init(jax.random.key(0), n, 2, 8), optax.sgd(0.01))
    uniform, probs = noise.uniform(n), jnp.full(2, 0.5)

    @jax.jit
    def train_step(state, key):
        batch = kg.make_batch(jnp.asarray(train), probs, known, key)
        state, metrics = game.step(state, batch, uniform, family=family, game=parts)
        return state.replace(params=scorer.constrain(state.params)), metrics

    index = ranking.FilterIndex.build(train, 2)
    before = ranking.evaluate(scorer.score_all, state.params, train, index)
    for i in range(300):
        state, metrics = train_step(state, jax.random.key(100 + i))
    after = ranking.evaluate(scorer.score_all, state.params, train, index)
    assert after["mrr"] > 0.95 and before["mrr"] < 0.4, (before, after)
    assert float(jnp.linalg.norm(state.params["entity"], axis=-1).max()) <= 1.0 + 1e-5


@pytest.mark.parametrize("regulariser", ["l2", "n3"])
def test_the_regulariser_of_the_rows_read_by_hand(regulariser):
    # ComplEx, one real triple (and one padded): rows entity [1, 2 + K] with real and imaginary parts.
    family = kg.Triples(KgScorer("complex"), regulariser=regulariser, reg_weight=0.5)
    entity = jnp.array([[[3.0], [0.0]], [[9.0], [9.0]]])  # [B = 2, 2, d = 1]
    entity_im = jnp.array([[[4.0], [1.0]], [[9.0], [9.0]]])
    relation, relation_im = jnp.array([[1.0], [9.0]]), jnp.array([[0.0], [9.0]])
    batch = kg.TripleBatch(*(jnp.zeros(2, jnp.int32),) * 3, jnp.zeros(2, bool), jnp.array([True, False]), None)
    got = family.extra_loss({"entity": entity, "entity_im": entity_im, "relation": relation,
                             "relation_im": relation_im}, batch)["regulariser"]
    # Moduli 5, 1 and 1: Σ x² = 25 + 1 + 1, Σ |x|³ = 125 + 1 + 1.
    assert float(got) == pytest.approx(0.5 * (27.0 if regulariser == "l2" else 127.0), rel=1e-5)


def kg_batch(triples, corrupt_head, known):
    triples = np.asarray(triples, np.int32)
    return kg.TripleBatch(*(jnp.asarray(triples[:, i]) for i in range(3)), jnp.asarray(corrupt_head),
                          jnp.ones(len(triples), bool), known)


@pytest.mark.parametrize("own", [False, True], ids=["tied", "own-tables"])
def test_the_generators_exact_logits_are_the_scorers_by_side(own):
    disc_scorer = KgScorer("transe", 1)
    disc = disc_scorer.init(jax.random.key(0), E, R, DIM)
    part = kg.KgGenerator(KgScorer("distmult") if own else None, disc_scorer)
    params = part.init(jax.random.key(1), E, R, 3, temperature=0.5)
    if not own:
        params = {**params, "bias": jnp.arange(E, dtype=jnp.float32) / 10}
    batch = kg_batch(TRAIN[:2], [True, False], kg.KnownTriples.build(TRAIN, E, R))
    logits = part.logits_of(params, disc, batch, None)
    scorer, tables = (KgScorer("distmult"), params) if own else (disc_scorer, disc)
    for i, ((h, r, t), head) in enumerate(zip(TRAIN[:2], [True, False])):
        for y in range(E):
            triple = (y, r, t) if head else (h, r, y)
            s = scorer.score(scorer.entity_rows(tables, triple[0]), scorer.relation_rows(tables, triple[1]),
                             scorer.entity_rows(tables, triple[2]))
            expected = s if own else 2.0 * s + y / 10  # β = 1 / T = 2
            np.testing.assert_allclose(logits[i, y], expected, rtol=1e-5, atol=1e-5)
    # Over draws: the same logits at those entities (the uniform noise's −log q is a constant per row).
    draws = jnp.array([[0, 3, 3], [5, 1, 2]])
    np.testing.assert_allclose(part.logits_of(params, disc, batch, draws),
                               jnp.take_along_axis(logits, draws, axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(part.logits_of(params, disc, batch, draws[0]), logits[:, draws[0]], rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("form", [dict(), dict(candidates=4), dict(candidates=4, per_query=True)],
                         ids=["exact", "pool", "kbgan"])
@pytest.mark.parametrize("own", [False, True], ids=["tied", "own-tables"])
def test_an_ace_step_with_each_generator_moves_both_players_and_compiles_once(form, own):
    disc_scorer = KgScorer("transe", 1)
    family = kg.Triples(disc_scorer)
    part = kg.KgGenerator(KgScorer("distmult") if own else None, disc_scorer, **form)
    parts = game.Game(negatives=K, generator=part, lam=0.5, loss=losses.Hinge(MARGIN), mean=True)
    state = game.create_state(jax.random.key(1), family.init(jax.random.key(0), E, R, DIM), optax.sgd(LR),
                              part.init(jax.random.key(2), E, R, 3), optax.adam(0.01))
    traces = []

    def step(state, batch):
        traces.append(1)
        return game.step(state, batch, noise.uniform(E), family=family, game=parts)

    step = jax.jit(step)
    batch = kg_batch(TRAIN, [True, False, True, False, True], kg.KnownTriples.build(TRAIN, E, R))
    for _ in range(3):
        before = jax.tree.map(np.asarray, (state.params, state.gen_params))
        state, metrics = step(state, batch)
        assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
        for old, new in zip(jax.tree.leaves(before), jax.tree.leaves((state.params, state.gen_params))):
            assert not np.array_equal(old, new)
    assert len(traces) == 1 and 0 < float(metrics["generated_fraction"]) < 1


@pytest.mark.parametrize("reward", ["loss", "score"])
def test_the_generators_reward_is_the_loss_on_its_negative_or_its_score(reward):
    # λ = 0: every negative is the generator's; no corruption is known, so none is penalised instead.
    disc_scorer = KgScorer("transe", 1)
    family = kg.Triples(disc_scorer)
    part = kg.KgGenerator(KgScorer("distmult"), disc_scorer, candidates=4, per_query=True)
    parts = game.Game(negatives=K, generator=part, lam=0.0, loss=losses.Hinge(MARGIN), mean=True, reward=reward)
    state = game.create_state(jax.random.key(1), family.init(jax.random.key(0), E, R, DIM), optax.sgd(LR),
                              part.init(jax.random.key(2), E, R, 3), optax.adam(0.01))
    batch = kg_batch(TRAIN[:4], [True, False, True, False], kg.KnownTriples.build(np.array([[5, 1, 5]]), E, R))
    _, metrics = game.step(state, batch, noise.uniform(E), family=family, game=parts)
    assert float(metrics["false_negative_rate"]) == 0.0 and float(metrics["generated_fraction"]) == 1.0
    # The self-critical baseline is the reward of the generator's greedy choice: a score too, or a hinge term.
    critic = dataclasses.replace(parts, baseline=reinforce.SelfCritical())
    _, greedy = game.step(state, batch, noise.uniform(E), family=family, game=critic)
    if reward == "score":  # the mean reward is the mean score of the negatives, −‖h + r − t'‖₁ < 0
        np.testing.assert_allclose(metrics["reward"], metrics["neg_score"], rtol=1e-6)
        assert float(metrics["reward"]) < 0 and float(greedy["baseline"]) < 0
    else:  # hinge terms: never negative, and not the scores
        assert float(metrics["reward"]) >= 0 > float(metrics["neg_score"]) and float(greedy["baseline"]) >= 0
    with pytest.raises(ValueError, match="reward"):
        game.Game(reward="scores")


def test_the_unit_ball_constrains_the_rows_a_step_read_and_only_them():
    scorer = KgScorer("transe", 1)
    family = kg.Triples(scorer)
    params = {name: 3.0 * value for name, value in family.init(jax.random.key(0), E, R, DIM).items()}  # norms > 1
    batch = kg_batch(TRAIN[:1], [False], kg.KnownTriples.build(TRAIN, E, R))  # (0, 0, 1), its tail corrupted
    parts = game.Game(negatives=K, loss=losses.Hinge(MARGIN))
    state = game.create_state(jax.random.key(1), params, optax.sgd(LR))
    new, _ = jax.jit(functools.partial(game.step, family=family, game=parts))(state, batch, one_hot_noise(4))
    norms = np.linalg.norm(np.asarray(new.params["entity"]), axis=1)
    assert norms[[0, 1, 4]].max() <= 1.0 + 1e-5  # the head, the true tail and the negative
    np.testing.assert_array_equal(np.asarray(new.params["entity"])[[2, 3, 5]], np.asarray(params["entity"])[[2, 3, 5]])


@pytest.mark.parametrize("per_query", [False, True], ids=["pool", "kbgan"])
def test_a_masked_generator_never_proposes_a_known_triple(per_query):
    # Every (h, 0, t) with t < 5 is a training triple: a tail corruption is false unless it is entity 5, and every
    # head corruption of such a triple is false (all its draws known: that row stays uniform over them).
    train = np.array([[h, 0, t] for h in range(E) for t in range(5)], np.int32)
    batch = kg_batch(train[[0, 7, 14, 21]], [False, False, False, True], kg.KnownTriples.build(train, E, 1))
    disc_scorer = KgScorer("transe", 1)
    family = kg.Triples(disc_scorer)
    disc = family.init(jax.random.key(0), E, 1, DIM)

    def game_of(mask_known):
        part = kg.KgGenerator(None, disc_scorer, candidates=32, per_query=per_query, mask_known=mask_known)
        return part, game.Game(negatives=K, generator=part, lam=0.0, loss=losses.Hinge(MARGIN), mean=True)

    part, parts = game_of(True)
    params = part.init(jax.random.key(1), E, 1, DIM)
    proposal = part.propose(params, batch, noise.uniform(E), jax.random.key(3), family=family, game=parts,
                            sparse=False, disc=disc)
    probs = np.asarray(jax.nn.softmax(proposal.logits, axis=-1))
    ids = np.broadcast_to(np.asarray(proposal.draws), probs.shape)
    assert (ids[:3] == 5).any(axis=1).all()  # entity 5 is among each row's draws (32 of 6 entities)
    np.testing.assert_array_equal(probs[:3][ids[:3] != 5], 0.0)
    np.testing.assert_allclose(probs[:3].sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs[3], 1 / 32, rtol=1e-5)
    assert np.isfinite(np.asarray(generator.entropy(proposal.logits))).all()
    rates = {}
    for mask_known in (True, False):
        part, parts = game_of(mask_known)
        state = game.create_state(jax.random.key(1), disc, optax.sgd(LR), params, optax.adam(0.01))
        _, metrics = game.step(state, batch, noise.uniform(E), family=family, game=parts)
        assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
        rates[mask_known] = float(metrics["false_negative_rate"])
    assert rates[True] == pytest.approx(0.25) and rates[False] > 0.5  # masked: only the all-known row's
    with pytest.raises(ValueError, match="mask_known"):
        kg.KgGenerator(None, disc_scorer, mask_known=True)


@pytest.mark.parametrize("penalty", [1.0, 0.3, 0.0])
def test_a_known_draw_earns_minus_the_configured_penalty(penalty):
    # Every (h, 0, t) with t < 5 is a training triple, so every head corruption of (1, 0, 2) is known: with λ = 0
    # every negative is the generator's and each one's reward is −penalty (KgRunConfig → kg_run.game_of).
    train = np.array([[h, 0, t] for h in range(E) for t in range(5)], np.int32)
    batch = kg_batch(train[[7, 7]], [True, True], kg.KnownTriples.build(train, E, 1))
    config = KgRunConfig(sampler="kbgan", negatives=K, margin=MARGIN, gen_dim=DIM, candidates=8,
                         false_negative_penalty=penalty)
    parts = kg_run.game_of(config)
    family = kg_run.family_of(config)
    state = game.create_state(jax.random.key(1), family.init(jax.random.key(0), E, 1, DIM), optax.sgd(LR),
                              parts.generator.init(jax.random.key(2), E, 1, DIM), optax.adam(0.01))
    _, metrics = game.step(state, batch, noise.uniform(E), family=family, game=parts)
    assert float(metrics["false_negative_rate"]) == 1.0 and float(metrics["generated_fraction"]) == 1.0
    assert float(metrics["reward"]) == pytest.approx(-penalty, abs=1e-7)


def test_a_generator_that_does_not_learn_only_proposes():
    """learn_generator False (self-adv-pool's): the discriminator moves, the generator and its optimiser do not,
    and with λ = 0 every negative is one of the pool's draws."""
    disc_scorer = KgScorer("transe", 1)
    family = kg.Triples(disc_scorer)
    part = kg.KgGenerator(None, disc_scorer, candidates=4)
    parts = game.Game(negatives=K, generator=part, lam=0.0, loss=losses.Hinge(MARGIN), mean=True,
                      learn_generator=False)
    state = game.create_state(jax.random.key(1), family.init(jax.random.key(0), E, R, DIM), optax.sgd(LR),
                              part.init(jax.random.key(2), E, R, 3, temperature=0.5))
    batch = kg_batch(TRAIN, [True, False, True, False, True], kg.KnownTriples.build(TRAIN[:0], E, R))
    new, metrics = jax.jit(functools.partial(game.step, family=family, game=parts))(state, batch, noise.uniform(E))
    assert not np.array_equal(np.asarray(new.params["entity"]), np.asarray(state.params["entity"]))
    for old, now in zip(jax.tree.leaves((state.gen_params, state.gen_opt_state, state.baseline)),
                        jax.tree.leaves((new.gen_params, new.gen_opt_state, new.baseline))):
        np.testing.assert_array_equal(np.asarray(old), np.asarray(now))
    assert "gen_loss" not in metrics and all(np.isfinite(float(v)) for v in metrics.values())
    # the same step's draws: the pool (shared by the batch) and the negatives picked from it
    keys = jax.random.split(jax.random.fold_in(state.key, state.step), 4)
    negatives, from_gen, _, proposal = game.mix_negatives(state, batch, noise.uniform(E), family.layout(batch), keys,
                                                           family, parts)
    assert bool(from_gen.all()) and np.isin(np.asarray(negatives), np.asarray(proposal.draws)).all()


def test_a_relation_beta_tilts_each_triple_by_its_relation_and_side_and_learns_only_those_read():
    """relation_beta: log_beta [R, 2], row r column 1 for a corrupted head; each triple's logits are its own β times
    the discriminator's scores plus the bias, and a step's REINFORCE moves only the (relation, side) cells of its
    batch."""
    disc_scorer = KgScorer("transe", 1)
    disc = disc_scorer.init(jax.random.key(0), E, R, DIM)
    shared, per_relation = kg.KgGenerator(None, disc_scorer), kg.KgGenerator(None, disc_scorer, relation_beta=True)
    params = per_relation.init(jax.random.key(1), E, R, 3, temperature=0.5)
    np.testing.assert_allclose(np.exp(params["log_beta"]), np.full((R, 2), 2.0), rtol=1e-6)
    params = {"log_beta": jnp.log(jnp.array([[1.0, 2.0], [3.0, 4.0]])), "bias": jnp.arange(E, dtype=jnp.float32)}
    corrupt_head = [True, False, True, False, True]  # relations 0, 0, 1, 1, 0
    batch = kg_batch(TRAIN, corrupt_head, kg.KnownTriples.build(TRAIN, E, R))
    scores = shared.logits_of({"log_beta": jnp.float32(0.0), "bias": jnp.zeros(E)}, disc, batch, None)  # β 1, c 0
    beta = np.array([2.0, 1.0, 4.0, 3.0, 2.0])[:, None]
    np.testing.assert_allclose(per_relation.logits_of(params, disc, batch, None),
                               beta * scores + np.arange(E)[None, :], rtol=1e-5, atol=1e-5)

    family = kg.Triples(disc_scorer)
    parts = game.Game(negatives=K, generator=per_relation, lam=0.0, loss=losses.Hinge(MARGIN), mean=True)
    state = game.create_state(jax.random.key(1), family.init(jax.random.key(0), E, R, DIM), optax.sgd(LR),
                              params, optax.sgd(0.1))
    only_relation_0 = kg_batch(TRAIN[[0, 1, 4]], [True, False, True], kg.KnownTriples.build(TRAIN[:0], E, R))
    new, _ = game.step(state, only_relation_0, noise.uniform(E), family=family, game=parts)
    moved = np.asarray(new.gen_params["log_beta"]) != np.asarray(params["log_beta"])
    np.testing.assert_array_equal(moved, [[True, True], [False, False]])
    with pytest.raises(ValueError, match="relation_beta"):
        kg.KgGenerator(KgScorer("distmult"), disc_scorer, relation_beta=True)
