"""Word embeddings end to end: corpus -> device -> ACE game steps -> evaluation, vectors, checkpoints, figure."""

import dataclasses
import functools
import json
import math
import sys
from pathlib import Path
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from ace_jax import (cooccurrence, game, generator, hardness, huffman, io, noise as noise_lib, parallel, run,
                     sparse_optim, windows)
from ace_jax.data.corpus import CorpusOptions, EncodedCorpus, Vocab, load_corpus
from ace_jax.data.registry import resolve
from ace_jax.errors import AceJaxError, SettingError, check
from ace_jax.evaluate import similarity
from ace_jax.families import word
from ace_jax.scorers import skipgram


@dataclasses.dataclass(frozen=True)
class WordConfig:
    """A word-embedding run. Defaults follow word2vec.c / gensim where they have one."""

    corpus: str = "enwiki"
    min_count: int = 5
    max_vocab: int | None = None
    max_tokens: int | None = None  # use only the first N raw tokens (quick runs)
    normalize: bool = True  # text8-style: lower case, digits spelled out, other non-letters dropped
    model: str = "skipgram"  # skipgram | cbow
    dim: int = 100
    window: int = 5
    sample: float = 1e-3  # subsampling threshold t (word2vec's -sample, gensim's sample)
    epochs: float = 1.0
    pairs: int | None = None  # a budget of positive pairs instead of epochs
    learning_rate: float | None = None  # None: 0.025 skip-gram, 0.05 CBOW (word2vec.c)
    min_learning_rate: float = 1e-4  # as a fraction of the start, word2vec.c's floor
    optimizer: str = "sgd"  # sgd | adagrad | adam (lazy: per-row state, only touched rows move); the rate decays
    row_clip: float = 0.0  # L2 norm each row's gradient, summed over a step, is clipped to (0: off); clip_rows
    reach: str = "centre"  # centre: each centre draws its window b ~ U{1..window} (word2vec); step: one b per step
    chunk: int = 512  # tokens per step after subsampling; larger batches sum more gradients into hot rows and lose ρ
    known_positives: int = 0  # k: each word's k most frequent high-PMI partners are false negatives (0: off)
    game: word.GameConfig = word.GameConfig()
    gen_dim: int = 32
    gen_learning_rate: float = 1e-3
    gen_bias: str = "noise"  # the generator starts as p_nce ("noise") or uniform ("zero")
    gen_init: str = ""  # a finished word run (same vocabulary, dim = gen_dim) whose input/output rows start a and b
    seed: int = 0
    eval_sets: tuple[str, ...] = ("ws353", "rw")
    eval_every: int = 0  # steps between evaluations during training; 0: only at the end
    final_sets: tuple[str, ...] = similarity.DEFAULT_SETS
    analogy: bool = True
    log_every: int = 100
    checkpoint_every: int = 1000

    def __post_init__(self):
        positive = "{name} must be positive, not {value}"
        check([
            (self.model in ("skipgram", "cbow"), "model", self.model, "{name} must be skipgram or cbow, not {value!r}"),
            (self.min_count >= 1, "min_count", self.min_count, "{name} must be at least 1, not {value}"),
            (self.max_vocab is None or self.max_vocab >= 1, "max_vocab", self.max_vocab, positive),
            (self.max_tokens is None or self.max_tokens >= 1, "max_tokens", self.max_tokens, positive),
            (self.dim >= 1, "dim", self.dim, positive),
            (self.gen_dim >= 1, "gen_dim", self.gen_dim, positive),
            (self.window >= 1, "window", self.window, "{name} must be at least 1, not {value}"),
            (self.epochs > 0, "epochs", self.epochs, positive),
            (self.pairs is None or self.pairs > 0, "pairs", self.pairs, positive),
            (self.learning_rate is None or self.learning_rate > 0, "learning_rate", self.learning_rate, positive),
            (0 < self.min_learning_rate <= 1, "min_learning_rate", self.min_learning_rate,
             "{name} must lie in (0, 1] (a fraction of the start), not {value}"),
            (self.gen_learning_rate > 0, "gen_learning_rate", self.gen_learning_rate, positive),
            (self.chunk >= 2 * self.window + 1, "chunk", self.chunk,
             "{name} must hold at least one full window (2 · window + 1 = " + str(2 * self.window + 1)
             + "), not {value}"),
            (self.gen_bias in ("noise", "zero"), "gen_bias", self.gen_bias,
             "{name} must be noise or zero, not {value!r}"),
            (not self.gen_init or (self.game.uses_generator and self.game.gen_tables == "own"), "gen_init",
             self.gen_init, "{name} starts the generator's own tables: it needs the adv or ace sampler and "
             "gen_tables own"),
            (self.sample >= 0, "sample", self.sample, "{name} must be at least 0, not {value}"),
            (self.row_clip >= 0, "row_clip", self.row_clip, "{name} must be at least 0 (0: off), not {value}"),
            (self.known_positives >= 0, "known_positives", self.known_positives,
             "{name} must be at least 0 (0: off), not {value}"),
            (not (self.known_positives and self.game.sampler in ("softmax", "hs")), "known_positives",
             self.known_positives, "{name} needs a sampled loss, not " + self.game.sampler),
            (self.reach in ("centre", "step"), "reach", self.reach, "{name} must be centre or step, not {value!r}"),
            (self.optimizer in ("sgd", "adagrad", "adam"), "optimizer", self.optimizer,
             "{name} must be sgd, adagrad or adam, not {value!r}"),
            (self.log_every >= 1, "log_every", self.log_every, "{name} must be at least 1, not {value}"),
            (self.eval_every >= 0, "eval_every", self.eval_every,
             "{name} must be at least 0 (0: at the end), not {value}"),
            (self.checkpoint_every >= 0, "checkpoint_every", self.checkpoint_every,
             "{name} must be at least 0 (0: at the end), not {value}"),
            (not (self.game.shared_negatives and self.model == "cbow"), "shared_negatives", True,
             "shared negatives ({name}) are for skip-gram: CBOW scores one pair per window"),
            (not (self.game.shared_negatives and self.game.sampler in ("softmax", "hs")), "shared_negatives", True,
             "shared negatives ({name}) need a sampled loss, not " + self.game.sampler),
        ])
        for name in ("eval_sets", "final_sets"):
            unknown = [s for s in getattr(self, name) if s not in similarity.SIMILARITY_SETS]
            if unknown:
                raise SettingError(name, unknown[0], "{name}: unknown evaluation set {value!r}; choose from "
                                   + ", ".join(similarity.SIMILARITY_SETS))

    @property
    def layout(self) -> str:
        """How a step's examples are laid out (windows.make_batch)."""
        if self.model == "cbow":
            return "cbow"
        return "windows" if self.game.shared_negatives else "skipgram"

    @property
    def start_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else (0.05 if self.model == "cbow" else 0.025)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "WordConfig":
        data = dict(data)
        data["game"] = word.GameConfig(**data["game"])
        for name in ("eval_sets", "final_sets"):
            data[name] = tuple(data[name])
        return cls(**data)


