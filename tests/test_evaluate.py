"""Tests for word-similarity and analogy evaluation and word2vec file input/output."""

import math
import os
import sys
import types

import numpy as np
import pytest

from ace_jax.errors import AceJaxError
from ace_jax.evaluate.similarity import (
    DEFAULT_SETS,
    SIMILARITY_SETS,
    evaluate_all,
    evaluate_analogy,
    evaluate_similarity,
    nearest_neighbors,
    read_similarity_pairs,
)
from ace_jax.io import atomic_write, load_word2vec, save_word2vec

gensim_models = pytest.importorskip("gensim.models")

# Four unit vectors at 0°, 20°, 50° and 90°: cosines fall with the angle between two words, so the
# model ranks the pairs ab (20°) > bc (30°) > cd (40°) > ac (50°) > bd (70°) > ad (90°).
ANGLE_WORDS = ["a", "b", "c", "d"]
ANGLE_VECTORS = np.array([[math.cos(math.radians(t)), math.sin(math.radians(t))] for t in (0, 20, 50, 90)])

# Axes: royal, male, female, fruit, vehicle, plural.
ANALOGY_WORDS = ["king", "queen", "man", "woman", "apple", "apples", "car", "cars"]
ANALOGY_VECTORS = np.array(
    [
        [1, 1, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 1, 0, 1],
        [0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 1, 1],
    ],
    dtype=np.float32,
)
# Scores b − a + c of each candidate, worked out from the vectors above (√½ ≈ 0.707):
#   Man Woman King Queen:   queen 1.207 beats woman 1 (a question word) → correct.
#   king queen man woman:   man 1.0 (a question word) beats woman 0.707; excluded, woman wins → correct.
#   apple apples car cars:  cars 1.207 beats car 1 → correct; skipped when cars is cut off.
#   man king woman apples:  queen 1.207, apples 0 → wrong.
ANALOGY_QUESTIONS = """: family
Man Woman King Queen
king queen man woman
: gram8-plural
apple apples car cars
man king woman apples
"""


def write(path, text):
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    "scores, rho",
    [
        ({"a b": 6, "b c": 5, "c d": 4, "a c": 3, "b d": 2, "a d": 1}, 1.0),
        ({"a b": 1, "b c": 2, "c d": 3, "a c": 4, "b d": 5, "a d": 6}, -1.0),
        # Gold ranks 3 2 1 5 4 against model ranks 1 2 3 4 5: Σd² = 10, ρ = 1 − 6·10 / (5·24) = 0.5.
        ({"a b": 8, "b c": 9, "c d": 10, "a c": 6, "b d": 7}, 0.5),
    ],
)
def test_spearman_matches_hand_computed_rank_correlation(tmp_path, scores, rho):
    text = "".join(f"{pair.replace(' ', chr(9))}\t{score}\n" for pair, score in scores.items())
    pairs = read_similarity_pairs(write(tmp_path / "pairs.txt", text))
    result = evaluate_similarity(ANGLE_VECTORS, ANGLE_WORDS, pairs)
    assert result == {"spearman": pytest.approx(rho, abs=1e-12), "pairs": len(scores), "oov": 0}


def test_pair_file_with_crlf_comments_capitals_and_unknown_words(tmp_path):
    lines = ["# Word 1\tWord 2\tHuman (mean)", "A\tB\t8", "", "b\tc\t9", "c d 10", "a\tc\t6", "b\tzzz\t3", "b\td\t7"]
    pairs = read_similarity_pairs(write(tmp_path / "pairs.txt", "\r\n".join(lines)))  # no final newline
    assert pairs == [
        ("A", "B", 8.0), ("b", "c", 9.0), ("c", "d", 10.0), ("a", "c", 6.0), ("b", "zzz", 3.0), ("b", "d", 7.0)
    ]
    result = evaluate_similarity(ANGLE_VECTORS, ANGLE_WORDS, pairs)
    assert result == {"spearman": pytest.approx(0.5, abs=1e-12), "pairs": 5, "oov": 1}
    assert evaluate_similarity(ANGLE_VECTORS, ANGLE_WORDS, pairs, lowercase=False)["oov"] == 2


