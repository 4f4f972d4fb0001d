"""Row-sparse optimisers: SGD, Adagrad and lazy Adam that read and write only the rows a step touched."""

from typing import Any, NamedTuple
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

# Where padding ids (−1) and unused slots of the unique-id buffer point: past the end of any table, so
# scatters with mode="drop" skip them. A negative index would wrap around to the last row instead.
DROPPED = jnp.iinfo(jnp.int32).max


class RowState(NamedTuple):
    hyperparams: dict  # {"learning_rate": float32 []}; set it between steps, as with optax.inject_hyperparams
    count: jax.Array  # int32 []: steps taken; Adam's bias correction uses it for every row
    rows: dict  # per table name, a tuple of statistics shaped like the table (empty for SGD)


class RowOptimizer(NamedTuple):
    """A pair of pure functions, as optax's GradientTransformation.

    init(params) -> RowState, params a dict of tables [V, d] (or vectors [V], as a bias).
    update(ids, grads, state) -> (unique_ids, deltas, state): ids {name: [...] int32, −1 padding} and
      grads {name: [..., d]} for the gathered rows; unique_ids {name: [N]} (DROPPED-padded) and deltas
      {name: [N, d]}, to be added with `apply_updates` (SGD's ids may repeat: the scatter-add sums them).
    name: "sgd", "adagrad" or "adam"; the word family fuses plain SGD into one CPU kernel (word.fuses).
    row_clip: each row's gradient, summed over the step, is scaled down to this L2 norm when larger
      (0: never). See `clip_rows`.
    """

    init: Callable[[Any], RowState]
    update: Callable[[dict, dict, RowState], tuple[dict, dict, RowState]]
    name: str = ""
    row_clip: float = 0.0


def clip_rows(grads: jax.Array, max_norm: float) -> jax.Array:
    """Scales each row of grads [N, ...] down to L2 norm max_norm where it is larger (max_norm 0: unchanged).

    A synchronous step sums a row's gradients over the batch before it moves the row; word2vec's
    sequential updates would have saturated after a few. Where a batch repeats one pair hundreds of times
    (template debris such as "if if if ..." in Wikipedia), that sum overshoots and training can diverge.
    Clipping the sum bounds any row's move in one step; at the clip measured (50, README) it trims only a
    step's few largest rows.
    """
    if not max_norm:
        return grads
    axes = tuple(range(1, grads.ndim))
    norm = jnp.sqrt(jnp.sum(jnp.square(grads), axis=axes, keepdims=True))
    return grads * jnp.minimum(1.0, max_norm / jnp.maximum(norm, jnp.finfo(grads.dtype).tiny))


