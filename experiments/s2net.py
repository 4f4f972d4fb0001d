"""S2Net text similarity with mined negatives on STS Benchmark and SICK, beside TF-IDF and LSI.

    python experiments/s2net.py            # the table in results/s2net.md: stsb and sick, k ∈ {32, 128, 300}, 3 seeds
    python experiments/s2net.py --quick    # stsb, k = 32, one seed, 500 steps: a minute on 2 cores

Every trained method sees the same gold preferences and paraphrase queries (same seed -> same
stream), the same number of steps and the same number of mined negatives per query; only where the
negatives come from differs. Scores: Pearson and Spearman of the cosine with the gold scores on the
test split, and paraphrase retrieval (pairs scoring ≥ 4 retrieve their partner among all test
sentences): Top-1 and MRR.
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
FIXED = {"tfidf": "TF-IDF cosine (no training)", "lsi": "LSI (truncated SVD of the training TF-IDF)"}
COLUMNS = ("spearman", "pearson", "top1", "mrr")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="stsb, k = 32, one seed, 500 steps")
    p.add_argument("--data", default="stsb,sick")
    p.add_argument("--dims", default="32,128,300")
    p.add_argument("--methods", default=",".join([*FIXED, *TRAINED]))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--negatives", type=int, default=4)
    p.add_argument("--out", default=None, help="folder for the table (default results/, quick: runs/s2net-quick)")
    p.add_argument("--runs", default=None, help="folder for the run folders (default runs/s2net[-quick])")
    args = p.parse_args(argv)
    if args.quick:
        args.data, args.dims, args.seeds, args.steps = "stsb", "32", 1, 500
    args.data = args.data.split(",")
    args.dims = [int(k) for k in args.dims.split(",")]
    args.methods = args.methods.split(",")
    unknown = [m for m in args.methods if m not in FIXED and m not in TRAINED]
    if unknown:
        p.error(f"unknown method {unknown[0]!r}; choose from {', '.join([*FIXED, *TRAINED])}")
    return args


def config_for(args, data: str, dim: int, method: str, seed: int) -> s2net_run.S2NetRunConfig:
    return methods.s2net_config(method if method in TRAINED else "uniform", data=data, dim=dim, steps=args.steps,
                                batch=args.batch, negatives=args.negatives, seed=seed,
                                init="lsi" if method == "lsi" else "random", log_every=500)


def run_trained(config: s2net_run.S2NetRunConfig, folder: Path) -> dict:
    """metrics.json of the run in `folder`, training it first unless a finished run with this config is there."""
    if (folder / "metrics.json").exists() and s2net_run.load_config(folder) == config:
        return json.loads((folder / "metrics.json").read_text())
    if folder.exists():
        raise AceJaxError(f"{folder} holds another or unfinished run; remove it")
    return s2net_run.train_s2net(config, folder, progress=False)


def run_fixed(config: s2net_run.S2NetRunConfig, method: str) -> dict:
    """TF-IDF cosine or LSI: no training, so no seed dependence."""
    setup = s2net_run.build(config)
    start = time.perf_counter()
    model = setup.model if method == "tfidf" else s2net_run.model_of(setup, setup.initial_state)
    threshold = config.paraphrase_threshold
    scores = {name: s2net_run.evaluate(model, pairs, threshold) for name, pairs in setup.evals.items()}
    return {**scores, "steps": 0, "train_seconds": time.perf_counter() - start}


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = Path(args.runs or ("runs/s2net-quick" if args.quick else "runs/s2net"))
    out = Path(args.out or ("runs/s2net-quick" if args.quick else "results"))
    out.mkdir(parents=True, exist_ok=True)
    table = {}  # (data, method, dim) -> list of metrics, one per seed
    for data in args.data:
        for method in args.methods:
            for dim in ([None] if method == "tfidf" else args.dims):
                seeds = range(args.seeds) if method in TRAINED else [0]
                for seed in seeds:
                    config = config_for(args, data, dim or args.dims[0], method, seed)
                    started = time.perf_counter()
                    if method in TRAINED:
                        result = run_trained(config, runs / f"{data}-k{dim}-{method}-s{seed}")
                    else:
                        result = run_fixed(config, method)
                    table.setdefault((data, method, dim), []).append(result)
                    test = result["test"]
                    print(f"{data} {method} k={dim} seed {seed}: test spearman {test['spearman']:.4f} "
                          f"top-1 {test['top1']:.3f} mrr {test['mrr']:.3f} ({time.perf_counter() - started:.0f} s)",
                          flush=True)

    command = "python experiments/s2net.py" + (" --quick" if args.quick else "")
    lines = [
        "# S2Net text similarity: mined negatives against TF-IDF and LSI",
        "",
        f"Command: `{command}`",
        f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, {platform.system()}, CPU only; "
        f"date {datetime.date.today()}; seeds 0..{args.seeds - 1} for the trained rows (TF-IDF and LSI have no "
        "randomness).",
        f"Training: {args.steps} steps of Adam (step size 1e-3), each with {args.batch} gold preferences "
        f"(pair b scored above pair w) and {args.batch} paraphrase queries (training pairs scoring ≥ 4, both "
        f"directions) with {args.negatives} mined negatives each from all distinct training sentences; pairwise "
        "logistic loss, γ = 10; "
        "A starts random (N(0, 1/k)); TF-IDF over all training-sentence words (min_df 1).",
        "Test split: Spearman and Pearson of cos(text1, text2) with the gold score; paraphrase retrieval: each "
        "sentence of a test pair scoring ≥ 4 ranks all test sentences, Top-1 and MRR (ties counted against it, "
        "other partners filtered).",
        f"{stats.NOTE[0].upper()}{stats.NOTE[1:]}; wall-clock is the median training time of one run (2 cores, "
        "includes evaluations).",
        "",
    ]
    for data in args.data:
        lines += [f"## {data}", "", "| method | k | " + " | ".join(COLUMNS) + " | dev spearman | wall-clock (s) |",
                  "|---|---|" + "---|" * (len(COLUMNS) + 2)]
        for method in args.methods:
            for dim in ([None] if method == "tfidf" else args.dims):
                results = table[(data, method, dim)]
                label = FIXED.get(method) or TRAINED[method].label
                dev_name = s2net_run.EVAL_SPLITS[data][0]
                cells = [stats.format_mean_std([r["test"][c] for r in results]) for c in COLUMNS]
                cells.append(stats.format_mean_std([r[dev_name]["spearman"] for r in results]))
                cells.append(f"{np.median([r['train_seconds'] for r in results]):.0f}")
                lines.append(f"| {label} | {dim or 'vocabulary'} | " + " | ".join(cells) + " |")
        lines.append("")
    path = out / ("s2net.md" if not args.quick else "s2net-quick.md")
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