class EpochStreams:
    """The corpus's epochs after subsampling, each made on the device when the steps reach it.

    An epoch's steps are known once it is made (ceil(kept / chunk)), so epoch e's first step needs
    epochs 0..e−1; only the current epoch's stream is held.
    """

    def __init__(self, corpus: windows.DeviceCorpus, chunk: int, mesh: jax.sharding.Mesh):
        self.corpus = corpus
        self.subsample = jax.jit(functools.partial(windows.subsample_epoch, chunk=chunk),
                                 out_shardings=parallel.replicated(mesh))
        self.chunk = chunk
        self.first_steps = [0]  # first step of each epoch made so far, then the end of the last one
        self.current: tuple[int, windows.EpochStream] | None = None

    def make(self, epoch: int) -> windows.EpochStream:
        stream = self.subsample(self.corpus, epoch, self.first_steps[epoch])
        if len(self.first_steps) == epoch + 1:
            kept = int(parallel.fetch(stream.num_kept))
            self.first_steps.append(self.first_steps[epoch] + windows.steps_in(kept, self.chunk))
        self.current = (epoch, stream)
        return stream

    def epoch_of(self, step: int) -> int:
        epoch = 0
        while True:
            if len(self.first_steps) == epoch + 1:
                self.make(epoch)
            if step < self.first_steps[epoch + 1]:
                return epoch
            epoch += 1

    def steps(self, epochs: float) -> int:
        """Steps of the first `epochs` epochs, a fraction of the last one rounded up."""
        last = math.ceil(epochs) - 1
        while len(self.first_steps) <= last + 1:
            self.make(len(self.first_steps) - 1)
        first, end = self.first_steps[last], self.first_steps[last + 1]
        return first + math.ceil((epochs - last) * (end - first))

    def stream(self, step: int) -> windows.EpochStream:
        """The stream step `step` reads."""
        epoch = self.epoch_of(step)
        return self.current[1] if self.current[0] == epoch else self.make(epoch)


