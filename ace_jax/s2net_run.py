"""S2Net end to end: sentence pairs -> term vectors -> training on the device -> correlation and retrieval."""

import dataclasses
import functools
import json
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse
import scipy.stats

from ace_jax import game, hardness, io, run, text_features
from ace_jax.data import pairs as pairs_lib
from ace_jax.errors import AceJaxError, SettingError, check
from ace_jax.families import s2net as s2net_family
from ace_jax.families.s2net import Batch, Candidates, GoldPairs, PairBatch, Preferences, S2NetConfig
from ace_jax.scorers import s2net

# The gold scale of each named dataset: targets for mse are (score − low) / (high − low).
SCALES = {"stsb": (0.0, 5.0), "sick": (1.0, 5.0)}
# The splits a named dataset is evaluated on after training, the last one being the reported test.
EVAL_SPLITS = {"stsb": ("dev", "test"), "sick": ("trial", "test")}
INITS = ("lsi", "random")


@dataclasses.dataclass(frozen=True)
class S2NetRunConfig:
    """An S2Net run: data, features, model size, budget and the game (S2NetConfig).

    data: stsb or sick (train on the train split, evaluate on dev/trial and test) or a TSV file of
      text1<TAB>text2<TAB>score (train on all of it; evaluate on `test_data` if given, else on it).
    Each of the `steps` steps sees `batch` gold preferences (data.pairs.preference_pairs; unless
    gold_preferences is off) and, unless the sampler is none, `batch` paraphrase queries (pairs
    scoring ≥ paraphrase_threshold, both directions) with game.negatives mined negatives each, drawn
    from all distinct training texts. Without gold preferences the scores only pick the paraphrases.
    """

    data: str = "stsb"
    test_data: str | None = None
    dim: int = 128
    init: str = "random"  # random beat LSI on STS-B dev at every step size tried (LSI loses rare words)
    tf: str = "raw"  # term weights: text_features.Weighting
    idf: str = "log"
    tokenizer: str = "unicode"
    stop_words: bool = False
    min_df: int = 1
    # The vocabulary also holds the evaluation texts' words that no training text has, at the idf of a df of 0.
    # No training text moves their rows of A, which keep their start: with init random, a random projection
    # that keeps the overlap of such words between two texts (with lsi their rows are zero, as if dropped).
    unseen_words: bool = False
    steps: int = 2000
    batch: int = 64
    learning_rate: float = 1e-3  # Adam on A
    gen_dim: int = 32
    gen_learning_rate: float = 1e-3  # 1e-2 collapsed the generator onto easy negatives (entropy 0)
    paraphrase_threshold: float = 4.0  # in the dataset's own units: STS-B 0-5, SICK 1-5
    preference_margin: float = 0.0
    gold_preferences: bool = True
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 1000
    game: S2NetConfig = S2NetConfig()

    def __post_init__(self):
        positive = "{name} must be positive, not {value}"
        text_features.Weighting(self.tf, self.idf, self.tokenizer, self.stop_words)  # checks them
        check([
            (self.dim >= 1, "dim", self.dim, positive),
            (self.gen_dim >= 1, "gen_dim", self.gen_dim, positive),
            (self.init in INITS, "init", self.init, "{name} must be one of " + ", ".join(INITS) + ", not {value!r}"),
            (self.min_df >= 1, "min_df", self.min_df, "{name} must be at least 1, not {value}"),
            (self.steps >= 0, "steps", self.steps, "{name} must be at least 0, not {value}"),
            (self.batch >= 2, "batch", self.batch, "{name} must be at least 2, not {value}"),
            (self.learning_rate > 0, "learning_rate", self.learning_rate, positive),
            (self.gen_learning_rate > 0, "gen_learning_rate", self.gen_learning_rate, positive),
            (self.log_every >= 1, "log_every", self.log_every, "{name} must be at least 1, not {value}"),
            (self.checkpoint_every >= 0, "checkpoint_every", self.checkpoint_every,
             "{name} must be at least 0 (0: at the end), not {value}"),
            (self.gold_preferences or self.game.sampler != "none", "sampler", self.game.sampler,
             "{name} none learns from gold preferences only; keep them or choose another"),
        ])

    @property
    def weighting(self) -> text_features.Weighting:
        return text_features.Weighting(self.tf, self.idf, self.tokenizer, self.stop_words)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "S2NetRunConfig":
        data = dict(data)
        data["game"] = S2NetConfig(**data["game"])
        if "weighting" in data:  # runs written before tf and idf were settings of their own
            legacy = text_features.WEIGHTINGS[data.pop("weighting")]
            data.update(tf=legacy.tf, idf=legacy.idf)
        return cls(**data)


