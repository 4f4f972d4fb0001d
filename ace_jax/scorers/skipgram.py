"""Skip-gram and CBOW scorers: s(x, y) = u_x · v_y, with a CBOW query the mean of its context rows."""

import jax
import jax.numpy as jnp


def init(key: jax.Array, vocab_size: int, dim: int, num_outputs: int | None = None) -> dict:
    """word2vec's initialisation: inputs U(−0.5/d, 0.5/d), outputs zero.

    Args:
      num_outputs: rows of the output table; V for sampled losses and softmax, V − 1 inner
        nodes for hierarchical softmax.
    """
    return {
        "in": jax.random.uniform(key, (vocab_size, dim), minval=-0.5 / dim, maxval=0.5 / dim),
        "out": jnp.zeros((vocab_size if num_outputs is None else num_outputs, dim)),
    }


def query_rows(table: jax.Array, queries: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gathers the rows a query reads: [B] -> ([B, d], [B]); [B, M] with −1 padding -> ([B, M, d], [B, M])."""
    return table[jnp.maximum(queries, 0)], queries >= 0


def combine_query(rows: jax.Array, mask: jax.Array) -> jax.Array:
    """Skip-gram: the row itself; CBOW: the mean of the valid context rows ([B, M, d] -> [B, d])."""
    if rows.ndim == 2:
        return rows
    weights = mask / jnp.maximum(mask.sum(-1, keepdims=True), 1)  # [B, M]
    return jnp.einsum("bm,bmd->bd", weights, rows)


def embed_queries(table: jax.Array, queries: jax.Array) -> jax.Array:
    return combine_query(*query_rows(table, queries))


def score_rows(query: jax.Array, cand_rows: jax.Array) -> jax.Array:
    """query [B, d], candidate rows [B, K, d] -> logits [B, K]."""
    return jnp.einsum("bd,bkd->bk", query, cand_rows)


@jax.custom_vjp
def score_members(member_rows: jax.Array, cand_rows: jax.Array) -> jax.Array:
    """Every member of a bag as its own query: rows [B, M, d], candidate rows [B, K, d] -> logits [B, M, K].

    The gradient is written by hand: XLA on CPU runs the transposed batched product that autodiff makes
    for the candidates ("bmk,bmd->bkd") about 4× slower than the same sum as a broadcast and reduce.
    """
    return jnp.einsum("bmd,bkd->bmk", member_rows, cand_rows)


def _score_members_forward(member_rows, cand_rows):
    return score_members(member_rows, cand_rows), (member_rows, cand_rows)


def _score_members_backward(rows, g):
    member_rows, cand_rows = rows
    return (jnp.einsum("bmk,bkd->bmd", g, cand_rows),
            (g[:, :, :, None] * member_rows[:, :, None, :]).sum(1))


score_members.defvjp(_score_members_forward, _score_members_backward)


def score(params: dict, queries: jax.Array, candidates: jax.Array) -> jax.Array:
    """queries [B] (skip-gram) or [B, M] (CBOW, −1 padded), candidates [B, K] int32 -> logits [B, K]."""
    return score_rows(embed_queries(params["in"], queries), params["out"][candidates])


def score_all(params: dict, queries: jax.Array) -> jax.Array:
    """Logits against every output row, for full softmax: [B] or [B, M] -> [B, V_out]."""
    return embed_queries(params["in"], queries) @ params["out"].T
