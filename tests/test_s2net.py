"""Tests of the S2Net scorer, its losses and the term vectors: values by hand, gradients, and the paper's
3-question example."""

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from ace_jax import losses, text_features
from ace_jax.scorers import s2net

# Document frequencies: dog 2, cat 1 (three times in one text), sat 1, the 1.
TINY = ["Cat, cat & CAT.", "dog sat", "the dog"]
QUESTIONS = ["what movies johnny depp is in?", "what movies does johnny depp play in?",
             "who has been married to julia roberts?"]


def f32(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def dense(ids: np.ndarray, weights: np.ndarray, num_terms: int) -> np.ndarray:
    """The [N, d] matrix the padded term vectors stand for (tests only)."""
    out = np.zeros((ids.shape[0], num_terms))
    for n, t in zip(*np.nonzero(ids >= 0)):
        out[n, ids[n, t]] += weights[n, t]
    return out


def test_tokenize_lower_cases_and_splits_on_non_alphanumerics():
    expected = ["what", "movies", "johnny", "depp", "s", "in", "2011"]
    assert text_features.tokenize("What movies, Johnny-Depp's in_2011?") == expected
    assert text_features.tokenize("  ?! ") == []


def test_vocab_orders_by_document_frequency_then_word():
    # By term count cat (3) would come first; by document frequency dog (2) does, then the ties a-z.
    assert text_features.build_vocab(TINY) == {"dog": 0, "cat": 1, "sat": 2, "the": 3}
    assert text_features.build_vocab(TINY, min_df=2) == {"dog": 0}


def test_idf_and_tfidf_weights_by_hand():
    vocab = text_features.build_vocab(TINY)
    idf = text_features.idf_weights(TINY, vocab)
    np.testing.assert_allclose(idf, [math.log(3 / 2), math.log(3), math.log(3), math.log(3)], rtol=1e-6)
    ids, weights = text_features.featurize(TINY + ["unknown words only"], vocab, idf)
    # Terms by descending weight; cat counts 3 times; the last text has no vocabulary word.
    np.testing.assert_array_equal(ids, [[1, -1], [2, 0], [3, 0], [-1, -1]])
    np.testing.assert_allclose(
        weights, [[3 * math.log(3), 0], [math.log(3), math.log(1.5)], [math.log(3), math.log(1.5)], [0, 0]], rtol=1e-6
    )
    assert ids.dtype == np.int32 and weights.dtype == np.float32


def test_binary_weights_and_max_terms():
    vocab = text_features.build_vocab(TINY)
    ids, weights = text_features.featurize(TINY, vocab, None, weighting="binary")
    np.testing.assert_array_equal(ids, [[1, -1], [0, 2], [0, 3]])  # equal weights: by id
    np.testing.assert_array_equal(weights, [[1, 0], [1, 1], [1, 1]])
    idf = text_features.idf_weights(TINY, vocab)
    ids, weights = text_features.featurize(TINY, vocab, idf, max_terms=1)  # keeps the largest weight
    np.testing.assert_array_equal(ids, [[1], [2], [3]])
    with pytest.raises(ValueError, match="weighting"):
        text_features.featurize(TINY, vocab, idf, weighting="bm25")


def test_cosine_by_hand():
    u = f32([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]])
    v = f32([[4.0, 3.0], [-2.0, 0.0], [1.0, 1.0]])
    # 24/25; opposite directions; a zero vector gives 0 (its squared norm clipped to ε), not NaN.
    np.testing.assert_allclose(s2net.cosine(u, v), [0.96, -1.0, 0.0], rtol=1e-6)
    grad = jax.grad(lambda x: s2net.cosine(x, v).sum())(u)
    assert np.isfinite(grad).all()


def test_s2net_losses_by_hand():
    sim_pos, sim_neg = f32([0.9, 0.3, 0.1]), f32([0.2, 0.1, 0.4])  # Δ = 0.7, 0.2, −0.3
    np.testing.assert_allclose(
        losses.s2net_pairwise_loss(sim_pos, sim_neg),
        [math.log(1 + math.exp(-7.0)), math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(3.0))],
        rtol=1e-5,
    )
    np.testing.assert_allclose(losses.s2net_hinge_loss(sim_pos, sim_neg), [0.0, 0.3, 0.8], rtol=1e-5)
    np.testing.assert_allclose(losses.s2net_hinge_loss(sim_pos, sim_neg, margin=1.0), [0.3, 0.8, 1.3], rtol=1e-5)
    np.testing.assert_allclose(losses.s2net_squared_loss(sim_pos, f32([1.0, 0.0, -1.0])), [0.005, 0.045, 0.605],
                               rtol=1e-5)


