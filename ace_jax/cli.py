"""The `ace-jax` command: train word embeddings, evaluate any word2vec file, show neighbours; S2Net text similarity.

Every error a user can cause is one `ace-jax: error: …` line naming the flag and the value, and a non-zero
exit; Ctrl-C and SIGTERM save a checkpoint and exit 128 + the signal.
"""

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

from ace_jax import __version__, methods
from ace_jax.errors import AceJaxError, Interrupted, SettingError

# Flags whose config field is not their dest (booleans that invert, a dtype switched on by a flag).
SPECIAL_FLAGS = {"normalize": "--no-normalize", "analogy": "--no-analogy", "gen_matmul_dtype": "--gen-bf16"}
NOT_DEFINED = "– : not defined ({why}); JSON has null there"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), defaults in every help text, and no abbreviated flags."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def parse_sets(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def flag_names(parser: argparse.ArgumentParser) -> dict:
    """dest -> the flag a user types for it (the first long option), for messages and explicit-flag detection."""
    names = {a.dest: next((o for o in a.option_strings if o.startswith("--")), a.option_strings[0])
             for a in parser._actions if a.option_strings}
    specials = {field: flag for field, flag in SPECIAL_FLAGS.items() if flag.lstrip("-").replace("-", "_") in names}
    return {**names, **specials}


