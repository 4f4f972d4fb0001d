"""Test-wide JAX settings: a silent [B] vs [B, 1] broadcast raises, and arrays stay float32 as in training."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", False)
