"""Word embeddings in the ACE game: skip-gram and CBOW pairs, word2vec's windows with shared negatives, the
fused CPU kernel, and the exact losses (full and hierarchical softmax) beside them."""

import dataclasses
import functools

import flax.struct
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

from ace_jax import cpu_kernels, game, generator, losses, noise, reinforce, sparse_optim, updates
from ace_jax.errors import check, one_of
from ace_jax.scorers import skipgram

SAMPLERS = ("ns", "nce", "self-adv", "adv", "ace", "softmax", "hs")
BASELINES = ("none", "moving-average", "self-critical")
GENERATORS = ("exact", "pool", "kbgan")
GEN_TABLES = ("own", "discriminator")
KERNELS = ("auto", "xla")


@dataclasses.dataclass(frozen=True)
class GameConfig:
    """How a word game draws and scores negatives, and how its generator learns (saved in config.json).

    sampler: ns (negative sampling, λ = 1), nce, self-adv (Sun et al. 2019), adv (generator only,
      λ = 0), ace (mixture), softmax (full), hs (hierarchical softmax).
    negatives: K, negatives scored per positive pair, whatever their source.
    lam: ACE's λ, the probability that a negative comes from the noise rather than the generator.
    loss: per-negative discriminator loss, logistic (word2vec) or hinge with `margin`.
    generator: how g(y|x) is computed. exact: softmax over the whole vocabulary ([B, V] per step);
      pool: over `candidates` noise draws shared by the batch; kbgan: over `candidates` noise draws of
      each query's own (KBGAN-style). The last two subtract log q (see generator.candidate_logits), and
      their entropy, and so the entropy target, is over the candidates (at most log candidates).
    gen_tables: own: the generator scores with its own tables, a_x · b_y + c_y (the paper's form); discriminator:
      with the discriminator's current rows, detached, β u_x · v_y + c_y, learning only β (from 1 /
      gen_temperature, capped per query to keep its entropy at gen_min_entropy nats; with pool or kbgan over the
      draws, so a floor at or above log candidates holds β at 0 and leaves a learned bias alone) and the bias c
      (generator.Tied).
    shared_negatives: batches hold windows in word2vec's orientation (the Windows family): one set of K
      negatives per centre, shared by its window's contexts (Ji et al. 2016, "Parallelizing Word2Vec in
      Shared and Distributed Memory"): a step reads M + 1 + K rows per centre instead of 1 + M(1 + K).
    kernel: auto: on a CPU, the discriminator's update (gather, scores, gradient, scatter-add) runs as one
      fused kernel (cpu_kernels) where the step allows it (`fuses`); it equals the XLA path. xla: never.
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
    false_negatives: str = "window"  # false: equal to any positive of its query (window), or its own (pair, word2vec)
    false_negative_penalty: float = 1.0
    off_policy: bool = False
    importance_clip: float = 10.0
    sparse_updates: bool = True
    generator: str = "exact"
    candidates: int = 1024
    gen_matmul_dtype: str = "float32"  # the exact generator's [B, V] product: float32 or bfloat16
    gen_tables: str = "own"  # own | discriminator
    gen_temperature: float = 1.0  # the discriminator-reading generator's first temperature T = 1 / β
    gen_min_entropy: float = 0.0  # its entropy floor in nats, each query's β capped to keep it (0: none)
    shared_negatives: bool = False  # word2vec-oriented windows: one set of K negatives per centre
    kernel: str = "auto"  # auto | xla

    def __post_init__(self):
        check([
            (self.sampler in SAMPLERS, "sampler", self.sampler, one_of(SAMPLERS)),
            (self.baseline in BASELINES, "baseline", self.baseline, one_of(BASELINES)),
            (self.loss in ("logistic", "hinge"), "loss", self.loss, one_of(("logistic", "hinge"))),
            (self.negatives >= 1, "negatives", self.negatives, "{name} must be at least 1, not {value}"),
            (0.0 <= self.lam <= 1.0, "lam", self.lam, "{name} must lie in [0, 1], not {value}"),
            (0.0 <= self.baseline_decay < 1.0, "baseline_decay", self.baseline_decay,
             "{name} must lie in [0, 1), not {value}"),
            (not (self.sampler == "nce" and self.loss != "logistic"), "loss", self.loss,
             "{name} must be logistic with the nce sampler, not {value!r}"),
            (self.false_negatives in ("pair", "window"), "false_negatives", self.false_negatives,
             one_of(("pair", "window"))),
            (self.generator in GENERATORS, "generator", self.generator, one_of(GENERATORS)),
            (self.gen_tables in GEN_TABLES, "gen_tables", self.gen_tables, one_of(GEN_TABLES)),
            (self.gen_temperature > 0, "gen_temperature", self.gen_temperature,
             "{name} must be positive, not {value}"),
            (self.gen_min_entropy >= 0, "gen_min_entropy", self.gen_min_entropy,
             "{name} must be at least 0, not {value}"),
            (self.candidates >= 2, "candidates", self.candidates, "{name} must be at least 2, not {value}"),
            (self.gen_matmul_dtype in ("float32", "bfloat16"), "gen_matmul_dtype", self.gen_matmul_dtype,
             one_of(("float32", "bfloat16"))),
            (self.kernel in KERNELS, "kernel", self.kernel, one_of(KERNELS)),
            (self.entropy_weight >= 0, "entropy_weight", self.entropy_weight, "{name} must be at least 0, not {value}"),
            (not (self.off_policy and self.generator != "exact"), "off_policy", self.off_policy,
             "{name} needs g(y|x) of noise draws: use it with the exact generator"),
        ])

    @property
    def uses_generator(self) -> bool:
        return self.sampler in ("adv", "ace")

    @property
    def noise_fraction(self) -> float:
        """λ: 1 for the noise-only samplers, 0 for ADV, `lam` for ACE."""
        return {"adv": 0.0, "ace": self.lam}.get(self.sampler, 1.0)


class Batch(flax.struct.PyTreeNode):
    """Observed pairs grouped by query, so the generator's softmax is computed once per query.

    queries: [B] int32 (skip-gram) or [B, M] int32 with −1 padding (CBOW's context bag, or a window's contexts).
    positives: [B, J] int32, the observed y+ of each query (−1 or anything where mask is false).
    mask: [B, J] bool, which (query, positive) pairs are real ([B, M] for windows: which contexts are real).
    known: [B, k] int32 or None: ids the corpus pairs with each query row (cooccurrence.known_positives, −1
      padding), false negatives of that row wherever they are drawn: a centre's own, or for a window or a bag the
      union of its contexts' (`known_of`).
    """

    queries: jax.Array
    positives: jax.Array
    mask: jax.Array
    known: jax.Array | None = None


class HuffmanTables(flax.struct.PyTreeNode):
    """Each word's path for hierarchical softmax: points [V, L] int32 (−1 pad), codes [V, L] int8."""

    points: jax.Array
    codes: jax.Array


