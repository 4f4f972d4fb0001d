"""The `ace-jax` command end to end on corpora the tests write: outputs, resume, gensim round trip, bad input."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ace_jax import run
from ace_jax.cli import main
from ace_jax.embeddings import WordConfig, train_word_embeddings
from ace_jax.io import load_word2vec
from ace_jax.families.word import GameConfig

GROUPS = {  # words of a group share every context, so they should end up close together
    "animal": ["cat", "dog", "horse", "cow"],
    "vehicle": ["car", "bus", "truck", "train"],
    "fruit": ["apple", "pear", "plum", "grape"],
}
CONTEXTS = {name: [f"{name}ctx{i}" for i in range(12)] for name in GROUPS}


def write_planted_corpus(path: Path, sentences: int = 3000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    names = list(GROUPS)
    lines = []
    for _ in range(sentences):
        name = names[rng.integers(len(names))]
        word = GROUPS[name][rng.integers(4)]
        words = [*rng.choice(CONTEXTS[name], 4), word, *rng.choice(CONTEXTS[name], 4)]
        lines.append(" ".join(words))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_JAX_CACHE_DIR", str(tmp_path / "cache"))


def tiny_config(corpus: Path, **overrides) -> WordConfig:
    base = dict(corpus=str(corpus), min_count=1, dim=16, window=3, chunk=128, epochs=2, sample=0, learning_rate=0.005,
                eval_sets=(), final_sets=(), analogy=False, log_every=10, checkpoint_every=0, gen_dim=8)
    base.update(overrides)
    return WordConfig(**base)


def cosine(vectors, words, a, b):
    u, v = vectors[words.index(a)], vectors[words.index(b)]
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


@pytest.mark.parametrize("sampler,model", [("ns", "skipgram"), ("ace", "skipgram"), ("hs", "skipgram"), ("ns", "cbow")])
def test_cli_train_separates_planted_synonyms(tmp_path, sampler, model):
    corpus = write_planted_corpus(tmp_path / "corpus.txt")
    out = tmp_path / "run"
    code = main(["train", "--corpus", str(corpus), "--out", str(out), "--sampler", sampler, "--model", model,
                 "--dim", "16", "--window", "3", "--min-count", "1", "--epochs", "3", "--sample", "0", "--chunk", "128",
                 "--lr", "0.005", "--eval-sets", "", "--final-sets", "", "--no-analogy", "--quiet", "--gen-dim", "8"])
    assert code == 0
    for name in ("config.json", "vocab.tsv", "metrics.jsonl", "checkpoint.msgpack", "vectors.txt", "vectors.bin",
                 "eval.json"):
        assert (out / name).exists(), name
    words, vectors = load_word2vec(out / "vectors.txt")
    same = [cosine(vectors, words, g[i], g[j]) for g in GROUPS.values() for i in range(4) for j in range(i + 1, 4)]
    names = list(GROUPS)
    across = [cosine(vectors, words, GROUPS[a][i], GROUPS[b][i])
              for a in names for b in names if a < b for i in range(4)]
    assert np.mean(same) > np.mean(across) + 0.3, (np.mean(same), np.mean(across))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("step" in r for r in records) and records[-1]["kind"] == "eval"
    if sampler == "ace":
        assert any("gen_entropy" in r for r in records)


# (--method ns, word2vec's form by name: test_parallel's CLI runs, which must equal tiny_config's per-pair form.)
@pytest.mark.parametrize("flags, shared, reach, clip", [
    ((), True, "step", 50.0), (("--sampler", "ns"), False, "centre", 0.0), (("--row-clip", "0"), True, "step", 0.0),
    (("--known-positives", "3"), True, "step", 50.0)])
def test_the_default_is_the_measured_best_and_a_sampler_flag_gives_word2vecs_form(tmp_path, flags, shared, reach,
                                                                                  clip):
    corpus = write_planted_corpus(tmp_path / "corpus.txt")
    out = tmp_path / "run"
    assert main(["train", "--corpus", str(corpus), "--out", str(out), *flags, "--dim", "16", "--window", "3",
                 "--min-count", "1", "--epochs", "3", "--sample", "0", "--chunk", "128", "--lr", "0.005",
                 "--eval-sets", "", "--final-sets", "", "--no-analogy", "--quiet"]) == 0
    config = run.load_config(out, "word", WordConfig.from_json)
    assert (config.game.shared_negatives, config.reach, config.row_clip) == (shared, reach, clip)
    words, vectors = load_word2vec(out / "vectors.txt")
    same = [cosine(vectors, words, g[0], g[1]) for g in GROUPS.values()]
    across = [cosine(vectors, words, GROUPS[a][0], GROUPS[b][0]) for a in GROUPS for b in GROUPS if a < b]
    assert np.mean(same) > np.mean(across) + 0.3, (np.mean(same), np.mean(across))


def test_vectors_load_in_gensim(tmp_path):
    from gensim.models import KeyedVectors

    corpus = write_planted_corpus(tmp_path / "corpus.txt", sentences=300)
    out = tmp_path / "run"
    train_word_embeddings(tiny_config(corpus, epochs=1), out, progress=False)
    words, vectors = load_word2vec(out / "vectors.bin")
    for name, binary in (("vectors.txt", False), ("vectors.bin", True)):
        kv = KeyedVectors.load_word2vec_format(str(out / name), binary=binary)
        assert kv.index_to_key == words
        np.testing.assert_allclose(kv.vectors, vectors, rtol=1e-6, atol=1e-7)


def test_resume_continues_exactly(tmp_path):
    corpus = write_planted_corpus(tmp_path / "corpus.txt", sentences=400)
    config = tiny_config(corpus, game=GameConfig(sampler="ace"))
    train_word_embeddings(config, tmp_path / "whole", progress=False)
    assert train_word_embeddings(config, tmp_path / "broken", stop_at_step=3, progress=False) == {}
    assert not (tmp_path / "broken" / "vectors.txt").exists()
    train_word_embeddings(config, tmp_path / "broken", resume=True, progress=False)
    _, whole = load_word2vec(tmp_path / "whole" / "vectors.bin")
    _, resumed = load_word2vec(tmp_path / "broken" / "vectors.bin")
    np.testing.assert_array_equal(whole, resumed)
    steps = [json.loads(line)["step"] for line in (tmp_path / "broken" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)


def test_pair_budget_is_exact(tmp_path):
    corpus = write_planted_corpus(tmp_path / "corpus.txt", sentences=400)
    final = train_word_embeddings(tiny_config(corpus, pairs=5000), tmp_path / "run", progress=False)
    assert final["pairs"] == 5000


def test_eval_json_and_neighbors(tmp_path, capsys):
    if not os.environ.get("ACE_JAX_DATA_DIR"):
        pytest.skip("ACE_JAX_DATA_DIR is not set; it points at the staged datasets (shared/data)")
    corpus = write_planted_corpus(tmp_path / "corpus.txt", sentences=300)
    out = tmp_path / "run"
    train_word_embeddings(tiny_config(corpus, epochs=1, eval_sets=("ws353",), eval_every=5), out, progress=False)
    assert (out / "similarity.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["eval", str(out / "vectors.txt"), "--sets", "ws353,rw", "--json", "--no-analogy"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"ws353", "rw"}
    assert scores["ws353"]["pairs"] + scores["ws353"]["oov"] == 353
    assert main(["neighbors", str(out / "vectors.txt"), "cat", "--top", "3"]) == 0
    assert capsys.readouterr().out.startswith("cat: ")


def run_cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "ace_jax.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env)


def one_line_error(args, cwd, capsys, monkeypatch) -> str:
    """The CLI run in this process (a subprocess per case costs a JAX import each): its one stderr line, after
    checking that it failed and printed nothing else."""
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit_info:  # argparse's errors
        code = exit_info.code
    lines = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(lines) == 1, (args, code, lines)
    return lines[0]


def test_bad_inputs_give_one_line_and_no_run_folder(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    rare = tmp_path / "rare.txt"
    rare.write_text("every word here is unique\n")
    vectors = tmp_path / "v.txt"
    vectors.write_text("2 2\na 1 0\nb 0 1\n")
    cases = [
        ["train", "--corpus", str(tmp_path / "missing.txt"), "--out", "out"],
        ["train", "--corpus", str(empty), "--out", "out"],
        ["train", "--corpus", str(rare), "--out", "out", "--min-count", "5"],
        ["train", "--corpus", str(rare), "--out", "out", "--sampler", "bogus"],
        ["train", "--corpus", str(rare), "--out", "out", "--min-count", "1", "--eval-sets", "ws999"],
        ["train", "--corpus", str(rare), "--out", "out", "--min-count", "1", "--model", "cbow", "--shared-negatives"],
        ["train", "--corpus", str(rare), "--out", "out", "--min-count", "1", "--row-clip", "-1"],
        ["train", "--corpus", str(rare), "--out", "out", "--min-count", "1", "--gen-temperature", "0"],
        ["eval", str(vectors), "--sets", "nosuchset"],
        ["eval", str(tmp_path / "missing.bin")],
        ["neighbors", str(vectors), "zebra"],
        ["train", "--corpus", str(rare), "--out", "out", "--min-count", "1", "--known-positives", "3",
         "--sampler", "hs"],
    ]
    for args in cases:
        assert "error" in one_line_error(args, tmp_path, capsys, monkeypatch), args
        assert not (tmp_path / "out").exists(), args
    result = run_cli(*cases[0], cwd=tmp_path)  # and through the module's entry point, as a user runs it
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_signals_are_taken_between_steps(signum):
    from ace_jax.run import stop_requests

    before = signal.getsignal(signum)  # Python's default, or SIG_IGN in a job started in the background
    with stop_requests() as stop:
        os.kill(os.getpid(), signum)  # no KeyboardInterrupt or exit mid-step: the loop sees the event instead
        assert stop.wait(5) and stop.signum == signum
    assert signal.getsignal(signum) is before


@pytest.mark.parametrize("gen_tables,pool", [("own", False), ("discriminator", False), ("discriminator", True)],
                         ids=["own", "discriminator", "discriminator-pool-floored"])
def test_negatives_shows_the_generator_beside_the_discriminator_and_hardness_is_recorded(tmp_path, capsys,
                                                                                         gen_tables, pool):
    corpus = write_planted_corpus(tmp_path / "corpus.txt", sentences=300)
    out = tmp_path / "run"
    game = GameConfig(sampler="ace", gen_tables=gen_tables)
    if pool:  # the measures are of what training draws from: 8 candidates, the floor held over them
        game = dataclasses.replace(game, generator="pool", candidates=8, gen_min_entropy=1.5)
    train_word_embeddings(tiny_config(corpus, epochs=1, game=game), out, progress=False)
    assert main(["negatives", str(out), "cat", "car", "--top", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if not line.startswith("  ")] == ["cat", "car"]
    generator_rows = [line for line in lines if "generator g(y|x)" in line]
    assert len(generator_rows) == 2 and all(len(row.split(",")) == 4 for row in generator_rows), lines
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    hardness = [r["hardness"] for r in records if r["kind"] == "eval"][-1]
    assert {"noise_loss", "gen_loss", "loss_ratio", "gen_top_k", "gen_entropy", "gen_overlap"} <= set(hardness)
    if pool:
        assert 1.5 - 1e-3 <= hardness["gen_entropy"] <= np.log(8) + 1e-5, hardness
    assert main(["negatives", str(out), "zebra"]) == 1
