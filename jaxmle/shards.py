"""Shards: the i-th of K disjoint parts of a run's replicates, for job arrays.

A run cuts its replicates into chunks of one size c, the same with or without shards:
chunk j holds replicates j·c to min((j+1)·c, reps) − 1. Shard i of K fits the chunks j with
j mod K = i (round robin, so each shard gets a share of the early replicates and of the
late ones, and shards finish at about the same time). Every shard writes its chunks into
the run's checkpoint directory; since replicate r's inputs depend only on r, the chunks
are those one unsharded run with chunk size c writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checkpoint import PART, SHARDS, checkpoint_path, read_attachment, stored_run


def check_shard(shard, checkpoint) -> tuple[int, int] | None:
    """``shard`` as ``(i, K)`` (None stays None); ValueError naming ``shard`` unless it is a
    pair of integers with 0 <= i < K, given with a ``checkpoint`` directory."""
    if shard is None:
        return None
    pair = isinstance(shard, (tuple, list)) and len(shard) == 2
    if not pair or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shard):
        raise ValueError(f"shard must be a pair (i, K) of integers, part i of K (0 <= i < K), got {shard!r}")
    i, k = int(shard[0]), int(shard[1])
    if not (k >= 1 and 0 <= i < k):
        raise ValueError(f"shard=({i}, {k}): part i of K needs K >= 1 and 0 <= i < K")
    if checkpoint is None:
        raise ValueError(
            "shard: a sharded run needs checkpoint=, the directory (shared by all shards) its parts are written to "
            "and merged from with jm.load_study"
        )
    return i, k


@dataclass(frozen=True)
class StudyProgress:
    """How far the run in a checkpoint directory has got, as its chunk files' names say (the
    files are not read; ``jm.load_study`` checks them): ``done`` of ``reps`` replicates
    stored, the ``missing`` ones as (first, last) ranges, and for a run in ``K`` shards each
    shard's ``(done, total)`` in ``shards`` (else None)."""

    path: str
    reps: int
    done: int
    missing: list[tuple[int, int]]
    shards: list[tuple[int, int]] | None

    @property
    def complete(self) -> bool:
        return self.done == self.reps

    def __str__(self) -> str:
        lines = [f"{self.path}: {self.done} of {self.reps} replicates stored ({100.0 * self.done / self.reps:.1f}%)"]
        for i, (done, total) in enumerate(self.shards or []):
            end = " (finished)" if done == total else ""
            lines.append(f"  shard {i} of {len(self.shards)}: {done} of {total}{end}")
        if self.missing:
            lines.append(f"missing replicates: {describe_ranges(self.missing)}")
        return "\n".join(lines)


def study_progress(checkpoint) -> StudyProgress:
    """The ``StudyProgress`` of the run in the directory ``checkpoint`` (in flight, or
    finished); ValueError if it holds no run."""
    path = checkpoint_path(checkpoint)
    fingerprint, run = stored_run(path)
    reps = int(fingerprint["reps"])
    done = np.zeros(reps, bool)
    for part in path.iterdir():
        claim = PART.fullmatch(part.name)
        if claim is not None:
            done[int(claim[1]) : int(claim[1]) + int(claim[2])] = True
    per_shard = None
    if (path / f"{SHARDS}.npz").exists():
        count, size = int(read_attachment(path, SHARDS, run)["shards"]), int(fingerprint["chunk_size"])
        mine = [np.concatenate(chunks(reps, size, (i, count)) or [np.zeros(0, int)]) for i in range(count)]
        per_shard = [(int(done[index].sum()), len(index)) for index in mine]
    return StudyProgress(str(path), reps, int(done.sum()), ranges(~done), per_shard)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/K"`` (as ``--shard`` takes it) as ``(i, K)``; ValueError saying what is expected."""
    i, sep, k = text.partition("/")
    try:
        shard = (int(i), int(k)) if sep else None
    except ValueError:
        shard = None
    if shard is None or not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ValueError(f"expected i/K with 0 <= i < K (part i of K, e.g. 0/10), got {text!r}")
    return shard


def owner(first, size: int, count: int):
    """The shard (of ``count``) whose chunk (of ``size`` replicates) holds replicate ``first``
    (an int, or an array of replicates)."""
    return (first // size) % count


def chunks(reps: int, size: int, shard: tuple[int, int]) -> list[np.ndarray]:
    """The replicates of each chunk of ``shard``, in order."""
    i, k = shard
    return [np.arange(start, min(start + size, reps)) for start in range(i * size, reps, k * size)]


def ranges(missing: np.ndarray) -> list[tuple[int, int]]:
    """The runs of true values in the boolean ``missing``, as (first, last) replicate pairs."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], missing.astype(np.int8), [0]])))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def describe_ranges(pairs: list[tuple[int, int]], most: int = 8) -> str:
    """``0-19, 40-59`` (at most ``most`` ranges, then how many more)."""
    text = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in pairs[:most])
    return text + (f" and {len(pairs) - most} more ranges" if len(pairs) > most else "")
