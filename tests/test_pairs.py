"""Tests of ace_jax.data.pairs: reading STS-B, SICK and TSV pairs, preference sampling, paraphrase retrieval metrics."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ace_jax.data.pairs import (
    SentencePairs, load_pairs, paraphrase_queries, preference_pairs, retrieval_metrics,
)
from ace_jax.data.registry import DATASETS
from ace_jax.errors import AceJaxError
from test_data import isolated_dirs, write  # noqa: F401 (the autouse fixture applies here too)

REAL_DATA_DIR = os.environ.get("ACE_JAX_DATA_DIR")


def pairs_with_scores(*scores: float) -> SentencePairs:
    return SentencePairs([f"p{i}" for i in range(len(scores))], [f"q{i}" for i in range(len(scores))], scores)


# --- a user's TSV ----------------------------------------------------------------------------


def test_tsv_reads_pairs_with_bom_crlf_blank_lines_and_spaces(tmp_path):
    path = write(tmp_path / "data.tsv", '\ufeffA cat sits.\tA cat is sitting.\t4.5\r\n\r\n  "Odd quote\t x \t0\n')
    pairs = load_pairs(path)
    assert pairs.text1 == ("A cat sits.", '"Odd quote')
    assert pairs.text2 == ("A cat is sitting.", "x")
    assert pairs.score.dtype == np.float32 and pairs.score.tolist() == [4.5, 0.0]
    assert len(load_pairs(str(path), "all")) == 2
    with pytest.raises(ValueError):
        pairs.score[0] = 1.0  # read-only


def test_tsv_keeps_a_lone_carriage_return_and_line_separator_inside_a_text(tmp_path):
    path = write(tmp_path / "data.tsv", "a\rb\tc\u2028d\t1\n")
    pairs = load_pairs(path)
    assert (pairs.text1, pairs.text2) == (("a\rb",), ("c\u2028d",))


GOOD = "one\ttwo\t1\n"


@pytest.mark.parametrize(
    "text, line, problem",
    [
        (GOOD * 2 + "one\ttwo\n", 3, "expected 3 tab-separated fields (text1, text2, score), found 2"),
        (GOOD + "\n" + "a\tb\t1\textra\n", 3, "expected 3 tab-separated fields (text1, text2, score), found 4"),
        ("text1\ttext2\tscore\n" + GOOD, 1, "score 'score' is not a number"),
        (GOOD + "a\tb\t\n", 2, "score '' is not a number"),
        (GOOD + "a\tb\tnan\n", 2, "score 'nan' is not finite"),
        (GOOD + " \tb\t1\n", 2, "text1 is empty"),
        (GOOD + "a\t  \t1\r\n", 2, "text2 is empty"),
    ],
)
def test_malformed_tsv_line_names_file_and_line(tmp_path, text, line, problem):
    path = write(tmp_path / "data.tsv", text)
    with pytest.raises(AceJaxError) as error:
        load_pairs(path)
    assert str(error.value) == f"{path}:{line}: {problem}"


@pytest.mark.parametrize("text", ["", "\n \r\n\n"])
def test_empty_tsv_is_a_clear_error(tmp_path, text):
    path = write(tmp_path / "empty.tsv", text)
    with pytest.raises(AceJaxError) as error:
        load_pairs(path)
    assert str(error.value) == f"{path}: no sentence pairs; expected lines of text1<TAB>text2<TAB>score"


def test_tsv_bad_split_missing_file_folder_and_bad_bytes(tmp_path):
    path = write(tmp_path / "data.tsv", GOOD)
    with pytest.raises(AceJaxError) as error:
        load_pairs(path, "train")
    assert str(error.value) == f"{path} is a single TSV file with no splits; give split 'all', not 'train'"
    with pytest.raises(AceJaxError) as error:
        load_pairs("nope.tsv")
    assert str(error.value) == (
        "no such file or sentence-pair dataset: 'nope.tsv'; give a TSV file of text1<TAB>text2<TAB>score "
        "or one of sick, stsb"
    )
    with pytest.raises(AceJaxError, match="is a folder; give a TSV file"):
        load_pairs(tmp_path)
    (tmp_path / "latin1.tsv").write_bytes(b"caf\xe9\tcafe\t5\n")
    with pytest.raises(AceJaxError) as error:
        load_pairs(tmp_path / "latin1.tsv")
    assert str(error.value) == f"{tmp_path / 'latin1.tsv'}: not UTF-8 text (byte 3: invalid continuation byte)"


# --- STS-B and SICK from a data dir made here -----------------------------------------------

STSB_DEV = (
    "main-captions\tMSRvid\t2012test\t0000\t5.000\tA man with a hard hat is dancing.\t"
    "A man wearing a hard hat is dancing.\n"
    'main-forum\tdeft-forum\t2014\t0001\t0.8\tHe said "no.\tShe left\tsrc1\tsrc2\n'
)
SICK = (
    "pair_ID\tsentence_A\tsentence_B\tentailment_label\trelatedness_score\tentailment_AB\t"
    "entailment_BA\tsentence_A_original\tsentence_B_original\tsentence_A_dataset\t"
    "sentence_B_dataset\tSemEval_set\r\n"
    "1\tKids play\tChildren play\tENTAILMENT\t4.5\tx\tx\tx\tx\tFLICKR\tFLICKR\tTRAIN\r\n"
    "2\tA dog runs\tA cat sleeps\tNEUTRAL\t1.2\tx\tx\tx\tx\tFLICKR\tFLICKR\tTEST\r\n"
    "3\tA man sings\tA man is singing\tENTAILMENT\t5\tx\tx\tx\tx\tSEMEVAL\tSEMEVAL\tTRAIN"
)


def test_stsb_reads_7_and_9_columns_with_unbalanced_quote(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_JAX_DATA_DIR", str(tmp_path))
    write(tmp_path / "sts/stsbenchmark/sts-dev.csv", STSB_DEV)
    pairs = load_pairs("stsb", "dev")
    assert pairs.text1 == ("A man with a hard hat is dancing.", 'He said "no.')
    assert pairs.text2 == ("A man wearing a hard hat is dancing.", "She left")
    np.testing.assert_array_equal(pairs.score, np.float32([5.0, 0.8]))


@pytest.mark.parametrize(
    "line, problem",
    [
        ("g\tf\t2012\t0002\t3\tonly one sentence\n", "expected 7 or 9 tab-separated fields (STS Benchmark), found 6"),
        ("g\tf\t2012\t0002\t5.2\ta\tb\n", "score '5.2' is outside 0-5"),
    ],
)
def test_bad_stsb_line(tmp_path, monkeypatch, line, problem):
    monkeypatch.setenv("ACE_JAX_DATA_DIR", str(tmp_path))
    path = write(tmp_path / "sts/stsbenchmark/sts-train.csv", STSB_DEV + line)
    with pytest.raises(AceJaxError) as error:
        load_pairs("stsb", "train")
    assert str(error.value) == f"{path.absolute()}:3: {problem}"


def test_sick_splits_by_semeval_set(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_JAX_DATA_DIR", str(tmp_path))
    path = write(tmp_path / "sick/SICK.txt", SICK)
    train = load_pairs("sick", "train")
    assert train.text1 == ("Kids play", "A man sings") and train.score.tolist() == [4.5, 5.0]
    assert load_pairs("sick", "test").text2 == ("A cat sleeps",)
    with pytest.raises(AceJaxError) as error:
        load_pairs("sick", "trial")
    assert str(error.value) == f"{path.absolute()}: no sentence pairs; no row has SemEval_set TRIAL"
    with pytest.raises(AceJaxError) as error:
        load_pairs("sick", "dev")
    assert str(error.value) == "sick has splits train, trial, test, not 'dev'"


def test_bad_sick_row_and_header(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_JAX_DATA_DIR", str(tmp_path))
    path = write(tmp_path / "sick/SICK.txt", SICK + "\r\n4\ta\tb\tNEUTRAL\t0.5\tx\tx\tx\tx\tF\tF\tTEST\r\n")
    with pytest.raises(AceJaxError) as error:
        load_pairs("sick", "test")
    assert str(error.value) == f"{path.absolute()}:5: score '0.5' is outside 1-5"
    write(path, SICK.replace("SemEval_set", "split"))
    with pytest.raises(AceJaxError) as error:
        load_pairs("sick", "test")
    assert str(error.value) == f"{path.absolute()}:1: header lacks the column(s) SemEval_set; is this SICK.txt?"


def test_missing_datasets_give_the_registry_one_line_message():
    with pytest.raises(AceJaxError) as error:
        load_pairs("stsb", "test", download=False)
    message = str(error.value)
    assert message.startswith("dataset 'stsb-test' not found: put it at "
                              "$ACE_JAX_DATA_DIR/sts/stsbenchmark/sts-test.csv")
    assert "\n" not in message
    with pytest.raises(AceJaxError, match=r"dataset .sick. not found: .*\$ACE_JAX_DATA_DIR/sick/SICK.txt"):
        load_pairs("sick", "train", download=False)


def test_pairs_module_never_imports_jax():
    code = "import sys, ace_jax.data.pairs; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- preference pairs ------------------------------------------------------------------------


def test_preferences_are_all_qualifying_pairs_uniformly_and_seeded():
    pairs = pairs_with_scores(1.0, 3.0, 3.0, 0.0)
    better, worse = preference_pairs(pairs, 12_000, seed=3)
    assert better.dtype == worse.dtype == np.int32 and better.shape == worse.shape == (12_000,)
    # score[w] < score[b]: (0,3), (1,0), (1,3), (2,0), (2,3); never the tie (1, 2).
    found, counts = np.unique(np.stack([better, worse], 1), axis=0, return_counts=True)
    assert found.tolist() == [[0, 3], [1, 0], [1, 3], [2, 0], [2, 3]]
    assert np.all(np.abs(counts / 12_000 - 0.2) < 0.02)  # uniform: 5 sigma is about 0.018
    again = preference_pairs(pairs, 12_000, seed=3)
    assert np.array_equal(again[0], better) and np.array_equal(again[1], worse)
    assert not np.array_equal(preference_pairs(pairs, 12_000, seed=4)[0], better)


def test_preference_margin_is_strict():
    pairs = pairs_with_scores(1.0, 3.0, 3.5, 0.0)
    better, worse = preference_pairs(pairs, 1000, margin=2.0)
    # score[w] < score[b] - 2: (1, 3), (2, 0), (2, 3); not (1, 0), whose scores differ by exactly 2.
    assert sorted(set(zip(better.tolist(), worse.tolist()))) == [(1, 3), (2, 0), (2, 3)]
    better, worse = preference_pairs(pairs, 100, margin=3.0)  # not (1, 3): 3 - 0 = 3
    assert set(zip(better.tolist(), worse.tolist())) == {(2, 3)}


def test_no_preference_pairs_and_bad_options_raise():
    with pytest.raises(AceJaxError) as error:
        preference_pairs(pairs_with_scores(2.0, 2.5), 10, margin=0.5)
    assert str(error.value) == "no preference pairs: no two of the 2 scores differ by more than margin 0.5"
    with pytest.raises(AceJaxError, match="at least 1, not 0"):
        preference_pairs(pairs_with_scores(1.0, 2.0), 0)
    with pytest.raises(AceJaxError, match="margin must be at least 0, not -1"):
        preference_pairs(pairs_with_scores(1.0, 2.0), 5, margin=-1)


# --- paraphrase retrieval --------------------------------------------------------------------


def test_paraphrase_queries_by_hand():
    pairs = SentencePairs(
        ["a", "b", "a", "e", "b", "c"],
        ["b", "c", "d", "e", "a", "f"],
        [4.5, 4.0, 1.0, 5.0, 4.2, 3.9],
    )
    task = paraphrase_queries(pairs, threshold=4.0)
    assert task.sentences == ("a", "b", "c", "d", "e", "f")
    # a-b (4.5, again as b-a 4.2: listed once), b-c (4.0 >= 4); a-d, c-f below 4; e-e same text.
    assert list(zip(task.query.tolist(), task.partner.tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert task.query.dtype == task.partner.dtype == np.int32
    empty = paraphrase_queries(pairs, threshold=5.5)
    assert empty.query.shape == empty.partner.shape == (0,)
    assert retrieval_metrics(np.zeros((0, 6)), empty.query, empty.partner)["queries"] == 0


def test_retrieval_metrics_by_hand_pessimistic_ties_self_and_other_partners_excluded():
    # Sentences 0..4; query 1 has partners 0 and 2 (filtered: each is not the other's competitor).
    query = np.array([0, 1, 1, 3], np.int32)
    partner = np.array([1, 0, 2, 4], np.int32)
    sim = np.array(
        [
            [9.0, 0.5, 0.7, 0.1, 0.2],  # itself (9) excluded; 0.7 beats the partner: rank 2
            [0.3, 9.0, 0.9, 0.3, 0.1],  # partner 0.3; partner 2 (0.9) excluded, tie with 3: rank 2
            [0.3, 9.0, 0.9, 0.3, 0.1],  # partner 0.9; partner 0 excluded: rank 1
            [0.0, 0.0, 0.0, 9.0, 0.0],  # all tied: pessimistic rank 4 of 4 candidates
        ],
        np.float32,
    )
    metrics = retrieval_metrics(sim, query, partner)
    assert metrics["queries"] == 4
    assert metrics["top1"] == 0.25
    assert metrics["mrr"] == pytest.approx((1 / 2 + 1 / 2 + 1 + 1 / 4) / 4)


def test_retrieval_metrics_rejects_nan_and_bad_shapes():
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.array([[0.0, np.nan]]), np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="need sim"):
        retrieval_metrics(np.zeros((2, 3)), np.array([0]), np.array([1]))


# --- real staged data (skipped unless ACE_JAX_DATA_DIR points at it) --------------------------


def require_real(relpath: str) -> None:
    if not REAL_DATA_DIR:
        pytest.skip("ACE_JAX_DATA_DIR is not set; point it at shared/data to run this test")
    if not (Path(REAL_DATA_DIR) / relpath).exists():
        pytest.skip(f"{relpath} is not under ACE_JAX_DATA_DIR={REAL_DATA_DIR}")


@pytest.mark.parametrize(
    "name, split, count, low, high",
    [
        ("stsb", "train", 5749, 0, 5), ("stsb", "dev", 1500, 0, 5), ("stsb", "test", 1379, 0, 5),
        ("sick", "train", 4439, 1, 5), ("sick", "trial", 495, 1, 5), ("sick", "test", 4906, 1, 5),
    ],
)
def test_real_pair_counts_match_the_data_readme(monkeypatch, name, split, count, low, high):
    require_real(DATASETS[f"stsb-{split}" if name == "stsb" else name].relpath)
    monkeypatch.setenv("ACE_JAX_DATA_DIR", REAL_DATA_DIR)
    pairs = load_pairs(name, split, download=False)
    assert len(pairs) == count
    assert pairs.score.min() == low and pairs.score.max() == high
