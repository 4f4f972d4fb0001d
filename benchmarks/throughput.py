"""Training throughput of ace_jax against gensim Word2Vec, measured side by side in one run, with ρ beside speed.

    python benchmarks/throughput.py                       # d = 100 and 300, ns and ace, a 1M-token slice of enwiki-00
    python benchmarks/throughput.py --dims 100 --samplers ns --max-tokens 0   # the whole shard
    python benchmarks/throughput.py --dims 100 --samplers ns-shared --row-clip 0,50   # with and without a clip
    python benchmarks/throughput.py --dims 300 --samplers ns --chunk 512,65536 --lr 0.025,0.05   # step sizes (GPU)

gensim (sg=1, negative=5, same tokens, dimension, window, subsampling, workers = cores) trains --repeats
epochs, each followed by a timed window of steps of every ace_jax setting (a different one first each
time), so both sides see the same load on a shared machine. For each setting: compile time, words/s,
positive pairs/s and negatives scored/s (medians over the windows), the ratio to gensim (the median of each
window's ratio to the gensim epoch before it), peak host memory, device memory where the backend reports
it, and WS-353 / RW ρ after one epoch. The JSON also has the words/s of the steps after the windows, run
without a break (not paired with gensim), a check that the windows show the sustained speed. Never run as a
test.
"""

import argparse
import datetime
import itertools
import json
import os
import platform
import resource
import sys
import time

import jax
import numpy as np

from ace_jax import methods
from ace_jax.data.corpus import CorpusOptions, load_corpus
from ace_jax.embeddings import build, input_vectors
from ace_jax.errors import AceJaxError
from ace_jax.evaluate.similarity import evaluate_all
from ace_jax.io import atomic_write

QUALITY_SETS = ("ws353", "rw")
def peak_host_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def device_peak_mib() -> float | None:
    stats = jax.devices()[0].memory_stats()
    return stats["peak_bytes_in_use"] / 2**20 if stats and "peak_bytes_in_use" in stats else None