@pytest.mark.parametrize("activation", ["none", "tanh", "sigmoid"])
def test_sparse_projection_equals_dense(activation):
    vocab = text_features.build_vocab(QUESTIONS)
    idf = text_features.idf_weights(QUESTIONS, vocab)
    ids, weights = text_features.featurize(QUESTIONS, vocab, idf)
    params = s2net.init(jax.random.key(0), len(vocab), 4)
    a = np.asarray(params["A"], np.float64)
    act = {"none": lambda g: g, "tanh": np.tanh, "sigmoid": lambda g: 1 / (1 + np.exp(-g))}[activation]
    g = act(dense(ids, weights, len(vocab)) @ a)  # [3, 4]
    np.testing.assert_allclose(s2net.project(params, ids, weights, activation), g, rtol=1e-5, atol=1e-6)
    pairs = [(0, 1), (0, 2), (1, 2)]
    p, q = np.array(pairs).T
    expected = [g[i] @ g[j] / np.linalg.norm(g[i]) / np.linalg.norm(g[j]) for i, j in pairs]
    got = s2net.score(params, ids[p], weights[p], ids[q], weights[q], activation)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_lsi_init_is_the_top_singular_subspace():
    rng = np.random.default_rng(1)
    ids = np.array([[0, 3, 5, -1], [1, 2, -1, -1], [0, 1, 4, 6], [2, 5, 6, 7], [3, 4, 7, -1]], np.int32)
    weights = np.where(ids >= 0, rng.uniform(0.5, 2.0, ids.shape), 0).astype(np.float32)
    dim = 3
    a = np.asarray(s2net.init(jax.random.key(0), 8, dim, "lsi", ids, weights)["A"])
    _, sing, vt = np.linalg.svd(dense(ids, weights, 8))
    assert np.all(np.diff(sing[: dim + 1]) < -1e-3)  # distinct singular values, so the vectors are defined up to sign
    np.testing.assert_allclose(np.abs(a.T @ vt[:dim].T), np.sqrt(8 / dim) * np.eye(dim), atol=1e-5)
    with pytest.raises(ValueError, match="dim"):
        s2net.init(jax.random.key(0), 8, 5, "lsi", ids, weights)


@pytest.mark.parametrize("activation", ["none", "tanh", "sigmoid"])
def test_gradient_through_cosine_and_pairwise_loss(activation):
    ids = jnp.array([[0, 1, 2], [1, 3, -1], [4, 5, -1]], jnp.int32)
    weights = f32([[1.0, 0.5, 2.0], [1.5, 1.0, 0.0], [0.7, 1.2, 0.0]])
    # Δ ≈ −0.2 at this A, so with γ = 10 the loss (≈ 2) and its gradient (entries up to ≈ 14) are far from flat.
    a = jax.random.normal(jax.random.key(1), (6, 3)) / np.sqrt(3)
    first, second = jnp.array([0, 0]), jnp.array([1, 2])

    def loss(a):
        sims = s2net.score({"A": a}, ids[first], weights[first], ids[second], weights[second], activation)
        return losses.s2net_pairwise_loss(sims[0], sims[1], gamma=10.0)

    check_grads(loss, (a,), order=1, modes=("fwd", "rev"), eps=1e-3, atol=1e-2, rtol=1e-2)
    # check_grads compares along one random direction; central differences entry by entry are stricter.
    eps = 1e-3
    basis = np.eye(a.size, dtype=np.float32).reshape(a.size, *a.shape) * eps
    numeric = np.array([(loss(a + e) - loss(a - e)) / (2 * eps) for e in basis]).reshape(a.shape)
    np.testing.assert_allclose(jax.grad(loss)(a), numeric, atol=1e-2, rtol=1e-3)


@partial(jax.jit, static_argnames="steps")
def train_pairwise(params, ids, weights, steps=40):
    """Adam on the pairwise loss of (q1, q2) against (q1, q3), γ = 10."""
    tx = optax.adam(0.1)

    def loss_fn(params):
        sims = s2net.score(params, ids[jnp.array([0, 0])], weights[jnp.array([0, 0])], ids[1:], weights[1:])
        return losses.s2net_pairwise_loss(sims[0], sims[1], gamma=10.0)

    def step(carry, _):
        params, opt_state = carry
        updates, opt_state = tx.update(jax.grad(loss_fn)(params), opt_state)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    return params


