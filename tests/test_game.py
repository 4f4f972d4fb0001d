"""The game with a family it has never seen: a toy bilinear scorer over (x, y) pairs, written in this file the
way README's "Adding a family" shows, trains with every sampler and each update path, untouched game code."""

import dataclasses
import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ace_jax import game, generator, losses, noise, reinforce, sparse_optim, updates

NUM_X, NUM_Y, DIM, GROUPS = 12, 12, 4, 3


class Pairs(flax.struct.PyTreeNode):
    queries: jax.Array  # [B] int32, the x of each pair
    positives: jax.Array  # [B] int32, its observed y


@dataclasses.dataclass(frozen=True)
class Bilinear:
    """s(x, y) = Σ_i a_x,i w_i b_y,i (a diagonal bilinear form, as DistMult's): one positive per query."""

    def init(self, key, dim=DIM):
        k_a, k_b = jax.random.split(key)
        return {"a": 0.1 * jax.random.normal(k_a, (NUM_X, dim)), "b": 0.1 * jax.random.normal(k_b, (NUM_Y, dim)),
                "w": jnp.ones((1, dim))}

    def layout(self, batch):
        real = jnp.ones((batch.queries.shape[0], 1), bool)  # [B, 1]: one pair per query, one slot
        return game.Layout(pairs=real, slots=real)

    def candidates(self, batch, negatives):  # [B, 1, 1 + K]: the positive first
        return jnp.concatenate([batch.positives[:, None, None], negatives], axis=-1)

    def rows(self, batch, negatives):
        return {"a": batch.queries, "b": self.candidates(batch, negatives), "w": jnp.zeros_like(batch.queries)}

    def score(self, rows, batch, negatives):
        return jnp.einsum("bd,bd,bpkd->bpk", rows["a"], rows["w"], rows["b"])  # [B, 1, 1 + K]

    def is_false(self, batch, negatives):
        return negatives == batch.positives[:, None, None]

    def generator_queries(self, batch):
        return batch.queries


@dataclasses.dataclass(frozen=True)
class ReadableBilinear(Bilinear):
    """With the optional generator_rows: generator.Tied reads the discriminator's rows, s(x, ·) = (a_x ∘ w) · b."""

    def generator_rows(self, params, queries):
        return params["a"][queries] * params["w"], params["b"]