class Ours:
    """One ace_jax setting, compiled, timed in windows of steps between gensim's runs, then run to the end
    of its epoch for ρ."""

    def __init__(self, args, dim: int, sampler: str, row_clip: float, chunk: int, learning_rate: float):
        method, settings = methods.parse_variant(sampler)
        config = methods.word_config(method, **{**dict(
            corpus=args.corpus, max_tokens=args.max_tokens, max_vocab=args.max_vocab, dim=dim, window=5, negatives=5,
            kernel=args.kernel, chunk=chunk, row_clip=row_clip, learning_rate=learning_rate, seed=0), **settings})
        self.sampler, self.dim, self.row_clip, self.chunk, self.lr = sampler, dim, row_clip, chunk, learning_rate
        self.setup = build(config)
        self.state = self.setup.place(self.setup.initial_state)
        start = time.perf_counter()
        self.state, metrics = self.setup.run_step(self.state, 0)
        jax.block_until_ready(metrics)
        self.compile_s = time.perf_counter() - start
        self.done, self.windows = 1, []
        self.per_window = max(1, min(args.window_steps, (self.setup.total_steps - 1) // max(args.repeats, 1)))

    def time_window(self) -> None:
        pairs_before = float(self.state.pairs)
        start = time.perf_counter()
        for _ in range(self.per_window):
            self.state, _ = self.setup.run_step(self.state, self.done)
            self.done += 1
        jax.block_until_ready(self.state.params)
        seconds = time.perf_counter() - start
        self.windows.append((self.per_window * self.setup.raw_words_per_step / seconds,
                             (float(self.state.pairs) - pairs_before) / seconds))

    def finish(self, gensim_words_per_s: list[float]) -> dict:
        rest, start = self.setup.total_steps - self.done, time.perf_counter()
        while self.done < self.setup.total_steps:  # the rest of the epoch, so ρ is of a whole run
            self.state, _ = self.setup.run_step(self.state, self.done)
            self.done += 1
        jax.block_until_ready(self.state.params)
        rest_words_per_s = rest * self.setup.raw_words_per_step / (time.perf_counter() - start) if rest else None
        scores = evaluate_all(input_vectors(self.setup, self.state), self.setup.corpus.vocab.words, QUALITY_SETS,
                              analogy=False)
        words, pairs = zip(*self.windows)
        # Each window is paired with the gensim run just before it: the median of the paired ratios
        # follows the machine's load as it drifts.
        ratio = float(np.median([w / g for w, g in zip(words, gensim_words_per_s)]))
        return dict(tool="ace_jax", sampler=self.sampler, dim=self.dim, row_clip=self.row_clip, chunk=self.chunk,
                    lr=self.lr, compile_s=self.compile_s,
                    words_per_s=float(np.median(words)), ratio_to_gensim=ratio, pairs_per_s=float(np.median(pairs)),
                    negatives_per_s=float(np.median(pairs)) * 5, host_peak_mib=peak_host_mib(),
                    device_peak_mib=device_peak_mib(), rest_of_epoch_words_per_s=rest_words_per_s,
                    window_words_per_s=list(words),
                    **{s: scores[s]["spearman"] for s in QUALITY_SETS})


def gensim_sentences(args) -> tuple[list[str], list[list[str]]]:
    corpus = load_corpus(args.corpus, CorpusOptions(max_tokens=args.max_tokens, max_vocab=args.max_vocab))
    words, tokens = corpus.vocab.words, np.asarray(corpus.tokens)
    return words, [[words[i] for i in tokens[j:j + 10_000]] for j in range(0, len(tokens), 10_000)]


def time_gensim(sentences, dim: int, alpha: float):
    """One epoch of a fresh gensim model: (words/s, model)."""
    from gensim.models import Word2Vec

    model = Word2Vec(vector_size=dim, window=5, min_count=1, sg=1, negative=5, sample=1e-3, alpha=alpha, seed=0,
                     workers=os.cpu_count() or 1)
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=1)
    return sum(map(len, sentences)) / (time.perf_counter() - start), model


def gensim_row(words, model, dim: int, words_per_s: list[float], alpha: float) -> dict:
    vectors = np.stack([model.wv[w] for w in words])
    scores = evaluate_all(vectors, words, QUALITY_SETS, analogy=False)
    return dict(tool="gensim", sampler="ns", dim=dim, lr=alpha, words_per_s=float(np.median(words_per_s)),
                **{s: scores[s]["spearman"] for s in QUALITY_SETS})


def numbers(kind):
    """An argparse type: "a,b,c" -> [kind(a), kind(b), kind(c)], or one clear error."""

    def parse(text: str) -> list:
        try:
            return [kind(x) for x in text.split(",")]
        except ValueError:
            what = "whole numbers" if kind is int else "numbers"
            raise argparse.ArgumentTypeError(f"{what} separated by commas, not {text!r}") from None

    return parse


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="enwiki-00")
    p.add_argument("--max-tokens", type=int, default=1_000_000, help="0: the whole corpus")
    p.add_argument("--max-vocab", type=int, default=0, help="0: every word above min_count 5")
    p.add_argument("--dims", default="100,300", type=numbers(int))
    p.add_argument("--samplers", default="ns,ace", help="named methods (ace_jax.methods): " + ", ".join(methods.WORD))
    p.add_argument("--chunk", default="512", type=numbers(int),
                   help="WordConfig.chunk (kept tokens per step), comma-separated: every setting runs with each")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--window-steps", type=int, default=1000, help="steps per timed window")
    p.add_argument("--kernel", default="auto", choices=["auto", "xla"], help="GameConfig.kernel for every setting")
    p.add_argument("--row-clip", default="0", type=numbers(float),
                   help="WordConfig.row_clip, comma-separated: every setting runs with each (0: off), side by side")
    p.add_argument("--lr", default="0.025", type=numbers(float),
                   help="the starting learning rate, comma-separated: every setting runs with each; gensim's alpha "
                        "is the first")
    p.add_argument("--json", default=None, help="also write the rows to this file")
    args = p.parse_args(argv)
    args.max_tokens, args.max_vocab = args.max_tokens or None, args.max_vocab or None
    for name in args.samplers.split(","):
        try:
            methods.parse_variant(name)
        except AceJaxError as error:
            p.error(f"--samplers: {error}")
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        p.error(f"the folder of --json {args.json} does not exist")
    rows = []
    words, sentences = gensim_sentences(args)
    for dim in args.dims:
        settings = itertools.product(args.samplers.split(","), args.row_clip, args.chunk, args.lr)
        ours = [Ours(args, dim, *setting) for setting in settings]
        gensim_speeds = []
        for repeat in range(args.repeats):  # gensim's epoch, then a window of each setting, in turn
            speed, model = time_gensim(sentences, dim, args.lr[0])
            gensim_speeds.append(speed)
            for i in range(len(ours)):  # so no setting always follows gensim directly
                ours[(i + repeat) % len(ours)].time_window()
        rows.append(gensim_row(words, model, dim, gensim_speeds, args.lr[0]))
        finished = [setting.finish(gensim_speeds) for setting in ours]
        for row in finished:
            # Against per-pair negative sampling with the same settings, window by window (they alternate).
            ns = [r for r in finished
                  if r["sampler"] == "ns" and all(r[k] == row[k] for k in ("row_clip", "chunk", "lr"))]
            if ns:
                row["ratio_to_ns"] = float(np.median([a / b for a, b in zip(row["window_words_per_s"],
                                                                            ns[0]["window_words_per_s"])]))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        del ours
    print(f"# {datetime.date.today()} {platform.machine()} {os.cpu_count()} cores, jax {jax.__version__} on "
          f"{jax.devices()[0].platform}; command: python benchmarks/throughput.py {' '.join(argv or sys.argv[1:])}")
    print("| tool | sampler | d | chunk | lr | row clip | words/s | ratio to gensim | ratio to ns | pairs/s "
          "| negatives/s | compile s | host peak MiB | device peak MiB | ws353 | rw |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        def fmt(key, spec, r=r):
            return format(r[key], spec) if r.get(key) is not None else "–"

        print(f"| {r['tool']} | {r['sampler']} | {r['dim']} | {fmt('chunk', 'd')} | {fmt('lr', 'g')} | "
              f"{fmt('row_clip', 'g')} | {r['words_per_s']:,.0f} | {fmt('ratio_to_gensim', '.3f')} | "
              f"{fmt('ratio_to_ns', '.3f')} | "
              f"{fmt('pairs_per_s', ',.0f')} | {fmt('negatives_per_s', ',.0f')} | {fmt('compile_s', '.1f')} | "
              f"{fmt('host_peak_mib', ',.0f')} | {fmt('device_peak_mib', ',.0f')} | {r['ws353']:.3f} | {r['rw']:.3f} |")
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
