"""Knowledge-graph runs end to end on a graph the tests write: a shrunk run through the CLI, ranks recomputed
from the run folder's files, resume, early stopping, prediction, bad input."""

import functools
import json

import jax
import numpy as np
import pytest

from ace_jax import io, kg_run, run
from ace_jax.cli import main
from ace_jax.kg_config import KgRunConfig

from test_cli import one_line_error

SIDE = 5


def write_grid(folder):
    """A 5 × 5 grid, "right" and "down" edges, in a fixed shuffled order: 34 train, 3 valid, 3 test."""
    edges = [(f"e{i * SIDE + j}", "right", f"e{i * SIDE + j + 1}") for i in range(SIDE) for j in range(SIDE - 1)]
    edges += [(f"e{i * SIDE + j}", "down", f"e{(i + 1) * SIDE + j}") for i in range(SIDE - 1) for j in range(SIDE)]
    order = np.random.default_rng(0).permutation(len(edges))
    edges = [edges[i] for i in order]
    folder.mkdir()
    for name, part in (("train", edges[:34]), ("valid", edges[34:37]), ("test", edges[37:])):
        (folder / f"{name}.txt").write_text("".join("\t".join(e) + "\n" for e in part))
    return folder


FLAGS = ["--dim", "8", "--batch", "8", "--negatives", "4", "--lr", "0.01", "--margin", "1", "--eval-every", "10",
         "--quiet"]


def brute_force_mrr(run_dir, split_file, norm):
    """Filtered MRR of TransE from the run folder's files alone: score −‖h + r − t‖, realistic ranks."""
    entities = dict(line.split("\t")[::-1] for line in (run_dir / "entities.tsv").read_text().splitlines())
    relations = dict(line.split("\t")[::-1] for line in (run_dir / "relations.tsv").read_text().splitlines())
    E, R = np.load(run_dir / "entity_embeddings.npy"), np.load(run_dir / "relation_embeddings.npy")

    def ids(path):
        return [(int(entities[h]), int(relations[r]), int(entities[t]))
                for h, r, t in (line.split("\t") for line in path.read_text().splitlines())]

    known = {t for name in ("train", "valid", "test") for t in ids(split_file.parent / f"{name}.txt")}
    reciprocal = []
    for h, r, t in ids(split_file):
        for side in ("tail", "head"):
            cands = E[h] + R[r] - E if side == "tail" else E + R[r] - E[t]
            scores = -np.linalg.norm(cands, ord=norm, axis=1)
            target = t if side == "tail" else h
            others = [e for e in range(len(E))
                      if e != target and ((h, r, e) if side == "tail" else (e, r, t)) not in known]
            higher = sum(scores[e] > scores[target] for e in others)
            tied = sum(scores[e] == scores[target] for e in others)
            reciprocal.append(1 / (1 + higher + tied / 2))
    return float(np.mean(reciprocal))


