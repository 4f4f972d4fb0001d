"""Tests of ace_jax.data: registry resolution and download, corpus reading, vocabulary, encoding, cache."""

import bz2
import gzip
import hashlib
import lzma
import os
import string
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ace_jax.data import corpus, word_ids
from ace_jax.data.corpus import (
    CorpusOptions, Vocab, list_files, load_corpus, normalize_text, read_blocks, read_tokens,
)
from ace_jax.data.registry import DATASETS, Dataset, resolve
from ace_jax.data.word_ids import WordIds
from ace_jax.errors import AceJaxError

# Hand-counted: b x4, a x3, c x2, d x1; ties broken by word.
TEXT = "a b c a b d b c a b\n"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("ACE_JAX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ACE_JAX_DATA_DIR", raising=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def toy_dataset(relpath: str, url: str | None = None, sha256: str | None = None) -> Dataset:
    return Dataset("toy", relpath, url, sha256, license="test", description="test data")


# --- normalisation and reading ---------------------------------------------------------------


def test_normalize_text_spells_digits_drops_punctuation_folds_case():
    text = "Hello, World! In 1984 -- Café's R2-D2."
    assert normalize_text(text).split() == [
        "hello", "world", "in", "one", "nine", "eight", "four", "caf", "s", "r", "two", "d", "two",
    ]


def test_unnormalized_tokens_are_plain_split(tmp_path):
    path = write(tmp_path / "a.txt", "Hello, World!\n 42\tCafé\n")
    assert sum(read_tokens(path, normalize=False), []) == ["Hello,", "World!", "42", "Café"]


def test_wikiextractor_doc_lines_are_dropped(tmp_path):
    text = (
        '<doc id="12" url="http://en.wikipedia.org/wiki?curid=12" title="Anarchism">\n'
        "Anarchism\n\nAnarchism is a philosophy.\n</doc>\n"
        '<doc id="25" url="http://x" title="Autism">\r\nAutism\r\n</doc>\r\n'
    )
    path = write(tmp_path / "wiki_00", text)
    assert sum(read_tokens(path), []) == ["anarchism", "anarchism", "is", "a", "philosophy", "autism"]


def test_single_line_read_in_tiny_blocks_keeps_split_words_whole(tmp_path):
    text = " anarchism originated as a term of abuse first used against early working class"
    path = write(tmp_path / "text8", text)
    blocks = list(read_tokens(path, block_bytes=7))
    assert len(blocks) > 5
    assert sum(blocks, []) == text.split()


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zip"])
def test_compressed_file_reads_like_plain(tmp_path, suffix):
    data = TEXT.encode()
    path = tmp_path / f"corpus.txt{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("README", "not corpus text")
            archive.writestr("corpus/part1.txt", "a b c a b\n")
            archive.writestr("corpus/part2.txt", "d b c a b\n")
    else:
        opener = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix]
        path.write_bytes(opener(data))
    plain = write(tmp_path / "plain.txt", TEXT)
    assert sum(read_tokens(path), []) == sum(read_tokens(plain), [])


def test_corrupt_compressed_file_raises(tmp_path):
    path = tmp_path / "broken.xz"
    path.write_bytes(lzma.compress(TEXT.encode())[:-10])
    with pytest.raises(AceJaxError, match="cannot read .*broken.xz"):
        load_corpus(path, CorpusOptions(min_count=1))


def test_folder_reads_corpus_files_in_path_order_and_skips_metadata(tmp_path):
    write(tmp_path / "c" / "b" / "part.txt", "three\n")
    write(tmp_path / "c" / "a" / "wiki_00", "one\n")
    (tmp_path / "c" / "a" / "wiki_01.gz").write_bytes(gzip.compress(b"two\n"))
    for name in ("README.md", "MANIFEST.tsv", "SHA256SUMS", "LICENSE", "notes.csv", ".hidden"):
        write(tmp_path / "c" / name, "metadata\n")
    files = list_files(tmp_path / "c")
    assert [f.name for f in files] == ["wiki_00", "wiki_01.gz", "part.txt"]
    encoded = load_corpus(tmp_path / "c", CorpusOptions(min_count=1), cache=False)
    assert [encoded.vocab.words[i] for i in encoded.tokens] == ["one", "two", "three"]


# --- vocabulary and encoding -----------------------------------------------------------------


