"""Chooses S2Net's settings on the dev splits only (STS-B dev, SICK trial): the TF-IDF baseline's term weighting,
then S2Net's size, start, step size and length, then each sampler's own knob. Writes the dev scores of every
setting tried to results/s2net-tuning.md, and both to results/s2net-tuning.json, whose choices
experiments/s2net.py reads for the test table. Test splits are never read here.

    python experiments/s2net_tune.py                      # both datasets, every stage (about 1.5 hours on 2 cores)
    python experiments/s2net_tune.py --data stsb --stages tfidf

Stages (each picks the best dev Spearman; one seed, 0):
  tfidf    the TF-IDF cosine over tf × idf × tokenizer × stop words (48 weightings), each with and without the
           words no training text has: the best is the TF-IDF baseline, the best without them S2Net's input
  shared   the paper's S2Net (gold preferences only) over k × init × learning rate × steps, on the chosen
           weighting: the discriminator's settings, shared by every sampler, none of which they favour
  knobs    each sampler's own setting at the shared ones: self-adv's temperature, ACE's λ and generator step
"""

import argparse
import datetime
import itertools
import json
import os
import platform
import sys
from pathlib import Path

from ace_jax import io, methods, s2net_run, text_features
from ace_jax.errors import AceJaxError

DEV = {"stsb": "dev", "sick": "trial"}
SHARED_GRID = dict(dim=(300, 1000), init=("random", "lsi"), learning_rate=(1e-3, 3e-3), steps=(1000, 2000, 6000))
KNOBS = {  # method -> {setting: values}; uniform and in-batch have none: one run each at the shared settings
    "uniform": {}, "in-batch": {},
    "self-adv": dict(self_adv_temperature=(1.0, 5.0, 20.0)),
    "ace": dict(lam=(0.5, 0.8), gen_learning_rate=(1e-3, 1e-2)),
}


def tune_tfidf(data: str, log) -> dict:
    """Every weighting, with and without the words no training text has: the best of all is the TF-IDF baseline;
    the best without them is S2Net's input (its projection has rows for training words only)."""
    rows = []
    for tf, idf, tokenizer, stop_words in itertools.product(text_features.TF, text_features.IDF,
                                                            text_features.TOKENIZERS, (False, True)):
        fields = dict(tf=tf, idf=idf, tokenizer=tokenizer, stop_words=stop_words)
        config = methods.s2net_config("uniform", data=data, **fields)
        setup = s2net_run.build(config)
        pairs = s2net_run.eval_sets(data, split=DEV[data])[DEV[data]]
        for unseen in (False, True):
            scores = s2net_run.evaluate(s2net_run.tfidf_model(setup, unseen), pairs, config.paraphrase_threshold)
            rows.append((scores["spearman"], {**fields, "unseen_words": unseen}, scores))
            log(f"{data} tfidf {rows[-1][1]}: dev spearman {scores['spearman']:.4f}")
    rows.sort(key=lambda r: -r[0])
    inputs = next(fields for _, fields, _ in rows if not fields["unseen_words"])
    return {"rows": rows, "best": rows[0][1], "inputs": {k: v for k, v in inputs.items() if k != "unseen_words"}}


