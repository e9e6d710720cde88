"""Checkpoints of a batch of fits: one ``.npz`` file per finished chunk, written atomically.

A checkpoint is a directory. ``run.json`` identifies the run (its fingerprint: the traced
log-likelihood, the data and the settings); every finished chunk becomes
``part-<first replicate>-<count>.npz`` holding the replicate indices it covers, the
per-replicate results, the run's identity and a digest of all of these.

- Writing: each file is written under a temporary name of jaxmle's own
  (``.tmp-jaxmle-<pid>-<random>``) in the same directory, flushed to disk, then renamed into
  place (``os.replace`` is atomic), so a run killed at any moment leaves only whole chunks.
- One writer at a time: the writer holds an exclusive lock on ``.jaxmle.lock`` in the
  directory while the run lasts. A second process that opens the directory meanwhile gets a
  ValueError saying that it is in use, and the first run goes on unharmed. Opening removes
  the temporary files a killed jaxmle run left, and no other file.
- Reading: a chunk is used only if it can be read, holds exactly the fields, shapes and
  dtypes expected, its index is the strictly increasing replicates its name claims and no
  other chunk holds, it carries this run's identity and its digest matches. Any other chunk
  is set aside (renamed ``<name>.rejected`` by the writer) with a warning naming the file,
  and its replicates are computed again. Files are read with ``allow_pickle=False``: a
  checkpoint from elsewhere holds plain arrays and cannot run code.
- A ``run.json`` that cannot be read raises ValueError naming it (jaxmle does not guess
  which run a directory holds); deleting it lets the stored chunks be checked against the
  current run, since each chunk carries its run's identity.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import warnings
from pathlib import Path

import numpy as np

from .fingerprint import tree_digest

try:
    import fcntl
except ImportError:  # no advisory locks (Windows): unique temporary names still keep writers apart
    fcntl = None

RUN_FILE = "run.json"
LOCK_FILE = ".jaxmle.lock"
PART = re.compile(r"part-(\d{12})-(\d+)\.npz")
TEMPORARY = re.compile(r"\.tmp-jaxmle-\d+-[0-9a-f]{16}")
REJECTED = ".rejected"


def checkpoint_path(path) -> Path | None:
    """``checkpoint`` as a Path (None stays None). Raises ValueError unless it is a non-empty
    path of a directory, or of one to create."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"checkpoint must be a directory path, got {type(path).__name__}")
    if os.fspath(path) == "":
        raise ValueError('checkpoint must name a directory, got "" (write "." for the current directory)')
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"checkpoint must be a directory (or a path to create one), got the file {str(path)!r}")
    return path