def test_vocab_order_and_min_count_cut(tmp_path):
    encoded = load_corpus(write(tmp_path / "t.txt", TEXT), CorpusOptions(min_count=2), cache=False)
    assert encoded.vocab.words == ["b", "a", "c"]
    assert encoded.vocab.counts.tolist() == [4, 3, 2]
    assert encoded.vocab.index == {"b": 0, "a": 1, "c": 2}
    assert encoded.vocab.counts.dtype == np.int64


def test_max_vocab_cut_breaks_ties_by_word():
    vocab = Vocab.from_counts({"z": 3, "y": 3, "x": 1, "w": 5}, max_vocab=3)
    assert vocab.words == ["w", "y", "z"]
    assert len(vocab) == 3


def test_oov_tokens_are_dropped_from_encoding(tmp_path):
    encoded = load_corpus(write(tmp_path / "t.txt", TEXT), CorpusOptions(min_count=3), cache=False)
    # vocab b=0, a=1; "a b c a b d b c a b" without c and d:
    assert encoded.tokens.tolist() == [1, 0, 1, 0, 0, 1, 0]
    assert encoded.tokens.dtype == np.int32
    assert encoded.n_raw_tokens == 10


def test_max_tokens_uses_only_the_start_of_the_stream(tmp_path):
    encoded = load_corpus(write(tmp_path / "t.txt", TEXT), CorpusOptions(min_count=1, max_tokens=4), cache=False)
    assert encoded.n_raw_tokens == 4
    assert encoded.vocab.words == ["a", "b", "c"]
    assert encoded.tokens.tolist() == [0, 1, 2, 0]


# Every case the fast path must get right: digits inside and around words, punctuation, case, non-ASCII
# letters (each UTF-8 byte a space, even where str.lower() would give ASCII: Kelvin sign, dotted I),
# blank and CRLF lines, <doc> lines and near misses, and words of 8, 9, 12, 13 and more letters,
# some alike in their first 12 letters. "One" and "1" are the same word.
TRICKY = (
    '<doc id="7" url="http://en.wikipedia.org/wiki?curid=7" title="R2-D2 (1977)">\n'
    "R2-D2 met C-3PO in 1977; one droid, 2 droids, 10 DROIDS!\n"
    "\n   \n\t\n"
    "Café naïve Ünïcödé straße 東京 \u212aelvin \u0130stanbul \uff21BC abc\r\n"
    "a1b2c3 x9 0 00 007 one One ONE 1\n"
    "</doc>\r\n"
    "  <doc not at a line start</doc> </doc>x <docs> <doc\n"
    "abcdefgh abcdefghi abcdefghijkl abcdefghijklm abcdefghijklmn\n"
    "internationalization internationalisation internationalization Internationalization\n"
    "antidisestablishmentarianism zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz abcdefghijkl abcdefgh\n"
    "It's the end: the END, the end... the, THE; the\n"
    "</doc>\n"
    '<doc id="8" url="x" title="Two">\n'
    "two 2 two 22 tWo the end a1b2c3 droids droids\n"
    "</doc>"
)
_DIGIT_WORDS = "zero one two three four five six seven eight nine".split()


def reference_encode(text: str, options: CorpusOptions) -> tuple[list[str], list[int], list[int], int]:
    """Words, counts, ids and raw token count, the slow, plain way: per line, per character, with a Counter."""
    lines = [line for line in text.split("\n") if not (line.startswith("<doc ") or line in ("</doc>", "</doc>\r"))]
    if options.normalize:
        spaced = "".join(
            c.lower() if c in string.ascii_letters else f" {_DIGIT_WORDS[int(c)]} " if c in string.digits else " "
            for c in "\n".join(lines)
        )
    else:
        spaced = "\n".join(lines)
    tokens = spaced.split()[: options.max_tokens]
    counted = sorted(Counter(tokens).items(), key=lambda item: (-item[1], item[0]))
    kept = [(word, count) for word, count in counted if count >= options.min_count][: options.max_vocab]
    index = {word: i for i, (word, _) in enumerate(kept)}
    ids = [index[token] for token in tokens if token in index]
    return [word for word, _ in kept], [count for _, count in kept], ids, len(tokens)