def test_worked_example_three_questions():
    vocab = text_features.build_vocab(QUESTIONS)
    # The brief expects a 16-word bag of words; this tokeniser finds 15 distinct words.
    assert len(vocab) == 15
    ids, weights = text_features.featurize(QUESTIONS, vocab, None, weighting="binary")

    def margin(params):
        sims = s2net.score(params, ids[[0, 0]], weights[[0, 0]], ids[1:], weights[1:])
        return float(sims[0] - sims[1])

    params = s2net.init(jax.random.key(0), len(vocab), 2)
    before = margin(params)
    assert before < 0.5, before  # the random projection does not yet rank q2 clearly above q3
    after = margin(train_pairwise(params, jnp.asarray(ids), jnp.asarray(weights)))
    assert after > 0.5 and after > before + 0.3, (before, after)


def test_term_weightings_by_hand():
    texts = ["the cat and the cat", "a dog", "the dog"]  # N = 3; df: the 2, cat 1, and 1, a 1, dog 2
    n = 3
    cases = {
        text_features.Weighting(): {"cat": 2 * math.log(n / 1), "the": 2 * math.log(n / 2), "and": math.log(n)},
        text_features.Weighting(tf="sublinear", idf="smooth"): {
            "cat": (1 + math.log(2)) * math.log(4 / 2), "the": (1 + math.log(2)) * math.log(4 / 3),
            "and": math.log(4 / 2)},
        text_features.Weighting(tf="binary", idf="smooth1"): {
            "cat": math.log(4 / 2) + 1, "the": math.log(4 / 3) + 1, "and": math.log(4 / 2) + 1},
        text_features.Weighting(stop_words=True): {"cat": 2 * math.log(n / 1)},  # "the", "and" are stop words
    }
    for weighting, expected in cases.items():
        vocab = text_features.build_vocab(texts, weighting=weighting)
        idf = text_features.idf_weights(texts, vocab, weighting)
        ids, weights = text_features.featurize(texts[:1], vocab, idf, weighting)
        got = {word: float(w) for i, w in zip(ids[0], weights[0]) if i >= 0 for word, j in vocab.items() if j == i}
        assert got == pytest.approx(expected, rel=1e-6), weighting
    assert text_features.tokenize("Café-au-lait 2x", "ascii") == ["caf", "au", "lait", "2x"]
    assert text_features.tokenize("Café-au-lait 2x", "unicode") == ["café", "au", "lait", "2x"]
    with pytest.raises(ValueError, match="tf must be one of"):
        text_features.Weighting(tf="log")


def test_unseen_words_count_at_the_idf_of_a_df_of_zero():
    from ace_jax.s2net_run import TextModel

    texts = ["the cat and the cat", "a dog", "the dog"]  # N = 3
    weighting = text_features.Weighting(idf="smooth")
    vocab = text_features.build_vocab(texts, weighting=weighting)
    idf = text_features.idf_weights(texts, vocab, weighting)
    assert text_features.unseen_idf(3, weighting) == pytest.approx(math.log(4))  # log (N + 1) / (0 + 1)
    assert text_features.unseen_idf(3, text_features.Weighting()) == pytest.approx(math.log(3))  # df taken as 1
    grown, grown_idf = text_features.with_unseen(["a zebra", "zebra and yak"], vocab, idf, math.log(4), weighting)
    assert grown == {**vocab, "yak": len(vocab), "zebra": len(vocab) + 1}
    np.testing.assert_allclose(grown_idf, [*idf, math.log(4), math.log(4)], rtol=1e-6)
    rare, _ = text_features.with_unseen(["zebra and yak"], vocab, idf, math.log(4), weighting, seen={"yak"})
    assert set(rare) - set(vocab) == {"zebra"}  # a training word below min_df is rare, not unseen
    # "dog zebra" against "zebra": dropped, only dog is left on one side (cosine 0); counted, zebra is shared.
    closed = TextModel(vocab, idf, weighting)
    open_ = TextModel(vocab, idf, weighting, idf_unseen=math.log(4))
    dog = math.log(4 / 3)
    for model, expected in ((closed, 0.0), (open_, math.log(4) / math.hypot(dog, math.log(4)))):
        v = model.vectors(["dog zebra", "zebra"]).toarray()
        norms = np.linalg.norm(v, axis=1)
        cos = v[0] @ v[1] / (norms[0] * norms[1]) if norms.all() else 0.0
        assert cos == pytest.approx(expected, rel=1e-6)
