"""Tests of the word family (ace_jax.families.word) in the game: word2vec's update by hand, sparse = dense, the
generator's move, jit and determinism.

XLA takes one to three seconds to compile a step on CPU, so the tests share compiled steps as a
training run does: one jitted, donating step per (GameConfig, batch layout), one optimiser object per
player (optimisers are part of the state's tree structure), and one batch shape per layout
(skip-gram [2] × [2, 2], CBOW [2, 4] × [2, 1]). Donation deletes the old state, so tests copy what
they compare before stepping. The steps are compiled with LLVM at -O0 (FAST_COMPILE), which halves
compile time; XLA's own passes are unchanged and these programs run in microseconds anyway.
"""

import collections
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.test_util import check_grads
import pytest

from ace_jax import game, generator, hardness, huffman, losses, noise, sparse_optim, windows
from ace_jax.families import word
from ace_jax.scorers import skipgram

VOCAB, DIM, NUM_NEG, LR = 6, 3, 2, 0.2
TX = optax.sgd(LR)
GEN_TX = optax.sgd(0.1)
HUFFMAN_COUNTS = np.array([9, 1, 4, 2, 6, 3])
UNIGRAM = noise.unigram(HUFFMAN_COUNTS)

NS = word.GameConfig(sampler="ns", negatives=NUM_NEG)
ACE = word.GameConfig(sampler="ace", negatives=NUM_NEG)

FAST_COMPILE = {"xla_backend_optimization_level": 0}
TRACES = collections.Counter()  # (config, layout) -> times the step was traced


def jitted_step(config: word.GameConfig, layout: str = "skipgram"):
    """The step as training runs it: jitted once with the config bound, state donated."""
    return _jitted_step(config, layout)  # one cache key however the caller spells the arguments


@functools.cache
def _jitted_step(config: word.GameConfig, layout: str):
    def step(state, batch, noise_dist, huffman=None):
        TRACES[config, layout] += 1
        return word.train_step(state, batch, noise_dist, config=config, huffman=huffman)

    return jax.jit(step, donate_argnums=0, compiler_options=FAST_COMPILE)


def snapshot(tree):
    """Host copies, safe to compare after the arrays were donated."""
    return jax.tree_util.tree_map(np.array, tree)


def random_params(seed: int = 0, num_outputs: int | None = None) -> dict:
    """word2vec's tables, but with a random output table too so that every row gets a gradient at once."""
    k_in, k_out = jax.random.split(jax.random.key(seed))
    params = skipgram.init(k_in, VOCAB, DIM, num_outputs)
    return {**params, "out": 0.5 * jax.random.normal(k_out, params["out"].shape)}


def make_state(config: word.GameConfig, params: dict, tx=TX, seed: int = 0, gen_bias=None) -> game.GameState:
    """A fresh state holding copies of `params` (the step donates it)."""
    gen_params = None
    if config.uses_generator and config.gen_tables == "discriminator":
        gen_params = generator.tied_init(jnp.zeros(VOCAB) if gen_bias is None else gen_bias, config.gen_temperature)
    elif config.uses_generator:
        gen_params = generator.init(jax.random.key(seed + 100), VOCAB, VOCAB, DIM, bias=gen_bias)
    # One GEN_TX for every state, with or without a generator, so all states share a tree structure.
    return game.create_state(jax.random.key(seed), jax.tree_util.tree_map(jnp.array, params), tx,
                                    gen_params, GEN_TX, sparse_updates=config.sparse_updates)


def one_hot_noise(word: int) -> noise.NoiseDistribution:
    probs = np.zeros(VOCAB)
    probs[word] = 1.0
    return noise.from_probs(probs)


def batch_of(queries, positives, mask) -> word.Batch:
    return word.Batch(jnp.array(queries, jnp.int32), jnp.array(positives, jnp.int32), jnp.array(mask))