@pytest.mark.parametrize(
    "options",
    [
        CorpusOptions(min_count=1),
        CorpusOptions(min_count=2),
        CorpusOptions(min_count=1, max_vocab=7),  # cuts through the four words counted 4: ties break by word
        CorpusOptions(min_count=1, max_tokens=30),
        CorpusOptions(min_count=2, max_vocab=5, max_tokens=60),
        CorpusOptions(min_count=1, max_tokens=10**6),  # more than there are
        CorpusOptions(min_count=1, normalize=False),
    ],
)
def test_encoding_matches_reference(tmp_path, options):
    words, counts, ids, n_raw = reference_encode(TRICKY, options)
    encoded = load_corpus(write(tmp_path / "wiki_00", TRICKY), options, cache=False)
    assert encoded.vocab.words == words
    assert encoded.vocab.counts.tolist() == counts
    assert encoded.tokens.tolist() == ids
    assert encoded.n_raw_tokens == n_raw


@pytest.mark.parametrize("block_bytes, piece_bytes", [(1, 1), (5, 3), (16, 1 << 20), (100, 7), (1 << 20, 1 << 20)])
def test_word_ids_match_normalize_and_split_in_any_block(tmp_path, monkeypatch, block_bytes, piece_bytes):
    monkeypatch.setattr(word_ids, "_PIECE_BYTES", piece_bytes)
    path = write(tmp_path / "wiki_00", TRICKY * 3)
    encoder = WordIds()
    for block in read_blocks(path, block_bytes=block_bytes):
        ids = encoder.encode(block)
        assert ids.dtype == np.int32
        assert [encoder.words[i] for i in ids] == normalize_text(block.decode("utf-8")).split()
    assert len(set(encoder.words)) == len(encoder.words)


@pytest.mark.parametrize("piece_bytes", [1, 4, 1 << 20])
def test_word_ids_limit_keeps_the_first_words(monkeypatch, piece_bytes):
    monkeypatch.setattr(word_ids, "_PIECE_BYTES", piece_bytes)
    encoder = WordIds()
    block = b"Supercalifragilistic 42 x antidisestablishmentarianism y"
    ids = encoder.encode(block, limit=4)
    assert [encoder.words[i] for i in ids] == ["supercalifragilistic", "four", "two", "x"]
    assert "antidisestablishmentarianism" not in encoder.words


def test_vocab_file_round_trip(tmp_path):
    vocab = Vocab(["the", "café"], [7, 2])
    vocab.to_file(tmp_path / "vocab.tsv")
    back = Vocab.from_file(tmp_path / "vocab.tsv")
    assert back.words == vocab.words and back.counts.tolist() == [7, 2]


# --- cache -----------------------------------------------------------------------------------


def test_cache_hit_returns_same_arrays_and_options_change_key(tmp_path, monkeypatch):
    path = write(tmp_path / "t.txt", TEXT)
    first = load_corpus(path, CorpusOptions(min_count=2))
    entries = list((tmp_path / "cache" / "corpora").iterdir())
    assert len(entries) == 1 and sorted(p.name for p in entries[0].iterdir()) == [
        "meta.json", "tokens.npy", "vocab.tsv",
    ]

    def fail(*args, **kwargs):
        raise AssertionError("a cache hit must not re-encode")

    with monkeypatch.context() as patch:
        patch.setattr(corpus, "encode_files", fail)
        second = load_corpus(path, CorpusOptions(min_count=2))
    assert isinstance(second.tokens, np.memmap)
    np.testing.assert_array_equal(second.tokens, first.tokens)
    assert second.vocab.words == first.vocab.words
    assert second.n_raw_tokens == first.n_raw_tokens == 10

    load_corpus(path, CorpusOptions(min_count=3))
    write(path, TEXT + "e e e\n")
    load_corpus(path, CorpusOptions(min_count=3))
    assert len(list((tmp_path / "cache" / "corpora").iterdir())) == 3


# --- user errors -----------------------------------------------------------------------------


def test_empty_corpus_raises(tmp_path):
    with pytest.raises(AceJaxError, match="has no tokens"):
        load_corpus(write(tmp_path / "empty.txt", " ... \n\n"), cache=False)


def test_nothing_above_min_count_raises_with_counts(tmp_path):
    with pytest.raises(AceJaxError, match=r"4 distinct words in 10 tokens\); lower min_count"):
        load_corpus(write(tmp_path / "t.txt", TEXT), CorpusOptions(min_count=5))
    assert not (tmp_path / "cache" / "corpora").exists()


def test_bad_option_raises():
    with pytest.raises(AceJaxError, match="min_count must be at least 1"):
        CorpusOptions(min_count=0)


def test_missing_file_and_unknown_name_raise():
    with pytest.raises(AceJaxError, match="no such file or dataset: 'nope.txt'.*ws353"):
        load_corpus("nope.txt")