def test_a_shrunk_run_through_the_cli_ranks_anyone_can_recompute_and_predict(tmp_path, capsys, monkeypatch):
    data = write_grid(tmp_path / "grid")
    run_dir = tmp_path / "run"
    assert main(["kg", "train", "--data", str(data), "--out", str(run_dir), "--epochs", "40", *FLAGS]) == 0
    for name in ("config.json", "entities.tsv", "relations.tsv", "entity_embeddings.npy", "relation_embeddings.npy",
                 "metrics.json", "metrics.jsonl", "checkpoint.msgpack", "valid_mrr.png"):
        assert (run_dir / name).exists(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["arrays"] == {"entity": "entity_embeddings.npy", "relation": "relation_embeddings.npy"}
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "eval"] == [10.0, 20.0, 30.0, 40.0]
    capsys.readouterr()
    assert main(["kg", "eval", str(run_dir), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"mrr", "mr", "hits@1", "hits@3", "hits@10", "triples", "unseen"}
    assert scores["triples"] == 3 and scores["mrr"] == pytest.approx(brute_force_mrr(run_dir, data / "test.txt", 1))
    train_mrr = brute_force_mrr(run_dir, data / "train.txt", 1)
    assert train_mrr > 0.5, train_mrr  # it learned the edges it saw (random ranking is about 0.15)
    assert main(["kg", "predict", str(run_dir), "--head", "e0", "--relation", "right", "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.split()[1].startswith("e") for line in lines)
    scores = [float(line.split()[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    assert main(["kg", "eval", str(run_dir), "--split", "valid", "--json"]) == 0
    valid = json.loads(capsys.readouterr().out)
    assert valid["mrr"] == pytest.approx(brute_force_mrr(run_dir, data / "valid.txt", 1))
    assert main(["kg", "predict", str(run_dir), "--tail", "e6", "--relation", "down", "--top", "3"]) == 0
    printed = [line.split() for line in capsys.readouterr().out.splitlines()]
    every = head_scores(run_dir, "e6", "down", norm=1)
    assert len(printed) == 3 and [float(score) for score, _ in printed] == pytest.approx(
        [every[name] for _, name in printed], abs=1e-4)
    assert [float(score) for score, _ in printed] == pytest.approx(sorted(every.values(), reverse=True)[:3], abs=1e-4)
    assert "--head: unknown entity 'nope'" in one_line_error(
        ["kg", "predict", str(run_dir), "--head", "nope", "--relation", "right"], tmp_path, capsys, monkeypatch)
    (run_dir / "relations.tsv").write_text("0\tdown\nright\n")  # a hand-edited folder: line 2 has no id
    assert "relations.tsv:2: expected id<TAB>name" in one_line_error(
        ["kg", "predict", str(run_dir), "--head", "e0", "--relation", "right"], tmp_path, capsys, monkeypatch)


def head_scores(run_dir, tail, relation, norm):
    """Every head's TransE score as (?, relation, tail), {name: score}, from the run folder's files alone."""
    entities = [line.split("\t")[1] for line in (run_dir / "entities.tsv").read_text().splitlines()]
    relations = [line.split("\t")[1] for line in (run_dir / "relations.tsv").read_text().splitlines()]
    E, R = np.load(run_dir / "entity_embeddings.npy"), np.load(run_dir / "relation_embeddings.npy")
    scores = -np.linalg.norm(E + R[relations.index(relation)] - E[entities.index(tail)], ord=norm, axis=1)
    return dict(zip(entities, scores))


def test_transes_paper_norm_and_the_l2_distance_rank_as_the_files_say(tmp_path, capsys):
    data = write_grid(tmp_path / "grid")
    run_dir = tmp_path / "run"
    assert main(["kg", "train", "--data", str(data), "--out", str(run_dir), "--epochs", "10", *FLAGS,
                 "--norm", "2", "--entity-norm", "sphere"]) == 0
    entity = np.load(run_dir / "entity_embeddings.npy")
    np.testing.assert_allclose(np.linalg.norm(entity, axis=1), 1.0, rtol=1e-5)  # every row, read or not
    capsys.readouterr()
    assert main(["kg", "eval", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mrr"] == pytest.approx(brute_force_mrr(run_dir, data / "test.txt", 2))


def test_resume_gives_the_unbroken_run(tmp_path):
    data = write_grid(tmp_path / "grid")
    config = KgRunConfig(data=str(data), dim=8, batch=8, negatives=4, lr=0.01, margin=1.0, epochs=10, eval_every=5,
                         sampler="self-adv", sides="bernoulli")
    kg_run.compiled_steps.cache_clear()
    whole = kg_run.train_kg(config, tmp_path / "whole", progress=False)
    # Its advances of 25 steps (to each evaluation, its regular interval) ran as one scan: one program.
    steps = kg_run.compiled_steps(kg_run.family_of(config), kg_run.game_of(config), None)  # as KgJob asks
    assert steps._cache_size() == 1
    assert kg_run.train_kg(config, tmp_path / "parts", progress=False, stop_at_step=17) == {}
    resumed = kg_run.train_kg(config, tmp_path / "parts", resume=True, progress=False)
    for name in ("entity_embeddings.npy", "relation_embeddings.npy"):
        np.testing.assert_array_equal(np.load(tmp_path / "whole" / name), np.load(tmp_path / "parts" / name))
    assert resumed["test"] == whole["test"] and resumed["best_step"] == whole["best_step"]


def test_an_ace_run_resumed_or_extended_from_the_command_line_is_the_unbroken_run(tmp_path):
    """The generator's tables, its optimiser and its reward baseline travel in the checkpoint (its rate high
    enough that each changes the draws: the baseline shifted by 5 after the load fails this test): an ACE run stopped
    at step 7 and resumed by `kg train --out DIR --resume` (the saved settings, no other flag), and a finished
    2-epoch run extended by `--resume --epochs 4`, end with the tables of the unbroken 4-epoch run."""
    data = write_grid(tmp_path / "grid")
    flags = [*FLAGS, "--sampler", "ace", "--candidates", "8", "--eval-every", "2", "--lr", "0.1", "--gen-lr", "0.1"]
    assert main(["kg", "train", "--data", str(data), "--out", str(tmp_path / "whole"), "--epochs", "4", *flags]) == 0
    # Its last evaluation is its best: the tables compared below are those trained after the break.
    assert json.loads((tmp_path / "whole" / "metrics.json").read_text())["best_epoch"] == 4
    config = KgRunConfig(data=str(data), dim=8, batch=8, negatives=4, lr=0.1, margin=1.0, epochs=4, eval_every=2,
                         sampler="ace", candidates=8, gen_lr=0.1)
    assert kg_run.train_kg(config, tmp_path / "stopped", progress=False, stop_at_step=7) == {}
    assert main(["kg", "train", "--out", str(tmp_path / "stopped"), "--resume", "--quiet"]) == 0
    assert main(["kg", "train", "--data", str(data), "--out", str(tmp_path / "extended"), "--epochs", "2",
                 *flags]) == 0
    assert main(["kg", "train", "--out", str(tmp_path / "extended"), "--resume", "--epochs", "4", "--quiet"]) == 0
    for folder in ("stopped", "extended"):
        assert json.loads((tmp_path / folder / "config.json").read_text()) == json.loads(
            (tmp_path / "whole" / "config.json").read_text())
        for name in ("entity_embeddings.npy", "relation_embeddings.npy"):
            np.testing.assert_array_equal(np.load(tmp_path / folder / name), np.load(tmp_path / "whole" / name),
                                          err_msg=f"{folder}/{name}")


def test_the_l2_regulariser_from_the_command_line_shrinks_the_rows_it_reads(tmp_path):
    """--regulariser l2 reaches the step: DistMult (no norm constraint) trained the same 5 epochs from the same
    start ends with smaller tables under a weight of 1 than without (their norms about halve)."""
    data = write_grid(tmp_path / "grid")
    norms = {}
    for reg in ("none", "l2"):
        weight = ["--reg-weight", "1"] if reg == "l2" else []
        assert main(["kg", "train", "--data", str(data), "--out", str(tmp_path / reg), "--model", "distmult",
                     "--epochs", "5", *FLAGS, "--regulariser", reg, *weight]) == 0
        norms[reg] = [np.linalg.norm(np.load(tmp_path / reg / f"{name}_embeddings.npy"))
                      for name in ("entity", "relation")]
    assert all(shrunk < 0.75 * plain for shrunk, plain in zip(norms["l2"], norms["none"])), norms


def test_patience_stops_when_the_valid_mrr_stops_improving(tmp_path):
    # A learning rate too small to move any rank: every evaluation after the first is no better.
    data = write_grid(tmp_path / "grid")
    config = KgRunConfig(data=str(data), dim=8, batch=8, lr=1e-12, epochs=100, eval_every=5, patience=2)
    final = kg_run.train_kg(config, tmp_path / "run", progress=False)
    assert final["best_epoch"] == 5 and final["steps"] == 15 * 5  # 5 steps an epoch; stopped at epoch 15


def test_rotates_schedule_drops_the_rate_with_a_fresh_adam_and_resumes_as_one_run(tmp_path):
    """--lr-drop-epoch 4 (5 steps an epoch): steps 0-19 as without it; from step 20 a tenth of the rate and a fresh
    Adam, whose first step moves every coordinate it touches by exactly the new rate (m̂ / √v̂ = ±1; entities free,
    so no projection moves them again). A run stopped at the drop, or just past it, resumes as the unbroken one.
    With the rest of RotatE's code's TransE: its loss, self-adversarial weights summing to 1, subsampling."""
    data = write_grid(tmp_path / "grid")
    config = KgRunConfig(data=str(data), dim=8, batch=8, negatives=4, lr=0.01, epochs=8, eval_every=4,
                         sampler="self-adv", self_adv_temperature=0.5, loss="logistic", gamma=2.0,
                         average_negatives=True, subsampling=True, free_entities=True, init_range=0.5,
                         lr_drop_epoch=4)
    job, plain = kg_run.KgJob(config), kg_run.KgJob(KgRunConfig(**{**vars(config), "lr_drop_epoch": 0}))
    assert (job.drop_step, plain.drop_step) == (20, None)
    copy = functools.partial(jax.tree.map, lambda a: np.array(a, copy=True))  # before the steps donate the state
    state, _ = job.advance(job.place(job.initial_state()), 0, 20)
    same, _ = plain.advance(plain.place(plain.initial_state()), 0, 20)
    at_drop = copy(state.game.params)
    for name, table in copy(same.game.params).items():
        np.testing.assert_array_equal(at_drop[name], table, err_msg=name)
    state, _ = job.advance(state, 20, 1)
    assert int(state.game.opt_state.count) == 1
    assert float(state.game.opt_state.hyperparams["learning_rate"]) == pytest.approx(0.001)
    for name, table in copy(state.game.params).items():
        delta = np.abs(table - at_drop[name])
        assert delta.max() > 0, name
        np.testing.assert_allclose(delta[delta > 0], 0.001, rtol=1e-3, err_msg=name)
    kg_run.train_kg(config, tmp_path / "whole", progress=False)
    template = jax.device_get(kg_run.KgJob(config).template)
    whole = io.load_checkpoint(tmp_path / "whole" / "checkpoint.msgpack", template).game  # at step 40, the end
    for stop in (20, 21):
        parts = tmp_path / f"parts{stop}"
        assert kg_run.train_kg(config, parts, progress=False, stop_at_step=stop) == {}
        kg_run.train_kg(config, parts, resume=True, progress=False)
        resumed = io.load_checkpoint(parts / "checkpoint.msgpack", template).game
        assert int(resumed.step) == 40 and int(resumed.opt_state.count) == 20  # one drop, at step 20
        for a, b in zip(jax.tree.leaves((whole.params, whole.opt_state)),
                        jax.tree.leaves((resumed.params, resumed.opt_state))):
            np.testing.assert_array_equal(a, b)


def test_the_step_plan_gives_each_triple_its_subsampling_weight_and_padding_none(tmp_path):
    from ace_jax.families import kg

    folder = tmp_path / "star"
    folder.mkdir()
    train = ["a r b", "a r c", "a r d", "e r b", "b s c", "c s d", "d s b"]  # uneven (h, r) and (r, t) counts
    for name, part in (("train", train), ("valid", ["a s e"]), ("test", ["e s a"])):
        (folder / f"{name}.txt").write_text("".join(line.replace(" ", "\t") + "\n" for line in part))
    setup = kg_run.build(KgRunConfig(data=str(folder), batch=3, subsampling=True))
    expected = kg.subsampling_weights(setup.graph.train, len(setup.graph.entities), len(setup.graph.relations))
    assert len(np.unique(expected)) > 1
    by_triple = {tuple(t): w for t, w in zip(setup.graph.train.tolist(), expected)}
    triples, mask, weights = kg_run.step_plan(setup, 0, 6)  # two epochs of 3 steps, the last of each padded
    for t, m, w in zip(triples.reshape(-1, 3).tolist(), mask.reshape(-1), weights.reshape(-1)):
        assert w == (by_triple[tuple(t)] if m else 0.0)
    assert mask.sum() == 14 and not mask[2, 1:].any()
    plain = kg_run.build(KgRunConfig(data=str(folder), batch=3))
    np.testing.assert_array_equal(kg_run.step_plan(plain, 0, 6)[2], mask.astype(np.float32))


def test_free_entities_and_an_init_range_start_every_table_uniform_and_unprojected(tmp_path):
    data = write_grid(tmp_path / "grid")
    free = KgRunConfig(data=str(data), dim=8, init_range=1.0, free_entities=True)
    params = kg_run.initial_state(kg_run.build(free)).game.params
    for name in ("entity", "relation"):  # uniform on [−1, 1]: relations not normalised, entities not projected
        table = np.asarray(params[name])
        assert np.abs(table).max() <= 1.0 and np.abs(table).max() > 0.8, name
        assert np.linalg.norm(table, axis=1).max() > 1.0, name
    kept = kg_run.initial_state(kg_run.build(KgRunConfig(**{**vars(free), "free_entities": False}))).game.params
    assert np.linalg.norm(kept["entity"], axis=1).max() <= 1.0 + 1e-6  # TransE's unit ball, as by default
    np.testing.assert_array_equal(kept["relation"], params["relation"])


@pytest.mark.parametrize("case", ["bad-line", "bad-flag", "mask-without-draws", "pool-on-own-tables",
                                  "relation-beta-not-learned", "penalty-without-learning", "free-distmult",
                                  "init-range-rotate", "init-range-warm-start", "drop-past-the-end", "sphere-transd",
                                  "sphere-free", "no-run"])
def test_bad_input_is_one_error_line(tmp_path, capsys, monkeypatch, case):
    data = write_grid(tmp_path / "grid")
    if case == "bad-line":
        (data / "valid.txt").write_text("e0\tright\te1\ne1\tright\n")
        args = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS]
        expected = "valid.txt:2: expected head<TAB>relation<TAB>tail"
    elif case == "bad-flag":
        args = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS, "--negatives", "0"]
        expected = "--negatives must be at least 1"
    elif case == "mask-without-draws":
        args = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS, "--sampler", "ace", "--generator", "exact",
                "--mask-known"]
        expected = "--mask-known masks the draws of a generator"
    elif case == "pool-on-own-tables":
        args = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS, "--sampler", "self-adv-pool",
                "--gen-tables", "own"]
        expected = "--gen-tables must be discriminator with --sampler self-adv-pool"
    elif case == "relation-beta-not-learned":
        args = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS, "--sampler", "self-adv-pool",
                "--gen-beta", "relation"]
        expected = "--gen-beta relation learns β per relation"
    elif case == "penalty-without-learning":
        args = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS, "--sampler", "self-adv-pool",
                "--false-negative-penalty", "0"]
        expected = "--false-negative-penalty is a learned generator's reward"
    elif case == "free-distmult":
        args = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS, "--model", "distmult", "--free-entities"]
        expected = "--free-entities frees TransE's and TransD's entities"
    elif case == "init-range-rotate":
        args = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS, "--model", "rotate", "--init-range", "1"]
        expected = "--init-range sets real tables"
    elif case == "init-range-warm-start":
        args = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS, "--init-range", "1", "--init", "somerun"]
        expected = "--init-range draws the starting tables: not with --init"
    elif case == "drop-past-the-end":
        args = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS, "--epochs", "10", "--lr-drop-epoch", "10"]
        expected = "--lr-drop-epoch must lie in [0, --epochs 10)"
    elif case in ("sphere-transd", "sphere-free"):
        more = ["--model", "transd"] if case == "sphere-transd" else ["--free-entities"]
        args = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS, "--entity-norm", "sphere", *more]
        expected = "--entity-norm sphere keeps TransE's entities at norm 1"
    else:
        args = ["kg", "eval", str(tmp_path / "nothing")]
        expected = "error"
    assert expected in one_line_error(args, tmp_path, capsys, monkeypatch)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags", [
    ["--sampler", "kbgan", "--gen-model", "complex", "--reward", "score"],
    ["--sampler", "ace", "--generator", "exact", "--gen-tables", "discriminator", "--model", "rotate", "--loss",
     "logistic", "--gamma", "2", "--gen-beta", "relation"]],
    ids=["kbgan-own-complex-score", "ace-tied-exact-rotate-relation-beta"])  # the pool form: tests/test_kg_family.py
