"""The WordNet 3.0 noun hierarchy: synsets, their hypernym edges (`@` and `@i` pointers of data.noun), and the
transitive closure, read from Princeton's database archive (WNdb-3.0.tar.gz) through the registry.

Synsets get ids by data.noun offset (the file's order) and NLTK's names (`dog.n.01`: the first lemma, lower
case, and that synset's place among the lemma's senses in index.noun), so a name here is a name in NLTK.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass

import numpy as np

from ace_jax.data.registry import resolve
from ace_jax.errors import AceJaxError

HYPERNYM_POINTERS = ("@", "@i")  # hypernym, instance hypernym


@dataclass(frozen=True, eq=False)
class Nouns:
    """The noun synsets and their direct hypernym edges.

    offsets: [N] int64 data.noun offsets, ascending (a synset's id is its place here).
    names: NLTK's names, `entity.n.01`.
    lemmas: each synset's lemmas as data.noun spells them (`physical_entity`, `Hegira`).
    edges: [M, 2] int32 (hyponym, hypernym) ids, one per `@` or `@i` pointer, sorted.
    """

    offsets: np.ndarray
    names: tuple[str, ...]
    lemmas: tuple[tuple[str, ...], ...]
    edges: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets)


def load_nouns(name_or_path: str | os.PathLike = "wordnet", *, download: bool = True) -> Nouns:
    """The noun hierarchy of a WordNet database archive (the registry's `wordnet`, checksummed, or a path to a
    .tar.gz holding dict/data.noun and dict/index.noun). A damaged archive or line raises one AceJaxError naming
    the file (and FILE:LINE)."""
    path = resolve(name_or_path, download=download)
    try:
        with tarfile.open(path, "r:gz") as archive:
            data = _member(archive, path, "data.noun")
            index = _member(archive, path, "index.noun")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise AceJaxError(f"{path}: not a readable WordNet archive ({error})") from None
    return parse_nouns(data, index, f"{path}:dict/data.noun", f"{path}:dict/index.noun")


def _member(archive: tarfile.TarFile, path, name: str) -> str:
    member = next((m for m in archive.getmembers() if m.isfile() and m.name.endswith(f"dict/{name}")), None)
    if member is None:
        raise AceJaxError(f"{path}: no dict/{name} in the archive")
    return archive.extractfile(member).read().decode("utf-8")


def parse_nouns(data: str, index: str, data_name: str = "data.noun", index_name: str = "index.noun") -> Nouns:
    """Nouns from the texts of data.noun and index.noun (license lines, which start with a space, skipped)."""
    offsets, lemmas, pointers = [], [], []
    for number, line in enumerate(data.splitlines(), 1):
        if not line or line[0] == " ":
            continue
        fields = line.split(" | ", 1)[0].split()
        try:
            offset, words = int(fields[0]), int(fields[3], 16)
            names = tuple(fields[4: 4 + 2 * words: 2])
            at = 4 + 2 * words
            count = int(fields[at])
            targets = [int(fields[at + 2 + 4 * i]) for i in range(count)
                       if fields[at + 1 + 4 * i] in HYPERNYM_POINTERS]
            if fields[2] != "n" or len(names) != words or at + 4 * count >= len(fields):
                raise ValueError
        except (ValueError, IndexError):
            raise AceJaxError(f"{data_name}:{number}: not a noun synset line "
                              "(offset lex_filenum n w_cnt word lex_id ... p_cnt pointers ... | gloss)") from None
        offsets.append(offset)
        lemmas.append(names)
        pointers.append(targets)
    order = np.argsort(offsets, kind="stable")
    offsets_sorted = np.asarray(offsets, np.int64)[order]
    id_of = {int(o): i for i, o in enumerate(offsets_sorted)}
    lemmas = [lemmas[i] for i in order]
    edges = []
    for new, old in enumerate(order):
        for target in pointers[old]:
            if target not in id_of:
                raise AceJaxError(f"{data_name}: synset {offsets_sorted[new]:08d} points to {target:08d}, "
                                  "which is not a noun synset")
            edges.append((new, id_of[target]))
    edges = np.unique(np.asarray(edges, np.int32).reshape(-1, 2), axis=0)
    return Nouns(offsets_sorted, _nltk_names(lemmas, offsets_sorted, index, index_name), tuple(lemmas), edges)


def _nltk_names(lemmas, offsets: np.ndarray, index: str, index_name: str) -> tuple[str, ...]:
    senses = {}  # lemma (lower case) -> its synset offsets in sense order
    for number, line in enumerate(index.splitlines(), 1):
        if not line or line[0] == " ":
            continue
        fields = line.split()
        try:
            count, pointer_count = int(fields[2]), int(fields[3])
            senses[fields[0]] = [int(f) for f in fields[6 + pointer_count: 6 + pointer_count + count]]
        except (ValueError, IndexError):
            raise AceJaxError(f"{index_name}:{number}: not an index line (lemma pos synset_cnt p_cnt ...)") from None
    names = []
    for words, offset in zip(lemmas, offsets):
        first = words[0].lower()
        try:
            names.append(f"{first}.n.{senses[first].index(int(offset)) + 1:02d}")
        except (KeyError, ValueError):
            raise AceJaxError(f"{index_name}: no sense of {first!r} is synset {int(offset):08d}") from None
    return tuple(names)


def _parents_first(num_nodes: int, edges: np.ndarray) -> list[tuple[int, list[int]]]:
    """Every node with its children, each node after all its parents (Kahn's order) for (child, parent) `edges`
    of a DAG; a cycle raises AceJaxError."""
    children = [[] for _ in range(num_nodes)]
    unknown_parents = np.zeros(num_nodes, np.int64)
    for child, parent in edges:
        children[int(parent)].append(int(child))
        unknown_parents[child] += 1
    ready = [n for n in range(num_nodes) if unknown_parents[n] == 0]
    order = []
    while ready:
        node = ready.pop()
        order.append((node, children[node]))
        for child in children[node]:
            unknown_parents[child] -= 1
            if unknown_parents[child] == 0:
                ready.append(child)
    if len(order) < num_nodes:
        raise AceJaxError("the hypernym edges have a cycle")
    return order


def closure(num_nodes: int, edges: np.ndarray) -> np.ndarray:
    """[P, 2] int32 (node, ancestor) pairs of the transitive closure of (child, parent) `edges` of a DAG, sorted,
    without reflexive pairs. A cycle raises AceJaxError."""
    ancestors = [set() for _ in range(num_nodes)]
    for node, children in _parents_first(num_nodes, edges):
        for child in children:
            ancestors[child].add(node)
            ancestors[child] |= ancestors[node]
    pairs = np.asarray([(node, a) for node, above in enumerate(ancestors) for a in above], np.int32).reshape(-1, 2)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def path_count(num_nodes: int, edges: np.ndarray) -> int:
    """How many (node, ancestor) pairs a depth-first search from every node emits when it keeps no visited set:
    one per hypernym path, so a pair reached by two paths counts twice. The order-embeddings reference code
    builds its closure so (837,888 pairs on WordNet 3.0's nouns against 743,241 distinct ones)."""
    below = np.zeros(num_nodes, np.int64)  # paths from each node up to any ancestor
    for node, children in _parents_first(num_nodes, edges):
        for child in children:
            below[child] += 1 + below[node]
    return int(below.sum())


@dataclass(frozen=True, eq=False)
class HypernymSplit:
    """The closure's (hyponym, ancestor) pairs split as the order-embeddings reference splits them: shuffled with
    a fixed seed, the first `size` for test, the next `size` for choosing the decision threshold (valid), the rest
    for training; each valid and test pair beside one negative, the pair with one side (chosen by a fair coin)
    replaced by a uniform synset, redrawn while the result is reflexive or in the closure (after `max_draws`
    failures the other side: nothing is a negative hyponym of the root). All [N, 2] int32."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    valid_negatives: np.ndarray
    test_negatives: np.ndarray

    def labelled(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A split's pairs, positives then negatives, and their labels (True: in the closure)."""
        if split not in ("valid", "test"):
            raise AceJaxError(f"a hypernym split is valid or test, not {split!r}")
        pos, neg = getattr(self, split), getattr(self, f"{split}_negatives")
        return np.concatenate([pos, neg]), np.concatenate([np.ones(len(pos), bool), np.zeros(len(neg), bool)])


def split_closure(pairs: np.ndarray, num_nodes: int, *, size: int = 4000, seed: int = 1, max_draws: int = 1000
                  ) -> HypernymSplit:
    """`HypernymSplit` of distinct closure pairs (numpy's generator seeded by `seed`: the same split on every
    machine)."""
    if len(pairs) <= 2 * size:
        raise AceJaxError(f"{len(pairs):,} hypernym pairs leave nothing to train on beside {size:,} test and "
                          f"{size:,} valid pairs")
    rng = np.random.default_rng(seed)
    shuffled = np.asarray(pairs, np.int32)[rng.permutation(len(pairs))]
    known = set(map(tuple, np.asarray(pairs).tolist()))
    test, valid, train = shuffled[:size], shuffled[size:2 * size], shuffled[2 * size:]

    def negatives(positives):
        out = positives.copy()
        for row in out:
            side, kept = int(rng.integers(2)), row.copy()
            for attempt in range(2 * max_draws):
                if attempt == max_draws:  # no hyponym of the root's is a negative of it: the other side
                    side, row[:] = 1 - side, kept
                row[side] = rng.integers(num_nodes)
                if row[0] != row[1] and (int(row[0]), int(row[1])) not in known:
                    break
            else:
                raise AceJaxError(f"no negative of the hypernym pair {tuple(kept.tolist())} in {2 * max_draws} "
                                  "draws")
        return out

    return HypernymSplit(train, valid, test, negatives(valid), negatives(test))
