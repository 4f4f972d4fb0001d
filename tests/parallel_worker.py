"""Run by test_parallel in its own process (it needs 4 CPU devices before JAX starts):
trains a few steps under several meshes and saves the final tables of each to an .npz.

    python tests/parallel_worker.py CORPUS OUT.npz SAMPLER:MODEL:DEVICES:ROW_SHARDS:OPTIMIZER[:shared-step] ...

shared-step: shared negatives with one window size per step.
"""

import sys

from ace_jax import parallel

parallel.request_cpu_devices(4)

import numpy as np  # noqa: E402

from ace_jax.embeddings import WordConfig, build  # noqa: E402
from ace_jax.families.word import GameConfig  # noqa: E402

STEPS = 12


def final_tables(corpus: str, sampler: str, model: str, devices: int, row_shards: int, optimizer: str,
                 shared_step: bool) -> dict:
    config = WordConfig(corpus=corpus, min_count=1, dim=8, window=2, chunk=64, sample=0, learning_rate=0.01,
                        model=model, optimizer=optimizer, gen_dim=4, reach="step" if shared_step else "centre",
                        game=GameConfig(sampler=sampler, negatives=3, shared_negatives=shared_step),
                        eval_sets=(), final_sets=(), analogy=False)
    setup = build(config, devices=devices, row_shards=row_shards)
    state = setup.place(setup.initial_state)
    for step in range(STEPS):
        state, metrics = setup.run_step(state, step)
    host = setup.fetch(state)
    tables = {f"params/{k}": v for k, v in host.params.items()}
    tables.update({f"gen/{k}": v for k, v in host.gen_params.items()})
    tables["pairs"] = np.asarray(host.pairs)
    tables["loss"] = np.asarray(metrics["loss"])
    tables["compiles"] = np.asarray(setup.step_fn._cache_size())
    return tables


def main(corpus: str, out: str, *runs: str) -> None:
    results = {}
    for run in runs:
        sampler, model, devices, row_shards, optimizer, *options = run.split(":")
        shared_step = options == ["shared-step"]
        tables = final_tables(corpus, sampler, model, int(devices), int(row_shards), optimizer, shared_step)
        for name, value in tables.items():
            results[f"{run}/{name}"] = value
    np.savez(out, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])
