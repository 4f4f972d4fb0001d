"""Tests of ace_jax.cpu_kernels: the fused CPU update against autodiff and by hand, equal to the XLA path
inside train_step, independent of the thread count, and the fallback when no compiler can build it."""

import functools
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ace_jax import cpu_kernels, noise, sparse_optim
from ace_jax.families import word
from test_word import (FAST_COMPILE, NUM_NEG, SGNS_CASES, UNIGRAM, WINDOW_BATCH, batch_of, make_state, one_hot_noise,
                        random_params, snapshot, word2vec_update)

pytestmark = pytest.mark.skipif(not cpu_kernels.available(), reason="no C++ compiler here to build the CPU kernel")
LR = 0.2
ROW_SGD = sparse_optim.sgd(LR)  # one object for every state: the optimiser is part of the tree structure
CLIPPED_SGD = sparse_optim.sgd(LR, row_clip=0.3)


@functools.cache
def jitted_step(config: word.GameConfig, layout: str):
    """As test_word's, but apart from its cache: these states hold row SGD, not optax's, so they trace anew
    (test_word counts its traces)."""
    del layout  # part of the cache key: one batch shape per layout
    return jax.jit(functools.partial(word.train_step, config=config), donate_argnums=0, compiler_options=FAST_COMPILE)


def random_problem(seed, v=9, d=11, n=6, m=3, c=4):
    """Tables and windows with repeated ids, padding (−1), zero weights and query rows of zero weight only
    (empty pair slots); d = 11 runs one 8-float vector step and three left over."""
    rng = np.random.default_rng(seed)
    tables = [rng.normal(size=(v, d)).astype(np.float32) for _ in range(2)]
    queries = rng.integers(-1, v, (n, m)).astype(np.int32)
    candidates = rng.integers(-1, v, (n, c)).astype(np.int32)
    weights = (rng.random((n, m, c)) < 0.8) * rng.random((n, m, c)).astype(np.float32) * 2
    weights[rng.random((n, m)) < 0.25] = 0.0
    return tables, queries, candidates, weights.astype(np.float32)


def autodiff_update(tables, queries, candidates, weights, lr, row_clip=0.0):
    """gather, value_and_grad of Σ weight · term over real (query, candidate) pairs, sum per row, clip the
    sums (sparse_optim.clip_rows), add. Logits of query rows without weight are 0: the kernel skips them."""
    q, c = np.maximum(queries, 0), np.maximum(candidates, 0)
    real = (queries >= 0)[:, :, None] & (candidates >= 0)[:, None, :] & weights.any(-1, keepdims=True)

    def loss(a, b):
        s = jnp.einsum("nmd,ncd->nmc", a, b)
        terms = jnp.where(jnp.arange(s.shape[-1]) == 0, -jax.nn.log_sigmoid(s), -jax.nn.log_sigmoid(-s))
        return jnp.where(real, weights * terms, 0.0).sum(), jnp.where(real, s, 0.0)

    (value, logits), (g_in, g_out) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(tables[0][q], tables[1][c])
    summed = [jnp.zeros(t.shape).at[i].add(g) for t, i, g in zip(tables, (q, c), (g_in, g_out))]
    return (*(t - lr * sparse_optim.clip_rows(g, row_clip) for t, g in zip(tables, summed)), logits, value)