def test_missing_dataset_says_where_to_put_it(monkeypatch):
    with pytest.raises(AceJaxError) as error:
        resolve("enwiki")
    message = str(error.value)
    assert "\n" not in message
    assert "$ACE_JAX_DATA_DIR/corpus/enwiki" in message and "ACE_JAX_DATA_DIR is not set" in message


# --- registry --------------------------------------------------------------------------------


def test_resolution_order_path_then_data_dir_then_cache(tmp_path, monkeypatch):
    monkeypatch.setitem(DATASETS, "toy", toy_dataset("wordsim/toy.txt"))
    explicit = write(tmp_path / "mine.txt", "x")
    assert resolve(str(explicit)) == explicit
    in_cache = write(tmp_path / "cache" / "datasets" / "wordsim" / "toy.txt", "x")
    assert resolve("toy") == in_cache
    monkeypatch.setenv("ACE_JAX_DATA_DIR", str(tmp_path / "data"))
    assert resolve("toy") == in_cache
    in_data_dir = write(tmp_path / "data" / "wordsim" / "toy.txt", "x")
    assert resolve("toy") == in_data_dir


def test_download_from_file_url_checks_sha256(tmp_path, monkeypatch):
    source = write(tmp_path / "remote" / "toy.txt", "king queen\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setitem(DATASETS, "toy", toy_dataset("wordsim/toy.txt", source.as_uri(), digest))
    with pytest.raises(AceJaxError, match="download from file:"):
        resolve("toy", download=False)
    target = tmp_path / "cache" / "datasets" / "wordsim" / "toy.txt"
    assert resolve("toy") == target
    assert target.read_text() == "king queen\n"


def test_download_with_bad_checksum_leaves_no_file(tmp_path, monkeypatch):
    source = write(tmp_path / "remote" / "toy.txt", "king queen\n")
    monkeypatch.setitem(DATASETS, "toy", toy_dataset("wordsim/toy.txt", source.as_uri(), "0" * 64))
    with pytest.raises(AceJaxError, match="has sha256 .* expected 0000"):
        resolve("toy")
    assert list((tmp_path / "cache" / "datasets" / "wordsim").iterdir()) == []


def test_download_network_failure_is_one_line_error(tmp_path, monkeypatch):
    url = (tmp_path / "absent.txt").as_uri()
    monkeypatch.setitem(DATASETS, "toy", toy_dataset("wordsim/toy.txt", url))
    with pytest.raises(AceJaxError, match="cannot download 'toy'") as error:
        resolve("toy")
    assert "\n" not in str(error.value)


def test_data_package_never_imports_jax():
    code = "import sys, ace_jax.data.corpus; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- real staged data (skipped unless ACE_JAX_DATA_DIR points at it) --------------------------

REAL_DATA_DIR = os.environ.get("ACE_JAX_DATA_DIR")


def require_real(relpath: str) -> None:
    if not REAL_DATA_DIR:
        pytest.skip("ACE_JAX_DATA_DIR is not set; point it at shared/data to run this test")
    if not (Path(REAL_DATA_DIR) / relpath).exists():
        pytest.skip(f"{relpath} is not under ACE_JAX_DATA_DIR={REAL_DATA_DIR}")


def test_resolve_real_ws353(monkeypatch):
    require_real(DATASETS["ws353"].relpath)
    monkeypatch.setenv("ACE_JAX_DATA_DIR", REAL_DATA_DIR)
    path = resolve("ws353", download=False)
    assert path == (Path(REAL_DATA_DIR) / "wordsim/faruqui/EN-WS-353-ALL.txt").absolute()
    assert len(path.read_text().splitlines()) == 353


def test_word_ids_match_normalize_and_split_on_real_enwiki(monkeypatch):
    require_real(DATASETS["enwiki-00"].relpath)
    monkeypatch.setenv("ACE_JAX_DATA_DIR", REAL_DATA_DIR)
    encoder = WordIds()
    block = next(read_blocks(resolve("enwiki-00", download=False)))  # the first 4 MiB
    ids = encoder.encode(block)
    assert np.array(encoder.words, dtype=object)[ids].tolist() == normalize_text(block.decode("utf-8")).split()


@pytest.mark.parametrize("name", sorted(n for n, d in DATASETS.items() if d.sha256))
def test_staged_file_matches_registry_sha256(name, monkeypatch):
    dataset = DATASETS[name]
    require_real(dataset.relpath)
    monkeypatch.setenv("ACE_JAX_DATA_DIR", REAL_DATA_DIR)
    path = resolve(name, download=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == dataset.sha256