def test_generator_runs_record_their_hardness(tmp_path, flags):
    data = write_grid(tmp_path / "grid")
    run_dir = tmp_path / "run"
    assert main(["kg", "train", "--data", str(data), "--out", str(run_dir), "--epochs", "10", *FLAGS, *flags,
                 "--eval-every", "5"]) == 0
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    assert len(evals) == 2 and all(np.isfinite(r["hardness"]["loss_ratio"]) for r in evals)
    assert 0 < evals[-1]["hardness"]["gen_entropy"] <= np.log(20 if "kbgan" in flags else 25) + 1e-4
    assert any("gen_entropy" in r for r in records if r["kind"] == "train")
    final = json.loads((run_dir / "metrics.json").read_text())
    assert np.isfinite(final["test"]["mrr"])
    assert kg_run.current_hardness(run_dir, evals[-1]["hardness"]) is evals[-1]["hardness"]  # today's rule: kept
    if "relation" in flags:  # a learned β per relation ("right", "down") and corrupted side, each moved from 1
        job = kg_run.KgJob(run.load_config(run_dir, "kg", KgRunConfig.from_json, field="run"))
        state = io.load_checkpoint(run_dir / "checkpoint.msgpack", jax.device_get(job.template))
        assert state.game.gen_params["log_beta"].shape == (2, 2) and np.all(state.game.gen_params["log_beta"] != 0)
    if "kbgan" in flags:  # (once: the suite's time) an older rule's record is measured again from the checkpoint
        old_rule = {k: v for k, v in evals[-1]["hardness"].items() if not k.endswith("_false")}
        assert kg_run.current_hardness(run_dir, old_rule) == pytest.approx(evals[-1]["hardness"])
        assert (run_dir / "hardness-remeasured.json").exists()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["reward"] == ("score" if "score" in flags else "loss")
    # kbgan's form by default (no --generator, --gen-tables given); ace's as given
    assert (config["generator"], config["gen_tables"]) == (("kbgan", "own") if "kbgan" in flags
                                                           else ("exact", "discriminator"))


