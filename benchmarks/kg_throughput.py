"""Knowledge-graph training speed per sampler, and the time of a full filtered evaluation (issue 17).

    python benchmarks/kg_throughput.py --data fb15k-237 --samplers "uniform,self-adv,kbgan,ace:generator=pool" \
        [--model transe --dim 50 --negatives 10 --batch 1024] [--windows 5 --steps 50]

Each sampler's compiled step runs in turn, window by window (so a load on the machine falls on all alike);
positives/s and negatives scored/s (by the discriminator) are medians over the windows, and each sampler's ratio
to the first is the median of the windows' ratios. A generator's candidates scored/s is positives/s times the
candidates its softmax scores for each triple (its pool, its KBGAN-style draws, or every entity for the exact form).
Then the test split is ranked once, filtered, over every entity, and timed.
"""

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from ace_jax import kg_run, methods
from ace_jax.kg_config import SAMPLERS, KgRunConfig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fb15k-237")
    p.add_argument("--samplers", default="uniform,self-adv,kbgan,ace:generator=pool")
    p.add_argument("--model", default="transe")
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--negatives", type=int, default=10)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--steps", type=int, default=50, help="steps per window")
    args = p.parse_args(argv)
    registry = {name: None for name in SAMPLERS}
    jobs = {}
    for variant in args.samplers.split(","):
        sampler, settings = methods.parse_variant(variant, registry)
        config = KgRunConfig(data=args.data, model=args.model, dim=args.dim, negatives=args.negatives,
                             batch=args.batch, sampler=sampler, **settings)
        job = kg_run.KgJob(config)
        state = job.place(job.initial_state()).game
        plan = tuple(jnp.asarray(a) for a in kg_run.step_plan(job.setup, 0, args.steps))
        data = (job.setup.known, job.setup.head_probs, job.setup.noise)
        start = time.perf_counter()
        state, _ = job.steps_fn(state, plan, *data)  # compile, and a first window
        jax.block_until_ready(state)
        jobs[variant] = dict(job=job, state=state, plan=plan, data=data, compile=time.perf_counter() - start,
                             rates=[])
    for _ in range(args.windows):
        for entry in jobs.values():
            start = time.perf_counter()
            entry["state"], _ = entry["job"].steps_fn(entry["state"], entry["plan"], *entry["data"])
            jax.block_until_ready(entry["state"])
            entry["rates"].append(args.steps * args.batch / (time.perf_counter() - start))
    first = next(iter(jobs.values()))["rates"]
    print(f"{args.data}, {args.model} d={args.dim}, {args.negatives} negatives, batch {args.batch}; "
          f"{args.windows} windows of {args.steps} steps; jax {jax.__version__}, {jax.devices()[0].platform}")
    print("| sampler | positives/s | negatives scored/s | generator's candidates scored/s | ratio to the first | "
          "compile s |\n|---|---|---|---|---|---|")
    for variant, entry in jobs.items():
        rate = float(np.median(entry["rates"]))
        ratio = float(np.median(np.array(entry["rates"]) / np.array(first)))
        config, entities = entry["job"].config, len(entry["job"].setup.graph.entities)
        scored = f"{rate * (config.num_candidates or entities):,.0f}" if config.uses_generator else "–"
        print(f"| `{variant}` | {rate:,.0f} | {rate * args.negatives:,.0f} | {scored} | {ratio:.3f} | "
              f"{entry['compile']:.1f} |")
    entry = next(iter(jobs.values()))
    for attempt in ("first (with compiling)", "second"):
        start = time.perf_counter()
        scores = kg_run.link_prediction(entry["job"].setup, entry["state"].params, "test")
        print(f"full filtered test ranking, {attempt}: {time.perf_counter() - start:.1f} s "
              f"({scores['triples']:,} triples, both sides, {len(entry['job'].setup.graph.entities):,} entities)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
