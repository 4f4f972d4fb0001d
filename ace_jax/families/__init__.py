"""Discriminator families that plug into the ACE game (ace_jax.game): word embeddings and S2Net."""
