"""Order embeddings for WordNet hypernym prediction (Vendrov, Kiros, Fidler & Urtasun, ICLR 2016) as a family on
the knowledge-graph game: the closure's (hyponym, ancestor) pairs are triples of one relation, scored by the
order scorer s = −E(x, y) = −‖max(0, y − x)‖² (x the hyponym, y its hypernym, rows non-negative), one side of
each corrupted; the samplers, generators, hardness measures, checkpoints and early stopping are kg_run's.

What differs is the data (data.wordnet: the WordNet 3.0 noun closure, split as the reference code splits it)
and the scores: a pair is predicted true when its energy is at most a threshold, chosen for accuracy on the
valid pairs (4,000 true, 4,000 corrupted) and applied to the test pairs.
"""

import dataclasses
import functools
from pathlib import Path

import numpy as np

from ace_jax import io, kg_run, run
from ace_jax.data import triples as triples_lib, wordnet
from ace_jax.data.registry import resolve
from ace_jax.errors import AceJaxError, SettingError, check
from ace_jax.kg_config import KgRunConfig

SAMPLERS = ("uniform", "self-adv", "kbgan", "ace")


@dataclasses.dataclass(frozen=True)
class OrderConfig(KgRunConfig):
    """A hypernym run: KgRunConfig's settings with the order-embeddings reference's defaults (d = 50, the
    contrastive loss with margin 1, one negative per pair, 500 pairs a step, Adam at 0.01, 20 epochs, the valid
    accuracy every epoch). data: the registry's `wordnet` or a WordNet database archive (.tar.gz); split_size:
    the test and the valid pairs (the reference's 4,000 each)."""

    models = ("order",)
    samplers = SAMPLERS

    data: str = "wordnet"
    model: str = "order"
    dim: int = 50
    negatives: int = 1
    loss: str = "contrastive"
    margin: float = 1.0
    optimizer: str = "adam"
    lr: float = 0.01
    batch: int = 500
    epochs: int = 20
    eval_every: int = 1
    split_size: int = 4000

    def __post_init__(self):
        super().__post_init__()
        check([(self.split_size >= 1, "split_size", self.split_size, "{name} must be at least 1, not {value}")])

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "arrays": {"entity": "embeddings.npy"}}


@dataclasses.dataclass(frozen=True, eq=False)
class Hypernyms:
    nouns: wordnet.Nouns
    closure: np.ndarray  # [P, 2] distinct (hyponym, ancestor) pairs
    split: wordnet.HypernymSplit

    def graph(self) -> triples_lib.KnowledgeGraph:
        """The split as triples of one relation, head the hyponym, tail the ancestor."""
        def triples(pairs):
            return np.stack([pairs[:, 0], np.zeros(len(pairs), np.int32), pairs[:, 1]], axis=1)

        return triples_lib.KnowledgeGraph(self.nouns.names, ("hypernym",), triples(self.split.train),
                                          triples(self.split.valid), triples(self.split.test))


@functools.lru_cache(maxsize=2)
def load_hypernyms(data: str, split_size: int = 4000) -> Hypernyms:
    """The noun closure of a WordNet archive and its split (cached: the seeds of one process share it)."""
    nouns = wordnet.load_nouns(data)
    closure = wordnet.closure(len(nouns), nouns.edges)
    return Hypernyms(nouns, closure, wordnet.split_closure(closure, len(nouns), size=split_size))


def energies(params: dict, pairs: np.ndarray) -> np.ndarray:
    """E(x, y) = ‖max(0, y − x)‖² of (hyponym x, hypernym y) pairs [N, 2], from the entity table."""
    table = np.asarray(params["entity"], np.float32)
    return np.square(np.maximum(table[pairs[:, 1]] - table[pairs[:, 0]], 0.0)).sum(-1)


