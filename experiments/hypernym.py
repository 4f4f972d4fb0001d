"""WordNet hypernym prediction with order embeddings (issue 18): uniform corruption (the reproduction of Vendrov
et al. 2016), self-adversarial weighting and ACE, on the WordNet 3.0 noun closure split as the reference code
splits it.

    python experiments/hypernym.py --seeds 3                            # the table in results/hypernym.md
    python experiments/hypernym.py --epochs 2 --seeds 1 --out runs/hyp-quick --runs runs/hyp-quick

Every sampler sees the same training pairs in the same order (same seed), the same epochs and the same negatives
scored per pair; only where the negatives come from differs. Each run measures the valid accuracy (threshold
chosen on valid) every --eval-every epochs and reports the test scores of its best one. A sampler is a name of
order_run.SAMPLERS with settings over it, as "ace:gen_tables=discriminator;generator=pool".
"""

import argparse
import datetime
import json
import platform
import shlex
import sys
from pathlib import Path

import numpy as np

from ace_jax import kg_run, methods, order_run, run, stats
from ace_jax.errors import AceJaxError

REGISTRY = {name: None for name in order_run.SAMPLERS}
# Accuracy on a balanced test set; published, not ours (issue 18's anchors).
ANCHORS = {"order embeddings (Vendrov et al. 2016)": 0.906, "transitive closure, no learning": 0.882,
           "word2gauss": 0.866, "density order embeddings (Athiwaratkun & Wilson 2018)": 0.923}


def parse_args(argv):
    defaults = order_run.OrderConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samplers", default="uniform,self-adv,ace:gen_tables=discriminator;generator=pool",
                   help="comma-separated samplers, each with optional settings: name:field=value;...")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--dim", type=int, default=defaults.dim)
    p.add_argument("--negatives", type=int, default=defaults.negatives)
    p.add_argument("--margin", type=float, default=defaults.margin)
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--eval-every", type=int, default=defaults.eval_every)
    p.add_argument("--batch", type=int, default=defaults.batch)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--finished-only", action="store_true", help="table the finished runs, train nothing")
    p.add_argument("--out", default="results", help="folder for hypernym.md and hypernym.png")
    p.add_argument("--runs", default="runs/hypernym", help="folder for the run folders")
    args = p.parse_args(argv)
    args.samplers = args.samplers.split(",")
    for sampler in args.samplers:
        methods.parse_variant(sampler, REGISTRY)
    return args


def config_of(args, variant: str, seed: int) -> order_run.OrderConfig:
    sampler, settings = methods.parse_variant(variant, REGISTRY)
    return order_run.OrderConfig(sampler=sampler, dim=args.dim, negatives=args.negatives, margin=args.margin,
                                 epochs=args.epochs, eval_every=args.eval_every, batch=args.batch, lr=args.lr,
                                 seed=seed, **settings)


def run_one(config: order_run.OrderConfig, folder: Path, finished_only: bool) -> dict | None:
    """The run's final scores and its valid curve (training it first, or resuming it, unless finished_only)."""
    run.check_same_run(folder, "order", order_run.OrderConfig.from_json, config)
    if not (folder / "metrics.json").exists():
        if finished_only:
            return None
        order_run.train_order(config, folder, resume=(folder / "checkpoint.msgpack").exists())
    final = json.loads((folder / "metrics.json").read_text())
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    final["curve"] = [(r["epoch"], r["valid"]["accuracy"], r.get("hardness", {})) for r in records
                      if r["kind"] == "eval"]
    if final["curve"]:  # the end's hardness by today's rule (an older run's measured again, once)
        epoch, accuracy, recorded = final["curve"][-1]
        final["curve"][-1] = (epoch, accuracy, kg_run.current_hardness(folder, recorded, order_run.OrderJob))
    return final


def table(results: dict[str, list[dict]]) -> list[str]:
    lines = ["| sampler | seeds | test accuracy | precision | recall | valid accuracy | chosen epoch | "
             "lemma-level file, accuracy | loss ratio (end) | H(g), nats (end) | wall-clock (s) |", "|" + "---|" * 11]
    for variant, runs in results.items():
        if not runs:
            continue
        hard = [r["curve"][-1][2] for r in runs if r["curve"]]
        ratio = [h["loss_ratio"] for h in hard if "loss_ratio" in h]
        entropy = [h["gen_entropy"] for h in hard if "gen_entropy" in h]
        lemma = [r["lemma_test"]["accuracy"] for r in runs if "accuracy" in r.get("lemma_test", {})]
        lines.append(f"| `{variant}` | {len(runs)} | "
                     + " | ".join(stats.format_mean_std([r["test"][c] for r in runs], 4)
                                  for c in ("accuracy", "precision", "recall")) + " | "
                     f"{stats.format_mean_std([r['valid']['accuracy'] for r in runs], 4)} | "
                     f"{stats.format_mean_std([r['best_epoch'] for r in runs], 0)} | "
                     f"{stats.format_mean_std(lemma, 4) if lemma else '–'} | "
                     f"{stats.format_mean_std(ratio, 2) if ratio else '–'} | "
                     f"{stats.format_mean_std(entropy, 2) if entropy else '–'} | "
                     f"{np.median([r['train_seconds'] for r in runs]):.0f} |")
    return lines


