"""Hardness measures by hand: a two-query, four-word problem whose scores and distributions are known."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ace_jax import generator, hardness, losses, noise
from ace_jax.families import word

# u_0 = (1, 0), u_1 = (0, 1); the output rows make s(0, ·) = [3, 1, 0, −1] and s(1, ·) = [−1, 0, 1, 3].
PARAMS = {"in": jnp.array([[1.0, 0.0], [0.0, 1.0]]),
          "out": jnp.array([[3.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 3.0]])}
# A generator that ignores its query and puts (nearly) all its mass on word 3.
PEAKED = {"query": jnp.zeros((2, 2)), "cand": jnp.zeros((4, 2)), "bias": jnp.array([0.0, 0.0, 0.0, 50.0])}


def table_logits(gen_params):
    """An exact generator's softmax over every word, as word_hardness takes it: (queries, key) -> (logits, None)."""
    return lambda queries, key: (generator.logits(gen_params, queries), None)


def softplus(x):
    return math.log1p(math.exp(x))


# The same generator over three candidate draws, ids [3, 1, 1], its mass on the column that stands for word 3.
PEAKED_POOL = (jnp.array([[50.0, 0.0, 0.0], [50.0, 0.0, 0.0]]), jnp.array([3, 1, 1]))


@pytest.mark.parametrize("gen_of", [table_logits(PEAKED), lambda queries, key: PEAKED_POOL], ids=["exact", "pool"])
def test_word_hardness_by_hand(gen_of):
    one_hot = noise.from_probs(np.array([0.0, 1.0, 0.0, 0.0]))  # every noise draw is word 1
    got = hardness.word_hardness(PARAMS, gen_of, one_hot, np.array([0, 1]), jax.random.key(0), draws=3,
                                 top_k=1, top_gen=2)
    noise_loss = (softplus(1.0) + softplus(0.0)) / 2
    gen_loss = (softplus(-1.0) + softplus(3.0)) / 2
    assert got["noise_loss"] == pytest.approx(noise_loss, rel=1e-5)
    assert got["gen_loss"] == pytest.approx(gen_loss, rel=1e-5)
    assert got["loss_ratio"] == pytest.approx(gen_loss / noise_loss, rel=1e-5)
    # The discriminator's top-1 is word 0 for query 0 and word 3 for query 1: word 1 never, word 3 once.
    assert got["noise_top_k"] == 0.0 and got["gen_top_k"] == pytest.approx(0.5)
    assert got["gen_entropy"] < 1e-6 and got["noise_entropy"] == 0.0
    assert got["gen_overlap"] == pytest.approx(1.0)  # the same top-2 for both queries: unconditional


def test_a_conditional_generator_has_no_overlap_and_noise_only_runs_report_the_noise():
    conditional = {"query": jnp.array([[10.0], [-10.0]]), "cand": jnp.array([[1.0], [1.0], [-1.0], [-1.0]]),
                   "bias": jnp.zeros(4)}  # query 0 prefers words 0, 1; query 1 words 2, 3
    uniform = noise.uniform(4)
    got = hardness.word_hardness(PARAMS, table_logits(conditional), uniform, np.array([0, 1]), jax.random.key(1),
                                 top_gen=2)
    assert got["gen_overlap"] == 0.0 and got["noise_entropy"] == pytest.approx(math.log(4))
    only_noise = hardness.word_hardness(PARAMS, None, uniform, np.array([0, 1]), jax.random.key(1))
    assert set(only_noise) == {"noise_loss", "noise_top_k", "noise_false", "noise_entropy"}


def test_a_generator_reading_the_discriminator_at_a_low_temperature_picks_its_top_score():
    tied = generator.Tied()
    cold = generator.tied_init(jnp.zeros(4), temperature=0.01)  # β = 100: all the mass on D's best candidate
    got = hardness.word_hardness(PARAMS, lambda q, key: (tied.full_logits(cold, PARAMS, q, word.Pairs()), None),
                                 noise.uniform(4), np.array([0, 1]), jax.random.key(2), draws=4, top_k=1, top_gen=1)
    assert got["gen_top_k"] == 1.0 and got["gen_loss"] == pytest.approx(softplus(3.0), rel=1e-5)
    assert got["gen_overlap"] == 0.0  # word 0 for query 0, word 3 for query 1


def test_text_hardness_by_hand():
    # Query text 0 and its partner 1 (cos 1); the negatives are text 2 (cos 0) and text 3 (cos 0.6).
    unit = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    peaked = jnp.array([[0.0, 0.0, 0.0, 50.0]])  # the generator always picks text 3

    got = hardness.text_hardness(unit, np.array([0]), np.array([1]), lambda q, p: peaked, losses.PairwiseLogistic(10.0),
                                 jax.random.key(0), draws=4000, top_k=1)
    assert got["gen_loss"] == pytest.approx(softplus(-10 * (1 - 0.6)), rel=1e-5)
    # Noise: texts 2 and 3 alike (never 0 or 1), so its mean loss lies halfway between theirs, to sampling error.
    noise_loss = (softplus(-10 * 1.0) + softplus(-10 * 0.4)) / 2
    assert got["noise_loss"] == pytest.approx(noise_loss, rel=0.05)
    assert got["gen_top_k"] == 1.0 and got["noise_top_k"] == pytest.approx(0.5, abs=0.03)
    assert got["noise_entropy"] == pytest.approx(math.log(4))


def test_a_draw_that_is_no_negative_is_left_out_and_counted():
    # One query, scores [−inf, 1, 0, −1] (candidate 0 is no negative: a known triple); noise draws [0, 1, 2]:
    # the loss and top-k are over 1 and 2 only, and a third of the draws is false. The generator draws only 0:
    # no negative at all, so its loss is NaN and its false rate 1.
    scores = jnp.array([[-jnp.inf, 1.0, 0.0, -1.0]])
    got = hardness.measure_chunk(scores, jnp.zeros(1), jnp.array([[50.0, 0.0, 0.0, 0.0]]), jnp.array([[0, 1, 2]]),
                                 jax.random.key(0), loss=losses.Logistic(), draws=3, top_k=1, top_gen=1)
    assert float(got["noise_loss"][0]) == pytest.approx((softplus(1.0) + softplus(0.0)) / 2, rel=1e-5)
    assert float(got["noise_top_k"][0]) == pytest.approx(0.5) and float(got["noise_false"][0]) == pytest.approx(1 / 3)
    assert np.isnan(float(got["gen_loss"][0])) and float(got["gen_false"][0]) == 1.0
    summary = hardness.summarize([got, {**got, "gen_loss": jnp.array([2.0])}], 0.0)
    assert summary["gen_loss"] == 2.0  # the mean over the queries that drew a negative
