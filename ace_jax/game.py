"""The ACE game, written once for every family: negatives from the λ-mixture of noise and a generator, the
discriminator's move on them, and the generator's REINFORCE move, in one pure step.

A family (ace_jax/families/: skip-gram and CBOW pairs, word2vec's windows, S2Net, or the toy in
tests/test_game.py) plugs in through the four functions of `Family`; a sampler is a choice of the parts in
`Game` (noise, generator, loss, weighting, NCE's correction, baseline); the discriminator's update
(updates.dense, updates.sparse, or a family's fused kernel) and any sharding are chosen before jit.
References: Bose, Ling & Cao 2018 (ACE), eq. 2-5.
"""

import dataclasses
from typing import Any, NamedTuple, Protocol

import flax.struct
import jax
import jax.numpy as jnp
import optax

from ace_jax import generator, losses, noise as noise_lib, reinforce, sparse_optim, updates

# One shared transform for "no generator": states built alike must have equal tree structures, or a jitted
# step would compile again for each (optax transforms compare by identity).
NO_GENERATOR_TX = optax.identity()


class GameState(flax.struct.PyTreeNode):
    step: jax.Array  # int32 scalar: steps taken; folded into `key` so every step draws fresh randomness
    key: jax.Array  # the base PRNG key of the game (never split in place)
    params: Any  # the discriminator's tables, e.g. {"in": [V, d], "out": [V_out, d]}
    opt_state: Any  # the discriminator's optimiser state (optax's, or a sparse_optim.RowState)
    gen_params: Any  # the generator's tables ({} when the sampler has no generator)
    gen_opt_state: optax.OptState  # the generator's optimiser state
    baseline: jax.Array  # float32 scalar: the baseline's state (reinforce.MovingAverage's running mean)
    pairs: jax.Array  # float32 scalar: positive pairs trained on so far (exact to 2**24, then to 1 part in 1e7)
    tx: optax.GradientTransformation | sparse_optim.RowOptimizer = flax.struct.field(pytree_node=False)
    gen_tx: optax.GradientTransformation | sparse_optim.RowOptimizer = flax.struct.field(pytree_node=False)


def create_state(key: jax.Array, params: Any, tx, gen_params: Any = None, gen_tx=None, *,
                 sparse_updates: bool = True, baseline: jax.Array | None = None) -> GameState:
    """Builds the state of both players; baseline: the first state of the game's baseline (Game.baseline.init()),
    zero if None.

    With sparse updates the discriminator's optimiser sees gradients of the gathered rows only: an optax
    transform must then keep no per-parameter state (SGD with a schedule), and a row optimiser
    (sparse_optim.sgd, adagrad, adam) keeps per-row state. Row optimisers need sparse updates.
    """
    opt_state = tx.init(params)
    if isinstance(tx, sparse_optim.RowOptimizer):
        if not sparse_updates:
            raise ValueError("a sparse_optim row optimiser needs sparse_updates=True; use its optax twin for dense "
                             "updates")
    elif sparse_updates and any(jnp.ndim(leaf) > 0 for leaf in jax.tree_util.tree_leaves(opt_state)):
        raise ValueError("sparse updates need an optimiser without per-parameter state (e.g. optax.sgd) or a "
                         "sparse_optim row optimiser (adagrad, adam); or set sparse_updates=False")
    gen_params = {} if gen_params is None else gen_params
    gen_tx = NO_GENERATOR_TX if gen_tx is None else gen_tx
    return GameState(step=jnp.zeros((), jnp.int32), key=key, params=params, opt_state=opt_state,
                     gen_params=gen_params, gen_opt_state=gen_tx.init(gen_params),
                     baseline=jnp.zeros((), jnp.float32) if baseline is None else baseline,
                     pairs=jnp.zeros((), jnp.float32), tx=tx, gen_tx=gen_tx)


class Layout(NamedTuple):
    """How a family lays out a batch of B queries.

    pairs: [B, P] bool, which (query, positive) pairs are real. The logits are [B, P, 1 + K]: each pair's
      positive, then the K negatives of its slot.
    slots: [B, S] bool, which negative slots serve a real pair: S = P (each pair its own negatives) or
      S = 1 (one set shared by all of a query's pairs, as word2vec's windows).
    weights: [B, P] float or None: each real pair's weight (0 where not real), the discriminator's objective then
      Σ w · loss / Σ w over pairs rather than the plain mean (or Σ w · loss, summed); None: 1 each.
    """

    pairs: jax.Array
    slots: jax.Array
    weights: jax.Array | None = None


