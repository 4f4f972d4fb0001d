"""The generator's objective: REINFORCE surrogate, baselines and the entropy regulariser."""

import dataclasses

import jax
import jax.numpy as jnp


def reinforce_surrogate(log_probs: jax.Array, rewards: jax.Array, baseline: jax.Array, weights: jax.Array) -> jax.Array:
    """A scalar whose gradient is the (negated) REINFORCE estimate of ∇_θ E_g[reward].

    Args:
      log_probs: [...] log g_θ(y|x) of the sampled y; the only place θ enters.
      rewards: [...] the discriminator's loss on y (held fixed).
      baseline: broadcastable to rewards; any value independent of y leaves the estimate unbiased.
      weights: [...] 0/1 masks or importance weights; the sum is divided by max(Σ weights, 1).
    Minimising it maximises the expected reward: −mean(stop_gradient(w · (r − b)) · log g).
    References: Williams 1992; Bose, Ling & Cao 2018, eq. 5.
    """
    advantage = jax.lax.stop_gradient(weights * (rewards - baseline))
    return -(advantage * log_probs).sum() / jnp.maximum(jax.lax.stop_gradient(weights).sum(), 1.0)


def entropy_penalty(entropy: jax.Array, target: float, mask: jax.Array) -> jax.Array:
    """mean over masked rows of max(0, c − H(g(·|x))); keeps the generator from collapsing (ACE §3.3)."""
    return jnp.where(mask, jax.nn.relu(target - entropy), 0.0).sum() / jnp.maximum(mask.sum(), 1)


def update_moving_average(baseline: jax.Array, rewards: jax.Array, mask: jax.Array, decay: float) -> jax.Array:
    """b ← decay·b + (1 − decay)·mean(masked rewards); unchanged when nothing is masked in."""
    count = mask.sum()
    mean = jnp.where(mask, rewards, 0.0).sum() / jnp.maximum(count, 1)
    return jnp.where(count > 0, decay * baseline + (1.0 - decay) * mean, baseline)


# Baselines: init/value/update, as optax's init/update pairs. The state is a float32 scalar for each, so
# checkpoints of every baseline have one shape. value(state, greedy) is what the rewards [B, S, K] are
# compared with (broadcastable to them); greedy() gives the rewards [B, S, 1] of the generator's greedy
# choice under the discriminator before its move, and is traced only by the baseline that calls it.


@dataclasses.dataclass(frozen=True)
class NoBaseline:
    def init(self) -> jax.Array:
        return jnp.zeros((), jnp.float32)

    def value(self, state: jax.Array, greedy) -> jax.Array:
        return jnp.zeros(())

    def update(self, state: jax.Array, rewards: jax.Array, mask: jax.Array) -> jax.Array:
        return state


@dataclasses.dataclass(frozen=True)
class MovingAverage(NoBaseline):
    """The mean on-policy reward, averaged over steps with `decay` (`update_moving_average`)."""

    decay: float = 0.99

    def value(self, state: jax.Array, greedy) -> jax.Array:
        return state

    def update(self, state: jax.Array, rewards: jax.Array, mask: jax.Array) -> jax.Array:
        return update_moving_average(state, rewards, mask, self.decay)


@dataclasses.dataclass(frozen=True)
class SelfCritical(NoBaseline):
    """The reward of the generator's own greedy choice for the same query (Rennie et al. 2017)."""

    def value(self, state: jax.Array, greedy) -> jax.Array:
        return greedy()
