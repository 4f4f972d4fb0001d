"""Knowledge-graph triples: FB15k-237 and WN18RR (the ConvE release), WN18 (OpenKE's integer files), or a folder
of the user's TSV files. Entities and relations get ids by sorted name, the same on every load."""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ace_jax.data.registry import resolve
from ace_jax.errors import AceJaxError

SPLITS = ("train", "valid", "test")
KG_DATASETS = ("fb15k-237", "wn18rr", "wn18")
_TSV_FORMAT = "head<TAB>relation<TAB>tail"


@dataclass(frozen=True, eq=False)
class KnowledgeGraph:
    """A graph's three splits over one id space.

    entities, relations: id -> name (sorted names: a run's ids are the same on every load).
    train, valid, test: [N, 3] int32 (head, relation, tail) triples, read-only, in file order.
    """

    entities: tuple[str, ...]
    relations: tuple[str, ...]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise AceJaxError(f"a graph has splits {', '.join(SPLITS)}, not {name!r}")
        return getattr(self, name)

    def all_triples(self) -> np.ndarray:
        """Every known true triple, train, valid and test: what filtered ranking leaves out of a query's ranks."""
        return np.concatenate([self.train, self.valid, self.test])

    def unseen(self, name: str) -> int:
        """How many triples of a split name an entity or a relation that no training triple has. They are kept
        and ranked (their rows never trained), as RotatE's and KBGAN's evaluations keep them, and reported."""
        triples = self.split(name)
        seen_entities = np.zeros(len(self.entities), bool)
        seen_entities[self.train[:, [0, 2]].ravel()] = True
        seen_relations = np.zeros(len(self.relations), bool)
        seen_relations[self.train[:, 1]] = True
        known = seen_entities[triples[:, 0]] & seen_relations[triples[:, 1]] & seen_entities[triples[:, 2]]
        return int((~known).sum())


def load_kg(name_or_path: str | os.PathLike, *, download: bool = True) -> KnowledgeGraph:
    """A named graph (fb15k-237, wn18rr, wn18; found through the registry, whose checksums are checked on
    download and by tests/test_data.py on the staged copies, not on every load), or a folder holding train.txt,
    valid.txt and test.txt of head<TAB>relation<TAB>tail lines (UTF-8, LF or CRLF, blank lines skipped), or
    OpenKE's files (train2id.txt ..., as wn18). A malformed line raises AceJaxError as "FILE:LINE: what is
    wrong"."""
    name = str(name_or_path)
    if name in ("fb15k-237", "wn18rr"):
        archive = resolve(name, download=download)
        return _id_map(_read_archive(archive))
    if name == "wn18":
        return _id_map(_read_openke(resolve(name, download=download)))
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise AceJaxError(f"no such graph: {name!r}; give one of {', '.join(KG_DATASETS)} or a folder holding "
                          f"train.txt, valid.txt and test.txt of {_TSV_FORMAT} lines")
    if (path / "train2id.txt").is_file():
        return _id_map(_read_openke(path))
    splits = {}
    for split in SPLITS:
        file = path / f"{split}.txt"
        if not file.is_file():
            raise AceJaxError(f"{file}: missing; a graph folder holds train.txt, valid.txt and test.txt")
        splits[split] = _parse_tsv(file.read_bytes(), str(file))
    return _id_map(splits)


def _read_archive(archive: Path) -> dict[str, list[tuple[str, str, str]]]:
    """The ConvE release: a tar.gz of train.txt, valid.txt and test.txt (CRLF in FB15k-237)."""
    splits = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            for split in SPLITS:
                member = members.get(f"{split}.txt")
                if member is None:
                    raise AceJaxError(f"{archive}: has no {split}.txt")
                splits[split] = _parse_tsv(tar.extractfile(member).read(), f"{archive}:{member.name}")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise AceJaxError(f"{archive}: not a readable tar.gz ({exc})") from None
    return splits


def _parse_tsv(data: bytes, where: str) -> list[tuple[str, str, str]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise AceJaxError(f"{where}:{line}: not UTF-8") from None
    triples = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(f.strip() for f in fields):
            raise AceJaxError(f"{where}:{number}: expected {_TSV_FORMAT}, got {line[:80]!r}")
        triples.append(tuple(f.strip() for f in fields))
    return triples


def _read_openke(folder: Path) -> dict[str, list[tuple[str, str, str]]]:
    """OpenKE's files: a count line, then `head tail relation` ids (note the order), named by entity2id.txt and
    relation2id.txt (a count line, then `name<TAB>id`)."""
    entities, relations = _read_names(folder / "entity2id.txt"), _read_names(folder / "relation2id.txt")
    splits = {}
    for split in SPLITS:
        file = folder / f"{split}2id.txt"
        rows = _read_counted(file, 3)
        triples = []
        for number, (h, t, r) in rows:
            try:
                triples.append((entities[int(h)], relations[int(r)], entities[int(t)]))
            except (ValueError, KeyError):
                raise AceJaxError(f"{file}:{number}: ids {h} {t} {r} are not entity, entity, relation ids") from None
        splits[split] = triples
    return splits


def _read_names(file: Path) -> dict[int, str]:
    names = {}
    for number, (name, ident) in _read_counted(file, 2):
        if not ident.isdigit():
            raise AceJaxError(f"{file}:{number}: expected name<TAB>id, got id {ident!r}")
        names[int(ident)] = name
    return names


def _read_counted(file: Path, width: int) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a file whose first line counts the lines that follow."""
    if not file.is_file():
        raise AceJaxError(f"{file}: missing")
    lines = file.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].strip().isdigit():
        raise AceJaxError(f"{file}:1: expected the count of lines")
    rows = [(number, line.split()) for number, line in enumerate(lines[1:], 2) if line.strip()]
    for number, fields in rows:
        if len(fields) != width:
            raise AceJaxError(f"{file}:{number}: expected {width} fields, got {len(fields)}")
    if len(rows) != int(lines[0]):
        raise AceJaxError(f"{file}:1: says {int(lines[0])} lines, has {len(rows)}")
    return rows


def _id_map(splits: dict[str, list[tuple[str, str, str]]]) -> KnowledgeGraph:
    if not splits["train"]:
        raise AceJaxError("the graph has no training triples")
    every = [t for split in SPLITS for t in splits[split]]
    entities = sorted({t[0] for t in every} | {t[2] for t in every})
    relations = sorted({t[1] for t in every})
    entity_id = {name: i for i, name in enumerate(entities)}
    relation_id = {name: i for i, name in enumerate(relations)}
    arrays = {}
    for split in SPLITS:
        array = np.array([(entity_id[h], relation_id[r], entity_id[t]) for h, r, t in splits[split]],
                         np.int32).reshape(-1, 3)
        array.flags.writeable = False
        arrays[split] = array
    return KnowledgeGraph(tuple(entities), tuple(relations), **arrays)
