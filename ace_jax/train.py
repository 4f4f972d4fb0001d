"""The ACE game: one TrainState for both players and a pure train step with two value_and_grad calls."""

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from ace_jax import cpu_kernels, generator, losses, noise as noise_lib, reinforce, sparse_optim
from ace_jax.scorers import skipgram

# One shared transform for "no generator": states built alike must have equal tree structures,
# or a jitted step would compile again for each (optax transforms compare by identity).
NO_GENERATOR_TX = optax.identity()
SAMPLERS = ("ns", "nce", "self-adv", "adv", "ace", "softmax", "hs")
BASELINES = ("none", "moving-average", "self-critical")
GENERATORS = ("exact", "pool", "kbgan")
KERNELS = ("auto", "xla")


@dataclasses.dataclass(frozen=True)
class GameConfig:
    """How negatives are drawn and scored, and how the generator learns.

    sampler: ns (negative sampling, λ = 1), nce, self-adv (Sun et al. 2019), adv (generator only,
      λ = 0), ace (mixture), softmax (full), hs (hierarchical softmax).
    negatives: K, negatives scored per positive pair, whatever their source.
    lam: ACE's λ, the probability that a negative comes from the noise rather than the generator.
    loss: per-negative discriminator loss, logistic (word2vec) or hinge with `margin`.
    generator: how g(y|x) is computed. exact: softmax over the whole vocabulary ([B, V] per step);
      pool: over `candidates` noise draws shared by the batch; kbgan: over `candidates` noise draws of
      each query's own (KBGAN-style). The last two subtract log q (see generator.candidate_logits), and
      their entropy, and so the entropy target, is over the candidates (at most log candidates).
    shared_negatives: batches hold windows in word2vec's orientation: queries [B, M] a centre's context
      words (−1 padded), positives [B, 1] the centre, mask [B, M] which contexts are real. Each context is
      its own query against the centre (as word2vec.c's and gensim's skip-gram), and the centre's K
      negatives are drawn once and serve its whole window (Ji et al. 2016, "Parallelizing Word2Vec in
      Shared and Distributed Memory"): a step reads M + 1 + K rows per centre instead of 1 + M(1 + K),
      and every negative is still scored against M different rows. The generator conditions on the
      mean of the window's rows (as CBOW's), and a negative's reward is its loss averaged over the window.
    kernel: auto: on a CPU, the discriminator's update (gather, scores, gradient, scatter-add) runs as one
      fused kernel (cpu_kernels) when the step allows it: plain row SGD (sparse_optim.sgd) on the logistic
      loss of ns, adv or ace (not with the self-critical baseline), with skip-gram pairs or shared-negative
      windows, on one device; it equals the XLA path. xla: always the XLA path. Other platforms always run the XLA path.
    """

    sampler: str = "ns"
    negatives: int = 5
    lam: float = 0.5
    loss: str = "logistic"
    margin: float = 1.0
    self_adv_temperature: float = 1.0
    baseline: str = "moving-average"
    baseline_decay: float = 0.99
    entropy_weight: float = 0.1
    entropy_target: float = 4.0  # nats; the unigram^0.75 noise over a 30k vocabulary has about 8
    false_negatives: str = "window"  # a negative is false when equal to any positive of its query ("window") or its own ("pair", word2vec)
    false_negative_penalty: float = 1.0
    off_policy: bool = False
    importance_clip: float = 10.0
    sparse_updates: bool = True
    generator: str = "exact"
    candidates: int = 1024
    gen_matmul_dtype: str = "float32"  # the exact generator's [B, V] product: float32 or bfloat16
    shared_negatives: bool = False  # word2vec-oriented windows: one set of K negatives per centre
    kernel: str = "auto"  # auto | xla

    def __post_init__(self):
        checks = [
            (self.sampler in SAMPLERS, f"sampler must be one of {', '.join(SAMPLERS)}, not {self.sampler!r}"),
            (self.baseline in BASELINES, f"baseline must be one of {', '.join(BASELINES)}, not {self.baseline!r}"),
            (self.loss in ("logistic", "hinge"), f"loss must be logistic or hinge, not {self.loss!r}"),
            (self.negatives >= 1, f"negatives must be at least 1, not {self.negatives}"),
            (0.0 <= self.lam <= 1.0, f"lambda must lie in [0, 1], not {self.lam}"),
            (0.0 <= self.baseline_decay < 1.0, "baseline_decay must lie in [0, 1)"),
            (not (self.sampler == "nce" and self.loss != "logistic"), "nce needs the logistic loss"),
            (self.false_negatives in ("pair", "window"), "false_negatives must be pair or window"),
            (self.generator in GENERATORS, f"generator must be one of {', '.join(GENERATORS)}, not {self.generator!r}"),
            (self.candidates >= 2, f"candidates must be at least 2, not {self.candidates}"),
            (self.gen_matmul_dtype in ("float32", "bfloat16"), "gen_matmul_dtype must be float32 or bfloat16"),
            (self.kernel in KERNELS, f"kernel must be one of {', '.join(KERNELS)}, not {self.kernel!r}"),
            (not (self.off_policy and self.generator != "exact"),
             "the off-policy term needs g(y|x) of noise draws: use it with the exact generator"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def uses_generator(self) -> bool:
        return self.sampler in ("adv", "ace")

    @property
    def noise_fraction(self) -> float:
        """λ: 1 for the noise-only samplers, 0 for ADV, `lam` for ACE."""
        return {"adv": 0.0, "ace": self.lam}.get(self.sampler, 1.0)


class Batch(flax.struct.PyTreeNode):
    """Observed pairs grouped by query, so the generator's softmax is computed once per query.

    queries: [B] int32 (skip-gram) or [B, M] int32 with −1 padding (CBOW's context bag).
    positives: [B, J] int32, the observed y+ of each query (−1 or anything where mask is false).
    mask: [B, J] bool, which (query, positive) pairs are real.
    """

    queries: jax.Array
    positives: jax.Array
    mask: jax.Array


class HuffmanTables(flax.struct.PyTreeNode):
    """Each word's path for hierarchical softmax: points [V, L] int32 (−1 pad), codes [V, L] int8."""

    points: jax.Array
    codes: jax.Array


class TrainState(flax.struct.PyTreeNode):
    step: jax.Array  # int32 scalar: steps taken; folded into `key` so every step draws fresh randomness
    key: jax.Array  # the base PRNG key of the game (never split in place)
    params: Any  # discriminator tables {"in": [V, d], "out": [V_out, d]}
    opt_state: Any  # discriminator optimiser state (optax's, or a sparse_optim.RowState)
    gen_params: Any  # generator tables ({} when the sampler has no generator)
    gen_opt_state: optax.OptState  # generator optimiser state
    baseline: jax.Array  # float32 scalar: moving average of the generator's reward
    pairs: jax.Array  # float32 scalar: positive pairs trained on so far (float32 counts exactly to 2**24, then to 1 part in 1e7)
    tx: optax.GradientTransformation | sparse_optim.RowOptimizer = flax.struct.field(pytree_node=False)
    gen_tx: optax.GradientTransformation | sparse_optim.RowOptimizer = flax.struct.field(pytree_node=False)


def create_train_state(
    key: jax.Array,
    params: Any,
    tx: optax.GradientTransformation | sparse_optim.RowOptimizer,
    gen_params: Any = None,
    gen_tx: optax.GradientTransformation | sparse_optim.RowOptimizer | None = None,
    *,
    sparse_updates: bool = True,
) -> TrainState:
    """Builds the state of both players.

    With sparse updates the discriminator's optimiser sees gradients of the gathered rows only: an optax
    transform must then keep no per-parameter state (SGD with a schedule), and a row optimiser
    (sparse_optim.sgd, adagrad, adam) keeps per-row state. Row optimisers need sparse updates.
    """
    opt_state = tx.init(params)
    if isinstance(tx, sparse_optim.RowOptimizer):
        if not sparse_updates:
            raise ValueError("a sparse_optim row optimiser needs sparse_updates=True; use its optax twin for dense updates")
    elif sparse_updates and any(jnp.ndim(leaf) > 0 for leaf in jax.tree_util.tree_leaves(opt_state)):
        raise ValueError("sparse updates need an optimiser without per-parameter state (e.g. optax.sgd) or a "
                         "sparse_optim row optimiser (adagrad, adam); or set sparse_updates=False")
    gen_params = {} if gen_params is None else gen_params
    gen_tx = NO_GENERATOR_TX if gen_tx is None else gen_tx
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        key=key,
        params=params,
        opt_state=opt_state,
        gen_params=gen_params,
        gen_opt_state=gen_tx.init(gen_params),
        baseline=jnp.zeros((), jnp.float32),
        pairs=jnp.zeros((), jnp.float32),
        tx=tx,
        gen_tx=gen_tx,
    )


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(mask, values, 0.0).sum() / jnp.maximum(mask.sum(), 1)


def self_adversarial_weights(neg: jax.Array, keep: jax.Array, temperature: float) -> jax.Array:
    """n · softmax(α s-) over the n kept negatives, held fixed (Sun et al. 2019, eq. 4); α → 0 gives 1 each."""
    logits = jnp.where(keep, temperature * jax.lax.stop_gradient(neg), -jnp.inf)
    weights = jax.nn.softmax(logits, axis=-1, where=keep)
    return jnp.where(keep, keep.sum(-1, keepdims=True) * weights, 0.0)


def negative_terms(config: GameConfig, pos: jax.Array, neg: jax.Array) -> tuple[jax.Array, jax.Array]:
    if config.loss == "hinge":
        return losses.hinge_terms(pos, neg, config.margin)
    return losses.logistic_terms(pos, neg)


def apply_row_updates(table: jax.Array, ids: jax.Array, updates: jax.Array) -> jax.Array:
    """Scatter-adds per-row updates: touches only the rows read this step, never the whole table."""
    return table.at[jnp.maximum(ids, 0)].add(updates.astype(table.dtype))


def update_discriminator(state: TrainState, loss_of_rows, query_ids, cand_ids, sparse: bool, rows_sharding=None):
    """One discriminator update from a loss written over gathered rows.

    loss_of_rows(query_rows, cand_rows) -> (loss, aux). Sparse: gradients of the rows, transformed
    (by a row optimiser, after summing repeated ids), then scatter-added. Dense: gradients of the whole
    tables through optax (the reference path). rows_sharding (many devices, batch split over them):
    where the touched rows and their gradients go before the update, replicated, so every device
    applies every row and a step moves rows between devices, never whole tables.
    """
    params = state.params

    def gathered(p):
        return p["in"][jnp.maximum(query_ids, 0)], p["out"][jnp.maximum(cand_ids, 0)]

    if sparse:
        (loss, aux), row_grads = jax.value_and_grad(loss_of_rows, argnums=(0, 1), has_aux=True)(*gathered(params))
        row_grads = {"in": row_grads[0], "out": row_grads[1]}
        if rows_sharding is not None:
            query_ids, cand_ids, row_grads = jax.lax.with_sharding_constraint((query_ids, cand_ids, row_grads), rows_sharding)
        if isinstance(state.tx, sparse_optim.RowOptimizer):
            ids, deltas, opt_state = state.tx.update({"in": query_ids, "out": cand_ids}, row_grads, state.opt_state)
            params = sparse_optim.apply_updates(params, ids, deltas)
        else:
            row_updates, opt_state = state.tx.update(row_grads, state.opt_state)
            params = {
                **params,
                "in": apply_row_updates(params["in"], query_ids, row_updates["in"]),
                "out": apply_row_updates(params["out"], cand_ids, row_updates["out"]),
            }
    else:
        (loss, aux), grads = jax.value_and_grad(lambda p: loss_of_rows(*gathered(p)), has_aux=True)(params)
        updates, opt_state = state.tx.update(grads, state.opt_state, params)
        params = optax.apply_updates(params, updates)
    return params, opt_state, loss, aux


def fused_kernel_applies(state: TrainState, batch: Batch, config: GameConfig, mesh) -> bool:
    """Whether the discriminator's update can run as the fused CPU kernel (GameConfig.kernel)."""
    # The self-critical baseline reads the old tables after the update, which makes XLA copy the tables
    # around an in-place update: 2 whole-table copies a step on the XLA path, 4 around the kernel.
    return (config.kernel == "auto" and config.sampler in ("ns", "adv", "ace") and config.loss == "logistic"
            and not (config.uses_generator and config.baseline == "self-critical")
            and config.sparse_updates and isinstance(state.tx, sparse_optim.RowOptimizer) and state.tx.name == "sgd"
            and (config.shared_negatives or batch.queries.ndim == 1)
            and all(state.params[name].dtype == jnp.float32 for name in ("in", "out"))
            and (mesh is None or mesh.size == 1) and cpu_kernels.available())


def fused_sgd_update(state: TrainState, queries: jax.Array, candidates: jax.Array, weights: jax.Array, split):
    """update_discriminator's result for row SGD on the logistic loss, from one kernel call: queries [N, M],
    candidates [N, C] (the positive first), weights [N, M, C]; split maps the logits to (pos, neg)."""
    opt_state = state.opt_state
    tables = cpu_kernels.sgns_update(state.params["in"], state.params["out"], queries, candidates, weights,
                                     opt_state.hyperparams["learning_rate"], state.tx.row_clip)
    params = {**state.params, "in": tables[0], "out": tables[1]}
    _, _, opt_state = state.tx.update({}, {}, opt_state)  # SGD's own bookkeeping (its step count)
    return params, opt_state, tables[3], split(tables[2])


def train_step(
    state: TrainState,
    batch: Batch,
    noise: noise_lib.NoiseDistribution,
    *,
    config: GameConfig,
    huffman: HuffmanTables | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> tuple[TrainState, dict]:
    """One move of each player. Pure; jit it once with `config` bound and donate the state.

    Returns the new state and a flat dict of scalar metrics. With a ("data", ...) mesh the queries are
    split over "data" (the generator's [B, V] logits with them) and XLA partitions the rest.
    """
    rows_sharding = None
    if mesh is not None:
        split = NamedSharding(mesh, P("data"))
        batch = jax.lax.with_sharding_constraint(batch, split)
        rows_sharding = NamedSharding(mesh, P())
    key = jax.random.fold_in(state.key, state.step)
    k_noise, k_mix, k_gen, k_pool = jax.random.split(key, 4)
    n_pairs = batch.mask.sum()
    metrics = {"pairs": n_pairs.astype(jnp.float32)}

    if config.sampler in ("softmax", "hs"):
        params, opt_state, loss = update_discriminator_exact(state, batch, config, huffman, rows_sharding)
        metrics["loss"] = loss / jnp.maximum(n_pairs, 1)
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                             pairs=state.pairs + n_pairs), metrics

    num_queries, num_pos = batch.positives.shape
    num_neg = config.negatives
    shared = config.shared_negatives
    if shared and (batch.queries.ndim != 2 or num_pos != 1 or batch.mask.shape != batch.queries.shape):
        raise ValueError("shared negatives need windows: queries [B, M], positives [B, 1], mask [B, M]; "
                         f"got {batch.queries.shape}, {batch.positives.shape}, {batch.mask.shape}")
    num_slots = 1 if shared else num_pos  # S: negative sets per query
    negatives = noise_lib.sample(noise, k_noise, (num_queries, num_slots, num_neg))  # [B, S, K]
    # Which negative slots serve a real pair: [B, S, 1].
    slot_valid = batch.mask.any(-1)[:, None, None] if shared else batch.mask[..., None]
    from_gen = jnp.zeros(negatives.shape, bool)
    if config.uses_generator:
        sparse_gen = isinstance(state.gen_tx, sparse_optim.RowOptimizer)
        draws, gen_logits, logits_vjp = generator_logits(state, batch, noise, k_pool, config, sparse_gen)
        if mesh is not None:
            gen_logits = jax.lax.with_sharding_constraint(gen_logits, split)
        picks = generator.sample(k_gen, gen_logits, num_slots * num_neg)  # [B, S·K]: ids (exact) or slots of the draws
        generated = picks if draws is None else slots_to_ids(draws, picks)
        from_gen = jax.random.bernoulli(k_mix, 1.0 - config.noise_fraction, negatives.shape)
        negatives = jnp.where(from_gen, generated.reshape(negatives.shape), negatives)
        # What the generator's log-probabilities are read at: its picks, and (exact only) the noise draws.
        choices = jnp.where(from_gen, picks.reshape(negatives.shape), negatives if draws is None else 0)

    if config.false_negatives == "window" and not shared:  # any observed positive of the query
        false_neg = ((negatives[..., None] == batch.positives[:, None, None, :])
                     & batch.mask[:, None, None, :]).any(-1)  # [B, S, K]
    else:  # word2vec's rule: only the pair's own positive (with shared negatives, the centre: the only one)
        false_neg = negatives == batch.positives[..., None]  # [B, S, K]
    # Pairs are [B, J] (J positives per query) or, with shared negatives, [B, M] (M contexts per centre).
    keep = batch.mask[..., None] & ~false_neg  # [B, J or M, K]
    # The rows each query scores: [B, J(1 + K)], or shared [B, 1 + K].
    candidates = jnp.concatenate([batch.positives[..., None], negatives], axis=-1).reshape(num_queries, -1)

    def split(x):
        """Logits over the candidates -> positives [B, J or M] and negatives [B, J or M, K]."""
        x = x.reshape(num_queries, -1, 1 + num_neg)
        return x[..., 0], x[..., 1:]

    if config.sampler == "nce":
        log_kq = split(jnp.log(float(num_neg)) + noise_lib.log_prob(noise, jnp.maximum(candidates, 0)))

    def discriminator_loss(query_rows, cand_rows):
        if shared:  # every context of a window against its centre and negatives: [B, M, 1 + K]
            logits = skipgram.score_members(query_rows, cand_rows)
        else:
            logits = skipgram.score_rows(skipgram.combine_query(query_rows, batch.queries >= 0), cand_rows)
        pos, neg = split(logits)  # [B, J or M], [B, J or M, K]
        if config.sampler == "nce":
            pos, neg = pos - log_kq[0], neg - log_kq[1]
        weights = keep.astype(pos.dtype)
        if config.sampler == "self-adv":
            weights = self_adversarial_weights(jnp.broadcast_to(neg, keep.shape), keep, config.self_adv_temperature)
        per_pair = losses.combine_terms(*negative_terms(config, pos, neg), weights)  # [B, J]
        # word2vec applies every pair's gradient at the full learning rate, so the batch loss is a sum.
        return jnp.where(batch.mask, per_pair, 0.0).sum(), (pos, neg)

    def update_with_xla():
        return update_discriminator(state, discriminator_loss, batch.queries, candidates, config.sparse_updates,
                                    rows_sharding)

    if fused_kernel_applies(state, batch, config, mesh):
        weights = jnp.concatenate([batch.mask[..., None], keep], axis=-1)  # [B, J or M, 1 + K]
        # Skip-gram pairs are windows of one query: [B·J, 1] against their own 1 + K candidates.
        queries = batch.queries if shared else jnp.repeat(batch.queries, num_pos).reshape(-1, 1)
        params, opt_state, loss, (pos, neg) = jax.lax.platform_dependent(
            cpu=lambda: fused_sgd_update(state, queries, candidates.reshape(queries.shape[0], -1),
                                         weights.reshape(queries.shape + (-1,)), split),
            default=update_with_xla)
    else:
        params, opt_state, loss, (pos, neg) = update_with_xla()
    metrics["loss"] = loss / jnp.maximum(n_pairs, 1)
    metrics["false_negative_rate"] = masked_mean(jnp.broadcast_to(false_neg, keep.shape),
                                                 jnp.broadcast_to(batch.mask[..., None], keep.shape))
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, pairs=state.pairs + n_pairs)
    if not config.uses_generator:
        return new_state, metrics

    # The generator's move: REINFORCE with the discriminator's loss on each negative as reward,
    # computed before the discriminator moved and held fixed.
    pos, neg = jax.lax.stop_gradient(pos), jax.lax.stop_gradient(neg)

    def per_slot(x):
        """Values of pairs [B, J or M, ...] -> of negative slots [B, S, ...]: a shared slot averages its window."""
        if not shared:
            return x
        w = batch.mask[..., None].astype(x.dtype)
        return (x * w).sum(1, keepdims=True) / jnp.maximum(w.sum(1, keepdims=True), 1)

    rewards = per_slot(negative_terms(config, pos, neg)[1])  # [B, S, K]
    rewards = jnp.where(false_neg, -config.false_negative_penalty, rewards)
    on_policy = from_gen & slot_valid
    baseline = state.baseline
    if config.baseline == "self-critical":
        greedy = jnp.argmax(gen_logits, axis=-1)  # [B]
        if draws is not None:
            greedy = slots_to_ids(draws, greedy[:, None])[:, 0]
        if shared:
            greedy_score = skipgram.score_members(state.params["in"][jnp.maximum(batch.queries, 0)],
                                                  state.params["out"][greedy][:, None])  # [B, M, 1]
        else:
            greedy_score = skipgram.score(state.params, batch.queries, greedy[:, None])[:, :, None]  # [B, 1, 1]
        greedy_score = jax.lax.stop_gradient(greedy_score)
        baseline = per_slot(negative_terms(config, pos, jnp.broadcast_to(greedy_score, pos.shape + (1,)))[1])
    elif config.baseline == "none":
        baseline = jnp.zeros(())
    row_valid = batch.mask.any(-1)  # [B]

    def generator_objective(logits):
        log_probs = generator.log_prob(logits, choices.reshape(num_queries, -1)).reshape(negatives.shape)
        surrogate = reinforce.reinforce_surrogate(log_probs, rewards, baseline, on_policy.astype(jnp.float32))
        if config.off_policy:
            # Noise draws estimate the same gradient when weighted by g(y|x) / p_nce(y).
            ratio = jnp.exp(log_probs - noise_lib.log_prob(noise, negatives))
            off_policy = ~from_gen & slot_valid  # false negatives included, with the penalty as reward
            weights = jnp.where(off_policy, jnp.minimum(ratio, config.importance_clip), 0.0)
            surrogate = surrogate + reinforce.reinforce_surrogate(log_probs, rewards, baseline, weights)
        entropy = generator.entropy(logits)  # [B]
        penalty = reinforce.entropy_penalty(entropy, config.entropy_target, row_valid)
        return surrogate + config.entropy_weight * penalty, masked_mean(entropy, row_valid)

    (gen_loss, gen_entropy), logit_grads = jax.value_and_grad(generator_objective, has_aux=True)(gen_logits)
    (gen_grads,) = logits_vjp(logit_grads)
    # A step with no pairs (past a pair budget) must leave the generator where it was, momentum included.
    moved = n_pairs > 0
    if sparse_gen:
        ids = {"query": batch.queries, "cand": draws, "bias": draws}
        ids = {name: jnp.where(moved, i, -1) for name, i in ids.items()}  # −1: no row is touched
        unique_ids, deltas, gen_opt_state = state.gen_tx.update(ids, gen_grads, state.gen_opt_state)
        gen_params = sparse_optim.apply_updates(state.gen_params, unique_ids, deltas)
    else:
        gen_updates, gen_opt_state = state.gen_tx.update(gen_grads, state.gen_opt_state, state.gen_params)
        gen_params = optax.apply_updates(state.gen_params, gen_updates)
        gen_params, gen_opt_state = jax.tree_util.tree_map(
            lambda new, old: jnp.where(moved, new, old), (gen_params, gen_opt_state), (state.gen_params, state.gen_opt_state))
    metrics["baseline"] = masked_mean(jnp.broadcast_to(baseline, rewards.shape), on_policy)  # the one used
    if config.baseline == "moving-average":
        baseline = reinforce.update_moving_average(state.baseline, rewards, on_policy, config.baseline_decay)
    else:
        baseline = state.baseline
    metrics.update(
        gen_loss=gen_loss,
        gen_entropy=gen_entropy,
        reward=masked_mean(rewards, on_policy),
        generated_fraction=masked_mean(from_gen, jnp.broadcast_to(slot_valid, from_gen.shape)),
    )
    return new_state.replace(gen_params=gen_params, gen_opt_state=gen_opt_state, baseline=baseline), metrics