class Family(Protocol):
    """A discriminator family: one signature for all of them (frozen dataclasses, so jit can hold them).

    Optional: candidates(batch, negatives) -> [B, P or 1, 1 + K] ids of every logit (for NCE's correction);
    generator_queries(batch) -> what a generator conditions on (generator.Exact, Pool, Kbgan, Tied);
    generator_rows(params, queries) -> (query vectors [B, d], candidate table [N, d]): the discriminator's rows
    generator.Tied reads;
    extra_loss(rows, batch) -> {name: scalar}, losses added to the discriminator's (S2Net's gold pairs);
    constrain(params, ids) -> params: puts the rows the step read (and so moved) back where the model keeps them
    (TransE's unit ball), after the discriminator's move.
    """

    def init(self, key: jax.Array, *sizes) -> dict: ...  # the discriminator's tables (sizes: the family's own)
    def layout(self, batch) -> Layout: ...
    def rows(self, batch, negatives: jax.Array) -> dict: ...  # {table: ids, any pytree}: the rows a step reads
    def score(self, rows: dict, batch, negatives: jax.Array) -> jax.Array: ...  # [B, P, 1 + K], positive first
    def is_false(self, batch, negatives: jax.Array) -> jax.Array: ...  # [B, S, K] bool: the false-negative rule


@dataclasses.dataclass(frozen=True)
class Game:
    """A sampler as a choice of parts. Defaults are word2vec's negative sampling (no generator)."""

    negatives: int = 5  # K per slot
    noise: Any = noise_lib.Fixed()  # sample(data, key, batch, shape), log_prob(data, ids)
    generator: Any = None  # generator.Exact / Pool / Kbgan, a family's own, or None
    learn_generator: bool = True  # False: the generator only proposes (a fixed distribution, e.g. self-adversarial)
    lam: float = 1.0  # λ: the probability a negative keeps its noise draw (ACE 0.5, ADV 0)
    loss: Any = losses.Logistic()  # terms(pos, neg) -> (positive term, one term per negative)
    weighting: Any = None  # losses.SelfAdversarial, or None: each kept negative weighs 1
    # the kept negatives' weights divided by their number: their terms averaged, as RotatE's eq. 5 (weights summing
    # to 1), not summed as word2vec's; updates.sparse and dense only (a fused update reads no weights)
    average_negatives: bool = False
    nce: bool = False  # NCE's correction: every score minus log(K · q(y))
    mean: bool = False  # the discriminator's objective is the mean over pairs, not the sum (word2vec's)
    baseline: Any = reinforce.MovingAverage()
    entropy_weight: float = 0.1
    entropy_target: float = 4.0  # nats
    false_negative_penalty: float = 1.0  # a false negative's reward is −penalty
    # The generator's reward for a negative: the discriminator's loss on it (ACE's), or its score (KBGAN's −f_D,
    # which does not vanish where a margin loss does).
    reward: str = "loss"
    off_policy: bool = False  # also REINFORCE on noise draws, weighted by g(y|x) / q(y) (clipped)
    importance_clip: float = 10.0
    # pos_score and neg_score each step: the mean score of real positives and of kept negatives. word2vec's
    # noise-only speed paths leave them out: the two reductions cost 4-8 % of a shared-negative CPU step.
    score_metrics: bool = True

    def __post_init__(self):
        if self.reward not in ("loss", "score"):
            raise ValueError(f"reward must be 'loss' or 'score', not {self.reward!r}")


