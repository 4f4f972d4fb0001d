"""S2Net end to end on sentence pairs the tests write: evaluation by hand, a shrunk run, resume, the CLI, bad input."""

import json
import math

import numpy as np
import pytest
import scipy.stats

from ace_jax import s2net_run
from ace_jax.cli import main
from ace_jax.data.pairs import SentencePairs
from ace_jax.errors import AceJaxError
from ace_jax.s2net_run import TextModel

from test_data import isolated_dirs, write  # noqa: F401 (the autouse fixture applies here too)

TOPICS = 6


def planted_pairs(num_pairs: int, seed: int) -> list[tuple[str, str, float]]:
    """Topic t's sentences draw two of a{t}w0..3 or b{t}w0..3 and two fillers: a pair in one topic scores 4-5
    whether or not it shares a word (a0 ~ b0 is what the model must learn), a pair across topics 0-1."""
    rng = np.random.default_rng(seed)
    fill = [f"f{i}" for i in range(10)]

    def sentence(topic):
        side = "ab"[rng.integers(2)]
        return " ".join([*rng.choice([f"{side}{topic}w{i}" for i in range(4)], 2, replace=False), *rng.choice(fill, 2)])

    rows = []
    for n in range(num_pairs):
        t = rng.integers(TOPICS)
        same = n % 2 == 0
        u = t if same else (t + 1 + rng.integers(TOPICS - 1)) % TOPICS
        rows.append((sentence(t), sentence(u), float(rng.uniform(4, 5) if same else rng.uniform(0, 1))))
    return rows


def write_tsv(path, rows):
    return write(path, "".join(f"{a}\t{b}\t{s:.2f}\n" for a, b, s in rows))


@pytest.fixture
def planted(tmp_path):
    return (write_tsv(tmp_path / "train.tsv", planted_pairs(300, 0)),
            write_tsv(tmp_path / "test.tsv", planted_pairs(80, 1)))


def config(train, test, **overrides):
    base = dict(data=str(train), test_data=str(test), dim=8, steps=200, batch=16, learning_rate=0.01, log_every=50,
                gen_dim=8, gen_learning_rate=0.001)
    return s2net_run.make_config(**{**base, **overrides})


def test_evaluate_by_hand_with_dense_and_sparse_term_vectors():
    # Words a, b, c with idf 1: cos(a b, a) = √½, cos(a, c) = 0, cos(b c, b) = √½ — gold 4, 1, 5.
    pairs = SentencePairs(("a b", "a", "b c"), ("a", "c", "b"), np.array([4.0, 1.0, 5.0]))
    vocab, idf = {"a": 0, "b": 1, "c": 2}, np.ones(3, np.float32)
    sparse = s2net_run.evaluate(TextModel(vocab, idf), pairs)
    dense = s2net_run.evaluate(TextModel(vocab, idf, projection=np.eye(3, dtype=np.float32)), pairs)
    sims = [math.sqrt(0.5), 0.0, math.sqrt(0.5)]
    assert sparse["pearson"] == pytest.approx(scipy.stats.pearsonr(sims, [4, 1, 5])[0], rel=1e-6)
    assert sparse["spearman"] == pytest.approx(scipy.stats.spearmanr(sims, [4, 1, 5])[0], rel=1e-6)
    # Retrieval among "a b", "a", "c", "b c", "b"; queries: both sides of the pairs scoring ≥ 4, with ties against:
    # "a b" -> "a" (√½) ties "b": rank 2; "a" -> "a b" (√½), all others 0: rank 1;
    # "b c" -> "b" (√½) ties "c": rank 2; "b" -> "b c" (√½) ties "a b": rank 2.
    assert sparse["queries"] == 4
    assert sparse["top1"] == pytest.approx(0.25)
    assert sparse["mrr"] == pytest.approx((0.5 + 1 + 0.5 + 0.5) / 4)
    for key in sparse:
        assert dense[key] == pytest.approx(sparse[key], rel=1e-6)


