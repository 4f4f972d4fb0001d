"""Tests of ace_jax.sparse_optim: row-sparse SGD, Adagrad and lazy Adam against optax's dense path and by hand."""

import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ace_jax import game, noise, sparse_optim
from ace_jax.families import word
from ace_jax.scorers import skipgram

ROWS, DIM, LR = 7, 3, 0.1
# Steps of ids shaped like the step's candidates [B, n], with repeats and −1 padding. Row 6, the last,
# is untouched in steps 1 and 3: padding that wrapped around (index −1) would move it.
STEP_IDS = [
    [[0, 3, 3], [-1, 5, 0]],
    [[6, -1, -1], [2, 2, 2]],
    [[1, 4, 3], [3, 0, -1]],
    [[5, 5, 6], [1, -1, 4]],
]
# Every row touched every step, some twice, with padding.
ALL_ROW_IDS = [[[0, 1, 2, 3, 4, 5, 6], [2, 2, -1, 5, 0, 1, 3]], [[6, 5, 4, 3, 2, 1, 0], [-1, -1, 4, 4, 4, 0, 6]]] * 2


def table_and_steps(step_ids, seed=0):
    rng = np.random.default_rng(seed)
    ids = [np.array(i, np.int32) for i in step_ids]
    return rng.normal(size=(ROWS, DIM)).astype(np.float32), [(i, rng.normal(size=i.shape + (DIM,)).astype(np.float32))
                                                              for i in ids]


def dense_gradient(ids, grads):
    """The gradient of the whole table: each real occurrence adds its row gradient; padding adds nothing."""
    out = np.zeros((ROWS, DIM), np.float32)
    np.add.at(out, ids[ids >= 0], grads[ids >= 0])
    return out


def run_sparse(opt, table, steps):
    params = {"t": jnp.asarray(table)}
    state = opt.init(params)
    for ids, grads in steps:
        unique_ids, deltas, state = opt.update({"t": jnp.asarray(ids)}, {"t": jnp.asarray(grads)}, state)
        params = sparse_optim.apply_updates(params, unique_ids, deltas)
    return np.asarray(params["t"])


def run_dense(tx, table, steps):
    params = {"t": jnp.asarray(table)}
    state = tx.init(params)
    for ids, grads in steps:
        updates, state = tx.update({"t": jnp.asarray(dense_gradient(ids, grads))}, state, params)
        params = optax.apply_updates(params, updates)
    return np.asarray(params["t"])


def lazy_adam_reference(table, steps, lr=LR, b1=0.9, b2=0.999, eps=1e-8):
    """TensorFlow's LazyAdam in float64: touched rows only, bias correction with the global step t."""
    w, m, v = table.astype(np.float64), np.zeros((ROWS, DIM)), np.zeros((ROWS, DIM))
    for t, (ids, grads) in enumerate(steps, start=1):
        g = dense_gradient(ids, grads).astype(np.float64)
        rows = np.unique(ids[ids >= 0])
        m[rows] = b1 * m[rows] + (1 - b1) * g[rows]
        v[rows] = b2 * v[rows] + (1 - b2) * g[rows] ** 2
        w[rows] -= lr * (m[rows] / (1 - b1**t)) / (np.sqrt(v[rows] / (1 - b2**t)) + eps)
    return w


@pytest.mark.parametrize("num_rows", [3, None], ids=["one-key-sort", "two-operand-sort"])
def test_sum_duplicates_by_hand(num_rows):
    ids = jnp.array([[2, -1], [2, 0]])
    grads = jnp.array([[[1.0, 2.0], [9.0, 9.0]], [[10.0, 20.0], [3.0, 4.0]]])
    unique_ids, summed = sparse_optim.sum_duplicates(ids, grads, num_rows)
    np.testing.assert_array_equal(unique_ids, [0, 2, sparse_optim.DROPPED, sparse_optim.DROPPED])
    # Row 2 twice: 1 + 10, 2 + 20; the padding's gradient sits in a dropped slot.
    np.testing.assert_array_equal(summed[:2], [[3.0, 4.0], [11.0, 22.0]])


@pytest.mark.parametrize("num_rows", [50, None], ids=["one-key-sort", "two-operand-sort"])
def test_sum_duplicates_is_numpys_unique_and_sums(num_rows):
    rng = np.random.default_rng(0)
    ids = rng.integers(-1, 50, size=(40, 7))  # many repeats, and padding
    grads = rng.integers(-8, 8, size=(40, 7, 3)).astype(np.float32)  # integers: any summing order is exact
    unique_ids, summed = jax.jit(sparse_optim.sum_duplicates, static_argnums=2)(jnp.asarray(ids), jnp.asarray(grads),
                                                                                num_rows)
    rows = np.unique(ids[ids >= 0])
    np.testing.assert_array_equal(unique_ids[:len(rows)], rows)
    assert (np.asarray(unique_ids[len(rows):]) == sparse_optim.DROPPED).all()
    np.testing.assert_array_equal(summed[:len(rows)], [grads[ids == r].sum(0) for r in rows])


