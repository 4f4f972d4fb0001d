"""Are ACE's S2Net negatives false negatives? For trained ACE runs, how much of the generator's probability for
each paraphrase query falls on texts the gold data pairs with that query (its other partners: near-paraphrases),
against uniform noise and against the discriminator's own hardest candidate.

    python experiments/s2net_probe.py runs/s2net/sick-defaults-ace-s0 runs/s2net/sick-chosen-ace-s0  # after s2net.py

For every training paraphrase query q (a text of a pair scoring ≥ the paraphrase threshold) and every
candidate n other than q and the positive p the step pairs it with (the generator can never pick those two),
"gold-related" means the training data has a pair (q, n) or (n, q); "≥ s" keeps those scoring at least s.
Reported per query, averaged over queries: the generator's expected share of picks on related texts
(Σ_n g(n|q) over them), uniform noise's share (|related| / candidates), and how often the discriminator's
highest-cosine candidate is related. Training data only; no dev or test split is read.
"""

import argparse
import collections
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ace_jax import io, s2net_run
from ace_jax.errors import AceJaxError
from ace_jax.families import s2net as s2net_family


def related_sets(setup: s2net_run.Setup, threshold: float) -> dict[int, set[int]]:
    """text row -> the rows the training pairs link it with at a score ≥ threshold."""
    links = collections.defaultdict(set)
    for (a, b), score in zip(setup.pair_text, setup.train.score):
        if score >= threshold and a != b:
            links[int(a)].add(int(b))
            links[int(b)].add(int(a))
    return links


def probe(run_dir: Path, levels: tuple[float, ...], batch: int = 256) -> dict:
    config = s2net_run.load_config(run_dir)
    if config.game.sampler != "ace":
        raise AceJaxError(f"{run_dir} is a {config.game.sampler} run; the probe reads an ACE generator")
    setup = s2net_run.build(config)
    state = io.load_checkpoint(run_dir / "checkpoint.msgpack", setup.initial_state)
    gen_params = jax.tree.map(jnp.asarray, state.gen_params)  # host arrays: index them with traced ids on the device
    texts, task = setup.texts, setup.task
    queries, partners = task.query, task.partner
    num_texts = texts.ids.shape[0]
    projected = np.asarray(s2net_run.model_of(setup, state).vectors(task.sentences), np.float64)
    unit = projected / np.maximum(np.linalg.norm(projected, axis=1, keepdims=True), 1e-8)
    sets = {level: related_sets(setup, level) for level in levels}

    @jax.jit
    def probabilities(q, p):
        pairs = s2net_family.PairBatch(texts.ids[q], texts.weights[q], texts.ids[p], texts.weights[p], p, q)
        return jax.nn.softmax(s2net_family.generator_logits(gen_params, pairs, texts), axis=-1)

    shares = {level: {"generator": [], "uniform": [], "discriminator_top1": [], "related": []} for level in levels}
    for start in range(0, len(queries), batch):
        q, p = queries[start:start + batch], partners[start:start + batch]
        pad = batch - len(q)
        probs = np.asarray(probabilities(jnp.asarray(np.pad(q, (0, pad))), jnp.asarray(np.pad(p, (0, pad)))))[:len(q)]
        cosines = unit[q] @ unit.T  # [b, C]
        cosines[np.arange(len(q)), q] = -np.inf
        cosines[np.arange(len(q)), p] = -np.inf
        top = cosines.argmax(1)
        for row, (query, positive) in enumerate(zip(q, p)):
            for level in levels:
                related = sets[level].get(int(query), set()) - {int(query), int(positive)}
                rel = np.fromiter(related, int) if related else np.zeros(0, int)
                s = shares[level]
                s["generator"].append(float(probs[row, rel].sum()))
                s["uniform"].append(len(related) / (num_texts - 2))
                s["discriminator_top1"].append(float(int(top[row]) in related))
                s["related"].append(len(related))
    return {"run": str(run_dir), "data": config.data, "queries": int(len(queries)), "candidates": int(num_texts),
            **{f"≥ {level:g}": {k: float(np.mean(v)) for k, v in s.items()} for level, s in shares.items()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="ACE run folders (s2net train --method ace)")
    p.add_argument("--levels", default="0,3,4", help="gold score levels: a related text scores at least this")
    p.add_argument("--out", default=None, help="also write the table (Markdown) here")
    args = p.parse_args(argv)
    levels = tuple(float(x) for x in args.levels.split(","))
    results = [probe(Path(run), levels) for run in args.runs]
    lines = ["| data | run | queries | related texts ≥ | mean count | generator's share | uniform's share "
             "| D's top-1 related |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for level in levels:
            s = r[f"≥ {level:g}"]
            lines.append(f"| {r['data']} | {Path(r['run']).name} | {r['queries']} | {level:g} | {s['related']:.2f} | "
                         f"{s['generator']:.4f} | {s['uniform']:.5f} | {s['discriminator_top1']:.3f} |")
    print("\n".join(lines))
    print(json.dumps(results), file=sys.stderr)
    if args.out:
        command = "python experiments/s2net_probe.py " + " ".join(argv if argv is not None else sys.argv[1:])
        with io.atomic_write(args.out) as f:
            f.write(f"Command: `{command}`\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AceJaxError as error:
        print(f"s2net_probe: error: {error}", file=sys.stderr)
        sys.exit(1)