def test_spearman_is_nan_below_two_pairs():
    result = evaluate_similarity(ANGLE_VECTORS, ANGLE_WORDS, [("a", "b", 1.0), ("a", "zzz", 2.0)])
    assert math.isnan(result["spearman"]) and result["pairs"] == 1 and result["oov"] == 1


def test_malformed_pair_line_names_its_line(tmp_path):
    path = write(tmp_path / "pairs.txt", "# header\na\tb\t1\na\tb\n")
    with pytest.raises(AceJaxError, match=r"line 3"):
        read_similarity_pairs(path)
    with pytest.raises(AceJaxError, match="not found"):
        read_similarity_pairs(tmp_path / "missing.txt")


def test_evaluators_do_not_modify_their_input(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32) * 3.0
    original = vectors.copy()
    vectors.setflags(write=False)  # an in-place normalisation would raise here
    pairs = [("king", "queen", 1.0), ("man", "woman", 2.0), ("car", "apple", 0.5)]
    evaluate_similarity(vectors, ANALOGY_WORDS, pairs)
    evaluate_analogy(vectors, ANALOGY_WORDS, write(tmp_path / "q.txt", ANALOGY_QUESTIONS))
    nearest_neighbors(vectors, ANALOGY_WORDS, "king")
    np.testing.assert_array_equal(vectors, original)


def test_nearest_neighbors_ranks_by_cosine_without_the_query():
    neighbors = nearest_neighbors(ANGLE_VECTORS, ANGLE_WORDS, "b", k=2)
    assert [w for w, _ in neighbors] == ["a", "c"]
    cosines = [c for _, c in neighbors]
    np.testing.assert_allclose(cosines, [math.cos(math.radians(20)), math.cos(math.radians(30))], rtol=1e-6)
    assert [w for w, _ in nearest_neighbors(ANGLE_VECTORS, ANGLE_WORDS, "b", k=10)] == ["a", "c", "d"]
    with pytest.raises(AceJaxError, match="unknown word 'xyz'"):
        nearest_neighbors(ANGLE_VECTORS, ANGLE_WORDS, "xyz")


def test_analogy_on_hand_built_vectors(tmp_path):
    path = write(tmp_path / "questions.txt", ANALOGY_QUESTIONS)
    full = evaluate_analogy(ANALOGY_VECTORS, ANALOGY_WORDS, path)
    assert full == {"accuracy": 0.75, "questions": 4, "total": 4, "semantic": 1.0, "syntactic": 0.5}
    # The first 7 rows leave out "cars", so "apple apples car cars" is skipped.
    cut = evaluate_analogy(ANALOGY_VECTORS, ANALOGY_WORDS, path, restrict_vocab=7)
    assert cut == {
        "accuracy": pytest.approx(2 / 3), "questions": 3, "total": 4, "semantic": 1.0, "syntactic": 0.0
    }
    # Case-sensitive, "Man Woman King Queen" has no match in the lowercase vocabulary.
    assert evaluate_analogy(ANALOGY_VECTORS, ANALOGY_WORDS, path, lowercase=False)["questions"] == 3


def test_malformed_analogy_file_names_its_line(tmp_path):
    with pytest.raises(AceJaxError, match="line 1"):
        evaluate_analogy(ANALOGY_VECTORS, ANALOGY_WORDS, write(tmp_path / "q1.txt", "man woman king queen\n"))
    with pytest.raises(AceJaxError, match="line 3"):
        path = write(tmp_path / "q2.txt", ": family\n\nman woman king\n")
        evaluate_analogy(ANALOGY_VECTORS, ANALOGY_WORDS, path)


def make_keyed_vectors(words, vectors):
    kv = gensim_models.KeyedVectors(vectors.shape[1])
    kv.add_vectors(words, vectors)
    return kv