def make_config(**fields) -> S2NetRunConfig:
    """S2NetRunConfig from flat fields, the game's (sampler, loss, negatives, ...) included; a bad value is a
    SettingError naming its field."""
    names = {f.name for f in dataclasses.fields(S2NetConfig)}
    game = {k: fields.pop(k) for k in list(fields) if k in names}
    return S2NetRunConfig(**fields, game=S2NetConfig(**game))


# ---------------------------------------------------------------------------------------------- model


@dataclasses.dataclass(frozen=True, eq=False)
class TextModel:
    """Texts -> vectors: term vectors over `vocab` (TF-IDF or binary), then act(Aᵀf), or the term vectors themselves.

    projection: A [d, k] float32, or None for the raw term vectors (the TF-IDF cosine baseline).
    """

    vocab: dict[str, int]
    idf: np.ndarray  # [d] float32
    weighting: text_features.Weighting = text_features.Weighting()
    projection: np.ndarray | None = None
    activation: str = "none"
    # The TF-IDF cosine only (no projection): with a value, words outside the vocabulary count too, at this idf
    # (a df of 0: text_features.unseen_idf), instead of being dropped (with min_df 1, the vocabulary is every
    # training word, so these are the words no training text has). A projection has no row for them.
    idf_unseen: float | None = None

    def term_vectors(self, texts) -> scipy.sparse.csr_matrix:
        """Term vectors [N, d'] of the texts; d' > d where idf_unseen adds the words of these texts the vocabulary
        lacks (so compare only texts vectorised in one call)."""
        vocab, idf = self.vocab, self.idf
        if self.idf_unseen is not None and self.projection is None:
            vocab, idf = text_features.with_unseen(texts, vocab, idf, self.idf_unseen, self.weighting)
        ids, weights = text_features.featurize(texts, vocab, idf, self.weighting)
        return s2net.term_matrix(ids, weights, len(vocab))

    def vectors(self, texts) -> np.ndarray | scipy.sparse.csr_matrix:
        """[N, k] float64, or the sparse [N, d] term vectors when there is no projection."""
        terms = self.term_vectors(texts)
        if self.projection is None:
            return terms
        projected = terms @ np.asarray(self.projection, np.float64)
        return np.asarray(s2net.ACTIVATIONS[self.activation](projected))

    def save(self, out: Path) -> None:
        """vocab.tsv (word<TAB>idf, in id order) and, with a projection, projection.npy [d, k]."""
        words = sorted(self.vocab, key=self.vocab.get)
        with io.atomic_write(out / "vocab.tsv") as f:
            f.writelines(f"{w}\t{self.idf[i]:.9g}\n" for i, w in enumerate(words))
        if self.projection is not None:
            with io.atomic_write(out / "projection.npy", "wb") as f:
                np.save(f, np.asarray(self.projection, np.float32))

    @classmethod
    def load(cls, run_dir: str | Path) -> "TextModel":
        """The model of a run folder written by train_s2net."""
        folder = Path(run_dir)
        config = load_config(folder)
        try:
            rows = [line.split("\t") for line in (folder / "vocab.tsv").read_text(encoding="utf-8").splitlines()]
            words, idf = [w for w, _ in rows], np.array([x for _, x in rows], np.float32)
            projection = np.load(folder / "projection.npy")
        except FileNotFoundError as error:
            raise AceJaxError(f"{folder} is not a finished S2Net run: {Path(error.filename).name} is missing") from None
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise AceJaxError(f"cannot read the S2Net run in {folder}: {error}") from None
        if projection.shape != (len(words), config.dim):
            raise AceJaxError(f"{folder}: projection.npy is {projection.shape}, expected ({len(words)}, {config.dim})")
        return cls({w: i for i, w in enumerate(words)}, idf, config.weighting, projection,
                   config.game.activation)