@dataclasses.dataclass
class Setup:
    """Everything a run derives from its config: the data on the device and the jitted step."""

    corpus: EncodedCorpus
    epochs: EpochStreams
    noise: noise_lib.NoiseDistribution
    huffman: word.HuffmanTables | None
    known: jax.Array | None  # [V, k] int32: each word's known positives (WordConfig.known_positives), or None
    total_steps: int
    step_fn: Callable
    initial_state: game.GameState  # on the host, without padding: what checkpoints hold
    mesh: jax.sharding.Mesh
    row_shards: int

    def run_step(self, state: game.GameState, step: int) -> tuple[game.GameState, dict]:
        """Plays step `step` (the host's count of steps taken so far) on the epoch it falls in."""
        return self.step_fn(state, self.epochs.stream(step), self.noise, self.huffman, self.known)

    @property
    def raw_words_per_step(self) -> float:
        """Corpus tokens (before subsampling) per step in the first epoch, for words/s."""
        return len(self.corpus.tokens) / self.epochs.first_steps[1]

    def place(self, state: game.GameState) -> game.GameState:
        """A host state (initial or loaded) -> global arrays on the mesh, tables padded to split evenly."""
        state = parallel.pad_tables(state, self.row_shards)
        return parallel.place(state, parallel.state_shardings(state, self.mesh))

    def fetch(self, state: game.GameState) -> game.GameState:
        return parallel.unpad_tables(parallel.fetch(state), self.initial_state)


