"""S2Net with mined negatives: one state for the projection A and a generator, and a pure train step."""

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from ace_jax import generator, losses, reinforce
from ace_jax.scorers import s2net
from ace_jax.train import NO_GENERATOR_TX, masked_mean, self_adversarial_weights

SAMPLERS = ("none", "uniform", "in-batch", "self-adv", "ace")
LOSSES = ("logistic", "hinge", "mse")
MASKED_LOGIT = -1e9  # finite, so a row with every candidate masked stays a (uniform) distribution


@dataclasses.dataclass(frozen=True)
class S2NetConfig:
    """How negatives are drawn and scored, and how the generator learns.

    sampler: none (gold preferences only: the paper's S2Net), uniform (K candidates uniformly),
      in-batch (the batch's other positives), self-adv (uniform draws weighted by K·softmax(α sim),
      Sun et al. 2019), ace (mixture of uniform and the generator, Bose et al. 2018).
    negatives: K per (query, positive); in-batch uses min(K, B − 1) other positives.
    lam: ACE's λ, the probability that a negative slot is filled from uniform noise.
    loss: logistic log(1 + exp(−γΔ)) or hinge max(0, m − Δ) of Δ = sim(better) − sim(worse); mse
      ½(y − sim)² pointwise, with y the gold target, 1 for a mined query's positive, 0 for a negative.
    gamma: the pairwise logistic loss's scale (γ = 10 in the paper); margin: the hinge's.
    false_negative_penalty: a generator draw equal to the query's positive (or the query) earns
      −penalty instead of a loss, and is dropped from the discriminator's loss.
    """

    sampler: str = "uniform"
    negatives: int = 4
    lam: float = 0.5
    gamma: float = 10.0
    loss: str = "logistic"
    margin: float = 0.5
    self_adv_temperature: float = 1.0
    entropy_weight: float = 0.1
    entropy_target: float = 2.0  # nats; uniform over C candidates has log C
    baseline_decay: float = 0.99
    false_negative_penalty: float = 1.0
    activation: str = "none"

    def __post_init__(self):
        checks = [
            (self.sampler in SAMPLERS, f"sampler must be one of {', '.join(SAMPLERS)}, not {self.sampler!r}"),
            (self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}"),
            (self.negatives >= 1, f"negatives must be at least 1, not {self.negatives}"),
            (0.0 <= self.lam <= 1.0, f"lam must lie in [0, 1], not {self.lam}"),
            (0.0 <= self.baseline_decay < 1.0, f"baseline_decay must lie in [0, 1), not {self.baseline_decay}"),
            (self.activation in s2net.ACTIVATIONS,
             f"activation must be one of {', '.join(s2net.ACTIVATIONS)}, not {self.activation!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class PairBatch(flax.struct.PyTreeNode):
    """B (query, positive) text pairs as padded term vectors (text_features.featurize).

    query_ids, query_weights: [B, Tq] int32 (−1 padding), float32.
    positive_ids, positive_weights: [B, Tp].
    positive_index: [B] int32, the positive's row in the candidate set, −1 if it is not there.
    query_index: [B] int32, the query's own row in the candidate set, −1 if it is not there
      (candidates = all training texts hold the query itself, a negative with sim 1).
    """

    query_ids: jax.Array
    query_weights: jax.Array
    positive_ids: jax.Array
    positive_weights: jax.Array
    positive_index: jax.Array
    query_index: jax.Array


class GoldPairs(flax.struct.PyTreeNode):
    """B text pairs with gold targets: ids1, weights1 [B, T1], ids2, weights2 [B, T2], target [B] (score rescaled to [0, 1])."""

    ids1: jax.Array
    weights1: jax.Array
    ids2: jax.Array
    weights2: jax.Array
    target: jax.Array


class Preferences(flax.struct.PyTreeNode):
    """B gold preferences (data.pairs.preference_pairs): pair better[i] has a higher gold score than worse[i]."""

    better: GoldPairs
    worse: GoldPairs


class Candidates(flax.struct.PyTreeNode):
    """The C texts negatives are drawn from: ids [C, Tc] int32 (−1 padding), weights [C, Tc] float32."""

    ids: jax.Array
    weights: jax.Array


class S2NetState(flax.struct.PyTreeNode):
    step: jax.Array  # int32 scalar: steps taken; folded into `key` so every step draws fresh randomness
    key: jax.Array  # the base PRNG key (never split in place)
    params: Any  # discriminator {"A": [d, k]}
    opt_state: optax.OptState
    gen_params: Any  # generator {"A": [d, k_g]}, its own projection ({} without a generator)
    gen_opt_state: optax.OptState
    baseline: jax.Array  # float32 scalar: moving average of the generator's reward
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
    gen_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)


def init_generator(key: jax.Array, num_terms: int, dim: int, scale: float = 0.1) -> dict:
    """{"A": G [d, k_g]}, G_ij ~ N(0, scale²/k_g): logits (Gᵀf_q)·(Gᵀf_c) ≈ scale² f_q·f_c start near 0.

    A small scale keeps the first distribution close to uniform; at scale 1 the query itself
    (logit |f_q|², tens for tf-idf vectors) would take most of the mass.
    """
    return {"A": scale * jax.random.normal(key, (num_terms, dim)) / jnp.sqrt(dim)}


def create_state(
    key: jax.Array,
    params: dict,
    tx: optax.GradientTransformation,
    gen_params: dict | None = None,
    gen_tx: optax.GradientTransformation | None = None,
) -> S2NetState:
    gen_params = {} if gen_params is None else gen_params
    gen_tx = NO_GENERATOR_TX if gen_tx is None else gen_tx
    return S2NetState(
        step=jnp.zeros((), jnp.int32),
        key=key,
        params=params,
        opt_state=tx.init(params),
        gen_params=gen_params,
        gen_opt_state=gen_tx.init(gen_params),
        baseline=jnp.zeros((), jnp.float32),
        tx=tx,
        gen_tx=gen_tx,
    )


def pair_losses(config: S2NetConfig, sim_pos: jax.Array, sim_neg: jax.Array) -> jax.Array:
    """The loss of each (query, positive, negative): sim_pos [B], sim_neg [B, K] -> [B, K].

    mse: the negative's own term ½ sim_neg² (target 0); the positive's term is the caller's.
    """
    if config.loss == "mse":
        return losses.s2net_squared_loss(sim_neg, 0.0)
    if config.loss == "hinge":
        return losses.s2net_hinge_loss(jnp.broadcast_to(sim_pos[:, None], sim_neg.shape), sim_neg, config.margin)
    return losses.s2net_pairwise_loss(sim_pos[:, None], sim_neg, config.gamma)


def gold_loss(config: S2NetConfig, params: dict, gold: Preferences) -> jax.Array:
    """Mean over the B preferences of l(sim(better) − sim(worse)), or of the two pairs' squared errors (mse)."""
    def sim(pairs: GoldPairs) -> jax.Array:
        return s2net.score(params, pairs.ids1, pairs.weights1, pairs.ids2, pairs.weights2, config.activation)

    sim_better, sim_worse = sim(gold.better), sim(gold.worse)
    if config.loss == "mse":
        per_pref = (losses.s2net_squared_loss(sim_better, gold.better.target)
                    + losses.s2net_squared_loss(sim_worse, gold.worse.target))
    else:
        per_pref = pair_losses(config, sim_better, sim_worse[:, None])[:, 0]
    return per_pref.mean()


def generator_logits(gen_params: dict, batch: PairBatch, candidates: Candidates) -> jax.Array:
    """g(n|q) = softmax_n((Gᵀf_q)·(Gᵀf_n)) over the C candidates: logits [B, C].

    The query's own row and its positive's (where known) get logit MASKED_LOGIT, probability 0:
    they are no negatives, and a generator that had to learn that from penalties would learn to
    avoid every text near the query, the very negatives it should find.
    """
    query = s2net.project(gen_params, batch.query_ids, batch.query_weights)  # [B, k_g]
    cands = s2net.project(gen_params, candidates.ids, candidates.weights)  # [C, k_g]
    rows = jnp.arange(candidates.ids.shape[0])
    own = (rows[None, :] == batch.query_index[:, None]) | (rows[None, :] == batch.positive_index[:, None])  # [B, C]
    return jnp.where(own, MASKED_LOGIT, query @ cands.T)


def is_false_negative(neg_index: jax.Array, batch: PairBatch) -> jax.Array:
    """neg_index [B, K] candidate rows -> [B, K] bool: the query's own positive or the query itself."""
    def same(index):
        return (index[:, None] >= 0) & (neg_index == index[:, None])

    return same(batch.positive_index) | same(batch.query_index)


def in_batch_negatives(key: jax.Array, num_rows: int, num_neg: int) -> jax.Array:
    """For each query i, min(K, B − 1) distinct other rows (i + o) mod B, offsets o from 1..B−1 at random: [B, K']."""
    if num_rows < 2:
        raise ValueError("in-batch negatives need a batch of at least 2 pairs")
    offsets = 1 + jax.random.permutation(key, num_rows - 1)[: min(num_neg, num_rows - 1)]  # [K']
    return (jnp.arange(num_rows)[:, None] + offsets[None, :]) % num_rows


def train_step(
    state: S2NetState,
    batch: PairBatch | None,
    candidates: Candidates | None,
    gold: Preferences | None = None,
    *,
    config: S2NetConfig,
) -> tuple[S2NetState, dict]:
    """One move of each player. Pure; jit it once with `config` bound.

    Discriminator: gold_loss(gold) when gold preferences are given, plus (unless the sampler is
    none, which ignores `batch` and `candidates`: pass None) the mean over queries of Σ_k w_k l(sim(q, p) − sim(q, n_k)) with
    w_k = 0 for a false negative (is_false_negative), K·softmax(α sim) held fixed for self-adv,
    1 otherwise (mse: ½(1 − sim(q, p))² + Σ_k w_k ½ sim(q, n_k)²).
    Generator (ace): REINFORCE on all B·K of its draws, whether or not the mixture used them, with
    reward l(q, p, n) under the discriminator before its move (−penalty for a false negative), the
    moving-average baseline, and entropy_weight · max(0, c − H).
    """
    if config.sampler == "none" and gold is None:
        raise ValueError("sampler none learns from gold preferences only; pass gold")
    key = jax.random.fold_in(state.key, state.step)
    k_noise, k_mix, k_gen = jax.random.split(key, 3)
    mined = config.sampler != "none"
    num_rows = batch.query_ids.shape[0] if mined else 0
    metrics = {}

    if config.sampler == "in-batch":
        others = in_batch_negatives(k_noise, num_rows, config.negatives)  # [B, K']
        neg_index = batch.positive_index[others]
        neg_ids, neg_weights = batch.positive_ids[others], batch.positive_weights[others]  # [B, K', Tp]
    elif mined:
        neg_index = jax.random.randint(k_noise, (num_rows, config.negatives), 0, candidates.ids.shape[0], dtype=jnp.int32)
        if config.sampler == "ace":
            gen_logits, logits_vjp = jax.vjp(lambda p: generator_logits(p, batch, candidates), state.gen_params)
            picks = generator.sample(k_gen, gen_logits, config.negatives)  # [B, K]
            from_gen = jax.random.bernoulli(k_mix, 1.0 - config.lam, neg_index.shape)
            neg_index = jnp.where(from_gen, picks, neg_index)
            metrics["generated_fraction"] = from_gen.mean()
        neg_ids, neg_weights = candidates.ids[neg_index], candidates.weights[neg_index]  # [B, K, Tc]
    if mined:
        false_neg = is_false_negative(neg_index, batch)
        keep = ~false_neg

    def project(params, ids, weights):
        return s2net.project(params, ids, weights, config.activation)

    def mined_loss(params):
        query = project(params, batch.query_ids, batch.query_weights)  # [B, k]
        sim_pos = s2net.cosine(query, project(params, batch.positive_ids, batch.positive_weights))  # [B]
        sim_neg = s2net.cosine(query[:, None, :], project(params, neg_ids, neg_weights))  # [B, K]
        weights = keep.astype(sim_neg.dtype)
        if config.sampler == "self-adv":
            weights = self_adversarial_weights(sim_neg, keep, config.self_adv_temperature)
        per_query = (weights * pair_losses(config, sim_pos, sim_neg)).sum(-1)  # [B]
        if config.loss == "mse":
            per_query += losses.s2net_squared_loss(sim_pos, 1.0)
        return per_query.mean(), (query, sim_pos, sim_neg)

    def discriminator_loss(params):
        parts = {}
        if gold is not None:
            parts["gold_loss"] = gold_loss(config, params, gold)
        aux = None
        if mined:
            parts["mined_loss"], aux = mined_loss(params)
        return sum(parts.values()), (parts, aux)

    (loss, (parts, aux)), grads = jax.value_and_grad(discriminator_loss, has_aux=True)(state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    metrics.update(loss=loss, **parts)
    if mined:
        query, sim_pos, sim_neg = aux
        metrics.update(sim_pos=sim_pos.mean(), sim_neg=masked_mean(sim_neg, keep), false_negative_rate=false_neg.mean())
    new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state)
    if config.sampler != "ace":
        return new_state, metrics

    # The generator's move; rewards come from the discriminator before it moved, held fixed.
    query, sim_pos = jax.lax.stop_gradient(query), jax.lax.stop_gradient(sim_pos)
    pick_proj = project(state.params, candidates.ids[picks], candidates.weights[picks])  # [B, K, k]
    rewards = pair_losses(config, sim_pos, s2net.cosine(query[:, None, :], pick_proj))  # [B, K]
    rewards = jnp.where(is_false_negative(picks, batch), -config.false_negative_penalty, rewards)
    every_row = jnp.ones((num_rows,), bool)

    def generator_objective(logits):
        log_probs = generator.log_prob(logits, picks)  # [B, K]
        surrogate = reinforce.reinforce_surrogate(log_probs, rewards, state.baseline, jnp.ones_like(rewards))
        entropy = generator.entropy(logits)  # [B]
        penalty = reinforce.entropy_penalty(entropy, config.entropy_target, every_row)
        return surrogate + config.entropy_weight * penalty, entropy.mean()

    (gen_loss, gen_entropy), logit_grads = jax.value_and_grad(generator_objective, has_aux=True)(gen_logits)
    (gen_grads,) = logits_vjp(logit_grads)
    gen_updates, gen_opt_state = state.gen_tx.update(gen_grads, state.gen_opt_state, state.gen_params)
    baseline = reinforce.update_moving_average(state.baseline, rewards, jnp.ones(rewards.shape, bool), config.baseline_decay)
    metrics.update(gen_loss=gen_loss, gen_entropy=gen_entropy, reward=rewards.mean(), baseline=state.baseline)
    return new_state.replace(
        gen_params=optax.apply_updates(state.gen_params, gen_updates), gen_opt_state=gen_opt_state, baseline=baseline
    ), metrics