def load_config(run_dir: str | Path) -> S2NetRunConfig:
    return run.load_config(run_dir, "s2net", S2NetRunConfig.from_json, field="run")


def _unit_rows(x):
    """Rows scaled to unit length (zero rows stay zero: the clipped cosine of s2net.cosine)."""
    squared = np.asarray(x.multiply(x).sum(1)).ravel() if scipy.sparse.issparse(x) else (x * x).sum(1)
    scale = 1.0 / np.sqrt(np.maximum(squared, 1e-8))
    return (scipy.sparse.diags(scale) @ x).tocsr() if scipy.sparse.issparse(x) else x * scale[:, None]


def evaluate(model: TextModel, pairs: pairs_lib.SentencePairs, threshold: float = 4.0) -> dict:
    """Correlation of cos(text1, text2) with the gold scores, and paraphrase retrieval (data.pairs).

    {"pearson", "spearman", "pairs", "top1", "mrr", "queries"}; top1/mrr are NaN without a pair scoring ≥ threshold.
    """
    both = _unit_rows(model.vectors(pairs.text1 + pairs.text2))  # one call: one vocabulary for both sides
    u, v = both[:len(pairs)], both[len(pairs):]
    sims = np.asarray(u.multiply(v).sum(1)).ravel() if scipy.sparse.issparse(u) else (u * v).sum(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant scorer: the correlations are NaN, as they should be
        scores = {"pearson": float(scipy.stats.pearsonr(sims, pairs.score)[0]),
                  "spearman": float(scipy.stats.spearmanr(sims, pairs.score)[0]), "pairs": len(pairs)}
    task = pairs_lib.paraphrase_queries(pairs, threshold)
    sentences = _unit_rows(model.vectors(task.sentences))
    sim = sentences[task.query] @ sentences.T
    sim = sim.toarray() if scipy.sparse.issparse(sim) else sim
    return {**scores, **pairs_lib.retrieval_metrics(sim, task.query, task.partner)}


def eval_sets(data: str, test_data: str | None = None, *,
              split: str | None = None) -> dict[str, pairs_lib.SentencePairs]:
    """name -> pairs to evaluate on: a named dataset's dev/trial and test splits (or just `split`), or TSV files."""
    if data in EVAL_SPLITS:
        splits = (split,) if split else EVAL_SPLITS[data]
        return {s: pairs_lib.load_pairs(data, s) for s in splits}
    if test_data is not None:
        return {"test": pairs_lib.load_pairs(test_data)}
    return {"train": pairs_lib.load_pairs(data)}


def search_texts(data: str) -> tuple[str, ...]:
    """The distinct texts of a named dataset's train split, or of a TSV file, in order of first appearance."""
    pairs = pairs_lib.load_pairs(data, "train" if data in EVAL_SPLITS else None)
    return tuple(dict.fromkeys(text for pair in zip(pairs.text1, pairs.text2) for text in pair))


def most_similar(model: TextModel, text: str, texts: tuple[str, ...], top: int = 10) -> list[tuple[float, str]]:
    """The `top` texts with the highest cosine to `text`, best first (ties in the order of `texts`), the text
    itself excluded."""
    if model.term_vectors([text]).nnz == 0:
        raise AceJaxError(f"no word of {text!r} is in the model's vocabulary")
    query = _unit_rows(model.vectors([text]))
    candidates = [t for t in texts if t != text.strip()]
    sims = query @ _unit_rows(model.vectors(candidates)).T
    sims = np.asarray(sims.toarray() if scipy.sparse.issparse(sims) else sims).ravel()
    order = np.argsort(-sims, kind="stable")[:top]
    return [(float(sims[i]), candidates[i]) for i in order]


# ------------------------------------------------------------------------------------------ training


@dataclasses.dataclass
class Setup:
    """What a run derives from its config before training: texts, features, the first state."""

    config: S2NetRunConfig
    train: pairs_lib.SentencePairs
    task: pairs_lib.RetrievalTask  # the training texts (task.sentences) and paraphrase queries
    pair_text: np.ndarray  # [N, 2] int32: each training pair's two texts as rows of task.sentences
    target: np.ndarray  # [N] float32: gold scores rescaled to [0, 1]
    model: TextModel  # the vocabulary and IDF (projection None)
    texts: Candidates  # the training texts' term vectors, on the device
    initial_state: game.GameState
    evals: dict[str, pairs_lib.SentencePairs]


def gold_scale(config: S2NetRunConfig, train: pairs_lib.SentencePairs) -> tuple[float, float]:
    if config.data in SCALES:
        return SCALES[config.data]
    low, high = float(train.score.min()), float(train.score.max())
    if low == high:
        raise AceJaxError(f"{config.data}: every score is {low:g}; S2Net learns from pairs that score differently")
    return low, high


def build(config: S2NetRunConfig) -> Setup:
    """Reads the data and builds the first state; every input problem is reported here, before training."""
    split = "train" if config.data in EVAL_SPLITS else None
    train = pairs_lib.load_pairs(config.data, split)
    evals = eval_sets(config.data, config.test_data)
    task = pairs_lib.paraphrase_queries(train, config.paraphrase_threshold)
    if config.game.sampler != "none" and len(task.query) == 0:
        raise AceJaxError(f"{config.data}: no training pair scores ≥ {config.paraphrase_threshold:g}, so there are "
                          "no paraphrase queries to mine negatives for; lower the paraphrase threshold or use "
                          "sampler none")
    index = {text: i for i, text in enumerate(task.sentences)}
    pair_text = np.array([[index[a], index[b]] for a, b in zip(train.text1, train.text2)], np.int32)
    low, high = gold_scale(config, train)
    target = ((train.score - low) / (high - low)).astype(np.float32)

    vocab = text_features.build_vocab(task.sentences, config.min_df, config.weighting)
    if not vocab:
        raise AceJaxError(f"{config.data}: no word occurs in {config.min_df} or more training texts")
    idf = text_features.idf_weights(task.sentences, vocab, config.weighting)
    if config.unseen_words:
        eval_texts = [text for pairs in evals.values() for text in pairs.text1 + pairs.text2]
        seen, _ = text_features.document_frequencies(task.sentences, config.weighting.tokenizer)
        vocab, idf = text_features.with_unseen(eval_texts, vocab, idf, text_features.unseen_idf(
            len(task.sentences), config.weighting), config.weighting, seen)
    ids, weights = text_features.featurize(task.sentences, vocab, idf, config.weighting)
    k_init, k_gen, k_state = jax.random.split(jax.random.PRNGKey(config.seed), 3)  # raw keys: checkpoints hold them
    if config.init == "lsi" and not 0 < config.dim < min(len(task.sentences), len(vocab)):
        raise SettingError("dim", config.dim, "{name} must lie below min(texts, terms) = "
                           + str(min(len(task.sentences), len(vocab))) + " for the lsi start, not {value}")
    params = s2net_family.S2Net().init(k_init, len(vocab), config.dim, config.init, ids, weights)
    gen_params = gen_tx = None
    if config.game.sampler == "ace":
        gen_params = s2net_family.init_generator(k_gen, len(vocab), config.gen_dim)
        gen_tx = optax.adam(config.gen_learning_rate)
    state = game.create_state(k_state, params, optax.adam(config.learning_rate), gen_params, gen_tx,
                              sparse_updates=False, baseline=s2net_family.game_parts(config.game).baseline.init())
    return Setup(config, train, task, pair_text, target, TextModel(vocab, idf, config.weighting),
                 Candidates(jnp.asarray(ids), jnp.asarray(weights)), state, evals)


def step_plan(setup: Setup, start: int, num_steps: int) -> dict:
    """The texts of steps start .. start + num_steps − 1, as [num_steps, B] arrays of rows of the text table.

    Drawn from a generator seeded by (seed, start), so a resumed run sees the same steps as an unbroken one.
    """
    config, shape = setup.config, (num_steps, setup.config.batch)
    better, worse = pairs_lib.preference_pairs(setup.train, num_steps * config.batch,
                                               margin=config.preference_margin, seed=(config.seed, start))
    rng = np.random.default_rng((config.seed, start, 1))
    rows = rng.integers(0, max(len(setup.task.query), 1), shape)
    queries = setup.task.query[rows] if len(setup.task.query) else np.zeros(shape, np.int32)
    partners = setup.task.partner[rows] if len(setup.task.query) else np.zeros(shape, np.int32)
    return {
        "query": queries, "partner": partners,
        "better": setup.pair_text[better].reshape(*shape, 2), "worse": setup.pair_text[worse].reshape(*shape, 2),
        "better_target": setup.target[better].reshape(shape), "worse_target": setup.target[worse].reshape(shape),
    }


def run_steps(state, texts: Candidates, plan: dict, *, config: S2NetConfig, gold_preferences: bool = True):
    """Scan the game's steps over the plan's steps, gathering each step's texts on the device; metrics averaged."""
    step_fn = s2net_family.make_step(config)

    def gold_pairs(rows, target):
        return GoldPairs(texts.ids[rows[:, 0]], texts.weights[rows[:, 0]], texts.ids[rows[:, 1]],
                         texts.weights[rows[:, 1]], target)

    def body(state, step):
        q, p = step["query"], step["partner"]
        batch = Batch(None, None)  # sampler none mines nothing: gather no queries
        if config.sampler != "none":
            batch = Batch(PairBatch(texts.ids[q], texts.weights[q], texts.ids[p], texts.weights[p], p, q), texts)
        if gold_preferences:
            batch = batch.replace(gold=Preferences(gold_pairs(step["better"], step["better_target"]),
                                                   gold_pairs(step["worse"], step["worse_target"])))
        return step_fn(state, batch)

    state, metrics = jax.lax.scan(body, state, plan)
    return state, jax.tree.map(jnp.mean, metrics)


@functools.cache
def compiled_steps(config: S2NetConfig, gold_preferences: bool = True):
    return jax.jit(functools.partial(run_steps, config=config, gold_preferences=gold_preferences), donate_argnums=0)


def tfidf_model(setup: Setup, unseen_words: bool = False) -> TextModel:
    """The TF-IDF cosine of the run's weighting; unseen_words: words no training text has count too, at the idf of
    a df of 0 (the rarest a word can be), rather than being dropped."""
    idf_unseen = text_features.unseen_idf(len(setup.task.sentences), setup.config.weighting) if unseen_words else None
    return dataclasses.replace(setup.model, idf_unseen=idf_unseen)


def model_of(setup: Setup, state) -> TextModel:
    projection = np.asarray(jax.device_get(state.params["A"]), np.float32)
    return dataclasses.replace(setup.model, projection=projection, activation=setup.config.game.activation)


def _first_eval(config: S2NetRunConfig) -> str:
    return EVAL_SPLITS[config.data][0] if config.data in EVAL_SPLITS else ("test" if config.test_data else "train")


class S2NetJob:
    """An S2Net run as the run loop (ace_jax.run) drives it: log_every steps per call, scanned on the device,
    each chunk's metrics averaged; the first evaluation split is scored at every log step."""

    family, extendable, final_file, words_per_step = "s2net", ("steps",), "metrics.json", None

    def __init__(self, config: S2NetRunConfig):
        self.config, self.setup = config, build(config)
        self.total_steps, self.log_every, self.eval_every = config.steps, config.log_every, config.log_every
        self.checkpoint_every = config.checkpoint_every
        self.watch = _first_eval(config)
        self.steps_fn = compiled_steps(config.game, config.gold_preferences)
        # Hardness is measured on the same paraphrase queries at every evaluation point.
        task = self.setup.task
        chosen = np.random.default_rng(0).permutation(len(task.query))[:2048]
        self.hardness_queries = task.query[chosen], task.partner[chosen]
        self.started = time.perf_counter()  # train_seconds: this process's wall-clock from here, evaluations included

    def start(self, out: Path) -> None:
        self.setup.model.save(out)  # vocab.tsv

    def initial_state(self):
        return self.setup.initial_state

    def place(self, state):
        return state

    def fetch(self, state):
        return jax.device_get(state)

    def advance(self, state, step: int, steps: int):
        return run.advance_in_pieces(self.scan, state, step, steps, (self.log_every,))

    def scan(self, state, step: int, steps: int):
        return self.steps_fn(state, self.setup.texts, step_plan(self.setup, step, steps))

    def spent(self, state) -> bool:
        return False

    def status(self, state) -> dict:
        return {}

    def progress(self, status: dict, scores: dict) -> list[str]:
        if self.watch not in scores:
            return []
        s = scores[self.watch]
        parts = [f"{self.watch} spearman {s['spearman']:.4f} top-1 {s['top1']:.3f}"]
        if "loss_ratio" in scores.get("hardness", {}):
            parts.append(f"hardness ×{scores['hardness']['loss_ratio']:.2f}")
        return parts

    def evaluate(self, state) -> dict:
        model = model_of(self.setup, state)
        scores = {self.watch: evaluate(model, self.setup.evals[self.watch], self.config.paraphrase_threshold)}
        if self.config.game.sampler != "none" and len(self.hardness_queries[0]):
            scores["hardness"] = self.hardness(model, state)
        return scores

    def hardness(self, model: TextModel, state) -> dict:
        """hardness.text_hardness for this run's texts, generator and loss."""
        texts = self.setup.texts
        vectors = np.asarray(model.vectors(self.setup.task.sentences), np.float64)
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8)
        gen_logits_of = None
        if state.gen_params:
            def gen_logits_of(q, p):
                pairs = PairBatch(texts.ids[q], texts.weights[q], texts.ids[p], texts.weights[p], jnp.asarray(p),
                                  jnp.asarray(q))
                return s2net_family.generator_logits(state.gen_params, pairs, texts)
        return hardness.text_hardness(unit, *self.hardness_queries, gen_logits_of or (lambda q, p: None),
                                      s2net_family.family_of(self.config.game).loss, jax.random.key(0))

    def finish(self, state, out: Path, writer: bool) -> dict:
        if not writer:
            return {}
        model = model_of(self.setup, state)
        final = {name: evaluate(model, pairs, self.config.paraphrase_threshold)
                 for name, pairs in self.setup.evals.items()}
        final.update(steps=int(state.step), train_seconds=time.perf_counter() - self.started)
        model.save(out)
        with io.atomic_write(out / self.final_file) as f:
            json.dump(run.finite_or_null(final), f, indent=2)
        return final


def train_s2net(config: S2NetRunConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = True,
                stop_at_step: int | None = None) -> dict:
    """Trains, evaluates and writes a run folder; returns the final metrics (those of metrics.json).

    The folder holds config.json, vocab.tsv (word<TAB>idf), metrics.jsonl (training loss every log_every steps,
    and the first evaluation set's correlations), checkpoint.msgpack (both players and their optimiser
    states), and at the end projection.npy (A [d, k]) and metrics.json. resume=True continues the run's
    checkpoint with its settings, up to config.steps (the one setting a resumed run may change: raise it to
    train longer), giving the same A as an unbroken run (run.train has the rules).
    """
    return run.train(S2NetJob, config, out_dir, resume=resume, progress=progress, stop_at_step=stop_at_step)
