"""Knowledge-graph training speed beside PyKEEN's, in one run (issue 17): TransE (L1), the same dimension,
negatives per triple, batch, margin and Adam step, on the same graph; then both models' test scores, ranked by
one evaluator (ours, filtered, realistic ranks).

    python3 -m venv /tmp/pk && /tmp/pk/bin/pip install torch==2.13.0 pykeen      # PyKEEN: a benchmark extra
    python benchmarks/kg_pykeen_speed.py --data wn18rr --epochs 10 [--pykeen-python /tmp/pk/bin/python]

PyKEEN trains in its own interpreter (benchmarks/kg_pykeen.py --worker: its sLCWA training loop, the basic
negative sampler, MarginRankingLoss, TransE's unit-norm entity constraint); this process drives it through a
pipe. The two take epochs in turn, after one warm-up epoch each (compilation, data set-up), so a load on the
machine falls on both alike; positives/s are medians over the epochs and the ratio is the median of the
epochs' ratios. What differs beside the code: we leave corruptions that are training triples out (PyKEEN's
basic sampler keeps them), and keep entity rows in the unit ball rather than on the sphere.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ace_jax import kg_run
from ace_jax.kg_config import KgRunConfig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="wn18rr")
    p.add_argument("--epochs", type=int, default=10, help="timed epochs each, after one warm-up epoch")
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--negatives", type=int, default=10)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--margin", type=float, default=3.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pykeen-python", default="/tmp/pk/bin/python")
    p.add_argument("--extra-epochs", type=int, default=50,
                   help="at most this many more epochs of ours to reach PyKEEN's valid MRR (0: equal epochs)")
    p.add_argument("--scratch", default="/tmp/kg_pykeen_speed.npz", help="where PyKEEN's tables are written")
    args = p.parse_args(argv)

    config = KgRunConfig(data=args.data, dim=args.dim, negatives=args.negatives, batch=args.batch,
                         margin=args.margin, lr=args.lr, seed=args.seed, epochs=args.epochs + 1)
    job = kg_run.KgJob(config)
    state, spe = job.initial_state().game, job.setup.steps_per_epoch
    data = (job.setup.known, job.setup.head_probs, job.setup.noise)
    worker = subprocess.Popen([args.pykeen_python, str(Path(__file__).with_name("kg_pykeen.py")), "--worker",
                               args.data, str(args.dim), str(args.negatives), str(args.batch), str(args.margin),
                               str(args.lr), str(args.seed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    banner = worker.stdout.readline().strip()

    def ours(epoch):
        nonlocal state
        plan = tuple(jnp.asarray(a) for a in kg_run.step_plan(job.setup, epoch * spe, spe))
        start = time.perf_counter()
        state, _ = job.steps_fn(state, plan, *data)
        jax.block_until_ready(state)
        return time.perf_counter() - start

    def theirs():
        worker.stdin.write("epoch\n")
        worker.stdin.flush()
        return float(worker.stdout.readline())

    warm = ours(0), theirs()
    seconds = [(ours(epoch), theirs()) for epoch in range(1, args.epochs + 1)]
    worker.stdin.write(f"save {args.scratch}\n")
    worker.stdin.flush()
    worker.stdout.readline()
    worker.stdin.close()
    worker.wait()
    tables = np.load(args.scratch)
    theirs_params = {k: jnp.asarray(tables[k]) for k in ("entity", "relation")}
    scores = {"ace_jax": kg_run.link_prediction(job.setup, state.params, "test"),
              "PyKEEN": kg_run.link_prediction(job.setup, theirs_params, "test")}
    target = kg_run.link_prediction(job.setup, theirs_params, "valid")["mrr"]
    epochs, valid = args.epochs + 1, kg_run.link_prediction(job.setup, state.params, "valid")["mrr"]
    while valid < target and epochs < args.epochs + 1 + args.extra_epochs:
        ours(epochs)
        epochs += 1
        valid = kg_run.link_prediction(job.setup, state.params, "valid")["mrr"]
    positives = len(job.setup.graph.train)
    print(f"{args.data}, TransE (L1) d={args.dim}, {args.negatives} negatives, batch {args.batch}, margin "
          f"{args.margin}, Adam {args.lr}; {args.epochs} timed epochs each, in turn; jax {jax.__version__} "
          f"({jax.devices()[0].platform}); PyKEEN worker: {banner}")
    print("| trainer | positives/s (median) | warm-up epoch s | test MRR | Hits@10 | ratio to PyKEEN |")
    print("|---|---|---|---|---|---|")
    ratio = float(np.median([t / o for o, t in seconds]))
    for i, name in enumerate(("ace_jax", "PyKEEN")):
        rate = positives / float(np.median([s[i] for s in seconds]))
        print(f"| {name} | {rate:,.0f} | {warm[i]:.1f} | {scores[name]['mrr']:.4f} | {scores[name]['hits@10']:.4f} | "
              f"{ratio if i == 0 else 1.0:.2f} |")
    print(f"(scores after {args.epochs + 1} epochs each, ranked by ace_jax's evaluator)")
    medians = [float(np.median([s[i] for s in seconds])) for i in (0, 1)]
    if valid >= target:
        test = kg_run.link_prediction(job.setup, state.params, "test")
        print(f"at equal valid MRR: ace_jax reached PyKEEN's {target:.4f} after {epochs} epochs ({valid:.4f}; test "
              f"MRR {test['mrr']:.4f}, Hits@10 {test['hits@10']:.4f}): "
              f"{(args.epochs + 1) * medians[1] / (epochs * medians[0]):.2f}x PyKEEN's speed")
    else:
        print(f"at equal valid MRR: ace_jax's {valid:.4f} after {epochs} epochs is still under PyKEEN's {target:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
