"""Knowledge-graph negative samplers compared (issue 17): RotatE's Table 7 setting, TransE with d = 50 and the
margin loss, with uniform, Bernoulli, self-adversarial, KBGAN-style and ACE negatives; or another model and loss.

    python experiments/kg.py --data wn18rr --seeds 3                      # the table in results/kg.md
    python experiments/kg.py --model complex --dim 100 --loss logistic --gamma 0 --samplers uniform,self-adv,ace
    python experiments/kg.py --data wn18rr --epochs 5 --seeds 1 --out runs/kg-quick --runs runs/kg-quick

Every sampler sees the same training triples in the same order (same seed), the same number of epochs and the
same number of negatives scored per triple; only where the negatives come from differs. Each run ranks the
valid split every --eval-every epochs and reports the test scores of its best valid ranking (filtered, realistic
ranks for ties). A sampler is a name of kg_config.SAMPLERS with settings over it, as
"ace:gen_tables=discriminator;generator=pool".
"""

import argparse
import datetime
import json
import platform
import shlex
import sys
from pathlib import Path

import numpy as np

from ace_jax import kg_config, kg_run, methods, run, stats
from ace_jax.data.triples import load_kg
from ace_jax.errors import AceJaxError

COLUMNS = ("mrr", "mr", "hits@1", "hits@3", "hits@10")
# RotatE (Sun et al. 2019), Table 7: TransE, d = 50, MRR / Hits@10, filtered. Published, not ours.
ANCHORS = {"fb15k-237": {"uniform": (0.242, 0.422), "kbgan": (0.278, 0.453), "self-adv": (0.298, 0.475)},
           "wn18rr": {"uniform": (0.186, 0.459), "kbgan": (0.210, 0.479), "self-adv": (0.223, 0.510)},
           "wn18": {"uniform": (0.433, 0.915), "kbgan": (0.705, 0.949), "self-adv": (0.736, 0.947)}}
# Other models' anchors, MRR / Hits@10, filtered: LibKGE's tuned runs (Ruffinelli et al. 2020; any loss and sampler
# of its search, up to d = 512), and RotatE's own (Sun et al. 2019, Table 5: d = 500 on WN18RR, 1,000 on
# FB15k-237, self-adversarial, 256-1,024 negatives). Published, not ours.
OTHER_ANCHORS = {
    "complex": ("LibKGE, tuned", {"wn18rr": (0.475, 0.547), "fb15k-237": (0.348, 0.536)}),
    "distmult": ("LibKGE, tuned", {"wn18rr": (0.452, 0.530), "fb15k-237": (0.343, 0.531)}),
    "rotate": ("RotatE, Table 5", {"wn18rr": (0.476, 0.571), "fb15k-237": (0.338, 0.533)}),
}
REGISTRY = {name: None for name in kg_config.SAMPLERS}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="wn18rr", help="comma-separated: fb15k-237, wn18rr, wn18 or folders")
    p.add_argument("--samplers", default="uniform,bernoulli,self-adv,kbgan,ace",
                   help="comma-separated samplers, each with optional settings: name:field=value;...")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--model", default="transe")
    p.add_argument("--norm", type=int, default=1)
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--negatives", type=int, default=10)
    defaults = kg_config.KgRunConfig
    p.add_argument("--loss", default=defaults.loss, choices=kg_config.LOSSES)
    p.add_argument("--margin", type=float, default=defaults.margin)
    p.add_argument("--gamma", type=float, default=defaults.gamma, help="the logistic loss's γ")
    p.add_argument("--regulariser", default=defaults.regulariser, choices=kg_config.REGULARISERS)
    p.add_argument("--reg-weight", type=float, default=defaults.reg_weight)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--finished-only", action="store_true", help="table the finished runs, train nothing")
    p.add_argument("--out", default="results", help="folder for kg.md and kg.png")
    p.add_argument("--runs", default="runs/kg", help="folder for the run folders")
    args = p.parse_args(argv)
    args.data, args.samplers = args.data.split(","), args.samplers.split(",")
    for sampler in args.samplers:
        methods.parse_variant(sampler, REGISTRY)
    return args


