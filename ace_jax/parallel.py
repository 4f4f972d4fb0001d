"""Many devices, many hosts: one ("data", "model") mesh, and the same step partitioned by XLA.

The batch is split over "data"; the embedding tables are replicated, or split by rows over "model"
when they do not fit one device. Row updates are gathered to every device before the scatter-add,
so a step moves only the touched rows between devices, never a whole table.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from ace_jax.errors import SettingError


def request_cpu_devices(count: int) -> None:
    """Lets the CPU backend show `count` devices (tests, or many-device runs on one CPU). Call before
    JAX starts a backend. XLA runs each CPU device's part of a step on a thread of one pool, sized by
    the cores, and a collective holds its thread until every device arrives. With steps dispatched
    ahead, the parts of two steps can hold the whole pool and wait for each other: measured here, a pool
    of `count` (or `count` + 1) threads hangs within a few hundred steps, one of 2·count did not. So the
    pool is widened to 2·count (NPROC is the knob XLA's CPU client reads)."""
    jax.config.update("jax_num_cpu_devices", count)
    if count > 1:
        os.environ["NPROC"] = str(max(2 * count, os.cpu_count() or 1, int(os.environ.get("NPROC", "0") or 0)))


def initialize_distributed(coordinator: str, num_processes: int, process_id: int) -> None:
    """Joins a multi-host run; every process runs the same command with its own process_id."""
    if not 0 <= process_id < num_processes:
        raise SettingError("process_id", process_id,
                           "{name} must lie in [0, " + str(num_processes) + ") (--num-processes), not {value}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU hosts; GPUs and TPUs use their own
    try:
        jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
    except (RuntimeError, ValueError) as error:  # a malformed address, or no coordinator there
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SettingError("coordinator", coordinator, "cannot join the run at {name} {value}: " + message) from None


def make_mesh(devices: int | None = None, row_shards: int = 1) -> Mesh:
    """A (data, model) mesh over the first `devices` devices (all by default, across hosts)."""
    available = jax.devices()
    devices = len(available) if devices is None else devices
    if not 1 <= devices <= len(available):
        raise SettingError("devices", devices, "{name} {value}: only " + str(len(available)) + " are available")
    if row_shards < 1 or devices % row_shards:
        raise SettingError("row_shards", row_shards,
                           "{name} {value} must divide the number of devices (" + str(devices) + ")")
    grid = np.asarray(available[:devices]).reshape(devices // row_shards, row_shards)
    return Mesh(grid, ("data", "model"), axis_types=(AxisType.Auto, AxisType.Auto))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def pad_rows(table: jax.Array, multiple: int) -> jax.Array:
    """Zero rows up to a multiple of `multiple`, so a table splits evenly over the row shards.
    The padding is never gathered (every id is below the real size) and keeps zero gradients."""
    extra = -table.shape[0] % multiple
    return jnp.pad(table, ((0, extra), (0, 0))) if extra else table


def map_tables(fn, state):
    """Applies fn to the discriminator's tables and to the optimiser state shaped like them (per-row
    accumulators); the other leaves of params and opt_state go through `fn(leaf, False)`."""
    table_shapes = {jnp.shape(leaf) for leaf in jax.tree_util.tree_leaves(state.params) if jnp.ndim(leaf) == 2}

    def one(leaf):
        return fn(leaf, jnp.shape(leaf) in table_shapes)

    return state.replace(params=jax.tree_util.tree_map(one, state.params),
                         opt_state=jax.tree_util.tree_map(one, state.opt_state))


def pad_tables(state, multiple: int):
    return map_tables(lambda leaf, is_table: pad_rows(leaf, multiple) if is_table else leaf, state)


def unpad_tables(state, template):
    """Cuts the tables back to the template's rows (checkpoints and vectors never hold padding)."""
    return jax.tree_util.tree_map(lambda leaf, like: leaf[tuple(slice(0, n) for n in np.shape(like))], state, template)


def state_shardings(state, mesh: Mesh):
    """Discriminator tables and their optimiser state split by rows over "model"; everything else replicated."""
    rows = NamedSharding(mesh, P("model", None))
    state = map_tables(lambda leaf, is_table: rows if is_table else replicated(mesh), state)
    return state.replace(
        **{name: jax.tree_util.tree_map(lambda _: replicated(mesh), getattr(state, name))
           for name in ("step", "key", "gen_params", "gen_opt_state", "baseline", "pairs")},
    )


def place(tree, shardings):
    """Host values -> global arrays. Every process holds the same host values (same seed), and each
    fills only its own devices' shards, which is what a multi-host run needs. `shardings` is a tree
    like `tree`, or one sharding for every leaf."""
    def put(value, sharding):
        value = np.asarray(value)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    if isinstance(shardings, jax.sharding.Sharding):
        return jax.tree_util.tree_map(lambda value: put(value, shardings), tree)
    return jax.tree_util.tree_map(put, tree, shardings)


def fetch(tree):
    """Global arrays -> host numpy, wherever their shards live (a collective when some are remote)."""
    def get(value):
        if isinstance(value, jax.Array) and not value.is_fully_addressable and not value.is_fully_replicated:
            return np.asarray(multihost_utils.process_allgather(value, tiled=True))
        return np.asarray(value)

    return jax.tree_util.tree_map(get, tree)
