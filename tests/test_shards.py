"""Job-array shards: the K parts of a simulation study, run in any order, in one process or
several (one killed and rerun), assemble with ``load_study`` into the StudyResult of one
unsharded run, bit for bit; parts that are missing, overlap, or belong to another run are
refused by name; a run in flight reports its progress; the command line does the same."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxmle as jm
from jaxmle import checkpoint, cli
from jaxmle import study as study_module
from jaxmle.batch import runner
from jaxmle.commands import simulate as simulate_command
from jaxmle.parameters import build_space
from jaxmle.study_store import StudyDesign, design_arrays, design_of

ROOT = Path(__file__).resolve().parents[1]
REPS, CHUNK = 120, 20  # six chunks: shard i of 3 holds chunks i and i + 3
MODEL = jm.models.poisson()  # one instance: its compiled programs serve every test
STATISTICS = ("bias", "sd", "mean_se", "rmse", "coverage", "crlb_sd", "efficiency")


def study(checkpoint=None, shard=None, seed=1, chunk_size=CHUNK, reps=REPS):
    return jm.simulation_study(
        MODEL,
        {"rate": 3.0},
        30,
        reps,
        seed=seed,
        chunk_size=chunk_size,
        progress=False,
        checkpoint=checkpoint,
        shard=shard,
    )


@pytest.fixture(scope="module")
def straight():
    """One unsharded run, without a checkpoint."""
    return study()


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """A directory where all three shards have run, in the order 2, 0, 1, with the progress
    each returned."""
    path = tmp_path_factory.mktemp("sharded") / "c"
    return path, [study(path, (i, 3)) for i in (2, 0, 1)]


@pytest.fixture
def copy(sharded, tmp_path):
    return Path(shutil.copytree(sharded[0], tmp_path / "c"))


def assert_same_study(merged, single):
    fits, ref = merged.fits, single.fits
    for name in ("estimates", "standard_errors", "status", "converged", "cov", "information", "loglik", "n_iter"):
        np.testing.assert_array_equal(getattr(fits, name), getattr(ref, name), err_msg=name)
    np.testing.assert_array_equal(fits.params["rate"], ref.params["rate"])
    for name in STATISTICS:
        jax.tree_util.tree_map(np.testing.assert_array_equal, getattr(merged, name), getattr(single, name))
    jax.tree_util.tree_map(np.testing.assert_array_equal, merged.mcse, single.mcse)
    assert merged.flat.keys() == single.flat.keys()
    for name, values in single.flat.items():
        np.testing.assert_array_equal(merged.flat[name], values, err_msg=name)
    assert (merged.n, merged.reps, merged.used, merged.label) == (single.n, single.reps, single.used, single.label)
    assert merged.crlb_source == single.crlb_source and fits.names == ref.names
    assert merged.summary() == single.summary()


# --- 1. shards in any order, in one process ---------------------------------------------------
def test_three_shards_in_any_order_merge_to_the_unsharded_run(sharded, straight):
    path, progress = sharded
    assert [p.done for p in progress] == [40, 80, 120]
    assert progress[0].shards == [(0, 40), (0, 40), (40, 40)]
    assert progress[0].missing == [(0, 39), (60, 99)]
    assert progress[-1].complete and progress[-1].missing == []
    assert sorted(f.name for f in path.glob("part-*")) == [f"part-{i * CHUNK:012d}-{CHUNK}.npz" for i in range(6)]
    assert not list(path.glob(".tmp-*")) and not list(path.glob("*.rejected"))
    assert_same_study(jm.load_study(path), straight)


def test_an_unsharded_checkpoint_loads_too(tmp_path, straight):
    study(tmp_path / "c")
    assert_same_study(jm.load_study(tmp_path / "c"), straight)


def test_a_shard_run_again_fits_nothing(copy, monkeypatch):
    monkeypatch.setattr(runner, "fit_chunk", lambda *args: pytest.fail("fitted a stored chunk again"))
    assert study(copy, (1, 3)).complete


# --- 2. shards as processes, one killed and rerun -------------------------------------------
WORKER = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from jaxmle import checkpoint
from tests.test_shards import study
path, i, kill = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "kill"
real_replace, parts = os.replace, []
def dying(src, dst):
    if kill and Path(dst).name.startswith("part-"):
        parts.append(dst)
        if len(parts) == 2:  # killed while writing its second chunk: a temporary file is left behind
            os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
checkpoint.os.replace = dying
print(study(path, (i, 3)))
"""


