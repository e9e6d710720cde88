"""Where the lanes run: groups of lanes per device and program (``block_lanes``), and the
batched program run over them (``solve_groups``): threads on the CPU, every device through
``shard_map``, the gathering of results across processes. The one place that knows the
platform."""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .. import _precision
from ..fit import Prepared
from ..inference import Inference
from ..problem import Problem, RawFit, batched_solve, compiled_solve
from ..xla_options import batch_options
from .replicates import take

#: lanes per device and program, (at most this many, holding at most this many data elements):
#: on the CPU a block's data should stay in cache (measured: logistic n=1000 fastest at 128
#: lanes, Gaussian n=100 at 1024)
BLOCK_CPU = (1024, 2**20)
BLOCK_ACCELERATOR = (4096, 2**23)
#: on the CPU, groups of lanes run concurrently, this many per core: one program's many
#: small kernels and its loop-condition reads leave cores idle that another group fills
THREADS_PER_CORE = 2


def solve_groups(
    problem: Problem, u0: np.ndarray, prep: Prepared, data, group: int, max_iter: int
) -> tuple[RawFit, Inference]:
    """The batched solve and inference, ``group`` lanes at a time (each device always runs
    the same number of lanes, so a fit's result does not depend on how the lanes were
    grouped), each lane stopping after at most ``max_iter`` iterations (an argument of the
    compiled program); the results as host arrays.

    On the CPU the groups run ``concurrent_groups()`` at a time, each from its own thread;
    elsewhere every group is dispatched before any result is awaited."""
    with _precision.context(prep.dtype):
        fn, mesh = _compiled_sharded(problem, jax.device_count())
    split = None if mesh is None else NamedSharding(mesh, P("replicate"))
    iterations = np.int32(max_iter)

    def dispatch(start):
        part = slice(start, start + group)
        with _precision.context(prep.dtype):  # a thread-local switch: entered in each thread
            u_part = np.asarray(u0[part], prep.dtype)
            # cast on the host: an eager cast on the device would dispatch a primitive per group
            data_part = jax.tree_util.tree_map(lambda a: host_cast(a, prep.dtype), take(data, part))
            if mesh is None:
                return fn(jax.device_put(u_part), prep.fixed_leaves, jax.device_put(data_part), iterations)
            data_dev = jax.tree_util.tree_map(lambda a: global_array(a, split), data_part)
            return fn(global_array(u_part, split), prep.fixed_leaves, data_dev, iterations)

    def to_host(out):
        return jax.tree_util.tree_map(np.asarray, out)

    starts = range(0, len(u0), group)
    workers = concurrent_groups()
    if workers > 1:
        first = to_host(dispatch(starts[0]))  # compiles, once, before the threads start
        with ThreadPoolExecutor(workers) as pool:
            host = [first, *pool.map(lambda start: to_host(dispatch(start)), starts[1:])]
    else:
        pending = [dispatch(start) for start in starts]
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            pending = [multihost_utils.process_allgather(out, tiled=True) for out in pending]
        host = [to_host(out) for out in pending]
    return jax.tree_util.tree_map(lambda *parts: np.concatenate(parts), *host)


def concurrent_groups() -> int:
    """How many groups' programs run at once: ``THREADS_PER_CORE`` per core on the CPU of a
    single process, else 1 (an accelerator queues the programs itself, and processes must
    gather their results in the same order)."""
    if jax.default_backend() != "cpu" or jax.process_count() > 1:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return THREADS_PER_CORE * cores


@functools.lru_cache(maxsize=64)
def _compiled_sharded(problem: Problem, n_devices: int):
    if n_devices == 1:
        return compiled_solve(problem, batched=True), None
    mesh = Mesh(np.asarray(jax.devices()), ("replicate",))
    fn = jax.shard_map(
        batched_solve(problem),
        mesh=mesh,
        in_specs=(P("replicate"), P(), P("replicate"), P()),
        out_specs=P("replicate"),
        check_vma=False,
    )
    return jax.jit(fn, compiler_options=batch_options()), mesh


def global_array(a: np.ndarray, sharding) -> jax.Array:
    """A device array split by ``sharding``, built from the full host copy (each process
    supplies the shards of its own devices)."""
    return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])


def host_cast(a, dtype) -> np.ndarray:
    """A floating array as ``dtype`` (on the host, as ``fit``'s conversion does on the device);
    others as they are."""
    a = np.asarray(a)
    return a.astype(dtype, copy=False) if np.issubdtype(a.dtype, np.floating) else a


def block_lanes(per_rep: int) -> int:
    """Lanes each device runs at once: a power of two set by the platform and the size of one
    replicate's data only (never by the chunk size or the device count, so that results are
    bit-identical however a run is split)."""
    most, elements = BLOCK_CPU if jax.default_backend() == "cpu" else BLOCK_ACCELERATOR
    fits = max(1, elements // per_rep)
    return min(most, 1 << (fits.bit_length() - 1))
