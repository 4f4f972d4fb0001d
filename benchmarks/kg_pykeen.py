"""Our filtered ranking against PyKEEN's RankBasedEvaluator on the same TransE embeddings (issue 17).

Run it with a Python that has PyKEEN (a benchmark extra, never a test dependency), from the repository root:

    python3 -m venv /tmp/pk && /tmp/pk/bin/pip install torch==2.13.0 pykeen
    /tmp/pk/bin/python benchmarks/kg_pykeen.py RUN_DIR [--split test]

RUN_DIR is a finished `ace-jax kg train --model transe` run. Its entity and relation tables are loaded into
PyKEEN's TransE (same ids, same norm) and ranked by PyKEEN, filtered by the train, valid and test triples,
realistic ranks; the script prints both evaluators' MRR, MR and Hits@k, ours as recorded in metrics.json.
ace_jax's data package needs only numpy, so the graph is read the same way as in training.

    /tmp/pk/bin/python benchmarks/kg_pykeen.py --worker DATA DIM NEGATIVES BATCH MARGIN LR SEED

is the training worker benchmarks/kg_pykeen_speed.py drives (through stdin and stdout): PyKEEN's own sLCWA
training loop on TransE (L1), one epoch per "epoch" line (it answers the seconds), the tables to an .npz per
"save PATH" line.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ace_jax.data.triples import load_kg  # numpy only: no JAX in this interpreter


def worker(data: str, dim: str, negatives: str, batch: str, margin: str, lr: str, seed: str) -> int:
    import torch
    from pykeen.losses import MarginRankingLoss
    from pykeen.models import TransE
    from pykeen.training import SLCWATrainingLoop
    from pykeen.triples import TriplesFactory

    torch.manual_seed(int(seed))
    graph = load_kg(data)
    factory = TriplesFactory(torch.as_tensor(np.array(graph.train), dtype=torch.long),
                             {name: i for i, name in enumerate(graph.entities)},
                             {name: i for i, name in enumerate(graph.relations)})
    model = TransE(triples_factory=factory, embedding_dim=int(dim), scoring_fct_norm=1,
                   loss=MarginRankingLoss(margin=float(margin)), random_seed=int(seed))
    loop = SLCWATrainingLoop(model=model, triples_factory=factory,
                             optimizer=torch.optim.Adam(model.parameters(), lr=float(lr)),
                             negative_sampler="basic", negative_sampler_kwargs={"num_negs_per_pos": int(negatives)})
    print(f"ready torch {torch.__version__} threads {torch.get_num_threads()}", flush=True)
    epochs = 0
    for line in sys.stdin:
        command, _, rest = line.strip().partition(" ")
        if command == "epoch":  # train's num_epochs is the total to reach, counting the epochs already done
            start = time.perf_counter()
            epochs += 1
            loop.train(triples_factory=factory, num_epochs=epochs, batch_size=int(batch), use_tqdm=False,
                       continue_training=epochs > 1, pin_memory=False)
            print(time.perf_counter() - start, flush=True)
        elif command == "save":
            with torch.no_grad():
                np.savez(rest, entity=model.entity_representations[0](indices=None).numpy(),
                         relation=model.relation_representations[0](indices=None).numpy())
            print("saved", flush=True)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(*argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--split", default="test", choices=["valid", "test"])
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args(argv)
    import torch
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.models import TransE
    from pykeen.triples import TriplesFactory

    run = Path(args.run)
    config = json.loads((run / "config.json").read_text())
    if config["model"] != "transe":
        raise SystemExit(f"ace-jax: error: {run}: a transe run is needed, not {config['model']}")
    graph = load_kg(config["data"])
    entities = {name: i for i, name in enumerate(graph.entities)}
    relations = {name: i for i, name in enumerate(graph.relations)}
    factory = TriplesFactory(torch.as_tensor(np.array(graph.train), dtype=torch.long), entities, relations)
    model = TransE(triples_factory=factory, embedding_dim=config["dim"], scoring_fct_norm=config["norm"],
                   entity_constrainer=None, random_seed=0)
    with torch.no_grad():
        for representation, file in ((model.entity_representations[0], "entity_embeddings.npy"),
                                     (model.relation_representations[0], "relation_embeddings.npy")):
            representation._embeddings.weight.copy_(torch.from_numpy(np.load(run / file)))
    others = [torch.as_tensor(np.array(graph.split(name)), dtype=torch.long) for name in ("train", "valid", "test")]
    start = time.perf_counter()
    triples = torch.as_tensor(np.array(graph.split(args.split)), dtype=torch.long)
    result = RankBasedEvaluator(filtered=True).evaluate(model, triples, batch_size=args.batch, use_tqdm=False,
                                                        additional_filter_triples=others)
    seconds = time.perf_counter() - start
    theirs = {"mrr": result.get_metric("both.realistic.inverse_harmonic_mean_rank"),
              "mr": result.get_metric("both.realistic.arithmetic_mean_rank"),
              **{f"hits@{k}": result.get_metric(f"both.realistic.hits_at_{k}") for k in (1, 3, 10)}}
    ours = json.loads((run / "metrics.json").read_text())[args.split]
    print("| evaluator | MRR | MR | Hits@1 | Hits@3 | Hits@10 |\n|---|---|---|---|---|---|")
    for name, s in (("ace_jax (metrics.json)", ours), (f"PyKEEN RankBasedEvaluator ({seconds:.1f} s)", theirs)):
        print(f"| {name} | {s['mrr']:.6f} | {s['mr']:.3f} | {s['hits@1']:.6f} | {s['hits@3']:.6f} | "
              f"{s['hits@10']:.6f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