class Checkpoint:
    """The chunk store of one run, in directory ``path``; a context manager that holds the
    directory's lock until it exits. Only a ``writer`` locks and creates files (in a
    multi-process run, process 0); the others read."""

    def __init__(self, path, fingerprint: dict, writer: bool = True):
        self.path = checkpoint_path(path)
        self.writer = writer
        text = json.dumps(fingerprint, sort_keys=True)
        self.run = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        self._lock = None
        if writer:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = _lock(self.path)
        try:
            self._check_run(json.loads(text), text)
        except BaseException:
            self.close()
            raise
        if writer:
            for stale in self.path.iterdir():
                if TEMPORARY.fullmatch(stale.name):
                    stale.unlink(missing_ok=True)

    def _check_run(self, fingerprint: dict, text: str) -> None:
        """Compare ``run.json`` with this run's fingerprint (the writer creates it if absent)."""
        run_file = self.path / RUN_FILE
        if not run_file.exists():
            if self.writer:
                _write_atomically(run_file, lambda f: f.write(text.encode()))
            return
        try:
            stored = json.loads(run_file.read_text())
        except (OSError, ValueError) as err:
            stored = err
        if not isinstance(stored, dict):
            reason = f"{type(stored).__name__}: {stored}" if isinstance(stored, Exception) else "not a JSON object"
            raise ValueError(
                f"checkpoint: {str(run_file)!r} is damaged ({reason}); delete that file to check the stored chunks "
                "against this run, or use another directory"
            )
        if stored != fingerprint:
            different = sorted(k for k in set(stored) | set(fingerprint) if stored.get(k) != fingerprint.get(k))
            raise ValueError(
                f"checkpoint {str(self.path)!r} belongs to a different run (it differs in {', '.join(different)}); "
                "use a new directory or delete this one"
            )

    def close(self) -> None:
        """Release the directory's lock (a no-op for a reader)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def load(self, fields: dict):
        """Yield ``(indices, arrays)`` for every stored chunk that passes every check, given
        ``fields``: name -> the run's full result array (replicates first). Warns about each
        chunk that fails, naming the file and why; the writer renames it ``<name>.rejected``."""
        reps = len(next(iter(fields.values())))
        taken = np.zeros(reps, bool)
        for part in sorted(self.path.iterdir()):
            claim = PART.fullmatch(part.name)
            if claim is None:
                continue
            try:
                index, arrays = _checked(part, int(claim[1]), int(claim[2]), self.run, fields, taken)
            except _Rejected as why:
                self._reject(part, str(why))
                continue
            taken[index] = True
            yield index, arrays

    def _reject(self, part: Path, why: str) -> None:
        aside = ""
        if self.writer:
            os.replace(part, part.with_name(part.name + REJECTED))
            aside = f"; renamed it {part.name + REJECTED}"
        warnings.warn(
            f"checkpoint: not using {str(part)!r}: {why}; its replicates are computed again{aside}",
            RuntimeWarning,
            stacklevel=2,
        )

    def save(self, index: np.ndarray, arrays: dict) -> None:
        """Store one finished chunk (replicates ``index``) atomically, with this run's identity
        and a digest of its contents."""
        stored = {"index": np.asarray(index), "run": np.asarray(self.run), **arrays}
        stored["digest"] = np.asarray(tree_digest(stored))
        name = self.path / f"part-{int(index[0]):012d}-{len(index)}.npz"
        _write_atomically(name, lambda f: np.savez(f, **stored))


class _Rejected(Exception):
    """A stored chunk that must not be used; the message says why."""


def _checked(part: Path, first: int, count: int, run: str, fields: dict, taken: np.ndarray):
    """``(index, arrays)`` of the chunk file ``part``, named for replicates ``first`` and
    ``count``, if it passes every check; raises _Rejected saying why otherwise."""
    try:
        with np.load(part, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except Exception as err:  # truncated, emptied, flipped bytes, not an .npz: any damage means unusable
        raise _Rejected(f"it cannot be read ({type(err).__name__}: {err})") from None
    expected = {"index", "run", "digest", *fields}
    if set(arrays) != expected:
        raise _Rejected(f"it holds the fields {sorted(arrays)}, expected {sorted(expected)}")
    digest = str(arrays.pop("digest"))
    if str(arrays["run"]) != run:
        raise _Rejected("it was written by another run")
    if digest != tree_digest(arrays):
        raise _Rejected("its contents do not match their digest (the file was altered)")
    index = arrays.pop("index")
    del arrays["run"]
    _check_index(index, first, count, len(taken))
    for name, a in arrays.items():
        want = fields[name]
        if a.shape != (count, *want.shape[1:]) or a.dtype.kind != want.dtype.kind:
            raise _Rejected(
                f"{name} has shape {a.shape} and dtype {a.dtype}, expected shape {(count, *want.shape[1:])} "
                f"and dtype {want.dtype}"
            )
    if taken[index].any():
        raise _Rejected("another chunk already holds some of its replicates")
    return index, arrays


def _check_index(index: np.ndarray, first: int, count: int, reps: int) -> None:
    """Raise _Rejected unless ``index`` holds ``count`` strictly increasing replicates of
    ``0..reps-1``, starting at ``first``."""
    ok = (
        index.dtype.kind in "iu"
        and index.shape == (count,)
        and count > 0
        and index[0] == first
        and np.all(np.diff(index) > 0)
        and index[-1] < reps
    )
    if not ok:
        raise _Rejected(
            f"its index ({index.dtype}{list(index.shape)}) is not {count} increasing replicates from {first} "
            f"within 0..{reps - 1}, as its name claims"
        )


def _lock(path: Path):
    """An open lock file of directory ``path``, locked exclusively (None where the platform has
    no locks). Raises ValueError naming the directory if another process holds it."""
    if fcntl is None:
        return None
    f = open(path / LOCK_FILE, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip()
        f.close()
        raise ValueError(
            f"checkpoint {str(path)!r} is in use by another run"
            + (f" (process {holder})" if holder.isdigit() else "")
            + "; wait until it finishes, or use another directory"
        ) from None
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    return f


def _write_atomically(target: Path, write) -> None:
    tmp = target.parent / f".tmp-jaxmle-{os.getpid()}-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
