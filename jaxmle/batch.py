"""fit_batch: many fits of one model at once, with vmap, chunks, devices, progress and checkpoints.

The replicates are processed in chunks of a fixed size (the last one padded), so one
compiled program serves the whole run and memory stays bounded by the chunk. Each chunk is
split over every device JAX sees with ``shard_map``: every device runs its own solver loop on
its share, so a slow fit holds back only the lanes beside it; on the CPU, groups of lanes run
from several threads at once, which overlaps their programs. With Newton's method (whose only
state between iterations is the point itself) a first pass stops each lane at the iterations
most fits of a pilot group needed, and a lane that has not finished is restarted from its last
point in a second, smaller pass, which ends exactly where one long pass would, so a few hard
fits (separation, a boundary estimate) do not hold the whole chunk; L-BFGS and optax methods
carry curvature or moment estimates, so they run in one pass. The observed inference runs in
the same compiled program, in the batch's precision (the function a single fit runs in
NumPy, here over ``jax.numpy``). A replicate whose data hold a NaN, or (with a built-in
model) fail the model's ``check_data``, is marked INVALID_DATA and replaced by a valid
replicate before the data reach the device, so nothing else can be touched by it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from . import _precision, covariance, random_effects, shards, verdict
from .batch_results import BatchFitResult
from .checkpoint import Checkpoint, checkpoint_path
from .fingerprint import run_fingerprint, tree_digest
from .fit import Prepared, check_at_start, float64_loglik, prepare
from .inference import Inference
from .models.base import Model
from .problem import Problem, RawFit, batch_options, batched_solve, compiled_solve
from .status import Status, converged
from .validation import check_positive_int, check_support, unbatched_init_hint

__all__ = ["fit_batch"]

#: a chunk holds at most this many data elements by default (128 MB of float64), and at most
#: DEFAULT_MAX_CHUNK replicates
DEFAULT_CHUNK_ELEMENTS = 2**24
DEFAULT_MAX_CHUNK = 2**16
#: Newton's first pass stops lanes at the iteration count this share of a pilot group needed;
#: the unfinished lanes continue in a second pass (methods that keep state between
#: iterations run in one pass)
FIRST_PASS_QUANTILE = 0.95
TWO_PASS_SOLVERS = ("newton",)
#: lanes per device and program, (at most this many, holding at most this many data elements):
#: on the CPU a block's data should stay in cache (measured: logistic n=1000 fastest at 128
#: lanes, Gaussian n=100 at 1024)
BLOCK_CPU = (1024, 2**20)
BLOCK_ACCELERATOR = (4096, 2**23)
#: on the CPU, groups of lanes run concurrently, this many per core: one program's many
#: small kernels and its loop-condition reads leave cores idle that another group fills
THREADS_PER_CORE = 2


def fit_batch(
    loglik,
    init,
    data=None,
    *,
    constraints=None,
    prior=None,
    fixed=None,
    method="auto",
    nobs=None,
    tol=None,
    max_iter=None,
    dtype=None,
    chunk_size=None,
    progress=None,
    checkpoint=None,
    batched_init=None,
    cov_type="observed",
    random=None,
    nagq=1,
    labels=None,
    groups=None,
) -> BatchFitResult:
    """Fit one model to many datasets: ``fit`` for every replicate, vmapped over devices.

    Arguments are those of ``fit``. Every leaf of ``data`` carries a leading replicate axis;
    ``init`` may carry one too (every leaf, or none; pass ``batched_init=True/False`` where
    that is ambiguous). With a built-in model and no ``init``, each replicate starts at the
    model's ``init`` of its own data. One failing fit never raises (so there is no ``throw``):
    its ``status`` says why. A replicate with NaN data, or data a built-in model's
    ``check_data`` refuses, gets status INVALID_DATA and NaN results; infinite data follow
    ``fit``'s rule (allowed where the log-likelihood is finite at the start, else the
    replicate ends with NONFINITE_START).

    - ``cov_type`` (and ``groups``): as in ``fit``; for ``"cluster"``, ``groups`` (one label
      per observation) is shared by all replicates. The sandwich, OPG and expected
      covariances are computed after each chunk is solved, from every replicate's own scores
      (or the model's expected information), so each replicate's SEs are those ``fit`` gives
      on its data.
    - ``random``: as in ``fit``, every replicate's random effects integrated out by the
      Laplace approximation; the results hold the outer parameters (the conditional modes
      of a replicate: ``jm.fit`` on its data). The random entries of ``init`` give the
      random effects' shapes (with ``batched_init=True``, after the replicate axis).
      ``nagq``: as in ``fit``.
    - ``labels``: names of vector elements, as in ``fit``.

    - ``chunk_size``: replicates per chunk (memory grows with it; default: the data of a
      chunk stay under 128 MB). Results do not depend on it.
    - ``progress``: a progress bar (``None``: on a terminal, shown once a run lasts 2 s).
    - ``checkpoint``: a directory. Each finished chunk is written there atomically, and a
      later call with the same arguments resumes from the chunks found (after a crash or a
      kill), redoing none of them.

    The replicate axis is split over ``jax.devices()``. On several hosts, start JAX's own
    multi-process runtime in every process before fitting, with the same arguments in each
    (every process holds, or simulates, the full data)::

        jax.distributed.initialize()          # coordinator address etc. from the cluster env
        res = jm.fit_batch(loglik, init, data, chunk_size=...)

    ``jax.devices()`` then lists the devices of every host, each process fits its share of a
    chunk, and every process receives all results; only process 0 writes the checkpoint, which
    must be on a file system all processes see.
    """
    if random is not None and cov_type != "observed":
        raise ValueError(f"cov_type must be 'observed' with random effects, got {cov_type!r}")
    checkpoint = checkpoint_path(checkpoint)
    random_effects.check_nagq(nagq, random)
    model = loglik if isinstance(loglik, Model) else None
    if model is not None and data is None:
        data, init = init, None
    if data is None:
        raise ValueError("data: fit_batch needs data whose leaves carry a leading replicate axis")
    host = jax.tree_util.tree_map(np.asarray, data)
    reps = replicate_count(host)
    check = model.check_data if model is not None else None
    invalid_all = invalid_replicates(host, check)
    valid = ~invalid_all
    if check is not None and not valid.any():
        check(take(host, 0))  # raises: no replicate is valid, so there is no model to build
    one = take(host, int(np.argmax(valid)))
    if random is not None:
        loglik, init = random_effects.outer_problem(
            loglik, init, random, constraints, fixed, prior, one, bool(batched_init), nagq
        )

    init_of_data = None
    init_host = None
    if init is None and model is not None:
        init_of_data = model.init
        init0 = model.init(one)
    elif init_has_batch_axis(init, reps, batched_init):
        init_host = jax.tree_util.tree_map(np.asarray, init)
        init0 = take(init_host, int(np.argmax(valid)))
    else:
        init0 = init
    prep = prepare(
        model or loglik,
        init0,
        one,
        constraints=constraints,
        prior=prior,
        fixed=fixed,
        method=method,
        nobs=nobs,
        tol=tol,
        max_iter=max_iter,
        dtype=dtype,
        batched=True,
        labels=labels,
    )
    prep.clusters = covariance.check(cov_type, prep, model, groups)
    if init_host is not None:
        check_support("init", prep.problem.space, jax.tree_util.tree_leaves(init_host), batched=True)
    try:
        nobs = check_at_start(prep, prep.data, finite=False)
    except ValueError as err:
        hint = unbatched_init_hint(init, reps) if init_host is None and init_of_data is None else None
        if hint is None:
            raise
        raise ValueError(f"{hint} ({err})") from err

    def source(index):
        chunk, invalid = replace_invalid(take(host, index), invalid_all[index])
        if init_host is not None:
            u0 = batched_u0(prep, take(init_host, index))
        elif init_of_data is not None:
            u0 = batched_u0(prep, model_inits(init_of_data, chunk, prep.dtype))
        else:
            u0 = np.broadcast_to(prep.u0, (len(index),) + prep.u0.shape)
        return u0, chunk, invalid

    def fingerprint():
        label = repr(model) if model is not None else getattr(loglik, "__qualname__", type(loglik).__name__)
        init_digest = tree_digest(init_host if init_host is not None else init0)
        inputs = {"data": tree_digest(host), "init": init_digest}
        return (
            run_fingerprint(prep, reps, "fit_batch", label) | inputs | covariance.fingerprint(cov_type, prep.clusters)
        )

    return run_batch(
        prep,
        nobs,
        reps,
        source,
        chunk_size=chunk_size,
        progress=progress,
        checkpoint=checkpoint,
        fingerprint=fingerprint,
        cov_type=cov_type,
        model=model,
    )


# --- the chunked, sharded run -----------------------------------------------------------------
def run_batch(
    prep: Prepared,
    nobs,
    reps: int,
    source,
    *,
    chunk_size,
    progress,
    checkpoint,
    fingerprint,
    cov_type="observed",
    model=None,
    shard=None,
    attachments=None,
):
    """Fit replicates ``0..reps-1``; ``source(index) -> (u0, data, invalid)`` gives a chunk's inputs
    and ``fingerprint()`` what identifies the run in a checkpoint. A ``cov_type`` other than
    ``"observed"`` (checked by ``covariance.check``) replaces each chunk's covariances.

    With ``shard=(i, K)`` (checked by ``shards.check_shard``), only the chunks of shard i are
    fitted, into the checkpoint, and None is returned; the chunk size then enters the run's
    fingerprint (it sets which replicates each shard fits). ``attachments`` (name -> arrays)
    are kept in the checkpoint with ``Checkpoint.attach``."""
    from tqdm.auto import tqdm

    show, delay = progress_mode(progress)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    _, sample, _ = source(np.zeros(1, dtype=np.int64))
    per_rep = max(1, sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(sample)))
    group = block_lanes(per_rep * random_effects.lane_weight(prep.problem.loglik)) * jax.device_count()
    size = chunk_length(chunk_size, reps, per_rep, group)
    out = Outputs(reps, prep.problem.space.k)
    replace_cov = None
    if cov_type != "observed":
        replace_cov = functools.partial(covariance.replace_batch, cov_type=cov_type, prep=prep, model=model, nobs=nobs)
    writer = checkpoint is not None and jax.process_index() == 0
    store = None
    if checkpoint is not None:
        identity = fingerprint() | ({} if shard is None else {"chunk_size": size})
        store = Checkpoint(checkpoint, identity, writer=writer, shard=shard)
    with store or contextlib.nullcontext():
        if store is not None:
            for name, arrays in (attachments or {}).items():
                store.attach(name, arrays)
            owns = None if shard is None else lambda first: shards.owner(first, size, shard[1]) == shard[0]
            for index, arrays in store.load(out.arrays, owns):
                out.put(index, arrays)
        total, todo = pending(out.done, size, shard)
        left = sum(map(len, todo))
        with tqdm(total=total, initial=total - left, unit="fit", disable=not show, delay=delay) as bar:
            for index in todo:
                arrays = fit_chunk(prep, source, index, group, replace_cov)
                out.put(index, arrays)
                if writer:
                    store.save(index, arrays)
                bar.update(len(index))
    return None if shard is not None else out.result(prep, nobs, cov_type)


def pending(done: np.ndarray, size: int, shard) -> tuple[int, list[np.ndarray]]:
    """``(total, chunks)``: the replicates the run (or its ``shard``) covers, and those of its
    chunks not ``done``, in chunks of at most ``size``. Without a shard the replicates left are
    packed into chunks; a shard keeps the grid of ``shards.chunks``."""
    if shard is None:
        todo = np.flatnonzero(~done)
        return len(done), [todo[start : start + size] for start in range(0, len(todo), size)]
    mine = shards.chunks(len(done), size, shard)
    todo = [index[~done[index]] for index in mine]
    return sum(map(len, mine)), [index for index in todo if len(index)]


def fit_chunk(prep: Prepared, source, index: np.ndarray, group: int, replace_cov=None) -> dict:
    """Per-replicate results of one chunk (padded to a whole number of groups of lanes);
    ``replace_cov(inf, raw, data)`` gives the covariances when they are not the observed ones."""
    lanes = -(-len(index) // group) * group
    padded = np.concatenate([index, np.full(lanes - len(index), index[0], dtype=index.dtype)])
    u0, data, invalid = source(padded)
    raw, inf = solve_two_pass(prep, u0, data, group)
    if prep.dtype == np.float32:
        raw = raw._replace(**dict(zip(("loglik", "logpost"), float64_loglik(prep, raw.x, data, batched=True))))
    solved = verdict.final_status(raw.status, inf, raw.logpost, prep.problem.verify_tol(prep.dtype))
    status = np.where(invalid, int(Status.INVALID_DATA), solved)
    inf = verdict.off_interior_inference(inf, status, raw, prep.problem.space)
    if replace_cov is not None:
        inf = replace_cov(inf, raw, data)
    bad = invalid[:, None]
    arrays = {
        "estimates": np.where(bad, np.nan, raw.x),
        "loglik": np.where(invalid, np.nan, raw.loglik),
        "logpost": np.where(invalid, np.nan, raw.logpost),
        "status": status.astype(np.int8),
        "n_iter": np.asarray(raw.n_iter, np.int32),
        "grad_norm": np.where(invalid, np.nan, raw.grad_norm),
        "cov": np.where(bad[..., None], np.nan, inf.cov),
        "information": np.where(bad[..., None], np.nan, inf.information),
        "positive_definite": inf.positive_definite & ~invalid,
        "condition_number": np.where(invalid, np.nan, inf.condition_number),
        "null_direction": np.where(bad, np.nan, inf.null_direction),
        "at_kink": inf.at_kink & ~bad,
    }
    return {name: a[: len(index)] for name, a in arrays.items()}


def solve_two_pass(prep: Prepared, u0: np.ndarray, data, group: int) -> tuple[RawFit, Inference]:
    """Solve every lane; with Newton's method, stop lanes at a short iteration budget and
    restart the unfinished ones from their last point.

    Under vmap a loop runs until its slowest lane stops, so a group of lanes costs the
    iterations of its slowest fit. The first group (the pilot) runs with the full budget;
    the other groups stop at the iteration count that ``FIRST_PASS_QUANTILE`` of the
    pilot's fits needed, and the second pass runs only the lanes still at work, packed into
    as few groups as they fill. A Newton restart takes the derivatives at the last point
    afresh (not an iteration) and run-off detection starts afresh, so it ends where one long
    pass would; L-BFGS's curvature pairs and optax's moments would be lost, so those methods
    run in a single pass, as ``fit`` does."""
    problem = prep.problem
    budget = problem.default_max_iter()
    if problem.solver[0] not in TWO_PASS_SOLVERS or len(u0) <= group:
        return solve_groups(problem, u0, prep, data, group, budget)
    pilot = solve_groups(problem, u0[:group], prep, take(data, slice(0, group)), group, budget)
    first = first_pass_budget(pilot[0].n_iter, budget)
    others = solve_groups(problem, u0[group:], prep, take(data, slice(group, len(u0))), group, first)
    raw, inf = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, b]), pilot, others)
    todo = group + np.flatnonzero(others[0].status == Status.MAX_ITER)
    if first == budget or len(todo) == 0:
        return raw, inf
    lanes = -(-len(todo) // group) * group
    pick = np.concatenate([todo, np.full(lanes - len(todo), todo[0])])
    rest = solve_groups(problem, raw.u[pick], prep, take(data, pick), group, budget - first)
    n_iter = raw.n_iter[todo] + rest[0].n_iter[: len(todo)]

    def continued(mine, theirs):
        mine = mine.copy()
        mine[todo] = theirs[: len(todo)]
        return mine

    raw, inf = jax.tree_util.tree_map(continued, (raw, inf), rest)
    raw.n_iter[todo] = n_iter
    return raw, inf


def first_pass_budget(pilot_iterations: np.ndarray, budget: int) -> int:
    """The iterations that ``FIRST_PASS_QUANTILE`` of the pilot's fits needed (at least 1)."""
    needed = int(np.quantile(pilot_iterations, FIRST_PASS_QUANTILE, method="higher"))
    return min(max(needed, 1), budget)


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


# --- results ------------------------------------------------------------------------------
class Outputs:
    """Preallocated per-replicate result arrays, filled chunk by chunk."""

    def __init__(self, reps: int, k: int):
        nan = lambda *shape: np.full((reps, *shape), np.nan)  # noqa: E731
        self.arrays = {
            "estimates": nan(k),
            "loglik": nan(),
            "logpost": nan(),
            "status": np.zeros(reps, np.int8),
            "n_iter": np.zeros(reps, np.int32),
            "grad_norm": nan(),
            "cov": nan(k, k),
            "information": nan(k, k),
            "positive_definite": np.zeros(reps, bool),
            "condition_number": nan(),
            "null_direction": nan(k),
            "at_kink": np.zeros((reps, k), bool),
        }
        self.done = np.zeros(reps, bool)

    def put(self, index: np.ndarray, arrays: dict) -> None:
        for name, a in arrays.items():
            self.arrays[name][index] = a
        self.done[index] = True

    def result(self, prep: Prepared, nobs, cov_type: str = "observed") -> BatchFitResult:
        problem = prep.problem
        clusters = covariance.cluster_count(prep.clusters)
        return batch_result(
            self.arrays, problem.space, prep.fixed_leaves, nobs, prep.method_name, problem.has_prior, cov_type, clusters
        )


def batch_result(
    a: dict, space, fixed_leaves, nobs, method: str, has_prior: bool, cov_type: str = "observed", clusters=None
) -> BatchFitResult:
    """The BatchFitResult of the per-replicate arrays ``a`` (those of ``Outputs``), with the
    parameters ``space``, the values of the fixed leaves and the fits' settings (``clusters``:
    the number of clusters of a cluster covariance)."""
    reps = len(a["status"])
    fixed = [np.asarray(v) for v in fixed_leaves]
    se_flat = np.sqrt(np.diagonal(a["cov"], axis1=-2, axis2=-1))
    status = a["status"]
    return BatchFitResult(
        params=batched_params(space, a["estimates"], fixed, reps),
        se=batched_params(space, se_flat, [np.zeros_like(v) for v in fixed], reps, fill=0.0),
        cov=a["cov"],
        names=space.names,
        loglik=a["loglik"],
        logpost=a["logpost"],
        converged=converged(status),
        status=status,
        n_iter=a["n_iter"],
        grad_norm=a["grad_norm"],
        nobs=nobs,
        df=space.m,
        information=a["information"],
        method=method,
        positive_definite=a["positive_definite"],
        condition_number=a["condition_number"],
        has_prior=has_prior,
        null_direction=a["null_direction"],
        at_kink=a["at_kink"],
        estimates=a["estimates"],
        cov_type=cov_type,
        clusters=clusters,
        _space=space,
        _fixed_leaves=fixed,
    )


def batched_params(space, flat: np.ndarray, fixed_leaves: list, reps: int, fill: float | None = None):
    """The params pytree from ``(reps, k)`` flat values, every leaf with the replicate axis
    (held elements at their values, or ``fill``, see ``Leaf.full``)."""
    fixed = [np.broadcast_to(v, (reps, *v.shape)) for v in fixed_leaves]
    return space.assemble(space.x_flat_to_leaves(np.asarray(flat), fill), fixed)


# --- inputs -------------------------------------------------------------------------------
def replicate_count(host) -> int:
    leaves = jax.tree_util.tree_leaves(host)
    if not leaves:
        raise ValueError("data: fit_batch needs data whose leaves carry a leading replicate axis")
    lengths = {a.shape[0] if a.ndim else None for a in leaves}
    if None in lengths or len(lengths) != 1:
        shapes = [a.shape for a in leaves]
        raise ValueError(f"data: every leaf needs the same leading replicate axis, got shapes {shapes}")
    reps = lengths.pop()
    if reps == 0:
        raise ValueError("data: the replicate axis is empty")
    return reps


def invalid_replicates(host, check=None) -> np.ndarray:
    """Replicates with a NaN in any floating leaf of the data, or (given ``check``, a model's
    ``check_data``) whose data ``check`` refuses with a ValueError. Infinite values are left
    to the fit, as in ``fit``: a replicate whose log-likelihood is not finite at its start
    ends with NONFINITE_START."""
    bad = np.zeros(jax.tree_util.tree_leaves(host)[0].shape[0], bool)
    for a in jax.tree_util.tree_leaves(host):
        if np.issubdtype(a.dtype, np.floating):
            bad |= np.isnan(a).reshape(a.shape[0], -1).any(axis=1)
    if check is not None:
        bad[refused(host, np.flatnonzero(~bad), check)] = True
    return bad


def refused(host, index: np.ndarray, check) -> np.ndarray:
    """The replicates among ``index`` whose data ``check`` refuses.

    A model's checks are element-wise and accept a leading replicate axis, so a block that
    passes as a whole is valid throughout; a block that fails is halved until the refused
    replicates are found (each checked on its own)."""
    if len(index) == 0:
        return index
    try:
        check(take(host, index) if len(index) > 1 else take(host, int(index[0])))
        return index[:0]
    except ValueError:
        if len(index) == 1:
            return index
    half = len(index) // 2
    return np.concatenate([refused(host, index[:half], check), refused(host, index[half:], check)])


def replace_invalid(chunk, invalid=None):
    """``(chunk, invalid)``: the invalid replicates (by default the non-finite ones) replaced
    by the first valid one (or zeros)."""
    invalid = invalid_replicates(chunk) if invalid is None else np.asarray(invalid)
    if not invalid.any():
        return chunk, invalid
    good = np.flatnonzero(~invalid)

    def fix(a):
        a = a.copy()
        a[invalid] = a[good[0]] if len(good) else 0
        return a

    return jax.tree_util.tree_map(fix, chunk), invalid


def take(tree, index):
    """Rows ``index`` of every leaf: a view when they are consecutive, else a copy."""
    rows = np.asarray(index)
    if rows.ndim == 1 and len(rows) > 1 and rows.dtype.kind in "iu" and np.all(np.diff(rows) == 1):
        index = slice(int(rows[0]), int(rows[-1]) + 1)
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[index], tree)