def test_duplicates_are_summed_before_the_rule():
    # Row 1 twice with gradients 1 and 2 along x, and a padded gradient that must not reach row 2 (the last).
    ids, grads = jnp.array([1, 1, -1]), jnp.array([[1.0, 0.0], [2.0, 0.0], [5.0, 5.0]])
    params = {"t": jnp.zeros((3, 2))}

    def step(opt):
        state = opt.init(params)
        unique_ids, deltas, state = opt.update({"t": ids}, {"t": grads}, state)
        return np.asarray(sparse_optim.apply_updates(params, unique_ids, deltas)["t"]), state

    sgd, _ = step(sparse_optim.sgd(0.5))
    np.testing.assert_allclose(sgd, [[0.0, 0.0], [-1.5, 0.0], [0.0, 0.0]])
    # Adagrad sees g = 3 once: G = 0.1 + 9, not 0.1 + 1 + 4.
    adagrad, state = step(sparse_optim.adagrad(0.5))
    np.testing.assert_allclose(adagrad, [[0.0, 0.0], [-0.5 * 3 / np.sqrt(9.1 + 1e-7), 0.0], [0.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(state.rows["t"][0], [[0.1, 0.1], [9.1, 0.1], [0.1, 0.1]], rtol=1e-6)
    assert state.count == 1


def test_sparse_adagrad_equals_dense_optax():
    table, steps = table_and_steps(STEP_IDS)
    sparse = run_sparse(sparse_optim.adagrad(LR), table, steps)
    np.testing.assert_allclose(sparse, run_dense(optax.adagrad(LR), table, steps), rtol=1e-6, atol=1e-6)
    assert not np.allclose(sparse, table)


def test_sparse_sgd_equals_dense_optax():
    table, steps = table_and_steps(STEP_IDS)
    np.testing.assert_allclose(run_sparse(sparse_optim.sgd(LR), table, steps),
                               run_dense(optax.sgd(LR), table, steps), rtol=1e-6, atol=1e-6)


def test_lazy_adam_equals_dense_adam_when_every_row_is_touched():
    table, steps = table_and_steps(ALL_ROW_IDS)
    np.testing.assert_allclose(run_sparse(sparse_optim.adam(LR), table, steps),
                               run_dense(optax.adam(LR), table, steps), rtol=1e-5, atol=1e-6)


def test_lazy_adam_leaves_untouched_rows_and_their_moments_alone():
    table, steps = table_and_steps(STEP_IDS)
    lazy = run_sparse(sparse_optim.adam(LR), table, steps)
    # float32 against float64: the rows are O(1) and move by O(lr) each step.
    np.testing.assert_allclose(lazy, lazy_adam_reference(table, steps), rtol=1e-5, atol=1e-5)
    # Dense Adam keeps moving rows on their momentum when no id touches them: here it differs.
    assert not np.allclose(lazy, run_dense(optax.adam(LR), table, steps), rtol=1e-3)


def test_clip_rows_by_hand():
    grads = jnp.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])  # norms 5, 0.5, 0
    np.testing.assert_allclose(sparse_optim.clip_rows(grads, 1.0), [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(sparse_optim.clip_rows(grads, 0.0), grads)  # 0: off
    np.testing.assert_allclose(sparse_optim.clip_rows(jnp.array([-4.0, 0.5]), 1.0), [-1.0, 0.5])  # a bias: |g|


def test_row_clip_bounds_the_sum_of_a_rows_repeats():
    # Row 1 three times with g = (2, 0): the sum (6, 0) is clipped to norm 1.5, not each occurrence.
    ids, grads = jnp.array([1, 1, 1, 0]), jnp.array([[2.0, 0.0]] * 3 + [[0.0, 1.0]])
    params = {"t": jnp.zeros((2, 2))}
    opt = sparse_optim.sgd(0.5, row_clip=1.5)
    unique_ids, deltas, state = opt.update({"t": ids}, {"t": grads}, opt.init(params))
    np.testing.assert_allclose(sparse_optim.apply_updates(params, unique_ids, deltas)["t"], [[0.0, -0.5], [-0.75, 0.0]])
    assert opt.name == "sgd" and opt.row_clip == 1.5 and state.count == 1


@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam"])
def test_sparse_row_clip_equals_dense_optax_with_the_clip(name):
    table, steps = table_and_steps(ALL_ROW_IDS if name == "adam" else STEP_IDS)
    clip = 1.0  # the summed rows here have norms up to about 4: some are clipped, some not
    norms = [np.linalg.norm(dense_gradient(ids, grads), axis=1) for ids, grads in steps]
    assert min(n.max() for n in norms) > clip and max(np.median(n) for n in norms) < 4
    sparse = run_sparse(getattr(sparse_optim, name)(LR, row_clip=clip), table, steps)
    dense = run_dense(optax.chain(sparse_optim.dense_row_clip(clip), getattr(optax, name)(LR)), table, steps)
    np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-6)
    assert not np.allclose(sparse, run_sparse(getattr(sparse_optim, name)(LR), table, steps), atol=1e-4)


# --- through the game ---

VOCAB, NUM_NEG = 6, 2
UNIGRAM = noise.unigram(np.array([9, 1, 4, 2, 6, 3]))
FAST_COMPILE = {"xla_backend_optimization_level": 0}
TRACES = collections.Counter()  # (config, optimiser name, layout) -> times the step was traced
# One object per optimiser: the optimiser is part of the state's tree structure, so a new one recompiles.
TXS = {
    "sparse_adagrad": sparse_optim.adagrad(LR),
    "sparse_adam": sparse_optim.adam(LR),
    "dense_adagrad": optax.inject_hyperparams(optax.adagrad)(learning_rate=LR),
}
BATCHES = {  # repeated ids and −1 padding in the candidates (skip-gram) and in the queries (CBOW)
    "skipgram": word.Batch(jnp.array([3, 3]), jnp.array([[1, 2], [1, -1]]), jnp.array([[True, True], [True, False]])),
    "cbow": word.Batch(jnp.array([[1, 2, -1, -1], [0, 4, 4, 5]]), jnp.array([[0], [3]]), jnp.array([[True], [True]])),
}


@functools.cache
def jitted_step(config: word.GameConfig, tx_name: str, layout: str):
    def step(state, batch, noise_dist):
        TRACES[config, tx_name, layout] += 1
        return word.train_step(state, batch, noise_dist, config=config)

    return jax.jit(step, donate_argnums=0, compiler_options=FAST_COMPILE)


def play(tx_name: str, layout: str, rates) -> game.GameState:
    """Steps of the ns game with the learning rate set before each, as word2vec's linear decay does."""
    config = word.GameConfig(sampler="ns", negatives=NUM_NEG, sparse_updates=tx_name.startswith("sparse"))
    k_in, k_out = jax.random.split(jax.random.key(0))
    params = {"in": skipgram.init(k_in, VOCAB, DIM)["in"], "out": 0.5 * jax.random.normal(k_out, (VOCAB, DIM))}
    state = game.create_state(jax.random.key(1), params, TXS[tx_name], sparse_updates=config.sparse_updates)
    for rate in rates:
        hyperparams = {**state.opt_state.hyperparams, "learning_rate": jnp.asarray(rate, jnp.float32)}
        state = state.replace(opt_state=state.opt_state._replace(hyperparams=hyperparams))
        state, _ = jitted_step(config, tx_name, layout)(state, BATCHES[layout], UNIGRAM)
    return state


@pytest.mark.parametrize("layout", sorted(BATCHES))
def test_sparse_adagrad_train_step_equals_dense_optax(layout):
    rates = [LR, 0.75 * LR, 0.5 * LR]
    sparse, dense = play("sparse_adagrad", layout, rates), play("dense_adagrad", layout, rates)
    for name in ("in", "out"):
        np.testing.assert_allclose(sparse.params[name], dense.params[name], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sparse.opt_state.rows[name][0], dense.opt_state.inner_state[0].sum_of_squares[name],
                                   rtol=1e-5)
    # The rate matters: a constant one ends elsewhere.
    assert not np.allclose(play("sparse_adagrad", layout, [LR] * 3).params["in"], sparse.params["in"])


@pytest.mark.parametrize("tx_name", ["sparse_adagrad", "sparse_adam"])
def test_the_sparse_step_compiles_once(tx_name):
    state = play(tx_name, "skipgram", [LR, 0.5 * LR, 0.25 * LR])
    config = word.GameConfig(sampler="ns", negatives=NUM_NEG)
    assert TRACES[config, tx_name, "skipgram"] == 1 and jitted_step(config, tx_name, "skipgram")._cache_size() == 1
    assert state.step == 3 and state.opt_state.count == 3


def test_create_train_state_takes_row_optimisers_with_sparse_updates_only():
    params = {"in": jnp.zeros((VOCAB, DIM)), "out": jnp.zeros((VOCAB, DIM))}
    state = game.create_state(jax.random.key(0), params, sparse_optim.adam(LR))
    assert state.opt_state.rows["in"][0].shape == (VOCAB, DIM)
    with pytest.raises(ValueError, match="sparse_updates=True"):
        game.create_state(jax.random.key(0), params, sparse_optim.adam(LR), sparse_updates=False)