def generator_logits(state: TrainState, batch: Batch, noise: noise_lib.NoiseDistribution, key: jax.Array,
                     config: GameConfig, sparse_gen: bool):
    """The generator's logits, its whole cost, computed once with their VJP kept for its update.

    Returns (draws, logits, vjp): exact: draws None, logits [B, V], the VJP at its parameters; pool /
    kbgan: the noise draws [n] or [B, n], logits [B, n] over them, and the VJP at the rows read when
    the generator's optimiser is a row optimiser (sparse_gen), else at its parameters.
    """
    if config.generator == "exact":
        if sparse_gen:
            raise ValueError("the exact generator reads every row: give it an optax transform")
        dtype = jnp.dtype(config.gen_matmul_dtype)
        return None, *jax.vjp(lambda p: generator.logits(p, batch.queries, dtype), state.gen_params)
    shape = (config.candidates,) if config.generator == "pool" else (batch.positives.shape[0], config.candidates)
    draws = noise_lib.sample(noise, key, shape)
    log_q = noise_lib.log_prob(noise, draws)

    def rows_of(params):
        return generator.candidate_rows(params, batch.queries, draws)

    def logits_of(x):
        return generator.candidate_logits(x if sparse_gen else rows_of(x), batch.queries >= 0, log_q)

    return draws, *jax.vjp(logits_of, rows_of(state.gen_params) if sparse_gen else state.gen_params)