@dataclasses.dataclass(frozen=True)
class Pairs:
    """Skip-gram (queries [B]) or CBOW (queries [B, M], the mean of the context rows) against J positives per
    query, each pair with its own K negatives: logits [B, J, 1 + K]. Tables {"in": [V, d], "out": [V, d]}."""

    false_negatives: str = "window"  # false: equal to any positive of the query (window), or its own (pair)

    def init(self, key: jax.Array, vocab_size: int, dim: int, num_outputs: int | None = None) -> dict:
        return skipgram.init(key, vocab_size, dim, num_outputs)

    def layout(self, batch: Batch) -> game.Layout:
        return game.Layout(pairs=batch.mask, slots=batch.mask)

    def candidates(self, batch: Batch, negatives: jax.Array) -> jax.Array:
        return jnp.concatenate([batch.positives[..., None], negatives], axis=-1)  # [B, J, 1 + K]

    def rows(self, batch: Batch, negatives: jax.Array) -> dict:
        return {"in": batch.queries, "out": self.candidates(batch, negatives).reshape(batch.positives.shape[0], -1)}

    def score(self, rows: dict, batch: Batch, negatives: jax.Array) -> jax.Array:
        query = skipgram.combine_query(rows["in"], batch.queries >= 0)  # [B, d]
        return skipgram.score_rows(query, rows["out"]).reshape(batch.positives.shape + (-1,))

    def is_false(self, batch: Batch, negatives: jax.Array) -> jax.Array:
        if self.false_negatives == "pair":  # word2vec.c's `if (target == word) continue`
            false = negatives == batch.positives[..., None]
        else:
            false = ((negatives[..., None] == batch.positives[:, None, None, :])
                     & batch.mask[:, None, None, :]).any(-1)
        return false | known_false(batch, negatives)

    def generator_queries(self, batch: Batch) -> jax.Array:
        return batch.queries

    def generator_rows(self, params: dict, queries: jax.Array) -> tuple[jax.Array, jax.Array]:
        return skipgram.embed_queries(params["in"], queries), params["out"]


