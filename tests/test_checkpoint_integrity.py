"""Checkpoints never reuse a wrong result and never lose one: runs whose code or globals
changed, chunks that are damaged, edited, renamed or foreign, a damaged run.json, the
user's own files in the directory, two processes racing on one directory, and the
command's --out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.scipy.stats import norm

import jaxmle as jm
from jaxmle import checkpoint
from jaxmle.batch import runner

ROOT = Path(__file__).resolve().parents[1]
X = np.random.default_rng(0).normal(1.0, 1.0, size=(12, 20))
INIT = {"mu": 0.0}
OFFSET = 0.0
SHIFT = np.zeros(20)


def loglik(p, x):
    return norm.logpdf(x, p["mu"] + OFFSET + SHIFT, 1.0)


def run(path, data=X, fn=loglik):
    return jm.fit_batch(fn, INIT, data, chunk_size=4, checkpoint=path)


@pytest.fixture(scope="module")
def straight():
    return jm.fit_batch(loglik, INIT, X)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A finished checkpoint of ``run``: three chunks of four replicates."""
    path = tmp_path_factory.mktemp("whole") / "c"
    run(path)
    return path


@pytest.fixture
def copy(whole, tmp_path):
    """A fresh copy of the finished checkpoint."""
    return Path(shutil.copytree(whole, tmp_path / "c"))


@pytest.fixture
def fitted(monkeypatch):
    """The replicates that fit_batch actually fits (rather than loads)."""
    seen = []
    real = runner.fit_chunk
    monkeypatch.setattr(
        runner, "fit_chunk", lambda prep, src, index, *rest: seen.extend(index) or real(prep, src, index, *rest)
    )
    return seen


def assert_same(res, straight):
    np.testing.assert_array_equal(res.estimates, straight.estimates)
    np.testing.assert_array_equal(res.cov, straight.cov)
    np.testing.assert_array_equal(res.status, straight.status)


def part(path, first):
    return path / f"part-{first:012d}-4.npz"


# --- 1. the fingerprint is what runs ----------------------------------------------------------
class Shifted:
    def __init__(self, shift):
        self.shift = shift

    def __call__(self, p, x):
        return norm.logpdf(x, p["mu"] + self.shift, 1.0)


def test_a_changed_global_or_object_state_is_not_resumed(tmp_path, monkeypatch):
    run(tmp_path / "c")
    monkeypatch.setattr(sys.modules[__name__], "OFFSET", 10.0)  # a module global the loglik reads
    with pytest.raises(ValueError, match="belongs to a different run .*loglik"):
        run(tmp_path / "c")
    monkeypatch.setattr(sys.modules[__name__], "OFFSET", 0.0)
    monkeypatch.setattr(sys.modules[__name__], "SHIFT", np.full(20, 1e-12))  # a global array, by its bytes
    with pytest.raises(ValueError, match="belongs to a different run .*loglik"):
        run(tmp_path / "c")
    shifted = Shifted(0.0)
    run(tmp_path / "object", fn=shifted)
    shifted.shift = 3.0  # a callable's state
    with pytest.raises(ValueError, match="belongs to a different run .*loglik"):
        run(tmp_path / "object", fn=shifted)


def test_a_python_callback_cannot_be_fingerprinted_so_it_is_refused(tmp_path):
    def called_back(p, x):
        offset = jax.pure_callback(lambda: np.float64(OFFSET), jax.ShapeDtypeStruct((), np.float64))
        return norm.logpdf(x, p["mu"] + offset, 1.0)

    with pytest.raises(ValueError, match="checkpoint: loglik calls back into Python .*pure_callback"):
        run(tmp_path / "c", fn=called_back)


