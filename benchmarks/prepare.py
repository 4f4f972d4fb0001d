"""Corpus preparation (read, normalise, count, encode) against gensim's build_vocab on the same files, as a ratio.

    python benchmarks/prepare.py                 # enwiki-00, 3 repeats each, medians
    python benchmarks/prepare.py --corpus enwiki

Both sides read the same files and decompress them as they go (enwiki-00: 98 MiB from xz, about 1.5 s of
liblzma on either side) in one thread; gensim's build_vocab is single-threaded whatever `workers` says.
ace_jax: load_corpus(min_count=5) into an empty cache: drop WikiExtractor <doc> lines, normalise text8-style
(lower case, letters only, digits spelled out), count, rank the vocabulary, encode every token to an int32
id, drop the out-of-vocabulary ones, write tokens.npy and vocab.tsv and map them back.
gensim: Word2Vec(min_count=5).build_vocab over LineSentence: split lines on whitespace (no normalisation;
<doc> lines count as words), count, trim at min_count, sort, and set up downsampling, the negative-sampling
table and the initial vectors. It keeps no encoded token array, so it does less work than ace_jax here.
The two sides alternate in one process and each time is the median of the repeats. Never run as a test.
"""

import argparse
import datetime
import lzma
import os
import platform
import statistics
import sys
import tempfile
import time

from ace_jax.data.corpus import CorpusOptions, list_files, load_corpus


def time_ours(source: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as cache:
        os.environ["ACE_JAX_CACHE_DIR"] = cache  # cold: nothing cached
        start = time.perf_counter()
        corpus = load_corpus(source, CorpusOptions(min_count=5))
        return time.perf_counter() - start, len(corpus.tokens)


def time_gensim(source: str) -> float:
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    class Files:  # every file of the corpus, decompressed on the fly, like ours
        def __iter__(self):
            for path in list_files(source):
                opener = lzma.open if path.suffix == ".xz" else open
                with opener(path, "rb") as f:
                    yield from LineSentence(f)

    start = time.perf_counter()
    Word2Vec(min_count=5, workers=os.cpu_count() or 1).build_vocab(Files())
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="enwiki-00")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    ours, theirs = [], []
    for _ in range(args.repeats):
        seconds, tokens = time_ours(args.corpus)
        ours.append(seconds)
        theirs.append(time_gensim(args.corpus))
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    print(f"# {datetime.date.today()} {platform.machine()} {os.cpu_count()} cores; medians of {args.repeats} repeats; "
          f"command: python benchmarks/prepare.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print("| corpus | ace_jax prepare s | gensim build_vocab s | speed-up (gensim / ace_jax) | tokens kept |")
    print("|---|---|---|---|---|")
    print(f"| {args.corpus} | {ours_s:.1f} | {theirs_s:.1f} | {theirs_s / ours_s:.2f}× | {tokens:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
