"""A fused CPU kernel for the skip-gram SGD update (csrc/sgns.cc), built with the system's C++ compiler
on first use and registered with XLA through the FFI; where it cannot be built, the XLA path runs."""

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp

SOURCE = Path(__file__).with_name("csrc") / "sgns.cc"
TARGET = "ace_jax_sgns_update"
FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-std=c++17", "-shared", "-fPIC", "-w")
_lock = threading.Lock()


def cache_dir() -> Path:
    """$ACE_JAX_KERNEL_CACHE, else ~/.cache/ace_jax/kernels (XDG_CACHE_HOME respected)."""
    if os.environ.get("ACE_JAX_KERNEL_CACHE"):
        return Path(os.environ["ACE_JAX_KERNEL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ace_jax" / "kernels"


def _cpu_signature() -> str:
    """-march=native code runs only where it was built: the cache key names the processor's features."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def build(compiler: str | None = None) -> Path:
    """Compiles the kernel once per source, compiler, jaxlib and processor; returns the shared library."""
    compiler = compiler or os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or "c++"
    key = hashlib.sha256("\0".join([SOURCE.read_text(encoding="utf-8"), compiler, *FLAGS, jax.__version__,
                                    platform.machine(), _cpu_signature()]).encode()).hexdigest()[:16]
    library = cache_dir() / f"sgns-{key}.so"
    if library.exists():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as tmp:  # built aside, then renamed: never half-written
        partial = Path(tmp) / library.name
        subprocess.run([compiler, *FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", str(partial)],
                       check=True, capture_output=True, text=True)
        os.replace(partial, library)
    return library


@functools.cache
def available() -> bool:
    """Whether the kernel is built and registered; False (with one warning) where no compiler can build it.
    ACE_JAX_CPU_KERNEL=0 turns it off."""
    if os.environ.get("ACE_JAX_CPU_KERNEL", "1") == "0":
        return False
    with _lock:
        try:
            library = ctypes.cdll.LoadLibrary(str(build()))
        except (OSError, subprocess.CalledProcessError) as error:
            built = isinstance(error, subprocess.CalledProcessError)
            detail = error.stderr.strip().splitlines()[-1:] if built else [str(error)]
            warnings.warn(f"the fused CPU kernel could not be built ({' '.join(detail)}); using the XLA path",
                          stacklevel=2)
            return False
        jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(library.AceSgnsUpdate), platform="cpu")
    return True


def sgns_update(in_table: jax.Array, out_table: jax.Array, queries: jax.Array, candidates: jax.Array,
                weights: jax.Array, learning_rate: jax.Array, row_clip: float | jax.Array = 0.0, *, threads: int = 64):
    """One SGD step of the logistic (negative-sampling) loss, fused: (in, out, logits, loss).

    Args:
      in_table: [V_in, d] float32 query rows; out_table: [V_out, d] float32 candidate rows. Both are
        updated in place when the caller donates them.
      queries: [N, M] int32, M query rows per window (−1 padding), each scored on its own.
      candidates: [N, C] int32, candidate 0 the positive, the rest negatives (−1 padding).
      weights: [N, M, C] float32, each term's weight (0 drops it). A query row whose weights are all 0
        is skipped: its rows are not read, its logits are 0.
      learning_rate: [] float32.
      row_clip: [] float32, the largest L2 norm of a row's gradient summed over the step (sparse_optim.clip_rows);
        0: no clip.
      threads: at most this many threads of XLA's intra-op pool share the step.
    Returns the updated tables, logits [N, M, C] taken before the update, and Σ weight · term, where the
    term is −log σ(s) for the positive and −log σ(−s) for a negative (Mikolov et al. 2013, eq. 4).
    Gradients are taken at the tables as they were (a synchronous step) and repeated rows sum, so this
    equals gather, value_and_grad and scatter-add in XLA, whatever the number of threads.
    """
    n, m = queries.shape
    c = candidates.shape[1]
    call = jax.ffi.ffi_call(
        TARGET,
        (jax.ShapeDtypeStruct(in_table.shape, jnp.float32), jax.ShapeDtypeStruct(out_table.shape, jnp.float32),
         jax.ShapeDtypeStruct((n, m, c), jnp.float32), jax.ShapeDtypeStruct((), jnp.float32)),
        input_output_aliases={0: 0, 1: 1},
    )
    return call(in_table, out_table, queries.astype(jnp.int32), candidates.astype(jnp.int32),
                weights.astype(jnp.float32), jnp.asarray(learning_rate, jnp.float32),
                jnp.asarray(row_clip, jnp.float32), threads=threads)
