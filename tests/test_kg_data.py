"""Knowledge-graph triples: the three file forms, ids by sorted name, unseen entities counted, bad lines named."""

import io
import os
import tarfile

import numpy as np
import pytest

from ace_jax.data.triples import load_kg
from ace_jax.errors import AceJaxError

SPLITS = {
    "train": "b\tlikes\ta\r\na\tlikes\tc\r\n\r\nc\tknows\tb\r\n",
    "valid": "a\tknows\tb\n",
    "test": "b\tknows\td\na\tlikes\tb\n",  # d and the pair (b, d) never occur in training
}


def write_folder(folder, splits=SPLITS):
    folder.mkdir()
    for split, text in splits.items():
        (folder / f"{split}.txt").write_bytes(text.encode())
    return folder


def write_archive(archive, splits=SPLITS):
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        for split, text in splits.items():
            info = tarfile.TarInfo(f"{split}.txt")
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))


def test_a_folder_of_tsv_files_gets_ids_by_sorted_name(tmp_path):
    graph = load_kg(write_folder(tmp_path / "g"))
    assert graph.entities == ("a", "b", "c", "d") and graph.relations == ("knows", "likes")
    np.testing.assert_array_equal(graph.train, [[1, 1, 0], [0, 1, 2], [2, 0, 1]])  # CRLF and the blank line gone
    np.testing.assert_array_equal(graph.test, [[1, 0, 3], [0, 1, 1]])
    assert (graph.unseen("valid"), graph.unseen("test")) == (0, 1)
    assert len(graph.all_triples()) == 6 and not graph.train.flags.writeable
    again = load_kg(write_folder(tmp_path / "h", {k: SPLITS[k] for k in ("test", "valid", "train")}))
    assert again.entities == graph.entities  # the same ids however the files are written


def test_an_unseen_relation_is_counted_too(tmp_path):
    graph = load_kg(write_folder(tmp_path / "g", {**SPLITS, "valid": "a\tnew\tb\n"}))
    assert graph.unseen("valid") == 1


def test_the_conve_archive_reads_like_the_folder(tmp_path, monkeypatch):
    write_archive(tmp_path / "data" / "kg" / "FB15k-237.tar.gz")
    monkeypatch.setenv("ACE_JAX_DATA_DIR", str(tmp_path / "data"))
    graph, folder = load_kg("fb15k-237"), load_kg(write_folder(tmp_path / "g"))
    assert graph.entities == folder.entities
    np.testing.assert_array_equal(graph.all_triples(), folder.all_triples())


def test_openke_files_are_head_tail_relation(tmp_path):
    folder = tmp_path / "openke"
    folder.mkdir()
    (folder / "entity2id.txt").write_text("3\nzed\t0\nalpha\t1\nmid\t2\n")
    (folder / "relation2id.txt").write_text("2\n_hyper\t0\n_also\t1\n")
    (folder / "train2id.txt").write_text("2\n0 1 0\n2 0 1\n")  # zed _hyper alpha; mid _also zed
    (folder / "valid2id.txt").write_text("1\n1 2 0\n")
    (folder / "test2id.txt").write_text("0\n")
    graph = load_kg(folder)
    assert graph.entities == ("alpha", "mid", "zed") and graph.relations == ("_also", "_hyper")
    names = [(graph.entities[h], graph.relations[r], graph.entities[t]) for h, r, t in graph.train]
    assert names == [("zed", "_hyper", "alpha"), ("mid", "_also", "zed")]
    assert graph.test.shape == (0, 3)


@pytest.mark.parametrize("case, message", [
    ("two-fields", "train.txt:2: expected head<TAB>relation<TAB>tail"),
    ("empty-field", "test.txt:1: expected head<TAB>relation<TAB>tail"),
    ("missing", "valid.txt: missing"),
    ("no-train", "no training triples"),
    ("openke-count", "train2id.txt:1: says 3 lines, has 2"),
    ("openke-id", "train2id.txt:3: ids 0 9 0 are not"),
    ("openke-name-id", "entity2id.txt:3: expected name<TAB>id, got id 'x'"),
    ("not-utf8", "train.txt:2: not UTF-8"),
    ("no-such", "no such graph"),
])
def test_bad_input_names_the_file_and_line(tmp_path, case, message):
    splits = dict(SPLITS)
    if case == "two-fields":
        splits["train"] = "a\tlikes\tb\na\tlikes\n"
    elif case == "empty-field":
        splits["test"] = "a\t\tb\n"
    elif case == "no-train":
        splits["train"] = "\n"
    if case.startswith("openke"):
        folder = tmp_path / "g"
        folder.mkdir()
        (folder / "entity2id.txt").write_text("2\na\t0\nb\tx\n" if case == "openke-name-id" else "2\na\t0\nb\t1\n")
        (folder / "relation2id.txt").write_text("1\nr\t0\n")
        (folder / "train2id.txt").write_text("3\n0 1 0\n0 9 0\n" if case == "openke-count" else "2\n0 1 0\n0 9 0\n")
        for split in ("valid", "test"):
            (folder / f"{split}2id.txt").write_text("0\n")
    elif case == "no-such":
        folder = tmp_path / "nothing"
    else:
        folder = write_folder(tmp_path / "g", splits)
        if case == "missing":
            (folder / "valid.txt").unlink()
        elif case == "not-utf8":
            (folder / "train.txt").write_bytes(b"a\tlikes\tb\nb\tlikes\t\xff\n")
    with pytest.raises(AceJaxError, match=message):
        load_kg(folder)


@pytest.mark.parametrize("case, message", [
    ("no-split", "WN18RR.tar.gz: has no valid.txt"),
    ("line", "WN18RR.tar.gz:test.txt:1: expected head<TAB>relation<TAB>tail"),
    ("unreadable", "WN18RR.tar.gz: not a readable tar.gz"),
])
def test_a_bad_archive_names_the_archive_and_member(tmp_path, monkeypatch, case, message):
    archive = tmp_path / "data" / "kg" / "WN18RR.tar.gz"
    if case == "unreadable":
        archive.parent.mkdir(parents=True)
        archive.write_bytes(b"not gzip")
    else:
        splits = {**SPLITS, "test": "a\tlikes\n"}
        if case == "no-split":
            del splits["valid"]
        write_archive(archive, splits)
    monkeypatch.setenv("ACE_JAX_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(AceJaxError, match=message):
        load_kg("wn18rr")


@pytest.mark.skipif(not os.environ.get("ACE_JAX_DATA_DIR"), reason="needs the staged datasets")
@pytest.mark.parametrize("name, entities, relations, sizes, unseen_test", [
    ("fb15k-237", 14541, 237, (272115, 17535, 20466), 28),
    ("wn18rr", 40943, 11, (86835, 3034, 3134), 210),
    ("wn18", 40943, 18, (141442, 5000, 5000), 0)])
def test_the_staged_graphs(name, entities, relations, sizes, unseen_test):
    graph = load_kg(name, download=False)
    assert (len(graph.entities), len(graph.relations)) == (entities, relations)
    assert (len(graph.train), len(graph.valid), len(graph.test)) == sizes
    assert graph.unseen("test") == unseen_test
