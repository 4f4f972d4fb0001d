"""Our filtered ranking against PyKEEN's RankBasedEvaluator on the same TransE embeddings (issue 17).

Run it with a Python that has PyKEEN (a benchmark extra, never a test dependency), from the repository root:

    python3 -m venv /tmp/pk && /tmp/pk/bin/pip install torch==2.13.0 pykeen
    /tmp/pk/bin/python benchmarks/kg_pykeen.py RUN_DIR [--split test]

RUN_DIR is a finished `ace-jax kg train --model transe` run. Its entity and relation tables are loaded into
PyKEEN's TransE (same ids, same norm) and ranked by PyKEEN, filtered by the train, valid and test triples,
realistic ranks; the script prints both evaluators' MRR, MR and Hits@k, ours as recorded in metrics.json.
ace_jax's data package needs only numpy, so the graph is read the same way as in training.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ace_jax.data.triples import load_kg  # numpy only: no JAX in this interpreter


def main(argv=None) -> int:
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