def init_has_batch_axis(init, reps: int, batched_init) -> bool:
    leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(init)]
    leading = bool(leaves) and all(v.ndim >= 1 and v.shape[0] == reps for v in leaves)
    if batched_init is None:
        if leading and all(v.ndim == 1 for v in leaves):
            raise ValueError(
                f"init: every leaf is a vector of length {reps}, the number of replicates, so it is unclear whether "
                "init carries a replicate axis: pass batched_init=True or batched_init=False"
            )
        return leading
    if batched_init and not leading:
        shapes = ", ".join(str(v.shape) for v in leaves)
        raise ValueError(
            f"init: batched_init=True needs a leading axis of length {reps} (one row per replicate) on every leaf, "
            f"got shapes {shapes}"
        )
    return bool(batched_init)


def batched_u0(prep: Prepared, init_batch) -> np.ndarray:
    """``(reps, m)`` unconstrained starting points from a batched init pytree."""
    space = prep.problem.space
    leaves = jax.tree_util.tree_leaves(init_batch)
    free = [v for v, leaf in zip(leaves, space.leaves, strict=True) if not leaf.fixed]
    with _precision.context(prep.dtype):
        return np.asarray(_u_of_x(space)([jnp.asarray(v, prep.dtype) for v in free]))


@functools.lru_cache(maxsize=64)
def _u_of_x(space):
    return jax.jit(jax.vmap(space.x_leaves_to_u))