def set_learning_rate(opt_state, learning_rate):
    """optax.inject_hyperparams keeps the rate in the state, so the step can decay it by progress."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": learning_rate})


def word_train_step(state, stream, noise, huffman, known, *, config: WordConfig, total_steps: int,
                    mesh: jax.sharding.Mesh, game_step):
    """Makes this step's examples on the device, decays the rate as word2vec does, plays one game step.
    Every device makes the (cheap) examples of the whole chunk; the game splits the centres over devices."""
    play = functools.partial(play_step, config=config, total_steps=total_steps, mesh=mesh, game_step=game_step)
    if config.reach == "centre":
        return play(state, stream, noise, huffman, known, window=config.window)
    # One reach b ~ U{1..W} for all the step's centres, so each branch has exactly 2b context slots: no
    # step scores the empty slots that per-centre draws leave (2/5 of them at W = 5). Each centre still
    # sees b ~ U{1..W}; only the centres of one step now share it.
    k_reach = jax.random.fold_in(jax.random.fold_in(stream.key, 2), state.step)
    reach = 1 + noise_lib.uniform_ints(k_reach, (), config.window)
    branches = [functools.partial(play, window=b, fixed_reach=True) for b in range(1, config.window + 1)]
    return jax.lax.switch(reach - 1, branches, state, stream, noise, huffman, known)


def play_step(state, stream, noise, huffman, known, *, window: int, fixed_reach: bool = False, config: WordConfig,
              total_steps: int, mesh: jax.sharding.Mesh, game_step):
    batch = windows.make_batch(stream, state.step, chunk=config.chunk, window=window, layout=config.layout,
                               fixed_reach=fixed_reach)
    if known is not None:
        batch = batch.replace(known=word.known_of(known, batch.queries))
    if mesh.size > 1:  # the step's centres split over the "data" devices
        batch = jax.lax.with_sharding_constraint(batch, NamedSharding(mesh, P("data")))
    progress = state.step / total_steps
    if config.pairs is not None:
        # An exact pair budget: pairs past it are masked out, and the rate decays with pairs seen.
        seen = state.pairs + jnp.cumsum(batch.mask.reshape(-1)).reshape(batch.mask.shape)
        batch = batch.replace(mask=batch.mask & (seen <= config.pairs))
        progress = state.pairs / config.pairs
    rate = config.start_learning_rate * jnp.maximum(1.0 - progress, config.min_learning_rate)
    state = state.replace(opt_state=set_learning_rate(state.opt_state, rate))
    state, metrics = game_step(state, batch, noise, huffman)
    metrics["learning_rate"] = rate
    return state, metrics


def build(config: WordConfig, *, devices: int | None = 1, row_shards: int = 1) -> Setup:
    """devices: how many to split each step over (None: all, across hosts); row_shards: how many of
    them split each embedding table by rows (the rest split the batch)."""
    mesh = parallel.make_mesh(devices, row_shards)
    if config.chunk % mesh.shape["data"]:
        raise SettingError("chunk", config.chunk, "{name} {value} must be a multiple of the data-parallel devices ("
                           + str(mesh.shape["data"]) + ")")
    options = CorpusOptions(min_count=config.min_count, max_vocab=config.max_vocab, normalize=config.normalize,
                            max_tokens=config.max_tokens)
    corpus = load_corpus(config.corpus, options)
    vocab_size = len(corpus.vocab)
    if config.game.sampler == "hs" and vocab_size < 2:
        raise AceJaxError("hierarchical softmax needs at least two words in the vocabulary")
    counts = corpus.vocab.counts
    k_data = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0)
    device_corpus = windows.make_device_corpus(corpus.tokens, counts, sample=config.sample, key=k_data)
    noise = noise_lib.unigram(counts)
    tables = None
    if config.game.sampler == "hs":
        points, codes, _ = huffman.build_huffman_tree(counts)
        tables = word.HuffmanTables(jnp.asarray(points), jnp.asarray(codes))
    state = initial_state(config, vocab_size, noise.log_probs)
    if config.gen_init:
        state = state.replace(gen_params=warm_generator(config, corpus.vocab.words, state.gen_params))
    game_step = word.make_step(config.game, state, model=config.model, mesh=mesh if mesh.size > 1 else None)
    known = None
    if config.known_positives:
        known = jnp.asarray(cooccurrence.known_positives(corpus.tokens, vocab_size, window=config.window,
                                                         k=config.known_positives))
    # The corpus, noise, Huffman and known-positive tables are read by every device: replicated.
    device_corpus, noise, tables, known = parallel.place((device_corpus, noise, tables, known),
                                                         parallel.replicated(mesh))
    epochs = EpochStreams(device_corpus, config.chunk, mesh)
    total_steps = epochs.steps(config.epochs)
    if config.pairs is not None:
        total_steps = sys.maxsize  # the pair budget decides; the loop stops once it is spent
    state = jax.device_get(state)
    shardings = parallel.state_shardings(parallel.pad_tables(state, row_shards), mesh)
    step_fn = jax.jit(functools.partial(word_train_step, config=config, total_steps=min(total_steps, 2**31 - 1),
                                        mesh=mesh, game_step=game_step),
                      donate_argnums=0, out_shardings=(shardings, parallel.replicated(mesh)))
    return Setup(corpus, epochs, noise, tables, known, total_steps, step_fn, state, mesh, row_shards)


def initial_state(config: WordConfig, vocab_size: int, noise_log_probs: jax.Array) -> game.GameState:
    """Both players' first state: the tables (word2vec's start), the optimisers, the generator (starting at
    the noise, gen_bias "noise", or uniform) and the baseline."""
    root = jax.random.PRNGKey(config.seed)
    k_game, k_params, k_gen = (jax.random.fold_in(root, i) for i in range(1, 4))
    num_outputs = vocab_size - 1 if config.game.sampler == "hs" else vocab_size  # hs: the Huffman tree's nodes
    params = word.Pairs().init(k_params, vocab_size, config.dim, num_outputs)
    gen_params = gen_tx = None
    if config.game.uses_generator and config.game.gen_tables == "discriminator":  # β and a bias [V]: plain Adam
        bias = noise_log_probs if config.gen_bias == "noise" else jnp.zeros(vocab_size)
        gen_params = generator.tied_init(bias, config.game.gen_temperature)
        gen_tx = optax.adam(config.gen_learning_rate)
    elif config.game.uses_generator:
        bias = noise_log_probs if config.gen_bias == "noise" else None
        gen_params = generator.init(k_gen, vocab_size, vocab_size, config.gen_dim, bias=bias)
        # Candidate generators read a few rows per step: lazy Adam keeps their step free of [V, d_g] passes.
        lazy = config.game.generator != "exact"
        gen_tx = (sparse_optim.adam if lazy else optax.adam)(config.gen_learning_rate)
    sparse = config.game.sparse_updates and config.game.sampler != "softmax"
    if sparse:  # per-row state, read and written only where a step touches (SGD's fuses into a CPU kernel)
        tx = getattr(sparse_optim, config.optimizer)(config.start_learning_rate, row_clip=config.row_clip)
    else:
        def dense(learning_rate):
            optimizer = getattr(optax, config.optimizer)(learning_rate)
            return optax.chain(sparse_optim.dense_row_clip(config.row_clip), optimizer)

        tx = optax.inject_hyperparams(dense)(learning_rate=config.start_learning_rate)
    return game.create_state(k_game, params, tx, gen_params, gen_tx, sparse_updates=sparse,
                             baseline=word.game_parts(config.game).baseline.init())


def warm_generator(config: WordConfig, words, gen_params: dict) -> dict:
    """The generator's own tables a [V, d_g] and b [V, d_g] from the input and output rows of the finished run
    config.gen_init (same vocabulary, dim = gen_dim): g(y|x) ∝ exp(u_x · v_y + c_y) from the start, with c as
    gen_bias gives. Its pairs are not this run's: count them in a comparison's budget."""
    saved, saved_words, saved_state = load_run(config.gen_init, field="gen_init")
    for ok, problem in ((list(saved_words) == list(words), "was trained on another vocabulary"),
                        (saved.dim == config.gen_dim, f"has dim {saved.dim}, not gen_dim {config.gen_dim}"),
                        (saved_state.params["out"].shape[0] == len(words),
                         f"is a {saved.game.sampler} run: its output rows are not one per word")):
        if not ok:
            raise SettingError("gen_init", config.gen_init, "{name} {value} " + problem)
    return {**gen_params, "query": saved_state.params["in"], "cand": saved_state.params["out"]}


def load_run(run_dir: str | Path, field: str = "run") -> tuple[WordConfig, list[str], game.GameState]:
    """A word run folder's settings, vocabulary and last checkpoint, read without its corpus."""
    folder = Path(run_dir)
    config = run.load_config(folder, "word", WordConfig.from_json, field=field)
    try:
        words = Vocab.from_file(folder / "vocab.tsv").words
    except OSError as error:
        raise SettingError(field, str(folder),
                           f"{{name}} {{value}}: cannot read vocab.tsv ({error.strerror})") from None
    template = initial_state(config, len(words), jnp.zeros(len(words)))
    state = io.load_checkpoint(folder / "checkpoint.msgpack", jax.device_get(template))
    return config, words, state


