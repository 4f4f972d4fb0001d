"""Whole-epoch runs over many seeds: does training diverge, and what ρ does it end at? One JSON line per
seed (the largest logged loss, final WS-353 and RW ρ), then mean ± sample std over the seeds.

    python experiments/divergence.py --reach step --row-clip 50 --seeds 0-8
    python experiments/divergence.py --per-pair --seeds 5,6
    python experiments/divergence.py --reach step --row-clip 50 --chunk 65536 --lr 0.05   # large steps

Skip-gram negative sampling on the whole `enwiki-00` shard, d = 100, window 5, 5 negatives, 512 kept
tokens per step unless --chunk says otherwise, as the whole-shard tables of the README. A healthy run logs
losses near 3.7 at most; the runs that diverged without a row clip reached 11 to 1000.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from ace_jax import methods, stats
from ace_jax.embeddings import train_word_embeddings
from ace_jax.errors import AceJaxError


def parse_seeds(text: str) -> list[int]:
    """"0-8" or "1,2,5"."""
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(s) for s in text.split(",")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="enwiki-00")
    p.add_argument("--reach", default="centre", choices=["centre", "step"])
    p.add_argument("--per-pair", action="store_true", help="per-pair negatives (default: --shared-negatives)")
    p.add_argument("--row-clip", type=float, default=0.0)
    p.add_argument("--chunk", type=int, default=512)
    p.add_argument("--lr", type=float, default=None, help="the starting learning rate (default: word2vec's 0.025)")
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-2"))
    args = p.parse_args(argv)
    rows = []
    for seed in args.seeds:
        config = methods.word_config("ns" if args.per_pair else "ns-shared", corpus=args.corpus, max_vocab=None,
                                     dim=100, window=5, reach=args.reach, row_clip=args.row_clip, learning_rate=args.lr,
                                     negatives=5, chunk=args.chunk, seed=seed, final_sets=("ws353", "rw"),
                                     eval_sets=("ws353", "rw"), analogy=False, checkpoint_every=0)
        with tempfile.TemporaryDirectory() as tmp:
            final = train_word_embeddings(config, Path(tmp) / "run", progress=False)
            records = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
        row = dict(seed=seed, max_loss=round(max(r["loss"] for r in records if r["kind"] == "train"), 2),
                   ws353=round(final["ws353"]["spearman"], 3), rw=round(final["rw"]["spearman"], 3))
        rows.append(row)
        print(json.dumps(row), flush=True)
    for name in ("ws353", "rw"):
        print(f"{name}: {stats.format_mean_std([r[name] for r in rows])} over {len(rows)} seeds ({stats.NOTE})")
    print(f"largest loss: {max(r['max_loss'] for r in rows)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AceJaxError as error:
        sys.exit(f"divergence.py: error: {error}")
