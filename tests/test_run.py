"""The one run loop (ace_jax.run) as a new user meets it through `ace-jax`: signals, resume with other settings,
finished runs, the progress line, and every error a user can cause as one line."""

import dataclasses
import io as std_io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ace_jax import run
from ace_jax.cli import build_parser, main
from ace_jax.embeddings import WordConfig, WordJob, train_word_embeddings
from ace_jax.errors import AceJaxError, SettingError

from test_cli import one_line_error, private_cache, run_cli, tiny_config, write_planted_corpus  # noqa: F401 (fixture)

TRAIN = ["--min-count", "1", "--dim", "8", "--window", "2", "--chunk", "64", "--sample", "0", "--lr", "0.005",
         "--eval-sets", "", "--final-sets", "", "--no-analogy", "--log-every", "10"]


@pytest.fixture
def corpus(tmp_path):
    return write_planted_corpus(tmp_path / "corpus.txt", sentences=300)


def train_cli(corpus, out, *extra) -> list[str]:
    return ["train", "--corpus", str(corpus), "--out", str(out), *TRAIN, *extra]


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "ctrl-c"])
def test_a_signal_saves_a_checkpoint_and_exits_128_plus_it(corpus, tmp_path, signum, code):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = [sys.executable, "-m", "ace_jax.cli", *train_cli(corpus, out, "--epochs", "400", "--quiet")]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert stderr.count("\n") == 1 and "checkpoint is saved" in stderr and "Traceback" not in stderr, stderr
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert (out / "checkpoint.msgpack").exists() and not (out / "vectors.txt").exists()
    if signum != signal.SIGTERM:
        return  # the same loop path: resuming once is enough
    # Resumed in this process for 30 more steps (the whole 400 epochs would take most of the test's time).
    saved = run.load_config(out, "word", WordConfig.from_json)
    assert train_word_embeddings(saved, out, resume=True, progress=False, stop_at_step=steps[-1] + 30) == {}
    after = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert after[-1] >= steps[-1] + 30
    assert after[: len(steps)] == steps and all(a < b for a, b in zip(after, after[1:]) if a != b)


def test_resume_with_other_settings_is_an_error_naming_the_flag(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_cli(corpus, out, "--quiet")) == 0
    for extra, flag in ((["--lr", "0.5"], "--lr 0.5"), (["--method", "ace-pool"], "--method 'ace-pool'"),
                        (["--no-normalize"], "--no-normalize False")):
        capsys.readouterr()
        assert main(["train", "--corpus", str(corpus), "--out", str(out), "--resume", *extra]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"ace-jax: error: {flag} differs from the run in") and err.count("\n") == 1, err
        assert "whose" in err, err
    # The same settings, given or left out, are not an error.
    assert main(["train", "--corpus", str(corpus), "--out", str(out), "--resume", "--lr", "0.005", "--quiet"]) == 0
    saved = run.load_config(out, "word", WordConfig.from_json)  # the Python API names the field
    with pytest.raises(SettingError, match="learning_rate 0.5 differs"):
        train_word_embeddings(dataclasses.replace(saved, learning_rate=0.5), out, resume=True, progress=False)


def test_resume_on_a_finished_run_adds_nothing(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_cli(corpus, out, "--quiet")) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / ".eval.json.0123abcd.tmp").write_text("half")  # what a killed writer leaves
    assert main(train_cli(corpus, out, "--resume", "--quiet")) == 0
    assert "spearman" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


class Terminal(std_io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "log-file"])
def test_progress_is_one_updating_line_on_a_terminal_and_plain_lines_in_a_log(tty):
    class Job:
        total_steps, words_per_step = 300, None

        def progress(self, status, scores):
            return ["extra"]

    stream = Terminal(tty)
    line = run.ProgressLine(Job(), stream)
    for step in (100, 200, 300):
        line.update(step, {"loss": 0.5, "gen_entropy": 3.0}, {}, {})
    line.close()
    text = stream.getvalue()
    assert text.count("step ") == 3 and "loss 0.5000" in text and "gen H 3.00" in text and "extra" in text
    if tty:
        assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    else:
        assert "\r" not in text and text.count("\n") == 3


def test_a_failed_run_before_its_first_checkpoint_leaves_nothing(corpus, tmp_path):
    out = tmp_path / "run"

    class Failing(WordJob):
        def advance(self, state, step, steps):
            raise AceJaxError("boom")

    with pytest.raises(AceJaxError, match="boom"):
        run.train(Failing, tiny_config(corpus), out, progress=False)
    assert not out.exists()


