"""Is ACE's generator harder than the noise, and from when? The hardness measures (ace_jax/hardness.py) through
training for each generator variant, beside ρ on the dev sets the variants are chosen on and the test sets.

    python experiments/generators.py                  # results/generators.md
    python experiments/generators.py --variants ns,ace-tied,ace-tied:gen_temperature=4 --seeds 1

A variant is a named method of ace_jax/methods.py with optional settings over it, `method:field=value;field=value`
(fields of embeddings.WordConfig or word.GameConfig, values as JSON). Every run sees the same positive pairs (same
seed, same data stream) and scores the same negatives per pair. At each evaluation point a run records, for 2,048
fixed corpus queries, the discriminator's loss on 5 generator draws against 5 noise draws (their ratio: above 1,
the generator's negatives are the harder), how often each lands in the discriminator's top-100, the generator's
entropy and the top-10 overlap between queries (1: the same picks for every query). ρ on MEN and MTurk-771 (dev:
choose variants on these) and on WS-353 and RW (test: the paper's sets, reported and never chosen on).
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

from ace_jax import io, methods, run, stats, windows
from ace_jax.data.corpus import CorpusOptions, load_corpus
from ace_jax.embeddings import WordConfig, train_word_embeddings
from ace_jax.errors import AceJaxError, Diverged

DEFAULT_VARIANTS = ("ns", "ace-pool", "ace-tied", "ace-tied:gen_temperature=4", "ace-tied-pool")
DEV, TEST = ("men", "mturk771"), ("ws353", "rw")
HARDNESS = ("loss_ratio", "gen_top_k", "noise_top_k", "gen_entropy", "gen_overlap")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="method[:field=value;...], comma-separated")
    p.add_argument("--corpus", default="enwiki")
    p.add_argument("--max-tokens", type=int, default=2_000_000, help="0: the whole corpus")
    p.add_argument("--max-vocab", type=int, default=10_000, help="0: every word seen min-count times")
    p.add_argument("--chunk", type=int, default=128, help="tokens per step after subsampling (word2vec's step size)")
    p.add_argument("--row-clip", type=float, default=None,
                   help="every run's row clip, over its method's (a variant's own setting wins)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--eval-points", type=int, default=6)
    p.add_argument("--out", default="results", help="folder for generators.md")
    p.add_argument("--runs", default="runs/generators", help="folder for the run folders")
    args = p.parse_args(argv)
    args.max_tokens, args.max_vocab = args.max_tokens or None, args.max_vocab or None
    return args


def train(args, variant: str, seed: int, eval_every: int) -> dict:
    """The finished run's eval.json with its evaluation records as "curve", training it first unless it is there."""
    method, settings = methods.parse_variant(variant)
    config = methods.word_config(method, corpus=args.corpus, max_tokens=args.max_tokens, max_vocab=args.max_vocab,
                                 chunk=args.chunk, epochs=args.epochs, seed=seed, eval_sets=DEV + TEST,
                                 eval_every=eval_every, final_sets=DEV + TEST, analogy=False,
                                 **{**({} if args.row_clip is None else {"row_clip": args.row_clip}), **settings})
    out = Path(args.runs) / f"{methods.variant_folder(variant)}-s{seed}"
    run.check_same_run(out, "word", WordConfig.from_json, config)
    if not (out / "eval.json").exists():
        start = time.perf_counter()
        try:
            final = train_word_embeddings(config, out, resume=(out / "checkpoint.msgpack").exists(), progress=True)
        except Diverged as error:  # a result too: kept, so a rerun does not train it again
            final = {"diverged": error.step}
            out.mkdir(parents=True, exist_ok=True)  # a new run that fails leaves no folder behind
        final["seconds"] = time.perf_counter() - start
        with io.atomic_write(out / "eval.json") as f:
            json.dump(final, f, indent=2)
    final = json.loads((out / "eval.json").read_text())
    log = out / "metrics.jsonl"  # absent where a new run diverged (it leaves only its result)
    evals = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    evals = [r for r in evals if r.get("kind") == "eval"]
    # The last periodic evaluation can fall on (or a step before) the final one: keep the final.
    if len(evals) > 1 and evals[-1]["step"] - evals[-2]["step"] < eval_every / 2:
        del evals[-2]
    final["curve"] = evals
    return final