def planted_batch(key, size=24) -> Pairs:
    """x in group x mod 3 pairs with a y of the same group."""
    k_x, k_y = jax.random.split(key)
    x = jax.random.randint(k_x, (size,), 0, NUM_X)
    y = GROUPS * jax.random.randint(k_y, (size,), 0, NUM_Y // GROUPS) + x % GROUPS
    return Pairs(x, y)


def margin(params) -> float:
    """Mean score of same-group (x, y) minus mean score of different-group pairs."""
    scores = np.asarray(jnp.einsum("xd,d,yd->xy", params["a"], params["w"][0], params["b"]))
    same = (np.arange(NUM_X)[:, None] % GROUPS) == (np.arange(NUM_Y)[None, :] % GROUPS)
    return float(scores[same].mean() - scores[~same].mean())


GENERATORS = {"exact": generator.Exact(), "pool": generator.Pool(8), "kbgan": generator.Kbgan(6),
              "tied": generator.Tied(), "tied-pool": generator.Tied(8), "tied-kbgan": generator.Tied(6, per_query=True)}
SAMPLERS = {  # every sampler of the game, as parts
    "ns": game.Game(negatives=3),
    "nce": game.Game(negatives=3, nce=True),
    "self-adv": game.Game(negatives=3, weighting=losses.SelfAdversarial(1.0)),
    "hinge": game.Game(negatives=3, loss=losses.Hinge(1.0)),
    "adv": game.Game(negatives=3, generator=GENERATORS["exact"], lam=0.0),
    "ace": game.Game(negatives=3, generator=GENERATORS["exact"], lam=0.5),
    "ace-pool": game.Game(negatives=3, generator=GENERATORS["pool"], lam=0.5, entropy_target=1.5),
    "ace-kbgan": game.Game(negatives=3, generator=GENERATORS["kbgan"], lam=0.5, entropy_target=1.5),
    "ace-no-baseline": game.Game(negatives=3, generator=GENERATORS["exact"], lam=0.5, baseline=reinforce.NoBaseline()),
    "ace-self-critical": game.Game(negatives=3, generator=GENERATORS["exact"], lam=0.5,
                                   baseline=reinforce.SelfCritical()),
    "ace-off-policy": game.Game(negatives=3, generator=GENERATORS["exact"], lam=0.5, off_policy=True),
    "ace-tied": game.Game(negatives=3, generator=GENERATORS["tied"], lam=0.5),
    "ace-tied-pool": game.Game(negatives=3, generator=GENERATORS["tied-pool"], lam=0.5, entropy_target=1.5),
    "ace-tied-kbgan": game.Game(negatives=3, generator=GENERATORS["tied-kbgan"], lam=0.5, entropy_target=1.5),
}
UPDATES = {"sparse-sgd": (updates.sparse, sparse_optim.sgd(0.05)), "dense-adam": (updates.dense, optax.adam(0.05))}


def train(sampler: str, update: str, steps: int = 150):
    parts, (update_fn, tx) = SAMPLERS[sampler], UPDATES[update]
    family = ReadableBilinear()
    gen_params = gen_tx = None
    if isinstance(parts.generator, generator.Tied):
        gen_params, gen_tx = generator.tied_init(jnp.full((NUM_Y,), -np.log(NUM_Y)), temperature=2.0), optax.adam(0.05)
    elif parts.generator is not None:
        gen_params = generator.init(jax.random.key(1), NUM_X, NUM_Y, DIM, bias=jnp.full((NUM_Y,), -np.log(NUM_Y)))
        gen_tx = sparse_optim.adam(0.05) if isinstance(parts.generator, generator.Pool) else optax.adam(0.05)
    state = game.create_state(jax.random.key(0), family.init(jax.random.key(2)), tx, gen_params, gen_tx,
                              sparse_updates=update_fn is updates.sparse)
    before = margin(state.params)
    step = jax.jit(functools.partial(game.step, family=family, game=parts, update=update_fn), donate_argnums=0)
    uniform = noise.uniform(NUM_Y)
    gen_before = jax.tree.map(np.array, state.gen_params)
    for i in range(steps):
        state, metrics = step(state, planted_batch(jax.random.key(100 + i)), uniform)
    return before, state, metrics, gen_before


# Each generator's form with both update paths (its draws are rows the sparse update must find); the losses and
# the REINFORCE variants, which change no rows, with one path each.
BOTH = ("ns", "ace", "ace-pool", "ace-kbgan", "ace-tied", "ace-tied-pool", "ace-tied-kbgan")
ONE = {"nce": "sparse-sgd", "self-adv": "dense-adam", "hinge": "sparse-sgd", "adv": "dense-adam",
       "ace-no-baseline": "sparse-sgd", "ace-self-critical": "dense-adam", "ace-off-policy": "sparse-sgd"}
CASES = [(sampler, update) for sampler in BOTH for update in sorted(UPDATES)] + sorted(ONE.items())


def test_the_cases_cover_every_sampler_and_update():
    assert {sampler for sampler, _ in CASES} == set(SAMPLERS) and {update for _, update in CASES} == set(UPDATES)


@pytest.mark.parametrize("sampler,update", CASES)
def test_a_new_family_learns_with_every_sampler(sampler, update):
    before, state, metrics, gen_before = train(sampler, update)
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    assert abs(before) < 0.1 and margin(state.params) > 1.0, (before, margin(state.params))
    if SAMPLERS[sampler].generator is not None:
        assert 0 < float(metrics["gen_entropy"]) and "reward" in metrics
        assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(gen_before),
                                                             jax.tree.leaves(state.gen_params)))


def test_to_slots_averages_a_shared_slot_over_its_real_pairs():
    values = jnp.array([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])  # [B = 2, P = 3, 1]
    pairs = jnp.array([[True, True, False], [True, True, True]])
    shared = game.Layout(pairs=pairs, slots=pairs.any(-1, keepdims=True))
    np.testing.assert_allclose(game.to_slots(values, shared), [[[2.0]], [[4.0]]])
    own = game.Layout(pairs=pairs, slots=pairs)
    np.testing.assert_array_equal(game.to_slots(values, own), values)


def test_baselines_by_hand():
    rewards, mask = jnp.array([1.0, 3.0, 100.0]), jnp.array([True, True, False])
    average = reinforce.MovingAverage(0.9)
    state = average.update(average.init(), rewards, mask)
    np.testing.assert_allclose(state, 0.1 * 2.0)  # (1 − 0.9) · mean of the masked-in rewards
    np.testing.assert_allclose(average.update(state, rewards, jnp.zeros(3, bool)), state)  # nothing in: unchanged
    np.testing.assert_allclose(average.value(state, None), state)
    assert float(reinforce.NoBaseline().value(state, None)) == 0.0
    assert reinforce.SelfCritical().value(state, lambda: jnp.array([7.0])) == 7.0
    assert reinforce.SelfCritical().update(state, rewards, mask) == state


def test_the_mixture_draws_a_fraction_one_minus_lambda_from_the_generator():
    family, parts = Bilinear(), dataclasses.replace(SAMPLERS["ace"], lam=0.25, negatives=8)
    state = game.create_state(jax.random.key(0), family.init(jax.random.key(2)), sparse_optim.sgd(0.1),
                              generator.init(jax.random.key(1), NUM_X, NUM_Y, DIM), optax.adam(0.01))
    batch = planted_batch(jax.random.key(3), size=500)
    keys = jax.random.split(jax.random.key(4), 4)
    _, from_gen, choices, proposal = game.mix_negatives(state, batch, noise.uniform(NUM_Y), family.layout(batch), keys,
                                                        family, parts)
    assert from_gen.shape == (500, 1, 8) and proposal.logits.shape == (500, NUM_Y)
    assert abs(float(from_gen.mean()) - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 4000)
