"""Step time against vocabulary size (10k to 1M rows, synthetic Zipf corpus) and against batch size.

    python benchmarks/vocab_scaling.py

gensim trains on the same corpora beside the per-pair ns rows, with tables of the same V rows: the
reference's own slow-down from 10k to 1M rows, as time per corpus word.

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

from ace_jax import methods
from ace_jax.embeddings import WordConfig, build


def zipf_corpus(path: str, vocab_size: int, tokens: int, each: int, seed: int = 0) -> None:
    """`tokens` draws with p ∝ 1/rank, plus `each` copies of every word so that all vocab_size words reach
    min_count = each, shuffled and written as words."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab_size + 1)
    ids = np.concatenate([rng.choice(vocab_size, tokens, p=weights / weights.sum()),
                          np.repeat(np.arange(vocab_size), each)])
    rng.shuffle(ids)
    with open(path + ".tmp", "w") as f:
        for start in range(0, len(ids), 1000):
            f.write(" ".join(f"w{i}" for i in ids[start:start + 1000]) + "\n")
    os.replace(path + ".tmp", path)


def gensim_words_per_s(paths: list[str], each: int, words: int, repeats: int, dim: int) -> list[float]:
    """gensim Word2Vec (sg=1, negative=5, window 5, sample 1e-3, d = dim, workers = cores) on each corpus,
    its vocabulary built from the whole corpus, so its tables have V rows as ours do; trained on the
    corpus's first `words` words, the corpora taking turns: the median words/s of `repeats` epochs each."""
    from gensim.models import Word2Vec

    heads, models = [], []
    for path in paths:
        heads.append(f"{path}.head{words}")
        if not os.path.exists(heads[-1]):
            with open(path) as f, open(heads[-1] + ".tmp", "w") as out:
                left = words
                for line in f:
                    kept = line.split()[:left]
                    out.write(" ".join(kept) + "\n")
                    left -= len(kept)
                    if not left:
                        break
            os.replace(heads[-1] + ".tmp", heads[-1])
        models.append(Word2Vec(vector_size=dim, window=5, min_count=each, sg=1, negative=5, sample=1e-3, seed=0,
                               workers=os.cpu_count() or 1))
        models[-1].build_vocab(corpus_file=path)
    speeds = [[] for _ in paths]
    for _ in range(repeats):
        for model, head, runs in zip(models, heads, speeds):
            start = time.perf_counter()
            model.train(corpus_file=head, total_words=words, epochs=1)
            runs.append(words / (time.perf_counter() - start))
    return [statistics.median(runs) for runs in speeds]


