"""The discriminator's update from a loss written over gathered rows: dense (optax on whole tables, the
reference) or sparse (gradients of the rows read, a row optimiser, a scatter-add); and the optimiser step
both players share."""

import jax
import jax.numpy as jnp
import optax

from ace_jax import sparse_optim


def gather(params: dict, ids: dict) -> dict:
    """{table: ids} -> {table: rows}: each table's rows at every leaf of its ids (any pytree; −1 reads row 0,
    which the loss must weigh 0)."""
    return {name: jax.tree.map(lambda i, table=params[name]: table[jnp.maximum(i, 0)], tree)
            for name, tree in ids.items()}


def flat_rows(ids, grads) -> tuple[jax.Array, jax.Array]:
    """One table's ids and row gradients, any pytree of them, as one [N] and one [N, ...]."""
    id_leaves, grad_leaves = jax.tree.leaves(ids), jax.tree.leaves(grads)
    if len(id_leaves) == 1:
        return id_leaves[0], grad_leaves[0]
    trailing = grad_leaves[0].shape[id_leaves[0].ndim:]
    return (jnp.concatenate([i.reshape(-1) for i in id_leaves]),
            jnp.concatenate([g.reshape((-1, *trailing)) for g in grad_leaves]))


def apply_gradients(tx, params: dict, opt_state, grads: dict, ids: dict | None = None):
    """One optimiser step -> (params, opt_state).

    ids None: grads are of whole tables, through optax. Otherwise grads are of the rows at `ids` ({table:
    ids}, as `gather` reads them): a row optimiser (sparse_optim) sums repeated ids and keeps per-row
    state; an optax transform without per-parameter state (SGD) maps the row gradients, which are then
    scatter-added. Either way only the rows read are touched, never a whole table.
    """
    if ids is None:
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state
    if isinstance(tx, sparse_optim.RowOptimizer):
        flat = {name: flat_rows(ids[name], grads[name]) for name in ids}
        unique, deltas, opt_state = tx.update({n: f[0] for n, f in flat.items()}, {n: f[1] for n, f in flat.items()},
                                              opt_state)
        return sparse_optim.apply_updates(params, unique, deltas), opt_state
    updates, opt_state = tx.update(grads, opt_state)
    params = dict(params)
    for name in ids:
        for i, update in zip(jax.tree.leaves(ids[name]), jax.tree.leaves(updates[name])):
            params[name] = params[name].at[jnp.maximum(i, 0)].add(update.astype(params[name].dtype))
    return params, opt_state


def dense(state, ids: dict, loss_of_rows, term_weights=None):
    """The reference: gradients of whole tables through the gather, applied by optax.

    loss_of_rows(rows) -> (loss, aux). Returns (params, opt_state, loss, aux). term_weights is unused (an
    update that fuses the loss, such as the word family's CPU kernel, reads them instead of loss_of_rows).
    """
    (loss, aux), grads = jax.value_and_grad(lambda p: loss_of_rows(gather(p, ids)), has_aux=True)(state.params)
    params, opt_state = apply_gradients(state.tx, state.params, state.opt_state, grads)
    return params, opt_state, loss, aux


def sparse(state, ids: dict, loss_of_rows, term_weights=None, *, rows_sharding=None):
    """Gradients of the gathered rows only, applied with `apply_gradients`.

    rows_sharding (many devices, the batch split over them; bind it before jit): where the touched ids
    and their gradients go before the update, replicated, so every device applies every row and a step
    moves rows between devices, never whole tables.
    """
    (loss, aux), row_grads = jax.value_and_grad(loss_of_rows, has_aux=True)(gather(state.params, ids))
    if rows_sharding is not None:
        ids, row_grads = jax.lax.with_sharding_constraint((ids, row_grads), rows_sharding)
    params, opt_state = apply_gradients(state.tx, state.params, state.opt_state, row_grads, ids)
    return params, opt_state, loss, aux
