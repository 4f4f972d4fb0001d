"""Run by test_kg_run in its own process (it needs 4 CPU devices before JAX starts): trains a knowledge-graph
run for a few steps under several meshes and saves the final tables of each to an .npz.

    python tests/kg_parallel_worker.py GRAPH_FOLDER OUT.npz DEVICES:ROW_SHARDS ...
"""

import dataclasses
import sys

from ace_jax import parallel

parallel.request_cpu_devices(4)

import numpy as np  # noqa: E402

from ace_jax.kg_config import KgRunConfig  # noqa: E402
from ace_jax.kg_run import KgJob  # noqa: E402

STEPS = 12


def main(graph: str, out: str, *meshes: str) -> None:
    config = KgRunConfig(data=graph, dim=8, batch=8, negatives=4, lr=0.01, margin=1.0, epochs=100, eval_every=100)
    # and RotatE's code's options: subsampling weights, averaged negatives, the rate dropped at step 10. With SGD:
    # Adam's first steps move a coordinate by ±lr whatever its gradient's size, and the weights' sums cancel only
    # to rounding, whose sign depends on the order of the sum (so differs between meshes)
    rotate = dataclasses.replace(config, optimizer="sgd", subsampling=True, average_negatives=True, lr_drop_epoch=2)
    results = {}
    for prefix, settings in (("", config), ("rotate/", rotate)):
        for mesh in meshes:
            devices, row_shards = (int(n) for n in mesh.split(":"))
            job = KgJob(settings, devices=devices, row_shards=row_shards)
            state, metrics = job.advance(job.place(job.initial_state()), 0, STEPS)
            host = job.fetch(state)
            for name, value in host.game.params.items():
                results[f"{prefix}{mesh}/{name}"] = np.asarray(value)
            results[f"{prefix}{mesh}/loss"] = np.asarray(metrics["loss"])
    np.savez(out, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])
