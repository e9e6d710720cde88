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
- Shards (``shard=(i, K)``, see ``jaxmle.shards``): the K parts of one run write into one
  directory at once. Each holds a shared lock on ``.jaxmle.lock`` (so no unsharded run can
  open the directory meanwhile) and an exclusive one on ``.jaxmle-shard-<i>-of-<K>.lock`` (a
  second process running the same shard is refused). Its temporary files carry the shard
  (``.tmp-jaxmle-s<i>of<K>-<pid>-<random>``) and it removes only its own; it reads and sets
  aside only the chunks of its own shard. ``shards.npz`` records K, and a shard of another
  K is refused.
- Attachments (``attach``): further files of the run, such as a study's design, that every
  writer gives the same contents; written like a chunk (atomically, with the run's identity
  and a digest) by the first writer, and compared with what each later writer would write.
- ``run.json`` and the attachments are created by the first writer and compared by every
  later one; a writer checks and creates them holding ``.jaxmle-setup.lock`` exclusively, so
  of two shards started at the same moment with different settings, the second is refused
  instead of both writing and each going on with its own.
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

import contextlib
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
SETUP_LOCK_FILE = ".jaxmle-setup.lock"
SHARDS = "shards"
PART = re.compile(r"part-(\d{12})-(\d+)\.npz")
TEMPORARY = re.compile(r"\.tmp-jaxmle-(?:(s\d+of\d+)-)?\d+-[0-9a-f]{16}")
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
    directory's lock (for ``shard=(i, K)``, the shard's locks) until it exits. Only a
    ``writer`` locks and creates files (in a multi-process run, process 0); the others read."""

    def __init__(self, path, fingerprint: dict, writer: bool = True, shard: tuple[int, int] | None = None):
        self.path = checkpoint_path(path)
        self.writer = writer
        self.shard = shard
        self.tag = None if shard is None else f"s{shard[0]}of{shard[1]}"  # marks the shard's temporary files
        text = json.dumps(fingerprint, sort_keys=True)
        self.run = run_id(text)
        self._locks = []
        if writer:
            self.path.mkdir(parents=True, exist_ok=True)
            self._locks = _locks(self.path, shard)
        try:
            self._check_run(json.loads(text), text)
            if shard is not None:
                self.attach(SHARDS, {"shards": np.asarray(shard[1])})
        except BaseException:
            self.close()
            raise
        if writer:
            self._remove_temporaries()

    def _check_run(self, fingerprint: dict, text: str) -> None:
        """Compare ``run.json`` with this run's fingerprint (the writer creates it if absent)."""
        run_file = self.path / RUN_FILE
        with self._setting_up():
            if not run_file.exists():
                if self.writer:
                    _write_atomically(run_file, lambda f: f.write(text.encode()), self.tag)
                return
        stored = _read_run(run_file)
        if stored != fingerprint:
            different = sorted(k for k in set(stored) | set(fingerprint) if stored.get(k) != fingerprint.get(k))
            raise ValueError(
                f"checkpoint {str(self.path)!r} belongs to a different run (it differs in {', '.join(different)}); "
                "use a new directory or delete this one"
            )

    @contextlib.contextmanager
    def _setting_up(self):
        """Hold ``.jaxmle-setup.lock`` exclusively (a writer, where the platform has locks),
        waiting for another writer's hold to end: a file that the first writer creates and
        later ones compare is checked and written by one writer at a time. Not reentrant: a
        second hold in the same process would wait for the first."""
        if not self.writer or fcntl is None:
            yield
            return
        with open(self.path / SETUP_LOCK_FILE, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def _remove_temporaries(self) -> None:
        """Remove the temporary files killed runs left: every one for an unsharded run (which
        holds the directory alone), a shard's own for a shard."""
        for stale in self.path.iterdir():
            found = TEMPORARY.fullmatch(stale.name)
            if found and (self.shard is None or found[1] == self.tag):
                stale.unlink(missing_ok=True)

    def close(self) -> None:
        """Release the directory's locks (a no-op for a reader)."""
        for lock in reversed(self._locks):
            lock.close()
        self._locks = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def load(self, fields: dict, owns=None):
        """Yield ``(indices, arrays)`` for every stored chunk that passes every check, given
        ``fields``: name -> the run's full result array (replicates first). With ``owns``,
        only the chunks whose first replicate ``r`` has ``owns(r)`` true are read. Warns about
        each chunk that fails, naming the file and why; the writer renames it ``<name>.rejected``."""
        for part, found in scan(self.path, self.run, fields, owns):
            if isinstance(found, Rejected):
                self._reject(part, str(found))
            else:
                yield found

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
        stored = _sealed(arrays, self.run, index)
        name = self.path / f"part-{int(index[0]):012d}-{len(index)}.npz"
        _write_atomically(name, lambda f: np.savez(f, **stored), self.tag)

    def attach(self, name: str, arrays: dict) -> None:
        """Keep ``arrays`` as ``<name>.npz``, a file every writer of the run gives the same
        contents: the writer stores it if absent (like a chunk), and anyone checks it against
        ``arrays`` if present. ValueError naming the file and the fields that differ."""
        target = self.path / f"{name}.npz"
        with self._setting_up():
            if not target.exists():
                if self.writer:
                    stored = _sealed(arrays, self.run)
                    _write_atomically(target, lambda f: np.savez(f, **stored), self.tag)
                return
        stored = read_attachment(self.path, name, self.run)
        different = [_difference(k, stored.get(k), arrays.get(k)) for k in sorted(set(stored) | set(arrays))]
        different = [d for d in different if d]
        if different:
            raise ValueError(
                f"checkpoint: {str(target)!r} differs from this run's in {'; '.join(different)}; every part of one run "
                "must be started with the same settings (or use another directory)"
            )


class Rejected(Exception):
    """A stored file that must not be used; the message says why."""


def run_id(text: str) -> str:
    """The identity of the run whose fingerprint is the JSON ``text`` (sorted keys)."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def stored_run(path) -> tuple[dict, str]:
    """The fingerprint in directory ``path``'s ``run.json`` and the run's identity; ValueError
    naming the file if it is missing or damaged."""
    run_file = Path(path) / RUN_FILE
    if not run_file.exists():
        raise ValueError(f"checkpoint {str(path)!r} holds no run: it has no {RUN_FILE}")
    stored = _read_run(run_file)
    return stored, run_id(json.dumps(stored, sort_keys=True))


def read_attachment(path, name: str, run: str) -> dict:
    """The arrays of the attachment ``<name>.npz`` of run ``run`` in directory ``path``;
    ValueError naming the file if it is missing, damaged, altered or of another run."""
    target = Path(path) / f"{name}.npz"
    if not target.exists():
        raise ValueError(f"checkpoint {str(path)!r} has no {target.name}")
    try:
        return _unsealed(target, run)
    except Rejected as why:
        raise ValueError(f"checkpoint: {str(target)!r} cannot be used: {why}; delete it to write it again") from None


def scan(path: Path, run: str, fields: dict, owns=None):
    """``(file, (index, arrays))`` for each chunk file in ``path`` that passes every check of
    ``Checkpoint.load``, ``(file, Rejected(why))`` for each other one, in name order; with
    ``owns``, only the files whose first replicate ``r`` has ``owns(r)`` true."""
    reps = len(next(iter(fields.values())))
    holder = np.full(reps, -1, np.int32)  # which accepted file holds each replicate
    accepted = []
    for part in sorted(path.iterdir()):
        claim = PART.fullmatch(part.name)
        if claim is None or (owns is not None and not owns(int(claim[1]))):
            continue
        try:
            index, arrays = _checked(part, int(claim[1]), int(claim[2]), run, fields)
            _check_free(index, holder, accepted)
        except Rejected as why:
            yield part, why
            continue
        holder[index] = len(accepted)
        accepted.append(part.name)
        yield part, (index, arrays)


def _checked(part: Path, first: int, count: int, run: str, fields: dict):
    """``(index, arrays)`` of the chunk file ``part``, named for replicates ``first`` and
    ``count``, if it passes every check; raises Rejected saying why otherwise."""
    arrays = _unsealed(part, run)
    expected = {"index", *fields}
    if set(arrays) != expected:
        raise Rejected(f"it holds the fields {sorted(arrays)}, expected {sorted(expected)}")
    index = arrays.pop("index")
    _check_index(index, first, count, len(next(iter(fields.values()))))
    for name, a in arrays.items():
        want = fields[name]
        if a.shape != (count, *want.shape[1:]) or a.dtype.kind != want.dtype.kind:
            raise Rejected(
                f"{name} has shape {a.shape} and dtype {a.dtype}, expected shape {(count, *want.shape[1:])} "
                f"and dtype {want.dtype}"
            )
    return index, arrays


def _check_free(index: np.ndarray, holder: np.ndarray, accepted: list) -> None:
    """Raise Rejected if an accepted chunk (``holder``: its number per replicate) already holds
    any of the replicates ``index``."""
    taken = holder[index]
    if (taken >= 0).any():
        raise Rejected(f"another chunk ({accepted[int(taken[taken >= 0][0])]}) already holds some of its replicates")


def _check_index(index: np.ndarray, first: int, count: int, reps: int) -> None:
    """Raise Rejected unless ``index`` holds ``count`` strictly increasing replicates of
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
        raise Rejected(
            f"its index ({index.dtype}{list(index.shape)}) is not {count} increasing replicates from {first} "
            f"within 0..{reps - 1}, as its name claims"
        )


def _sealed(arrays: dict, run: str, index=None) -> dict:
    """``arrays`` (with a chunk's replicates ``index`` first) and the run's identity, and a
    digest of all of these, as they are stored."""
    head = {} if index is None else {"index": np.asarray(index)}
    stored = {**head, "run": np.asarray(run), **arrays}
    stored["digest"] = np.asarray(tree_digest(stored))
    return stored


def _unsealed(file: Path, run: str) -> dict:
    """The arrays ``_sealed`` stored in ``file``, without the seal; raises Rejected if the file
    cannot be read, holds no seal, was written by another run or does not match its digest."""
    try:
        with np.load(file, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except Exception as err:  # truncated, emptied, flipped bytes, not an .npz: any damage means unusable
        raise Rejected(f"it cannot be read ({type(err).__name__}: {err})") from None
    if not {"run", "digest"} <= set(arrays):
        raise Rejected(f"it holds the fields {sorted(arrays)}, without a run identity and digest")
    digest = str(arrays.pop("digest"))
    if str(arrays["run"]) != run:
        raise Rejected("it was written by another run")
    if digest != tree_digest(arrays):
        raise Rejected("its contents do not match their digest (the file was altered)")
    del arrays["run"]
    return arrays


def _difference(name: str, stored, new) -> str:
    """How field ``name`` of an attachment differs between the stored and the new arrays
    ("" where they are the same)."""
    if stored is not None and new is not None and tree_digest(stored) == tree_digest(new):
        return ""
    if stored is not None and new is not None and np.ndim(stored) == 0 and np.ndim(new) == 0:
        return f"{name} ({stored} stored, {new} in this run)"
    return name


def _read_run(run_file: Path) -> dict:
    """The fingerprint in ``run_file``; ValueError naming it if it cannot be read."""
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
    return stored


def _locks(path: Path, shard) -> list:
    """The open, locked lock files of directory ``path`` (none where the platform has no
    locks): ``.jaxmle.lock`` exclusively, or for ``shard=(i, K)`` shared, with the shard's
    own lock file exclusively. Raises ValueError naming the directory if a lock is held."""
    if fcntl is None:
        return []
    if shard is None:
        return [_lock(path / LOCK_FILE, fcntl.LOCK_EX, f"checkpoint {str(path)!r} is in use by another run")]
    i, k = shard
    whole = _lock(path / LOCK_FILE, fcntl.LOCK_SH, f"checkpoint {str(path)!r} is in use by an unsharded run")
    try:
        own = _lock(
            path / f".jaxmle-shard-{i}-of-{k}.lock",
            fcntl.LOCK_EX,
            f"checkpoint {str(path)!r}: shard {i} of {k} is already running",
        )
    except BaseException:
        whole.close()
        raise
    return [whole, own]


def _lock(file: Path, mode: int, busy: str):
    """``file`` opened and locked (``mode``: fcntl.LOCK_EX or LOCK_SH). An exclusive holder
    writes its process id there, a shared one empties it. Raises ValueError (``busy``, with
    the holder's process id where known) if another process holds it."""
    f = open(file, "a+")
    try:
        fcntl.flock(f, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip()
        f.close()
        raise ValueError(
            busy + (f" (process {holder})" if holder.isdigit() else "") + "; wait until it finishes, or use another "
            "directory"
        ) from None
    f.truncate(0)
    if mode == fcntl.LOCK_EX:
        f.write(str(os.getpid()))
    f.flush()
    return f


def _write_atomically(target: Path, write, tag: str | None = None) -> None:
    """Write ``target`` through a temporary file (marked with ``tag``, a shard's) and an
    atomic rename."""
    mark = "" if tag is None else f"{tag}-"
    tmp = target.parent / f".tmp-jaxmle-{mark}{os.getpid()}-{secrets.token_hex(8)}"
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
