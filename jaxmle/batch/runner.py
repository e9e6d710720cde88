"""Running a batch: chunks of replicates on one grid, the progress bar, the checkpoint, and each
chunk's fits turned into per-replicate result arrays."""

from __future__ import annotations

import contextlib
import functools
import sys

import jax
import numpy as np

from .. import covariance, random_effects, shards, verdict
from ..checkpoint import Checkpoint
from ..fit import Prepared, float64_loglik
from ..status import Status
from ..validation import check_positive_int
from .backend import block_lanes
from .outputs import Outputs
from .two_pass import solve_two_pass

#: a chunk holds at most this many data elements by default (128 MB of float64), and at most
#: DEFAULT_MAX_CHUNK replicates
DEFAULT_CHUNK_ELEMENTS = 2**24
DEFAULT_MAX_CHUNK = 2**16


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
