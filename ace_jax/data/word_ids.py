"""Text8-normalised word ids for raw byte blocks, computed with numpy and no Python object per token."""

from __future__ import annotations

import numpy as np

# Must tokenise exactly as corpus.normalize_text(block).split(); tests/test_data.py checks the two agree.
_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_EMPTY = np.uint64(2**64 - 1)  # free hash-table slot
_LONG = np.uint64(2**64 - 2)  # a word of more than 12 letters: too long for a key, looked up as a str
_PACKED = np.uint64(1 << 63)  # marks a packed key; a plain key has bit 63 clear, as ASCII bytes are < 128
_FIBONACCI = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: multiplicative hashing (Knuth, TAOCP 6.4)
_PIECE_BYTES = 1 << 20  # encode 1 MiB at a time: its arrays stay in cache; 20% faster on enwiki than 4 MiB
_BYTE_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], dtype=np.uint64)  # [9] first n bytes


def _byte_table() -> bytes:
    """A bytes.translate table: A-Z to a-z, a-z kept, 0-9 to bytes 0-9, every other byte to a space."""
    table = bytearray(b" " * 256)
    for c in range(ord("a"), ord("z") + 1):
        table[c] = c
        table[c - 32] = c
    for digit in range(10):
        table[ord("0") + digit] = digit
    return bytes(table)


_BYTES = _byte_table()


def _letter_key(word: str) -> int:
    """The key of a word of at most 8 letters: its bytes as a little-endian integer."""
    return int.from_bytes(word.encode("ascii"), "little")


def _pack_letters(chunks: np.ndarray) -> np.ndarray:
    """Keep 5 bits of each byte (a-z to 1-26, padding 0) and pack a uint64's 8 bytes into its low 40 bits."""
    x = chunks & np.uint64(0x1F1F1F1F1F1F1F1F)
    x = (x & np.uint64(0x001F001F001F001F)) | ((x >> np.uint64(3)) & np.uint64(0x03E003E003E003E0))
    x = (x & np.uint64(0x000003FF000003FF)) | ((x >> np.uint64(6)) & np.uint64(0x000FFC00000FFC00))
    return (x & np.uint64(0x00000000000FFFFF)) | ((x >> np.uint64(12)) & np.uint64(0x000000FFFFF00000))


def _key_words(keys: np.ndarray) -> list[str]:
    """The words that keys stand for (the inverse of WordIds' keys)."""
    words = np.empty(keys.size, dtype=object)
    plain = keys < _PACKED
    words[plain] = keys[plain].astype("<u8").view("S8").astype("U8")  # 'S' drops the zero padding
    packed = keys[~plain] & ~_PACKED
    codes = (packed[:, None] >> (np.uint64(5) * np.arange(12, dtype=np.uint64))) & np.uint64(31)  # [P, 12]
    letters = np.where(codes > 0, codes + 96, 0).astype(np.uint8)  # [P, 12]
    words[~plain] = letters.view("S12")[:, 0].astype("U12")
    return words.tolist()