HARDNESS_COLUMNS = {"loss_ratio": ("loss ratio", 2), "gen_entropy": ("H(g), nats", 2),
                    "gen_top_k": ("gen in D's top-100", 3), "gen_false": ("gen draws known", 3)}


def points_at(runs: list[dict], epoch: float) -> list[tuple]:
    """The (epoch, valid accuracy, hardness) evaluations of `runs` at `epoch`."""
    return [point for r in runs for point in r["curve"] if point[0] == epoch]


def hardness_curve(results: dict[str, list[dict]], epochs=(1, 2, 5, 10, 15, 20)) -> list[str]:
    """Per generator sampler, at some evaluated epochs: valid accuracy beside every sampler's, and the
    generator's hardness (mean ± sample std over seeds)."""
    lines = []
    for variant, runs in results.items():
        if not any("loss_ratio" in point[2] for r in runs for point in r["curve"]):
            continue
        lines += ["", f"`{variant}` by epoch (valid accuracy of every sampler; this sampler's hardness):", "",
                  "| epoch | " + " | ".join(f"`{v}` valid accuracy" for v in results) + " | "
                  + " | ".join(name for name, _ in HARDNESS_COLUMNS.values()) + " |",
                  "|" + "---|" * (1 + len(results) + len(HARDNESS_COLUMNS))]
        for epoch in epochs:
            cells = [stats.format_mean_std([p[1] for p in points_at(rs, epoch)], 4) for rs in results.values()]
            cells += [stats.format_mean_std([p[2][key] for p in points_at(runs, epoch) if key in p[2]], digits)
                      for key, (_, digits) in HARDNESS_COLUMNS.items()]
            if any(c != "–" for c in cells):
                lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    if lines:
        lines += ["", "Loss ratio: the discriminator's mean loss on generator draws over noise draws, draws that are "
                  "closure pairs left out; gen draws known: the share of the generator's draws that are closure pairs "
                  "(false negatives)."]
    return lines


def figure(results: dict, train_pairs: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for variant, runs in results.items():
        curves = [r["curve"] for r in runs if r["curve"]]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        pairs = [c[0] * train_pairs / 1e6 for c in curves[0][:length]]
        accuracy = np.array([[point[1] for point in c[:length]] for c in curves])
        ax.plot(pairs, accuracy.mean(0), marker="o", ms=3, label=variant)
    ax.set(xlabel="positive pairs seen (millions)", ylabel="valid accuracy", title="WordNet nouns, order embeddings")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for variant in args.samplers:
        finals = [run_one(config_of(args, variant, seed), runs / f"{methods.variant_folder(variant)}-seed{seed}",
                          args.finished_only) for seed in range(args.seeds)]
        results[variant] = [f for f in finals if f is not None]
    hypernyms = order_run.load_hypernyms("wordnet")
    command = "python experiments/hypernym.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    lemma = next((r["lemma_test"] for rs in results.values() for r in rs if "mapped" in r.get("lemma_test", {})), None)
    lines = ["# WordNet hypernym prediction: order embeddings with uniform, self-adversarial and ACE negatives", "",
             f"Command: `{command}`",
             f"Machine: {platform.machine()}, {platform.system()}, 2 cores, CPU only; date {datetime.date.today()}; "
             f"seeds 0..{args.seeds - 1}. Mean ± sample std over seeds; the test scores of each run's best valid "
             f"accuracy (every {args.eval_every} epochs), at the threshold chosen on the valid pairs; wall-clock is "
             "the median per run, evaluations included.",
             f"Data: the WordNet 3.0 noun closure, {len(hypernyms.closure):,} distinct (hyponym, ancestor) pairs "
             f"of {len(hypernyms.nouns):,} synsets; {len(hypernyms.split.train):,} train, 4,000 valid and 4,000 test "
             "pairs, each with one corrupted negative (filtered against the closure).",
             f"Settings: d = {args.dim}, {args.negatives} negative(s) per pair, the contrastive loss with margin "
             f"{args.margin}, batch {args.batch}, Adam {args.lr}, {args.epochs} epochs; rows kept non-negative.", ""]
    lines += table(results)
    baseline = order_run.closure_baseline(hypernyms)
    lines.append(f"| transitive closure of the train and valid pairs (no learning) | – | {baseline['accuracy']:.4f} | "
                 f"{baseline['precision']:.4f} | {baseline['recall']:.4f} | – | – | – | – | – | – |")
    if lemma:
        lines += ["", f"The lemma-level file: {lemma['mapped']:,} of its {lemma['pairs']:,} pairs map to one synset "
                  "each by NLTK's name stem; its split is not ours, so "
                  f"{lemma['true_in_our_train']:,} of its true pairs are in our training split, and "
                  f"{lemma['false_in_closure']:,} of its false pairs are in the closure (its negatives are drawn "
                  "unfiltered)."]
    lines += hardness_curve(results)
    lines += ["", "Published anchors (accuracy on their balanced test sets; not ours): "
              + "; ".join(f"{k} {v:.1%}" for k, v in ANCHORS.items()) + ".", ""]
    figure(results, len(hypernyms.split.train), out / "hypernym.png")
    lines += ["![valid accuracy against positive pairs seen](hypernym.png)", ""]
    (out / "hypernym.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AceJaxError as error:
        print(f"ace-jax: error: {error}", file=sys.stderr)
        sys.exit(1)
