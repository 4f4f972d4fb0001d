"""The `ace-jax` command: train word embeddings, evaluate any word2vec file, show neighbours; S2Net text similarity."""

import argparse
import json
import sys
from pathlib import Path

from ace_jax.errors import AceJaxError

SAMPLER_HELP = "ns: negative sampling (λ=1); nce; adv: generator only (λ=0); ace: mixture; self-adv; softmax; hs"


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit 2, like every other user error."""

    def error(self, message):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def parse_sets(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def add_train_parser(commands) -> None:
    p = commands.add_parser("train", help="train word embeddings with ACE or a baseline")
    p.add_argument("--corpus", default="enwiki", help="dataset name (enwiki, enwiki-00, text8) or a file/folder")
    p.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    p.add_argument("--model", default="skipgram", choices=["skipgram", "cbow"])
    p.add_argument("--sampler", default="ns", choices=["ns", "nce", "adv", "ace", "self-adv", "softmax", "hs"],
                   help=SAMPLER_HELP)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negatives", type=int, default=5)
    p.add_argument("--lambda", dest="lam", type=float, default=0.5, help="ACE: probability a negative is noise")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--pairs", type=int, default=None, help="budget of positive pairs instead of epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--max-vocab", type=int, default=None)
    p.add_argument("--max-tokens", type=int, default=None, help="use only the first N tokens of the corpus")
    p.add_argument("--no-normalize", action="store_true",
                   help="split on whitespace only (default: text8-style lower case, digits spelled out, letters only)")
    p.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold t")
    p.add_argument("--lr", type=float, default=None, help="start learning rate (0.025 skip-gram, 0.05 CBOW)")
    p.add_argument("--chunk", type=int, default=512, help="tokens per step, after subsampling")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adagrad", "adam"],
                   help="discriminator optimiser; adagrad and adam keep per-row state and update only the rows a step touches")
    p.add_argument("--row-clip", type=float, default=0.0,
                   help="clip each table row's gradient, summed over a step, to this L2 norm (0: off); keeps a step "
                        "that repeats one word hundreds of times from overshooting")
    p.add_argument("--loss", default="logistic", choices=["logistic", "hinge"])
    p.add_argument("--self-adv-temperature", type=float, default=1.0)
    p.add_argument("--gen-dim", type=int, default=32)
    p.add_argument("--gen-lr", type=float, default=1e-3)
    p.add_argument("--generator", default="exact", choices=["exact", "pool", "kbgan"],
                   help="g(y|x) over the whole vocabulary (exact), over --candidates noise draws shared by the batch "
                        "(pool), or over --candidates noise draws per query (kbgan)")
    p.add_argument("--candidates", type=int, default=1024, help="noise draws the pool/kbgan generator chooses among")
    p.add_argument("--shared-negatives", action="store_true",
                   help="skip-gram in word2vec's orientation with one set of --negatives per centre word, "
                        "shared by its window's contexts (a quarter of the rows per step at window 5)")
    p.add_argument("--reach", default="centre", choices=["centre", "step"],
                   help="window sizes b ~ U{1..window}: drawn per centre word (word2vec) or once per step, so that "
                        "no step computes empty context slots (faster, most with --shared-negatives)")
    p.add_argument("--kernel", default="auto", choices=["auto", "xla"],
                   help="auto: on a CPU, fuse SGD's discriminator update for ns/adv/ace into one C++ kernel "
                        "(built with the system's compiler on first use; XLA where it cannot be); xla: never")
    p.add_argument("--gen-bf16", action="store_true",
                   help="exact generator: its [B, V] product on bfloat16 inputs, float32 accumulation (for GPU/TPU)")
    p.add_argument("--baseline", default="moving-average", choices=["none", "moving-average", "self-critical"])
    p.add_argument("--entropy-weight", type=float, default=0.1)
    p.add_argument("--entropy-target", type=float, default=4.0)
    p.add_argument("--false-negatives", default="window", choices=["window", "pair"],
                   help="mask negatives equal to any positive of the query (window) or to the pair's own (pair)")
    p.add_argument("--off-policy", action="store_true", help="add the importance-weighted REINFORCE term on noise")
    p.add_argument("--eval-sets", type=parse_sets, default=("ws353", "rw"), help="sets scored during training")
    p.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (0: at the end only)")
    p.add_argument("--final-sets", type=parse_sets, default=None, help="sets scored at the end (default: all)")
    p.add_argument("--no-analogy", action="store_true", help="skip the analogy evaluation at the end")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    g = p.add_argument_group("many devices and hosts")
    g.add_argument("--devices", type=int, default=None,
                   help="devices to split each step over (default: all; on a CPU-only machine, N > 1 makes N CPU devices)")
    g.add_argument("--row-shards", type=int, default=1,
                   help="devices that split each embedding table by rows, for tables too big for one device")
    g.add_argument("--coordinator", default=None, help="multi-host: HOST:PORT of process 0, the same for every process")
    g.add_argument("--num-processes", type=int, default=1, help="multi-host: how many processes take part")
    g.add_argument("--process-id", type=int, default=0, help="multi-host: this process's rank, 0..N-1")


def start_devices(args) -> None:
    """Before JAX starts a backend: join the other hosts, or make CPU devices for --devices N on a CPU."""
    from ace_jax import parallel

    if args.coordinator:
        parallel.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    elif args.num_processes > 1:
        raise AceJaxError("a multi-host run needs --coordinator HOST:PORT")
    elif args.devices and args.devices > 1:
        parallel.request_cpu_devices(args.devices)  # only the CPU backend reads it; GPUs and TPUs are as found


def run_train(args) -> int:
    from ace_jax.embeddings import WordConfig, train_word_embeddings
    from ace_jax.evaluate.similarity import DEFAULT_SETS
    from ace_jax.families.word import GameConfig

    try:
        game = GameConfig(sampler=args.sampler, negatives=args.negatives, lam=args.lam, loss=args.loss,
                          self_adv_temperature=args.self_adv_temperature, baseline=args.baseline,
                          entropy_weight=args.entropy_weight, entropy_target=args.entropy_target,
                          false_negatives=args.false_negatives, off_policy=args.off_policy,
                          generator=args.generator, candidates=args.candidates,
                          gen_matmul_dtype="bfloat16" if args.gen_bf16 else "float32",
                          shared_negatives=args.shared_negatives, kernel=args.kernel)
    except ValueError as error:
        raise AceJaxError(str(error)) from None
    config = WordConfig(
        corpus=args.corpus, min_count=args.min_count, max_vocab=args.max_vocab, max_tokens=args.max_tokens,
        normalize=not args.no_normalize,
        model=args.model, dim=args.dim, window=args.window, sample=args.sample, epochs=args.epochs,
        pairs=args.pairs, learning_rate=args.lr, optimizer=args.optimizer, row_clip=args.row_clip, reach=args.reach,
        chunk=args.chunk, game=game,
        gen_dim=args.gen_dim, gen_learning_rate=args.gen_lr, seed=args.seed, eval_sets=args.eval_sets,
        eval_every=args.eval_every,
        final_sets=DEFAULT_SETS if args.final_sets is None else args.final_sets, analogy=not args.no_analogy)
    start_devices(args)
    final = train_word_embeddings(config, args.out, resume=args.resume, progress=not args.quiet,
                                  devices=args.devices, row_shards=args.row_shards)
    if args.process_id:
        return 0  # process 0 reports and writes
    print_scores(final)
    print(f"wrote {args.out}: vectors.txt, vectors.bin, eval.json, metrics.jsonl, checkpoint.msgpack")
    return 0


def print_scores(scores: dict) -> None:
    print(f"{'set':<12} {'spearman':>8} {'pairs':>6} {'oov':>6}")
    for name, value in scores.items():
        if isinstance(value, dict) and "spearman" in value:
            print(f"{name:<12} {value['spearman']:>8.4f} {value['pairs']:>6d} {value['oov']:>6d}")
    if "analogy" in scores:
        a = scores["analogy"]
        print(f"{'analogy':<12} {a['accuracy']:>8.4f} {a['questions']:>6d} questions (3CosAdd, top 30k words)")


def run_eval(args) -> int:
    from ace_jax.evaluate.similarity import evaluate_all
    from ace_jax.io import load_word2vec

    words, vectors = load_word2vec(args.vectors)
    scores = evaluate_all(vectors, words, args.sets, analogy=not args.no_analogy)
    if args.json:
        print(json.dumps(scores))
    else:
        print_scores(scores)
    return 0


def run_neighbors(args) -> int:
    from ace_jax.evaluate.similarity import nearest_neighbors
    from ace_jax.io import load_word2vec

    words, vectors = load_word2vec(args.vectors)
    for word in args.words:
        found = nearest_neighbors(vectors, words, word, k=args.top)
        print(f"{word}: " + ", ".join(f"{w} {cos:.3f}" for w, cos in found))
    return 0


def add_s2net_parser(commands) -> None:
    s = commands.add_parser("s2net", help="S2Net text similarity: train, evaluate, find similar texts")
    sub = s.add_subparsers(dest="s2net_command", required=True, parser_class=Parser)
    t = sub.add_parser("train", help="learn a projection of term vectors from scored sentence pairs")
    t.add_argument("--data", default="stsb", help="stsb, sick, or a TSV file of text1<TAB>text2<TAB>score")
    t.add_argument("--test", dest="test_data", default=None, help="with a TSV --data: a TSV file to evaluate on")
    t.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    t.add_argument("--dim", type=int, default=128, help="k, the projection's dimension")
    t.add_argument("--loss", default="logistic", choices=["logistic", "hinge", "mse"])
    t.add_argument("--sampler", default="uniform", choices=["none", "uniform", "in-batch", "self-adv", "ace"],
                   help="negatives mined for paraphrase queries besides the gold preferences (none: gold only)")
    t.add_argument("--negatives", type=int, default=4)
    t.add_argument("--lambda", dest="lam", type=float, default=0.5, help="ACE: probability a negative is uniform noise")
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch", type=int, default=64, help="gold preferences and paraphrase queries per step")
    t.add_argument("--lr", dest="learning_rate", type=float, default=1e-3, help="Adam step size for A")
    t.add_argument("--init", default="random", choices=["random", "lsi"])
    t.add_argument("--weighting", default="tfidf", choices=["tfidf", "binary"])
    t.add_argument("--min-df", type=int, default=1, help="keep words in at least this many training texts")
    t.add_argument("--activation", default="none", choices=["none", "tanh", "sigmoid"])
    t.add_argument("--gamma", type=float, default=10.0, help="scale of the pairwise logistic loss")
    t.add_argument("--margin", type=float, default=0.5, help="margin of the hinge loss")
    t.add_argument("--self-adv-temperature", type=float, default=1.0)
    t.add_argument("--gen-dim", type=int, default=32)
    t.add_argument("--gen-lr", dest="gen_learning_rate", type=float, default=1e-3)
    t.add_argument("--entropy-weight", type=float, default=0.1)
    t.add_argument("--entropy-target", type=float, default=2.0)
    t.add_argument("--paraphrase-threshold", type=float, default=4.0,
                   help="gold score from which a pair counts as a paraphrase (queries, retrieval)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true",
                   help="continue the finished run in --out, with its saved settings, up to --steps")
    t.add_argument("--quiet", action="store_true", help="no progress line")
    e = sub.add_parser("eval", help="correlation with gold scores and paraphrase retrieval")
    e.add_argument("run", help="a folder written by s2net train")
    e.add_argument("--data", default=None, help="stsb, sick or a TSV file (default: the run's own evaluation sets)")
    e.add_argument("--split", default=None, help="one split of a named dataset (default: dev/trial and test)")
    e.add_argument("--json", action="store_true")
    m = sub.add_parser("similar", help="the training texts most similar to a text")
    m.add_argument("run", help="a folder written by s2net train")
    m.add_argument("text")
    m.add_argument("--top", type=int, default=10)
    m.add_argument("--data", default=None, help="search the texts of this dataset or TSV file instead")


def run_s2net(args) -> int:
    return {"train": run_s2net_train, "eval": run_s2net_eval, "similar": run_s2net_similar}[args.s2net_command](args)


def run_s2net_train(args) -> int:
    from ace_jax import s2net_run

    names = ("data", "test_data", "dim", "loss", "sampler", "negatives", "lam", "steps", "batch", "learning_rate",
             "init", "weighting", "min_df", "activation", "gamma", "margin", "self_adv_temperature", "gen_dim",
             "gen_learning_rate", "entropy_weight", "entropy_target", "paraphrase_threshold", "seed")
    config = s2net_run.make_config(**{name: getattr(args, name) for name in names})
    final = s2net_run.train_s2net(config, args.out, resume=args.resume, progress=not args.quiet)
    print_s2net_scores({k: v for k, v in final.items() if isinstance(v, dict)})
    print(f"wrote {args.out}: projection.npy, vocab.tsv, metrics.json, metrics.jsonl, config.json, checkpoint.msgpack")
    return 0


def print_s2net_scores(scores: dict) -> None:
    print(f"{'set':<8} {'pearson':>8} {'spearman':>8} {'pairs':>6} {'top-1':>7} {'mrr':>7} {'queries':>7}")
    for name, v in scores.items():
        print(f"{name:<8} {v['pearson']:>8.4f} {v['spearman']:>8.4f} {v['pairs']:>6d} "
              f"{v['top1']:>7.4f} {v['mrr']:>7.4f} {v['queries']:>7d}")


def run_s2net_eval(args) -> int:
    from ace_jax import s2net_run
    from ace_jax.data.pairs import load_pairs

    model, config = s2net_run.TextModel.load(args.run), s2net_run.load_config(args.run)
    if args.data is None and args.split is not None and config.data not in s2net_run.EVAL_SPLITS:
        raise AceJaxError("--split needs a named dataset (stsb or sick)")
    if args.data is None:
        sets = s2net_run.eval_sets(config.data, config.test_data, split=args.split)
    elif args.data in s2net_run.EVAL_SPLITS:
        sets = s2net_run.eval_sets(args.data, split=args.split)
    else:
        sets = {Path(args.data).name: load_pairs(args.data)}
    scores = {name: s2net_run.evaluate(model, pairs, config.paraphrase_threshold) for name, pairs in sets.items()}
    if args.json:
        print(json.dumps(scores))
    else:
        print_s2net_scores(scores)
    return 0


def run_s2net_similar(args) -> int:
    from ace_jax import s2net_run

    if args.top < 1:
        raise AceJaxError(f"--top must be at least 1, not {args.top}")
    model, config = s2net_run.TextModel.load(args.run), s2net_run.load_config(args.run)
    for score, text in s2net_run.most_similar(model, args.text, s2net_run.search_texts(args.data or config.data), args.top):
        print(f"{score:.4f}  {text}")
    return 0


def build_parser() -> Parser:
    from ace_jax.evaluate.similarity import DEFAULT_SETS

    parser = Parser(prog="ace-jax", description="Adversarial Contrastive Estimation in JAX")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_train_parser(commands)
    e = commands.add_parser("eval", help="evaluate a word2vec-format file (ours or gensim's)")
    e.add_argument("vectors")
    e.add_argument("--sets", type=parse_sets, default=DEFAULT_SETS, help="comma-separated: " + ",".join(DEFAULT_SETS))
    e.add_argument("--json", action="store_true")
    e.add_argument("--no-analogy", action="store_true")
    n = commands.add_parser("neighbors", help="nearest neighbours by cosine")
    n.add_argument("vectors")
    n.add_argument("words", nargs="+")
    n.add_argument("--top", type=int, default=10)
    add_s2net_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = {"train": run_train, "eval": run_eval, "neighbors": run_neighbors, "s2net": run_s2net}[args.command]
    try:
        return run(args)
    except AceJaxError as error:
        print(f"ace-jax: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