def hardness_queries(tokens: np.ndarray) -> np.ndarray:
    """The 2,048 corpus queries every evaluation point measures hardness on (seed 0)."""
    return np.asarray(tokens[np.random.default_rng(0).integers(0, len(tokens), 2048)])


def measure_hardness(run_dir: str | Path) -> dict:
    """hardness.word_hardness of a run folder's last checkpoint, as its evaluation points measure it now (the
    corpus is loaded again for its queries, noise and known positives): for runs measured by an older rule."""
    config, words, state = load_run(run_dir)
    corpus = load_corpus(config.corpus, CorpusOptions(min_count=config.min_count, max_vocab=config.max_vocab,
                                                      normalize=config.normalize, max_tokens=config.max_tokens))
    if list(corpus.vocab.words) != list(words):
        raise AceJaxError(f"{run_dir}: the corpus no longer gives the run's vocabulary")
    noise = noise_lib.unigram(corpus.vocab.counts)
    known = None
    if config.known_positives:
        known = jnp.asarray(cooccurrence.known_positives(corpus.tokens, len(words), window=config.window,
                                                         k=config.known_positives))
    return hardness.word_hardness(state.params, generator_draws_of(config, state, noise, known), noise,
                                  hardness_queries(corpus.tokens), jax.random.key(0))