def dense_row_clip(max_norm: float) -> optax.GradientTransformation:
    """clip_rows for the dense optax path: every [V, ...] gradient clipped row by row (the reference)."""

    def update(updates, state, params=None):
        return jax.tree.map(lambda g: clip_rows(g, max_norm), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def sum_duplicates(ids: jax.Array, grads: jax.Array, num_rows: int | None = None) -> tuple[jax.Array, jax.Array]:
    """A row's gradient is the sum over its occurrences: ids [...], grads [..., d] -> ([N], [N, d]).

    Static shapes: N = ids.size unique slots, sorted, the unused ones and padding set to DROPPED. The ids are
    sorted once (see `sort_order`), runs of one id made segments, and the gradients summed segment by segment in
    their original order. (jnp.unique with return_inverse, used before, cost a quarter of a lazy-Adam knowledge-graph
    step on the CPU: its argsort is a stable two-operand sort.) num_rows: the table's rows, if known.
    """
    trailing = grads.shape[ids.ndim:]  # (d,) for a table, () for a vector such as a bias
    ids = jnp.where(ids < 0, DROPPED, ids).reshape(-1)  # [N]
    n = ids.shape[0]
    order = sort_order(ids, num_rows)
    ids = ids[order]
    starts = jnp.concatenate([jnp.ones(1, bool), ids[1:] != ids[:-1]])
    segment = jnp.cumsum(starts.astype(jnp.int32)) - 1  # [N]: each sorted position's unique slot
    unique = jnp.full(n, DROPPED, jnp.int32).at[segment].set(ids, indices_are_sorted=True)
    summed = jax.ops.segment_sum(grads.reshape((n,) + trailing)[order], segment, num_segments=n,
                                 indices_are_sorted=True)
    return unique, summed


def sort_order(ids: jax.Array, num_rows: int | None) -> jax.Array:
    """The permutation sorting ids [N] (DROPPED last), equal ids in their original order where num_rows is
    given and (num_rows + 1) · N < 2³¹: then one int32 key id · N + position is sorted, ~10× faster on the CPU
    than argsort's stable sort of two operands. Otherwise an unstable sort of (id, position), ~3× faster: equal
    ids may come in another order, so their float sum may round differently (deterministically)."""
    n = ids.shape[0]
    position = jnp.arange(n, dtype=jnp.int32)
    if num_rows is not None and (num_rows + 1) * n < 2**31:
        return jnp.sort(jnp.minimum(ids, num_rows) * n + position) % n
    return jax.lax.sort((ids, position), num_keys=1, is_stable=False)[1]


def apply_updates(params: dict, ids: dict, deltas: dict) -> dict:
    """Adds each delta to its row; DROPPED ids are skipped."""
    return {**params, **{name: params[name].at[ids[name]].add(deltas[name].astype(params[name].dtype), mode="drop")
                         for name in ids}}


def init_rows(learning_rate: float, params: dict, init_row) -> RowState:
    return RowState(hyperparams={"learning_rate": jnp.asarray(learning_rate, jnp.float32)},
                    count=jnp.zeros((), jnp.int32),
                    rows={name: init_row(table) for name, table in params.items()})


def row_optimizer(learning_rate: float, init_row, update_row, name: str, row_clip: float = 0.0) -> RowOptimizer:
    """Lifts a per-row rule to tables: sums duplicates (and clips the sums: clip_rows), gathers the rows'
    statistics, scatters them back.

    init_row(table) -> tuple of statistics shaped like the table.
    update_row(grads [N, d], stats (tuple of [N, d]), count) -> (direction [N, d], new stats); the
      delta is −learning_rate · direction, as optax's scale_by_learning_rate.
    """

    def init(params):
        return init_rows(learning_rate, params, init_row)

    def update(ids, grads, state):
        count = state.count + 1
        unique_ids, deltas, rows = {}, {}, dict(state.rows)
        for name in ids:
            num_rows = state.rows[name][0].shape[0] if state.rows[name] else None
            unique_ids[name], summed = sum_duplicates(ids[name], grads[name], num_rows)
            summed = clip_rows(summed, row_clip)
            # DROPPED clamps to the last row on the gather; what is computed from it is dropped on the scatter.
            stats = tuple(s[unique_ids[name]] for s in state.rows[name])
            direction, stats = update_row(summed, stats, count)
            deltas[name] = -state.hyperparams["learning_rate"] * direction
            rows[name] = tuple(s.at[unique_ids[name]].set(new, mode="drop")
                               for s, new in zip(state.rows[name], stats))
        return unique_ids, deltas, RowState(state.hyperparams, count, rows)

    return RowOptimizer(init, update, name, row_clip)


def sgd(learning_rate: float, row_clip: float = 0.0) -> RowOptimizer:
    """Keeps no statistics, so repeated ids need no summing first: each occurrence's −lr · g is scattered.
    With row_clip, rows are summed first (the clip bounds the sum)."""
    if row_clip:
        return row_optimizer(learning_rate, lambda table: (), lambda g, stats, count: (g, stats), "sgd", row_clip)

    def update(ids, grads, state):
        flat_ids, deltas = {}, {}
        for name, i in ids.items():
            flat_ids[name] = jnp.where(i < 0, DROPPED, i).reshape(-1)  # [N]
            trailing = grads[name].shape[i.ndim:]  # (d,), or () for a vector
            deltas[name] = -state.hyperparams["learning_rate"] * grads[name].reshape(flat_ids[name].shape + trailing)
        return flat_ids, deltas, state._replace(count=state.count + 1)

    return RowOptimizer(lambda params: init_rows(learning_rate, params, lambda table: ()), update, "sgd")


def adagrad(learning_rate: float, initial_accumulator_value: float = 0.1, eps: float = 1e-7,
            row_clip: float = 0.0) -> RowOptimizer:
    """optax.adagrad, with the same defaults and formula: g / sqrt(G + eps), G starting at 0.1.

    Equal to the dense optax.adagrad: a row no id touches has zero gradient there, so neither its
    accumulator nor its value moves.
    """

    def update_row(g, stats, count):
        (sum_of_squares,) = stats
        sum_of_squares = g * g + sum_of_squares
        return jnp.where(sum_of_squares > 0, jax.lax.rsqrt(sum_of_squares + eps), 0.0) * g, (sum_of_squares,)

    return row_optimizer(learning_rate, lambda table: (jnp.full_like(table, initial_accumulator_value),), update_row,
                         "adagrad", row_clip)


def adam(learning_rate: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         row_clip: float = 0.0) -> RowOptimizer:
    """Lazy Adam (TensorFlow's LazyAdam): a row's moments move only on steps whose ids include it.

    The bias correction uses the global step count, as LazyAdam does, and eps sits outside the square
    root as in optax.adam, so with every row touched every step this is optax.adam exactly. A row read
    with zero gradient (e.g. a negative of a masked pair) counts as touched; padding ids (−1) do not.
    """

    def update_row(g, stats, count):
        mu, nu = stats
        mu = (1 - b1) * g + b1 * mu
        nu = (1 - b2) * (g * g) + b2 * nu
        mu_hat = mu / (1 - b1**count).astype(mu.dtype)
        nu_hat = nu / (1 - b2**count).astype(nu.dtype)
        return mu_hat / (jnp.sqrt(nu_hat) + eps), (mu, nu)

    return row_optimizer(learning_rate, lambda table: (jnp.zeros_like(table), jnp.zeros_like(table)), update_row,
                         "adam", row_clip)
