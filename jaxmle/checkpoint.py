"""Checkpoints of a batch of fits: one ``.npz`` file per finished chunk, written atomically.

A checkpoint is a directory. ``run.json`` identifies the run (a fingerprint of the data and
settings); every finished chunk becomes ``part-<first replicate>-<count>.npz`` holding the
replicate indices it covers and the per-replicate results. Each file is written under a
temporary name in the same directory, flushed to disk, then renamed into place
(``os.replace`` is atomic), so a run killed at any moment leaves only whole chunks behind;
leftover temporary files are ignored and removed. Files are read with
``allow_pickle=False``: a checkpoint from elsewhere holds plain arrays and cannot run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

RUN_FILE = "run.json"
PART_GLOB = "part-*.npz"


class Checkpoint:
    """The chunk store of one run, in directory ``path``. Only a ``writer`` creates files (in a
    multi-process run, process 0); the others read."""

    def __init__(self, path, fingerprint: dict, writer: bool = True):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"checkpoint must be a directory (or a path to create one), got the file {str(path)!r}")
        if writer:
            self.path.mkdir(parents=True, exist_ok=True)
        run_file = self.path / RUN_FILE
        if run_file.exists():
            stored = json.loads(run_file.read_text())
            if stored != fingerprint:
                different = sorted(k for k in set(stored) | set(fingerprint) if stored.get(k) != fingerprint.get(k))
                raise ValueError(
                    f"checkpoint {str(path)!r} belongs to a different run (it differs in {', '.join(different)}); "
                    "use a new directory or delete this one"
                )
        elif writer:
            _write_atomically(run_file, lambda f: f.write(json.dumps(fingerprint, sort_keys=True).encode()))
        if writer:
            for stale in self.path.glob(".tmp-*"):
                stale.unlink(missing_ok=True)

    def load(self):
        """Yield ``(indices, arrays)`` for every stored chunk."""
        for part in sorted(self.path.glob(PART_GLOB)):
            with np.load(part, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            yield arrays.pop("index"), arrays

    def save(self, index: np.ndarray, arrays: dict) -> None:
        """Store one finished chunk (replicates ``index``) atomically."""
        name = self.path / f"part-{int(index[0]):012d}-{len(index)}.npz"
        _write_atomically(name, lambda f: np.savez(f, index=index, **arrays))


def _write_atomically(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