RUN = """
import json, sys
import numpy as np
sys.path.insert(0, {root!r})
from tests import test_checkpoint_integrity as t
t.OFFSET = float(sys.argv[2])
seen = []
real = t.runner.fit_chunk
t.runner.fit_chunk = lambda prep, src, index, *rest: seen.extend(index) or real(prep, src, index, *rest)
res = t.run(sys.argv[1])
print(json.dumps({{"fitted": len(seen), "mu": res.params["mu"].tolist()}}))
"""


def run_process(path, offset):
    return subprocess.run(
        [sys.executable, "-c", RUN.format(root=str(ROOT)), str(path), str(offset)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_between_processes_a_changed_global_is_refused_and_the_same_code_resumes(copy):
    changed = run_process(copy, 10.0)  # the checkpoint was written by this process with OFFSET = 0
    assert changed.returncode != 0
    assert "belongs to a different run (it differs in loglik)" in changed.stderr
    same = run_process(copy, 0.0)
    assert same.returncode == 0, same.stderr
    resumed = json.loads(same.stdout)
    assert resumed["fitted"] == 0
    np.testing.assert_allclose(resumed["mu"], X.mean(axis=1), rtol=1e-12)  # the Gaussian MLE


# --- 2, 3. every chunk is checked before use ------------------------------------------------
def _flip(f):
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    f.write_bytes(bytes(raw))


def _edit(f, change):
    with np.load(f) as stored:
        arrays = dict(stored)
    change(arrays)
    np.savez(f, **arrays)


def _resave(path, index, change):
    """A chunk written by jaxmle itself (this run's identity, a matching digest), but wrong."""
    fingerprint = json.loads((path / "run.json").read_text())
    with np.load(part(path, 0)) as stored:
        arrays = {k: stored[k] for k in stored.files if k not in ("index", "run", "digest")}
    change(arrays)
    checkpoint.Checkpoint(path, fingerprint, writer=False).save(np.asarray(index), arrays)


def _foreign(path):
    other = path.parent / "other"
    run(other, data=X + 1.0)
    shutil.copy(part(other, 0), part(path, 0))


DAMAGE = {
    "truncated": lambda p: part(p, 0).write_bytes(part(p, 0).read_bytes()[:300]),
    "emptied": lambda p: part(p, 0).write_bytes(b""),
    "byte flipped": lambda p: _flip(part(p, 0)),
    "not an npz": lambda p: part(p, 0).write_bytes(np.zeros(4).tobytes()),
    "field missing": lambda p: _edit(part(p, 0), lambda a: a.pop("cov")),
    "index edited": lambda p: _edit(part(p, 0), lambda a: a.update(index=a["index"] + 4)),
    "estimates edited": lambda p: _edit(part(p, 0), lambda a: a["estimates"].__setitem__(0, 5.0)),
    "index not increasing": lambda p: _resave(p, [0, 99, 2, 3], lambda a: None),
    "renamed": lambda p: part(p, 4).replace(part(p, 0)),
    "foreign run": _foreign,
    "broadcastable shapes": lambda p: _resave(
        p, range(4), lambda a: a.update(status=a["status"][:1], estimates=a["estimates"][:1])
    ),
    "overlapping": lambda p: _resave(p, range(2, 6), lambda a: None),
}
REDONE = {"renamed": list(range(8)), "overlapping": []}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_edited_or_foreign_chunk_is_recomputed_with_a_warning(copy, damage, straight, fitted):
    path = copy
    DAMAGE[damage](path)
    fitted.clear()
    culprit = f"part-{2 if damage == 'overlapping' else 0:012d}-4.npz"  # a chunk claiming another's replicates
    with pytest.warns(RuntimeWarning, match=f"checkpoint: not using .*{culprit}.*computed again"):
        resumed = run(path)
    assert_same(resumed, straight)
    assert sorted(fitted) == REDONE.get(damage, [0, 1, 2, 3])
    assert (path / (culprit + ".rejected")).exists()
    fitted.clear()
    assert_same(run(path), straight)  # now whole again: nothing to redo, nothing to warn about
    assert fitted == []


def test_a_damaged_run_file_is_a_clear_error_and_deleting_it_keeps_the_chunks(copy, straight, fitted):
    for content in (b'{"kind": "fit_ba', b"", b"[1, 2]", b"null", b"\xff\xfe\x00garbage"):
        (copy / "run.json").write_bytes(content)
        with pytest.raises(ValueError, match=r"checkpoint: '.*run\.json' is damaged .*delete that file"):
            run(copy)
    (copy / "run.json").unlink()
    assert_same(run(copy), straight)  # every chunk carries this run's identity: all of them are used
    assert fitted == []


# --- 4. only jaxmle's own temporary files are removed; "" is not a directory ------------------
def test_opening_removes_only_jaxmles_own_temporary_files(tmp_path, straight):
    path = tmp_path / "c"
    path.mkdir()
    mine = [path / ".tmp-notes.txt", path / ".tmp-1234", path / ".tmp-jaxmle-draft"]
    for f in mine:
        f.write_text("the user's")
    stale = path / ".tmp-jaxmle-4242-0123456789abcdef"  # what a killed jaxmle run leaves
    stale.write_bytes(b"half a chunk")
    assert_same(run(path), straight)
    assert all(f.read_text() == "the user's" for f in mine)
    assert not stale.exists()


def test_an_empty_checkpoint_path_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match='checkpoint must name a directory, got ""'):
        run("")
    with pytest.raises(ValueError, match="checkpoint must name a directory"):
        jm.simulation_study(jm.models.poisson(), {"rate": 2.0}, 10, 4, seed=0, checkpoint="")
    with pytest.raises(ValueError, match="checkpoint must be a directory path, got int"):
        run(3)
    assert list(tmp_path.iterdir()) == []


# --- 5. two processes on one directory ----------------------------------------------------------
RACER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests import test_checkpoint_integrity as t
path = Path(sys.argv[1])
real_replace, parts = os.replace, []
def paused(src, dst):
    if str(dst).endswith(".npz"):
        parts.append(dst)
        if len(parts) == 2:  # the second chunk is written, not yet renamed: wait for the other process
            (path.parent / "paused").touch()
            deadline = time.monotonic() + 100
            while not (path.parent / "go").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    real_replace(src, dst)
t.checkpoint.os.replace = paused
t.run(path)
print("finished")
"""


def test_a_second_process_is_refused_and_the_first_loses_nothing(tmp_path, straight, fitted):
    path = tmp_path / "c"
    first = subprocess.Popen(
        [sys.executable, "-c", RACER.format(root=str(ROOT)), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 100
        while not (tmp_path / "paused").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = run_process(path, 0.0)
        assert second.returncode != 0
        assert f"checkpoint {str(path)!r} is in use by another run (process {first.pid})" in second.stderr
        (tmp_path / "go").touch()
        out, err = first.communicate(timeout=100)
    finally:
        first.kill()
    assert first.returncode == 0 and out.strip() == "finished", err
    assert sorted(f.name for f in path.glob("part-*")) == [part(path, i).name for i in (0, 4, 8)]
    assert not list(path.glob(".tmp-*"))
    fitted.clear()
    assert_same(run(path), straight)  # the lock went with the first process; every chunk is there
    assert fitted == []


# --- 6. the command checks --out before the study ------------------------------------------
@pytest.mark.parametrize("kind", ["file", "under a file", "empty"])
def test_simulate_checks_out_before_running_the_study(tmp_path, monkeypatch, capsys, kind):
    from jaxmle import cli

    (tmp_path / "taken").write_text("not a directory")
    out = {"file": tmp_path / "taken", "under a file": tmp_path / "taken" / "sub", "empty": ""}[kind]
    monkeypatch.setattr(jm, "simulation_study", lambda *a, **k: pytest.fail("the study ran"))
    code = cli.main(["simulate", "poisson", "--n", "10", "--reps", "4", "--truth", "rate=3", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("jaxmle simulate: error: --out: "), err