@pytest.mark.parametrize("row_clip", [0.0, 1.5], ids=["no_clip", "clip"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_equals_gather_autodiff_scatter(seed, row_clip):
    tables, queries, candidates, weights = random_problem(seed)
    got = jax.jit(cpu_kernels.sgns_update)(*tables, queries, candidates, weights, LR, row_clip)
    expected = autodiff_update(tables, queries, candidates, weights, LR, row_clip)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    if row_clip:  # the clip bit: some rows moved less than without it, and none moved further than lr · clip
        plain = autodiff_update(tables, queries, candidates, weights, LR)
        for new, old, unclipped in zip(got[:2], tables, plain[:2]):
            moved = np.linalg.norm(np.asarray(new) - old, axis=1)
            assert moved.max() <= LR * row_clip * (1 + 1e-5)
            assert (np.linalg.norm(np.asarray(unclipped) - old, axis=1) > LR * row_clip * 1.01).any()


def test_kernel_row_clip_by_hand():
    """One query row u = [1, 0] against the positive v = [0, 0] (s = 0) three times: in the sum, the
    query's gradient is 3 · (σ(0) − 1) · v = 0 and v's is 3 · (σ(0) − 1) · u = (−1.5, 0), norm 1.5, which
    the clip 0.6 scales down to (−0.6, 0)."""
    new_in, new_out, _, _ = cpu_kernels.sgns_update(np.array([[1.0, 0.0]], np.float32), np.zeros((1, 2), np.float32),
                                                    np.zeros((1, 3), np.int32), np.zeros((1, 1), np.int32),
                                                    np.ones((1, 3, 1), np.float32), 0.1, 0.6)
    np.testing.assert_allclose(new_in, [[1.0, 0.0]])
    np.testing.assert_allclose(new_out, [[0.1 * 0.6, 0.0]], rtol=1e-6)


def test_a_query_row_without_weight_is_neither_read_nor_moved():
    """Window 0 scores query row 0 against out row 0; window 1 is an empty pair slot (weights 0) whose
    rows, in row 1 and out row 1, hold NaN: nothing of them may reach the tables, the logits or the loss."""
    in_table = np.array([[1.0, 0.0], [np.nan, np.nan]], np.float32)
    out_table = np.array([[0.5, 0.0], [np.nan, np.nan]], np.float32)
    weights = np.array([[[1.0]], [[0.0]]], np.float32)
    new_in, new_out, logits, loss = cpu_kernels.sgns_update(in_table, out_table, np.array([[0], [1]], np.int32),
                                                            np.array([[0], [1]], np.int32), weights, 0.1, 1.0)
    sig = 1 / (1 + np.exp(-0.5))
    np.testing.assert_allclose(logits, [[[0.5]], [[0.0]]])
    np.testing.assert_allclose(loss, -np.log(sig), rtol=1e-6)
    np.testing.assert_allclose(new_in[0], [1.0 + 0.1 * (1 - sig) * 0.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(new_out[0], [0.5 + 0.1 * (1 - sig), 0.0], rtol=1e-6)
    assert np.isnan(new_in[1]).all() and np.isnan(new_out[1]).all()  # left as they were


def test_kernel_update_by_hand():
    """u = [1, 0] scores its positive v = [0.5, 0] (s = 0.5) and a negative n = [0, 1] (s = 0)."""
    in_table = np.array([[1.0, 0.0]], np.float32)
    out_table = np.array([[0.5, 0.0], [0.0, 1.0]], np.float32)
    queries, candidates = np.array([[0]], np.int32), np.array([[0, 1]], np.int32)
    weights = np.ones((1, 1, 2), np.float32)
    new_in, new_out, logits, loss = cpu_kernels.sgns_update(in_table, out_table, queries, candidates, weights, 0.1)
    sig = 1 / (1 + np.exp(-0.5))
    g_pos, g_neg = 0.1 * (1 - sig), -0.1 * 0.5  # lr · (label − σ(s))
    np.testing.assert_allclose(logits, [[[0.5, 0.0]]])
    np.testing.assert_allclose(loss, -np.log(sig) + np.log(2), rtol=1e-6)
    np.testing.assert_allclose(new_in, [[1.0 + 0.5 * g_pos, g_neg]], rtol=1e-6)
    np.testing.assert_allclose(new_out, [[0.5 + g_pos, 0.0], [g_neg, 1.0]], rtol=1e-6)


@pytest.mark.parametrize("row_clip", [0.0, 1.5], ids=["no_clip", "clip"])
def test_kernel_result_does_not_depend_on_the_thread_count(row_clip):
    tables, queries, candidates, weights = random_problem(3, v=20, d=16, n=300, m=4, c=6)  # several blocks of 32
    results = [snapshot(jax.jit(lambda *a, threads=threads: cpu_kernels.sgns_update(*a, row_clip, threads=threads))(
        *tables, queries, candidates, weights, LR)) for threads in (1, 2, 4)]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def step_pair(config, layout, batch, noise_dist, steps=2, tx=ROW_SGD):
    """The same steps with the fused kernel and with the XLA path, from the same state."""
    out = []
    for kernel in ("auto", "xla"):
        cfg = word.GameConfig(**{**config.__dict__, "kernel": kernel})
        state = make_state(cfg, random_params(), tx=tx)
        for _ in range(steps):
            state, metrics = jitted_step(cfg, layout)(state, batch, noise_dist)
        out.append(snapshot((state.replace(key=jax.random.key_data(state.key)), metrics)))
    return out


CONFIGS = {
    "ns-pairs": (word.GameConfig(sampler="ns", negatives=NUM_NEG), "skipgram", batch_of(*SGNS_CASES["padded"][:3])),
    "ns-windows": (word.GameConfig(sampler="ns", negatives=NUM_NEG, shared_negatives=True), "windows", WINDOW_BATCH),
    "ace-pairs": (word.GameConfig(sampler="ace", negatives=NUM_NEG), "skipgram",
                  batch_of(*SGNS_CASES["two_by_two"][:3])),
    "ace-windows": (word.GameConfig(sampler="ace", negatives=NUM_NEG, shared_negatives=True), "windows",
                    WINDOW_BATCH),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_train_step_with_the_kernel_equals_the_xla_path(name):
    config, layout, batch = CONFIGS[name]
    fused, xla = step_pair(config, layout, batch, UNIGRAM)
    for a, b in zip(jax.tree_util.tree_leaves(fused), jax.tree_util.tree_leaves(xla)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["ns-pairs", "ns-windows"])
def test_train_step_with_a_row_clip_equals_the_xla_path(name):
    config, layout, batch = CONFIGS[name]
    fused, xla = step_pair(config, layout, batch, UNIGRAM, tx=CLIPPED_SGD)
    for a, b in zip(jax.tree_util.tree_leaves(fused), jax.tree_util.tree_leaves(xla)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    unclipped, _ = step_pair(config, layout, batch, UNIGRAM)  # and the clip bit
    assert not np.allclose(fused[0].params["out"], unclipped[0].params["out"], atol=1e-4)


@pytest.mark.parametrize("negative", [5, 0], ids=["negative_5", "negative_is_a_centre"])
def test_kernel_step_is_word2vec(negative):
    config = word.GameConfig(sampler="ns", negatives=NUM_NEG, shared_negatives=True)
    params = random_params()
    state, metrics = jitted_step(config, "windows")(make_state(config, params, tx=ROW_SGD), WINDOW_BATCH,
                                                    one_hot_noise(negative))
    expected, loss, _ = word2vec_update(params, [2, 3, 4], [[0], [0], [1]], [[True]] * 3, negative=negative,
                                        num_neg=NUM_NEG, lr=LR, rule="pair")
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(state.params["in"], expected["in"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.params["out"], expected["out"], rtol=1e-5, atol=1e-6)


def compiled_text(config, state, batch):
    step = jax.jit(lambda s, b, n: word.train_step(s, b, n, config=config))
    return step.lower(state, batch, UNIGRAM).compile().as_text()


@pytest.mark.parametrize("config, tx, fused", [
    (word.GameConfig(sampler="ns", shared_negatives=True), ROW_SGD, True),
    (word.GameConfig(sampler="ns", shared_negatives=True, kernel="xla"), ROW_SGD, False),
    (word.GameConfig(sampler="self-adv", shared_negatives=True), ROW_SGD, False),  # weights depend on the scores
    (word.GameConfig(sampler="ns", shared_negatives=True), sparse_optim.adagrad(LR), False),
    # Reads the old tables after the update: the kernel's in-place write would cost whole-table copies.
    (word.GameConfig(sampler="ace", shared_negatives=True, baseline="self-critical"), ROW_SGD, False),
], ids=["ns", "kernel-xla", "self-adv", "adagrad", "self-critical"])
def test_the_kernel_runs_exactly_where_it_applies(config, tx, fused):
    state = make_state(config, random_params(), tx=tx)
    assert (cpu_kernels.TARGET in compiled_text(config, state, WINDOW_BATCH)) == fused


def test_game_config_rejects_an_unknown_kernel():
    with pytest.raises(ValueError, match="kernel must be one of auto, xla"):
        word.GameConfig(kernel="fast")


def test_without_a_compiler_the_kernel_is_off_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_JAX_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "false")  # a compiler that always fails
    with pytest.raises(subprocess.CalledProcessError):
        cpu_kernels.build()
    with pytest.warns(UserWarning, match="could not be built"):
        assert cpu_kernels.available.__wrapped__() is False
    assert list(tmp_path.iterdir()) == []  # no half-written library left behind


def test_uniform_ints_cover_the_range_evenly():
    draws = np.asarray(noise.uniform_ints(jax.random.key(0), (60_000,), 6))
    assert draws.min() == 0 and draws.max() == 5
    np.testing.assert_allclose(np.bincount(draws) / len(draws), 1 / 6, atol=0.01)