def test_json_has_no_nan():
    record = run.finite_or_null({"a": float("nan"), "b": {"c": float("inf"), "d": 1.5}, "e": "x"})
    assert record == {"a": None, "b": {"c": None, "d": 1.5}, "e": "x"}


def test_every_train_flag_has_help_with_its_default_and_there_is_a_version(capsys):
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and action.help.strip(), action.option_strings
    help_text = train.format_help()
    assert help_text.count("(default:") >= len([a for a in train._actions if a.option_strings]) - 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip().startswith("ace-jax 0.")


def test_errors_a_user_can_cause_are_one_line(corpus, tmp_path, capsys, monkeypatch):
    s2net_run = tmp_path / "s2net-run"
    s2net_run.mkdir()
    (s2net_run / "config.json").write_text(json.dumps({"family": "s2net", "data": "stsb"}))
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.json").write_text("{not json")
    no_config = tmp_path / "no-config"
    no_config.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    header = tmp_path / "header.txt"
    header.write_text("three words here\nx 1 2\n")
    nan_vectors = tmp_path / "v.txt"
    nan_vectors.write_text("2 2\ncat 1 0\ndog 0 1\n")
    cases = {
        "--out /proc/x/y": (train_cli(corpus, "/proc/x/y"), "--out /proc/x/y"),
        "--out a file": (train_cli(corpus, a_file), "is a file"),
        "missing config.json": (train_cli(corpus, no_config, "--resume"), "has no config.json"),
        "damaged config.json": (train_cli(corpus, damaged, "--resume"), "config.json is damaged"),
        "another family": (train_cli(corpus, s2net_run, "--resume"), "holds a s2net run, not a word one"),
        "negative --lr": (["train", "--corpus", str(tmp_path / "missing.txt"), "--out", "o", "--lr", "-1"],
                          "--lr must be positive, not -1.0"),
        "--min-count 0": (["train", "--corpus", str(corpus), "--out", "o", "--min-count", "0"],
                          "--min-count must be at least 1, not 0"),
        "--min-count too high": (["train", "--corpus", str(corpus), "--out", "o", "--min-count", "100000"],
                                 "occurs 100000 times or more"),
        "neighbors --top 0": (["neighbors", str(nan_vectors), "cat", "--top", "0"], "--top must be at least 1"),
        "--process-id": (train_cli(corpus, "o", "--coordinator", "localhost:1", "--num-processes", "2",
                                   "--process-id", "5"), "--process-id must lie in [0, 2)"),
        "binary file": (["eval", str(binary)], "binary"),
        "bad header": (["eval", str(header)], "expected a word2vec header"),
    }
    for name, (args, expected) in cases.items():
        if name == "--process-id":  # joins (or would join) other processes: in a process of its own
            line = one_error_line(run_cli(*args, cwd=tmp_path))
        else:
            line = one_line_error(args, tmp_path, capsys, monkeypatch)
        assert line.startswith("ace-jax: error:") and expected in line, (name, line)
        if name == "--min-count too high":
            assert line.endswith("lower --min-count"), line
        assert not (tmp_path / "o").exists()
    assert not Path("/proc/x").exists()
    result = run_cli("eval", str(nan_vectors), "--sets", "ws353", "--no-analogy", "--json", cwd=tmp_path)
    assert json.loads(result.stdout)["ws353"]["spearman"] is None, result.stdout
    text = run_cli("eval", str(nan_vectors), "--sets", "ws353", "--no-analogy", cwd=tmp_path).stdout
    assert "–" in text and "not defined" in text, text


def test_s2net_resume_may_train_longer_but_not_differently(tmp_path, capsys):
    from test_s2net_run import planted_pairs, write_tsv

    train = write_tsv(tmp_path / "train.tsv", planted_pairs(200, 0))
    out = tmp_path / "run"
    args = ["s2net", "train", "--data", str(train), "--out", str(out), "--dim", "8", "--batch", "16", "--quiet"]
    assert main([*args, "--steps", "100"]) == 0
    assert main([*args, "--steps", "200", "--resume"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [100, 200]
    assert json.loads((out / "config.json").read_text())["steps"] == 200
    capsys.readouterr()
    assert main([*args, "--steps", "200", "--resume", "--lr", "0.5"]) == 1
    assert capsys.readouterr().err.startswith("ace-jax: error: --lr 0.5 differs")
    assert np.isfinite(json.loads((out / "metrics.json").read_text())["train"]["spearman"])


def test_resume_skips_a_half_written_record_and_evaluates_the_last_step_once(corpus, tmp_path):
    out = tmp_path / "run"
    config = tiny_config(corpus, epochs=1, log_every=5, eval_every=0)
    train_word_embeddings(config, out, stop_at_step=10, progress=False)
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 11, "kind": "tra')  # a writer killed mid-line
    train_word_embeddings(config, out, resume=True, progress=False)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line whole
    # Killed after the final checkpoint and evaluation, before eval.json: the resumed run writes the outputs
    # and does not evaluate the last step again.
    (out / "eval.json").unlink()
    train_word_embeddings(config, out, resume=True, progress=False)
    again = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = records[-1]["step"]
    assert [r for r in again if r["kind"] == "eval" and r["step"] == last] == [records[-1]]
    assert (out / "eval.json").exists()


def test_a_diverging_run_stops_with_the_step_it_diverged_at(corpus, tmp_path):
    from ace_jax.errors import Diverged

    out = tmp_path / "run"
    with pytest.raises(Diverged, match="the loss became") as caught:
        train_word_embeddings(tiny_config(corpus, learning_rate=1e30), out, progress=False)
    assert caught.value.step % 10 == 0 and caught.value.step > 0  # found at a log step (log_every 10)
    assert f"at step {caught.value.step}" in str(caught.value) and not (out / "vectors.txt").exists()


def test_a_warm_generator_starts_from_a_finished_runs_rows(corpus, tmp_path, capsys, monkeypatch):
    from ace_jax import embeddings
    from ace_jax.families import word

    pretrained = tmp_path / "ns8"
    train_word_embeddings(tiny_config(corpus, dim=8, epochs=0.2), pretrained, progress=False)
    _, _, saved = embeddings.load_run(pretrained)
    config = tiny_config(corpus, gen_init=str(pretrained), game=word.GameConfig(sampler="ace", generator="pool"))
    gen = embeddings.build(config).initial_state.gen_params
    np.testing.assert_array_equal(gen["query"], saved.params["in"])
    np.testing.assert_array_equal(gen["cand"], saved.params["out"])
    assert np.any(saved.params["out"] != 0)  # it learned: not the zeros a cold generator's b starts at
    base = train_cli(corpus, tmp_path / "out", "--sampler", "ace", "--gen-init", str(pretrained))
    assert "--gen-init" in one_line_error([*base, "--gen-dim", "4"], tmp_path, capsys, monkeypatch)
    assert "--gen-init" in one_line_error(train_cli(corpus, tmp_path / "out", "--gen-init", str(pretrained)),
                                          tmp_path, capsys, monkeypatch)
    assert not (tmp_path / "out").exists()


def test_advances_run_in_power_of_two_scans_with_the_step_weighted_mean():
    assert run.power_of_two_pieces(25) == [16, 8, 1] and run.power_of_two_pieces(64) == [64]
    assert run.power_of_two_pieces(0) == []
    calls = []

    def scan(state, step, n):  # each step t adds t to the state; its "loss" is t
        calls.append((step, n))
        steps = np.arange(step, step + n, dtype=np.float64)
        return state + steps.sum(), {"loss": steps.mean()}

    state, metrics = run.advance_in_pieces(scan, 0.0, 10, 25, regular=(100, 50))
    assert calls == [(10, 16), (26, 8), (34, 1)]
    assert state == sum(range(10, 35)) and metrics["loss"] == pytest.approx(np.mean(np.arange(10, 35)))
    calls.clear()
    assert run.advance_in_pieces(scan, 0.0, 100, 50, regular=(100, 50))[0] == sum(range(100, 150))
    assert calls == [(100, 50)]  # a regular advance: one scan
    calls.clear()  # a cut at step 20 splits the advance there, its function applied between the two parts
    state, metrics = run.advance_in_pieces(scan, 0.0, 10, 25, regular=(100, 50), cuts={20: lambda s: s * 10, 40: None})
    assert calls == [(10, 8), (18, 2), (20, 8), (28, 4), (32, 2), (34, 1)]
    assert state == sum(range(10, 20)) * 10 + sum(range(20, 35))
    assert metrics["loss"] == pytest.approx(np.mean(np.arange(10, 35)))