@dataclasses.dataclass(frozen=True)
class Windows(Pairs):
    """word2vec's orientation with shared negatives: queries [B, M] a centre's contexts (−1 padded), positives
    [B, 1] the centre, mask [B, M] the real contexts. Each context is its own query against the centre and the
    K negatives drawn once for its window: logits [B, M, 1 + K]. A negative is false when it is the centre, or a
    known positive of any of the window's contexts (it stands in for the centre beside every one of them).
    The generator conditions on the mean of the window's rows (as CBOW's)."""

    def layout(self, batch: Batch) -> game.Layout:
        if batch.queries.ndim != 2 or batch.positives.shape[1] != 1 or batch.mask.shape != batch.queries.shape:
            raise ValueError("shared negatives need windows: queries [B, M], positives [B, 1], mask [B, M]; "
                             f"got {batch.queries.shape}, {batch.positives.shape}, {batch.mask.shape}")
        return game.Layout(pairs=batch.mask, slots=batch.mask.any(-1, keepdims=True))

    def score(self, rows: dict, batch: Batch, negatives: jax.Array) -> jax.Array:
        return skipgram.score_members(rows["in"], rows["out"])  # [B, M, 1 + K]

    def is_false(self, batch: Batch, negatives: jax.Array) -> jax.Array:
        return (negatives == batch.positives[..., None]) | known_false(batch, negatives)


def known_of(table: jax.Array, queries: jax.Array) -> jax.Array:
    """Batch.known for queries [B] (a centre's known positives, table [V, k]) or [B, M] (a window's or a bag's:
    the union of its real contexts', [B, M·k]); −1 where a query is padding."""
    rows = jnp.where((queries >= 0)[..., None], table[jnp.maximum(queries, 0)], -1)
    return rows.reshape(queries.shape[0], -1)


def known_false(batch: Batch, negatives: jax.Array) -> jax.Array:
    """[B, S, K]: which negatives are known positives of their row (all false without Batch.known)."""
    if batch.known is None:
        return jnp.zeros(negatives.shape, bool)
    return (negatives[..., None] == batch.known[:, None, None, :]).any(-1)  # −1 padding never equals a drawn id


def game_parts(config: GameConfig) -> game.Game:
    """The sampler named by `config` as parts of the game."""
    if config.gen_tables == "discriminator":
        candidates = None if config.generator == "exact" else config.candidates
        gen = generator.Tied(candidates, config.generator == "kbgan", config.gen_matmul_dtype, config.gen_min_entropy)
    else:
        gen = {"exact": generator.Exact(config.gen_matmul_dtype), "pool": generator.Pool(config.candidates),
               "kbgan": generator.Kbgan(config.candidates)}[config.generator]
    baseline = {"none": reinforce.NoBaseline(), "moving-average": reinforce.MovingAverage(config.baseline_decay),
                "self-critical": reinforce.SelfCritical()}[config.baseline]
    return game.Game(
        negatives=config.negatives, noise=noise.Fixed(), generator=gen if config.uses_generator else None,
        lam=config.noise_fraction, loss=losses.Hinge(config.margin) if config.loss == "hinge" else losses.Logistic(),
        weighting=losses.SelfAdversarial(config.self_adv_temperature) if config.sampler == "self-adv" else None,
        nce=config.sampler == "nce", baseline=baseline, entropy_weight=config.entropy_weight,
        entropy_target=config.entropy_target, false_negative_penalty=config.false_negative_penalty,
        off_policy=config.off_policy, importance_clip=config.importance_clip, score_metrics=config.uses_generator)


def fuses(config: GameConfig, state: game.GameState, layout: str, mesh=None) -> bool:
    """Whether the discriminator's update can run as the fused CPU kernel (GameConfig.kernel): plain row SGD
    (sparse_optim.sgd) on the logistic loss of ns, adv or ace, with skip-gram pairs or windows (not CBOW), float32
    tables, on one device, and not with the self-critical baseline, which reads the old tables after the update
    and so makes XLA copy the tables around an in-place write (2 whole-table copies a step, 4 around the kernel)."""
    return (config.kernel == "auto" and config.sampler in ("ns", "adv", "ace") and config.loss == "logistic"
            and not (config.uses_generator and config.baseline == "self-critical")
            and config.sparse_updates and isinstance(state.tx, sparse_optim.RowOptimizer) and state.tx.name == "sgd"
            and layout in ("skipgram", "windows")
            and all(state.params[name].dtype == jnp.float32 for name in ("in", "out"))
            and (mesh is None or mesh.size == 1) and cpu_kernels.available())