def test_each_generator_sampler_has_its_own_default_form_and_a_given_form_wins():
    assert (KgRunConfig(sampler="ace").generator, KgRunConfig(sampler="ace").gen_tables) == ("pool", "discriminator")
    assert (KgRunConfig(sampler="kbgan").generator, KgRunConfig(sampler="kbgan").gen_tables) == ("kbgan", "own")
    given = KgRunConfig(sampler="ace", generator="kbgan", gen_tables="own")
    assert (given.generator, given.gen_tables) == ("kbgan", "own")
    assert KgRunConfig.from_json(given.to_json()) == given


def test_self_adv_pool_draws_from_alpha_times_the_discriminators_scores_and_never_learns(tmp_path):
    """self-adv-pool is ace's pool form with β = α fixed, no bias, λ as given, and no REINFORCE: through the CLI the
    generator's parameters end as they began, and its hardness is recorded like a learned generator's."""
    config = KgRunConfig(sampler="self-adv-pool", self_adv_temperature=3.0, lam=0.25)
    assert (config.generator, config.gen_tables, config.num_candidates) == ("pool", "discriminator", 1024)
    parts = kg_run.game_of(config)
    assert (parts.lam, parts.weighting, parts.learn_generator) == (0.25, None, False)
    assert kg_run.game_of(KgRunConfig(sampler="ace")).learn_generator
    data = write_grid(tmp_path / "grid")
    run_dir = tmp_path / "run"
    assert main(["kg", "train", "--data", str(data), "--out", str(run_dir), "--epochs", "10", *FLAGS,
                 "--sampler", "self-adv-pool", "--self-adv-temperature", "3", "--candidates", "16",
                 "--eval-every", "5"]) == 0
    job = kg_run.KgJob(run.load_config(run_dir, "kg", KgRunConfig.from_json, field="run"))
    state = io.load_checkpoint(run_dir / "checkpoint.msgpack", jax.device_get(job.template))
    np.testing.assert_allclose(np.exp(state.game.gen_params["log_beta"]), 3.0, rtol=1e-6)
    np.testing.assert_array_equal(state.game.gen_params["bias"], 0.0)
    assert int(state.game.step) == 50  # 5 steps an epoch
    hardness = [json.loads(line)["hardness"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
                if json.loads(line)["kind"] == "eval"]
    assert len(hardness) == 2 and all(np.isfinite(h["loss_ratio"]) and 0 < h["gen_entropy"] <= np.log(16) + 1e-4
                                      for h in hardness)


def test_four_devices_and_row_shards_give_the_one_device_tables(tmp_path):
    """The uniform sampler's step on 4 virtual CPU devices, the triples split over 2 and the entity table by rows
    over 2 (4:2), or the table alone over 4 (4:4; 25 entities pad unevenly), gives the tables of 1 device; so
    does SGD with subsampling weights, averaged negatives and the rate dropped after 10 of the 12 steps. (The
    triples alone over 4, 4:1, is test_parallel's word mesh: one compile less here.)"""
    import subprocess
    import sys
    from pathlib import Path

    data = write_grid(tmp_path / "grid")
    worker = Path(__file__).with_name("kg_parallel_worker.py")
    meshes = ["1:1", "4:2", "4:4"]
    done = subprocess.run([sys.executable, str(worker), str(data), str(tmp_path / "t.npz"), *meshes],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    tables = np.load(tmp_path / "t.npz")
    for prefix in ("", "rotate/"):
        for mesh in meshes[1:]:
            for name in ("entity", "relation", "loss"):
                np.testing.assert_allclose(tables[f"{prefix}{mesh}/{name}"], tables[f"{prefix}1:1/{name}"], rtol=1e-5,
                                           atol=1e-6, err_msg=f"{prefix}{mesh} {name}")
    assert not np.allclose(tables["rotate/1:1/entity"], tables["1:1/entity"])


def test_a_pretrained_complex_generator_starts_from_all_four_tables(tmp_path):
    """KBGAN's pretraining with its ComplEx generator: --gen-init takes the real and imaginary tables of a finished
    ComplEx run, and a run started from them trains."""
    data = write_grid(tmp_path / "grid")
    pretrained = tmp_path / "complex"
    kg_run.train_kg(KgRunConfig(data=str(data), model="complex", dim=4, batch=8, epochs=2, eval_every=2),
                    pretrained, progress=False)
    config = KgRunConfig(data=str(data), dim=8, batch=8, negatives=4, margin=1.0, epochs=2, eval_every=2,
                         sampler="kbgan", gen_model="complex", gen_dim=4, gen_init=str(pretrained))
    state = kg_run.initial_state(kg_run.build(config)).game
    assert sorted(state.gen_params) == ["entity", "entity_im", "relation", "relation_im"]
    for name, table in state.gen_params.items():
        np.testing.assert_array_equal(table, np.load(pretrained / f"{name}_embeddings.npy"), err_msg=name)
    final = kg_run.train_kg(config, tmp_path / "run", progress=False)
    assert final["best_epoch"] == 2 and 0 < final["test"]["mrr"] <= 1


def test_warm_starts_take_a_finished_runs_tables_and_refuse_another_model(tmp_path, capsys, monkeypatch):
    data = write_grid(tmp_path / "grid")
    pretrained = tmp_path / "distmult"
    kg_run.train_kg(KgRunConfig(data=str(data), model="distmult", dim=8, batch=8, epochs=5, eval_every=5),
                    pretrained, progress=False)
    tables = {name: np.load(pretrained / f"{name}_embeddings.npy") for name in ("entity", "relation")}
    config = KgRunConfig(data=str(data), model="distmult", dim=8, sampler="kbgan", gen_dim=8, init=str(pretrained),
                         gen_init=str(pretrained))
    state = kg_run.initial_state(kg_run.build(config)).game
    for name, table in tables.items():  # both players start from the pretrained tables (DistMult has no constraint)
        np.testing.assert_array_equal(state.params[name], table)
        np.testing.assert_array_equal(state.gen_params[name], table)
    base = ["kg", "train", "--data", str(data), "--out", "out", *FLAGS]
    assert "--init" in one_line_error([*base, "--init", str(pretrained)], tmp_path, capsys, monkeypatch)  # TransE
    assert "--gen-init" in one_line_error([*base, "--sampler", "kbgan", "--gen-dim", "4", "--gen-init",
                                           str(pretrained)], tmp_path, capsys, monkeypatch)
    assert "--gen-init" in one_line_error([*base, "--gen-init", str(pretrained)], tmp_path, capsys, monkeypatch)
    assert not (tmp_path / "out").exists()


def test_the_hardness_probes_count_every_known_triple_as_no_negative(tmp_path):
    """probe_scores puts −inf exactly where an entity makes a known triple of any split (several per row here)."""
    import jax
    import jax.numpy as jnp

    from ace_jax.families import kg

    folder = tmp_path / "star"
    folder.mkdir()
    for name, part in (("train", ["a r b", "a r c", "a r d", "e r b", "b s c"]), ("valid", ["a r e"]),
                       ("test", ["e r c"])):
        (folder / f"{name}.txt").write_text("".join(line.replace(" ", "\t") + "\n" for line in part))
    setup = kg_run.build(KgRunConfig(data=str(folder), dim=4))
    state, graph = kg_run.initial_state(setup).game, setup.graph
    known = {tuple(t) for t in graph.all_triples().tolist()}
    for side in ("head", "tail"):
        triples = graph.train
        batch = kg.make_batch(triples, jnp.zeros(len(graph.relations)), setup.known, jax.random.key(0))
        batch = batch.replace(corrupt_head=jnp.full(len(triples), side == "head"))
        answers = setup.index.answers(triples[:, 2] if side == "head" else triples[:, 0], triples[:, 1], side)
        scores, *_ = kg_run.probe_scores(state, batch, answers, setup.noise, jax.random.key(1),
                                         family=kg_run.family_of(setup.config), parts=kg_run.game_of(setup.config),
                                         side=side)
        expected = [[((e, r, t) if side == "head" else (h, r, e)) in known for e in range(len(graph.entities))]
                    for h, r, t in triples.tolist()]
        np.testing.assert_array_equal(np.isneginf(np.asarray(scores)), expected, err_msg=side)
        assert np.asarray(expected).sum() > len(triples)  # rows with several known triples