class _KeyTable:
    """uint64 key -> int32 id: open addressing with linear probing, at most half full, vectorised over keys."""

    def __init__(self, bits: int = 16):
        self._allocate(bits)

    def _allocate(self, bits: int) -> None:
        self.keys = np.full(1 << bits, _EMPTY, dtype=np.uint64)  # [S] slot -> key
        self.ids = np.full(1 << bits, -1, dtype=np.int32)  # [S] slot -> id; -1 in a free slot
        self.shift = np.uint64(64 - bits)
        self.size = 0

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """ids of keys: [N] uint64 -> [N] int32, -1 for a key not in the table."""
        slot = self._slots(keys)  # [N]
        stored = self.keys[slot]  # [N]
        ids = self.ids[slot]  # [N]
        probing = np.flatnonzero((stored != keys) & (stored != _EMPTY))
        while probing.size:
            slot[probing] = at = (slot[probing] + 1) & (self.keys.size - 1)
            stored = self.keys[at]
            ids[probing] = self.ids[at]
            probing = probing[(stored != keys[probing]) & (stored != _EMPTY)]
        return ids

    def insert(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Add distinct keys that are not in the table yet, doubling the table to stay at most half full."""
        if 2 * (self.size + keys.size) > self.keys.size:
            used = self.keys != _EMPTY
            keys, ids = np.concatenate([self.keys[used], keys]), np.concatenate([self.ids[used], ids])
            self._allocate((4 * keys.size - 1).bit_length() - 1)  # the power of 2 >= 2 * keys.size
        self._place(keys, ids)

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        return ((keys * _FIBONACCI) >> self.shift).view(np.int64)

    def _place(self, keys: np.ndarray, ids: np.ndarray) -> None:
        slot = self._slots(keys)
        pending = np.arange(keys.size)
        while pending.size:
            at = slot[pending]
            free = self.keys[at] == _EMPTY
            candidates, free_at = pending[free], at[free]
            self.keys[free_at] = keys[candidates]  # of keys that want the same slot, one write lands
            won = self.keys[free_at] == keys[candidates]
            self.ids[free_at[won]] = ids[candidates[won]]
            pending = np.concatenate([pending[~free], candidates[~won]])
            slot[pending] = (slot[pending] + 1) & (self.keys.size - 1)
        self.size += keys.size


class WordIds:
    """Encodes byte blocks of text as text8-normalised word ids, numbering new words as the blocks bring them.

    A word is a run of ASCII letters, case folded, or a single digit spelled out; every other byte
    separates words. Each word becomes one uint64 key without a Python str: a word of up to 8 letters
    is its bytes, one of 9-12 letters its letters at 5 bits each plus a flag bit. Keys map to ids
    through a numpy hash table. Only the 1% of words longer than 12 letters (enwiki) go through a dict.
    """

    def __init__(self) -> None:
        self.words: list[str] = list(_DIGIT_WORDS)  # id -> word; a digit d and its word share id d
        self._table = _KeyTable()
        digit_ids = np.arange(10, dtype=np.int32)
        self._table.insert(np.arange(10, dtype=np.uint64), digit_ids)
        self._table.insert(np.array([_letter_key(word) for word in _DIGIT_WORDS], dtype=np.uint64), digit_ids)
        self._long: dict[str, int] = {}

    def encode(self, block: bytes, limit: int | None = None) -> np.ndarray:
        """ids of block's words, only its first limit words if given, as [N] int32; new words get new ids."""
        text = block.translate(_BYTES)
        pieces, start = [], 0
        while start < len(text) and limit != 0:
            stop = text.find(b" ", start + _PIECE_BYTES) + 1 or len(text)  # after a space: no word is cut
            pieces.append(self._encode_piece(text[start:stop], limit))
            start = stop
            if limit is not None:
                limit -= pieces[-1].size
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)

    def _encode_piece(self, text: bytes, limit: int | None) -> np.ndarray:
        """ids of the first limit words of translated text that ends after a space or at the block's end."""
        text += b" " * 16  # padding: the reads below go up to 16 bytes past a start
        chars = np.frombuffer(text, dtype=np.uint8)  # [L + 16]
        letter = chars >= ord("a")  # [L + 16]
        digit = chars < 10  # [L + 16]
        starts = np.flatnonzero(np.greater(letter[1:], letter[:-1]) | digit[1:]) + 1  # [W]
        ends = np.flatnonzero(np.greater(letter[:-1], letter[1:]) | digit[:-1]) + 1  # [W]
        if letter[0] | digit[0]:  # the piece starts with a word
            starts = np.concatenate(([0], starts))
        starts, lengths = starts[:limit], ends[:limit] - starts[:limit]  # [W], [W]
        windows = np.ndarray((chars.size - 7,), dtype="<u8", buffer=text, strides=(1,))  # 8 bytes at each offset
        keys = windows[starts] & _BYTE_MASKS[np.minimum(lengths, 8)]  # [W]; a digit's key is its byte, 0-9
        longer = np.flatnonzero(lengths > 8)
        tail = windows[starts[longer] + 8] & _BYTE_MASKS[np.minimum(lengths[longer] - 8, 4)]
        keys[longer] = _pack_letters(keys[longer]) | (_pack_letters(tail) << np.uint64(40)) | _PACKED
        too_long = longer[lengths[longer] > 12]
        keys[too_long] = _LONG
        ids = self._ids(keys)
        if too_long.size:
            ids[too_long] = [
                self._long_id(text[start : start + length].decode("ascii"))
                for start, length in zip(starts[too_long].tolist(), lengths[too_long].tolist())
            ]
        return ids

    def _ids(self, keys: np.ndarray) -> np.ndarray:
        ids = self._table.lookup(keys)
        missing = np.flatnonzero(ids < 0)  # new words, and words too long for a key
        if missing.size:
            new = np.unique(keys[missing])
            new = new[new != _LONG]
            if new.size:
                self._table.insert(new, np.arange(len(self.words), len(self.words) + new.size, dtype=np.int32))
                self.words.extend(_key_words(new))
                ids[missing] = self._table.lookup(keys[missing])
        return ids

    def _long_id(self, word: str) -> int:
        if word not in self._long:
            self._long[word] = len(self.words)
            self.words.append(word)
        return self._long[word]