def slots_to_ids(draws: jax.Array, slots: jax.Array) -> jax.Array:
    """Slots [B, m] of the generator's noise draws -> ids; draws [n] (a shared pool) or [B, n] (per query)."""
    if draws.ndim == 1:
        return draws[slots]
    return jnp.take_along_axis(draws, slots, axis=1)


def update_discriminator_exact(state: TrainState, batch: Batch, config: GameConfig, huffman: HuffmanTables | None,
                               rows_sharding=None):
    """Full softmax (dense over the vocabulary by nature) or hierarchical softmax (sparse over path nodes)."""
    if config.sampler == "softmax":
        if isinstance(state.tx, sparse_optim.RowOptimizer):
            raise ValueError("the full softmax updates whole tables: use an optax transform with sparse_updates=False")

        def loss_fn(params):
            logits = skipgram.score_all(params, batch.queries)  # [B, V]
            per_pair = jax.vmap(losses.softmax_cross_entropy, in_axes=(None, 1), out_axes=1)(
                logits, jnp.maximum(batch.positives, 0))  # [B, J]
            return jnp.where(batch.mask, per_pair, 0.0).sum()

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
        return optax.apply_updates(state.params, updates), opt_state, loss

    if huffman is None:
        raise ValueError("hierarchical softmax needs the Huffman tables")
    targets = jnp.maximum(batch.positives, 0)
    points, codes = huffman.points[targets], huffman.codes[targets]  # [B, J, L]
    on_path = (points >= 0) & batch.mask[..., None]

    def loss_of_rows(query_rows, node_rows):
        query = skipgram.combine_query(query_rows, batch.queries >= 0)
        logits = skipgram.score_rows(query, node_rows).reshape(points.shape)  # [B, J, L]
        per_pair = losses.hierarchical_softmax_loss(logits, codes, on_path)
        return jnp.where(batch.mask, per_pair, 0.0).sum(), None

    params, opt_state, loss, _ = update_discriminator(
        state, loss_of_rows, batch.queries, points.reshape(points.shape[0], -1), config.sparse_updates, rows_sharding)
    return params, opt_state, loss
