"""ace_jax: Adversarial Contrastive Estimation in JAX."""

__version__ = "0.1.0"
