"""The hardness of finished runs' last checkpoints, measured on the negatives training draws (the generator's
proposal: for the pool and KBGAN-style forms over fresh candidate draws, with the entropy floor and known
positives as training applies them), beside what their last evaluation point recorded. Word, knowledge-graph
and hypernym runs (their config.json's family).

Knowledge-graph and hypernym runs before 2026-12-06 scored a draw that makes a known triple (a false negative)
as the top score, so a generator drawing false negatives measured hard; now such draws are left out and counted
(gen_false, noise_false).

Runs trained before 2026-12-03 recorded the measures of the generator's exact softmax over the vocabulary. For a
generator over candidate draws with an entropy floor that is another distribution: the floor binds over 1,024
draws (at most log 1024 = 6.93 nats) and hardly over the vocabulary, so the old rule measured negatives harder
than the ones trained on. This table says by how much.

    python experiments/remeasure.py runs/scale/ace-pool-seed0 runs/scale/ace-tied-pool--gen_min_entropy6-seed0 \\
        --out results/hardness-remeasured.md
    python experiments/remeasure.py runs/kg50/wn18rr/ace--gen_tablesdiscriminator-generatorpool-seed0
"""

import argparse
import json
import sys
from pathlib import Path

from ace_jax import io
from ace_jax.embeddings import measure_hardness
from ace_jax.errors import AceJaxError

MEASURES = ("loss_ratio", "gen_top_k", "noise_top_k", "gen_entropy", "gen_overlap", "gen_false", "noise_false")


def measure(run: Path) -> dict:
    """The hardness of the run's last checkpoint, by its family's rule of today."""
    try:
        family = json.loads((run / "config.json").read_text()).get("family", "word")
    except (OSError, ValueError) as error:
        raise AceJaxError(f"{run}: cannot read config.json ({error})") from None
    if family == "word":
        return measure_hardness(run)
    from ace_jax import kg_run, order_run

    if family not in ("kg", "order"):
        raise AceJaxError(f"{run}: a {family} run; remeasure reads word, kg and order runs")
    return kg_run.measure_hardness(run, order_run.OrderJob if family == "order" else kg_run.KgJob)


def recorded(run: Path) -> dict:
    """The hardness of the run's last evaluation record."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r.get("kind") == "eval" and "hardness" in r]
    if not evals:
        raise AceJaxError(f"{run}: no evaluation record with hardness in metrics.jsonl")
    return evals[-1]["hardness"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="word, kg or order run folders with a checkpoint")
    p.add_argument("--out", default=None, help="a markdown file for the table (printed either way)")
    args = p.parse_args(argv)
    command = "python experiments/remeasure.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["# Hardness at the end of training: as recorded, and of the negatives trained on", "",
             f"Command: `{command}`", "",
             "Each cell: as recorded at the last evaluation point → measured now on the training proposal (the "
             "family's fixed queries: 2,048 corpus words, 2,048 training triples or 512 training pairs; seed 0, 5 "
             "draws per query, top-100).", "",
             "| run | " + " | ".join(MEASURES) + " |", "|---|" + "---|" * len(MEASURES)]
    for run in map(Path, args.runs):
        print(f"== {run}", file=sys.stderr, flush=True)
        old, new = recorded(run), measure(run)
        cells = [f"{old[m]:.3g} → {new[m]:.3g}" if m in old and m in new else f"– → {new[m]:.3g}" if m in new
                 else "–" for m in MEASURES]
        lines.append(f"| `{run.name}` | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with io.atomic_write(Path(args.out)) as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AceJaxError as error:
        print(f"remeasure: error: {error}", file=sys.stderr)
        sys.exit(1)