def config_of(args, data: str, variant: str, seed: int) -> kg_config.KgRunConfig:
    sampler, settings = methods.parse_variant(variant, REGISTRY)
    return kg_config.KgRunConfig(data=data, model=args.model, norm=args.norm, dim=args.dim, sampler=sampler,
                                 negatives=args.negatives, loss=args.loss, margin=args.margin, gamma=args.gamma,
                                 regulariser=args.regulariser, reg_weight=args.reg_weight, epochs=args.epochs,
                                 eval_every=args.eval_every, batch=args.batch, lr=args.lr, seed=seed,
                                 **settings)


def run_one(config: kg_config.KgRunConfig, folder: Path, finished_only: bool) -> dict | None:
    """The run's final scores and its valid curve (training it first, or resuming it, unless finished_only)."""
    run.check_same_run(folder, "kg", kg_config.KgRunConfig.from_json, config)
    if not (folder / "metrics.json").exists():
        if finished_only:
            return None
        kg_run.train_kg(config, folder, resume=(folder / "checkpoint.msgpack").exists())
    final = json.loads((folder / "metrics.json").read_text())
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    final["curve"] = [(r["epoch"], r["valid"]["mrr"], r.get("hardness", {})) for r in records if r["kind"] == "eval"]
    if final["curve"]:  # the end's hardness by today's rule (an older run's measured again, once)
        epoch, mrr, recorded = final["curve"][-1]
        final["curve"][-1] = (epoch, mrr, kg_run.current_hardness(folder, recorded))
    return final


def table(args, data: str, results: dict[str, list[dict]]) -> list[str]:
    lines = [f"### {data}", "", "| sampler | seeds | test MRR | MR | Hits@1 | Hits@3 | Hits@10 | valid MRR | "
             "chosen epoch | loss ratio (end) | H(g), nats (end) | wall-clock (s) |", "|" + "---|" * 12]
    for variant, runs in results.items():
        if not runs:
            continue
        cells = [stats.format_mean_std([r["test"][c] for r in runs], 1 if c == "mr" else 3) for c in COLUMNS]
        hard = [r["curve"][-1][2] for r in runs if r["curve"]]
        ratio = [h["loss_ratio"] for h in hard if "loss_ratio" in h]
        entropy = [h["gen_entropy"] for h in hard if "gen_entropy" in h]
        lines.append(f"| `{variant}` | {len(runs)} | " + " | ".join(cells) + " | "
                     f"{stats.format_mean_std([r['valid']['mrr'] for r in runs])} | "
                     f"{stats.format_mean_std([r['best_epoch'] for r in runs], 0)} | "
                     f"{stats.format_mean_std(ratio, 2) if ratio else '–'} | "
                     f"{stats.format_mean_std(entropy, 2) if entropy else '–'} | "
                     f"{np.median([r['train_seconds'] for r in runs]):.0f} |")
    anchors = ANCHORS.get(data) if args.model == "transe" and args.dim == 50 else None
    if anchors:
        lines += ["", "Published anchors (RotatE, Table 7; TransE d = 50, their own losses and budgets; not ours): "
                  + "; ".join(f"{k} {mrr:.3f} / {h10:.3f}" for k, (mrr, h10) in anchors.items()) + " (MRR / Hits@10)."]
    source, by_data = OTHER_ANCHORS.get(args.model, ("", {}))
    if data in by_data:
        mrr, h10 = by_data[data]
        lines += ["", f"Published anchor ({source}; {args.model}, their own dimension, loss, sampler and budget; not "
                  f"ours): {mrr:.3f} / {h10:.3f} (MRR / Hits@10)."]
    return lines + [""]


