"""S2Net in the ACE game: paraphrase queries against their positive and K mined negatives (uniform, in-batch,
self-adversarial or ACE), scored by the cosine of projected term vectors, beside the paper's gold preferences."""

import dataclasses
import functools

import flax.struct
import jax
import jax.numpy as jnp

from ace_jax import game, generator, losses, reinforce, updates
from ace_jax.errors import check, one_of
from ace_jax.scorers import s2net

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
        check([
            (self.sampler in SAMPLERS, "sampler", self.sampler, one_of(SAMPLERS)),
            (self.loss in LOSSES, "loss", self.loss, one_of(LOSSES)),
            (self.negatives >= 1, "negatives", self.negatives, "{name} must be at least 1, not {value}"),
            (0.0 <= self.lam <= 1.0, "lam", self.lam, "{name} must lie in [0, 1], not {value}"),
            (0.0 <= self.baseline_decay < 1.0, "baseline_decay", self.baseline_decay,
             "{name} must lie in [0, 1), not {value}"),
            (self.entropy_weight >= 0, "entropy_weight", self.entropy_weight, "{name} must be at least 0, not {value}"),
            (self.activation in s2net.ACTIVATIONS, "activation", self.activation, one_of(s2net.ACTIVATIONS)),
        ])


class PairBatch(flax.struct.PyTreeNode):
    """B (query, positive) text pairs as padded term vectors (text_features.featurize).

    query_ids, query_weights: [B, Tq] int32 (−1 padding), float32.
    positive_ids, positive_weights: [B, Tp].
    positive_index: [B] int32, the positive's row in the candidate set, −1 if it is not there (in-batch
      negatives need it there: they are the other queries' positives, read from the candidates).
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
    """B text pairs with gold targets: ids1, weights1 [B, T1], ids2, weights2 [B, T2], and target [B], the gold
    score rescaled to [0, 1]."""

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


class Batch(flax.struct.PyTreeNode):
    """What one S2Net step reads: paraphrase queries and the texts their negatives come from (None, both, for
    the gold-only sampler), and gold preferences (None without them)."""

    pairs: PairBatch | None
    candidates: Candidates | None
    gold: Preferences | None = None


def init_generator(key: jax.Array, num_terms: int, dim: int, scale: float = 0.1) -> dict:
    """{"A": G [d, k_g]}, G_ij ~ N(0, scale²/k_g): logits (Gᵀf_q)·(Gᵀf_c) ≈ scale² f_q·f_c start near 0.

    A small scale keeps the first distribution close to uniform; at scale 1 the query itself
    (logit |f_q|², tens for tf-idf vectors) would take most of the mass.
    """
    return {"A": scale * jax.random.normal(key, (num_terms, dim)) / jnp.sqrt(dim)}


def generator_logits(gen_params: dict, pairs: PairBatch, candidates: Candidates) -> jax.Array:
    """g(n|q) = softmax_n((Gᵀf_q)·(Gᵀf_n)) over the C candidates: logits [B, C].

    The query's own row and its positive's (where known) get logit MASKED_LOGIT, probability 0:
    they are no negatives, and a generator that had to learn that from penalties would learn to
    avoid every text near the query, the very negatives it should find.
    """
    query = s2net.project(gen_params, pairs.query_ids, pairs.query_weights)  # [B, k_g]
    cands = s2net.project(gen_params, candidates.ids, candidates.weights)  # [C, k_g]
    rows = jnp.arange(candidates.ids.shape[0])
    own = (rows[None, :] == pairs.query_index[:, None]) | (rows[None, :] == pairs.positive_index[:, None])  # [B, C]
    return jnp.where(own, MASKED_LOGIT, query @ cands.T)


@dataclasses.dataclass(frozen=True)
class TextGenerator:
    """The generator part: `generator_logits` from its own projection G, an exact softmax over the candidates."""

    def propose(self, params, batch: Batch, noise_data, key, *, family, game, sparse: bool,
                disc=None) -> generator.Proposal:
        logits, vjp = jax.vjp(lambda p: generator_logits(p, batch.pairs, batch.candidates), params)
        return generator.Proposal(logits, vjp)


@dataclasses.dataclass(frozen=True)
class UniformTexts:
    """The noise part: candidate rows uniformly at random. (No log_prob: S2Net offers neither NCE's correction
    nor the off-policy term, the parts that would read it.)"""

    def sample(self, data, key: jax.Array, batch: Batch, shape: tuple[int, ...]) -> jax.Array:
        return jax.random.randint(key, shape, 0, batch.candidates.ids.shape[0], dtype=jnp.int32)


@dataclasses.dataclass(frozen=True)
class InBatch:
    """The noise part: for each query, min(K, B − 1) distinct other queries' positives, (i + o) mod B for
    offsets o drawn from 1..B−1 without replacement, shared by the batch: [B, 1, K']."""

    def sample(self, data, key: jax.Array, batch: Batch, shape: tuple[int, ...]) -> jax.Array:
        num_rows, num_neg = shape[0], shape[-1]
        if num_rows < 2:
            raise ValueError("in-batch negatives need a batch of at least 2 pairs")
        offsets = 1 + jax.random.permutation(key, num_rows - 1)[: min(num_neg, num_rows - 1)]  # [K']
        others = (jnp.arange(num_rows)[:, None] + offsets[None, :]) % num_rows  # [B, K']
        return batch.pairs.positive_index[others][:, None, :]


@dataclasses.dataclass(frozen=True)
class S2Net:
    """The family: sim(p, q) = cos(act(Aᵀf_p), act(Aᵀf_q)), one table {"A": [d, k]} read at the texts' term ids.
    Logits [B, 1, 1 + K]: each query against its positive and its K negatives (candidate rows)."""

    loss: object = losses.PairwiseLogistic()  # the game's loss part, also the gold preferences' loss
    activation: str = "none"

    def init(self, key: jax.Array, num_terms: int, dim: int, method: str = "random", ids=None, weights=None) -> dict:
        return s2net.init(key, num_terms, dim, method, ids, weights)

    def layout(self, batch: Batch) -> game.Layout:
        real = jnp.ones((batch.pairs.query_ids.shape[0], 1), bool)
        return game.Layout(pairs=real, slots=real)

    def rows(self, batch: Batch, negatives: jax.Array) -> dict:
        # The negatives' texts are read as [B, K, T], not [B, 1, K, T]: with the slot axis of one, XLA's CPU
        # gather and its gradient's scatter ran the whole step 7 times slower (200 steps: 13.6 s, not 1.9 s).
        p = batch.pairs
        ids = {"query": p.query_ids, "positive": p.positive_ids, "negative": batch.candidates.ids[negatives[:, 0]]}
        return {"A": {**ids, **({"gold": gold_ids(batch.gold)} if batch.gold is not None else {})}}

    def project(self, rows: jax.Array, ids: jax.Array, weights: jax.Array) -> jax.Array:
        """act(Σ_t w_t A_t) over gathered rows [..., T, k] -> [..., k] (s2net.project after its gather)."""
        weights = jnp.where(ids >= 0, weights, 0.0)
        return s2net.ACTIVATIONS[self.activation]((weights[..., None] * rows).sum(-2))

    def score(self, rows: dict, batch: Batch, negatives: jax.Array) -> jax.Array:
        a, p = rows["A"], batch.pairs
        query = self.project(a["query"], p.query_ids, p.query_weights)  # [B, k]
        positive = self.project(a["positive"], p.positive_ids, p.positive_weights)  # [B, k]
        negative = self.project(a["negative"], batch.candidates.ids[negatives[:, 0]],
                                batch.candidates.weights[negatives[:, 0]])  # [B, K, k]
        sim_pos = s2net.cosine(query, positive)[:, None]  # [B, 1]
        return jnp.concatenate([sim_pos, s2net.cosine(query[:, None, :], negative)], axis=-1)[:, None]  # [B, 1, 1 + K]

    def is_false(self, batch: Batch, negatives: jax.Array) -> jax.Array:
        """The query's own positive, or the query itself, where they are candidates: [B, 1, K]."""
        def same(index):
            return (index[:, None, None] >= 0) & (negatives == index[:, None, None])

        return same(batch.pairs.positive_index) | same(batch.pairs.query_index)

    def extra_loss(self, rows: dict, batch: Batch) -> dict:
        return {} if batch.gold is None else {"gold_loss": self.gold_loss(rows["A"]["gold"], batch.gold)}

    def gold_loss(self, rows: tuple, gold: Preferences) -> jax.Array:
        """Mean over the B preferences of l(sim(better) − sim(worse)), or of the two pairs' squared errors
        (losses.Squared); rows as `gold_ids` lists them."""
        def sim(first, second, pairs: GoldPairs) -> jax.Array:
            return s2net.cosine(self.project(first, pairs.ids1, pairs.weights1),
                                self.project(second, pairs.ids2, pairs.weights2))

        sim_better, sim_worse = sim(*rows[:2], gold.better), sim(*rows[2:], gold.worse)
        if isinstance(self.loss, losses.Squared):
            return (losses.s2net_squared_loss(sim_better, gold.better.target)
                    + losses.s2net_squared_loss(sim_worse, gold.worse.target)).mean()
        return self.loss(sim_better, sim_worse[:, None])[1][:, 0].mean()


def gold_ids(gold: Preferences) -> tuple:
    return gold.better.ids1, gold.better.ids2, gold.worse.ids1, gold.worse.ids2


def family_of(config: S2NetConfig) -> S2Net:
    loss = {"logistic": losses.PairwiseLogistic(config.gamma), "hinge": losses.Hinge(config.margin),
            "mse": losses.Squared()}[config.loss]
    return S2Net(loss, config.activation)


def game_parts(config: S2NetConfig) -> game.Game:
    """The sampler named by `config` as parts of the game: uniform draws over the candidates, or the batch's
    other positives; ACE mixes in the text generator; the discriminator's objective is the mean over queries."""
    return game.Game(
        negatives=config.negatives, noise=InBatch() if config.sampler == "in-batch" else UniformTexts(),
        generator=TextGenerator() if config.sampler == "ace" else None,
        lam=config.lam if config.sampler == "ace" else 1.0, loss=family_of(config).loss,
        weighting=losses.SelfAdversarial(config.self_adv_temperature) if config.sampler == "self-adv" else None,
        mean=True, baseline=reinforce.MovingAverage(config.baseline_decay), entropy_weight=config.entropy_weight,
        entropy_target=config.entropy_target, false_negative_penalty=config.false_negative_penalty)


def make_step(config: S2NetConfig):
    """step(state, batch: Batch) -> (state, metrics), A updated densely by its optax transform. Sampler none
    trains on the gold preferences alone (`gold_step`); every other plays the game (batch.gold optional)."""
    if config.sampler == "none":
        return lambda state, batch: gold_step(state, batch, family=family_of(config))
    play = functools.partial(game.step, family=family_of(config), game=game_parts(config), update=updates.dense)
    return lambda state, batch: play(state, batch, None)


def gold_step(state: game.GameState, batch: Batch, *, family: S2Net):
    """The paper's S2Net: one optax step on the gold preferences' loss."""
    if batch.gold is None:
        raise ValueError("sampler none learns from gold preferences only; pass gold")

    def loss_of_rows(rows):
        return family.gold_loss(rows["A"], batch.gold), None

    params, opt_state, loss, _ = updates.dense(state, {"A": gold_ids(batch.gold)}, loss_of_rows)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), {"loss": loss, "gold_loss": loss}
