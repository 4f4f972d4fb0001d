"""Reproduces ACE's word-similarity comparison (Bose, Ling & Cao 2018, Table 1): skip-gram trained with
negative sampling, ADV only, ACE and self-adversarial weighting at an equal budget, beside gensim.

    python experiments/word_similarity.py --quick     # the README's main job: the whole enwiki-00 shard, one seed
    python experiments/word_similarity.py             # the table in results/word_similarity.md

A method is a named method of ace_jax/methods.py, optionally with settings over it (`method:field=value;...`, as
experiments/generators.py). Rows with a generator show its hardness at the end (the discriminator's loss on the
generator's draws over the noise's, and the generator's entropy), and each claim of the paper gets a verdict:
ACE above NCE and above NS by more than 2 sample std, and reaching the baseline's final ρ in at most 60 % of
its pairs.

Every method sees the same positive pairs (same seed -> same data stream) and scores the same number of
negatives per pair; gensim's Word2Vec runs on the same encoded tokens with the same settings.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from ace_jax import io, methods, run, stats, windows
from ace_jax.data.corpus import CorpusOptions, load_corpus
from ace_jax.embeddings import WordConfig, train_word_embeddings
from ace_jax.errors import AceJaxError, Diverged
from ace_jax.evaluate.similarity import DEFAULT_SETS, evaluate_all

# The default: the methods of results/word_similarity.md.
TABLE_METHODS = ("ns", "adv", "ace", "self-adv", "ns-shared", "ns-shared-step", "ace-pool", "ace-kbgan")
QUICK_METHODS = ("ns-shared-step", "ace-pool")  # the library's default, and the ACE form best on the dev sets
CURVE_SETS = ("ws353", "rw")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help=f"the main job: {', '.join(QUICK_METHODS)} and gensim, one seed, on the whole enwiki-00 shard "
                        "(17.5M tokens, 69k words), 512 tokens per step, row clip 50")
    p.add_argument("--corpus", default=None, help="default: the three-shard Wikipedia sample enwiki (quick: enwiki-00)")
    p.add_argument("--max-tokens", type=int, default=None, help="first N tokens (default 2M; quick: all; 0: all)")
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--max-vocab", type=int, default=None,
                   help="the exact generator costs O(V) per query; the default 10k keeps ACE affordable on a CPU "
                        "(0: no cap, quick's)")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negatives", type=int, default=5)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--methods", default=None, help=", ".join(methods.WORD) + " (default: the table's; quick: "
                   + ",".join(QUICK_METHODS) + ")")
    p.add_argument("--chunk", type=int, default=None,
                   help="tokens per step after subsampling; 128 keeps word2vec's step size (gensim parity), the "
                        "library default is 512 (and quick's)")
    p.add_argument("--gen-dim", type=int, default=32)
    p.add_argument("--lr", type=float, default=None,
                   help="the starting learning rate of every method, and gensim's alpha (default: 0.025 for both)")
    p.add_argument("--row-clip", type=float, default=None,
                   help="clip each row's gradient summed over a step to this norm, for every ace_jax method (0: off, "
                        "the default; quick: 50)")
    p.add_argument("--false-negatives", default="window", choices=["window", "pair"],
                   help="mask negatives equal to any context of the centre (window) or to the pair's own "
                        "(pair, word2vec)")
    p.add_argument("--eval-points", type=int, default=None, help="evaluations along training, for the figure "
                   "(default 8; quick: 4)")
    p.add_argument("--no-gensim", action="store_true")
    p.add_argument("--finished-only", action="store_true",
                   help="train nothing of ours: each row takes the seeds whose runs have finished (gensim still runs)")
    p.add_argument("--out", default=None, help="folder for the table and figure (default results/, quick: runs/quick)")
    p.add_argument("--runs", default=None, help="folder for the run folders (default runs/word_similarity[-quick])")
    args = p.parse_args(argv)
    quick = dict(corpus="enwiki-00", max_tokens=0, max_vocab=0, methods=",".join(QUICK_METHODS), chunk=512,
                 row_clip=50.0, eval_points=4)
    full = dict(corpus="enwiki", max_tokens=2_000_000, max_vocab=10_000, methods=",".join(TABLE_METHODS), chunk=128,
                 row_clip=0.0, eval_points=8)
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:
        args.seeds = 1
    # 0 means no limit: the whole corpus, the whole vocabulary above min_count.
    args.max_tokens = args.max_tokens or None
    args.max_vocab = args.max_vocab or None
    return args


def run_ours(args, variant: str, seed: int, runs: Path, epoch_steps_hint: int) -> dict:
    method, settings = methods.parse_variant(variant)
    common = dict(corpus=args.corpus, min_count=args.min_count, max_vocab=args.max_vocab, max_tokens=args.max_tokens,
                  dim=args.dim, window=args.window, epochs=args.epochs, seed=seed, gen_dim=args.gen_dim,
                  chunk=args.chunk, row_clip=args.row_clip, learning_rate=args.lr, negatives=args.negatives,
                  false_negatives=args.false_negatives, eval_sets=CURVE_SETS,
                  eval_every=max(1, epoch_steps_hint // args.eval_points), analogy=True)
    config = methods.word_config(method, **{**common, **settings})
    out = runs / f"{methods.variant_folder(variant)}-seed{seed}"
    run.check_same_run(out, "word", WordConfig.from_json, config)
    if not (out / "eval.json").exists():  # finished earlier: reuse, so an interrupted table resumes cheaply
        if args.finished_only:
            return None
        start = time.perf_counter()
        resume = (out / "checkpoint.msgpack").exists()
        try:
            final = train_word_embeddings(config, out, resume=resume, progress=True)
        except Diverged as error:  # a result too: kept, so a rerun does not train it again
            final = {"diverged": error.step}
            out.mkdir(parents=True, exist_ok=True)
        final["seconds"] = time.perf_counter() - start
        with io.atomic_write(out / "eval.json") as f:
            json.dump(final, f, indent=2)
    final = json.loads((out / "eval.json").read_text())
    log = out / "metrics.jsonl"
    curve = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    final["curve"] = [r for r in curve if r.get("kind") == "eval"]
    return final


def stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def run_gensim(args, seed: int, runs: Path) -> dict:
    """gensim's row for one seed, kept in runs/ beside ours (keyed by its settings) so a later table reuses it."""
    settings = {name: getattr(args, name) for name in ("corpus", "min_count", "max_vocab", "max_tokens", "dim",
                                                       "window", "negatives", "lr", "epochs")}
    path = runs / f"gensim-seed{seed}.json"
    if path.exists() and json.loads(path.read_text())["settings"] == settings:
        return json.loads(path.read_text())["result"]
    final = train_gensim(args, seed)
    runs.mkdir(parents=True, exist_ok=True)
    with io.atomic_write(path) as f:
        json.dump({"settings": settings, "result": final}, f, indent=2)
    return final