def explicit_dests(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The dests of the flags given on the command line (not left at their defaults)."""
    by_flag = {o: a.dest for a in parser._actions for o in a.option_strings}
    return {by_flag[token.split("=", 1)[0]] for token in argv if token.split("=", 1)[0] in by_flag}


# ----------------------------------------------------------------------------------------- train


def add_train_parser(commands) -> None:
    p = commands.add_parser("train", help="train word embeddings with ACE or a baseline", description=(
        "Train word embeddings. --method picks a named method (its sampler, generator, negatives layout, reach); "
        "the flags below override it."))
    p.add_argument("--corpus", default="enwiki", help="dataset name (enwiki, enwiki-00, text8) or a file/folder")
    p.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    p.add_argument("--method", default=None, choices=list(methods.WORD), metavar="METHOD",
                   help="a named method: " + ", ".join(methods.WORD) + f". Default: {methods.DEFAULT_WORD} (negatives "
                        "shared by a window, one reach per step, row clip 50: faster than gensim at its ρ); ns "
                        "(word2vec's per-pair form) where --sampler, --model, --shared-negatives or --reach is "
                        "given")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint, with its settings (a flag that differs is an "
                        "error); on a finished run, print its scores")
    p.add_argument("--model", default="skipgram", choices=["skipgram", "cbow"], help="skip-gram or CBOW")
    p.add_argument("--sampler", default="ns", choices=["ns", "nce", "adv", "ace", "self-adv", "softmax", "hs"],
                   help="ns: negative sampling (λ=1); nce; adv: generator only (λ=0); ace: mixture; self-adv; softmax; "
                        "hs (hierarchical softmax); overrides --method's")
    p.add_argument("--dim", type=int, default=100, help="embedding dimension")
    p.add_argument("--window", type=int, default=5, help="largest distance of a context word (word2vec's window)")
    p.add_argument("--negatives", type=int, default=5, help="negatives scored per positive pair")
    p.add_argument("--lambda", dest="lam", type=float, default=0.5, help="ACE: the probability a negative is noise")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the corpus (a fraction: part of one)")
    p.add_argument("--pairs", type=int, default=None, help="a budget of positive pairs instead of epochs")
    p.add_argument("--seed", type=int, default=0, help="seed of the data stream, the tables and the game")
    p.add_argument("--min-count", type=int, default=5, help="keep words that occur at least this often")
    p.add_argument("--max-vocab", type=int, default=None, help="keep at most this many most frequent words")
    p.add_argument("--max-tokens", type=int, default=None, help="use only the first N tokens of the corpus")
    p.add_argument("--no-normalize", action="store_true",
                   help="split on whitespace only (otherwise text8-style: lower case, digits spelled out, "
                        "letters only)")
    p.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold t (word2vec's -sample)")
    p.add_argument("--lr", dest="learning_rate", type=float, default=None,
                   help="start learning rate (None: 0.025 skip-gram, 0.05 CBOW); decays linearly as in word2vec")
    p.add_argument("--chunk", type=int, default=512, help="tokens per step, after subsampling")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adagrad", "adam"],
                   help="discriminator optimiser; adagrad and adam keep per-row state and update only the rows a step "
                        "touches")
    p.add_argument("--row-clip", type=float, default=0.0,
                   help="clip each table row's gradient, summed over a step, to this L2 norm (0: off); keeps a step "
                        "that repeats one word hundreds of times from overshooting")
    p.add_argument("--known-positives", type=int, default=0, metavar="K",
                   help="treat each word's K most frequent corpus partners with PMI >= 1 (and >= 5 pairs) as false "
                        "negatives of it, wherever drawn (0: off); with shared negatives or CBOW, the known "
                        "partners of any of a window's contexts")
    p.add_argument("--reach", default="centre", choices=["centre", "step"],
                   help="window sizes b ~ U{1..window}: drawn per centre word (word2vec) or once per step, so that "
                        "no step computes empty context slots (faster, most with --shared-negatives)")
    p.add_argument("--shared-negatives", action="store_true",
                   help="skip-gram in word2vec's orientation with one set of --negatives per centre word, "
                        "shared by its window's contexts (a quarter of the rows per step at window 5)")
    p.add_argument("--kernel", default="auto", choices=["auto", "xla"],
                   help="auto: on a CPU, fuse SGD's discriminator update for ns/adv/ace into one C++ kernel "
                        "(built with the system's compiler on first use; XLA where it cannot be); xla: never")
    p.add_argument("--loss", default="logistic", choices=["logistic", "hinge"], help="the discriminator's loss")
    p.add_argument("--margin", type=float, default=1.0, help="the hinge loss's margin")
    p.add_argument("--self-adv-temperature", type=float, default=1.0, help="self-adv: α in K·softmax(α s-)")
    p.add_argument("--false-negatives", default="window", choices=["window", "pair"],
                   help="mask negatives equal to any positive of the query (window) or to the pair's own (pair)")
    g = p.add_argument_group("the generator (adv, ace)")
    g.add_argument("--generator", default="exact", choices=["exact", "pool", "kbgan"],
                   help="g(y|x) over the whole vocabulary (exact), over --candidates noise draws shared by the batch "
                        "(pool), or over --candidates noise draws per query (kbgan)")
    g.add_argument("--candidates", type=int, default=1024, help="noise draws the pool/kbgan generator chooses among")
    g.add_argument("--gen-tables", default="own", choices=["own", "discriminator"],
                   help="own: the generator scores with its own tables (the paper's form); discriminator: with the "
                        "discriminator's current rows, detached, learning a temperature and a bias per word")
    g.add_argument("--gen-temperature", type=float, default=1.0,
                   help="--gen-tables discriminator: the first temperature T of g ∝ q·exp(u·v / T) (then learned)")
    g.add_argument("--gen-min-entropy", type=float, default=0.0,
                   help="--gen-tables discriminator: an entropy floor in nats; each query's 1/T is capped to keep it "
                        "(0: none)")
    g.add_argument("--gen-dim", type=int, default=32, help="the generator's dimension (--gen-tables own)")
    g.add_argument("--gen-lr", dest="gen_learning_rate", type=float, default=1e-3, help="the generator's Adam step")
    g.add_argument("--gen-init", default="", metavar="RUN",
                   help="start the generator's own tables a, b from a finished run's input and output rows (same "
                        "vocabulary, its --dim = --gen-dim): a warm start, whose pairs a comparison must count")
    g.add_argument("--gen-bf16", action="store_true",
                   help="exact generator: its [B, V] product on bfloat16 inputs, float32 accumulation (for GPU/TPU)")
    g.add_argument("--baseline", default="moving-average", choices=["none", "moving-average", "self-critical"],
                   help="REINFORCE baseline")
    g.add_argument("--entropy-weight", type=float, default=0.1, help="weight of max(0, target − H(g))")
    g.add_argument("--entropy-target", type=float, default=4.0,
                   help="nats; with pool/kbgan the entropy is over the draws, at most log --candidates")
    g.add_argument("--off-policy", action="store_true",
                   help="add the importance-weighted REINFORCE term on noise draws (exact generator)")
    e = p.add_argument_group("evaluation and output")
    e.add_argument("--eval-sets", type=parse_sets, default=("ws353", "rw"), help="sets scored during training")
    e.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (0: at the end only)")
    e.add_argument("--final-sets", type=parse_sets, default=None, help="sets scored at the end (None: all)")
    e.add_argument("--no-analogy", action="store_true", help="skip the analogy evaluation at the end")
    e.add_argument("--log-every", type=int, default=100, help="steps between metrics records and progress updates")
    e.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints (0: at the end)")
    e.add_argument("--quiet", action="store_true", help="no progress line")
    d = p.add_argument_group("many devices and hosts")
    d.add_argument("--devices", type=int, default=None,
                   help="devices to split each step over (None: all; on a CPU-only machine, N > 1 makes N CPU devices)")
    d.add_argument("--row-shards", type=int, default=1,
                   help="devices that split each embedding table by rows, for tables too big for one device")
    d.add_argument("--coordinator", default=None, help="multi-host: HOST:PORT of process 0, the same for every process")
    d.add_argument("--num-processes", type=int, default=1, help="multi-host: how many processes take part")
    d.add_argument("--process-id", type=int, default=0, help="multi-host: this process's rank, 0..N-1")


RUN_ONLY = {"out", "method", "resume", "quiet", "devices", "row_shards", "coordinator", "num_processes", "process_id"}


def word_fields(args, dests) -> dict:
    """Config fields (WordConfig's and GameConfig's, flat) from the parsed flags of `dests`."""
    from ace_jax.evaluate.similarity import DEFAULT_SETS

    converters = {"no_normalize": ("normalize", lambda v: not v), "no_analogy": ("analogy", lambda v: not v),
                  "gen_bf16": ("gen_matmul_dtype", lambda v: "bfloat16" if v else "float32"),
                  "final_sets": ("final_sets", lambda v: DEFAULT_SETS if v is None else v)}
    fields = {}
    for dest in dests - RUN_ONLY:
        name, convert = converters.get(dest, (dest, lambda v: v))
        fields[name] = convert(getattr(args, dest))
    return fields


def word_config_of(args, parser):
    """The WordConfig the flags ask for; args.sources gets the fields --method set (for messages).

    A new run: the defaults, then --method's settings, then the flags given. --resume: the saved run's
    settings, then --method's and the flags given, if given; what differs from the saved run is an error
    (run.check_same_settings, raised by the training call).
    """
    from ace_jax import run
    from ace_jax.embeddings import WordConfig

    given = explicit_dests(parser, args.argv)
    dests = {a.dest for a in parser._actions if a.option_strings} - {"help"}
    if args.method is None:  # the measured-best form, unless a flag asks for another layout or sampler
        layout_flags = {"sampler", "model", "shared_negatives", "reach"}
        args.method = "ns" if given & layout_flags or args.resume else methods.DEFAULT_WORD
    method = methods.lookup(methods.WORD, args.method)
    # A setting --method made, and no flag, is named --method in messages.
    args.sources = {field: "--method" for field in set(method.settings) - given} if "method" in given else {}
    if not args.resume:
        fields = word_fields(args, dests - (set(method.settings) - given))
        return methods.word_config(args.method, **fields)
    saved = run.load_config(args.out, "word", WordConfig.from_json)
    fields = {**(method.settings if "method" in given else {}), **word_fields(args, given)}
    return replace_fields(saved, fields)


def replace_fields(config, fields: dict):
    """config with `fields` (flat names, nested configs included) replaced."""
    changes = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            nested = {k: v for k, v in fields.items() if k in {g.name for g in dataclasses.fields(value)}}
            if nested:
                changes[f.name] = replace_fields(value, nested)
        elif f.name in fields:
            changes[f.name] = fields[f.name]
    return dataclasses.replace(config, **changes)


def start_devices(args) -> None:
    """Before JAX starts a backend: join the other hosts, or make CPU devices for --devices N on a CPU."""
    from ace_jax import parallel

    if args.coordinator:
        parallel.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    elif args.num_processes > 1:
        raise SettingError("coordinator", None, "a multi-host run needs {name} HOST:PORT")
    elif args.devices and args.devices > 1:
        parallel.request_cpu_devices(args.devices)  # only the CPU backend reads it; GPUs and TPUs are as found


def run_train(args, parser) -> int:
    from ace_jax.embeddings import train_word_embeddings

    config = word_config_of(args, parser)
    start_devices(args)
    final = train_word_embeddings(config, args.out, resume=args.resume, progress=not args.quiet,
                                  devices=args.devices, row_shards=args.row_shards)
    if args.process_id:
        return 0  # process 0 reports and writes
    print_scores(final)
    print(f"run folder {args.out}: vectors.txt, vectors.bin, eval.json, metrics.jsonl, checkpoint.msgpack")
    return 0


def undefined(value) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def print_scores(scores: dict) -> None:
    print(f"{'set':<12} {'spearman':>8} {'pairs':>6} {'oov':>6}")
    missing = False
    for name, value in scores.items():
        if isinstance(value, dict) and "spearman" in value:
            rho = value["spearman"]
            missing |= undefined(rho)
            print(f"{name:<12} {'–' if undefined(rho) else f'{rho:.4f}':>8} {value['pairs']:>6d} {value['oov']:>6d}")
    if "analogy" in scores:
        a = scores["analogy"]
        accuracy = "–" if undefined(a["accuracy"]) else f"{a['accuracy']:.4f}"
        missing |= undefined(a["accuracy"])
        print(f"{'analogy':<12} {accuracy:>8} {a['questions']:>6d} questions (3CosAdd, top 30k words)")
    if missing:
        print(NOT_DEFINED.format(why="fewer than two pairs, or no question, with every word in the vocabulary"))


def print_json(scores: dict) -> None:
    from ace_jax.run import finite_or_null

    print(json.dumps(finite_or_null(scores), allow_nan=False))


def run_eval(args, parser) -> int:
    from ace_jax.evaluate.similarity import evaluate_all
    from ace_jax.io import load_word2vec

    words, vectors = load_word2vec(args.vectors)
    scores = evaluate_all(vectors, words, args.sets, analogy=not args.no_analogy)
    if args.json:
        print_json(scores)
    else:
        print_scores(scores)
    return 0


def run_neighbors(args, parser) -> int:
    from ace_jax.evaluate.similarity import nearest_neighbors
    from ace_jax.io import load_word2vec

    if args.top < 1:
        raise SettingError("top", args.top, "{name} must be at least 1, not {value}")
    words, vectors = load_word2vec(args.vectors)
    for word in args.words:
        found = nearest_neighbors(vectors, words, word, k=args.top)
        print(f"{word}: " + ", ".join(f"{w} {cos:.3f}" for w, cos in found))
    return 0


def run_negatives(args, parser) -> int:
    from ace_jax.embeddings import negatives_of

    if args.top < 1:
        raise SettingError("top", args.top, "{name} must be at least 1, not {value}")
    for word, found in negatives_of(args.run, args.words, args.top).items():
        print(word)
        for name, title in (("generator", "generator g(y|x)"), ("discriminator", "discriminator u_x·v_y"),
                            ("cosine", "cosine neighbours")):
            cells = ", ".join(f"{w} {v:.3g}" for w, v in found[name]) or "(no generator: a noise-only sampler)"
            print(f"  {title:<22} {cells}")
    return 0


# ----------------------------------------------------------------------------------------- s2net


S2NET_TRAIN_FIELDS = ("data", "test_data", "dim", "loss", "sampler", "negatives", "lam", "steps", "batch",
                      "learning_rate", "init", "tf", "idf", "tokenizer", "stop_words", "min_df", "unseen_words",
                      "activation", "gamma", "margin", "self_adv_temperature", "gen_dim", "gen_learning_rate",
                      "entropy_weight", "entropy_target", "paraphrase_threshold", "seed", "log_every",
                      "checkpoint_every")


def add_resume_and_quiet(parser, budget: str) -> None:
    parser.add_argument("--resume", action="store_true",
                        help=f"continue the run in --out with its settings (a flag that differs is an error, but "
                             f"{budget}, which may grow); on a finished run, print its scores")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def add_s2net_parser(commands) -> None:
    s = commands.add_parser("s2net", help="S2Net text similarity: train, evaluate, find similar texts")
    sub = s.add_subparsers(dest="s2net_command", required=True, parser_class=Parser)
    t = sub.add_parser("train", help="learn a projection of term vectors from scored sentence pairs")
    t.add_argument("--data", default="stsb", help="stsb, sick, or a TSV file of text1<TAB>text2<TAB>score")
    t.add_argument("--test", dest="test_data", default=None, help="with a TSV --data: a TSV file to evaluate on")
    t.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    t.add_argument("--method", default="uniform", choices=list(methods.S2NET), metavar="METHOD",
                   help="a named method: " + ", ".join(methods.S2NET))
    t.add_argument("--dim", type=int, default=128, help="k, the projection's dimension")
    t.add_argument("--loss", default="logistic", choices=["logistic", "hinge", "mse"], help="the pairwise loss")
    t.add_argument("--sampler", default="uniform", choices=["none", "uniform", "in-batch", "self-adv", "ace"],
                   help="negatives mined for paraphrase queries besides the gold preferences (none: gold only); "
                        "overrides --method's")
    t.add_argument("--negatives", type=int, default=4, help="mined negatives per paraphrase query")
    t.add_argument("--lambda", dest="lam", type=float, default=0.5, help="ACE: probability a negative is uniform noise")
    t.add_argument("--steps", type=int, default=2000, help="training steps (raise it with --resume to train longer)")
    t.add_argument("--batch", type=int, default=64, help="gold preferences and paraphrase queries per step")
    t.add_argument("--lr", dest="learning_rate", type=float, default=1e-3, help="Adam step size for A")
    t.add_argument("--init", default="random", choices=["random", "lsi"], help="A's start")
    t.add_argument("--tf", default="raw", choices=["raw", "sublinear", "binary"],
                   help="term frequency weight: the count n, 1 + log n, or 1")
    t.add_argument("--idf", default="log", choices=["log", "smooth", "smooth1", "none"],
                   help="log N/df, log (N+1)/(df+1), the same + 1, or none (1), over the training texts")
    t.add_argument("--tokenizer", default="unicode", choices=["unicode", "ascii"],
                   help="tokens: runs of Unicode letters and digits, or of [a-z0-9], after lower-casing")
    t.add_argument("--stop-words", action="store_true", help="drop English function words from the vocabulary")
    t.add_argument("--min-df", type=int, default=1, help="keep words in at least this many training texts")
    t.add_argument("--unseen-words", action="store_true",
                   help="also keep the evaluation texts' words no training text has (idf of df 0); their rows of A "
                        "keep their random start, a random projection (no labels are read)")
    t.add_argument("--activation", default="none", choices=["none", "tanh", "sigmoid"], help="act(Aᵀf)")
    t.add_argument("--gamma", type=float, default=10.0, help="scale of the pairwise logistic loss")
    t.add_argument("--margin", type=float, default=0.5, help="margin of the hinge loss")
    t.add_argument("--self-adv-temperature", type=float, default=1.0, help="self-adv: α in K·softmax(α sim)")
    t.add_argument("--gen-dim", type=int, default=32, help="the generator's projection dimension")
    t.add_argument("--gen-lr", dest="gen_learning_rate", type=float, default=1e-3, help="the generator's Adam step")
    t.add_argument("--entropy-weight", type=float, default=0.1, help="weight of max(0, target − H(g))")
    t.add_argument("--entropy-target", type=float, default=2.0, help="nats")
    t.add_argument("--paraphrase-threshold", type=float, default=4.0,
                   help="gold score from which a pair counts as a paraphrase (queries, retrieval)")
    t.add_argument("--seed", type=int, default=0, help="seed of the steps' pairs, A and the game")
    t.add_argument("--log-every", type=int, default=100, help="steps between records, progress and dev scores")
    t.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints (0: at the end)")
    add_resume_and_quiet(t, "--steps")
    e = sub.add_parser("eval", help="correlation with gold scores and paraphrase retrieval")
    e.add_argument("run", help="a folder written by s2net train")
    e.add_argument("--data", default=None, help="stsb, sick or a TSV file (None: the run's own evaluation sets)")
    e.add_argument("--split", default=None, help="one split of a named dataset (None: dev/trial and test)")
    e.add_argument("--json", action="store_true", help="JSON instead of a table")
    m = sub.add_parser("similar", help="the training texts most similar to a text")
    m.add_argument("run", help="a folder written by s2net train")
    m.add_argument("text", help="the text to find neighbours of")
    m.add_argument("--top", type=int, default=10, help="how many")
    m.add_argument("--data", default=None, help="search the texts of this dataset or TSV file instead")


def run_s2net(args, parser) -> int:
    run = {"train": run_s2net_train, "eval": run_s2net_eval, "similar": run_s2net_similar}[args.s2net_command]
    return run(args, parser)


def run_s2net_train(args, parser) -> int:
    from ace_jax import run, s2net_run

    given = explicit_dests(parser, args.argv)
    method = methods.lookup(methods.S2NET, args.method)
    args.sources = {field: "--method" for field in set(method.settings) - given} if "method" in given else {}
    if args.resume:
        saved = run.load_config(args.out, "s2net", s2net_run.S2NetRunConfig.from_json)
        fields = {**(method.settings if "method" in given else {}),
                  **{name: getattr(args, name) for name in S2NET_TRAIN_FIELDS if name in given}}
        config = replace_fields(saved, fields)
    else:
        fields = {name: getattr(args, name) for name in S2NET_TRAIN_FIELDS
                  if name in given or name not in method.settings}
        config = methods.s2net_config(args.method, **fields)
    final = s2net_run.train_s2net(config, args.out, resume=args.resume, progress=not args.quiet)
    print_s2net_scores({k: v for k, v in final.items() if isinstance(v, dict)})
    print(f"run folder {args.out}: projection.npy, vocab.tsv, metrics.json, metrics.jsonl, config.json, "
          "checkpoint.msgpack")
    return 0


def print_s2net_scores(scores: dict) -> None:
    print(f"{'set':<8} {'pearson':>8} {'spearman':>8} {'pairs':>6} {'top-1':>7} {'mrr':>7} {'queries':>7}")
    missing = []
    for name, v in scores.items():
        cells = []
        for key, width in (("pearson", 8), ("spearman", 8), ("top1", 7), ("mrr", 7)):
            missing += [key] if undefined(v[key]) else []
            cells.append(f"{'–' if undefined(v[key]) else format(v[key], '.4f'):>{width}}")
        print(f"{name:<8} {cells[0]} {cells[1]} {v['pairs']:>6d} {cells[2]} {cells[3]} {v['queries']:>7d}")
    if missing:
        why = []
        if {"pearson", "spearman"} & set(missing):
            why.append("a correlation with a constant similarity or fewer than two pairs")
        if {"top1", "mrr"} & set(missing):
            why.append("retrieval without a pair scoring at the paraphrase threshold")
        print(NOT_DEFINED.format(why="; ".join(why)))


def run_s2net_eval(args, parser) -> int:
    from ace_jax import s2net_run
    from ace_jax.data.pairs import load_pairs

    model, config = s2net_run.TextModel.load(args.run), s2net_run.load_config(args.run)
    if args.data is None and args.split is not None and config.data not in s2net_run.EVAL_SPLITS:
        raise SettingError("split", args.split, "{name} {value} needs a named dataset (stsb or sick) in --data")
    if args.data is None:
        sets = s2net_run.eval_sets(config.data, config.test_data, split=args.split)
    elif args.data in s2net_run.EVAL_SPLITS:
        sets = s2net_run.eval_sets(args.data, split=args.split)
    else:
        sets = {Path(args.data).name: load_pairs(args.data)}
    scores = {name: s2net_run.evaluate(model, pairs, config.paraphrase_threshold) for name, pairs in sets.items()}
    if args.json:
        print_json(scores)
    else:
        print_s2net_scores(scores)
    return 0


def run_s2net_similar(args, parser) -> int:
    from ace_jax import s2net_run

    if args.top < 1:
        raise SettingError("top", args.top, "{name} must be at least 1, not {value}")
    model, config = s2net_run.TextModel.load(args.run), s2net_run.load_config(args.run)
    texts = s2net_run.search_texts(args.data or config.data)
    for score, text in s2net_run.most_similar(model, args.text, texts, args.top):
        print(f"{score:.4f}  {text}")
    return 0


# ----------------------------------------------------------------------------------------- main

# -------------------------------------------------------------------------------------------- kg

KG_TRAIN_FIELDS = ("data", "model", "norm", "dim", "sampler", "sides", "negatives", "loss", "margin", "gamma",
                   "self_adv_temperature", "lam", "generator", "gen_tables", "gen_model", "gen_dim", "gen_lr",
                   "gen_temperature", "gen_beta", "candidates", "entropy_weight", "entropy_target", "reward",
                   "mask_known", "false_negative_penalty", "regulariser", "reg_weight", "average_negatives",
                   "subsampling", "free_entities", "entity_norm", "init_range", "optimizer", "lr", "lr_drop_epoch",
                   "batch", "epochs", "eval_every", "patience", "eval_batch", "seed", "log_every", "init", "gen_init",
                   "split_size")


def add_kg_parser(commands) -> None:
    from ace_jax import kg_config

    k = commands.add_parser("kg", help="knowledge-graph embeddings: train, evaluate, predict")
    sub = k.add_subparsers(dest="kg_command", required=True, parser_class=Parser)
    t = sub.add_parser("train", help="train a knowledge-graph model with a negative sampler")
    add_triple_train_flags(t, kg_config.KgRunConfig(), data_help=(
        "fb15k-237, wn18rr, wn18, or a folder of train.txt, valid.txt and test.txt (head<TAB>relation<TAB>tail) or "
        "of OpenKE's *2id.txt files"))
    t.add_argument("--devices", type=int, default=1,
                   help="devices to split each step's triples over (on a CPU-only machine, N > 1 makes N CPU devices)")
    t.add_argument("--row-shards", type=int, default=1, help="devices that split each table by rows")
    add_resume_and_quiet(t, "--epochs")
    e = sub.add_parser("eval", help="filtered link prediction of a trained run")
    e.add_argument("run", help="a folder written by kg train")
    e.add_argument("--split", default="test", choices=["valid", "test"])
    e.add_argument("--json", action="store_true",
                   help='JSON: {"mrr", "mr", "hits@1", "hits@3", "hits@10", "triples", "unseen"}')
    p = sub.add_parser("predict", help="the most likely tails of a head and relation (or heads of a tail)")
    p.add_argument("run", help="a folder written by kg train")
    p.add_argument("--relation", required=True, help="a relation's name (relations.tsv)")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--head", help="an entity's name: rank the tails")
    given.add_argument("--tail", help="an entity's name: rank the heads")
    p.add_argument("--top", type=int, default=10, help="how many")


def add_triple_train_flags(t, defaults, data_help: str, kg: bool = True) -> None:
    """The flags of `kg train` and of `order train` (kg False: one model and relation, no ranking, no warm
    starts), with the config's defaults."""
    from ace_jax import kg_config

    t.add_argument("--data", default=defaults.data, help=data_help)
    t.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    if kg:
        t.add_argument("--model", default=defaults.model, choices=list(defaults.models))
        t.add_argument("--norm", type=int, default=defaults.norm, help="TransE's and TransD's distance: 1 or 2")
    t.add_argument("--dim", type=int, default=defaults.dim, help="embedding dimension")
    t.add_argument("--sampler", default=defaults.sampler, choices=list(defaults.samplers),
                   help="uniform corruption; bernoulli (uniform entities, sides by relation, Wang et al. 2014); "
                        "self-adv (uniform, weighted by K·softmax(α s), Sun et al. 2019); self-adv-pool (kg: drawn "
                        "from softmax(α s) over the pool form's --candidates, a --lambda mixture with uniform noise, "
                        "not learned); kbgan (every negative from the generator); ace (a --lambda mixture of uniform "
                        "noise and the generator)")
    if kg:
        t.add_argument("--sides", default=defaults.sides, choices=["uniform", "bernoulli"],
                       help="which side of a triple to corrupt (bernoulli is implied by --sampler bernoulli)")
    t.add_argument("--negatives", type=int, default=defaults.negatives, help="corruptions per training triple")
    t.add_argument("--loss", default=defaults.loss, choices=list(kg_config.LOSSES),
                   help="margin ranking; RotatE's logistic loss with --gamma; or contrastive, E+ + max(0, m − E-) "
                        "with s = −E (order embeddings')")
    t.add_argument("--margin", type=float, default=defaults.margin, help="the margin loss's margin")
    t.add_argument("--gamma", type=float, default=defaults.gamma,
                   help="the logistic loss: γ added to every score (RotatE's margin; 0 suits DistMult and ComplEx)")
    t.add_argument("--self-adv-temperature", type=float, default=defaults.self_adv_temperature, help="α")
    t.add_argument("--lambda", dest="lam", type=float, default=defaults.lam,
                   help="ace and self-adv-pool: the probability a negative is uniform noise")
    t.add_argument("--generator", default="", choices=list(kg_config.GENERATORS),
                   help="the generator's softmax: over every entity, over --candidates draws shared by the batch, "
                        "or over each triple's own (KBGAN's); default: kbgan for --sampler kbgan, pool for ace")
    t.add_argument("--gen-tables", default="", choices=["own", "discriminator"],
                   help="the generator's own --gen-model tables, or the discriminator's, read detached "
                        "(β · s_D + c); default: own for --sampler kbgan, discriminator for ace")
    t.add_argument("--gen-model", default=defaults.gen_model, choices=["distmult", "complex"],
                   help="the generator's model on its own tables")
    t.add_argument("--gen-dim", type=int, default=defaults.gen_dim, help="the generator's dimension")
    t.add_argument("--gen-lr", type=float, default=defaults.gen_lr, help="the generator's Adam step")
    t.add_argument("--gen-temperature", type=float, default=defaults.gen_temperature,
                   help="--gen-tables discriminator: β starts at 1 / T")
    t.add_argument("--gen-beta", default=defaults.gen_beta, choices=list(kg_config.GEN_BETAS),
                   help="--gen-tables discriminator: one inverse temperature β, or one per relation and corrupted "
                        "side, all learned")
    t.add_argument("--candidates", type=int, default=defaults.candidates,
                   help="draws the pool or KBGAN-style generator chooses among (0: 1024 and 20)")
    t.add_argument("--entropy-weight", type=float, default=defaults.entropy_weight,
                   help="weight of max(0, target − H(g))")
    t.add_argument("--entropy-target", type=float, default=defaults.entropy_target, help="nats")
    t.add_argument("--reward", default=defaults.reward, choices=list(kg_config.REWARDS),
                   help="the generator's reward for a negative: the discriminator's loss on it (ACE's), or its "
                        "score (KBGAN's −distance: it does not vanish where the margin is met)")
    t.add_argument("--mask-known", action="store_true",
                   help="the generator never proposes a training triple (its draws that are known get probability 0; "
                        "pool and kbgan forms) rather than learning to avoid them through the penalty")
    t.add_argument("--false-negative-penalty", type=float, default=defaults.false_negative_penalty,
                   help="a learned generator's reward for a draw that is a training triple is −this (0: the same "
                        "as a negative the discriminator already gets right, whose loss is near 0)")
    t.add_argument("--regulariser", default=defaults.regulariser, choices=list(kg_config.REGULARISERS),
                   help="L2 or N3 of the rows a step reads")
    t.add_argument("--reg-weight", type=float, default=defaults.reg_weight, help="its weight")
    t.add_argument("--optimizer", default=defaults.optimizer, choices=list(kg_config.OPTIMIZERS),
                   help="row-sparse: only the rows a step reads move")
    t.add_argument("--lr", type=float, default=defaults.lr, help="learning rate")
    t.add_argument("--batch", type=int, default=defaults.batch, help="training triples per step")
    t.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the training triples (raise it "
                   "with --resume to train longer)")
    t.add_argument("--eval-every", type=int, default=defaults.eval_every, help="epochs between valid evaluations")
    t.add_argument("--patience", type=int, default=defaults.patience,
                   help="stop after this many evaluations without a better valid score (0: never)")
    t.add_argument("--seed", type=int, default=defaults.seed)
    t.add_argument("--log-every", type=int, default=defaults.log_every, help="steps between records and progress")
    if kg:
        t.add_argument("--average-negatives", action="store_true",
                       help="the negatives' loss terms averaged, their weights summing to 1 (RotatE's loss), not "
                            "summed (word2vec's)")
        t.add_argument("--subsampling", action="store_true",
                       help="each triple's terms weighted by 1 / √(#(h, r) + #(r, t) + 6) in a weighted mean over the "
                            "batch (RotatE's code's)")
        t.add_argument("--free-entities", action="store_true",
                       help="TransE's and TransD's entities are not put back in the unit ball (RotatE's code's TransE)")
        t.add_argument("--entity-norm", default=defaults.entity_norm, choices=list(kg_config.ENTITY_NORMS),
                       help="TransE's entities after each step and at the start: norm at most 1 (ball), or exactly 1 "
                            "(sphere, TransE's paper)")
        t.add_argument("--init-range", type=float, default=defaults.init_range, metavar="R",
                       help="every table starts uniform on [-R, R] (RotatE's code: (γ + 2) / dim; 0: the model's "
                            "own)")
        t.add_argument("--lr-drop-epoch", type=int, default=defaults.lr_drop_epoch, metavar="E",
                       help="from this epoch on, the learning rate / 10 and a fresh optimiser (RotatE's code: at half "
                            "the steps; 0: never)")
        t.add_argument("--eval-batch", type=int, default=defaults.eval_batch, help="queries ranked at once")
        t.add_argument("--init", default=defaults.init, metavar="RUN",
                       help="start the discriminator from a finished kg run's tables (same graph, model and --dim)")
        t.add_argument("--gen-init", default=defaults.gen_init, metavar="RUN",
                       help="start the generator's own tables from a finished kg run (same graph, --gen-model and "
                            "--gen-dim): KBGAN's pretraining")


def run_kg(args, parser) -> int:
    return {"train": run_kg_train, "eval": run_kg_eval, "predict": run_kg_predict}[args.kg_command](args, parser)


def print_kg_scores(scores: dict) -> None:
    print("| split | MRR | MR | Hits@1 | Hits@3 | Hits@10 | triples | unseen |")
    print("|---|---|---|---|---|---|---|---|")
    for split, s in scores.items():
        print(f"| {split} | {s['mrr']:.4f} | {s['mr']:.1f} | {s['hits@1']:.4f} | {s['hits@3']:.4f} | "
              f"{s['hits@10']:.4f} | {s['triples']} | {s['unseen']} |")


def triple_config(args, parser, config_cls, family: str):
    """The config of `kg train` or `order train`: the flags given over the saved run's settings (--resume), or
    over the config's defaults."""
    from ace_jax import run

    given = explicit_dests(parser, args.argv)
    fields = [name for name in KG_TRAIN_FIELDS if hasattr(args, name)]
    if args.resume:
        saved = run.load_config(args.out, family, config_cls.from_json)
        return replace_fields(saved, {name: getattr(args, name) for name in fields if name in given})
    return config_cls(**{name: getattr(args, name) for name in fields})


def run_kg_train(args, parser) -> int:
    from ace_jax import kg_run
    from ace_jax.kg_config import KgRunConfig

    config = triple_config(args, parser, KgRunConfig, "kg")
    if args.devices > 1:
        from ace_jax import parallel

        parallel.request_cpu_devices(args.devices)  # before JAX starts; GPUs and TPUs are as found
    final = kg_run.train_kg(config, args.out, resume=args.resume, progress=not args.quiet, devices=args.devices,
                            row_shards=args.row_shards)
    print_kg_scores({split: final[split] for split in ("valid", "test")})
    print(f"chosen at epoch {final['best_epoch']:g}; run folder {args.out}: "
          + ", ".join(config.to_json()["arrays"].values())
          + ", entities.tsv, relations.tsv, metrics.json, metrics.jsonl, config.json, checkpoint.msgpack")
    return 0


def run_kg_eval(args, parser) -> int:
    from ace_jax import kg_run

    config = kg_run.load_config(args.run)
    params = kg_run.load_params(args.run, config)
    scores = kg_run.link_prediction(kg_run.build(config), params, args.split)
    if args.json:
        print_json(scores)
    else:
        print_kg_scores({args.split: scores})
    return 0


def run_kg_predict(args, parser) -> int:
    from ace_jax import kg_run

    config = kg_run.load_config(args.run)
    params = kg_run.load_params(args.run, config)
    entities, relations = (kg_run.read_names(Path(args.run) / f"{name}.tsv") for name in ("entities", "relations"))
    name = args.head if args.head is not None else args.tail
    for value, names, flag in ((name, entities, "--head" if args.head is not None else "--tail"),
                               (args.relation, relations, "--relation")):
        if value not in names:
            raise AceJaxError(f"{flag}: unknown {'relation' if flag == '--relation' else 'entity'} {value!r}")
    side = "tail" if args.head is not None else "head"
    for entity, score in kg_run.predict(config, params, entities, entities[name], relations[args.relation], side,
                                        args.top):
        print(f"{score:10.4f}  {entity}")
    return 0


# ----------------------------------------------------------------------------------------- order

ORDER_SCORES = ("accuracy", "precision", "recall", "f1", "threshold", "pairs")


def add_order_parser(commands) -> None:
    from ace_jax.order_run import OrderConfig

    o = commands.add_parser("order", help="order embeddings of the WordNet noun hierarchy: train, evaluate, predict")
    sub = o.add_subparsers(dest="order_command", required=True, parser_class=Parser)
    t = sub.add_parser("train", help="train order embeddings on the WordNet 3.0 noun closure with a negative sampler")
    add_triple_train_flags(t, OrderConfig(), kg=False, data_help=(
        "wordnet (the registry's WordNet 3.0) or a WordNet database archive (.tar.gz with dict/data.noun and "
        "dict/index.noun)"))
    t.add_argument("--split-size", type=int, default=OrderConfig().split_size,
                   help="pairs of the closure held out for test, and as many for choosing the threshold")
    add_resume_and_quiet(t, "--epochs")
    e = sub.add_parser("eval", help="hypernym classification at the threshold chosen on the valid pairs")
    e.add_argument("run", help="a folder written by order train")
    e.add_argument("--split", default="test", choices=["valid", "test"])
    e.add_argument("--json", action="store_true", help="JSON: {" + ", ".join(f'"{k}"' for k in ORDER_SCORES) + "}")
    p = sub.add_parser("predict", help="the most likely hypernyms of a word's noun synsets, by energy")
    p.add_argument("run", help="a folder written by order train")
    p.add_argument("word", help="a noun lemma (any case; spaces or underscores)")
    p.add_argument("--top", type=int, default=10, help="how many per synset")


def run_order(args, parser) -> int:
    return {"train": run_order_train, "eval": run_order_eval, "predict": run_order_predict}[args.order_command](
        args, parser)


def print_order_scores(scores: dict) -> None:
    print("| split | accuracy | precision | recall | F1 | threshold | pairs |")
    print("|---|---|---|---|---|---|---|")
    for split, s in scores.items():
        print(f"| {split} | {s['accuracy']:.4f} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | "
              f"{s['threshold']:.4g} | {s['pairs']} |")


def run_order_train(args, parser) -> int:
    from ace_jax import order_run

    config = triple_config(args, parser, order_run.OrderConfig, "order")
    final = order_run.train_order(config, args.out, resume=args.resume, progress=not args.quiet)
    print_order_scores({split: final[split] for split in ("valid", "test")})
    lemma = final.get("lemma_test", {})
    if "accuracy" in lemma:
        print(f"published lemma-level test file: {lemma['mapped']} of {lemma['pairs']} pairs map to one synset each; "
              f"accuracy {lemma['accuracy']:.4f} ({lemma['accuracy_without_our_train']:.4f} without the "
              f"{lemma['true_in_our_train']} of its true pairs in our training split)")
    print(f"chosen at epoch {final['best_epoch']:g}; run folder {args.out}: embeddings.npy, synsets.tsv, "
          "metrics.json (with the threshold), metrics.jsonl, config.json, checkpoint.msgpack")
    return 0


def run_order_eval(args, parser) -> int:
    from ace_jax import kg_run, order_run

    config = order_run.load_config(args.run)
    params = kg_run.load_params(args.run, config)
    scores = order_run.split_scores(order_run.load_hypernyms(config.data, config.split_size), params, args.split)
    if args.json:
        print_json(scores)
    else:
        print_order_scores({args.split: scores})
    return 0


def run_order_predict(args, parser) -> int:
    from ace_jax import order_run

    for synset, hypernyms in order_run.predict(args.run, args.word, args.top):
        print(synset)
        for name, energy in hypernyms:
            print(f"  {energy:10.4f}  {name}")
    return 0


def build_parser() -> Parser:
    from ace_jax.evaluate.similarity import DEFAULT_SETS

    parser = Parser(prog="ace-jax", description="Adversarial Contrastive Estimation in JAX")
    parser.add_argument("--version", action="version", version=f"ace-jax {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_train_parser(commands)
    e = commands.add_parser("eval", help="evaluate a word2vec-format file (ours or gensim's)")
    e.add_argument("vectors", help="a word2vec file, text or binary")
    e.add_argument("--sets", type=parse_sets, default=DEFAULT_SETS, help="comma-separated: " + ",".join(DEFAULT_SETS))
    e.add_argument("--json", action="store_true", help="JSON instead of a table")
    e.add_argument("--no-analogy", action="store_true", help="skip the analogy evaluation")
    n = commands.add_parser("neighbors", help="nearest neighbours by cosine")
    n.add_argument("vectors", help="a word2vec file, text or binary")
    n.add_argument("words", nargs="+", help="the words to find neighbours of")
    n.add_argument("--top", type=int, default=10, help="how many")
    g = commands.add_parser("negatives", help="the generator's negatives beside the discriminator's choices")
    g.add_argument("run", help="a folder written by ace-jax train")
    g.add_argument("words", nargs="+", help="query words")
    g.add_argument("--top", type=int, default=10, help="how many of each")
    add_s2net_parser(commands)
    add_kg_parser(commands)
    add_order_parser(commands)
    return parser


def subcommand_parser(parser: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The parser of the subcommand that was run (for its flags' names)."""
    chosen = parser
    for dest in ("command", "s2net_command", "kg_command", "order_command"):
        actions = [a for a in chosen._actions if isinstance(a, argparse._SubParsersAction) and a.dest == dest]
        if actions and getattr(args, dest, None):
            chosen = actions[0].choices[getattr(args, dest)]
    return chosen


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv, args.sources = argv, {}
    sub = subcommand_parser(parser, args)
    run = {"train": run_train, "eval": run_eval, "neighbors": run_neighbors, "negatives": run_negatives,
           "s2net": run_s2net, "kg": run_kg, "order": run_order}[args.command]
    try:
        return run(args, sub)
    except Interrupted as error:
        print(f"ace-jax: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (reading data, writing the outputs)
        print("ace-jax: interrupted", file=sys.stderr)
        return 130
    except SettingError as error:
        name = args.sources.get(error.field) or flag_names(sub).get(error.field) or error.field
        if name == "--method":  # a setting the named method made: show the method
            error.value = args.method
        print(f"ace-jax: error: {error.named(name)}", file=sys.stderr)
        return 1
    except AceJaxError as error:
        print(f"ace-jax: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a file or folder the user named that the system refuses (permissions, a full disk)
        where = f"{error.filename}: " if error.filename else ""
        print(f"ace-jax: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