def best_threshold(energy: np.ndarray, labels: np.ndarray) -> float:
    """The threshold t for which "true iff E ≤ t" is most accurate on these pairs: one of their energies (the
    smallest of equally accurate ones), or −inf when calling every pair false is best."""
    order = np.argsort(energy, kind="stable")
    energy, labels = energy[order], labels[order]
    ends = np.append(energy[1:] != energy[:-1], True)  # the last of each run of equal energies
    correct = np.cumsum(labels) + ((~labels).sum() - np.cumsum(~labels))  # true positives + true negatives
    candidates = correct[ends]
    if (~labels).sum() >= candidates.max():
        return float("-inf")
    return float(energy[ends][np.argmax(candidates)])


def classify(energy: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Accuracy, precision, recall and F1 of "true iff E ≤ threshold"."""
    predicted = energy <= threshold
    tp = int((predicted & labels).sum())
    precision = tp / max(int(predicted.sum()), 1)
    recall = tp / max(int(labels.sum()), 1)
    return {"accuracy": float((predicted == labels).mean()), "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / max(precision + recall, 1e-12), "threshold": threshold,
            "pairs": int(len(labels))}


def split_scores(hypernyms: Hypernyms, params: dict, split: str) -> dict:
    """A split's classification scores at the threshold chosen on the valid pairs."""
    threshold = best_threshold(energies(params, hypernyms.split.labelled("valid")[0]),
                               hypernyms.split.labelled("valid")[1])
    pairs, labels = hypernyms.split.labelled(split)
    return classify(energies(params, pairs), labels, threshold)


def closure_baseline(hypernyms: Hypernyms) -> dict:
    """No learning: a test pair is called true when the transitive closure of the train and valid pairs, taken as
    edges, holds it (Vendrov et al.'s baseline); accuracy, precision and recall as `classify`'s."""
    seen = np.concatenate([hypernyms.split.train, hypernyms.split.valid])
    implied = {tuple(p) for p in wordnet.closure(len(hypernyms.nouns), seen).tolist()}
    pairs, labels = hypernyms.split.labelled("test")
    inferred = np.array([tuple(p) in implied for p in pairs.tolist()])
    return classify(np.where(inferred, 0.0, 1.0), labels, 0.0)


def lemma_test(hypernyms: Hypernyms, params: dict, threshold: float, path: str | Path = "hypernym-test") -> dict:
    """The published lemma-level test file (hyponym<TAB>hypernym<TAB>True|False<TAB>kind, `family,doctor-n`) on
    the pairs whose both words name exactly one synset by NLTK's name stem (`family_doctor` of
    family_doctor.n.01): their accuracy at `threshold`, the coverage, how many of its true pairs are in our
    training split (its split is not ours), the accuracy without them, and how many of its false pairs are in
    the closure (the reference draws negatives unfiltered)."""
    path = resolve(path)
    stems: dict[str, list[int]] = {}
    for i, name in enumerate(hypernyms.nouns.names):
        stems.setdefault(name.rsplit(".", 2)[0], []).append(i)
    rows, labels = [], []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 4 or fields[2] not in ("True", "False"):
            raise AceJaxError(f"{path}:{number}: expected hyponym<TAB>hypernym<TAB>True|False<TAB>kind")
        ids = [stems.get(word.removesuffix("-n").replace(",", "_").lower(), []) for word in fields[:2]]
        rows.append([ids[0][0], ids[1][0]] if all(len(i) == 1 for i in ids) else [-1, -1])
        labels.append(fields[2] == "True")
    pairs, labels = np.asarray(rows, np.int32), np.asarray(labels)
    mapped = pairs[:, 0] >= 0
    pairs, labels = pairs[mapped], labels[mapped]
    predicted_true = energies(params, pairs) <= threshold
    train = {tuple(p) for p in hypernyms.split.train.tolist()}
    closure = {tuple(p) for p in hypernyms.closure.tolist()}
    in_train = np.array([tuple(p) in train for p in pairs.tolist()], bool)
    unseen = ~in_train
    return {"pairs": int(len(mapped)), "mapped": int(mapped.sum()),
            "accuracy": float((predicted_true == labels).mean()),
            "true_in_our_train": int((in_train & labels).sum()),
            "accuracy_without_our_train": float((predicted_true[unseen] == labels[unseen]).mean()),
            "false_in_closure": int(sum(tuple(p) in closure for p in pairs[~labels].tolist()))}


class OrderJob(kg_run.KgJob):
    """A hypernym run: kg_run's job on the closure's triples, the valid accuracy its criterion."""

    family = "order"
    config_type = OrderConfig
    criterion = "accuracy"

    def make_setup(self, config: OrderConfig) -> kg_run.Setup:
        self.hypernyms = load_hypernyms(config.data, config.split_size)
        return kg_run.build(config, self.hypernyms.graph(), probes=512)

    def split_scores(self, params: dict, split: str) -> dict:
        return split_scores(self.hypernyms, params, split)

    def describe(self, valid: dict) -> str:
        return f"valid accuracy {valid['accuracy']:.4f}"

    def start(self, out: Path) -> None:
        with io.atomic_write(out / "synsets.tsv") as f:
            f.writelines(f"{i}\t{name}\t{','.join(lemmas)}\n"
                         for i, (name, lemmas) in enumerate(zip(self.hypernyms.nouns.names,
                                                                self.hypernyms.nouns.lemmas)))

    def more_scores(self, best: dict, final: dict) -> dict:
        if self.config.data != "wordnet":
            return {}
        try:
            return {"lemma_test": lemma_test(self.hypernyms, best, final["valid"]["threshold"])}
        except AceJaxError as error:  # the published file is a cross-check: its absence does not fail a run
            return {"lemma_test": {"skipped": str(error)}}


def train_order(config: OrderConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = True,
                stop_at_step: int | None = None) -> dict:
    """Trains, evaluates and writes a run folder; returns the final metrics (metrics.json): valid and test
    accuracy, precision, recall and F1 at the threshold chosen on valid (`threshold`), the chosen epoch, and on
    the staged data the published lemma-level test file's scores (`lemma_test`). The folder holds config.json,
    synsets.tsv (id<TAB>NLTK name<TAB>lemmas), embeddings.npy [82,115, d] (the best valid evaluation's),
    metrics.jsonl, metrics.json, valid_accuracy.png and checkpoint.msgpack."""
    return run.train(OrderJob, config, out_dir, resume=resume, progress=progress, stop_at_step=stop_at_step)


def load_config(run_dir: str | Path) -> OrderConfig:
    return run.load_config(run_dir, "order", OrderConfig.from_json, field="run")


def read_synsets(run_dir: str | Path) -> tuple[list[str], list[tuple[str, ...]]]:
    """A run's synset names and lemmas, from synsets.tsv."""
    path = Path(run_dir) / "synsets.tsv"
    if not path.exists():
        raise AceJaxError(f"{path}: missing; is it an order run folder?")
    names, lemmas = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 3 or fields[0] != str(number - 1):
            raise AceJaxError(f"{path}:{number}: expected id<TAB>name<TAB>lemmas")
        names.append(fields[1])
        lemmas.append(tuple(fields[2].split(",")))
    return names, lemmas


def predict(run_dir: str | Path, word: str, top: int = 10) -> list[tuple[str, list[tuple[str, float]]]]:
    """For each synset with the lemma `word` (any case; spaces as underscores): the `top` other synsets of least
    energy as its hypernym, E(x, y) = ‖max(0, y − x)‖², with their energies."""
    names, lemmas = read_synsets(run_dir)
    table = np.load(Path(run_dir) / "embeddings.npy")
    wanted = word.strip().replace(" ", "_").lower()
    found = [i for i, words in enumerate(lemmas) if wanted in (w.lower() for w in words)]
    if not found:
        raise SettingError("word", word, "{name} {value!r}: no noun synset has this lemma")
    out = []
    for i in found:
        energy = np.square(np.maximum(table - table[i], 0.0)).sum(-1)
        energy[i] = np.inf
        order = np.argsort(energy, kind="stable")[:top]
        out.append((names[i], [(names[j], float(energy[j])) for j in order]))
    return out