def train_gensim(args, seed: int) -> dict:
    from gensim.models import Word2Vec

    corpus = load_corpus(args.corpus, CorpusOptions(min_count=args.min_count, max_vocab=args.max_vocab,
                                                    max_tokens=args.max_tokens))
    words = corpus.vocab.words
    tokens = np.asarray(corpus.tokens)
    # gensim's own job size is 10,000 words; the vocabulary is ours, so min_count=1 keeps it identical.
    sentences = [[words[i] for i in tokens[j:j + 10_000]] for j in range(0, len(tokens), 10_000)]
    start = time.perf_counter()
    # One worker and a fixed string hash: gensim's own recipe for a run that repeats exactly
    # (with more threads, or Python's salted hash of the initial vectors' seeds, every run differs).
    model = Word2Vec(sentences, vector_size=args.dim, window=args.window, min_count=1, sg=1, hs=0,
                     negative=args.negatives, sample=1e-3, alpha=args.lr or 0.025, epochs=max(1, round(args.epochs)),
                     seed=seed, workers=1, hashfxn=stable_hash)
    seconds = time.perf_counter() - start
    vectors = np.stack([model.wv[w] for w in words])
    final = evaluate_all(vectors, words, DEFAULT_SETS, analogy=True)
    final["seconds"] = seconds
    return final


def parity(results: dict, quick: bool) -> list[str]:
    """gensim within 0.02 ρ of our negative sampling (per pair, else the default form) on WS-353 and RW (means)."""
    ours = next((name for name in ("ns", "ns-shared-step") if name in results), None)
    if ours is None or "gensim" not in results or any("diverged" in r for r in results[ours]):
        return []
    gaps = {name: np.mean([r[name]["spearman"] for r in results["gensim"]])
            - np.mean([r[name]["spearman"] for r in results[ours]]) for name in ("ws353", "rw")}
    verdict = "within" if all(abs(g) <= 0.02 for g in gaps.values()) else "NOT within"
    return [f"gensim − {ours}: " + ", ".join(f"{n} {g:+.4f}" for n, g in gaps.items())
            + f" ({verdict} 0.02" + ("; one seed)" if quick else ")"), ""]


def label_of(variant: str) -> str:
    if variant == "gensim":
        return "gensim Word2Vec (sg=1, negative sampling)"
    method, settings = methods.parse_variant(variant)
    extra = ", ".join(f"{k}={v}" for k, v in settings.items())
    return f"`{variant}`: {methods.WORD[method].label}" + (f", with {extra}" if extra else "")