def step(state: GameState, batch, noise, *, family, game: Game, update=updates.sparse) -> tuple[GameState, dict]:
    """One move of each player. Pure: jit it with family, game and update bound, and donate the state.

    noise is the data the noise part draws from (word2vec's alias tables; None where the part needs none).
    Returns the new state and a flat dict of scalar metrics.
    """
    keys = jax.random.split(jax.random.fold_in(state.key, state.step), 4)  # noise, mixture, generator, its draws
    layout = family.layout(batch)
    n_pairs = layout.pairs.sum()
    negatives, from_gen, choices, proposal = mix_negatives(state, batch, noise, layout, keys, family, game)
    false_neg = family.is_false(batch, negatives)  # [B, S, K]
    keep = layout.pairs[..., None] & ~false_neg  # [B, P, K]
    offset = nce_offset(family, game, batch, negatives, noise) if game.nce else 0.0  # [B, P or 1, 1 + K]

    def loss_of_rows(rows):  # player 1's loss, over the rows it reads
        logits = family.score(rows, batch, negatives) - offset  # [B, P, 1 + K]
        pos, neg = logits[..., 0], logits[..., 1:]
        weights = keep.astype(neg.dtype) if game.weighting is None else game.weighting(neg, keep)
        if game.average_negatives:
            weights = weights / jnp.maximum(keep.sum(-1, keepdims=True), 1)
        per_pair = jnp.where(layout.pairs, losses.combine_terms(*game.loss(pos, neg), weights), 0.0)
        if layout.weights is None:
            total, norm = per_pair.sum(), jnp.maximum(n_pairs, 1)
        else:
            total, norm = (layout.weights * per_pair).sum(), jnp.maximum(layout.weights.sum(), 1e-30)
        mined, extra = total / norm, extra_losses(family, rows, batch)
        objective = (mined if game.mean else total) + sum(extra.values())  # word2vec: the sum, every pair at full rate
        return objective, (logits, {"mined_loss": mined, **extra})

    term_weights = jnp.concatenate([layout.pairs[..., None], keep], axis=-1)  # [B, P, 1 + K], for a fused update
    ids = family.rows(batch, negatives)
    params, opt_state, _, (logits, parts) = update(state, ids, loss_of_rows, term_weights)
    if hasattr(family, "constrain"):
        params = family.constrain(params, ids)
    logits = jax.lax.stop_gradient(logits)
    metrics = discriminator_metrics(logits, parts, layout, keep, false_neg, game.score_metrics)
    moved = state.replace(step=state.step + 1, params=params, opt_state=opt_state, pairs=state.pairs + n_pairs)
    if game.generator is None or not game.learn_generator:
        return moved, metrics

    # Player 2: REINFORCE on the negatives the generator gave (its draws the mixture kept), each rewarded
    # with the discriminator's loss on it (or its score) before its move, held fixed; a false negative earns −penalty.
    rewards = to_slots(negative_rewards(game, logits), layout)  # [B, S, K]
    rewards = jnp.where(false_neg, -game.false_negative_penalty, rewards)
    on_policy = from_gen & layout.slots[..., None]
    baseline = game.baseline.value(state.baseline, lambda: greedy_rewards(state, batch, proposal, layout, family, game))
    row_valid = layout.slots.any(-1)  # [B]

    def generator_objective(logits):
        log_probs = generator.log_prob(logits, choices.reshape(logits.shape[0], -1)).reshape(rewards.shape)
        surrogate = reinforce.reinforce_surrogate(log_probs, rewards, baseline, on_policy.astype(jnp.float32))
        if game.off_policy:  # noise draws estimate the same gradient, weighted by g(y|x) / q(y)
            ratio = jnp.exp(log_probs - game.noise.log_prob(noise, negatives))
            off_policy = ~from_gen & layout.slots[..., None]  # false negatives included, the penalty as reward
            weights = jnp.where(off_policy, jnp.minimum(ratio, game.importance_clip), 0.0)
            surrogate = surrogate + reinforce.reinforce_surrogate(log_probs, rewards, baseline, weights)
        entropy = generator.entropy(logits)  # [B]
        penalty = reinforce.entropy_penalty(entropy, game.entropy_target, row_valid)
        return surrogate + game.entropy_weight * penalty, masked_mean(entropy, row_valid)

    (gen_loss, gen_entropy), logit_grads = jax.value_and_grad(generator_objective, has_aux=True)(proposal.logits)
    gen_params, gen_opt_state = move_generator(state, proposal, proposal.vjp(logit_grads)[0], n_pairs > 0)
    metrics.update(gen_loss=gen_loss, gen_entropy=gen_entropy, reward=masked_mean(rewards, on_policy),
                   baseline=masked_mean(jnp.broadcast_to(baseline, rewards.shape), on_policy),  # the one used
                   generated_fraction=masked_mean(from_gen, jnp.broadcast_to(layout.slots[..., None], from_gen.shape)))
    return moved.replace(gen_params=gen_params, gen_opt_state=gen_opt_state,
                         baseline=game.baseline.update(state.baseline, rewards, on_policy)), metrics


