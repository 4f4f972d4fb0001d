"""Atomic file writes, checkpoints, and the word2vec C vector format (text and binary), as gensim reads it."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import flax.serialization
import numpy as np

from ace_jax.errors import AceJaxError

# float32 needs 9 significant digits to survive a text round trip bit for bit.
_TEXT_FLOAT_FORMAT = "%.9g"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Yield a file that replaces `path` only if the block finishes without an exception.

    The data goes to a temporary file in the same folder (so `os.replace` is an atomic rename on
    one file system), is fsynced, then renamed over `path`; on any exception the temporary file
    is removed and `path` keeps its old content, so a failed run never leaves a half-written file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    if not path.parent.is_dir():
        raise AceJaxError(f"output folder does not exist: {path.parent}")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # 0o666 lets the umask decide the final permissions, as a plain open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if mode == "w":
            f = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        else:
            f = os.fdopen(fd, "wb")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str | os.PathLike, host_state: Any) -> None:
    """A pytree of host arrays (fetch it from the devices first) as flax msgpack, atomically."""
    with atomic_write(path, "wb") as f:
        f.write(flax.serialization.to_bytes(host_state))


def load_checkpoint(path: str | os.PathLike, template: Any) -> Any:
    """The pytree saved at `path`, shaped like `template`; an unreadable file is an AceJaxError."""
    try:
        return flax.serialization.from_bytes(template, Path(path).read_bytes())
    except Exception as error:  # a truncated or foreign file: msgpack raises several kinds
        raise AceJaxError(f"cannot read checkpoint {path}: {error}") from None


def save_word2vec(
    path: str | os.PathLike, words: list[str], vectors: np.ndarray, *, binary: bool
) -> None:
    """Write `vectors: [V, d]` with their `words` in the word2vec C format (header `V d`).

    Text rows are `word v1 ... vd`; binary rows are `word `, d little-endian float32, `\\n`.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise AceJaxError(f"vectors must be a [V, d] matrix, got shape {vectors.shape}")
    if len(words) != vectors.shape[0]:
        raise AceJaxError(f"{len(words)} words but {vectors.shape[0]} vectors")
    for word in words:
        # The format separates a word from its vector by a space, so a word cannot hold one.
        if not word or len(word.split()) != 1 or word.strip() != word:
            raise AceJaxError(f"word {word!r} is empty or contains whitespace; word2vec cannot store it")
    header = f"{vectors.shape[0]} {vectors.shape[1]}\n"
    if binary:
        rows = vectors.astype("<f4")
        with atomic_write(path, "wb") as f:
            f.write(header.encode("ascii"))
            for word, row in zip(words, rows):
                f.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
    else:
        row_format = " ".join([_TEXT_FLOAT_FORMAT] * vectors.shape[1])
        with atomic_write(path, "w") as f:
            f.write(header)
            for word, row in zip(words, vectors.tolist()):
                f.write(f"{word} {row_format % tuple(row)}\n")


def load_word2vec(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read a word2vec C-format file, text or binary (detected), into `(words, vectors [V, d] float32)`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AceJaxError(f"word2vec file not found: {path}") from None
    except OSError as e:
        raise AceJaxError(f"cannot read word2vec file {path}: {e.strerror}") from None
    header_end = data.find(b"\n")
    raw_header = data[: header_end if header_end >= 0 else len(data)]
    try:
        header = raw_header.decode("utf-8")
    except UnicodeDecodeError:
        header = None
    if header is None or any(c < 32 and c not in (9, 13) for c in raw_header[:200]):
        # word2vec's own binary files have a text header too: this is another kind of file.
        raise AceJaxError(f"{path}: line 1 is binary data, not a word2vec header 'vocab_size dim'; "
                          "is this a word2vec file (text or binary)?")
    fields = header.split()
    if len(fields) != 2 or not all(x.isdecimal() for x in fields) or int(fields[1]) == 0:
        raise AceJaxError(f"{path}: line 1: expected a word2vec header 'vocab_size dim', got {header!r}")
    vocab_size, dim = int(fields[0]), int(fields[1])
    body = data[header_end + 1 :] if header_end >= 0 else b""
    if _is_text_body(body, dim):
        return _parse_text_rows(path, body, vocab_size, dim)
    return _parse_binary_rows(path, body, vocab_size, dim)


def _is_text_body(body: bytes, dim: int) -> bool:
    """Whether the first row parses as `word` and `dim` decimal numbers.

    A binary row holds 4·dim raw bytes; they all being printable digits is practically impossible.
    """
    first = body.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    values = first.partition(" ")[2].split()
    if len(values) != dim:
        return False
    try:
        [float(x) for x in values]
    except ValueError:
        return False
    return True


def _parse_text_rows(path: Path, body: bytes, vocab_size: int, dim: int) -> tuple[list[str], np.ndarray]:
    lines = body.decode("utf-8", errors="replace").split("\n")
    # A final newline leaves one empty string; blank lines past the last row are harmless.
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != vocab_size:
        raise AceJaxError(f"{path}: header says {vocab_size} rows, file has {len(lines)}")
    words = []
    vectors = np.empty((vocab_size, dim), dtype=np.float32)
    for i, line in enumerate(lines):
        line_no = i + 2  # 1-based, after the header line
        # word2vec.c writes a space after the last value, and Windows tools add \r.
        word, _, rest = line.rstrip().partition(" ")
        values = rest.split()
        if not word or len(values) != dim:
            raise AceJaxError(f"{path}: line {line_no}: expected a word and {dim} values, got {len(values)}")
        try:
            vectors[i] = np.asarray(values, dtype=np.float32)
        except ValueError:
            raise AceJaxError(f"{path}: line {line_no}: vector values are not all numbers") from None
        words.append(word)
    return words, vectors


def _parse_binary_rows(path: Path, body: bytes, vocab_size: int, dim: int) -> tuple[list[str], np.ndarray]:
    row_bytes = 4 * dim
    words = []
    vectors = np.empty((vocab_size, dim), dtype=np.float32)
    pos = 0
    for i in range(vocab_size):
        # Each vector is followed by "\n" (word2vec.c, gensim), which belongs to no word.
        while pos < len(body) and body[pos] == ord("\n"):
            pos += 1
        space = body.find(b" ", pos)
        if space < 0 or len(body) - (space + 1) < row_bytes:
            raise AceJaxError(f"{path}: binary file ends at row {i + 1} of {vocab_size}; is it truncated?")
        words.append(body[pos:space].decode("utf-8", errors="replace"))
        vectors[i] = np.frombuffer(body, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + row_bytes
    if body[pos:].strip():
        raise AceJaxError(f"{path}: data after the {vocab_size} rows the header announces")
    return words, vectors
