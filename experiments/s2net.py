"""S2Net text similarity with mined negatives on STS Benchmark and SICK, beside the strongest TF-IDF cosine.

    python experiments/s2net_tune.py       # first: chooses the settings on the dev splits (results/s2net-tuning.*)
    python experiments/s2net.py            # the test table in results/s2net.md, 3 seeds
    python experiments/s2net.py --quick    # stsb, the CLI's defaults, one seed, 500 steps: a minute on 2 cores

For each dataset, three blocks:
  baselines  no training: the plain TF-IDF cosine (count × log N/df), the TF-IDF cosine with the term weighting
             chosen on dev, and LSI (the chosen weighting, the chosen k);
  defaults   every S2Net method at the CLI's defaults (k = 128, 2000 steps, Adam 1e-3, the plain weighting);
  chosen     every S2Net method at the settings chosen on dev (weighting, k, start, step size, steps; each
             sampler's own knob), read from results/s2net-tuning.json.
  unseen     as chosen, with --unseen-words: the vocabulary also holds the evaluation texts' words that no
             training text has, whose rows of A keep their start (the TF-IDF baseline's edge on STS-B).
Every trained method of a block sees the same gold preferences and paraphrase queries (same seed -> same
stream), the same number of steps and of mined negatives per query; only where the negatives come from
differs. Scores: Spearman and Pearson of the cosine with the gold scores on the test split, and paraphrase
retrieval (pairs scoring ≥ 4 retrieve their partner among all test sentences): Top-1 and MRR.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ace_jax import io, methods, s2net_run, stats
from ace_jax.errors import AceJaxError

TRAINED = methods.S2NET
COLUMNS = ("spearman", "pearson", "top1", "mrr")
PLAIN = dict(tf="raw", idf="log", tokenizer="unicode", stop_words=False)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="stsb, the defaults block, one seed, 500 steps")
    p.add_argument("--data", default="stsb,sick")
    p.add_argument("--blocks", default="baselines,defaults,chosen,unseen")
    p.add_argument("--methods", default=",".join(TRAINED))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--tuning", default="results/s2net-tuning.json", help="the choices of experiments/s2net_tune.py")
    p.add_argument("--out", default=None, help="folder for the table (default results/, quick: runs/s2net-quick)")
    p.add_argument("--runs", default=None, help="folder for the run folders (default runs/s2net[-quick])")
    args = p.parse_args(argv)
    if args.quick:
        args.data, args.blocks, args.seeds = "stsb", "baselines,defaults", 1
    args.data, args.blocks, args.methods = args.data.split(","), args.blocks.split(","), args.methods.split(",")
    for method in args.methods:
        methods.lookup(TRAINED, method)
    return args


def chosen_settings(args, data: str) -> dict:
    """data -> {"weighting", "shared", "knobs"} from the tuning record."""
    path = Path(args.tuning)
    if not path.exists():
        raise AceJaxError(f"{path} does not exist: run python experiments/s2net_tune.py first")
    record = json.loads(path.read_text())
    if data not in record or not {"weighting", "shared"} <= set(record[data]["chosen"]):
        raise AceJaxError(f"{path} has no settings chosen for {data}: run experiments/s2net_tune.py --data {data}")
    return record[data]["chosen"]


def run_trained(config: s2net_run.S2NetRunConfig, folder: Path) -> dict:
    """metrics.json of the run in `folder`, training it first unless a finished run with this config is there."""
    if not ((folder / "metrics.json").exists() and s2net_run.load_config(folder) == config):
        if folder.exists():
            raise AceJaxError(f"{folder} holds another or unfinished run; remove it")
        s2net_run.train_s2net(config, folder, progress=False)
    final = json.loads((folder / "metrics.json").read_text())
    evals = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    final["hardness"] = [r for r in evals if r.get("kind") == "eval"][-1].get("hardness", {})  # at the last step
    return final


def hardness_cell(results: list[dict]) -> str:
    """The generator's hardness at the end of training: loss ratio to the noise's and its entropy, over seeds."""
    if not all("loss_ratio" in r.get("hardness", {}) for r in results):
        return "–"
    ratio = stats.format_mean_std([r["hardness"]["loss_ratio"] for r in results])
    return f"{ratio}; H {stats.format_mean_std([r['hardness']['gen_entropy'] for r in results])}"


def run_fixed(config: s2net_run.S2NetRunConfig, lsi: bool, unseen_words: bool = False) -> dict:
    """TF-IDF cosine (unseen_words: with the words no training text has) or LSI: no training, no seed dependence."""
    start = time.perf_counter()
    setup = s2net_run.build(config)
    model = s2net_run.model_of(setup, setup.initial_state) if lsi else s2net_run.tfidf_model(setup, unseen_words)
    threshold = config.paraphrase_threshold
    scores = {name: s2net_run.evaluate(model, pairs, threshold) for name, pairs in setup.evals.items()}
    return {**scores, "steps": 0, "train_seconds": time.perf_counter() - start}


def block_rows(args, data: str, block: str, runs: Path) -> list[tuple[str, str, list[dict]]]:
    """(label, setting, results over seeds) for one block of one dataset."""
    steps = {"steps": 500} if args.quick else {}
    if block == "baselines":
        chosen = chosen_settings(args, data)
        weighting, tfidf = chosen["weighting"], dict(chosen["tfidf"])
        unseen = tfidf.pop("unseen_words")
        k = chosen["shared"]["dim"]
        return [("TF-IDF cosine, plain (count × log N/df)", json.dumps(PLAIN),
                 [run_fixed(methods.s2net_config("gold", data=data, **PLAIN), lsi=False)]),
                ("TF-IDF cosine, plain, with unseen words", json.dumps({**PLAIN, "unseen_words": True}),
                 [run_fixed(methods.s2net_config("gold", data=data, **PLAIN), lsi=False, unseen_words=True)]),
                ("TF-IDF cosine, chosen on dev (the baseline)", json.dumps(chosen["tfidf"]),
                 [run_fixed(methods.s2net_config("gold", data=data, **tfidf), lsi=False, unseen_words=unseen)]),
                ("TF-IDF cosine, chosen on dev among S2Net's inputs (training words)", json.dumps(weighting),
                 [run_fixed(methods.s2net_config("gold", data=data, **weighting), lsi=False)]),
                (f"LSI, chosen weighting, k = {k}", f"k={k}",
                 [run_fixed(methods.s2net_config("gold", data=data, **weighting, dim=k, init="lsi"), lsi=True)])]
    rows = []
    for method in args.methods:
        settings = dict(steps)
        if block in ("chosen", "unseen"):
            chosen = chosen_settings(args, data)
            settings = {**chosen["weighting"], **chosen["shared"], **chosen.get("knobs", {}).get(method, {})}
            if block == "unseen":
                settings["unseen_words"] = True
        results = []
        for seed in range(args.seeds):
            config = methods.s2net_config(method, data=data, seed=seed, log_every=500, **settings)
            started = time.perf_counter()
            results.append(run_trained(config, runs / f"{data}-{block}-{method}-s{seed}"))
            test = results[-1]["test"]
            print(f"{data} {block} {method} seed {seed}: test spearman {test['spearman']:.4f} top-1 "
                  f"{test['top1']:.3f} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        shown = {k: v for k, v in settings.items() if k not in ("tf", "idf", "tokenizer", "stop_words")}
        rows.append((TRAINED[method].label, json.dumps(shown) if shown else "defaults", results))
    return rows


def verdicts(rows, baseline) -> list[str]:
    """Each trained method against the chosen TF-IDF on test Spearman, in units of its sample std."""
    lines = []
    for label, _, results in rows:
        values = [r["test"]["spearman"] for r in results]
        mean, std = stats.mean_std(values)
        gap = mean - baseline
        over = f"{gap / std:+.1f} std" if std > 0 else "one seed"
        lines.append(f"- {label}: {gap:+.3f} against the TF-IDF cosine chosen on dev ({over}).")
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = Path(args.runs or ("runs/s2net-quick" if args.quick else "runs/s2net"))
    out = Path(args.out or ("runs/s2net-quick" if args.quick else "results"))
    command = "python experiments/s2net.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# S2Net text similarity: mined negatives against the strongest TF-IDF cosine", "",
        f"Command: `{command.strip()}` (after `python experiments/s2net_tune.py`, whose dev-only choices are in "
        "[s2net-tuning.md](s2net-tuning.md))",
        f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, {platform.system()}, CPU only; "
        f"date {datetime.date.today()}; seeds 0..{args.seeds - 1} for the trained rows (TF-IDF and LSI have no "
        "randomness).",
        "Training: Adam on A; each step 64 gold preferences (pair b scored above pair w) and 64 paraphrase queries "
        "(training pairs scoring ≥ 4, both directions) with 4 mined negatives each from all distinct training "
        "sentences; pairwise logistic loss, γ = 10. Settings per block as the rows say (k = dim).",
        "Test split: Spearman and Pearson of cos(text1, text2) with the gold score; paraphrase retrieval: each "
        "sentence of a test pair scoring ≥ 4 ranks all test sentences, Top-1 and MRR (ties counted against it, "
        "other partners filtered). The dev column is the split the settings were chosen on.",
        f"{stats.NOTE[0].upper()}{stats.NOTE[1:]}; wall-clock is the median training time of one run (2 cores, "
        "includes evaluations along the way).",
        "Hardness (ACE rows, ace_jax/hardness.py, at the last step on 2,048 training paraphrase queries): the "
        "discriminator's loss on generator draws over its loss on uniform draws (above 1: harder than the noise), "
        "and the generator's entropy in nats (uniform over the texts: log C ≈ 9.3 on STS-B, 8.5 on SICK).", ""]
    for data in args.data:
        dev = s2net_run.EVAL_SPLITS[data][0]
        lines += [f"## {data}", ""]
        baseline = None
        for block in args.blocks:
            rows = block_rows(args, data, block, runs)
            if block == "baselines":
                baseline = rows[2][2][0]["test"]["spearman"]
            lines += [f"### {block}", "", "| method | settings | " + " | ".join(COLUMNS) + f" | {dev} spearman "
                      "| hardness: loss ratio; H(g) nats | wall-clock (s) |", "|---|---|" + "---|" * (len(COLUMNS) + 3)]
            for label, setting, results in rows:
                cells = [stats.format_mean_std([r["test"][c] for r in results]) for c in COLUMNS]
                cells.append(stats.format_mean_std([r[dev]["spearman"] for r in results]))
                cells.append(hardness_cell(results))
                cells.append(f"{np.median([r['train_seconds'] for r in results]):.0f}")
                lines.append(f"| {label} | `{setting}` | " + " | ".join(cells) + " |")
            lines.append("")
            if block != "baselines" and baseline is not None:
                lines += verdicts(rows, baseline) + [""]
    path = out / ("s2net.md" if not args.quick else "s2net-quick.md")
    out.mkdir(parents=True, exist_ok=True)
    with io.atomic_write(path) as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AceJaxError as error:
        print(f"s2net: error: {error}", file=sys.stderr)
        sys.exit(1)