def mix_negatives(state: GameState, batch, noise, layout: Layout, keys, family, game: Game):
    """K negatives per slot, [B, S, K]: noise draws, each replaced by a generator draw with probability 1 − λ.

    Returns (negatives, from_gen [B, S, K] bool, choices, proposal): choices are the columns of the
    generator's logits its log-probabilities are read at (its picks; the noise ids where the columns are
    ids, for the off-policy term); proposal is the generator's (None without one).
    """
    k_noise, k_mix, k_gen, k_draws = keys
    negatives = game.noise.sample(noise, k_noise, batch, layout.slots.shape + (game.negatives,))  # [B, S, K]
    if game.generator is None:
        return negatives, jnp.zeros(negatives.shape, bool), None, None
    sparse = isinstance(state.gen_tx, sparse_optim.RowOptimizer)
    proposal = game.generator.propose(state.gen_params, batch, noise, k_draws, family=family, game=game,
                                      sparse=sparse, disc=state.params)
    if game.off_policy and proposal.draws is not None:
        raise ValueError("the off-policy term reads g(y|x) at the noise draws: use it with an exact generator")
    picks = generator.sample(k_gen, proposal.logits, negatives.shape[1] * negatives.shape[2])  # [B, S·K] columns
    from_gen = noise_lib.uniforms(k_mix, negatives.shape) < 1.0 - game.lam  # hashed: no threefry loop
    negatives = jnp.where(from_gen, proposal.ids(picks).reshape(negatives.shape), negatives)
    choices = jnp.where(from_gen, picks.reshape(negatives.shape), negatives if proposal.draws is None else 0)
    return negatives, from_gen, choices, proposal


def nce_offset(family, game: Game, batch, negatives: jax.Array, noise) -> jax.Array:
    """log(K · q(y)) of every logit's id, [B, P or 1, 1 + K]: NCE scores s − log(K q(y)) (Mnih & Teh 2012)."""
    ids = family.candidates(batch, negatives)
    return jnp.log(float(negatives.shape[-1])) + game.noise.log_prob(noise, jnp.maximum(ids, 0))


def extra_losses(family, rows: dict, batch) -> dict:
    return family.extra_loss(rows, batch) if hasattr(family, "extra_loss") else {}


def to_slots(values: jax.Array, layout: Layout) -> jax.Array:
    """Values of pairs [B, P, ...] -> of negative slots [B, S, ...]: a slot shared by a query's pairs averages them."""
    if layout.slots.shape[1] == layout.pairs.shape[1]:
        return values
    w = layout.pairs[..., None].astype(values.dtype)
    return (values * w).sum(1, keepdims=True) / jnp.maximum(w.sum(1, keepdims=True), 1)


def greedy_rewards(state: GameState, batch, proposal, layout: Layout, family, game: Game) -> jax.Array:
    """The reward [B, S, 1] of the generator's most likely choice for each query, under the discriminator
    before its move: the self-critical baseline's value."""
    greedy = proposal.ids(jnp.argmax(proposal.logits, axis=-1)[:, None])  # [B, 1]
    ids = jnp.broadcast_to(greedy[:, None, :], layout.slots.shape + (1,))  # [B, S, 1]
    logits = family.score(updates.gather(state.params, family.rows(batch, ids)), batch, ids)  # [B, P, 2]
    return jax.lax.stop_gradient(to_slots(negative_rewards(game, logits), layout))


def negative_rewards(game: Game, logits: jax.Array) -> jax.Array:
    """Each negative's reward from logits [..., 1 + K] (the positive first): the loss term on it, or its score."""
    return logits[..., 1:] if game.reward == "score" else game.loss(logits[..., 0], logits[..., 1:])[1]


def move_generator(state: GameState, proposal, grads, moved: jax.Array):
    """The generator's optimiser step; a step with no pairs (past a pair budget) leaves it where it was,
    momentum included."""
    if proposal.rows is not None:  # row-sparse: −1 ids touch no row
        ids = jax.tree.map(lambda i: jnp.where(moved, i, -1), proposal.rows)
        return updates.apply_gradients(state.gen_tx, state.gen_params, state.gen_opt_state, grads, ids)
    new = updates.apply_gradients(state.gen_tx, state.gen_params, state.gen_opt_state, grads)
    return jax.tree.map(lambda a, b: jnp.where(moved, a, b), new, (state.gen_params, state.gen_opt_state))


def discriminator_metrics(logits: jax.Array, parts: dict, layout: Layout, keep: jax.Array, false_neg: jax.Array,
                          scores: bool) -> dict:
    """loss (mean per pair, plus any extra losses, listed beside it), pairs, the false-negative rate, and
    (scores) the mean score of the real positives and of the kept negatives."""
    slots = jnp.broadcast_to(layout.pairs[..., None], keep.shape)
    metrics = {"loss": sum(parts.values()), "pairs": layout.pairs.sum().astype(jnp.float32),
               "false_negative_rate": masked_mean(jnp.broadcast_to(false_neg, keep.shape), slots)}
    if scores:
        metrics.update(pos_score=masked_mean(logits[..., 0], layout.pairs),
                       neg_score=masked_mean(logits[..., 1:], keep))
    return {**metrics, **(parts if len(parts) > 1 else {})}


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(mask, values, 0.0).sum() / jnp.maximum(mask.sum(), 1)
