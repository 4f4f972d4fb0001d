"""Order embeddings for WordNet hypernyms: the noun hierarchy of a database archive the tests write, its closure
and split by hand, the threshold by hand, a shrunk run through the CLI, and the staged WordNet 3.0's counts."""

import io
import json
import os
import tarfile

import numpy as np
import pytest

from ace_jax import order_run
from ace_jax.cli import main
from ace_jax.data import wordnet
from ace_jax.errors import AceJaxError

from test_cli import one_line_error

LICENSE = "  1 This software and database is being provided to you, the LICENSEE, by  \n"


def write_archive(path, synsets, *, data_noun=None):
    """A WNdb-style .tar.gz: synsets are (lemmas, [(pointer, index of the target)]); offsets 1000 + 100 i."""
    offset = [1000 + 100 * i for i in range(len(synsets))]
    lines, senses = [LICENSE], {}
    for i, (words, pointers) in enumerate(synsets):
        lines.append(f"{offset[i]:08d} 03 n {len(words):02x} " + " ".join(f"{w} 0" for w in words)
                     + f" {len(pointers):03d}" + "".join(f" {p} {offset[t]:08d} n 0000" for p, t in pointers)
                     + " | a gloss  \n")
        for w in words:
            senses.setdefault(w.lower(), []).append(offset[i])
    index = [LICENSE] + [f"{w} n {len(o)} 1 @ {len(o)} 0 " + " ".join(f"{x:08d}" for x in o) + "  \n"
                         for w, o in sorted(senses.items())]
    with tarfile.open(path, "w:gz") as archive:
        for name, text in (("dict/data.noun", data_noun or "".join(lines)), ("dict/index.noun", "".join(index))):
            blob = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    return path


# 0 entity; 1 animal, 2 plant; 9 pet; dog (3) is an animal and a pet; Lassie an instance of dog; "dog" is also
# the second sense of synset 10 (frump, dog).
SMALL = [(["entity"], []), (["animal"], [("@", 0)]), (["plant"], [("@", 0)]),
         (["dog", "domestic_dog"], [("@", 1), ("@", 9)]), (["cat"], [("@", 1)]), (["puppy"], [("@", 3)]),
         (["Lassie"], [("@i", 3)]), (["tree"], [("@", 2)]), (["oak"], [("@", 7)]), (["pet"], [("@", 1)]),
         (["frump", "dog"], [("@", 0)])]


def test_nouns_names_edges_closure_and_path_count_by_hand(tmp_path):
    nouns = wordnet.load_nouns(write_archive(tmp_path / "wn.tar.gz", SMALL))
    assert len(nouns) == 11 and nouns.lemmas[6] == ("Lassie",)
    assert nouns.names == ("entity.n.01", "animal.n.01", "plant.n.01", "dog.n.01", "cat.n.01", "puppy.n.01",
                           "lassie.n.01", "tree.n.01", "oak.n.01", "pet.n.01", "frump.n.01")
    assert nouns.edges.tolist() == [[1, 0], [2, 0], [3, 1], [3, 9], [4, 1], [5, 3], [6, 3], [7, 2], [8, 7],
                                    [9, 1], [10, 0]]
    ancestors = {1: {0}, 2: {0}, 3: {1, 9, 0}, 4: {1, 0}, 5: {3, 1, 9, 0}, 6: {3, 1, 9, 0}, 7: {2, 0}, 8: {7, 2, 0},
                 9: {1, 0}, 10: {0}}
    assert wordnet.closure(len(nouns), nouns.edges).tolist() == sorted([x, a] for x in ancestors for a in ancestors[x])
    # One pair per path: dog reaches animal twice (directly and through pet), and so do puppy and Lassie.
    paths = {1: 1, 2: 1, 3: 5, 4: 2, 5: 6, 6: 6, 7: 2, 8: 3, 9: 2, 10: 1}
    assert wordnet.path_count(len(nouns), nouns.edges) == sum(paths.values())
    with pytest.raises(AceJaxError, match="cycle"):
        wordnet.closure(3, np.array([[0, 1], [1, 2], [2, 1]]))


def test_a_damaged_line_or_archive_is_one_error_naming_it(tmp_path):
    bad = LICENSE + "00001000 03 n 01 entity 0 000 | ok\n00001100 03 n 02 animal 0 001 @ 00001000 n 0000 | short\n"
    with pytest.raises(AceJaxError, match=r"data.noun:3: not a noun synset line"):
        wordnet.load_nouns(write_archive(tmp_path / "bad.tar.gz", SMALL, data_noun=bad))
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(AceJaxError, match="not a readable WordNet archive"):
        wordnet.load_nouns(tmp_path / "junk.tar.gz")


