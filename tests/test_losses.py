"""Tests of ace_jax.losses and the skip-gram scorer: values worked out by hand on 2×3 inputs, and gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from ace_jax import losses
from ace_jax.scorers import skipgram

# Two examples, three negatives each.
POS = [0.5, -1.0]
NEG = [[0.0, 1.0, -2.0], [2.0, -0.5, 0.3]]


def softplus(x: float) -> float:
    """log(1 + e^x) = −log σ(−x)."""
    return math.log(1.0 + math.exp(x))


def f32(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def test_logistic_terms_by_hand():
    pos_term, neg_terms = losses.logistic_terms(f32(POS), f32(NEG))
    # −log σ(s) = log(1 + e^−s); −log σ(−s) = log(1 + e^s).
    np.testing.assert_allclose(pos_term, [math.log(1 + math.exp(-0.5)), math.log(1 + math.exp(1.0))], rtol=1e-6)
    np.testing.assert_allclose(
        neg_terms,
        [[math.log(2.0), math.log(1 + math.e), math.log(1 + math.exp(-2.0))],
         [math.log(1 + math.exp(2.0)), math.log(1 + math.exp(-0.5)), math.log(1 + math.exp(0.3))]],
        rtol=1e-6,
    )


def test_negative_sampling_loss_without_weights():
    expected = [
        softplus(-0.5) + softplus(0.0) + softplus(1.0) + softplus(-2.0),
        softplus(1.0) + softplus(2.0) + softplus(-0.5) + softplus(0.3),
    ]
    np.testing.assert_allclose(losses.negative_sampling_loss(f32(POS), f32(NEG)), expected, rtol=1e-6)


def test_negative_sampling_loss_with_weights():
    weights = [[1.0, 0.0, 2.0], [0.5, 1.0, 0.0]]
    expected = [
        softplus(-0.5) + 1.0 * softplus(0.0) + 2.0 * softplus(-2.0),
        softplus(1.0) + 0.5 * softplus(2.0) + 1.0 * softplus(-0.5),
    ]
    np.testing.assert_allclose(losses.negative_sampling_loss(f32(POS), f32(NEG), f32(weights)), expected, rtol=1e-6)


def test_nce_loss_is_the_posterior_of_data_against_k_noise_draws():
    k = 3
    q_pos = [0.1, 0.25]
    q_neg = [[0.2, 0.05, 0.5], [0.1, 0.1, 0.4]]
    log_kq_pos = f32([math.log(k * q) for q in q_pos])
    log_kq_neg = f32([[math.log(k * q) for q in row] for row in q_neg])
    # P(D=1 | y) = e^s / (e^s + k q(y)): −log P = log(1 + k q e^−s) for the positive and
    # −log(1 − P) = log(1 + e^s / (k q)) for each negative.
    expected = [
        math.log(1 + k * q_pos[b] * math.exp(-POS[b]))
        + sum(math.log(1 + math.exp(NEG[b][j]) / (k * q_neg[b][j])) for j in range(3))
        for b in range(2)
    ]
    got = losses.nce_loss(f32(POS), f32(NEG), log_kq_pos, log_kq_neg)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # With k q = 1 everywhere NCE is negative sampling.
    np.testing.assert_allclose(
        losses.nce_loss(f32(POS), f32(NEG), jnp.zeros(2), jnp.zeros((2, 3))),
        losses.negative_sampling_loss(f32(POS), f32(NEG)), rtol=1e-6)


def test_hinge_loss_by_hand():
    # Row 0: max(0, 1 − 0.5 + [0, 1, −2]) = [0.5, 1.5, 0]; row 1: 1 + 1 + [2, −0.5, 0.3] = [4, 1.5, 2.3].
    np.testing.assert_allclose(losses.hinge_loss(f32(POS), f32(NEG)), [2.0, 7.8], rtol=1e-6)
    # margin 0.5: [0, 1, 0] and [3.5, 1, 1.8]; weights drop or double some.
    weights = f32([[1.0, 2.0, 1.0], [0.0, 1.0, 1.0]])
    got = losses.hinge_loss(f32(POS), f32(NEG), margin=0.5, weights=weights)
    np.testing.assert_allclose(got, [2.0, 2.8], rtol=1e-6)
    pos_term, neg_terms = losses.hinge_terms(f32(POS), f32(NEG))
    np.testing.assert_array_equal(pos_term, [0.0, 0.0])
    np.testing.assert_allclose(neg_terms, [[0.5, 1.5, 0.0], [4.0, 1.5, 2.3]], rtol=1e-6)


def test_softmax_cross_entropy_by_hand():
    logits = f32([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels = jnp.array([2, 1], jnp.int32)
    # −log(e^3 / (e + e^2 + e^3)) = log(1 + e^−1 + e^−2); a uniform row gives log 3.
    expected = [math.log(1 + math.exp(-1) + math.exp(-2)), math.log(3.0)]
    np.testing.assert_allclose(losses.softmax_cross_entropy(logits, labels), expected, rtol=1e-6)
    np.testing.assert_allclose(losses.softmax_cross_entropy(logits, jnp.array([0, 0])),
                               [math.log(1 + math.e + math.e**2), math.log(3.0)], rtol=1e-6)


def test_hierarchical_softmax_loss_masks_padded_nodes():
    node_logits = f32([[0.5, -1.0, 2.0], [1.5, 0.2, 50.0]])
    codes = jnp.array([[0, 1, 1], [1, 0, 0]], jnp.int8)
    mask = jnp.array([[True, True, True], [True, True, False]])
    # Code 0 is the branch with probability σ(s), code 1 the one with σ(−s); the padded node (50) is ignored.
    expected = [
        softplus(-0.5) + softplus(-1.0) + softplus(2.0),
        softplus(1.5) + softplus(-0.2),
    ]
    np.testing.assert_allclose(losses.hierarchical_softmax_loss(node_logits, codes, mask), expected, rtol=1e-6)
    # Padded nodes get no gradient.
    grad = jax.grad(lambda s: losses.hierarchical_softmax_loss(s, codes, mask).sum())(node_logits)
    assert grad[1, 2] == 0.0
    # ∂/∂s of log(1 + e^−s) is −σ(−s); of log(1 + e^s) is σ(s).
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    np.testing.assert_allclose(grad[0], [-sigmoid(-0.5), sigmoid(-1.0), sigmoid(2.0)], rtol=1e-6)


def test_s2net_pairwise_loss_gamma_10():
    sim_pos = f32([[0.9, 0.2, 0.5], [0.0, -0.3, 0.7]])
    sim_neg = f32([[0.8, 0.3, 0.5], [0.1, -0.35, 0.0]])
    # Δ = [[0.1, −0.1, 0], [−0.1, 0.05, 0.7]]; loss = log(1 + e^(−10 Δ)).
    expected = [
        [math.log(1 + math.exp(-1.0)), math.log(1 + math.exp(1.0)), math.log(2.0)],
        [math.log(1 + math.exp(1.0)), math.log(1 + math.exp(-0.5)), math.log(1 + math.exp(-7.0))],
    ]
    np.testing.assert_allclose(losses.s2net_pairwise_loss(sim_pos, sim_neg, gamma=10.0), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.s2net_pairwise_loss(sim_pos, sim_neg), expected, rtol=1e-5)


# Inputs kept at least 0.1 away from the hinge's kinks so finite differences see a smooth function.
WEIGHTS = [[1.0, 0.5, 2.0], [0.0, 1.0, 1.5]]
LOG_KQ_POS = [math.log(0.3), math.log(0.75)]
LOG_KQ_NEG = [[math.log(0.6), math.log(0.15), math.log(1.5)], [math.log(0.3)] * 3]
DIFFERENTIABLE = {
    "logistic_terms": (losses.logistic_terms, (POS, NEG)),
    "negative_sampling": (losses.negative_sampling_loss, (POS, NEG)),
    "negative_sampling_weighted": (losses.negative_sampling_loss, (POS, NEG, WEIGHTS)),
    "nce": (losses.nce_loss, (POS, NEG, LOG_KQ_POS, LOG_KQ_NEG)),
    "nce_weighted": (losses.nce_loss, (POS, NEG, LOG_KQ_POS, LOG_KQ_NEG, WEIGHTS)),
    "hinge": (losses.hinge_loss, (POS, NEG)),
    "softmax_cross_entropy": (lambda logits: losses.softmax_cross_entropy(logits, jnp.array([2, 0])),
                              ([[1.0, 2.0, 3.0], [0.3, -0.2, 0.1]],)),
    "hierarchical_softmax": (
        lambda s: losses.hierarchical_softmax_loss(s, jnp.array([[0, 1, 1], [1, 0, 0]]),
                                                   jnp.array([[True, True, True], [True, True, False]])),
        ([[0.5, -1.0, 2.0], [1.5, 0.2, -0.7]],)),
    "s2net": (losses.s2net_pairwise_loss, ([[0.9, 0.2, 0.5], [0.0, -0.3, 0.7]], [[0.8, 0.3, 0.5], [0.1, -0.35, 0.0]])),
}


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
def test_loss_gradients(name):
    fn, args = DIFFERENTIABLE[name]
    check_grads(fn, tuple(f32(a) for a in args), order=1, modes=["rev"], eps=1e-3)


def score_params(vocab: int = 5, dim: int = 3) -> dict:
    k_in, k_out = jax.random.split(jax.random.key(0))
    return {"in": jax.random.normal(k_in, (vocab, dim)), "out": jax.random.normal(k_out, (vocab, dim))}


SKIPGRAM_QUERIES = jnp.array([1, 4], jnp.int32)  # [B]
CBOW_QUERIES = jnp.array([[1, 2, -1, 3], [-1, 4, -1, -1]], jnp.int32)  # [B, M], −1 padded; row 0 unused
CANDIDATES = jnp.array([[0, 3, 3], [2, 1, 4]], jnp.int32)  # [B, K]


def test_skipgram_score_is_a_dot_product():
    params = score_params()
    u, v = np.asarray(params["in"]), np.asarray(params["out"])
    expected = [[u[1] @ v[0], u[1] @ v[3], u[1] @ v[3]], [u[4] @ v[2], u[4] @ v[1], u[4] @ v[4]]]
    np.testing.assert_allclose(skipgram.score(params, SKIPGRAM_QUERIES, CANDIDATES), expected, rtol=1e-5, atol=1e-6)


def test_cbow_query_is_the_mean_of_the_valid_rows():
    params = score_params()
    u, v = np.asarray(params["in"]), np.asarray(params["out"])
    query = np.stack([(u[1] + u[2] + u[3]) / 3, u[4]])  # padding (−1) reads neither row −1 nor row 0
    expected = [[query[0] @ v[0], query[0] @ v[3], query[0] @ v[3]],
                [query[1] @ v[2], query[1] @ v[1], query[1] @ v[4]]]
    np.testing.assert_allclose(skipgram.score(params, CBOW_QUERIES, CANDIDATES), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(skipgram.embed_queries(params["in"], CBOW_QUERIES), query, rtol=1e-6)


@pytest.mark.parametrize("queries", [SKIPGRAM_QUERIES, CBOW_QUERIES], ids=["skipgram", "cbow"])
def test_score_gradients_wrt_params(queries):
    params = score_params()
    check_grads(lambda p: skipgram.score(p, queries, CANDIDATES), (params,), order=1, modes=["rev"], eps=1e-3)
    if queries.ndim == 2:
        # Padding is gathered as row 0 but weighted 0, so row 0 (no valid entry) gets no gradient.
        grad = jax.grad(lambda p: skipgram.score(p, queries, CANDIDATES).sum())(params)
        np.testing.assert_array_equal(grad["in"][0], np.zeros(3))