def worker(path, i, kill=False):
    return subprocess.Popen(
        [sys.executable, "-c", WORKER.format(root=str(ROOT)), str(path), str(i), "kill" if kill else "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.slow
def test_shards_as_processes_one_killed_and_rerun_merge_to_the_unsharded_run(tmp_path, straight):
    path = tmp_path / "c"
    killed = worker(path, 2, kill=True)
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    stale = list(path.glob(".tmp-jaxmle-s2of3-*"))
    assert len(stale) == 1
    others = [worker(path, i) for i in (0, 1)]  # at the same time, on the same directory
    for p in others:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert stale[0].exists()  # the other shards leave shard 2's files alone
    progress = jm.study_progress(path)
    assert (progress.done, progress.shards, progress.missing) == (100, [(40, 40), (40, 40), (20, 40)], [(100, 119)])
    with pytest.raises(ValueError, match=r"missing replicates: 100-119 \(of shard 2 of 3"):
        jm.load_study(path)
    rerun = worker(path, 2)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0 and "120 of 120 replicates stored" in out, err
    assert not stale[0].exists()
    assert_same_study(jm.load_study(path), straight)


# --- 3. refusals ----------------------------------------------------------------------------
def test_a_missing_shard_is_named_with_its_replicates(tmp_path):
    for i in (0, 2):
        study(tmp_path / "c", (i, 3))
    with pytest.raises(
        ValueError, match=r"\(80 of 120 replicates\)\nmissing replicates: 20-39, 80-99 \(of shard 1 of 3"
    ):
        jm.load_study(tmp_path / "c")


def test_a_part_of_another_run_is_refused_by_name(copy, tmp_path):
    other = tmp_path / "other"
    study(other, (1, 3), seed=2)
    with pytest.raises(ValueError, match="belongs to a different run .*seed"):
        study(copy, (1, 3), seed=2)
    shutil.copy(other / "part-000000000020-20.npz", copy / "part-000000000020-20.npz")
    with pytest.raises(ValueError, match=r"not used: part-000000000020-20\.npz: it was written by another run"):
        jm.load_study(copy)


def test_overlapping_parts_are_refused_by_name(tmp_path):
    study(tmp_path / "a", chunk_size=40)  # unsharded runs may change the chunk size, so their parts may overlap
    study(tmp_path / "b", chunk_size=20)
    shutil.copy(tmp_path / "b" / "part-000000000020-20.npz", tmp_path / "a")
    pattern = r"part-000000000020-20\.npz: another chunk \(part-000000000000-40\.npz\) already holds some"
    with pytest.raises(ValueError, match=pattern):
        jm.load_study(tmp_path / "a")


def test_a_shard_of_another_count_or_chunk_size_is_refused(copy):
    with pytest.raises(ValueError, match=r"shards\.npz' differs from this run's in shards \(3 stored, 2 in this run\)"):
        study(copy, (0, 2))
    with pytest.raises(ValueError, match="belongs to a different run .*chunk_size"):
        study(copy, (0, 3), chunk_size=30)
    with pytest.raises(ValueError, match="belongs to a different run"):
        study(copy)  # an unsharded run is another run too


@pytest.mark.parametrize("shard", [(3, 3), (-1, 2), "1/2", (1,), (0, 0), (True, 2), (0.0, 2)])
def test_bad_shards_are_refused_before_anything_runs(tmp_path, monkeypatch, shard):
    monkeypatch.setattr(study_module, "_generator", lambda *a: pytest.fail("simulated before checking shard"))
    with pytest.raises(ValueError, match="shard"):
        study(tmp_path / "c", shard)
    with pytest.raises(ValueError, match="shard: a sharded run needs checkpoint="):
        study(None, (0, 2))
    assert not (tmp_path / "c").exists()


def test_shards_coexist_but_a_shard_runs_once_and_excludes_unsharded_runs(tmp_path):
    run = {"kind": "test"}
    with checkpoint.Checkpoint(tmp_path, run, shard=(0, 3)), checkpoint.Checkpoint(tmp_path, run, shard=(1, 3)):
        with pytest.raises(ValueError, match=f"shard 0 of 3 is already running \\(process {os.getpid()}\\)"):
            checkpoint.Checkpoint(tmp_path, run, shard=(0, 3))
        with pytest.raises(ValueError, match="is in use by another run"):
            checkpoint.Checkpoint(tmp_path, run)
    with checkpoint.Checkpoint(tmp_path, run):
        with pytest.raises(ValueError, match=f"in use by an unsharded run \\(process {os.getpid()}\\)"):
            checkpoint.Checkpoint(tmp_path, run, shard=(2, 3))


def test_shards_of_different_counts_started_at_once_are_not_both_accepted(tmp_path, monkeypatch):
    """The first shard is held between finding no shards.npz and writing it; a shard of
    another K started meanwhile must wait and be refused, not write its own K and go on."""
    import threading

    sealed, inside = checkpoint._sealed, threading.Event()

    def slow_sealed(arrays, run, *rest):
        if not inside.is_set():
            inside.set()
            time.sleep(0.5)
        return sealed(arrays, run, *rest)

    monkeypatch.setattr(checkpoint, "_sealed", slow_sealed)
    run, outcome = {"kind": "test"}, {}

    def start(shard):
        try:
            with checkpoint.Checkpoint(tmp_path, run, shard=shard):
                outcome[shard] = "accepted"
        except ValueError as err:
            outcome[shard] = str(err)

    first = threading.Thread(target=start, args=((0, 2),))
    first.start()
    assert inside.wait(10)
    start((1, 3))
    first.join()
    assert outcome[(0, 2)] == "accepted"
    assert "shards (2 stored, 3 in this run)" in outcome[(1, 3)]
    stored = checkpoint.read_attachment(tmp_path, checkpoint.SHARDS, checkpoint.stored_run(tmp_path)[1])
    assert int(stored["shards"]) == 2


def test_a_directory_without_a_study_is_refused(tmp_path):
    with pytest.raises(ValueError, match="holds no run"):
        jm.load_study(tmp_path)
    with pytest.raises(ValueError, match="holds no run"):
        jm.study_progress(tmp_path)


# --- 4. progress of a run in flight ---------------------------------------------------------
def test_progress_of_a_run_in_flight(tmp_path):
    path = tmp_path / "c"
    saves = []
    real_save = checkpoint.Checkpoint.save

    def killed_after_one(self, index, arrays):
        if saves:
            raise KeyboardInterrupt
        saves.append(index)
        real_save(self, index, arrays)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(checkpoint.Checkpoint, "save", killed_after_one)
        with pytest.raises(KeyboardInterrupt):
            study(path, (1, 3))
    progress = jm.study_progress(path)
    assert (progress.reps, progress.done, progress.complete) == (REPS, 20, False)
    assert progress.shards == [(0, 40), (20, 40), (0, 40)]
    assert progress.missing == [(0, 19), (40, 119)]
    assert "20 of 120 replicates stored (16.7%)" in str(progress) and "shard 1 of 3: 20 of 40" in str(progress)


# --- 5. what the shards store ---------------------------------------------------------------
def test_the_stored_design_rebuilds_nested_parameters_constraints_labels_and_held_elements():
    init = {"a": {"b": 1.0, "c": (np.zeros(2), 2.0)}, "d": [np.ones(3)], "s": np.full(2, 0.5), "w": 4.0}
    constraints = {"a": jm.interval(0.0, 5.0), "d": jm.simplex, "s": jm.ordered, "w": jm.positive}
    space, values = build_space(init, constraints, {"w": 4.0})
    space = space.with_held({"s": ((1, 0.25),)}).with_labels({"d": ("x", "y", "z")})
    design = StudyDesign(
        truth=jax.tree_util.tree_unflatten(space.treedef, values),
        n=7,
        reps=9,
        label="custom / model",
        space=space,
        fixed_leaves=[np.asarray(4.0)],
        method="newton",
        nobs=7,
        crlb_var=np.arange(8.0),
    )
    back = design_of(design_arrays(design))
    assert back.space == space and back.space.labels == space.labels and back.space.names == space.names
    assert [leaf.constraint for leaf in back.space.leaves] == [leaf.constraint for leaf in space.leaves]
    assert jax.tree_util.tree_structure(back.truth) == jax.tree_util.tree_structure(design.truth)
    jax.tree_util.tree_map(np.testing.assert_array_equal, back.truth, design.truth)
    np.testing.assert_array_equal(back.crlb_var, design.crlb_var)
    assert (back.n, back.reps, back.label, back.method, back.nobs) == (7, 9, "custom / model", "newton", 7)


def test_a_structure_json_cannot_hold_is_refused_for_a_shard(tmp_path):
    from collections import namedtuple

    Rate = namedtuple("Rate", "rate")
    space, values = build_space(Rate(3.0), {}, {})
    design = StudyDesign(Rate(3.0), 5, 5, "m", space, [], "newton", 5, None)
    with pytest.raises(ValueError, match="cannot be stored for jm.load_study.*not Rate"):
        design_arrays(design)


# --- 6. the command line --------------------------------------------------------------------
def test_cli_shards_and_merge(tmp_path, capsys, monkeypatch, straight):
    monkeypatch.setattr(simulate_command, "_model", lambda name, args: MODEL)  # (compiled already)
    path = str(tmp_path / "c")
    command = ["simulate", "poisson", "--n", "30", "--reps", str(REPS), "--seed", "1", "--truth", "rate=3"]
    command += ["--chunk-size", str(CHUNK), "--checkpoint", path]
    for i in (1, 0):
        assert cli.main([*command, "--shard", f"{i}/3"]) == 0
    assert "shard 0 of 3 is done" in capsys.readouterr().out
    assert cli.main(["merge", path]) == 1
    assert "missing replicates: 40-59, 100-119 (of shard 2 of 3" in capsys.readouterr().err
    assert cli.main(["merge", path, "--progress"]) == 0
    assert "80 of 120 replicates stored" in capsys.readouterr().out
    assert cli.main([*command, "--shard", "2/3"]) == 0
    assert "jaxmle merge" in capsys.readouterr().out
    assert cli.main(["merge", path]) == 0
    assert capsys.readouterr().out.strip() == straight.summary()


@pytest.mark.parametrize("text", ["3/3", "1", "a/b", "-1/2", "1/0"])
def test_cli_bad_shard_text_names_the_option(text, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["simulate", "poisson", "--n", "5", "--reps", "5", "--checkpoint", "c", f"--shard={text}"])
    assert exit_.value.code == 2
    assert (
        f"argument --shard: expected i/K with 0 <= i < K (part i of K, e.g. 0/10), got {text!r}"
        in capsys.readouterr().err
    )


def test_cli_shard_needs_a_checkpoint(capsys):
    assert cli.main(["simulate", "poisson", "--n", "5", "--reps", "5", "--shard", "0/2"]) == 2
    assert "--shard needs --checkpoint DIR" in capsys.readouterr().err
