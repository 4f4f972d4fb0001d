"""Knowledge-graph embeddings end to end: triples -> training on the device -> filtered link prediction, early
stopping on the validation MRR, and a run folder anyone can recompute a rank from."""

import dataclasses
import functools
import json
import time
from pathlib import Path

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jax.sharding import NamedSharding, PartitionSpec as P

from ace_jax import game, hardness, io, losses, noise, parallel, run, sparse_optim, updates
from ace_jax.data import triples as triples_lib
from ace_jax.errors import AceJaxError, SettingError
from ace_jax.evaluate import ranking
from ace_jax.families import kg
from ace_jax.kg_config import KgRunConfig
from ace_jax.scorers.kg import KgScorer

OPTIMIZERS = {"sgd": sparse_optim.sgd, "adagrad": sparse_optim.adagrad, "adam": sparse_optim.adam}


def scorer_of(config: KgRunConfig) -> KgScorer:
    return _scorer(config.model, config.norm, config.entity_norm == "sphere")


@functools.cache
def _scorer(model: str, norm: int, sphere: bool) -> KgScorer:
    """One instance per setting: its bound `score_all` is the ranking's static argument, and bound methods
    compare their instance by identity, so a new instance made each evaluation compiled the ranking again."""
    return KgScorer(model, norm, sphere)


def family_of(config: KgRunConfig) -> kg.Triples:
    return kg.Triples(scorer_of(config), config.gamma if config.loss == "logistic" else 0.0, config.regulariser,
                      config.reg_weight, config.free_entities, config.subsampling)


def generator_of(config: KgRunConfig) -> kg.KgGenerator | None:
    if not config.uses_generator:
        return None
    return kg.KgGenerator(KgScorer(config.gen_model) if config.gen_tables == "own" else None, scorer_of(config),
                          config.num_candidates, config.generator == "kbgan", config.mask_known,
                          config.gen_beta == "relation")


def game_of(config: KgRunConfig) -> game.Game:
    return game.Game(
        negatives=config.negatives, noise=noise.Fixed(), generator=generator_of(config),
        lam=0.0 if config.sampler == "kbgan" else config.lam if config.uses_generator else 1.0,
        loss={"margin": losses.Hinge(config.margin), "contrastive": losses.Contrastive(config.margin),
              "logistic": losses.Logistic()}[config.loss],
        weighting=losses.SelfAdversarial(config.self_adv_temperature) if config.sampler == "self-adv" else None,
        average_negatives=config.average_negatives,
        entropy_weight=config.entropy_weight, entropy_target=config.entropy_target, reward=config.reward, mean=True,
        false_negative_penalty=config.false_negative_penalty, learn_generator=config.learns_generator,
        score_metrics=config.uses_generator)


class KgState(flax.struct.PyTreeNode):
    """The game's state and the best evaluation so far: its parameters, valid score (the job's criterion, −1
    before any), step, and how many evaluations have passed without a better one."""

    game: game.GameState
    best: dict
    best_score: jax.Array
    best_step: jax.Array
    stale: jax.Array

    @property
    def step(self) -> jax.Array:
        return self.game.step


@dataclasses.dataclass
class Setup:
    config: KgRunConfig
    graph: triples_lib.KnowledgeGraph
    known: kg.KnownTriples  # the training triples: a corruption among them is a false negative
    head_probs: jax.Array  # [R]: each relation's probability of corrupting the head
    index: ranking.FilterIndex  # every known triple, train, valid and test: the filtered setting
    noise: noise.NoiseDistribution  # uniform over entities
    steps_per_epoch: int
    probes: tuple[np.ndarray, np.ndarray]  # fixed training triples and their sides, for the hardness measures
    weights: np.ndarray  # [N] each training triple's subsampling weight (1 each unless config.subsampling)