def final_hardness(runs: list[dict], name: str) -> str:
    values = [r["curve"][-1].get("hardness", {}).get(name) if r["curve"] else None for r in runs]
    return "–" if None in values else stats.format_mean_std(values)


def table(results: dict, sets) -> list[str]:
    head = ["method", "seeds", *sets, "analogy", "loss ratio (end)", "H(g), nats (end)", "pairs seen",
            "wall-clock (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, runs in results.items():
        cells = [label_of(method), str(len(runs))]
        diverged = [r["diverged"] for r in runs if "diverged" in r]
        if diverged:
            cells += [f"diverged at step {', '.join(map(str, diverged))} ({len(diverged)} of {len(runs)} seeds)"]
            cells += ["–"] * (len(head) - 3)
            lines.append("| " + " | ".join(cells) + " |")
            continue
        cells += [stats.format_mean_std([r[s]["spearman"] for r in runs]) for s in sets]
        cells.append(stats.format_mean_std([r["analogy"]["accuracy"] for r in runs]))
        cells += [final_hardness(runs, "loss_ratio"), final_hardness(runs, "gen_entropy")] if method != "gensim" \
            else ["–", "–"]
        pairs = [r["pairs"] for r in runs if "pairs" in r]
        cells.append(f"{np.mean(pairs) / 1e6:.2f}M" if pairs else "(its own)")
        cells.append(f"{np.median([r['seconds'] for r in runs]):.0f}" if all("seconds" in r for r in runs) else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def uses_generator(variant: str) -> bool:
    if variant == "gensim":
        return False
    method, settings = methods.parse_variant(variant)
    return methods.word_config(method, **settings).game.uses_generator


def reach_fraction(runs: list[dict], baseline: list[dict], name: str) -> float | None:
    """The share of the baseline's pairs at which the mean ρ over seeds of `runs` first reaches the baseline's
    final mean ρ (None: never, within its evaluations)."""
    target = np.mean([r[name]["spearman"] for r in baseline])
    points = min(len(r["curve"]) for r in runs)
    for i in range(points):
        if np.mean([r["curve"][i][name]["spearman"] for r in runs]) >= target:
            return np.mean([r["curve"][i]["pairs"] for r in runs]) / np.mean([r["pairs"] for r in baseline])
    return None


def verdicts(results: dict) -> list[str]:
    """Each generator row against NCE (the paper's baseline) and NS (the one users run), and against NS with the
    row's own settings where that row ran ("ace-pool:known_positives=20" against "ns:known_positives=20"): above
    it by more than 2 sample std (the larger of the two rows'), and the baseline's final ρ within 60 % of its
    pairs."""
    lines = ["| method | against | set | difference of means | 2 std | beats by > 2 std | reaches its final ρ at | "
             "within 60 % of its pairs |", "|---|---|---|---|---|---|---|---|"]
    for variant, runs in results.items():
        if not uses_generator(variant) or any("diverged" in r for r in runs):
            continue
        settings = variant.partition(":")[2]
        for baseline in ("nce", "ns") + ((f"ns:{settings}",) if settings else ()):
            base = results.get(baseline)
            if not base or any("diverged" in r for r in base):
                continue
            for name in CURVE_SETS:
                a, b = ([r[name]["spearman"] for r in rows] for rows in (runs, base))
                diff = np.mean(a) - np.mean(b)
                both = len(a) > 1 and len(b) > 1  # a sample std needs two seeds on each side
                spread = 2 * max(stats.sample_std(np.array(a)), stats.sample_std(np.array(b))) if both else None
                beats = "–" if spread is None else ("yes" if diff > spread else "no")
                reach = reach_fraction(runs, base, name)
                lines.append(f"| `{variant}` | `{baseline}` | {name} | {diff:+.3f} | "
                             f"{'–' if spread is None else f'{spread:.3f}'} | {beats} | "
                             f"{'never' if reach is None else f'{reach:.0%} of its pairs'} | "
                             f"{'yes' if reach is not None and reach <= 0.6 else 'no'} |")
    return lines if len(lines) > 2 else []


def coverage(results: dict, sets) -> str:
    any_run = next(r for runs in results.values() for r in runs if "diverged" not in r)
    return ", ".join(f"{s} {any_run[s]['pairs']}/{any_run[s]['pairs'] + any_run[s]['oov']}" for s in sets)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVE_SETS), figsize=(12, 4.2))
    colours = plt.get_cmap("tab20").colors  # more rows than the default cycle's 10 colours
    for ax, name in zip(axes, CURVE_SETS):
        for index, (method, runs) in enumerate(results.items()):
            runs = [r for r in runs if "diverged" not in r]
            if not runs:
                continue
            if method == "gensim":
                ax.axhline(np.mean([r[name]["spearman"] for r in runs]), ls="--", c="gray", label="gensim (final)")
                continue
            points = min(len(r["curve"]) for r in runs)  # seeds keep different numbers of tokens: ±1 evaluation
            xs = np.array([[p["pairs"] for p in r["curve"][:points]] for r in runs]).mean(0)
            ys = np.array([[p[name]["spearman"] for p in r["curve"][:points]] for r in runs])
            ax.errorbar(xs, ys.mean(0), yerr=stats.sample_std(ys) if len(runs) > 1 else None, marker="o", ms=3,
                        capsize=2, label=method, color=colours[2 * index % 20 + (2 * index // 20) % 2],
                        ls="--" if ":" in method else "-")
        ax.set_title(name)
        ax.set_xlabel("positive pairs seen")
        ax.set_ylabel("Spearman ρ")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    with io.atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out or ("runs/quick" if args.quick else "results"))
    runs = Path(args.runs or ("runs/word_similarity-quick" if args.quick else "runs/word_similarity"))
    chosen = [m.strip() for m in args.methods.split(",") if m.strip()]
    for method in chosen:
        methods.parse_variant(method)
    corpus = load_corpus(args.corpus, CorpusOptions(min_count=args.min_count, max_vocab=args.max_vocab,
                                                    max_tokens=args.max_tokens))
    expected_kept = (corpus.vocab.counts * windows.keep_probabilities(corpus.vocab.counts, WordConfig.sample)).sum()
    epoch_steps = int(np.ceil(args.epochs * expected_kept / args.chunk))  # steps read tokens after subsampling
    results = {}
    for method in chosen:
        results[method] = []
        for seed in range(args.seeds):
            print(f"== {method} seed {seed}", file=sys.stderr, flush=True)
            result = run_ours(args, method, seed, runs, epoch_steps)
            if result is not None:
                results[method].append(result)
        if not results[method]:
            del results[method]
    if not args.no_gensim:
        results["gensim"] = []
        for seed in range(args.seeds):
            print(f"== gensim seed {seed}", file=sys.stderr, flush=True)
            results["gensim"].append(run_gensim(args, seed, runs))

    command = "python experiments/word_similarity.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out.mkdir(parents=True, exist_ok=True)
    figure = out / ("word_similarity_quick.png" if args.quick else "word_similarity.png")
    plot(results, figure)
    lines = [
        "# Word similarity: ACE vs negative sampling (skip-gram)",
        "",
        f"Command: `{command.strip()}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}, CPU only; "
        f"date {datetime.date.today().isoformat()}; seeds 0..{args.seeds - 1}.",
        f"Corpus: {corpus.source}, {len(corpus.tokens):,} tokens kept of {corpus.n_raw_tokens:,}, "
        f"vocabulary {len(corpus.vocab):,} (min_count {args.min_count}); d={args.dim}, window {args.window}, "
        f"{args.negatives} negatives, subsampling 1e-3, {args.epochs:g} epoch(s); "
        f"false negatives: {args.false_negatives}; "
        f"{args.chunk} tokens per step after subsampling; learning rate {args.lr or 0.025:g}.",
        f"Pairs in vocabulary: {coverage(results, DEFAULT_SETS)}.",
        "",
        f"Spearman ρ ({stats.NOTE}), analogy accuracy (3CosAdd, top 30k words), positive pairs seen,",
        "and the median wall-clock per run (ours includes compilation and evaluations along the way).",
        "",
        *table(results, DEFAULT_SETS),
        "",
        *parity(results, args.quick),
        f"![ρ against positive pairs seen]({figure.name})",
        "",
    ]
    claims = verdicts(results)
    if claims:
        lines += ["## The paper's claims, row by row", "",
                  "Against NCE (the paper's baseline) and negative sampling: the difference of mean ρ, and whether it "
                  "exceeds 2 sample std (the larger of the two rows'); the share of the baseline's positive pairs at "
                  "which the row's mean ρ first reaches the baseline's final mean ρ (evaluations along training).",
                  "", *claims, ""]
    report = out / ("word_similarity_quick.md" if args.quick else "word_similarity.md")
    with io.atomic_write(report) as f:
        f.write("\n".join(lines))
    print("\n".join(table(results, ("ws353", "rw", "simlex999", "men")) + parity(results, args.quick)))
    print(f"wrote {report} and {figure}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AceJaxError as error:
        print(f"word_similarity: error: {error}", file=sys.stderr)
        sys.exit(1)
