"""Step time of the working tree against another commit, in one process: an A/B for a refactor.

    python benchmarks/step_ab.py --base 5865114 --methods ns,ns-shared,ns-shared-step

The base commit's ace_jax is extracted (git archive) into a temporary folder as the package ace_jax_base
(its fused CPU kernel registered under its own name), both build the same run (the whole enwiki-00 shard,
d = 100, 512 kept tokens per step, seed 0), and windows of steps alternate between them, so a shared
machine's load falls on both alike. Reported: each side's median ms per step and the median of the windows'
new/base ratios. Never run as a test.
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

from ace_jax import embeddings, methods

ROOT = Path(__file__).resolve().parents[1]


def extract_base(commit: str, folder: Path):
    """The package at `commit` as ace_jax_base, importable from `folder`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "ace_jax"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    (folder / "ace_jax").rename(folder / "ace_jax_base")
    for path in (folder / "ace_jax_base").rglob("*.py"):
        text = re.sub(r"\bace_jax\b", "ace_jax_base", path.read_text(encoding="utf-8"))
        # The fused kernel's FFI target gets a name of its own: one registration per name.
        path.write_text(text.replace('"ace_jax_sgns_update"', '"ace_jax_base_sgns_update"'), encoding="utf-8")
    sys.path.insert(0, str(folder))
    import ace_jax_base.embeddings as base_embeddings

    try:
        from ace_jax_base.families.word import GameConfig
    except ImportError:  # before the game moved into one module
        from ace_jax_base.train import GameConfig
    return base_embeddings, GameConfig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the commit to compare with")
    p.add_argument("--methods", default="ns,ns-shared,ns-shared-step")
    p.add_argument("--corpus", default="enwiki-00")
    p.add_argument("--max-tokens", type=int, default=0, help="the corpus's first N tokens (0: all)")
    p.add_argument("--kernel", default="auto", choices=["auto", "xla"], help="GameConfig.kernel on both sides")
    p.add_argument("--steps", type=int, default=300, help="steps per window")
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)
    common = dict(corpus=args.corpus, max_tokens=args.max_tokens or None, dim=100, window=5, chunk=512, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        base_embeddings, BaseGame = extract_base(args.base, Path(tmp))
        runs = []
        for name in args.methods.split(","):
            method = methods.lookup(methods.WORD, name)
            base = base_embeddings.WordConfig(game=BaseGame(negatives=5, kernel=args.kernel, **method.game), **common,
                                              **method.run)
            new = methods.word_config(name, negatives=5, kernel=args.kernel, **common)
            for label, setup in (("base", base_embeddings.build(base)), ("new", embeddings.build(new))):
                state, _ = setup.run_step(setup.place(setup.initial_state), 0)  # compiles
                jax.block_until_ready(state.params)
                runs.append({"name": name, "label": label, "setup": setup, "state": state, "done": 1, "times": []})
        for repeat in range(args.repeats):
            for run in runs if repeat % 2 == 0 else runs[::-1]:
                start = time.perf_counter()
                for _ in range(args.steps):
                    run["state"], _ = run["setup"].run_step(run["state"], run["done"])
                    run["done"] += 1
                jax.block_until_ready(run["state"].params)
                run["times"].append((time.perf_counter() - start) / args.steps)
    print(f"# python benchmarks/step_ab.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print("| method | base ms/step | new ms/step | new / base (median of windows) |")
    print("|---|---|---|---|")
    for name in args.methods.split(","):
        base, new = ([r["times"] for r in runs if r["name"] == name and r["label"] == label][0]
                     for label in ("base", "new"))
        ratio = statistics.median(n / b for n, b in zip(new, base))
        print(f"| {name} | {statistics.median(base) * 1e3:.3f} | {statistics.median(new) * 1e3:.3f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
