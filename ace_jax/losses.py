"""Per-example contrastive losses l_ω; every function returns one value per example and the caller reduces.

The game's loss parts (Logistic, Hinge, PairwiseLogistic, Squared) split a loss into its positive term and
one term per negative: terms(pos [...], neg [..., K]) -> ([...], [..., K]). A negative's term is the
discriminator's loss on it, which is the generator's reward.
"""

import dataclasses

import jax
import jax.numpy as jnp


def logistic_terms(pos: jax.Array, neg: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The two halves of word2vec's negative-sampling loss.

    Args:
      pos: [...] logits of observed pairs s(x, y+).
      neg: [..., K] logits of negatives s(x, y-).
    Returns:
      (-log σ(s+) [...], -log σ(-s-) [..., K]). The second is l_ω's dependence on y-, i.e. the ACE
      generator's reward for that negative.

    References: Mikolov et al. 2013, "Distributed representations of words and phrases", eq. 4.
    """
    return -jax.nn.log_sigmoid(pos), -jax.nn.log_sigmoid(-neg)


def hinge_terms(pos: jax.Array, neg: jax.Array, margin: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """Margin ranking loss max(0, m − s+ + s-) per negative; there is no separate positive term.

    References: Bose, Ling & Cao 2018 (ACE), §2, the margin loss used for order and KG embeddings.
    """
    return jnp.zeros_like(pos), jax.nn.relu(margin - pos[..., None] + neg)


def combine_terms(pos_term: jax.Array, neg_terms: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """pos_term [...] + Σ_k weights_k · neg_terms_k [..., K] -> [...]; weights default to 1 (word2vec sums)."""
    if weights is None:
        return pos_term + neg_terms.sum(-1)
    return pos_term + (weights * neg_terms).sum(-1)


def negative_sampling_loss(pos: jax.Array, neg: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """-log σ(s+) − Σ_k w_k log σ(−s-_k): [...] and [..., K] -> [...].

    References: Mikolov et al. 2013, eq. 4 (w_k = 1); with w = K·softmax(α s-) held fixed it is
    self-adversarial negative sampling (Sun et al. 2019, RotatE, eq. 5, rescaled by K so α → 0 is SGNS).
    """
    return combine_terms(*logistic_terms(pos, neg), weights)


def nce_loss(
    pos: jax.Array,
    neg: jax.Array,
    log_kq_pos: jax.Array,
    log_kq_neg: jax.Array,
    weights: jax.Array | None = None,
) -> jax.Array:
    """Noise-contrastive estimation: logistic loss on s − log(k·q(y)).

    Args:
      pos, neg: logits [...] and [..., K].
      log_kq_pos, log_kq_neg: log(K · q(y)) of the positive and of each negative under the noise q.
    References: Gutmann & Hyvärinen 2010; Mnih & Teh 2012, eq. 8 (the posterior P(D=1|x) = σ(s − log kq)).
    """
    return negative_sampling_loss(pos - log_kq_pos, neg - log_kq_neg, weights)


def hinge_loss(pos: jax.Array, neg: jax.Array, margin: float = 1.0, weights: jax.Array | None = None) -> jax.Array:
    """Σ_k w_k max(0, m − s+ + s-_k): [...] and [..., K] -> [...]."""
    return combine_terms(*hinge_terms(pos, neg, margin), weights)


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Full softmax: −log softmax(logits)[label]; logits [..., V], labels [...] int -> [...]."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]


def hierarchical_softmax_loss(node_logits: jax.Array, codes: jax.Array, mask: jax.Array) -> jax.Array:
    """−log p(y|x) along y's Huffman path: −Σ_i log σ((1 − 2 c_i) s(x, node_i)).

    Args:
      node_logits: [..., L] scores of x against the inner nodes on y's path.
      codes: [..., L] the path's bits (0 or 1); word2vec's label is 1 − code.
      mask: [..., L] true on the path's real nodes (paths are padded to the longest code).
    References: Morin & Bengio 2005; Mikolov et al. 2013, §2.1; word2vec.c's HS branch.
    """
    sign = 1.0 - 2.0 * codes.astype(node_logits.dtype)
    return -jnp.where(mask, jax.nn.log_sigmoid(sign * node_logits), 0.0).sum(-1)


def s2net_pairwise_loss(sim_pos: jax.Array, sim_neg: jax.Array, gamma: float = 10.0) -> jax.Array:
    """log(1 + exp(−γ Δ)), Δ = sim(p1, q1) − sim(p2, q2): [...] -> [...].

    References: Yih, Toutanova, Platt & Meek 2011 (S2Net), §3.2, eq. 3; γ = 10 as in the paper.
    """
    return jax.nn.softplus(-gamma * (sim_pos - sim_neg))


def s2net_hinge_loss(sim_pos: jax.Array, sim_neg: jax.Array, margin: float = 0.5) -> jax.Array:
    """max(0, m − Δ), Δ = sim(p1, q1) − sim(p2, q2): [...] -> [...]; `hinge_loss` with one negative.

    Cosines put Δ in [−2, 2]; m = 0.5 is our choice, the paper gives no value.
    References: Yih, Toutanova, Platt & Meek 2011 (S2Net), §3.2, the hinge variant of eq. 3.
    """
    return hinge_loss(sim_pos, sim_neg[..., None], margin)


def s2net_squared_loss(sim: jax.Array, target: jax.Array) -> jax.Array:
    """½ (y − sim)²: similarities [...] against labels y [...] (e.g. 1 similar, 0 or −1 not) -> [...].

    References: Yih, Toutanova, Platt & Meek 2011 (S2Net), §3.2, the mean-squared-error objective.
    """
    return 0.5 * jnp.square(target - sim)


@dataclasses.dataclass(frozen=True)
class Logistic:
    """word2vec's negative-sampling loss, (−log σ(s+), −log σ(−s-)): `logistic_terms`."""

    def __call__(self, pos: jax.Array, neg: jax.Array) -> tuple[jax.Array, jax.Array]:
        return logistic_terms(pos, neg)


@dataclasses.dataclass(frozen=True)
class Hinge:
    """max(0, m − s+ + s-) per negative, no positive term: `hinge_terms`."""

    margin: float = 1.0

    def __call__(self, pos: jax.Array, neg: jax.Array) -> tuple[jax.Array, jax.Array]:
        return hinge_terms(pos, neg, self.margin)


@dataclasses.dataclass(frozen=True)
class Contrastive:
    """Scores s = −E: E+ for the positive and max(0, m − E-) per negative (order embeddings' loss, Vendrov et al.
    2016: Torch's HingeEmbeddingCriterion, a pair's energy against its label)."""

    margin: float = 1.0

    def __call__(self, pos: jax.Array, neg: jax.Array) -> tuple[jax.Array, jax.Array]:
        return -pos, jax.nn.relu(self.margin + neg)


@dataclasses.dataclass(frozen=True)
class PairwiseLogistic:
    """S2Net's log(1 + exp(−γ(s+ − s-))) per negative, no positive term: `s2net_pairwise_loss`."""

    gamma: float = 10.0

    def __call__(self, pos: jax.Array, neg: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jnp.zeros_like(pos), s2net_pairwise_loss(pos[..., None], neg, self.gamma)


@dataclasses.dataclass(frozen=True)
class Squared:
    """S2Net's mean-squared error: ½(1 − s+)² for the positive, ½(s-)² for each negative (targets 1 and 0)."""

    def __call__(self, pos: jax.Array, neg: jax.Array) -> tuple[jax.Array, jax.Array]:
        return s2net_squared_loss(pos, 1.0), s2net_squared_loss(neg, 0.0)


def self_adversarial_weights(neg: jax.Array, keep: jax.Array, temperature: float) -> jax.Array:
    """n · softmax(α s-) over the n kept negatives, held fixed (Sun et al. 2019, eq. 4); α → 0 gives 1 each."""
    logits = jnp.where(keep, temperature * jax.lax.stop_gradient(neg), -jnp.inf)
    weights = jax.nn.softmax(logits, axis=-1, where=keep)
    return jnp.where(keep, keep.sum(-1, keepdims=True) * weights, 0.0)


@dataclasses.dataclass(frozen=True)
class SelfAdversarial:
    """A weighting part: each kept negative's term weighted by `self_adversarial_weights` at `temperature`."""

    temperature: float = 1.0

    def __call__(self, neg: jax.Array, keep: jax.Array) -> jax.Array:
        return self_adversarial_weights(neg, keep, self.temperature)