def train_dev(config, runs: Path, name: str, log) -> dict:
    folder = runs / name
    if (folder / "metrics.json").exists() and s2net_run.load_config(folder) == config:
        final = json.loads((folder / "metrics.json").read_text())
    else:
        if folder.exists():
            raise AceJaxError(f"{folder} holds another or unfinished run; remove it")
        final = s2net_run.train_s2net(config, folder, progress=False)
    scores = final[DEV[config.data]]
    log(f"{name}: dev spearman {scores['spearman']:.4f} ({final['train_seconds']:.0f} s)")
    return {"dev": scores, "seconds": final["train_seconds"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="stsb,sick")
    p.add_argument("--stages", default="tfidf,shared,knobs")
    p.add_argument("--out", default="results")
    p.add_argument("--runs", default="runs/s2net-tune")
    args = p.parse_args(argv)
    out, runs = Path(args.out), Path(args.runs)
    record_path = out / "s2net-tuning.json"
    # data -> {"chosen": {...}, "commands": [...], stage: rows}; earlier stages' rows are kept
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    command = "python experiments/s2net_tune.py " + " ".join(argv if argv is not None else sys.argv[1:])

    def log(message):
        print(message, file=sys.stderr, flush=True)

    for data in args.data.split(","):
        entry = record.setdefault(data, {"chosen": {}, "commands": []})
        choice = entry["chosen"]
        entry["commands"].append(f"{command.strip()} ({datetime.date.today()})")
        if "tfidf" in args.stages:
            result = tune_tfidf(data, log)
            choice["weighting"], choice["tfidf"] = result["inputs"], result["best"]
            entry["tfidf"] = [(fields, scores) for _, fields, scores in result["rows"]]
        base = dict(data=data, **choice["weighting"], log_every=500)
        if "shared" in args.stages:
            rows = []
            for method in ("gold",):
                for values in itertools.product(*SHARED_GRID.values()):
                    setting = dict(zip(SHARED_GRID, values))
                    name = f"{data}-{method}-" + "-".join(f"{k}{v}" for k, v in setting.items())
                    config = methods.s2net_config(method, **base, **setting)
                    rows.append((method, setting, train_dev(config, runs, name, log)))
            choice["shared"] = max(rows, key=lambda r: r[2]["dev"]["spearman"])[1]
            entry["shared"] = rows
        if "knobs" in args.stages:
            rows = []
            for method, knobs in KNOBS.items():
                for values in itertools.product(*knobs.values()):
                    setting = dict(zip(knobs, values))
                    name = f"{data}-{method}-" + "-".join(f"{k}{v}" for k, v in {**choice["shared"], **setting}.items())
                    config = methods.s2net_config(method, **base, **choice["shared"], **setting)
                    rows.append((method, setting, train_dev(config, runs, name, log)))
            choice["knobs"] = {method: max((r for r in rows if r[0] == method),
                                           key=lambda r: r[2]["dev"]["spearman"])[1] for method in KNOBS}
            entry["knobs"] = rows
        out.mkdir(parents=True, exist_ok=True)
        with io.atomic_write(record_path) as f:
            json.dump(record, f, indent=1)
        write_report(out / "s2net-tuning.md", record)
    return 0


def write_report(path: Path, record: dict) -> None:
    lines = ["# S2Net: settings chosen on the dev splits", "",
             f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, CPU only; seed 0. Dev splits "
             "only (STS-B dev, SICK trial): the test splits are never read here. The choices are in "
             "s2net-tuning.json, which experiments/s2net.py reads for results/s2net.md.", ""]
    for data, entry in record.items():
        lines += [f"## {data} (dev: {DEV[data]})", "", *[f"Command: `{c}`" for c in entry["commands"]], "",
                  f"Chosen: `{json.dumps(entry['chosen'])}`", ""]
        if "tfidf" in entry:
            lines += ["### TF-IDF cosine: term weightings", "",
                      "unseen words: the words no training text has count too, at the idf of a df of 0 (else they "
                      "are dropped, as S2Net's projection, which has no row for them, must drop them).", "",
                      "| tf | idf | tokenizer | stop words | unseen words | dev spearman | dev pearson | dev top-1 "
                      "| dev mrr |", "|---|---|---|---|---|---|---|---|---|"]
            for fields, s in entry["tfidf"]:
                lines.append(f"| {fields['tf']} | {fields['idf']} | {fields['tokenizer']} | {fields['stop_words']} | "
                             f"{fields.get('unseen_words', False)} | {s['spearman']:.4f} | {s['pearson']:.4f} | "
                             f"{s['top1']:.3f} | {s['mrr']:.3f} |")
            lines.append("")
        for stage, title in (("shared", "shared settings"), ("knobs", "each sampler's own setting")):
            if stage not in entry:
                continue
            lines += [f"### S2Net: {title}", "", "| method | setting | dev spearman | dev top-1 | dev mrr | seconds |",
                      "|---|---|---|---|---|---|"]
            for method, setting, r in sorted(entry[stage], key=lambda r: -r[2]["dev"]["spearman"]):
                d = r["dev"]
                lines.append(f"| {method} | `{json.dumps(setting)}` | {d['spearman']:.4f} | {d['top1']:.3f} | "
                             f"{d['mrr']:.3f} | {r['seconds']:.0f} |")
            lines.append("")
    with io.atomic_write(path) as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AceJaxError as error:
        print(f"s2net_tune: error: {error}", file=sys.stderr)
        sys.exit(1)
