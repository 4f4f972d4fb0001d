"""Filtered link prediction: each test triple's true head and true tail ranked among all entities, the other
known true triples left out, ties given the realistic rank (the mean of the optimistic and the pessimistic, as
PyKEEN reports: an optimistic rank makes a constant scorer look perfect). Batched and jitted."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

HITS_AT = (1, 3, 10)

# score_fn(params, given [b], relations [b], side) -> [b, E] scores of every entity as the missing side, higher
# is better: side "tail" is given heads, side "head" is given tails. It is jitted with the ranking (a static
# argument, the parameters traced), so pass the same object each time: a module-level function, or a method of one
# kept instance (kg_run.scorer_of). functools.partial and fresh bound methods compare by identity, and each new one
# compiles the ranking again.
ScoreFn = Callable[[object, jax.Array, jax.Array, str], jax.Array]


@dataclass(frozen=True, eq=False)
class FilterIndex:
    """Each (given entity, relation, side)'s true answers among the known triples, as sorted CSR rows.

    keys [Q] int64 (entity · R + relation) sorted, starts [Q + 1], answers [sum] int32, per side.
    """

    num_relations: int
    tails: tuple[np.ndarray, np.ndarray, np.ndarray]  # keyed by (head, relation)
    heads: tuple[np.ndarray, np.ndarray, np.ndarray]  # keyed by (tail, relation)

    @classmethod
    def build(cls, known: np.ndarray, num_relations: int) -> FilterIndex:
        known = np.unique(np.asarray(known, np.int64).reshape(-1, 3), axis=0)

        def csr(given: np.ndarray, answers: np.ndarray):
            keys = given * num_relations + known[:, 1]
            order = np.lexsort((answers, keys))
            keys, answers = keys[order], answers[order]
            unique, starts = np.unique(keys, return_index=True)
            return unique, np.append(starts, len(keys)), answers.astype(np.int32)

        return cls(num_relations, csr(known[:, 0], known[:, 2]), csr(known[:, 2], known[:, 0]))

    def answers(self, given: np.ndarray, relations: np.ndarray, side: str) -> np.ndarray:
        """[b, m] int32: each query's true answers, −1 padded; m a power of two, so a run compiles the ranking
        for a few widths only."""
        keys, starts, answers = self.tails if side == "tail" else self.heads
        query = np.asarray(given, np.int64) * self.num_relations + np.asarray(relations, np.int64)
        if not len(keys):
            return np.full((len(query), 1), -1, np.int32)
        at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        found = keys[at] == query
        lo, count = starts[at], np.where(found, starts[at + 1] - starts[at], 0)
        width = 1 << (max(int(count.max(initial=1)), 1) - 1).bit_length()
        column = np.arange(width)
        return np.where(column < count[:, None], answers[np.minimum(lo[:, None] + column, len(answers) - 1)],
                        -1).astype(np.int32)


@functools.partial(jax.jit, static_argnames=("score_fn", "side"))
def _ranks(score_fn: ScoreFn, params, given, relations, targets, answers, *, side: str):
    """[b] optimistic and pessimistic ranks of each target among the entities that are not another true answer."""
    scores = score_fn(params, given, relations, side)
    scores = jnp.where(jnp.isnan(scores), -jnp.inf, scores)  # a NaN scorer ranks last, never first
    rows = jnp.arange(scores.shape[0])[:, None]
    true = scores[rows[:, 0], targets][:, None]
    columns = jnp.concatenate([targets[:, None], jnp.where(answers < 0, scores.shape[1], answers)], axis=1)
    # Every other true answer is left out, and the target itself is counted in neither sum.
    left_out = jnp.zeros(scores.shape, bool).at[rows, columns].set(True, mode="drop")
    higher = ((scores > true) & ~left_out).sum(-1)
    tied = ((scores == true) & ~left_out).sum(-1)
    return 1 + higher, 1 + higher + tied


def filtered_ranks(score_fn: ScoreFn, params, triples: np.ndarray, index: FilterIndex, *, batch: int = 512
                   ) -> dict[str, np.ndarray]:
    """Ranks of every triple's tail (given head and relation) and head (given relation and tail), [N] each:
    {"tail", "head"} realistic, and {side}_optimistic, {side}_pessimistic. score_fn is called on batches of
    `batch` queries (the last one padded), so it compiles once per side and width of the filter."""
    triples = np.asarray(triples, np.int32).reshape(-1, 3)
    out = {}
    for side, given_col, target_col in (("tail", 0, 2), ("head", 2, 0)):
        optimistic, pessimistic = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for start in range(0, len(triples), batch):
            chunk = triples[start: start + batch]
            real = len(chunk)
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - real, 0)])  # the same shapes every batch
            answers = index.answers(chunk[:, given_col], chunk[:, 1], side)
            low, high = _ranks(score_fn, params, chunk[:, given_col], chunk[:, 1], chunk[:, target_col], answers,
                               side=side)
            optimistic.append(np.asarray(low)[:real])
            pessimistic.append(np.asarray(high)[:real])
        out[f"{side}_optimistic"], out[f"{side}_pessimistic"] = np.concatenate(optimistic), np.concatenate(pessimistic)
        out[side] = (out[f"{side}_optimistic"] + out[f"{side}_pessimistic"]) / 2.0
    return out


def metrics_of(ranks: np.ndarray) -> dict[str, float]:
    """MRR, MR and Hits@1/3/10 of realistic ranks (a tie's half rank counts: 10.5 is not in the top 10)."""
    ranks = np.asarray(ranks, np.float64)
    if ranks.size == 0:
        return {"mrr": float("nan"), "mr": float("nan"), **{f"hits@{k}": float("nan") for k in HITS_AT}}
    return {"mrr": float(np.mean(1.0 / ranks)), "mr": float(np.mean(ranks)),
            **{f"hits@{k}": float(np.mean(ranks <= k)) for k in HITS_AT}}


def evaluate(score_fn: ScoreFn, params, triples: np.ndarray, index: FilterIndex, *, batch: int = 512
             ) -> dict[str, float]:
    """Filtered MRR, MR and Hits@k over both sides of every triple (2N ranks), and the count of triples."""
    ranks = filtered_ranks(score_fn, params, triples, index, batch=batch)
    return {**metrics_of(np.concatenate([ranks["tail"], ranks["head"]])), "triples": int(len(triples))}