def figure(args, results_by_data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    many = max(len(results) for results in results_by_data.values()) > 6  # the legend goes beside the axes
    width = 5 + 3.5 * many
    fig, axes = plt.subplots(1, len(results_by_data), figsize=(width * len(results_by_data), 3.6), squeeze=False)
    colours = plt.cm.tab20.colors if many else plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (data, results) in zip(axes[0], results_by_data.items()):
        ax.set_prop_cycle(color=colours)
        labels = short_labels(list(results))
        for variant, runs in results.items():
            curves = [r["curve"] for r in runs if r["curve"]]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            epochs = [c[0] for c in curves[0][:length]]
            mrr = np.array([[point[1] for point in c[:length]] for c in curves])
            ax.plot(epochs, mrr.mean(0), marker="o", ms=3, label=labels[variant])
        ax.set(title=data, xlabel="epoch (positives seen / training triples)", ylabel="valid MRR (filtered)")
        per_epoch = len(load_kg(data, download=False).train) / 1e6  # every sampler sees each triple once an epoch
        top = ax.secondary_xaxis("top", functions=(lambda e, k=per_epoch: e * k, lambda m, k=per_epoch: m / k))
        top.set_xlabel("positives seen (millions)")
        ax.legend(fontsize=7, **({"loc": "center left", "bbox_to_anchor": (1.02, 0.5)} if many else {}))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def short_labels(variants: list[str]) -> dict[str, str]:
    """Each variant's label in a figure without the settings every variant shares (the table gives them)."""
    parts = {v: v.partition(":")[2].split(";") if ":" in v else [] for v in variants}
    shared = set.intersection(*(set(p) for p in parts.values())) if len(variants) > 1 else set()
    return {v: ":".join([v.partition(":")[0], ";".join(p for p in parts[v] if p not in shared)]).rstrip(":")
            for v in variants}


def settings(args) -> str:
    model = f"{args.model} (L{args.norm})" if args.model in ("transe", "transd") else args.model
    loss = {"margin": f"margin {args.margin}", "contrastive": f"contrastive margin {args.margin}",
            "logistic": f"logistic loss, γ = {args.gamma}"}[args.loss]
    reg = f", {args.regulariser} regulariser × {args.reg_weight}" if args.regulariser != "none" else ""
    return (f"{model}, d = {args.dim}, {args.negatives} negatives per triple, {loss}{reg}, batch {args.batch}, "
            f"Adam {args.lr}, {args.epochs} epochs")


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    results_by_data = {}
    for data in args.data:
        results = {}
        for variant in args.samplers:
            finals = []
            for seed in range(args.seeds):
                folder = runs / Path(data).name / f"{methods.variant_folder(variant)}-seed{seed}"
                final = run_one(config_of(args, data, variant, seed), folder, args.finished_only)
                if final is not None:
                    finals.append(final)
            results[variant] = finals
        results_by_data[Path(data).name] = results
    command = "python experiments/kg.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    lines = ["# Knowledge-graph samplers: TransE and friends with uniform, Bernoulli, self-adversarial, KBGAN-style "
             "and ACE negatives", "", f"Command: `{command}`",
             f"Machine: {platform.machine()}, {platform.system()}, CPU only; date {datetime.date.today()}; seeds "
             f"0..{args.seeds - 1}. Test scores of each run's best valid ranking (every {args.eval_every} epochs), "
             "filtered, realistic ranks for ties; mean ± sample std over seeds; wall-clock is the median per run, "
             "evaluations included.", f"Settings: {settings(args)}.",
             ""]
    for data, results in results_by_data.items():
        lines += table(args, data, results)
    figure(args, results_by_data, out / "kg.png")
    lines += ["![valid MRR against epochs](kg.png)", ""]
    (out / "kg.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AceJaxError as error:
        print(f"ace-jax: error: {error}", file=sys.stderr)
        sys.exit(1)