def leaves_equal(a, b) -> list[bool]:
    return [np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def word2vec_update(params: dict, queries, positives, mask, negative: int, num_neg: int, lr: float,
                    rule: str) -> tuple[dict, float, float]:
    """word2vec's per-pair SGNS gradients, g = lr·(label − σ(u·v)), all from the old tables and summed.

    Every pair has `num_neg` copies of the negative `negative`, skipped as a false negative when it is
    the pair's own positive (rule "pair", word2vec.c's `if (target == word) continue`) or any positive
    of the query (rule "window"). Returns the new tables, the mean loss per pair and the fraction of
    negatives that were false.
    """
    u, v = np.array(params["in"], np.float64), np.array(params["out"], np.float64)
    new_u, new_v = u.copy(), v.copy()
    total, pairs, false_pairs = 0.0, 0, 0
    for b, query in enumerate(queries):
        own = [p for p, m in zip(positives[b], mask[b]) if m]
        for j, positive in enumerate(positives[b]):
            if not mask[b][j]:
                continue
            pairs += 1
            false_negative = negative in own if rule == "window" else negative == positive
            false_pairs += false_negative
            examples = [(positive, 1.0)] + ([] if false_negative else [(negative, 0.0)] * num_neg)
            for cand, label in examples:
                score = u[query] @ v[cand]
                g = lr * (label - sigmoid(score))
                new_u[query] += g * v[cand]
                new_v[cand] += g * u[query]
                total -= math.log(sigmoid(score) if label else sigmoid(-score))
    return {"in": new_u, "out": new_v}, total / pairs, false_pairs / pairs


SGNS_CASES = {
    # 2 queries × 2 positives, every negative is word 5.
    "two_by_two": ([0, 1], [[2, 3], [3, 4]], [[True, True], [True, True]], 5),
    # Every negative is word 2: the positive of pair (0, 2), and another positive of pair (0, 3)'s query.
    "false_negatives": ([0, 1], [[2, 3], [3, 4]], [[True, True], [True, True]], 2),
    # A padded pair (−1) reads row 0 of the gather and must move nothing; query 4 is repeated.
    "padded": ([4, 4], [[2, 3], [5, -1]], [[True, True], [True, False]], 0),
}


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
@pytest.mark.parametrize("case", sorted(SGNS_CASES))
def test_ns_step_is_word2vec(case, sparse):
    queries, positives, mask, negative = SGNS_CASES[case]
    config = word.GameConfig(sampler="ns", negatives=NUM_NEG, sparse_updates=sparse)
    params = random_params()
    new_state, metrics = jitted_step(config)(make_state(config, params), batch_of(queries, positives, mask),
                                             one_hot_noise(negative))
    expected, loss, false_negative_rate = word2vec_update(params, queries, positives, mask, negative, NUM_NEG, LR,
                                                          rule=config.false_negatives)
    np.testing.assert_allclose(new_state.params["in"], expected["in"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_state.params["out"], expected["out"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    real = np.array(mask)
    assert metrics["pairs"] == real.sum() and new_state.pairs == real.sum() and new_state.step == 1
    np.testing.assert_allclose(metrics["false_negative_rate"], false_negative_rate)


@pytest.mark.parametrize("rule,false_negative_rate", [("pair", 1 / 4), ("window", 2 / 4)])
def test_false_negative_rules(rule, false_negative_rate):
    # "pair" (word2vec) drops word 2 as a negative of pair (0, 2) only; "window" of both pairs of query 0.
    queries, positives, mask, negative = SGNS_CASES["false_negatives"]
    config = word.GameConfig(sampler="ns", negatives=NUM_NEG, false_negatives=rule)
    params = random_params()
    new_state, metrics = jitted_step(config)(make_state(config, params), batch_of(queries, positives, mask),
                                             one_hot_noise(negative))
    expected, loss, _ = word2vec_update(params, queries, positives, mask, negative, NUM_NEG, LR, rule=rule)
    np.testing.assert_allclose(new_state.params["in"], expected["in"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_state.params["out"], expected["out"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["false_negative_rate"], false_negative_rate)


@pytest.mark.parametrize("known,false_negative_rate", [([[2, -1], [-1, -1]], 2 / 4), ([[-1, -1], [2, -1]], 3 / 4)])
def test_known_positives_are_false_negatives_of_their_query_only(known, false_negative_rate):
    # Every negative is word 2; the pair rule drops it for pair (0, 2) only. Known for query 0, it is dropped for
    # both of query 0's pairs: the window rule's update. Known for query 1, for both of its pairs as well; the
    # −1 padding matches no draw.
    queries, positives, mask, negative = SGNS_CASES["false_negatives"]
    config = word.GameConfig(sampler="ns", negatives=NUM_NEG, false_negatives="pair")
    params = random_params()
    batch = batch_of(queries, positives, mask).replace(known=jnp.array(known, jnp.int32))
    new_state, metrics = jitted_step(config)(make_state(config, params), batch, one_hot_noise(negative))
    np.testing.assert_allclose(metrics["false_negative_rate"], false_negative_rate)
    if known[0][0] == 2:
        expected, loss, _ = word2vec_update(params, queries, positives, mask, negative, NUM_NEG, LR, rule="window")
        np.testing.assert_allclose(new_state.params["in"], expected["in"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(new_state.params["out"], expected["out"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)


def test_self_adversarial_weights_by_hand():
    neg = jnp.array([[0.0, math.log(2.0), math.log(5.0)], [1.0, 1.0, 1.0]])
    keep = jnp.array([[True, True, True], [False, False, False]])
    # K · softmax(1 · s-) = 3 · [1, 2, 5] / 8; a row with nothing kept gets no weight (and no NaN).
    np.testing.assert_allclose(losses.self_adversarial_weights(neg, keep, 1.0), [[3 / 8, 6 / 8, 15 / 8], [0, 0, 0]],
                               rtol=1e-6)
    np.testing.assert_allclose(losses.self_adversarial_weights(neg, keep[:1].repeat(2, 0), 0.0), np.ones((2, 3)))


def test_self_adversarial_weights_at_zero_temperature_are_sgns_with_false_negatives():
    weights = losses.self_adversarial_weights(jnp.array([[0.3, -1.0, 2.0]]), jnp.array([[True, True, False]]), 0.0)
    np.testing.assert_allclose(weights, [[1.0, 1.0, 0.0]])


def huffman_tables() -> word.HuffmanTables:
    points, codes, _ = huffman.build_huffman_tree(HUFFMAN_COUNTS)
    return word.HuffmanTables(jnp.asarray(points), jnp.asarray(codes))


# Repeated query and candidate ids, so the sparse path's scatter-adds must accumulate; one padded pair.
SKIPGRAM_BATCH = batch_of([3, 3], [[1, 2], [1, -1]], [[True, True], [True, False]])
CBOW_BATCH = batch_of([[1, 2, -1, -1], [0, 4, 4, 5]], [[0], [3]], [[True], [True]])
SPARSE_DENSE_CASES = {
    "ns": (dict(sampler="ns"), SKIPGRAM_BATCH),
    "nce": (dict(sampler="nce"), SKIPGRAM_BATCH),
    "self_adv": (dict(sampler="self-adv", self_adv_temperature=2.0), SKIPGRAM_BATCH),
    "hs": (dict(sampler="hs"), SKIPGRAM_BATCH),
    "ns_cbow": (dict(sampler="ns"), CBOW_BATCH),
}


@pytest.mark.parametrize("case", sorted(SPARSE_DENSE_CASES))
def test_sparse_updates_equal_dense(case):
    kwargs, batch = SPARSE_DENSE_CASES[case]
    layout = "cbow" if batch.queries.ndim == 2 else "skipgram"
    hs = kwargs["sampler"] == "hs"
    params = random_params(num_outputs=VOCAB - 1 if hs else None)
    tables = {"huffman": huffman_tables()} if hs else {}  # huffman=None would be another input tree
    states = []
    for sparse in (True, False):
        config = word.GameConfig(negatives=NUM_NEG, sparse_updates=sparse, **kwargs)
        state = make_state(config, params)
        for _ in range(2):
            state, _ = jitted_step(config, layout)(state, batch, UNIGRAM, **tables)
        states.append(state)
    sparse_state, dense_state = states
    for name in ("in", "out"):
        np.testing.assert_allclose(sparse_state.params[name], dense_state.params[name], rtol=1e-5, atol=1e-6)
    # Something moved, and rows no query reads stayed where they were.
    assert not np.allclose(sparse_state.params["in"], params["in"])
    unread = sorted(set(range(VOCAB)) - set(np.asarray(batch.queries).ravel().tolist()))
    np.testing.assert_array_equal(sparse_state.params["in"][np.array(unread)], params["in"][np.array(unread)])


def test_hs_loss_at_zero_output_table_is_path_length_log_2():
    config = word.GameConfig(sampler="hs", negatives=NUM_NEG)
    _, _, lengths = huffman.build_huffman_tree(HUFFMAN_COUNTS)
    state = make_state(config, skipgram.init(jax.random.key(0), VOCAB, DIM, num_outputs=VOCAB - 1))
    _, metrics = jitted_step(config)(state, SKIPGRAM_BATCH, UNIGRAM, huffman=huffman_tables())
    # Every node says σ(0) = 1/2, so −log p(y) = length(y) · log 2, averaged over the real targets 1, 2, 1.
    np.testing.assert_allclose(metrics["loss"], np.mean(lengths[[1, 2, 1]]) * math.log(2), rtol=1e-6)
    with pytest.raises(ValueError, match="Huffman"):
        state = make_state(config, random_params(num_outputs=VOCAB - 1))
        word.train_step(state, SKIPGRAM_BATCH, UNIGRAM, config=config)


def test_softmax_lowers_the_loss():
    config = word.GameConfig(sampler="softmax", sparse_updates=False)
    state = make_state(config, skipgram.init(jax.random.key(0), VOCAB, DIM), optax.adam(0.1))
    losses = []
    for _ in range(10):
        state, metrics = jitted_step(config)(state, SKIPGRAM_BATCH, UNIGRAM)
        losses.append(float(metrics["loss"]))
    # The output table starts at zero: a uniform softmax over 6 words.
    np.testing.assert_allclose(losses[0], math.log(VOCAB), rtol=1e-6)
    assert losses[-1] < losses[0] - 0.3 and np.all(np.diff(losses) < 0)


def test_create_train_state_rejects_per_parameter_optimisers_with_sparse_updates():
    params = random_params()
    for tx in (optax.adam(0.1), optax.sgd(0.1, momentum=0.9), optax.adagrad(0.1)):
        with pytest.raises(ValueError, match="sparse"):
            game.create_state(jax.random.key(0), params, tx)
        game.create_state(jax.random.key(0), params, tx, sparse_updates=False)
    game.create_state(jax.random.key(0), params, optax.sgd(optax.linear_schedule(0.1, 0.0, 10)))


def test_states_built_alike_share_a_tree_structure():
    params = random_params()
    first, second = (game.create_state(jax.random.key(0), params, TX) for _ in range(2))
    assert jax.tree_util.tree_structure(first) == jax.tree_util.tree_structure(second)


def test_game_config_validation():
    for bad in (dict(sampler="gan"), dict(baseline="ema"), dict(loss="l2"), dict(negatives=0), dict(lam=1.5),
                dict(baseline_decay=1.0), dict(sampler="nce", loss="hinge"), dict(false_negatives="query"),
                dict(generator="topk"), dict(candidates=1), dict(generator="pool", off_policy=True),
                dict(gen_matmul_dtype="float16")):
        with pytest.raises(ValueError):
            word.GameConfig(**bad)
    assert word.GameConfig(sampler="adv").noise_fraction == 0.0
    assert word.GameConfig(sampler="ace", lam=0.3).noise_fraction == 0.3
    assert word.GameConfig(sampler="nce").noise_fraction == 1.0


def test_a_step_without_pairs_moves_nothing():
    params = random_params()
    empty = SKIPGRAM_BATCH.replace(mask=jnp.zeros_like(SKIPGRAM_BATCH.mask))
    new_state, metrics = jitted_step(NS)(make_state(NS, params), empty, UNIGRAM)
    assert all(leaves_equal(new_state.params, params))
    assert metrics["loss"] == 0.0 and new_state.pairs == 0.0 and new_state.step == 1


# --- the generator's move (adv and ace) ---

def test_ace_step_moves_both_players():
    state = make_state(ACE, random_params())
    before = snapshot((state.params, state.gen_params))
    new_state, metrics = jitted_step(ACE)(state, SKIPGRAM_BATCH, UNIGRAM)
    for name in ("gen_entropy", "reward", "baseline", "gen_loss", "generated_fraction", "loss", "false_negative_rate"):
        assert np.isfinite(metrics[name]), name
    # The generator starts uniform over 6 words.
    np.testing.assert_allclose(metrics["gen_entropy"], math.log(VOCAB), rtol=1e-5)
    # b starts at zero, so the first step moves b and c; a follows from the second step on.
    for name in ("cand", "bias"):
        assert not np.array_equal(before[1][name], new_state.gen_params[name]), name
    assert not np.array_equal(before[0]["in"], new_state.params["in"])
    # Moving average from 0: (1 − 0.99) · mean reward.
    np.testing.assert_allclose(new_state.baseline, 0.01 * metrics["reward"], rtol=1e-5)
    assert metrics["baseline"] == 0.0  # the metric is the baseline this step used, before its update
    # λ = 0.5: over 40 steps of 6 negatives, half come from the generator (± 3 standard errors).
    fractions, state = [], new_state
    for _ in range(40):
        state, metrics = jitted_step(ACE)(state, SKIPGRAM_BATCH, UNIGRAM)
        fractions.append(float(metrics["generated_fraction"]))
    assert abs(np.mean(fractions) - 0.5) < 3 * math.sqrt(0.25 / 240)
    assert state.step == 41 and np.isfinite(state.baseline)


def test_generator_producing_the_positive_is_all_false_negatives():
    config = word.GameConfig(sampler="adv", negatives=NUM_NEG)
    params = random_params()
    # Both queries observe word 2, and the generator puts e^50 times more mass on it than on anything else.
    queries, positives, mask = [0, 1], [[2, -1], [2, -1]], [[True, False], [True, False]]
    state = make_state(config, params, gen_bias=jnp.array([0.0, 0.0, 50.0, 0.0, 0.0, 0.0]))
    new_state, metrics = jitted_step(config)(state, batch_of(queries, positives, mask), UNIGRAM)
    assert metrics["false_negative_rate"] == 1.0 and metrics["generated_fraction"] == 1.0
    # Their reward is −false_negative_penalty.
    np.testing.assert_allclose(metrics["reward"], -1.0)
    # With every negative weighted 0, the discriminator sees the positive terms only.
    expected, loss, _ = word2vec_update(params, queries, positives, mask, negative=2, num_neg=NUM_NEG, lr=LR,
                                        rule=config.false_negatives)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(new_state.params["in"], expected["in"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_state.params["out"], expected["out"], rtol=1e-5, atol=1e-6)


# Each baseline once, off-policy once, CBOW once; (moving-average, on-policy, skip-gram) is ACE itself.
BASELINE_CASES = [("none", True, False), ("moving-average", False, False), ("self-critical", False, True)]


@pytest.mark.parametrize("baseline,off_policy,cbow", BASELINE_CASES)
def test_baselines_and_off_policy_run(baseline, off_policy, cbow):
    config = word.GameConfig(sampler="ace", negatives=NUM_NEG, baseline=baseline, off_policy=off_policy)
    batch, layout = (CBOW_BATCH, "cbow") if cbow else (SKIPGRAM_BATCH, "skipgram")
    state = make_state(config, random_params())
    for _ in range(2):
        before = snapshot(state.gen_params)
        state, metrics = jitted_step(config, layout)(state, batch, UNIGRAM)
        assert all(np.isfinite(v) for v in metrics.values()), metrics
        assert not all(leaves_equal(before, state.gen_params))
        if baseline != "moving-average":
            assert state.baseline == 0.0


def test_a_step_without_pairs_leaves_the_generator_alone():
    state = make_state(ACE, random_params())
    empty = SKIPGRAM_BATCH.replace(mask=jnp.zeros_like(SKIPGRAM_BATCH.mask))
    before = snapshot((state.gen_params, state.gen_opt_state, state.params, state.baseline))
    new_state, _ = jitted_step(ACE)(state, empty, UNIGRAM)
    after = (new_state.gen_params, new_state.gen_opt_state, new_state.params, new_state.baseline)
    assert all(leaves_equal(before, after))


def test_bf16_generator_logits_are_close_and_the_step_runs():
    params = generator.init(jax.random.key(1), VOCAB, VOCAB, DIM, bias=jnp.array(UNIGRAM.log_probs))
    params["cand"] = jax.random.normal(jax.random.key(2), params["cand"].shape)
    queries = jnp.array([0, 3, 5])
    full, half = generator.logits(params, queries), generator.logits(params, queries, jnp.bfloat16)
    assert half.dtype == jnp.float32 and not np.array_equal(full, half)  # it did round
    np.testing.assert_allclose(half, full, atol=2e-2)
    config = word.GameConfig(sampler="ace", negatives=NUM_NEG, gen_matmul_dtype="bfloat16")
    state, metrics = jitted_step(config)(make_state(config, random_params()), SKIPGRAM_BATCH, UNIGRAM)
    assert all(np.isfinite(v) for v in metrics.values())


# --- shared negatives: windows in word2vec's orientation ---

SHARED_NS = word.GameConfig(sampler="ns", negatives=NUM_NEG, shared_negatives=True)
# Two windows: contexts [2, 3] of centre 0, context [4] of centre 1 (−1 pads the bag).
WINDOW_BATCH = batch_of([[2, 3], [4, -1]], [[0], [1]], [[True, True], [True, False]])
# The same three pairs as skip-gram pairs (query = context, positive = centre).
WINDOW_PAIRS = batch_of([2, 3, 4], [[0], [0], [1]], [[True], [True], [True]])


@pytest.mark.parametrize("negative", [5, 0], ids=["negative_5", "negative_is_a_centre"])
def test_shared_negatives_step_is_word2vec_when_every_draw_is_the_same(negative):
    """Each context predicts its centre, as word2vec.c does; a negative equal to the centre is skipped."""
    params = random_params()
    new_state, metrics = jitted_step(SHARED_NS, "windows")(make_state(SHARED_NS, params), WINDOW_BATCH,
                                                           one_hot_noise(negative))
    expected, loss, false_rate = word2vec_update(params, [2, 3, 4], [[0], [0], [1]], [[True]] * 3,
                                                 negative=negative, num_neg=NUM_NEG, lr=LR, rule="pair")
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["false_negative_rate"], false_rate, rtol=1e-6)
    np.testing.assert_allclose(new_state.params["in"], expected["in"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_state.params["out"], expected["out"], rtol=1e-5, atol=1e-6)


def test_a_windows_known_positives_are_its_contexts_and_drop_its_shared_negatives():
    """A negative known to one context of a window is false for the whole window (it stands in for the centre beside
    every context): the update of those pairs one by one with it known to each, and not the update without it."""
    table = jnp.full((VOCAB, 1), -1, jnp.int32).at[3, 0].set(5)  # word 5 is a known positive of context 3 only
    windows_batch = WINDOW_BATCH.replace(known=word.known_of(table, WINDOW_BATCH.queries))
    np.testing.assert_array_equal(windows_batch.known, [[-1, 5], [-1, -1]])  # window 1's −1 pad knows nothing
    per_pair = word.GameConfig(sampler="ns", negatives=NUM_NEG, false_negatives="pair")
    params, results = random_params(), []
    for config, batch, layout in ((SHARED_NS, windows_batch, "windows"), (SHARED_NS, WINDOW_BATCH, "windows"),
                                  (per_pair, WINDOW_PAIRS.replace(known=jnp.array([[5], [5], [-1]])), "pairs")):
        state, metrics = jitted_step(config, layout)(make_state(config, params), batch, one_hot_noise(5))
        results.append((snapshot(state.params), float(metrics["false_negative_rate"])))
    assert [rate for _, rate in results] == pytest.approx([2 / 3, 0.0, 2 / 3])
    for a, b in zip(jax.tree_util.tree_leaves(results[0][0]), jax.tree_util.tree_leaves(results[2][0])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(results[0][0]["in"], results[1][0]["in"])


@pytest.mark.parametrize("sampler", ["nce", "self-adv", "ace"])
def test_shared_negatives_match_per_pair_negatives_under_one_hot_noise(sampler):
    """The other samplers too (ace with λ = 1, so every negative is noise): windows = the same pairs one by one."""
    results = []
    for shared, batch, layout in ((False, WINDOW_PAIRS, "pairs"), (True, WINDOW_BATCH, "windows")):
        config = word.GameConfig(sampler=sampler, negatives=NUM_NEG, lam=1.0, shared_negatives=shared,
                                  false_negatives="pair")
        state, metrics = jitted_step(config, layout)(make_state(config, random_params()), batch, one_hot_noise(0))
        results.append(snapshot((state.params, metrics["loss"], metrics["false_negative_rate"])))
    for a, b in zip(*(jax.tree_util.tree_leaves(r) for r in results)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_shared_negatives_are_drawn_once_per_window():
    """Under noise over four words, a window's contexts see the same negatives: with a context repeated,
    its two copies get the same gradient, so a window [c, c] moves c twice as far as a window [c]."""
    config = word.GameConfig(sampler="ns", negatives=3, shared_negatives=True)
    noise_dist = noise.from_probs(np.array([0.0, 0.25, 0.25, 0.25, 0.25, 0.0]))
    params = random_params()
    moves = []
    for bag in ([[5, 5], [5, -1]], [[5, -1], [5, -1]]):
        batch = batch_of(bag, [[0], [0]], np.array(bag) >= 0)
        state, _ = jitted_step(config, "windows")(make_state(config, params), batch, noise_dist)
        moves.append(np.array(state.params["in"][5]) - np.array(params["in"][5]))
    # All three steps draw the same negatives (same key, same shapes): window 0's second copy adds its share again.
    one_window = batch_of([[5, -1], [-1, -1]], [[0], [0]], [[True, False], [False, False]])
    state, _ = jitted_step(config, "windows")(make_state(config, params), one_window, noise_dist)
    window_0 = np.array(state.params["in"][5]) - np.array(params["in"][5])
    np.testing.assert_allclose(moves[0], moves[1] + window_0, rtol=1e-5, atol=1e-7)


def test_score_members_hand_written_gradient_is_the_einsums():
    keys = jax.random.split(jax.random.key(7), 3)
    members, cands = jax.random.normal(keys[0], (2, 3, 4)), jax.random.normal(keys[1], (2, 2, 4))
    g = jax.random.normal(keys[2], (2, 3, 2))
    expected = jax.vjp(lambda a, b: jnp.einsum("bmd,bkd->bmk", a, b), members, cands)[1](g)
    got = jax.vjp(skipgram.score_members, members, cands)[1](g)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    check_grads(skipgram.score_members, (members, cands), order=1, modes=["rev"])


def test_shared_negatives_need_windows():
    with pytest.raises(ValueError, match="shared negatives need windows"):
        jitted_step(SHARED_NS)(make_state(SHARED_NS, random_params()), SKIPGRAM_BATCH, UNIGRAM)


@pytest.mark.parametrize("baseline", ["moving-average", "self-critical"])
def test_shared_negatives_with_a_generator_run_and_compile_once(baseline):
    config = word.GameConfig(sampler="ace", negatives=NUM_NEG, shared_negatives=True, baseline=baseline)
    state = make_state(config, random_params())
    for _ in range(3):
        before = snapshot(state.gen_params)
        state, metrics = jitted_step(config, "windows")(state, WINDOW_BATCH, UNIGRAM)
        assert all(np.isfinite(v) for v in metrics.values()), metrics
        assert not all(leaves_equal(before, state.gen_params))
    assert TRACES[config, "windows"] == 1


# --- generators over noise candidates (pool, kbgan) ---

def test_candidate_logits_by_hand():
    params = {"query": jnp.array([[1.0, 0.0], [0.0, 2.0]]), "cand": jnp.array([[1.0, 1.0], [3.0, -1.0], [0.0, 0.5]]),
              "bias": jnp.array([0.1, 0.2, 0.3])}
    queries = jnp.array([0, 1])
    shared, log_q = jnp.array([2, 0, 2]), jnp.log(jnp.array([0.5, 0.2, 0.5]))
    # a_x · b_y + c_y − log q(y), row by row.
    expected = np.array([[0.0 + 0.3, 1.0 + 0.1, 0.0 + 0.3], [1.0 + 0.3, 2.0 + 0.1, 1.0 + 0.3]])
    expected -= np.log([0.5, 0.2, 0.5])
    rows = generator.candidate_rows(params, queries, shared)
    np.testing.assert_allclose(generator.candidate_logits(rows, queries >= 0, log_q), expected, rtol=1e-6)
    own = jnp.array([[1, 0], [2, 1]])
    log_q_own = jnp.log(jnp.array([[0.2, 0.5], [0.5, 0.2]]))
    expected_own = np.array([[3.0 + 0.2, 1.0 + 0.1], [1.0 + 0.3, -2.0 + 0.2]]) - np.log([[0.2, 0.5], [0.5, 0.2]])
    rows = generator.candidate_rows(params, queries, own)
    np.testing.assert_allclose(generator.candidate_logits(rows, queries >= 0, log_q_own), expected_own, rtol=1e-6)


CANDIDATE_CONFIGS = [word.GameConfig(sampler="ace", negatives=NUM_NEG, generator=g, candidates=4)
                     for g in ("pool", "kbgan")]


@pytest.mark.parametrize("config", CANDIDATE_CONFIGS, ids=["pool", "kbgan"])
def test_candidate_generators_start_uniform_over_the_draws_and_learn(config):
    # Started at c = log q, the generator weighs its 4 noise draws alike: entropy log 4, whatever the draws.
    state = make_state(config, random_params(), gen_bias=jnp.array(UNIGRAM.log_probs))  # a copy: the state is donated
    for step in range(3):
        before = snapshot(state.gen_params)
        state, metrics = jitted_step(config)(state, SKIPGRAM_BATCH, UNIGRAM)
        assert all(np.isfinite(v) for v in metrics.values()), metrics
        if step == 0:
            np.testing.assert_allclose(metrics["gen_entropy"], math.log(4), rtol=1e-5)
        assert not all(leaves_equal(before, state.gen_params))
    assert TRACES[config, "skipgram"] == 1


@pytest.mark.parametrize("generator_kind", ["pool", "kbgan"])
def test_candidate_generators_row_updates_equal_dense(generator_kind):
    """Row-sparse SGD on the rows read gives the generator the same tables as optax SGD on whole tables."""
    config = word.GameConfig(sampler="ace", negatives=NUM_NEG, generator=generator_kind, candidates=4)

    def start():
        gen_params = generator.init(jax.random.key(5), VOCAB, VOCAB, DIM, bias=jnp.array(UNIGRAM.log_probs))
        gen_params["cand"] = 0.3 * jax.random.normal(jax.random.key(6), gen_params["cand"].shape)  # every row moves
        return gen_params

    def run(gen_tx, batch):
        state = game.create_state(jax.random.key(0), random_params(), TX, start(), gen_tx)
        step = jax.jit(functools.partial(word.train_step, config=config), compiler_options=FAST_COMPILE)
        for _ in range(2):
            state, metrics = step(state, batch, UNIGRAM)
        return snapshot((state.gen_params, state.params, metrics["gen_loss"]))

    for layout, batch in (("skipgram", SKIPGRAM_BATCH), ("cbow", CBOW_BATCH)):
        dense, sparse = run(optax.sgd(0.1), batch), run(sparse_optim.sgd(0.1), batch)
        for a, b in zip(jax.tree_util.tree_leaves(dense), jax.tree_util.tree_leaves(sparse)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=layout)
        assert not np.allclose(dense[0]["cand"], start()["cand"])  # it did learn


def test_candidate_generators_pick_only_their_draws():
    # Noise that always draws word 3: every candidate is 3, so every generated negative is 3 as well.
    config = word.GameConfig(sampler="adv", negatives=NUM_NEG, generator="kbgan", candidates=4)
    state = make_state(config, random_params())
    params = snapshot(state.params)
    queries, positives, mask = [0, 1], [[2, -1], [4, -1]], [[True, False], [True, False]]
    new_state, metrics = jitted_step(config)(state, batch_of(queries, positives, mask), one_hot_noise(3))
    expected, loss, _ = word2vec_update(params, queries, positives, mask, negative=3, num_neg=NUM_NEG, lr=LR,
                                        rule=config.false_negatives)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(new_state.params["out"], expected["out"], rtol=1e-5, atol=1e-6)


# --- the generator that reads the discriminator's rows (generator.Tied) ---

TIED = {form: word.GameConfig(sampler="ace", negatives=NUM_NEG, generator=form, candidates=4,
                              gen_tables="discriminator", gen_temperature=2.0) for form in ("exact", "pool", "kbgan")}
TIED["floored"] = dataclasses.replace(TIED["pool"], gen_min_entropy=1.0, gen_temperature=0.1)


def test_tied_logits_by_hand():
    params = random_params()
    u, v = np.asarray(params["in"], np.float64), np.asarray(params["out"], np.float64)
    gen_params = {"log_beta": jnp.log(jnp.float32(0.5)), "bias": jnp.arange(VOCAB, dtype=jnp.float32) / 10}
    c, log_q = np.arange(VOCAB) / 10, np.asarray(UNIGRAM.log_probs, np.float64)
    for form in ("exact", "pool", "kbgan"):
        config = TIED[form]
        part = word.game_parts(config).generator
        for batch in (SKIPGRAM_BATCH, CBOW_BATCH):
            query = u[np.asarray(batch.queries)]
            if query.ndim == 3:  # CBOW: the mean of the valid context rows
                valid = np.asarray(batch.queries) >= 0
                query = (query * valid[..., None]).sum(1) / valid.sum(1, keepdims=True)
            proposal = part.propose(gen_params, batch, UNIGRAM, jax.random.key(1), family=word.Pairs(),
                                    game=word.game_parts(config), sparse=False, disc=params)
            full = 0.5 * query @ v.T + c  # β u_x · v_y + c_y
            np.testing.assert_allclose(part.full_logits(gen_params, params, batch.queries, word.Pairs()), full,
                                       rtol=1e-5, atol=1e-6)
            if form == "exact":
                np.testing.assert_allclose(proposal.logits, full, rtol=1e-5, atol=1e-6)
                continue
            draws = np.asarray(proposal.draws)
            assert draws.shape == ((2, 4) if form == "kbgan" else (4,))
            expected = np.take_along_axis(full, np.broadcast_to(draws, (2, 4)), axis=1) - log_q[draws]
            np.testing.assert_allclose(proposal.logits, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form", sorted(TIED))
def test_tied_generator_learns_its_temperature_and_bias_and_compiles_once(form):
    config = TIED[form]
    for layout, batch in (("skipgram", SKIPGRAM_BATCH), ("cbow", CBOW_BATCH)):
        state = make_state(config, random_params(), gen_bias=jnp.array(UNIGRAM.log_probs))
        for _ in range(3):
            before = snapshot((state.gen_params, state.params))
            state, metrics = jitted_step(config, layout)(state, batch, UNIGRAM)
            assert all(np.isfinite(v) for v in metrics.values()), metrics
            # Floored (β = 10 over 4 draws), the cap binds: β stays, and the entropy stays at the floor.
            for name in ("bias",) if config.gen_min_entropy else ("log_beta", "bias"):
                assert not np.array_equal(before[0][name], state.gen_params[name]), name
            assert metrics["gen_entropy"] >= config.gen_min_entropy - 1e-3
            assert not np.array_equal(before[1]["in"], state.params["in"])
        assert TRACES[config, layout] == 1
    windows = dataclasses.replace(config, shared_negatives=True)
    state = make_state(windows, random_params())
    state, metrics = jitted_step(windows, "windows")(state, WINDOW_BATCH, UNIGRAM)
    assert all(np.isfinite(v) for v in metrics.values()), metrics


@pytest.mark.parametrize("form", ["exact", "pool", "kbgan"])
def test_tied_generator_never_proposes_a_known_positive(form):
    # Every id but 5 is known to both queries: the generator's softmax holds only 5 (or its draws of 5).
    known = jnp.array([[0, 1, 2, 3, 4, -1], [4, 3, 2, 1, 0, -1]], jnp.int32)
    batch = SKIPGRAM_BATCH.replace(known=known)
    params, config = random_params(), TIED[form]
    part = word.game_parts(config).generator
    gen_params = generator.tied_init(jnp.array(UNIGRAM.log_probs), 2.0)
    for seed in range(5):
        proposal = part.propose(gen_params, batch, UNIGRAM, jax.random.key(seed), family=word.Pairs(),
                                game=word.game_parts(config), sparse=False, disc=params)
        ids = np.broadcast_to(np.arange(VOCAB) if proposal.draws is None else proposal.draws, proposal.logits.shape)
        probs = np.asarray(jax.nn.softmax(proposal.logits, axis=-1))
        if (ids == 5).any(-1).all():
            assert probs[ids != 5].max() == 0.0 and np.isfinite(generator.entropy(proposal.logits)).all()
        else:  # no draw of 5 in a row: every column is known, and that row's generator has nothing to pick
            assert form != "exact"
    full = generator.without_known(part.full_logits(gen_params, params, batch.queries, word.Pairs()), None, known)
    np.testing.assert_array_equal(np.asarray(jax.nn.softmax(full, axis=-1)).argmax(-1), [5, 5])
    assert np.asarray(jax.nn.softmax(full, axis=-1))[:, :5].max() == 0.0


def test_the_entropy_floor_caps_beta_where_it_binds_and_nowhere_else():
    scores = jnp.array([[4.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])  # row 1: uniform at any β
    bias = jnp.zeros((1, 4))
    floor = 0.8  # nats; row 0 at β = 10 is nearly one-hot (H ≈ 0), at β = 0 uniform (log 4 ≈ 1.39)
    cap = generator.entropy_floor_beta(scores, bias, floor, jnp.float32(10.0))
    h0 = float(generator.entropy(cap[0] * scores[:1] + bias)[0])
    assert h0 == pytest.approx(floor, abs=1e-4) and 0 < float(cap[0]) < 10.0
    assert float(cap[1]) == 10.0  # the floor never binds: β keeps its learned value
    assert float(generator.entropy_floor_beta(scores, bias, 2.0, jnp.float32(10.0))[0]) == 0.0  # above log 4: β = 0
    # In the generator: the learned β where the floor does not bind, and no gradient to log β where it does.
    part = generator.Tied(min_entropy=floor)
    params = {"log_beta": jnp.log(jnp.float32(10.0)), "bias": jnp.zeros(4)}
    logits = part.tilt(params["log_beta"], scores, bias)
    np.testing.assert_allclose(logits[0], cap[0] * scores[0], rtol=1e-6)
    grad = jax.grad(lambda lb: part.tilt(lb, scores, bias)[0].sum())(params["log_beta"])
    assert float(grad) == 0.0


def test_tied_generator_is_harder_than_the_noise_from_the_start():
    """At T = 0.5 over a random discriminator, before any learning, g's negatives cost D more than q's."""
    k_in, k_out = jax.random.split(jax.random.key(4))
    params = {"in": jax.random.normal(k_in, (VOCAB, DIM)), "out": jax.random.normal(k_out, (VOCAB, DIM))}
    part = generator.Tied()
    cold = generator.tied_init(jnp.array(UNIGRAM.log_probs), temperature=0.5)
    got = hardness.word_hardness(params, lambda q, key: (part.full_logits(cold, params, q, word.Pairs()), None),
                                 UNIGRAM, np.arange(VOCAB), jax.random.key(0), draws=200, top_k=1)
    assert got["loss_ratio"] > 1.2 and got["gen_top_k"] > got["noise_top_k"], got


# --- jit and determinism ---

@pytest.mark.parametrize("config", [NS, ACE], ids=["ns", "ace"])
def test_the_step_compiles_once(config):
    """Three calls on a fresh state; every other test that used this step shared the one trace too."""
    step = jitted_step(config)
    state = make_state(config, random_params())
    for _ in range(3):
        state, _ = step(state, SKIPGRAM_BATCH, UNIGRAM)
    assert TRACES[config, "skipgram"] == 1 and step._cache_size() == 1
    assert state.step == 3


@pytest.mark.parametrize("config", [NS, ACE], ids=["ns", "ace"])
def test_same_seed_gives_bitwise_identical_params(config):
    def run():
        state = make_state(config, random_params(seed=3), seed=7)
        for _ in range(3):
            state, _ = jitted_step(config)(state, SKIPGRAM_BATCH, UNIGRAM)
        return snapshot((state.params, state.gen_params, state.baseline))

    assert all(leaves_equal(run(), run()))


# --- a toy corpus end to end ---

def two_group_corpus(num_sentences: int = 40, length: int = 25, seed: int = 0) -> np.ndarray:
    """Sentences drawn from words 0–4 or from words 5–9, alternating: each group's words share contexts."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.integers(0, 5, length) + 5 * (s % 2) for s in range(num_sentences)]).astype(np.int32)


def test_toy_corpus_separates_the_two_groups():
    vocab, dim, chunk, window = 10, 8, 100, 2
    tokens = two_group_corpus()
    counts = np.bincount(tokens, minlength=vocab)
    corpus = windows.make_device_corpus(tokens, counts, sample=0.0, key=jax.random.key(1))
    stream = windows.subsample_epoch(corpus, 0, 0, chunk=chunk)  # sample 0 keeps every token, every epoch
    epoch = windows.steps_in(len(tokens), chunk)
    state = game.create_state(jax.random.key(4), skipgram.init(jax.random.key(2), vocab, dim), optax.sgd(0.02))
    make_batch = jax.jit(functools.partial(windows.make_batch, chunk=chunk, window=window, layout="skipgram"),
                         compiler_options=FAST_COMPILE)
    step = jitted_step(NS, "toy corpus")
    dist = noise.unigram(counts)
    for s in range(200):
        epoch_stream = stream.replace(first_step=jnp.int32(s // epoch * epoch))
        state, metrics = step(state, make_batch(epoch_stream, jnp.int32(s)), dist)
    assert np.isfinite(metrics["loss"])
    vectors = np.asarray(state.params["in"])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit.T
    group = np.arange(vocab) // 5
    same = (group[:, None] == group[None, :]) & ~np.eye(vocab, dtype=bool)
    different = group[:, None] != group[None, :]
    assert cos[same].mean() > cos[different].mean() + 0.5, (cos[same].mean(), cos[different].mean())
    assert cos[same].min() > cos[different].max()