def fused_sgd(state: game.GameState, ids: dict, loss_of_rows, term_weights: jax.Array):
    """updates.sparse's result for row SGD on the logistic loss, from one call of the CPU kernel; other
    platforms run updates.sparse. ids {"in": queries [B] or [B, M], "out": candidates}; term_weights
    [B, P, 1 + K] weigh each logit's term (0 drops it)."""

    def kernel():
        queries = ids["in"]
        if queries.ndim == 1:  # skip-gram pairs: each pair a window of one query against its own 1 + K candidates
            queries = jnp.repeat(queries, term_weights.shape[1]).reshape(-1, 1)
        tables = cpu_kernels.sgns_update(state.params["in"], state.params["out"], queries,
                                         ids["out"].reshape(queries.shape[0], -1),
                                         term_weights.reshape(queries.shape + (-1,)),
                                         state.opt_state.hyperparams["learning_rate"], state.tx.row_clip)
        _, _, opt_state = state.tx.update({}, {}, state.opt_state)  # SGD's own bookkeeping (its step count)
        mined = tables[3] / jnp.maximum(term_weights[..., 0].sum(), 1)
        params = {**state.params, "in": tables[0], "out": tables[1]}
        return params, opt_state, tables[3], (tables[2].reshape(term_weights.shape), {"mined_loss": mined})

    return jax.lax.platform_dependent(cpu=kernel, default=lambda: updates.sparse(state, ids, loss_of_rows))


def make_step(config: GameConfig, state: game.GameState, *, model: str = "skipgram", mesh=None):
    """The word step for `config`, its speed paths chosen here, before jit:
    step(state, batch, noise, huffman=None) -> (state, metrics).

    model: skipgram or cbow (what the batches hold). state: any state of the run (its optimisers and dtypes
    choose the update). mesh: with many devices, the touched rows and their gradients are gathered to every
    device before the scatter-add (updates.sparse's rows_sharding).
    """
    rows_sharding = None if mesh is None else NamedSharding(mesh, P())
    update = functools.partial(updates.sparse, rows_sharding=rows_sharding) if config.sparse_updates else updates.dense
    if config.sampler == "softmax":
        return softmax_step
    if config.sampler == "hs":
        return functools.partial(hs_step, update=update)
    layout = "windows" if config.shared_negatives else model
    if fuses(config, state, layout, mesh):
        update = fused_sgd
    family = Windows() if config.shared_negatives else Pairs(config.false_negatives)
    play = functools.partial(game.step, family=family, game=game_parts(config), update=update)
    return lambda state, batch, noise, huffman=None: play(state, batch, noise)


def softmax_step(state: game.GameState, batch: Batch, noise=None, huffman=None):
    """Full softmax over the output table (dense by nature: every row moves)."""
    if isinstance(state.tx, sparse_optim.RowOptimizer):
        raise ValueError("the full softmax updates whole tables: use an optax transform with sparse_updates=False")

    def loss_fn(params):
        logits = skipgram.score_all(params, batch.queries)  # [B, V]
        per_pair = jax.vmap(losses.softmax_cross_entropy, in_axes=(None, 1), out_axes=1)(
            logits, jnp.maximum(batch.positives, 0))  # [B, J]
        return jnp.where(batch.mask, per_pair, 0.0).sum()

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    params, opt_state = updates.apply_gradients(state.tx, state.params, state.opt_state, grads)
    return exact_result(state, batch, params, opt_state, loss)


def hs_step(state: game.GameState, batch: Batch, noise=None, huffman: HuffmanTables | None = None, *, update):
    """Hierarchical softmax: each pair scores the inner nodes on its positive's Huffman path (sparse rows)."""
    if huffman is None:
        raise ValueError("hierarchical softmax needs the Huffman tables")
    targets = jnp.maximum(batch.positives, 0)
    points, codes = huffman.points[targets], huffman.codes[targets]  # [B, J, L]
    on_path = (points >= 0) & batch.mask[..., None]

    def loss_of_rows(rows):
        query = skipgram.combine_query(rows["in"], batch.queries >= 0)
        logits = skipgram.score_rows(query, rows["out"]).reshape(points.shape)  # [B, J, L]
        per_pair = losses.hierarchical_softmax_loss(logits, codes, on_path)
        return jnp.where(batch.mask, per_pair, 0.0).sum(), None

    ids = {"in": batch.queries, "out": points.reshape(points.shape[0], -1)}
    params, opt_state, loss, _ = update(state, ids, loss_of_rows)
    return exact_result(state, batch, params, opt_state, loss)


def exact_result(state: game.GameState, batch: Batch, params, opt_state, loss):
    n_pairs = batch.mask.sum()
    metrics = {"pairs": n_pairs.astype(jnp.float32), "loss": loss / jnp.maximum(n_pairs, 1)}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, pairs=state.pairs + n_pairs), metrics


def train_step(state: game.GameState, batch: Batch, noise, huffman: HuffmanTables | None = None, *,
               config: GameConfig):
    """make_step(config, state, model=...)(state, batch, noise, huffman), the model read off the batch (2-D
    queries without shared negatives are CBOW's bags): for scripts and tests. A run makes its step once."""
    model = "cbow" if batch.queries.ndim == 2 and not config.shared_negatives else "skipgram"
    return make_step(config, state, model=model)(state, batch, noise, huffman)