def test_similarity_matches_gensim(tmp_path):
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(60)]
    vectors = rng.normal(size=(60, 10)).astype(np.float32)
    lines = [f"w{i}\tw{j}\t{rng.uniform(0, 10):.2f}" for i, j in rng.integers(0, 60, size=(30, 2))]
    lines += ["w1\tunknown\t5.0", "nope\tw2\t1.0", "W3\tw4\t2.5"]
    path = write(tmp_path / "pairs.tsv", "\n".join(lines) + "\n")
    ours = evaluate_similarity(vectors, words, read_similarity_pairs(path))
    _, (spearman, _), oov_ratio = make_keyed_vectors(words, vectors).evaluate_word_pairs(str(path))
    assert ours["spearman"] == pytest.approx(spearman, abs=1e-9)
    assert ours["pairs"] == 31 and ours["oov"] == 2
    assert 100 * ours["oov"] / (ours["pairs"] + ours["oov"]) == pytest.approx(oov_ratio)


def test_analogy_matches_gensim(tmp_path):
    rng = np.random.default_rng(2)
    words = [f"w{i}" for i in range(60)]
    vectors = rng.normal(size=(60, 10)).astype(np.float32)
    kv = make_keyed_vectors(words, vectors)
    lines = [": capital-world"]
    for q in range(120):
        if q == 60:
            lines.append(": gram3-comparative")
        a, b, c = rng.choice(words, size=3, replace=False)
        # Half the answers are gensim's own prediction, so both outcomes occur often.
        ranked = kv.most_similar(positive=[b, c], negative=[a], topn=10, restrict_vocab=50)
        guess = next(w for w, _ in ranked if w not in (a, b, c))
        lines.append(f"{a} {b} {c} {guess if q % 2 else rng.choice(words)}")
    lines += ["w1 w2 w3 unknown", "w1 w2 w55 w4"]  # w55 lies past restrict_vocab=50
    path = write(tmp_path / "questions.txt", "\n".join(lines))
    ours = evaluate_analogy(vectors, words, path, restrict_vocab=50)
    score, sections = kv.evaluate_word_analogies(str(path), restrict_vocab=50)
    counts = [(len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections]
    assert ours["accuracy"] == pytest.approx(score)
    assert ours["questions"] == counts[-1][1] and ours["total"] == 122
    assert ours["semantic"] == pytest.approx(counts[0][0] / counts[0][1])
    assert ours["syntactic"] == pytest.approx(counts[1][0] / counts[1][1])
    assert 0.3 < ours["accuracy"] < 0.9


@pytest.fixture
def fake_registry(monkeypatch, tmp_path):
    """Install an `ace_jax.data.registry` whose `resolve` maps names to small files in `tmp_path`."""
    files = {"ws353": write(tmp_path / "ws.txt", "king\tqueen\t8\nman\twoman\t7\napple\tcar\t1\n"),
             "analogy": write(tmp_path / "q.txt", ANALOGY_QUESTIONS)}

    def resolve(name):
        if name not in files:
            raise AceJaxError(f"dataset {name!r} not found under the data folder")
        return files[name]

    module = types.ModuleType("ace_jax.data.registry")
    module.resolve = resolve
    monkeypatch.setitem(sys.modules, "ace_jax.data.registry", module)


def test_evaluate_all_reports_each_set(fake_registry):
    results = evaluate_all(ANALOGY_VECTORS, ANALOGY_WORDS, sets=("ws353",))
    assert set(results) == {"ws353", "analogy"}
    assert results["ws353"]["pairs"] == 3 and results["ws353"]["oov"] == 0
    assert results["analogy"]["accuracy"] == 0.75 and results["analogy"]["questions"] == 4
    assert "analogy" not in evaluate_all(ANALOGY_VECTORS, ANALOGY_WORDS, sets=("ws353",), analogy=False)


def test_evaluate_all_rejects_unknown_and_missing_sets(fake_registry):
    assert DEFAULT_SETS == SIMILARITY_SETS
    with pytest.raises(AceJaxError, match="unknown similarity set 'ws999'; valid sets: ws353, ws353-sim"):
        evaluate_all(ANALOGY_VECTORS, ANALOGY_WORDS, sets=("ws353", "ws999"))
    with pytest.raises(AceJaxError, match="dataset 'men' not found"):
        evaluate_all(ANALOGY_VECTORS, ANALOGY_WORDS, sets=("ws353", "men"))


def test_ws353_from_data_dir_matches_gensim():
    if not os.environ.get("ACE_JAX_DATA_DIR"):
        pytest.skip("ACE_JAX_DATA_DIR is not set (it names the folder of staged datasets)")
    from ace_jax.data.registry import resolve

    try:
        path = resolve("ws353")
    except AceJaxError as e:
        pytest.skip(f"ws353 is not staged: {e}")
    pairs = read_similarity_pairs(path)
    assert len(pairs) == 353
    words = sorted({w.lower() for w1, w2, _ in pairs for w in (w1, w2)})
    vectors = np.random.default_rng(3).normal(size=(len(words), 16)).astype(np.float32)
    ours = evaluate_similarity(vectors, words, pairs)
    assert ours["pairs"] == 353 and ours["oov"] == 0
    _, (spearman, _), _ = make_keyed_vectors(words, vectors).evaluate_word_pairs(str(path))
    assert ours["spearman"] == pytest.approx(spearman, abs=1e-9)
    assert evaluate_all(vectors, words, sets=("ws353",), analogy=False) == {"ws353": ours}


WORD2VEC_WORDS = ["the", "café", "naïve", "x"]
WORD2VEC_VECTORS = np.array(
    [
        [0.1, -2.5, 3e-30, 0.0, 1e7],
        [1 / 3, 2 / 3, -1.0, 42.0, -1e-3],
        [7.0, 8.0, 9.0, 1e-8, 3.4e38],
        [-0.0, 1.5, -2.5, 3.5, -4.5],
    ],
    dtype=np.float32,
)


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_round_trip_through_ours_and_gensim(tmp_path, binary):
    path = tmp_path / "vectors.w2v"
    save_word2vec(path, WORD2VEC_WORDS, WORD2VEC_VECTORS, binary=binary)
    words, vectors = load_word2vec(path)
    assert words == WORD2VEC_WORDS and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, WORD2VEC_VECTORS)  # %.9g text is exact for float32

    kv = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert kv.index_to_key == WORD2VEC_WORDS
    np.testing.assert_allclose(kv.vectors, WORD2VEC_VECTORS, rtol=1e-5)

    gensim_path = tmp_path / "gensim.w2v"
    kv.save_word2vec_format(str(gensim_path), binary=binary)
    words, vectors = load_word2vec(gensim_path)
    assert words == WORD2VEC_WORDS
    np.testing.assert_allclose(vectors, WORD2VEC_VECTORS, rtol=1e-5)

    # Writers do not all end the file with a newline.
    gensim_path.write_bytes(gensim_path.read_bytes().rstrip(b"\n"))
    np.testing.assert_allclose(load_word2vec(gensim_path)[1], WORD2VEC_VECTORS, rtol=1e-5)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "line 1"),
        (b"three 2\na 1 2\n", "line 1"),
        (b"2 3\na 1 2 3\nb 1 2\n", "line 3"),
        (b"2 3\na 1 2 3\nb 1 2 y\n", "line 3"),
        (b"3 2\na 1 2\nb 3 4\n", "header says 3 rows, file has 2"),
        (b"2 3\na " + np.ones(3, "<f4").tobytes() + b"\nb " + b"\x00" * 5, "truncated"),
    ],
)
def test_malformed_word2vec_file_raises(tmp_path, content, message):
    path = tmp_path / "bad.w2v"
    path.write_bytes(content)
    with pytest.raises(AceJaxError, match=message):
        load_word2vec(path)


def test_word2vec_user_errors(tmp_path):
    with pytest.raises(AceJaxError, match="not found"):
        load_word2vec(tmp_path / "missing.w2v")
    with pytest.raises(AceJaxError, match="whitespace"):
        save_word2vec(tmp_path / "v.w2v", ["new york"], np.zeros((1, 2)), binary=False)
    assert os.listdir(tmp_path) == []


def test_atomic_write_keeps_old_file_when_the_block_fails(tmp_path):
    path = write(tmp_path / "out.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write("half of the new")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    with atomic_write(path, "wb") as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.txt"]