def hardness_rows(variant: str, runs: list[dict]) -> list[str]:
    """One row per evaluation point: the hardness measures, mean over seeds."""
    points = min(len(r["curve"]) for r in runs)  # a diverged run: its evaluations before it diverged
    rows = []
    for i in range(points):
        records = [r["curve"][i] for r in runs]
        cells = [variant, f"{np.mean([r['pairs'] for r in records]) / 1e6:.2f}M"]
        for name in HARDNESS:
            values = [r.get("hardness", {}).get(name) for r in records]
            cells.append("–" if any(v is None for v in values) else f"{np.mean(values):.3g}")
        cells += [f"{np.mean([r[s]['spearman'] for r in records]):.3f}" for s in DEV + TEST]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for variant in variants:
        methods.parse_variant(variant)
    corpus = load_corpus(args.corpus, CorpusOptions(min_count=5, max_vocab=args.max_vocab, max_tokens=args.max_tokens))
    kept = (corpus.vocab.counts * windows.keep_probabilities(corpus.vocab.counts, WordConfig.sample)).sum()
    eval_every = max(1, int(np.ceil(args.epochs * kept / args.chunk)) // args.eval_points)
    results = {}
    for variant in variants:
        results[variant] = []
        for seed in range(args.seeds):
            print(f"== {variant} seed {seed}", file=sys.stderr, flush=True)
            results[variant].append(train(args, variant, seed, eval_every))

    command = "python experiments/generators.py " + " ".join(argv if argv is not None else sys.argv[1:])
    sets = DEV + TEST
    clip = "each method's own" if args.row_clip is None else f"{args.row_clip:g}"
    lines = [
        "# ACE's generators: how hard are their negatives, and from when?", "",
        f"Command: `{command.strip()}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, CPU only; date {datetime.date.today()}; seeds "
        f"0..{args.seeds - 1}. Corpus: {corpus.source}, {len(corpus.tokens):,} tokens kept, vocabulary "
        f"{len(corpus.vocab):,}; d = 100, window 5, 5 negatives, {args.chunk} tokens per step, SGD from 0.025, "
        f"{args.epochs:g} epoch(s), row clip {clip} unless a variant sets its own.",
        "Dev sets (choose on these): " + ", ".join(DEV) + "; test sets (report): " + ", ".join(TEST) + ".", "",
        "## Final ρ", "",
        f"{stats.NOTE[0].upper()}{stats.NOTE[1:]}; wall-clock: the median per run, with evaluations.", "",
        "| variant | " + " | ".join(sets) + " | final loss ratio | wall-clock (s) |",
        "|---|" + "---|" * (len(sets) + 2)]
    for variant, runs in results.items():
        diverged = [r["diverged"] for r in runs if "diverged" in r]
        if diverged:
            lines.append(f"| `{variant}` | " + " | ".join(["diverged"] * len(sets)) + f" | – | diverged at step "
                         f"{', '.join(map(str, diverged))} ({len(diverged)} of {len(runs)} seeds) |")
            continue
        cells = [stats.format_mean_std([r[s]["spearman"] for r in runs]) for s in sets]
        ratios = [r["curve"][-1].get("hardness", {}).get("loss_ratio") for r in runs]
        cells.append("–" if None in ratios else stats.format_mean_std(ratios))
        cells.append(f"{np.median([r['seconds'] for r in runs]):.0f}")
        lines.append(f"| `{variant}` | " + " | ".join(cells) + " |")
    lines += ["", "## Hardness through training", "",
              "loss_ratio: the discriminator's loss on generator draws over noise draws; gen/noise_top_k: the share "
              "of draws among the discriminator's top-100; gen_entropy in nats; gen_overlap: top-10 overlap between "
              "queries. Means over seeds.", "",
              "| variant | pairs seen | " + " | ".join(HARDNESS) + " | " + " | ".join(sets) + " |",
              "|---|---|" + "---|" * (len(HARDNESS) + len(sets))]
    for variant, runs in results.items():
        lines += hardness_rows(variant, runs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with io.atomic_write(out / "generators.md") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AceJaxError as error:
        print(f"generators: error: {error}", file=sys.stderr)
        sys.exit(1)
