"""Sentence pairs with gold scores (STS-B, SICK, a TSV), S2Net's preference pairs, and paraphrase retrieval."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ace_jax.data.registry import resolve
from ace_jax.errors import AceJaxError

STSB_SPLITS = ("train", "dev", "test")
SICK_SPLITS = ("train", "trial", "test")
PAIR_DATASETS = {"sick": SICK_SPLITS, "stsb": STSB_SPLITS}
_TSV_FORMAT = "text1<TAB>text2<TAB>score"
# SICK.txt columns read by name from its header; the file has 12.
_SICK_COLUMNS = ("sentence_A", "sentence_B", "relatedness_score", "SemEval_set")


@dataclass(frozen=True, eq=False)
class SentencePairs:
    """N sentence pairs and their gold similarity scores.

    text1, text2: N texts each, stripped of surrounding whitespace (tuples, so the pairs stay fixed).
    score: [N] float32, read-only; the dataset's own scale (STS-B 0-5, SICK 1-5).
    """

    text1: tuple[str, ...]
    text2: tuple[str, ...]
    score: np.ndarray

    def __post_init__(self):
        score = np.array(self.score, np.float32)
        score.flags.writeable = False
        object.__setattr__(self, "text1", tuple(self.text1))
        object.__setattr__(self, "text2", tuple(self.text2))
        object.__setattr__(self, "score", score)
        if score.ndim != 1 or not len(self.text1) == len(self.text2) == len(score):
            raise ValueError(
                f"text1, text2 and score must be N texts, N texts and [N] scores, not "
                f"{len(self.text1)}, {len(self.text2)} and {list(score.shape)}"
            )

    def __len__(self) -> int:
        return len(self.text1)


def load_pairs(
    name_or_path: str | os.PathLike, split: str | None = None, *, download: bool = True
) -> SentencePairs:
    """Sentence pairs of a named dataset's split, or of a user's TSV file.

    stsb: split train, dev or test (5,749 / 1,500 / 1,379 pairs, scores 0-5).
    sick: split train, trial or test from the SemEval_set column (4,439 / 495 / 4,906, 1-5).
    A path: a UTF-8 file of text1<TAB>text2<TAB>score lines (no header; blank lines skipped;
      LF or CRLF); split must be None or "all". A malformed line raises AceJaxError as
      "FILE:LINE: what is wrong".
    The names are looked up before paths, so a folder called "sick" does not hide the dataset.
    Named datasets resolve through the registry (ace_jax.data.registry.resolve).
    """
    name = str(name_or_path)
    if name in PAIR_DATASETS:
        splits = PAIR_DATASETS[name]
        if split not in splits:
            raise AceJaxError(f"{name} has splits {', '.join(splits)}, not {split!r}")
        if name == "stsb":
            return _read_stsb(resolve(f"stsb-{split}", download=download))
        return _read_sick(resolve("sick", download=download), split)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise AceJaxError(
            f"no such file or sentence-pair dataset: {name!r}; give a TSV file of {_TSV_FORMAT} "
            f"or one of {', '.join(sorted(PAIR_DATASETS))}"
        )
    if path.is_dir():
        raise AceJaxError(f"{name} is a folder; give a TSV file of {_TSV_FORMAT}")
    if split not in (None, "all"):
        raise AceJaxError(f"{name} is a single TSV file with no splits; give split 'all', not {split!r}")
    return _read_tsv(path, label=name)


def _lines(path: Path, label: str) -> Iterator[tuple[int, list[str]]]:
    """(line number from 1, tab-separated fields) of each non-blank line."""
    try:
        # Bytes, not text mode: universal newlines would also split at a lone \r inside a field.
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AceJaxError(f"{label}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise AceJaxError(f"cannot read {label}: {exc.strerror}") from None
    # Split at \n only: str.splitlines would also split at U+2028 or U+0085 inside a sentence.
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if line.strip():
            yield number, line.split("\t")


def _score(field: str, where: str, low: float | None = None, high: float | None = None) -> float:
    try:
        value = float(field)
    except ValueError:
        raise AceJaxError(f"{where}: score {field!r} is not a number") from None
    if not math.isfinite(value):
        raise AceJaxError(f"{where}: score {field!r} is not finite")
    if low is not None and not low <= value <= high:
        raise AceJaxError(f"{where}: score {field!r} is outside {low:g}-{high:g}")
    return value


def _texts(fields: tuple[str, str], where: str) -> tuple[str, str]:
    texts = (fields[0].strip(), fields[1].strip())
    for label, text in zip(("text1", "text2"), texts):
        if not text:
            raise AceJaxError(f"{where}: {label} is empty")
    return texts


def _collect(rows: list[tuple[str, str, float]], label: str, hint: str) -> SentencePairs:
    if not rows:
        raise AceJaxError(f"{label}: no sentence pairs; {hint}")
    text1, text2, score = zip(*rows)
    return SentencePairs(text1, text2, np.array(score, np.float32))


def _read_tsv(path: Path, label: str) -> SentencePairs:
    rows = []
    for number, fields in _lines(path, label):
        where = f"{label}:{number}"
        if len(fields) != 3:
            raise AceJaxError(
                f"{where}: expected 3 tab-separated fields (text1, text2, score), found {len(fields)}"
            )
        rows.append((*_texts((fields[0], fields[1]), where), _score(fields[2], where)))
    return _collect(rows, label, f"expected lines of {_TSV_FORMAT}")


def _read_stsb(path: Path) -> SentencePairs:
    """genre, file, year, id, score, sentence1, sentence2 [, source1, source2]: 7 or 9 fields.

    Tab-separated despite the .csv name; quotes are ordinary characters (csv.QUOTE_NONE), since
    some sentences hold one unbalanced '"'.
    """
    rows = []
    for number, fields in _lines(path, str(path)):
        where = f"{path}:{number}"
        if len(fields) not in (7, 9):
            raise AceJaxError(
                f"{where}: expected 7 or 9 tab-separated fields (STS Benchmark), found {len(fields)}"
            )
        rows.append((*_texts((fields[5], fields[6]), where), _score(fields[4], where, 0.0, 5.0)))
    return _collect(rows, str(path), "expected lines of 7 or 9 tab-separated fields (STS Benchmark)")


def _read_sick(path: Path, split: str) -> SentencePairs:
    """The rows of SICK.txt whose SemEval_set is split (upper case in the file)."""
    lines = _lines(path, str(path))
    number, header = next(lines, (1, []))
    missing = [c for c in _SICK_COLUMNS if c not in header]
    if missing:
        raise AceJaxError(
            f"{path}:{number}: header lacks the column(s) {', '.join(missing)}; is this SICK.txt?"
        )
    a, b, score, semeval = (header.index(c) for c in _SICK_COLUMNS)
    rows = []
    for number, fields in lines:
        where = f"{path}:{number}"
        if len(fields) != len(header):
            raise AceJaxError(
                f"{where}: expected {len(header)} tab-separated fields as in the header, found {len(fields)}"
            )
        if fields[semeval] not in ("TRAIN", "TRIAL", "TEST"):
            raise AceJaxError(f"{where}: SemEval_set {fields[semeval]!r} is not TRAIN, TRIAL or TEST")
        if fields[semeval] == split.upper():
            rows.append((*_texts((fields[a], fields[b]), where), _score(fields[score], where, 1.0, 5.0)))
    return _collect(rows, str(path), f"no row has SemEval_set {split.upper()}")


def preference_pairs(
    pairs: SentencePairs, num_pairs: int, *, margin: float = 0.0, seed: int | tuple[int, ...] = 0
) -> tuple[np.ndarray, np.ndarray]:
    """S2Net's training preferences from gold scores: (better, worse) pair indices, [num_pairs] int32 each.

    A preference (b, w) says the model should score pair b above pair w,
    sim(text1[b], text2[b]) > sim(text1[w], text2[w]), because score[w] < score[b] - margin
    (exactly this comparison, in float64). The preferences are drawn uniformly, with replacement,
    from all ordered (b, w) that satisfy it, by numpy's Generator seeded with `seed` (an int or a
    tuple of ints), so the same pairs, count, margin and seed give the same arrays. Pairs with high scores
    therefore appear more often as `better`, low ones as `worse`.
    References: the pairwise loss log(1 + exp(-γ Δ)), Δ = sim(better) − sim(worse), of
    Yih et al., "Learning discriminative projections for text similarity measures", CoNLL 2011, §3.
    """
    if num_pairs < 1:
        raise AceJaxError(f"the number of preference pairs must be at least 1, not {num_pairs}")
    if not margin >= 0:
        raise AceJaxError(f"the preference margin must be at least 0, not {margin}")
    score = pairs.score.astype(np.float64)
    order = np.argsort(score, kind="stable")
    # worse_count[i] = #{j : score[j] < score[i] - margin}: the first worse_count[i] of `order`.
    worse_count = np.searchsorted(score[order], score - margin, side="left")  # [N]
    total = int(worse_count.sum())
    if total == 0:
        raise AceJaxError(
            f"no preference pairs: no two of the {len(pairs)} scores differ by more than margin {margin:g}"
        )
    rng = np.random.default_rng(seed)
    better = rng.choice(len(pairs), size=num_pairs, p=worse_count / total)  # [M]
    worse = order[rng.integers(0, worse_count[better])]  # [M]
    return better.astype(np.int32), worse.astype(np.int32)


@dataclass(frozen=True, eq=False)
class RetrievalTask:
    """Paraphrase retrieval over the distinct sentences of a set of pairs.

    sentences: every distinct text of text1 and text2 (after stripping), in order of first
      appearance (text1[0], text2[0], text1[1], ...); these are the candidates.
    query, partner: [Q] int32 indices into sentences; query[k] must retrieve partner[k].
    """

    sentences: tuple[str, ...]
    query: np.ndarray
    partner: np.ndarray


def paraphrase_queries(pairs: SentencePairs, threshold: float = 4.0) -> RetrievalTask:
    """The paraphrase retrieval task: each sentence of a pair with score >= threshold queries for its partner.

    Both directions are queries (text1 -> text2 and text2 -> text1); a pair whose two texts are
    the same string is skipped (the query is never its own candidate), and a (query, partner)
    that several pairs give is listed once. threshold 4 suits STS-B (0-5: "mostly equivalent")
    and SICK (1-5) alike.
    """
    index: dict[str, int] = {}
    for a, b in zip(pairs.text1, pairs.text2):
        index.setdefault(a, len(index))
        index.setdefault(b, len(index))
    links: dict[tuple[int, int], None] = {}  # an ordered set
    for a, b, s in zip(pairs.text1, pairs.text2, pairs.score):
        if s >= threshold and a != b:
            links[index[a], index[b]] = None
            links[index[b], index[a]] = None
    query, partner = np.array(list(links), np.int32).reshape(-1, 2).T
    return RetrievalTask(tuple(index), query, partner)


def retrieval_metrics(sim: np.ndarray, query: np.ndarray, partner: np.ndarray) -> dict:
    """Top-1 accuracy and mean reciprocal rank of each query's partner: {"top1", "mrr", "queries"}.

    Args:
      sim: [Q, S] similarity of query k (row) to every sentence (column) of the task.
      query, partner: [Q] int32 column indices, as in RetrievalTask.
    rank = 1 + the number of candidates c with sim[k, c] >= sim[k, partner[k]]: ties count
    against the partner (pessimistic), so a constant scorer ranks every partner last.
    Candidates are all S columns except the query itself and the query's other partners listed
    in `query`/`partner` (the "filtered" setting: another true paraphrase ranked first is no
    error), so pass all of a task's queries in one call.
    """
    sim = np.asarray(sim)
    query = np.asarray(query)
    partner = np.asarray(partner)
    if sim.ndim != 2 or query.shape != (sim.shape[0],) or partner.shape != query.shape:
        raise ValueError(
            f"need sim [Q, S] and query, partner [Q], not {sim.shape}, {query.shape}, {partner.shape}"
        )
    if np.isnan(sim).any():
        raise ValueError("sim has NaN entries; ranks would be undefined")
    if len(query) == 0:
        return {"top1": float("nan"), "mrr": float("nan"), "queries": 0}
    rows = np.arange(len(query))
    excluded = np.zeros(sim.shape, bool)  # [Q, S]
    excluded[rows, query] = True
    groups: dict[int, list[int]] = {}
    for k, q in enumerate(query.tolist()):
        groups.setdefault(q, []).append(k)
    for ks in groups.values():
        excluded[np.ix_(ks, partner[ks])] = True  # every partner of the query, its own included
    target = sim[rows, partner]  # [Q]
    rank = 1 + ((sim >= target[:, None]) & ~excluded).sum(1)  # [Q]
    return {"top1": float((rank == 1).mean()), "mrr": float((1.0 / rank).mean()), "queries": len(query)}