def test_the_split_is_seeded_disjoint_and_its_negatives_are_false():
    # A star under the root (0) and a chain 1 <- 2 <- ... <- 9: (x, 0) cannot be corrupted on the hyponym side.
    edges = np.array([[i, 0] for i in range(1, 10)] + [[i + 1, i] for i in range(1, 9)])
    pairs = wordnet.closure(10, edges)
    known = {tuple(p) for p in pairs.tolist()}
    one, two = (wordnet.split_closure(pairs, 10, size=5, max_draws=50) for _ in range(2))
    for name in ("train", "valid", "test", "valid_negatives", "test_negatives"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    together = np.concatenate([one.train, one.valid, one.test])
    assert len(one.test) == len(one.valid) == 5 and sorted(map(tuple, together.tolist())) == sorted(known)
    for pos, neg in ((one.valid, one.valid_negatives), (one.test, one.test_negatives)):
        assert all(tuple(n) not in known and n[0] != n[1] for n in neg.tolist())
        assert ((pos == neg).sum(axis=1) == 1).all()  # exactly one side replaced
    pairs_, labels = one.labelled("test")
    assert labels.tolist() == [True] * 5 + [False] * 5 and len(pairs_) == 10
    with pytest.raises(AceJaxError, match="nothing to train on"):
        wordnet.split_closure(pairs, 10, size=(len(pairs) + 1) // 2)


def test_the_threshold_is_the_most_accurate_energy_ties_counted_together():
    energy = np.array([0.0, 0.0, 0.5, 1.0, 1.0, 3.0])
    labels = np.array([True, False, True, True, False, False])
    # Right of 6: none true 3; E ≤ 0: 1 + 2; ≤ 0.5: 2 + 2; ≤ 1: 3 + 1; ≤ 3: 3 + 0. Best 4: 0.5, the smaller of
    # two (the pairs tied at 0 and at 1 fall on one side together).
    assert order_run.best_threshold(energy, labels) == 0.5
    scores = order_run.classify(energy, labels, 0.5)
    assert scores["accuracy"] == pytest.approx(4 / 6) and scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3) and scores["pairs"] == 6
    assert order_run.best_threshold(np.array([1.0, 2.0]), np.array([False, False])) == float("-inf")
    params = {"entity": np.array([[1.0, 0.0, 2.0], [2.0, 0.0, 1.0]])}
    np.testing.assert_allclose(order_run.energies(params, np.array([[0, 1], [1, 0]])), [1.0, 1.0])


def binary_tree(depth):
    """Synsets of a complete binary tree: node i's parent (i − 1) // 2, lemma n{i}."""
    return [([f"n{i}"], [] if i == 0 else [("@", (i - 1) // 2)]) for i in range(2 ** depth - 1)]


FLAGS = ["--dim", "8", "--batch", "64", "--lr", "0.05", "--split-size", "40", "--epochs", "20", "--eval-every", "10",
         "--quiet"]


def test_a_shrunk_ace_run_through_the_cli_learns_the_order_and_predicts(tmp_path, capsys, monkeypatch):
    # The ACE mixture with the generator that reads the discriminator's rows (pool form): every part of the game.
    archive = write_archive(tmp_path / "tree.tar.gz", binary_tree(7))  # 127 synsets, 642 closure pairs
    run_dir = tmp_path / "run"
    assert main(["order", "train", "--data", str(archive), "--out", str(run_dir), *FLAGS, "--sampler", "ace",
                 "--gen-tables", "discriminator", "--generator", "pool", "--candidates", "32"]) == 0
    for name in ("config.json", "synsets.tsv", "embeddings.npy", "metrics.json", "metrics.jsonl",
                 "checkpoint.msgpack", "valid_accuracy.png"):
        assert (run_dir / name).exists(), name
    final = json.loads((run_dir / "metrics.json").read_text())
    assert final["test"]["accuracy"] > 0.75, final  # chance is 0.5
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["kind"] == "eval"]
    assert [r["epoch"] for r in evals] == [10.0, 20.0]
    assert all(np.isfinite(r["hardness"]["loss_ratio"]) for r in evals)
    capsys.readouterr()
    assert main(["order", "eval", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == final["test"]
    table = np.load(run_dir / "embeddings.npy")
    assert table.shape == (127, 8) and table.min() >= 0.0
    assert main(["order", "predict", str(run_dir), "N5", "--top", "3"]) == 0  # any case
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "n5.n.01" and len(lines) == 4
    energies = [float(line.split()[0]) for line in lines[1:]]
    assert energies == sorted(energies)
    assert "word 'nope': no noun synset" in one_line_error(["order", "predict", str(run_dir), "nope"], tmp_path,
                                                            capsys, monkeypatch)


@pytest.mark.skipif(not os.environ.get("ACE_JAX_DATA_DIR"), reason="needs the staged data (ACE_JAX_DATA_DIR)")
def test_the_staged_wordnet_counts_and_the_pinned_split():
    hypernyms = order_run.load_hypernyms("wordnet")
    nouns = hypernyms.nouns
    assert (len(nouns), len(nouns.edges), len(hypernyms.closure)) == (82_115, 84_427, 743_241)
    assert wordnet.path_count(len(nouns), nouns.edges) == 837_888  # the reference code's count, paths repeated
    assert nouns.names[0] == "entity.n.01" and nouns.names[np.searchsorted(nouns.offsets, 2084071)] == "dog.n.01"
    split = hypernyms.split
    assert (len(split.train), len(split.valid), len(split.test)) == (735_241, 4_000, 4_000)

    def named(pairs):
        return [(nouns.names[a], nouns.names[b]) for a, b in pairs.tolist()]

    assert named(split.test[:2]) == [("sexism.n.01", "act.n.02"), ("hancock.n.01", "organism.n.01")]
    assert named(split.test_negatives[:2]) == [("sexism.n.01", "glade_mallow.n.01"),
                                               ("hancock.n.01", "clothes_moth.n.01")]
    assert named(split.train[:1]) == [("groomsman.n.01", "living_thing.n.01")]