def negatives_of(run_dir: str | Path, queries: list[str], top: int = 10) -> dict:
    """For each query word of a run: the generator's most likely negatives g(y|x) (a table generator's full
    softmax; none for a noise-only sampler), the discriminator's highest scores u_x · v_y (the contexts it
    believes in most, which hard negatives should approach) and the cosine neighbours of u_x.
    {word: {"generator": [(word, p)], "discriminator": [(word, s)], "cosine": [(word, cos)]}}."""
    config, words, state = load_run(run_dir)
    index = {w: i for i, w in enumerate(words)}
    unknown = [q for q in queries if q not in index]
    if unknown:
        raise AceJaxError(f"unknown word {unknown[0]!r}: not in the run's vocabulary")
    if config.game.sampler == "hs":
        raise AceJaxError("a hierarchical-softmax run has no output row per word to score negatives with")
    ids = jnp.asarray([index[q] for q in queries], jnp.int32)
    found = {}
    scores = np.asarray(skipgram.score_all(state.params, ids))  # [Q, V]
    unit = np.asarray(state.params["in"], np.float64)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    logits_of = generator_logits_of(config, state)
    probs = np.asarray(jax.nn.softmax(logits_of(ids))) if logits_of else None

    def best(values, row, exclude_self=True):
        values = values.astype(np.float64).copy()
        if exclude_self:
            values[row] = -np.inf
        order = np.argsort(-values, kind="stable")[:top]
        return [(words[i], float(values[i])) for i in order]

    for n, query in enumerate(queries):
        row = index[query]
        found[query] = {"generator": best(probs[n], row, False) if probs is not None else [],
                        "discriminator": best(scores[n], row, False), "cosine": best(unit @ unit[row], row)}
    return found


def generator_logits_of(config: WordConfig, state: game.GameState):
    """queries [c] -> the run's generator's logits over the vocabulary [c, V] (the exact softmax, which the pool
    and KBGAN-style forms estimate from draws; an entropy floor and known positives left out): what it prefers,
    for `ace-jax negatives`; None for a noise-only sampler."""
    if not config.game.uses_generator:
        return None
    part = word.game_parts(config.game).generator
    return lambda queries: part.full_logits(state.gen_params, state.params, queries, word.Pairs())


def generator_draws_of(config: WordConfig, state: game.GameState, noise: noise_lib.NoiseDistribution,
                       known: jax.Array | None = None):
    """(queries [c], key) -> (logits [c, n], draws [n] or [c, n] or None): the softmax a training step draws the
    run's generator's negatives from, for skip-gram queries (its proposal: for the pool and KBGAN-style forms
    over fresh candidate draws, with any entropy floor and the known positives as training applies them);
    None for a noise-only sampler. The hardness measures use it, so they describe the negatives trained on."""
    if not config.game.uses_generator:
        return None
    parts = word.game_parts(config.game)

    def draws_of(queries, key):
        no_pairs = jnp.full((queries.shape[0], 1), -1, jnp.int32)
        batch = word.Batch(queries, no_pairs, no_pairs >= 0, None if known is None else word.known_of(known, queries))
        proposal = parts.generator.propose(state.gen_params, batch, noise, key, family=word.Pairs(), game=parts,
                                           sparse=False, disc=state.params)
        return proposal.logits, proposal.draws

    return draws_of


def input_vectors(setup: Setup, state: game.GameState) -> np.ndarray:
    vectors = parallel.fetch(state.params["in"])
    return np.asarray(vectors[: len(setup.corpus.vocab)], np.float32)


def evaluate_vectors(vectors: np.ndarray, words: list[str], sets: tuple[str, ...], analogy: bool) -> dict:
    return similarity.evaluate_all(vectors, words, sets, analogy=analogy) if sets or analogy else {}


