"""S2Net (Yih et al., CoNLL 2011): sim(p, q) = cos(Aᵀf_p, Aᵀf_q) for sparse term vectors f and a learned A [d, k]."""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
import scipy.sparse.linalg

ACTIVATIONS = {"none": lambda g: g, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}


def init(
    key: jax.Array,
    num_terms: int,
    dim: int,
    method: str = "random",
    ids: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> dict:
    """{"A": [d, k]} with d = num_terms, k = dim.

    random: A_ij ~ N(0, 1/k), so E|Aᵀf|² = |f|² (a Johnson–Lindenstrauss projection).
    lsi: the top-k right singular vectors of the training term matrix F [N, d] built from padded
      `ids`, `weights` [N, T] (the paper's LSA starting point); columns by descending singular
      value, each signed so its largest-magnitude entry is positive, and scaled by sqrt(d/k) so the
      entries have the random init's mean square 1/k (cosines do not change; one Adam step size
      suits both starts). Needs k < min(N, d). `key` is unused: ARPACK starts from a fixed vector,
      so the same texts give the same A.
    """
    if method == "random":
        return {"A": jax.random.normal(key, (num_terms, dim)) / np.sqrt(dim)}
    if method != "lsi":
        raise ValueError(f"method must be random or lsi, not {method!r}")
    if ids is None or weights is None:
        raise ValueError("lsi initialisation needs the training term vectors (ids and weights)")
    terms = term_matrix(ids, weights, num_terms)
    if not 0 < dim < min(terms.shape):
        raise ValueError(f"lsi needs 0 < dim < min(texts, terms) = {min(terms.shape)}, not {dim}")
    v0 = np.random.default_rng(0).standard_normal(min(terms.shape))
    _, sing, vt = scipy.sparse.linalg.svds(terms, k=dim, v0=v0)
    basis = vt[np.argsort(-sing)].T  # [d, k]
    pivots = np.abs(basis).argmax(0)
    basis = basis * np.sign(basis[pivots, np.arange(dim)]) * np.sqrt(num_terms / dim)
    return {"A": jnp.asarray(basis, jnp.float32)}


def term_matrix(ids: np.ndarray, weights: np.ndarray, num_terms: int) -> scipy.sparse.csr_matrix:
    """Padded ids, weights [N, T] -> the sparse term matrix F [N, d] (float64); padding dropped."""
    rows, cols = np.nonzero(ids >= 0)
    data = np.asarray(weights, np.float64)[rows, cols]
    return scipy.sparse.csr_matrix((data, (rows, ids[rows, cols])), shape=(ids.shape[0], num_terms))


def project(params: dict, ids: jax.Array, weights: jax.Array, activation: str = "none") -> jax.Array:
    """g = act(Aᵀf): ids [..., T] int32 (−1 padding), weights [..., T] -> [..., k].

    A gather of T rows and a weighted sum, never f as a dense [d] vector; padding adds 0.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    rows = params["A"][jnp.maximum(ids, 0)]  # [..., T, k]
    weights = jnp.where(ids >= 0, weights, 0.0)
    return ACTIVATIONS[activation]((weights[..., None] * rows).sum(-2))


def cosine(u: jax.Array, v: jax.Array, eps: float = 1e-8) -> jax.Array:
    """u·v / sqrt(max(|u|², ε) · max(|v|², ε)): [..., k] -> [...].

    Clipping the squared norms (as optax's cosine_similarity) keeps the value and its gradient
    finite at a zero vector (a text with no known word), where the cosine is 0.
    """
    uu = jnp.maximum((u * u).sum(-1), eps)
    vv = jnp.maximum((v * v).sum(-1), eps)
    return (u * v).sum(-1) / jnp.sqrt(uu * vv)


def score(
    params: dict,
    ids1: jax.Array,
    w1: jax.Array,
    ids2: jax.Array,
    w2: jax.Array,
    activation: str = "none",
) -> jax.Array:
    """sim(p, q) = cos(g_p, g_q) of paired texts: ids, weights [N, T1] and [N, T2] -> [N]."""
    return cosine(project(params, ids1, w1, activation), project(params, ids2, w2, activation))
