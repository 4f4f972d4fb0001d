"""Step time against vocabulary size (10k to 1M rows, synthetic Zipf corpus) and against batch size.

    python benchmarks/vocab_scaling.py

A row-sparse step touches only the rows it reads, so its time should not grow with V; the exact ACE
generator is a softmax over all V rows and grows linearly (shown for the smaller vocabularies); the pool
generator scores 1024 draws, but its Adam update still passes over its whole [V, d_g] tables. Never run
as a test.
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import jax
import numpy as np

from ace_jax.embeddings import WordConfig, build
from ace_jax.train import GameConfig


def zipf_corpus(path: str, vocab_size: int, tokens: int, seed: int = 0) -> None:
    """Token ids with p ∝ 1/rank, written as words; every word appears at least min_count times."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab_size + 1)
    ids = np.concatenate([rng.choice(vocab_size, tokens, p=weights / weights.sum()),
                          np.repeat(np.arange(vocab_size), 5)])
    rng.shuffle(ids)
    with open(path, "w") as f:
        for start in range(0, len(ids), 1000):
            f.write(" ".join(f"w{i}" for i in ids[start:start + 1000]) + "\n")


def median_step_seconds(config: WordConfig, steps: int, repeats: int) -> tuple[float, float]:
    """The median seconds per step, and the corpus words (before subsampling) a step covers."""
    setup = build(config)
    state = setup.place(setup.initial_state)
    state, _ = setup.run_step(state, 0)  # compile
    jax.block_until_ready(state.params)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(steps):
            state, _ = setup.run_step(state, 1 + i % (setup.total_steps - 1))
        jax.block_until_ready(state.params)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times), setup.raw_words_per_step


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab-sizes", default="10000,100000,1000000")
    p.add_argument("--ace-vocab-sizes", default="10000,30000", help="the exact generator: O(V) per query")
    p.add_argument("--pool-vocab-sizes", default="10000,100000,1000000", help="ACE with the pool generator")
    p.add_argument("--chunks", default="128,512,2048")
    p.add_argument("--tokens", type=int, default=2_000_000)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", default="runs/vocab_scaling")
    args = p.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    print(f"# {datetime.date.today()} {platform.machine()} {os.cpu_count()} cores, jax {jax.__version__} on "
          f"{jax.devices()[0].platform}; command: python benchmarks/vocab_scaling.py "
          f"{' '.join(argv if argv is not None else sys.argv[1:])}")
    print("| sampler | V | chunk (tokens/step) | ms/step | ratio to the smallest V |")
    print("|---|---|---|---|---|")
    settings = {  # name -> (GameConfig settings, WordConfig settings)
        "ns": (dict(sampler="ns"), {}),
        "ns-shared-step": (dict(sampler="ns", shared_negatives=True), dict(reach="step")),
        "ace": (dict(sampler="ace"), {}),
        "ace-pool": (dict(sampler="ace", generator="pool", candidates=1024), {}),
    }
    for sampler, sizes in (("ns", args.vocab_sizes), ("ns-shared-step", args.vocab_sizes), ("ace", args.ace_vocab_sizes),
                           ("ace-pool", args.pool_vocab_sizes)):
        base = None
        for vocab_size in (int(v) for v in sizes.split(",")):
            path = os.path.join(args.workdir, f"zipf-{vocab_size}.txt")
            if not os.path.exists(path):
                zipf_corpus(path, vocab_size, args.tokens)
            # Words are "w123": text8 normalisation would spell out the digits and leave 11 words.
            game, word = settings[sampler]
            config = WordConfig(corpus=path, dim=100, chunk=512, game=GameConfig(**game), normalize=False, **word)
            seconds, _ = median_step_seconds(config, args.steps, args.repeats)
            base = base or seconds
            print(f"| {sampler} | {vocab_size:,} | 512 | {seconds * 1e3:.2f} | {seconds / base:.2f} |", flush=True)
    path = os.path.join(args.workdir, "zipf-100000.txt")
    for chunk in (int(c) for c in args.chunks.split(",")):
        config = WordConfig(corpus=path, dim=100, chunk=chunk, game=GameConfig(sampler="ns"), normalize=False)
        seconds, words = median_step_seconds(config, args.steps, args.repeats)
        print(f"| ns | 100,000 | {chunk} | {seconds * 1e3:.2f} | words/s {words / seconds:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