def model_inits(init_fn, chunk, dtype):
    """A model's ``init`` for each replicate, traced once and run replicate by replicate
    (``lax.map``, so a replicate's start does not depend on the chunk it sits in); a
    non-traceable ``init`` runs in Python."""
    with _precision.context(dtype):
        try:
            return jax.tree_util.tree_map(np.asarray, _mapped(init_fn)(_precision.to_device(chunk, dtype)))
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError, ValueError):
            reps = jax.tree_util.tree_leaves(chunk)[0].shape[0]
            rows = [init_fn(take(chunk, i)) for i in range(reps)]
            return jax.tree_util.tree_map(lambda *v: np.stack([np.asarray(x) for x in v]), *rows)


@functools.lru_cache(maxsize=32)
def _mapped(fn):
    return jax.jit(lambda batch: jax.lax.map(fn, batch))


def host_cast(a, dtype) -> np.ndarray:
    """A floating array as ``dtype`` (on the host, as ``fit``'s conversion does on the device);
    others as they are."""
    a = np.asarray(a)
    return a.astype(dtype, copy=False) if np.issubdtype(a.dtype, np.floating) else a


# --- settings -----------------------------------------------------------------------------
def block_lanes(per_rep: int) -> int:
    """Lanes each device runs at once: a power of two set by the platform and the size of one
    replicate's data only (never by the chunk size or the device count, so that results are
    bit-identical however a run is split)."""
    most, elements = BLOCK_CPU if jax.default_backend() == "cpu" else BLOCK_ACCELERATOR
    fits = max(1, elements // per_rep)
    return min(most, 1 << (fits.bit_length() - 1))


def chunk_length(chunk_size, reps: int, per_rep: int, group: int) -> int:
    """Replicates per chunk: as given, else a whole number of groups of lanes whose data stay
    under DEFAULT_CHUNK_ELEMENTS."""
    if chunk_size is None:
        fitting = min(DEFAULT_MAX_CHUNK, DEFAULT_CHUNK_ELEMENTS // per_rep)
        chunk_size = max(group, fitting // group * group)
    return min(int(chunk_size), reps)


def progress_mode(progress) -> tuple[bool, float]:
    """(show, delay): ``None`` shows a bar on a terminal once the run has lasted 2 s."""
    if progress is None:
        return sys.stderr.isatty(), 2.0
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be True, False or None, got {progress!r}")
    return progress, 0.0