def build(config: KgRunConfig, graph: triples_lib.KnowledgeGraph | None = None, probes: int = 2048) -> Setup:
    """A run's data on the device; `graph` (default: config.data loaded) and how many probes of it the hardness
    measures read."""
    graph = triples_lib.load_kg(config.data) if graph is None else graph
    num_entities, num_relations = len(graph.entities), len(graph.relations)
    if 2 * num_entities * num_relations >= 2**31:
        raise AceJaxError(f"{config.data}: {num_entities:,} entities × {num_relations:,} relations is past the int32 "
                          "key of the false-negative test")
    sides = "bernoulli" if config.sampler == "bernoulli" else config.sides
    head_probs = (kg.bernoulli_head_probs(graph.train, num_relations) if sides == "bernoulli"
                  else np.full(num_relations, 0.5, np.float32))
    rng = np.random.default_rng(0)
    probes = graph.train[rng.permutation(len(graph.train))[:probes]]
    return Setup(config, graph, kg.KnownTriples.build(graph.train, num_entities, num_relations),
                 jnp.asarray(head_probs), ranking.FilterIndex.build(graph.all_triples(), num_relations),
                 noise.uniform(num_entities), -(-len(graph.train) // config.batch),
                 (probes, rng.random(len(probes)) < head_probs[probes[:, 1]]),
                 kg.subsampling_weights(graph.train, num_entities, num_relations) if config.subsampling
                 else np.ones(len(graph.train), np.float32))


def initial_state(setup: Setup) -> KgState:
    config = setup.config
    k_init, k_state, k_gen = jax.random.split(jax.random.PRNGKey(config.seed), 3)  # raw keys: checkpoints hold them
    sizes = len(setup.graph.entities), len(setup.graph.relations)
    family = family_of(config)
    if config.init:
        params = warm_start(config.init, setup.graph, config.model, config.dim, "init")
    else:
        if config.init_range:  # the model's tables' shapes, none of its init computed
            shapes = jax.eval_shape(lambda: family.init(k_init, *sizes, config.dim))
            keys = jax.random.split(k_init, len(shapes))
            params = {name: jax.random.uniform(key, shape.shape, minval=-config.init_range, maxval=config.init_range)
                      for key, (name, shape) in zip(keys, shapes.items())}
        else:
            params = family.init(k_init, *sizes, config.dim)
    if family.constrained:
        params = scorer_of(config).constrain(params)
    part, gen_params, gen_tx = generator_of(config), None, None
    if part is not None:
        # self-adv-pool: β = α, fixed
        temperature = config.gen_temperature if config.learns_generator else 1.0 / config.self_adv_temperature
        gen_params = (warm_start(config.gen_init, setup.graph, config.gen_model, config.gen_dim, "gen_init")
                      if config.gen_init else part.init(k_gen, *sizes, config.gen_dim, temperature))
        gen_tx = optax.adam(config.gen_lr) if config.learns_generator else None
    state = game.create_state(k_state, params, OPTIMIZERS[config.optimizer](config.lr), gen_params, gen_tx,
                              baseline=game_of(config).baseline.init())
    return KgState(state, jax.tree.map(jnp.copy, params), jnp.float32(-1.0), jnp.int32(0), jnp.int32(0))


def drop_learning_rate(state: game.GameState) -> game.GameState:
    """RotatE's code's schedule: the discriminator's learning rate / 10 and its optimiser started afresh (moments
    and bias correction, as its new torch Adam); the generator's left as it was."""
    rate = state.opt_state.hyperparams["learning_rate"] / 10
    fresh = state.tx.init(state.params)
    fresh = fresh._replace(hyperparams={**fresh.hyperparams, "learning_rate": rate})
    # placed as the state it replaces (tables split by rows over many devices)
    return state.replace(opt_state=jax.tree.map(
        lambda new, old: jax.device_put(new, old.sharding) if isinstance(old, jax.Array) else new, fresh,
        state.opt_state))


def step_plan(setup: Setup, start: int, num_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triples [num_steps, B, 3], mask [num_steps, B] and the triples' weights [num_steps, B] (setup.weights) of
    steps start ..: epoch e visits the training triples in the order of a generator seeded by (seed, e), so a
    resumed run sees what an unbroken one does."""
    config, train = setup.config, setup.graph.train
    triples = np.zeros((num_steps, config.batch, 3), np.int32)
    mask = np.zeros((num_steps, config.batch), bool)
    weights = np.zeros((num_steps, config.batch), np.float32)
    order, epoch_of_order = None, None
    for i, step in enumerate(range(start, start + num_steps)):
        epoch, position = divmod(step, setup.steps_per_epoch)
        if epoch != epoch_of_order:
            order, epoch_of_order = np.random.default_rng((config.seed, epoch)).permutation(len(train)), epoch
        rows = order[position * config.batch: (position + 1) * config.batch]
        triples[i, : len(rows)], mask[i, : len(rows)], weights[i, : len(rows)] = train[rows], True, setup.weights[rows]
    return triples, mask, weights


def run_steps(state: game.GameState, plan, known, head_probs, noise_data, *, family: kg.Triples, parts: game.Game,
              mesh=None):
    """The game's steps over a plan, scanned; each step's sides drawn from the state's key and step (TransE's and
    TransD's entity rows are put back in the unit ball by the family's constrain); metrics averaged. mesh (many
    devices): each step's triples split over "data", the touched rows gathered to every device (updates.sparse)."""
    update = updates.sparse
    if mesh is not None:
        update = functools.partial(updates.sparse, rows_sharding=NamedSharding(mesh, P()))

    def body(state, step):
        if mesh is not None:
            step = jax.lax.with_sharding_constraint(step, NamedSharding(mesh, P("data")))
        triples, mask, weights = step
        key = jax.random.fold_in(jax.random.fold_in(state.key, 7), state.step)
        batch = kg.make_batch(triples, head_probs, known, key, mask, weights)
        return game.step(state, batch, noise_data, family=family, game=parts, update=update)

    state, metrics = jax.lax.scan(body, state, plan)
    return state, jax.tree.map(jnp.mean, metrics)


@functools.cache
def compiled_steps(family: kg.Triples, parts: game.Game, mesh=None):
    """The jitted steps of a family and game (not of a whole config: seeds, data and budgets share them)."""
    return jax.jit(functools.partial(run_steps, family=family, parts=parts, mesh=mesh), donate_argnums=0)


@functools.partial(jax.jit, static_argnames=("family", "parts", "side"))
def probe_scores(state: game.GameState, batch: kg.TripleBatch, answers: jax.Array, noise_data, key, *,
                 family: kg.Triples, parts: game.Game, side: str):
    """For probes all corrupted on `side`: the discriminator's logits over every entity [c, E] (at −inf where
    the entity makes a known triple: answers [c, m], −1 padded, the true one among them), the positive's [c],
    and the generator's proposal (logits, draws) as a step makes it, or Nones."""
    kept = batch.tails if side == "head" else batch.heads
    target = batch.heads if side == "head" else batch.tails
    scores = family.scorer.score_all(state.params, kept, batch.relations, side) + family.gamma
    rows = jnp.arange(scores.shape[0])
    pos = scores[rows, target]
    known = jnp.where(answers < 0, scores.shape[1], answers)  # padding past the end: dropped
    scores = scores.at[rows[:, None], known].set(-jnp.inf, mode="drop")  # no known triple is a negative
    if parts.generator is None:
        return scores, pos, None, None
    proposal = parts.generator.propose(state.gen_params, batch, noise_data, key, family=family, game=parts,
                                       sparse=False, disc=state.params)
    return scores, pos, proposal.logits, proposal.draws


def kg_hardness(setup: Setup, state: game.GameState, *, draws: int = 5, top_k: int = 100) -> dict:
    """The hardness measures (ace_jax.hardness) on fixed training triples, each corrupted on a fixed side: the
    discriminator's loss on generator and noise draws, how often they reach its top-k entities for that side
    (a draw that makes a known triple, of any split, is no negative: left out, and counted in gen_false and
    noise_false), the generator's entropy and the overlap of its top-10 between triples. The
    generator's softmax is the one training draws from (for pool and KBGAN forms, over fresh candidates).
    Probes are scored against every entity in chunks of at most 256 and about 2²⁶ row coordinates."""
    config, (probes, sides) = setup.config, setup.probes
    chunk = int(np.clip((1 << 26) // (len(setup.graph.entities) * config.dim), 1, 256))
    family, parts = family_of(config), game_of(config)
    key, measured = jax.random.key(config.seed), []
    for side, group in (("head", probes[sides]), ("tail", probes[~sides])):
        for start in range(0, len(group), chunk):
            triples = group[start:start + chunk]
            batch = kg.make_batch(triples, jnp.zeros(len(setup.graph.relations)), setup.known, key)
            batch = batch.replace(corrupt_head=jnp.full(len(triples), side == "head"))
            k_noise, k_gen, k_pool = jax.random.split(jax.random.fold_in(key, start + (side == "head")), 3)
            answers = setup.index.answers(triples[:, 2] if side == "head" else triples[:, 0], triples[:, 1], side)
            scores, pos, gen_logits, gen_draws = probe_scores(state, batch, answers, setup.noise, k_pool,
                                                              family=family, parts=parts, side=side)
            noise_ids = noise.sample(setup.noise, k_noise, (len(triples), draws))
            top_gen = min(10, (scores if gen_logits is None else gen_logits).shape[1])
            measured.append(hardness.measure_chunk(scores, pos, gen_logits, noise_ids, k_gen, gen_draws,
                                                   loss=parts.loss, draws=draws, top_k=min(top_k, scores.shape[1]),
                                                   top_gen=top_gen))
    return hardness.summarize(jax.device_get(measured), float(np.log(len(setup.graph.entities))))


def link_prediction(setup: Setup, params: dict, split: str) -> dict:
    """Filtered MRR, MR and Hits@1/3/10 of a split, its triple count, and how many have an unseen entity."""
    scores = ranking.evaluate(scorer_of(setup.config).score_all, params, setup.graph.split(split), setup.index,
                              batch=setup.config.eval_batch)
    return {**scores, "unseen": setup.graph.unseen(split)}


class KgJob:
    """A knowledge-graph run as the run loop drives it; the valid split is ranked at every evaluation step, inside
    `advance`, so the best parameters travel in the checkpointed state. A subclass with other data and scores
    (order_run.OrderJob) overrides make_setup, start, split_scores, describe, more_scores and criterion."""

    family, extendable, final_file, words_per_step = "kg", ("epochs",), "metrics.json", None
    config_type = KgRunConfig
    criterion = "mrr"  # the valid score that chooses the best parameters and stops early

    def make_setup(self, config: KgRunConfig) -> Setup:
        return build(config)

    def split_scores(self, params: dict, split: str) -> dict:
        return link_prediction(self.setup, params, split)

    def describe(self, valid: dict) -> str:
        return f"valid MRR {valid['mrr']:.4f} H@10 {valid['hits@10']:.3f}"

    def more_scores(self, best: dict, final: dict) -> dict:
        """Scores of the chosen parameters beside the valid and test ones, for metrics.json."""
        return {}

    def __init__(self, config: KgRunConfig, *, devices: int | None = 1, row_shards: int = 1):
        self.config, self.setup = config, self.make_setup(config)
        self.mesh = parallel.make_mesh(devices, row_shards)
        if config.batch % self.mesh.shape["data"]:
            raise AceJaxError(f"--batch {config.batch} must be a multiple of the data-parallel devices "
                              f"({self.mesh.shape['data']})")
        self.row_shards = row_shards
        self.template = initial_state(self.setup)
        self.total_steps = config.epochs * self.setup.steps_per_epoch
        self.eval_every = config.eval_every * self.setup.steps_per_epoch
        self.log_every = config.log_every
        self.checkpoint_every = self.eval_every
        self.steps_fn = compiled_steps(family_of(config), game_of(config), self.mesh if self.mesh.size > 1 else None)
        # the step from which the discriminator's rate is a tenth, its optimiser fresh (None: never)
        self.drop_step = config.lr_drop_epoch * self.setup.steps_per_epoch if config.lr_drop_epoch else None
        self.scores: dict[int, dict] = {}  # valid scores by step, for `evaluate`
        self.started = time.perf_counter()

    def start(self, out: Path) -> None:
        for name, names in (("entities", self.setup.graph.entities), ("relations", self.setup.graph.relations)):
            with io.atomic_write(out / f"{name}.tsv") as f:
                f.writelines(f"{i}\t{n}\n" for i, n in enumerate(names))

    def initial_state(self) -> KgState:
        return self.template

    def place(self, state: KgState) -> KgState:
        """Host -> the mesh: the game's tables (and their optimiser rows) and the best tables split by rows over
        "model", padded to split evenly; the rest replicated."""
        if self.mesh.size == 1:
            return state
        padded = state.replace(game=parallel.pad_tables(state.game, self.row_shards),
                               best={k: parallel.pad_rows(v, self.row_shards) for k, v in state.best.items()})
        rows, whole = NamedSharding(self.mesh, P("model", None)), parallel.replicated(self.mesh)
        shardings = padded.replace(game=parallel.state_shardings(padded.game, self.mesh),
                                   best={k: rows for k in padded.best}, best_score=whole, best_step=whole, stale=whole)
        return parallel.place(padded, shardings)

    def fetch(self, state: KgState) -> KgState:
        return parallel.unpad_tables(parallel.fetch(state), self.template)

    def unpadded(self, params: dict) -> dict:
        """The tables without the rows that pad them over the row shards (ranking reads every entity row)."""
        return {name: value[: self.template.game.params[name].shape[0]] for name, value in params.items()}

    def advance(self, state: KgState, step: int, steps: int):
        cuts = {self.drop_step: drop_learning_rate} if self.drop_step is not None else None
        game_state, metrics = run.advance_in_pieces(self.scan, state.game, step, steps,
                                                    (self.log_every, self.eval_every), cuts)
        state, step = state.replace(game=game_state), step + steps
        if step % self.eval_every == 0 or step == self.total_steps:
            state = self.validate(state, step)
        return state, metrics

    def scan(self, game_state: game.GameState, step: int, steps: int):
        plan = tuple(jnp.asarray(a) for a in step_plan(self.setup, step, steps))
        return self.steps_fn(game_state, plan, self.setup.known, self.setup.head_probs, self.setup.noise)

    def validate(self, state: KgState, step: int) -> KgState:
        start = time.perf_counter()
        scores = self.split_scores(self.unpadded(state.game.params), "valid")
        scores["eval_seconds"] = time.perf_counter() - start
        self.scores[step] = {"valid": scores, "epoch": step / self.setup.steps_per_epoch,
                             "hardness": kg_hardness(self.setup, state.game.replace(
                                 params=self.unpadded(state.game.params)))}
        score = np.float32(scores[self.criterion])
        if score > np.float32(state.best_score):  # as stored: an equal score is no better
            best = jax.tree.map(jnp.copy, state.game.params)  # its own buffers: the next steps donate the game's
            return state.replace(best=best, best_score=jnp.float32(score),
                                 best_step=jnp.int32(step), stale=jnp.int32(0))
        return state.replace(stale=state.stale + 1)

    def spent(self, state: KgState) -> bool:
        return bool(self.config.patience) and int(state.stale) >= self.config.patience

    def status(self, state) -> dict:
        return {"epoch": int(state.step) / self.setup.steps_per_epoch}

    def progress(self, status: dict, scores: dict) -> list[str]:
        parts = [f"epoch {status['epoch']:.1f}"]
        if "valid" in scores:
            parts.append(self.describe(scores["valid"]))
        if "loss_ratio" in scores.get("hardness", {}):
            parts.append(f"hardness ×{scores['hardness']['loss_ratio']:.2f}")
        return parts

    def evaluate(self, state: KgState) -> dict:
        step = int(state.step)
        if step not in self.scores:  # a resumed run's first evaluation (its step's validation came before)
            self.validate(state, step)
        return self.scores[step]

    def finish(self, state: KgState, out: Path, writer: bool) -> dict:
        if not writer:
            return {}
        best = jax.device_get(self.unpadded(state.best))
        final = {split: self.split_scores(best, split) for split in ("valid", "test")}
        final.update(best_step=int(state.best_step), best_epoch=int(state.best_step) / self.setup.steps_per_epoch,
                     steps=int(state.step), train_seconds=time.perf_counter() - self.started)
        final.update(self.more_scores(best, final))
        for name, file in self.config.to_json()["arrays"].items():
            with io.atomic_write(out / file, "wb") as f:
                np.save(f, np.asarray(best[name], np.float32))
        plot_valid_curve(out, self.config, self.criterion)
        with io.atomic_write(out / self.final_file) as f:
            json.dump(run.finite_or_null(final), f, indent=2)
        return final


def plot_valid_curve(out: Path, config: KgRunConfig, criterion: str = "mrr") -> None:
    """valid_{criterion}.png: the run's valid score against epochs, from its metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in run.read_records(out / "metrics.jsonl") if r.get("kind") == "eval"]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot([r["epoch"] for r in records], [r["valid"][criterion] for r in records], marker="o", ms=3,
            label=config.sampler)
    ax.set(xlabel="epoch", ylabel={"mrr": "valid MRR (filtered)"}.get(criterion, f"valid {criterion}"),
           title=f"{Path(config.data).name}: {config.model}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with io.atomic_write(out / f"valid_{criterion}.png", "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def load_config(run_dir: str | Path, field: str = "run") -> KgRunConfig:
    return run.load_config(run_dir, "kg", KgRunConfig.from_json, field=field)


def load_params(run_dir: str | Path, config: KgRunConfig) -> dict:
    run_dir = Path(run_dir)
    params = {}
    for name, file in config.to_json()["arrays"].items():
        if not (run_dir / file).exists():
            raise AceJaxError(f"{run_dir / file}: missing; is the run finished?")
        params[name] = jnp.asarray(np.load(run_dir / file))
    return params


def measure_hardness(run_dir: str | Path, job_type=None) -> dict:
    """kg_hardness of a run folder's last checkpoint, as its evaluation points measure it now (the data loaded
    again): for runs measured by an older rule. job_type: KgJob, or order_run.OrderJob for a hypernym run."""
    job_type = KgJob if job_type is None else job_type
    config = run.load_config(run_dir, job_type.family, job_type.config_type.from_json, field="run")
    job = job_type(config)
    state = io.load_checkpoint(Path(run_dir) / "checkpoint.msgpack", jax.device_get(job.template))
    return kg_hardness(job.setup, state.game)


def current_hardness(run_dir: str | Path, recorded: dict, job_type=None) -> dict:
    """A finished run's hardness at its last evaluation by today's rule: `recorded` (that record's), or for a
    generator's record by the rule before 2026-12-06 (no gen_false: false negatives scored as the top score)
    measured again from the checkpoint, once, and kept in the run folder's hardness-remeasured.json."""
    if "loss_ratio" not in recorded or "gen_false" in recorded:
        return recorded
    path = Path(run_dir) / "hardness-remeasured.json"
    if not path.exists():
        measured = measure_hardness(run_dir, job_type)
        with io.atomic_write(path) as f:
            json.dump(measured, f)
    return json.loads(path.read_text())


def warm_start(run_dir: str, graph: triples_lib.KnowledgeGraph, model: str, dim: int, field: str) -> dict:
    """The tables of a finished kg run of `model` at `dim` on the same entities and relations, to start from."""
    saved = load_config(run_dir, field)
    if (saved.model, saved.dim) != (model, dim):
        raise SettingError(field, run_dir, f"{{name}} {{value}} holds a {saved.model} of dimension {saved.dim}, not "
                                           f"a {model} of {dim}")
    for name, names in (("entities", graph.entities), ("relations", graph.relations)):
        ids = read_names(Path(run_dir) / f"{name}.tsv")
        if sorted(ids, key=ids.get) != list(names):
            raise SettingError(field, run_dir, f"{{name}} {{value}} was trained on other {name}")
    return load_params(run_dir, saved)


def read_names(path: Path) -> dict[str, int]:
    """name -> id of a run's entities.tsv or relations.tsv."""
    if not path.exists():
        raise AceJaxError(f"{path}: missing; is it a kg run folder?")
    names = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        ident, _, name = line.partition("\t")
        if not ident.isdigit() or not name:
            raise AceJaxError(f"{path}:{number}: expected id<TAB>name")
        names[name] = int(ident)
    return names


def predict(config: KgRunConfig, params: dict, entities: dict[str, int], given: int, relation: int, side: str,
            top: int) -> list[tuple[str, float]]:
    """The `top` entities by score as the missing tail (side "tail") or head of (given, relation)."""
    scores = np.asarray(scorer_of(config).score_all(params, jnp.array([given]), jnp.array([relation]), side))[0]
    names = sorted(entities, key=entities.get)
    order = np.argsort(-scores, kind="stable")[:top]
    return [(names[i], float(scores[i])) for i in order]


def train_kg(config: KgRunConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = True,
             stop_at_step: int | None = None, devices: int | None = 1, row_shards: int = 1) -> dict:
    """Trains, evaluates and writes a run folder; returns the final metrics (those of metrics.json).

    The folder holds config.json (the settings, and which .npy file holds each table), entities.tsv and
    relations.tsv (id<TAB>name), metrics.jsonl (the loss every log_every steps, valid scores every eval_every
    epochs), checkpoint.msgpack, and at the end each table of the best evaluation as {table}_embeddings.npy
    (entity_embeddings.npy [E, d], relation_embeddings.npy [R, d], and a model's others) and metrics.json
    (valid and test scores of those parameters, the step chosen). For TransE the score is −‖h + r − t‖ under
    config.json's norm. devices, row_shards: as the word run's (each step's triples split over `devices`, the
    tables by rows over `row_shards` of them).
    """
    return run.train(KgJob, config, out_dir, resume=resume, progress=progress, stop_at_step=stop_at_step,
                     devices=devices, row_shards=row_shards)
