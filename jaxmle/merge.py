"""load_study: the StudyResult of a checkpointed simulation study, assembled from the chunks
that its run, or the shards of its run (``jaxmle.shards``), stored, without the model."""

from __future__ import annotations

import numpy as np

from . import shards
from .batch.outputs import Outputs, batch_result
from .checkpoint import SHARDS, Rejected, checkpoint_path, read_attachment, scan, stored_run
from .study import StudyResult, study_result
from .study_store import NAME, design_of

__all__ = ["load_study"]


def load_study(checkpoint) -> StudyResult:
    """The StudyResult of the simulation study stored in the directory ``checkpoint``, bit
    for bit the one a single run with the same arguments (and chunk size) returns.

    Every chunk file is checked as a run resuming would check it (``jaxmle.checkpoint``),
    and ValueError names everything that stands in the way: replicates no chunk holds (as
    ranges, with the shards they belong to), chunks that overlap, are damaged or altered,
    or were written by another run, and a directory that holds no simulation study.
    ``jm.study_progress(checkpoint)`` reports a run still in flight without raising."""
    path = checkpoint_path(checkpoint)
    fingerprint, run = stored_run(path)
    if fingerprint.get("kind") != "simulation_study":
        raise ValueError(f"checkpoint {str(path)!r} holds a run of {fingerprint.get('kind')}, not a simulation study")
    design = design_of(read_attachment(path, NAME, run))
    out = Outputs(design.reps, design.space.k)
    refused = []
    for part, found in scan(path, run, out.arrays):
        if isinstance(found, Rejected):
            refused.append(f"{part.name}: {found}")
        else:
            out.put(*found)
    if refused or not out.done.all():
        raise ValueError(_incomplete(path, fingerprint, run, refused, out.done))
    fits = batch_result(
        out.arrays,
        design.space,
        design.fixed_leaves,
        design.nobs,
        design.method,
        has_prior=False,
        cov_type=design.cov_type,
        clusters=design.clusters,
    )
    return study_result(fits, design)


def _incomplete(path, fingerprint: dict, run: str, refused: list[str], done: np.ndarray) -> str:
    """Why the chunks in ``path`` do not make the whole study: the ``refused`` files and the
    replicates not ``done``, with the shards they belong to."""
    lines = [f"checkpoint {str(path)!r} does not hold the whole study ({int(done.sum())} of {len(done)} replicates)"]
    if not done.all():
        where = ""
        if (path / f"{SHARDS}.npz").exists():
            count = int(read_attachment(path, SHARDS, run)["shards"])
            owners = np.unique(shards.owner(np.flatnonzero(~done), int(fingerprint["chunk_size"]), count))
            where = f" (of shard {', '.join(map(str, owners))} of {count}: run it, or let it finish)"
        lines.append(f"missing replicates: {shards.describe_ranges(shards.ranges(~done))}{where}")
    lines += [f"not used: {why}" for why in refused]
    return "\n".join(lines)