def test_shrunk_run_learns_the_planted_synonyms_and_writes_its_folder(planted, tmp_path):
    train, test = planted
    before = s2net_run.train_s2net(config(train, test, steps=0), tmp_path / "untrained", progress=False)
    for sampler in ("uniform", "ace"):
        out = tmp_path / sampler
        final = s2net_run.train_s2net(config(train, test, sampler=sampler), out, progress=False)
        # Same-topic pairs score 4-5 and cross-topic 0-1, so ranking them apart gives ρ ≈ 0.87 at most;
        # a random A keeps the words apart (a0 and b0 unrelated), so it starts far lower.
        assert before["test"]["spearman"] < 0.4 and final["test"]["spearman"] > 0.6, (before, final)
        assert sorted(p.name for p in out.iterdir()) == [
            "checkpoint.msgpack", "config.json", "metrics.json", "metrics.jsonl", "projection.npy", "vocab.tsv"]
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        for kind in ("train", "eval"):  # each log step: a train record, then the first evaluation split's scores
            assert [r["step"] for r in records if r["kind"] == kind] == [50, 100, 150, 200]
        reloaded = s2net_run.evaluate(TextModel.load(out), s2net_run.eval_sets(str(train), str(test))["test"])
        for key, value in final["test"].items():
            assert reloaded[key] == pytest.approx(value, rel=1e-5)
    records = [json.loads(line) for line in (tmp_path / "ace" / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in records if r["kind"] == "train"][-1]["generated_fraction"] > 0


def test_steps_compile_once_and_resume_equals_an_unbroken_run(planted, tmp_path):
    train, test = planted
    s2net_run.compiled_steps.cache_clear()
    s2net_run.train_s2net(config(train, test, steps=200, sampler="self-adv"), tmp_path / "whole", progress=False)
    assert s2net_run.compiled_steps(config(train, test, sampler="self-adv").game, True)._cache_size() == 1
    s2net_run.train_s2net(config(train, test, steps=100, sampler="self-adv"), tmp_path / "part", progress=False)
    # Resuming may raise the number of steps; any other setting must be the saved one.
    with pytest.raises(AceJaxError, match="dim 4 differs"):
        s2net_run.train_s2net(config(train, test, steps=200, sampler="self-adv", dim=4), tmp_path / "part",
                              resume=True, progress=False)
    s2net_run.train_s2net(config(train, test, steps=200, sampler="self-adv"), tmp_path / "part", resume=True,
                          progress=False)
    np.testing.assert_array_equal(np.load(tmp_path / "part" / "projection.npy"),
                                  np.load(tmp_path / "whole" / "projection.npy"))
    with pytest.raises(AceJaxError, match="none is not a run folder"):
        s2net_run.train_s2net(config(train, test), tmp_path / "none", resume=True, progress=False)


def test_cli_train_eval_similar(planted, tmp_path, capsys):
    train, test = planted
    out = tmp_path / "run"
    assert main(["s2net", "train", "--data", str(train), "--test", str(test), "--out", str(out), "--dim", "8",
                 "--steps", "100", "--batch", "16", "--lr", "0.01", "--loss", "hinge", "--quiet"]) == 0
    assert "test" in capsys.readouterr().out
    assert main(["s2net", "eval", str(out), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "metrics.json").read_text())
    assert scores["test"]["spearman"] == pytest.approx(saved["test"]["spearman"])
    assert main(["s2net", "eval", str(out), "--data", str(train)]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("train.tsv")
    assert main(["s2net", "similar", str(out), "a2w0 a2w1 f1", "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all(any(f"{side}2w" in line for side in "ab") for line in lines), lines  # topic 2's sentences come first


@pytest.mark.parametrize("case", ["bad-row", "not-empty", "no-run", "unknown-words", "bad-dim", "bad-split"])
def test_bad_input_is_one_error_line(planted, tmp_path, capsys, case):
    train, test = planted
    run = tmp_path / "run"
    args = {
        "bad-row": ["s2net", "train", "--data", str(write(tmp_path / "bad.tsv", "a b\tc d\t3\nx y\tz\n")),
                    "--out", str(run)],
        "not-empty": ["s2net", "train", "--data", str(train), "--out", str(write(tmp_path / "full" / "x", "").parent)],
        "no-run": ["s2net", "eval", str(tmp_path)],
        "unknown-words": ["s2net", "similar", str(run), "zzz qqq"],
        "bad-dim": ["s2net", "train", "--data", str(train), "--out", str(run), "--dim", "0"],
        "bad-split": ["s2net", "eval", str(run), "--split", "dev"],
    }[case]
    if case in ("unknown-words", "bad-split"):
        s2net_run.train_s2net(config(train, test, steps=0), run, progress=False)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ace-jax: error:"), err
    if case == "bad-row":
        assert "bad.tsv:2" in err
        assert not run.exists()  # nothing half-written


def test_unseen_words_get_rows_that_training_never_moves(tmp_path):
    # Test texts share a word ("zz") no training text has: kept, it matches them; dropped, they are empty.
    train = write_tsv(tmp_path / "train.tsv", planted_pairs(60, 0))
    test = write_tsv(tmp_path / "test.tsv", [("zz a0w0", "zz b3w1", 4.5), ("zz f1", "a2w2 f2", 0.5),
                                             ("b1w1 f3", "b1w2 f4", 2.0)])
    settings = dict(log_every=10, dim=16, sampler="none")
    start = s2net_run.build(config(train, test, unseen_words=True, steps=0, **settings))
    final = s2net_run.train_s2net(config(train, test, unseen_words=True, steps=20, **settings), tmp_path / "open",
                                  progress=False)
    closed = s2net_run.train_s2net(config(train, test, steps=20, **settings), tmp_path / "closed", progress=False)
    model = TextModel.load(tmp_path / "open")
    assert "zz" in model.vocab and "zz" not in TextModel.load(tmp_path / "closed").vocab
    row = model.vocab["zz"]
    np.testing.assert_array_equal(model.projection[row], np.asarray(start.initial_state.params["A"])[row])
    assert model.idf[row] == pytest.approx(math.log(len(start.task.sentences)))  # the idf of a df of 0 (log: N / 1)
    assert final["test"]["pairs"] == closed["test"]["pairs"] == 3
