"""Tests of ace_jax.reinforce: the surrogate against the exact gradient of E_g[r] on a 3-item categorical."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from ace_jax import generator, reinforce

THETA = jnp.array([0.3, -0.8, 1.1])
REWARDS = jnp.array([1.0, -0.5, 2.0])


def exact_gradient(theta, rewards) -> np.ndarray:
    """−∇θ Σ_y softmax(θ)_y r_y = −p_i (r_i − Σ_y p_y r_y), the gradient the surrogate must estimate."""
    p = np.exp(np.asarray(theta, np.float64))
    p /= p.sum()
    r = np.asarray(rewards, np.float64)
    return -p * (r - p @ r)


def surrogate_gradient(theta, y, baseline):
    """∇θ of the surrogate for a single draw y (weight 1)."""
    def surrogate(t):
        return reinforce.reinforce_surrogate(jax.nn.log_softmax(t)[y], REWARDS[y], baseline, jnp.ones(()))

    return jax.grad(surrogate)(theta)


@pytest.mark.parametrize("baseline", [0.0, 1.7])
def test_expected_surrogate_gradient_is_the_exact_gradient(baseline):
    p = jax.nn.softmax(THETA)
    per_outcome = [surrogate_gradient(THETA, y, jnp.float32(baseline)) for y in range(3)]
    expectation = sum(p[y] * per_outcome[y] for y in range(3))
    np.testing.assert_allclose(expectation, exact_gradient(THETA, REWARDS), atol=1e-6)
    # The same exact gradient by autodiff of the expectation itself.
    np.testing.assert_allclose(expectation, jax.grad(lambda t: -(jax.nn.softmax(t) * REWARDS).sum())(THETA), atol=1e-6)
    # Each outcome's estimate is −(r_y − b) ∇ log p_y = −(r_y − b)(e_y − p): the baseline changes the
    # single draws, not their mean.
    for y in range(3):
        np.testing.assert_allclose(per_outcome[y], -(REWARDS[y] - baseline) * (jnp.eye(3)[y] - p), atol=1e-6)


def test_monte_carlo_surrogate_gradient():
    num = 100_000
    draws = jax.random.categorical(jax.random.key(0), THETA, shape=(num,))  # [N]

    def surrogate(theta, baseline):
        log_probs = jax.nn.log_softmax(theta)[draws]  # [N]
        return reinforce.reinforce_surrogate(log_probs, REWARDS[draws], baseline, jnp.ones(num))

    exact = exact_gradient(THETA, REWARDS)
    # Per-draw components are bounded by |r − b| ≤ 2.5, so the standard error is below 0.008: 0.03 is ~4 of them.
    for baseline in (0.0, float(jax.nn.softmax(THETA) @ REWARDS)):
        np.testing.assert_allclose(jax.grad(surrogate)(THETA, jnp.float32(baseline)), exact, atol=0.03)


def test_surrogate_value_weights_and_stop_gradient():
    log_probs = jnp.log(jnp.array([[0.5, 0.25, 0.1], [0.2, 0.4, 0.8]]))
    rewards = jnp.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]])
    weights = jnp.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    baseline = jnp.float32(0.5)
    # −(1·0.5·log 0.5 + 2·2.5·log 0.1 + 1·0·log 0.4) / (1 + 2 + 1)
    expected = -(0.5 * math.log(0.5) + 5.0 * math.log(0.1)) / 4
    got = reinforce.reinforce_surrogate(log_probs, rewards, baseline, weights)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # All weights zero: divided by 1, not 0.
    assert reinforce.reinforce_surrogate(log_probs, rewards, baseline, jnp.zeros((2, 3))) == 0.0
    # Rewards, baseline and weights are held fixed.
    grads = jax.grad(reinforce.reinforce_surrogate, argnums=(1, 2, 3))(log_probs, rewards, baseline, weights)
    for g in grads:
        np.testing.assert_array_equal(g, np.zeros_like(g))
    # A baseline broadcast from [B, 1] (the self-critical shape) is accepted.
    per_row = jnp.array([[0.5], [1.0]])
    np.testing.assert_allclose(reinforce.reinforce_surrogate(log_probs, rewards, per_row, weights),
                               -(0.5 * math.log(0.5) + 5.0 * math.log(0.1) - 0.5 * math.log(0.4)) / 4, rtol=1e-6)


def test_entropy_penalty_by_hand():
    entropy = jnp.array([1.0, 2.5, 0.3, 3.0])
    mask = jnp.array([True, True, False, True])
    # relu(2 − H) = [1, 0, (1.7, masked out), 0], averaged over the 3 masked-in rows.
    np.testing.assert_allclose(reinforce.entropy_penalty(entropy, 2.0, mask), 1.0 / 3, rtol=1e-6)
    assert reinforce.entropy_penalty(entropy, 2.0, jnp.zeros(4, bool)) == 0.0


PENALTY_LOGITS = jnp.array([[3.0, 0.0, 0.5, -1.0],   # H ≈ 0.51 < 1: penalised
                            [0.1, 0.0, -0.1, 0.0],   # H ≈ 1.38 > 1: no gradient
                            [4.0, 0.0, 0.0, 0.0],    # H ≈ 0.26 < 1 but masked out
                            [2.0, 1.0, 0.0, 0.0]])   # H ≈ 1.05 > 1: no gradient
PENALTY_MASK = jnp.array([True, True, False, True])


def penalty_of_logits(logits):
    return reinforce.entropy_penalty(generator.entropy(logits), 1.0, PENALTY_MASK)


def test_entropy_penalty_gradient():
    p = np.exp(np.asarray(PENALTY_LOGITS, np.float64))
    p /= p.sum(-1, keepdims=True)
    entropy = -(p * np.log(p)).sum(-1)
    assert entropy[0] < 1.0 < entropy[1] and entropy[2] < 1.0 < entropy[3]
    # ∂H/∂z_j = −p_j (log p_j + H); the penalty is (1/3)·relu(1 − H) on row 0 only.
    expected = np.zeros((4, 4))
    expected[0] = p[0] * (np.log(p[0]) + entropy[0]) / 3
    grad = jax.grad(penalty_of_logits)(PENALTY_LOGITS)
    np.testing.assert_allclose(grad, expected, atol=1e-6)
    np.testing.assert_array_equal(grad[1:], np.zeros((3, 4)))
    check_grads(penalty_of_logits, (PENALTY_LOGITS,), order=1, modes=["rev"], eps=1e-3)


def test_update_moving_average_by_hand():
    rewards = jnp.array([[1.0, 3.0], [5.0, 100.0]])
    mask = jnp.array([[True, True], [True, False]])
    # mean of the masked rewards = 3; 0.9 · 2 + 0.1 · 3 = 2.1.
    np.testing.assert_allclose(reinforce.update_moving_average(jnp.float32(2.0), rewards, mask, 0.9), 2.1, rtol=1e-6)
    assert reinforce.update_moving_average(jnp.float32(2.0), rewards, jnp.zeros((2, 2), bool), 0.9) == 2.0
    np.testing.assert_allclose(reinforce.update_moving_average(jnp.float32(2.0), rewards, mask, 0.0), 3.0, rtol=1e-6)