def interleaved_step_seconds(configs: list[WordConfig], steps: int, repeats: int) -> list[tuple[float, float]]:
    """For each config, the median seconds per step and the corpus words (before subsampling) a step covers.
    The configs take turns, a window of `steps` each per repeat, so drifts in a shared machine's load
    fall on all of them alike."""
    runs = []
    for config in configs:
        setup = build(config)
        state, _ = setup.run_step(setup.place(setup.initial_state), 0)  # compile
        jax.block_until_ready(state.params)
        runs.append([setup, state, []])
    for _ in range(repeats):
        for run in runs:
            setup, state, times = run
            start = time.perf_counter()
            for i in range(steps):
                state, _ = setup.run_step(state, 1 + i % (setup.total_steps - 1))
            jax.block_until_ready(state.params)
            times.append((time.perf_counter() - start) / steps)
            run[1] = state
    return [(statistics.median(times), setup.raw_words_per_step) for setup, _, times in runs]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab-sizes", default="10000,100000,1000000")
    p.add_argument("--ace-vocab-sizes", default="10000,30000", help="the exact generator: O(V) per query")
    p.add_argument("--pool-vocab-sizes", default="10000,100000,1000000", help="ACE with the pool generator")
    p.add_argument("--samplers", default="ns,ns-shared-step,ace,ace-pool")
    p.add_argument("--chunk", type=int, default=512, help="tokens per step of the vocabulary rows")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--chunks", default="128,512,2048", help="batch-size rows (ns at V = 100k); empty: none")
    p.add_argument("--tokens", type=int, default=20_000_000, help="Zipf draws per corpus")
    p.add_argument("--each", type=int, default=1,
                   help="copies of every word added so the table has V rows (min_count = each); the padding is "
                        "uniform over the rows, so it must stay a small share of the tokens to keep the law Zipf's")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", default="runs/vocab_scaling")
    p.add_argument("--gensim-words", type=int, default=2_000_000,
                   help="gensim's words per timed epoch on each ns corpus, the reference's own scaling (0: none)")
    args = p.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    print(f"# {datetime.date.today()} {platform.machine()} {os.cpu_count()} cores, jax {jax.__version__} on "
          f"{jax.devices()[0].platform}; command: python benchmarks/vocab_scaling.py "
          f"{' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"# corpora: {args.tokens:,} Zipf draws plus {args.each} of every word; d = {args.dim}, window 5, "
          "5 negatives")
    print("| tool | sampler | V | chunk (tokens/step) | ms/step | step time, ratio to the smallest V | words/s "
          "| time per word, ratio to the smallest V |")
    print("|---|---|---|---|---|---|---|---|")
    vocab_sizes = {"ns": args.vocab_sizes, "ns-shared-step": args.vocab_sizes, "ace": args.ace_vocab_sizes,
                   "ace-pool": args.pool_vocab_sizes}
    for sampler in args.samplers.split(","):
        if sampler not in vocab_sizes:
            p.error(f"unknown sampler {sampler!r}; choose from {', '.join(vocab_sizes)}")
        sizes = vocab_sizes[sampler]
        sizes = [int(v) for v in sizes.split(",")]
        configs = []
        for vocab_size in sizes:
            path = os.path.join(args.workdir, f"zipf-{vocab_size}-{args.tokens}-{args.each}.txt")
            if not os.path.exists(path):
                zipf_corpus(path, vocab_size, args.tokens, args.each)
            # Words are "w123": text8 normalisation would spell out the digits and leave 11 words.
            # row_clip 0: the tables here are unclipped (the registry clips ns-shared-step at 50 since 2026-12-03).
            configs.append(methods.word_config(sampler, corpus=path, dim=args.dim, chunk=args.chunk, normalize=False,
                                               min_count=args.each, row_clip=0.0))
        timings = interleaved_step_seconds(configs, args.steps, args.repeats)
        first_words_per_s = timings[0][1] / timings[0][0]
        for vocab_size, (seconds, words) in zip(sizes, timings):
            print(f"| ace_jax | {sampler} | {vocab_size:,} | {args.chunk} | {seconds * 1e3:.2f} | "
                  f"{seconds / timings[0][0]:.2f} | {words / seconds:,.0f} | "
                  f"{first_words_per_s * seconds / words:.2f} |", flush=True)
        if sampler == "ns" and args.gensim_words:
            speeds = gensim_words_per_s([c.corpus for c in configs], args.each, args.gensim_words, args.repeats,
                                        args.dim)
            for vocab_size, speed in zip(sizes, speeds):
                print(f"| gensim | ns | {vocab_size:,} | – | – | – | {speed:,.0f} | {speeds[0] / speed:.2f} |",
                      flush=True)
    chunks = [int(c) for c in args.chunks.split(",") if c]
    path = os.path.join(args.workdir, f"zipf-100000-{args.tokens}-{args.each}.txt")
    if chunks and not os.path.exists(path):
        zipf_corpus(path, 100_000, args.tokens, args.each)
    configs = [methods.word_config("ns", corpus=path, dim=args.dim, chunk=chunk, normalize=False, min_count=args.each)
               for chunk in chunks]
    for chunk, (seconds, words) in zip(chunks, interleaved_step_seconds(configs, args.steps, args.repeats)):
        print(f"| ace_jax | ns | 100,000 | {chunk} | {seconds * 1e3:.2f} | – | {words / seconds:,.0f} | – |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