def plot_similarity(metrics_path: Path, figure_path: Path, sets: tuple[str, ...]) -> None:
    """ρ against positive pairs seen, from the evaluation records of metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in run.read_records(metrics_path) if r.get("kind") == "eval"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in sets:
        points = [(r["pairs"], r[name]["spearman"]) for r in records if name in r]
        if points:
            ax.plot(*zip(*points), marker="o", label=name)
    ax.set_xlabel("positive pairs seen")
    ax.set_ylabel("Spearman ρ")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with io.atomic_write(figure_path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


class WordJob:
    """A word-embedding run as the run loop (ace_jax.run) drives it."""

    family, extendable, final_file = "word", (), "eval.json"

    def __init__(self, config: WordConfig, *, devices: int | None = 1, row_shards: int = 1):
        self.config = config
        self.setup = build(config, devices=devices, row_shards=row_shards)  # reads and checks the corpus
        for name in (*config.eval_sets, *config.final_sets, *(("analogy",) if config.analogy else ())):
            resolve(name)  # a missing evaluation file is reported now, not after training
        self.total_steps, self.words_per_step = self.setup.total_steps, self.setup.raw_words_per_step
        self.log_every, self.eval_every = config.log_every, config.eval_every
        self.checkpoint_every = config.checkpoint_every
        self.words = self.setup.corpus.vocab.words
        self.writer = jax.process_index() == 0
        # Hardness is measured on the same corpus queries at every evaluation point: tokens drawn uniformly
        # from the corpus, so frequent words are queried as often as training queries them.
        self.hardness_queries = hardness_queries(self.setup.corpus.tokens)

    def start(self, out: Path) -> None:
        self.setup.corpus.vocab.to_file(out / "vocab.tsv")

    def initial_state(self) -> game.GameState:
        return self.setup.initial_state

    def place(self, state: game.GameState) -> game.GameState:
        return self.setup.place(state)

    def fetch(self, state: game.GameState) -> game.GameState:
        return self.setup.fetch(state)

    def advance(self, state: game.GameState, step: int, steps: int):
        for s in range(step, step + steps):  # dispatched ahead: the host never waits for a step here
            state, metrics = self.setup.run_step(state, s)
        return state, metrics

    def spent(self, state: game.GameState) -> bool:
        return self.config.pairs is not None and float(state.pairs) >= self.config.pairs

    def status(self, state: game.GameState) -> dict:
        return {"total_pairs": float(state.pairs)}

    def progress(self, status: dict, scores: dict) -> list[str]:
        budget = "" if self.config.pairs is None else f" of {self.config.pairs / 1e6:.2f}M"
        parts = [f"pairs {status['total_pairs'] / 1e6:.2f}M{budget}"]
        if "loss_ratio" in scores.get("hardness", {}):
            parts.append(f"hardness ×{scores['hardness']['loss_ratio']:.2f}")
        return parts

    def evaluate(self, state: game.GameState) -> dict:
        host = self.setup.fetch(state)  # every process takes part in the fetch
        if not self.writer:
            return {}
        vectors = np.asarray(host.params["in"][: len(self.words)], np.float32)
        scores = {"pairs": float(state.pairs), **evaluate_vectors(vectors, self.words, self.config.eval_sets, False)}
        if self.config.game.sampler not in ("softmax", "hs"):
            scores["hardness"] = hardness.word_hardness(
                host.params, generator_draws_of(self.config, host, self.setup.noise, self.setup.known),
                self.setup.noise, self.hardness_queries, jax.random.key(0))
        return scores

    def finish(self, state: game.GameState, out: Path, writer: bool) -> dict:
        vectors = input_vectors(self.setup, state)
        if not writer:
            return {}
        io.save_word2vec(out / "vectors.txt", self.words, vectors, binary=False)
        io.save_word2vec(out / "vectors.bin", self.words, vectors, binary=True)
        final = evaluate_vectors(vectors, self.words, self.config.final_sets, analogy=self.config.analogy)
        final["pairs"], final["steps"] = float(state.pairs), int(state.step)
        with io.atomic_write(out / self.final_file) as f:
            json.dump(run.finite_or_null(final), f, indent=2)
        if self.config.eval_sets:
            plot_similarity(out / "metrics.jsonl", out / "similarity.png", self.config.eval_sets)
        return final


def train_word_embeddings(
    config: WordConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    stop_at_step: int | None = None,
    progress: bool = True,
    devices: int | None = 1,
    row_shards: int = 1,
) -> dict:
    """Trains, evaluates and writes a run folder; returns the final evaluation (run.train has the rules).

    The folder holds config.json, vocab.tsv, metrics.jsonl, checkpoint.msgpack, and at the end vectors.txt,
    vectors.bin, eval.json and similarity.png. A pair budget is checked at log and evaluation steps; steps past it
    are no-ops (their pairs are masked out). devices / row_shards: see `build`.
    """
    return run.train(WordJob, config, out_dir, resume=resume, progress=progress, stop_at_step=stop_at_step,
                     devices=devices, row_shards=row_shards)
