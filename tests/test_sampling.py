"""Tests of the samplers and example makers: alias tables, the generator, the Huffman tree, windows."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from ace_jax import embeddings, generator, huffman, losses, noise, parallel, windows
from ace_jax.families.word import Batch, GameConfig

DISTRIBUTIONS = {
    "uniform": np.ones(4) / 4,
    "halving": np.array([0.5, 0.25, 0.125, 0.125]),
    "with_zeros": np.array([0.0, 0.3, 0.0, 0.7, 0.0]),
    "one_hot": np.array([0.0, 0.0, 1.0, 0.0]),
    "unnormalised_counts": np.array([7.0, 1.0, 3.0, 1.0, 12.0, 0.0, 2.0]),
    "zipf_1000": 1.0 / np.arange(1, 1001),
    "dirichlet_50": np.random.default_rng(0).dirichlet(np.full(50, 0.3)),
}


def alias_mass(accept: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """The probability of each id: bucket i (mass 1/V) gives i w.p. accept[i], else alias[i]."""
    size = len(accept)
    mass = np.asarray(accept, np.float64) / size
    for j in range(size):
        mass[alias[j]] += (1.0 - float(accept[j])) / size
    return mass


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_alias_table_reconstructs_the_probabilities(name):
    probs = DISTRIBUTIONS[name]
    accept, alias = noise.build_alias_table(probs)
    assert accept.dtype == np.float32 and alias.dtype == np.int32
    assert np.all((accept >= 0) & (accept <= 1)) and np.all((alias >= 0) & (alias < len(probs)))
    np.testing.assert_allclose(alias_mass(accept, alias), probs / probs.sum(), atol=1e-6)
    # An id of probability 0 is reachable neither by its own bucket nor as anyone's alias.
    for i in np.flatnonzero(probs == 0):
        assert accept[i] == 0 and not np.any((alias == i) & (accept < 1))


def test_from_probs_rejects_bad_vectors():
    for bad in ([], [0.0, 0.0], [0.5, -0.1, 0.6], [[0.5, 0.5]]):
        with pytest.raises(ValueError):
            noise.from_probs(np.asarray(bad))


def test_unigram_is_proportional_to_count_to_the_three_quarters():
    counts = [16, 1, 81, 0]
    dist = noise.unigram(np.array(counts))
    # 16^0.75 = 8, 1^0.75 = 1, 81^0.75 = 27, 0^0.75 = 0: total 36.
    expected = [math.log(8 / 36), math.log(1 / 36), math.log(27 / 36), -math.inf]
    np.testing.assert_allclose(dist.log_probs, expected, rtol=1e-6)
    assert dist.size == 4
    np.testing.assert_allclose(noise.uniform(5).log_probs, np.full(5, math.log(1 / 5)), rtol=1e-6)
    np.testing.assert_allclose(noise.log_prob(dist, jnp.array([[2, 0]])), [[math.log(27 / 36), math.log(8 / 36)]],
                               rtol=1e-6)


def assert_frequencies(samples: np.ndarray, probs: np.ndarray):
    """Pearson's chi-square over the cells of positive probability, against its 1 − 1e-5 quantile.

    The keys are fixed, so this is deterministic; the tolerance only keeps it from depending on the
    particular stream. At 200k draws a bias of 1% of one cell's mass gives a statistic of about 50.
    """
    counts = np.bincount(np.asarray(samples).ravel(), minlength=len(probs))
    assert len(counts) == len(probs) and counts[probs == 0].sum() == 0, f"drew an id of probability 0: {counts}"
    positive = probs > 0
    expected = counts.sum() * probs[positive]
    statistic = ((counts[positive] - expected) ** 2 / expected).sum()
    assert statistic < scipy.stats.chi2.ppf(1 - 1e-5, positive.sum() - 1), (statistic, counts)


def test_noise_sample_frequencies():
    probs = np.array([0.4, 0.3, 0.15, 0.1, 0.05, 0.0])
    draws = noise.sample(noise.from_probs(probs), jax.random.key(1), (400, 500))
    assert draws.shape == (400, 500) and draws.dtype == jnp.int32
    assert_frequencies(draws, probs)


GENERATOR_CASES = {
    # One block of 128 (V = 5 padded).
    "one_block": ([[0.0, 1.0, 2.0, -1.0, 0.5],
                   [3.0, 0.0, 0.0, 0.0, -np.inf],
                   [0.0, 0.0, 0.0, 0.0, 0.0]], 128, 20_000),
    # Blocks of 4 over V = 10: [0..3] [4..7] [8, 9, pad, pad]; impossible ids inside, at the end of a
    # block and at the end of the vocabulary.
    "three_blocks": ([[0.0, 1.0, -np.inf, 0.5, 2.0, -1.0, 0.0, -np.inf, 1.5, 0.3],
                      [-np.inf, -np.inf, -np.inf, -np.inf, 0.0, 0.0, 0.0, 0.0, 1.0, -np.inf],
                      [2.0, -2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], 4, 200_000),
    # Five levels: V = 21 in blocks of 2 (11 blocks), their masses in 6 blocks, those in 3, then 2, then 1;
    # whole blocks impossible at each level.
    "five_levels": ([[0.5 * (i % 5) if i not in (2, 3, 8, 20) else -np.inf for i in range(21)],
                     [-np.inf] * 12 + [0.0] * 8 + [1.0],
                     [3.0 if i == 0 else -1.0 for i in range(21)]], 2, 200_000),
}


@pytest.mark.parametrize("case", sorted(GENERATOR_CASES))
def test_generator_sample_frequencies_match_softmax_rows(case):
    rows, block, num = GENERATOR_CASES[case]
    weights = np.exp(np.array(rows))  # e^−inf = 0: that id must never be drawn
    probs = weights / weights.sum(-1, keepdims=True)
    sample = jax.jit(generator.sample, static_argnames=("num", "block"))
    draws = sample(jax.random.key(2), jnp.asarray(rows, jnp.float32), num=num, block=block)
    assert draws.shape == (3, num) and draws.dtype == jnp.int32
    for row in range(3):
        assert_frequencies(draws[row], probs[row])


def test_generator_sample_never_draws_an_impossible_id():
    # 128 ids in blocks of 32: a dominant id, 126 ids of mass e^−16.14 ≈ 1e-7 each, and an impossible last id.
    # Where a uniform lands at the very top of the last block, the row with the last id possible draws it
    # (the control: keys 66, 79 and 126 are ones where that happens on CPU); the impossible one must not.
    impossible = jnp.asarray([[0.0] + [-16.1363205] * 126 + [-np.inf]], jnp.float32)
    possible = impossible.at[0, 127].set(-16.1363205)
    sample = jax.jit(generator.sample, static_argnames="num")
    for seed in (66, 79, 126):
        assert np.any(np.asarray(sample(jax.random.key(seed), possible, num=100_000)) == 127), seed
        assert not np.any(np.asarray(sample(jax.random.key(seed), impossible, num=100_000)) == 127), seed


def test_generator_log_prob_and_entropy_by_hand():
    logits = jnp.array([[0.0, math.log(2.0), math.log(3.0), math.log(4.0)], [1.0, 1.0, 1.0, 1.0]])
    ids = jnp.array([[3, 0, 3], [2, 1, 0]])
    # Row 0 is p = [1, 2, 3, 4] / 10; row 1 uniform over 4.
    expected = [[math.log(0.4), math.log(0.1), math.log(0.4)], [math.log(0.25)] * 3]
    np.testing.assert_allclose(generator.log_prob(logits, ids), expected, rtol=1e-6)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(generator.entropy(logits), [-(p * np.log(p)).sum(), math.log(4.0)], rtol=1e-6)


def test_generator_init_starts_at_softmax_of_the_bias():
    bias = jnp.log(jnp.array([0.1, 0.2, 0.7]))
    params = generator.init(jax.random.key(0), num_queries=4, num_candidates=3, dim=2, bias=bias)
    got = jax.nn.softmax(generator.logits(params, jnp.array([0, 3])), axis=-1)
    np.testing.assert_allclose(got, [[0.1, 0.2, 0.7]] * 2, rtol=1e-6)
    # CBOW bags with −1 padding are accepted too.
    assert generator.logits(params, jnp.array([[0, -1], [1, 2]])).shape == (2, 3)


def test_huffman_tree_by_hand():
    points, codes, lengths = huffman.build_huffman_tree(np.array([5, 2, 1, 1]))
    # Merges: (2:1, 3:1) -> node 0 of count 2; (1:2, node 0:2) -> node 1 of 4; (node 1:4, 0:5) -> root 2.
    # The second of each merged pair takes code 1.
    np.testing.assert_array_equal(lengths, [1, 2, 3, 3])
    np.testing.assert_array_equal(points, [[2, -1, -1], [2, 1, -1], [2, 1, 0], [2, 1, 0]])
    np.testing.assert_array_equal(codes, [[1, 0, 0], [0, 0, 0], [0, 1, 0], [0, 1, 1]])
    assert points.dtype == np.int32 and codes.dtype == np.int8 and lengths.dtype == np.int32
    with pytest.raises(ValueError):
        huffman.build_huffman_tree(np.array([3]))


def random_tree(vocab: int = 50, seed: int = 0):
    counts = np.random.default_rng(seed).integers(1, 1000, size=vocab)
    return counts, huffman.build_huffman_tree(counts)


def test_huffman_codes_are_prefix_free_and_complete():
    counts, (points, codes, lengths) = random_tree()
    words = ["".join(map(str, codes[w, : lengths[w]])) for w in range(len(counts))]
    assert len(set(words)) == len(words)
    for a in words:
        for b in words:
            assert a == b or not b.startswith(a), (a, b)
    # A full binary tree: Kraft's sum is exactly 1, every inner node is used and the root comes first.
    assert sum(2.0 ** -len(w) for w in words) == 1.0
    assert set(points[points >= 0].tolist()) == set(range(len(counts) - 1))
    np.testing.assert_array_equal(points[:, 0], len(counts) - 2)
    assert np.all((points >= 0) == (np.arange(points.shape[1]) < lengths[:, None]))
    # Huffman: a more frequent word never has a longer code.
    order = np.argsort(-counts, kind="stable")
    assert np.all(np.diff(lengths[order]) >= 0)


def test_hierarchical_softmax_probabilities_sum_to_one():
    counts, (points, codes, lengths) = random_tree(seed=1)
    vocab, dim = len(counts), 8
    rng = np.random.default_rng(2)
    query = rng.normal(size=dim)
    nodes = rng.normal(size=(vocab - 1, dim))
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    probs = np.array([
        np.prod([sigmoid((1 - 2 * int(codes[w, i])) * (query @ nodes[points[w, i]])) for i in range(lengths[w])])
        for w in range(vocab)
    ])
    assert abs(probs.sum() - 1.0) < 1e-9
    # The library's loss is −log of the same product.
    node_logits = jnp.asarray(nodes[np.maximum(points, 0)] @ query, jnp.float32)  # [V, L]
    loss = losses.hierarchical_softmax_loss(node_logits, jnp.asarray(codes), jnp.asarray(points >= 0))
    np.testing.assert_allclose(np.exp(-np.asarray(loss, np.float64)), probs, rtol=1e-4)


def test_keep_probabilities_word2vec_formula():
    counts = np.array([1000, 100, 10, 1])
    sample = 1e-3
    t = sample * 1111  # sample · total words
    expected = [min(1.0, (math.sqrt(c / t) + 1) * t / c) for c in counts]
    np.testing.assert_allclose(windows.keep_probabilities(counts, sample), expected, rtol=1e-6)
    assert expected[0] < 0.05 and expected[-1] == 1.0
    np.testing.assert_array_equal(windows.keep_probabilities(counts, 0.0), np.ones(4))


# One compilation per static setting, as in training; LLVM at -O0 compiles in half the time.
FAST = {"xla_backend_optimization_level": 0}
subsample = jax.jit(windows.subsample_epoch, static_argnames=("chunk",), compiler_options=FAST)
make_batch = jax.jit(windows.make_batch, static_argnames=("chunk", "window", "layout"), compiler_options=FAST)


def corpus_of(tokens, keep_probs, seed=0) -> windows.DeviceCorpus:
    return windows.DeviceCorpus(jnp.asarray(tokens, jnp.int32), jnp.asarray(keep_probs, jnp.float32),
                                jax.random.key(seed))


def batch_at(corpus, step, *, chunk, window, layout="skipgram", epoch=0, first_step=0) -> Batch:
    stream = subsample(corpus, epoch, first_step, chunk=chunk)
    return make_batch(stream, jnp.int32(step), chunk=chunk, window=window, layout=layout)


def test_skipgram_pairs_lie_within_the_window():
    # Distinct ids, so an id is its position.
    num, chunk, window = 23, 10, 3
    corpus = corpus_of(np.arange(num), np.ones(num))
    epoch = windows.steps_in(num, chunk)
    assert epoch == 3
    reaches = set()
    for step in range(6):
        first_step = step // epoch * epoch
        batch = batch_at(corpus, step, chunk=chunk, window=window, epoch=step // epoch, first_step=first_step)
        queries, positives, mask = map(np.asarray, (batch.queries, batch.positives, batch.mask))
        assert queries.shape == (chunk,) and positives.shape == mask.shape == (chunk, 2 * window)
        start = (step % epoch) * chunk
        chunk_ids = np.arange(start, min(start + chunk, num))
        np.testing.assert_array_equal(queries[: len(chunk_ids)], chunk_ids)
        assert np.all(queries[len(chunk_ids):] == -1) and not mask[len(chunk_ids):].any()
        offsets = np.array([-3, -2, -1, 1, 2, 3])
        for i in range(chunk):
            valid = offsets[mask[i]]
            for o, ctx in zip(offsets[mask[i]], positives[i][mask[i]]):
                assert 1 <= abs(o) <= window and ctx == queries[i] + o and ctx in chunk_ids
            if len(chunk_ids) > i:
                # The window is b ~ U{1..W} on both sides, cut only by the chunk's ends.
                reach = np.abs(valid).max()
                full = [o for o in offsets if abs(o) <= reach and 0 <= i + o < len(chunk_ids)]
                np.testing.assert_array_equal(valid, full)
                reaches.add(int(reach))
    assert reaches == {1, 2, 3}


def test_window_one_is_exactly_the_neighbours_and_dropped_words_vanish():
    tokens = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    keep = np.ones(5)
    keep[2] = 0.0
    batch = batch_at(corpus_of(tokens, keep), 0, chunk=10, window=1)
    # Survivors are packed, so 1 and 3 become neighbours: 0 1 3 4 0 1 3 4.
    np.testing.assert_array_equal(batch.queries, [0, 1, 3, 4, 0, 1, 3, 4, -1, -1])
    np.testing.assert_array_equal(batch.mask,
                                  [[0, 1], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1], [1, 0], [0, 0], [0, 0]])
    np.testing.assert_array_equal(
        np.where(batch.mask, batch.positives, -1),
        [[-1, 1], [0, 3], [1, 4], [3, 0], [4, 1], [0, 3], [1, 4], [3, -1], [-1, -1], [-1, -1]])
    # Steps read the kept tokens four at a time: 0 1 3 4 | 0 1 3 4.
    for step in range(2):
        batch = batch_at(corpus_of(tokens, keep, seed=step), step, chunk=4, window=2)
        np.testing.assert_array_equal(batch.queries, [0, 1, 3, 4])


def test_subsampling_keeps_a_word_at_its_keep_probability_with_fresh_draws_each_epoch():
    corpus = corpus_of(np.zeros(2000, np.int32), np.array([0.3]))
    streams = [subsample(corpus, epoch, 0, chunk=16) for epoch in (0, 1, 0)]
    kept = int(streams[0].num_kept)
    assert abs(kept - 600) < 5 * math.sqrt(2000 * 0.3 * 0.7)
    tokens = np.asarray(streams[0].tokens)
    assert tokens.shape == (2016,) and np.all(tokens[:kept] == 0) and np.all(tokens[kept:] == -1)
    assert int(streams[1].num_kept) != kept  # another epoch, other draws
    np.testing.assert_array_equal(streams[2].tokens, streams[0].tokens)  # the same epoch, the same draws


def test_epoch_streams_follow_each_epochs_kept_count():
    corpus = corpus_of(np.zeros(1000, np.int32), np.array([0.5]))
    epochs = embeddings.EpochStreams(corpus, 64, parallel.make_mesh(1, 1))
    steps = [windows.steps_in(int(subsample(corpus, e, 0, chunk=64).num_kept), 64) for e in range(3)]
    assert epochs.steps(2.5) == steps[0] + steps[1] + math.ceil(0.5 * steps[2])
    assert epochs.first_steps == [0, steps[0], steps[0] + steps[1], sum(steps)]
    for epoch, step in ((0, 0), (0, steps[0] - 1), (1, steps[0]), (2, sum(steps) - 1), (0, 1)):
        stream = epochs.stream(step)
        assert int(stream.first_step) == epochs.first_steps[epoch]
        np.testing.assert_array_equal(stream.tokens, subsample(corpus, epoch, 0, chunk=64).tokens)
    assert epochs.steps(1) == steps[0]


def test_cbow_and_window_batch_layouts():
    num, chunk, window = 12, 8, 2
    corpus = corpus_of(np.arange(num), np.ones(num))
    kwargs = dict(chunk=chunk, window=window)
    for step in range(2):
        sg = batch_at(corpus, step, layout="skipgram", **kwargs)
        for layout in ("cbow", "windows"):
            bag = batch_at(corpus, step, layout=layout, **kwargs)
            assert bag.queries.shape == (chunk, 2 * window) and bag.positives.shape == (chunk, 1)
            # Same key, same windows: the bag is the skip-gram contexts, the positive is the centre.
            np.testing.assert_array_equal(bag.queries, np.where(sg.mask, sg.positives, -1))
            np.testing.assert_array_equal(bag.positives[:, 0], sg.queries)
            assert np.all(np.asarray(bag.queries)[~np.asarray(sg.mask)] == -1)
            # CBOW: one pair per window; windows: one pair per context, the same pairs as skip-gram's.
            mask = np.asarray(sg.mask).any(-1, keepdims=True) if layout == "cbow" else sg.mask
            np.testing.assert_array_equal(bag.mask, mask)
    with pytest.raises(ValueError, match="layout must be one of"):
        windows.make_batch(subsample(corpus, 0, 0, chunk=chunk), jnp.int32(0), layout="pairs", **kwargs)


def test_one_reach_per_step_draws_word2vecs_window_sizes(tmp_path, monkeypatch):
    # 4096 tokens, no subsampling: every step reads a full chunk of 64 centres.
    monkeypatch.setenv("ACE_JAX_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(" ".join(f"w{i}" for i in range(64)) for _ in range(64)) + "\n")
    chunk, window = 64, 3
    # A step whose centres all read b words each side has 2b·64 − b(b + 1) pairs (the chunk's ends cut the rest).
    pairs_of_reach = {2 * b * chunk - b * (b + 1): b for b in range(1, window + 1)}
    pairs = {}
    for reach in ("centre", "step"):
        config = embeddings.WordConfig(corpus=str(path), normalize=False, min_count=1, dim=4, window=window,
                                       chunk=chunk, sample=0, epochs=3, reach=reach,
                                       game=GameConfig(shared_negatives=True),
                                       eval_sets=(), final_sets=(), analogy=False)
        setup = embeddings.build(config)
        assert setup.total_steps == 3 * 64
        state = setup.place(setup.initial_state)
        pairs[reach] = []
        for step in range(setup.total_steps):
            state, metrics = setup.run_step(state, step)
            pairs[reach].append(int(metrics["pairs"]))
        assert setup.step_fn._cache_size() == 1
    reaches = [pairs_of_reach[p] for p in pairs["step"]]  # KeyError: a step mixed reaches
    assert set(reaches) == {1, 2, 3} and abs(np.mean(reaches) - 2) < 0.25  # U{1..3}: mean 2, std of the mean 0.06
    # Per centre or per step, a centre sees the same window sizes: equal pairs on average (std of the mean 7.5).
    assert abs(np.mean(pairs["step"]) - np.mean(pairs["centre"])) < 30
    assert not set(pairs["centre"]) <= set(pairs_of_reach)
