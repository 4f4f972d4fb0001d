"""Many devices and many hosts on the CPU: 4 virtual devices, and two processes joined over localhost.

Each case runs in its own process, since a process's device count is fixed when JAX starts.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ace_jax.embeddings import train_word_embeddings
from ace_jax.io import load_word2vec
from test_cli import tiny_config, write_planted_corpus

WORKER = Path(__file__).with_name("parallel_worker.py")
# Each entry: sampler:model:devices:row_shards:optimizer[:shared-step]. 4:2 is a 2 (data) x 2 (rows) mesh; 4:1
# splits only the pairs, 4:4 only the rows. One compile per entry (most of the test's time), so each entry covers
# more than one thing: CBOW with Adagrad's row-sharded accumulators, say.
REFERENCE_AND_MESHES = {
    "ns:skipgram:{}:sgd": ["1:1", "4:1", "4:4"],
    "ace:skipgram:{}:sgd": ["1:1", "4:2"],
    "hs:skipgram:{}:sgd": ["1:1", "4:2"],
    "ns:cbow:{}:adagrad": ["1:1", "4:2"],
    "ns:skipgram:{}:sgd:shared-step": ["1:1", "4:2"],
}


def run(command: list[str], env_extra: dict | None = None, **kwargs) -> subprocess.Popen:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_JAX_CACHE_DIR", str(tmp_path / "cache"))


def test_one_and_four_devices_and_row_shards_give_the_same_tables(tmp_path):
    corpus = write_planted_corpus(tmp_path / "corpus.txt", sentences=400)  # 40 words: 40 % 3 rows pad unevenly too
    runs = [pattern.format(mesh) for pattern, meshes in REFERENCE_AND_MESHES.items() for mesh in meshes]
    finish(run([sys.executable, str(WORKER), str(corpus), str(tmp_path / "tables.npz"), *runs]))
    tables = np.load(tmp_path / "tables.npz")
    for pattern, meshes in REFERENCE_AND_MESHES.items():
        reference = pattern.format(meshes[0])
        names = [k[len(reference) + 1:] for k in tables.files if k.startswith(reference + "/")]
        assert any(n.startswith("params/") for n in names)
        for mesh in meshes:
            run_name = pattern.format(mesh)
            assert tables[f"{run_name}/compiles"] == 1, run_name
            assert tables[f"{run_name}/pairs"] == tables[f"{reference}/pairs"] > 0, run_name
            for name in names:
                if name != "compiles":
                    np.testing.assert_allclose(tables[f"{run_name}/{name}"], tables[f"{reference}/{name}"],
                                               rtol=1e-5, atol=1e-6, err_msg=f"{run_name} {name}")
        # The game moved the tables: equal results are not equal starting points.
        assert not np.allclose(tables[f"{reference}/params/out"], 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_agree_with_one(tmp_path):
    corpus = write_planted_corpus(tmp_path / "corpus.txt", sentences=400)
    config = tiny_config(corpus, epochs=1)
    train_word_embeddings(config, tmp_path / "single", progress=False)
    flags = ["--corpus", str(corpus), "--min-count", "1", "--dim", "16", "--window", "3", "--chunk", "128",
             "--epochs", "1", "--sample", "0", "--lr", "0.005", "--eval-sets", "", "--final-sets", "", "--no-analogy",
             "--quiet", "--gen-dim", "8", "--method", "ns"]  # the per-pair form tiny_config trains
    address = f"127.0.0.1:{free_port()}"
    out = tmp_path / "two"
    processes = [run([sys.executable, "-m", "ace_jax.cli", "train", *flags, "--out", str(out), "--coordinator", address,
                      "--num-processes", "2", "--process-id", str(rank)]) for rank in range(2)]
    outputs = [finish(p) for p in processes]
    assert "run folder" in outputs[0] and "run folder" not in outputs[1]  # process 0 reports and writes
    words, single = load_word2vec(tmp_path / "single" / "vectors.txt")
    words_two, two = load_word2vec(out / "vectors.txt")
    assert words == words_two
    np.testing.assert_allclose(two, single, rtol=1e-4, atol=1e-5)


def test_cli_devices_flag_on_a_cpu_over_hundreds_of_steps(tmp_path):
    # Hundreds of steps dispatched ahead on 4 devices: with a thread pool of one thread per device, two steps'
    # collectives could hold every thread and wait for each other (XLA then aborts the process after 40 s).
    corpus = write_planted_corpus(tmp_path / "corpus.txt", sentences=200)
    single = train_word_embeddings(tiny_config(corpus, epochs=30), tmp_path / "single", progress=False)
    assert single["steps"] >= 300, single["steps"]
    flags = ["--corpus", str(corpus), "--min-count", "1", "--dim", "16", "--window", "3", "--chunk", "128",
             "--epochs", "30", "--sample", "0", "--lr", "0.005", "--eval-sets", "", "--final-sets", "", "--no-analogy",
             "--quiet", "--gen-dim", "8", "--method", "ns", "--devices", "4", "--row-shards", "2",
             "--out", str(tmp_path / "four")]
    finish(run([sys.executable, "-m", "ace_jax.cli", "train", *flags]), timeout=200)
    _, single = load_word2vec(tmp_path / "single" / "vectors.txt")
    _, four = load_word2vec(tmp_path / "four" / "vectors.txt")
    # 480 steps of float sums in another order drift apart by up to 3e-5 (measured); a wrong split would not be close.
    np.testing.assert_allclose(four, single, rtol=0, atol=3e-4)
    assert np.abs(single).mean() > 0.1
    bad = run([sys.executable, "-m", "ace_jax.cli", "train", *flags[:-1], str(tmp_path / "bad"), "--row-shards", "3"])
    _, err = bad.communicate(timeout=300)
    expected = ["ace-jax: error: --row-shards 3 must divide the number of devices (4)"]
    assert bad.returncode == 1 and err.strip().splitlines() == expected
    assert not (tmp_path / "bad").exists()
