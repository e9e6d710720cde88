"""fit_batch: agreement with closed forms and with a loop of fit, failure isolation, chunking,
devices and checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmle as jm
from jaxmle.status import Status

ROOT = Path(__file__).resolve().parents[1]


def logistic_loglik(params, data):
    eta = data["X"] @ params["beta"]
    return data["y"] * eta - jnp.logaddexp(0.0, eta)


def logistic_data(reps, n=200, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([np.ones((reps, n, 1)), rng.normal(size=(reps, n, p - 1))], axis=2)
    beta = np.linspace(0.5, -0.5, p)
    y = (rng.uniform(size=(reps, n)) < 1 / (1 + np.exp(-X @ beta))).astype(float)
    return {"X": X, "y": y}


def normal_loglik(params, x):
    return jax.scipy.stats.norm.logpdf(x, params["mu"], params["sigma"])


@dataclass(frozen=True)
class NormalModel(jm.models.Model):
    """N(mu, sigma²) with per-dataset starting values (a test-local model)."""

    name: str = "normal"

    @property
    def constraints(self):
        return {"sigma": jm.positive}

    def loglik(self, params, x):
        return normal_loglik(params, x)

    def init(self, x):
        return {"mu": jnp.median(x), "sigma": jnp.std(x) + 1.0}


def test_normal_batch_matches_closed_form():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, size=(40, 25))
    res = jm.fit_batch(normal_loglik, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive})
    assert res.status.shape == (40,) and np.all(res.status == Status.CONVERGED)
    sigma = x.std(axis=1)  # the MLE divides by n
    np.testing.assert_allclose(res.params["mu"], x.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(res.params["sigma"], sigma, rtol=1e-12)
    np.testing.assert_allclose(res.se["mu"], sigma / np.sqrt(25), rtol=1e-9)
    np.testing.assert_allclose(res.se["sigma"], sigma / np.sqrt(50), rtol=1e-9)
    expected_ll = -25 / 2 * (np.log(2 * np.pi * sigma**2) + 1)
    np.testing.assert_allclose(res.loglik, expected_ll, rtol=1e-12)
    np.testing.assert_allclose(res.aic, 4 - 2 * expected_ll, rtol=1e-12)
    np.testing.assert_allclose(res.bic, 2 * np.log(25) - 2 * expected_ll, rtol=1e-12)


def test_model_starts_each_replicate_from_its_own_data():
    x = np.random.default_rng(2).normal(size=(6, 30)) * np.arange(1, 7)[:, None] + 50 * np.arange(6)[:, None]
    res = jm.fit_batch(NormalModel(), x)
    np.testing.assert_allclose(res.params["mu"], x.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(res.params["sigma"], x.std(axis=1), rtol=1e-12)


def test_fit_batch_equals_a_loop_of_fit():
    data = logistic_data(6)
    res = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data, batched_init=False)
    for i in [0, 3, 5]:
        one = jm.fit(logistic_loglik, {"beta": np.zeros(3)}, {"X": data["X"][i], "y": data["y"][i]})
        np.testing.assert_allclose(res.params["beta"][i], one.params["beta"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res.cov[i], one.cov, rtol=1e-8)
        assert res.loglik[i] == pytest.approx(one.loglik, rel=1e-12)
        assert res.status[i] == one.status and res.nobs == one.nobs == 200
        single = res[i]
        assert isinstance(single, jm.FitResult) and single.summary().count("beta[") == 3
        np.testing.assert_allclose(single.se["beta"], one.se["beta"], rtol=1e-8)


def test_logistic_batch_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    data = logistic_data(3, n=300, p=4, seed=5)
    res = jm.fit_batch(logistic_loglik, {"beta": np.zeros(4)}, data)
    for i in range(3):
        ref = sm.Logit(data["y"][i], data["X"][i]).fit(disp=0, tol=1e-12)
        np.testing.assert_allclose(res.params["beta"][i], ref.params, rtol=1e-7)
        np.testing.assert_allclose(res.se["beta"][i], ref.bse, rtol=1e-6)


def test_poisoned_batch_isolates_every_failure():
    data = logistic_data(10)
    clean = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data)
    poisoned = {k: v.copy() for k, v in data.items()}
    poisoned["X"][2, 5, 1] = np.nan  # non-finite data in one replicate
    poisoned["y"][7] = (poisoned["X"][7, :, 1] > 0).astype(float)  # perfectly separable
    res = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, poisoned)
    assert res.status[2] == Status.INVALID_DATA and not res.converged[2]
    assert np.all(np.isnan(res.params["beta"][2])) and np.isnan(res.loglik[2])
    assert res.status[7] == Status.NO_FINITE_MAXIMUM and not res.converged[7]
    others = np.setdiff1d(np.arange(10), [2, 7])
    assert np.all(res.status[others] == Status.CONVERGED)
    np.testing.assert_allclose(res.params["beta"][others], clean.params["beta"][others], rtol=1e-12)
    np.testing.assert_allclose(res.cov[others], clean.cov[others], rtol=1e-10)
    text = res.summary()
    assert "INVALID_DATA" in text and "NO_FINITE_MAXIMUM" in text and "CONVERGED" in text
    assert res.status_counts() == {Status.CONVERGED: 8, Status.NO_FINITE_MAXIMUM: 1, Status.INVALID_DATA: 1}


def test_batched_init_and_bad_input():
    x = np.random.default_rng(3).normal(size=(5, 20))
    init = {"mu": np.linspace(-1, 1, 5), "sigma": np.full(5, 2.0)}
    res = jm.fit_batch(normal_loglik, init, x, constraints={"sigma": jm.positive}, batched_init=True)
    np.testing.assert_allclose(res.params["sigma"], x.std(axis=1), rtol=1e-12)
    bad = {"mu": np.zeros(5), "sigma": np.array([1.0, 1.0, -1.0, 1.0, 1.0])}
    with pytest.raises(ValueError, match=r"init \(replicate 2\): 'sigma' must be > 0 under .*\(value -1.0\)"):
        jm.fit_batch(normal_loglik, bad, x, constraints={"sigma": jm.positive}, batched_init=True)
    with pytest.raises(ValueError, match="batched_init"):
        jm.fit_batch(normal_loglik, {"mu": np.zeros(5), "sigma": np.ones(5)}, x, constraints={"sigma": jm.positive})
    with pytest.raises(ValueError, match="data: every leaf"):
        jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, {"X": np.zeros((4, 10, 3)), "y": np.zeros((5, 10))})
    with pytest.raises(ValueError, match="chunk_size"):
        jm.fit_batch(normal_loglik, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive}, chunk_size=0)
    with pytest.raises(ValueError, match="progress"):
        jm.fit_batch(normal_loglik, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive}, progress="yes")


def test_results_do_not_depend_on_chunk_size_and_progress_shows(capsys):
    data = logistic_data(11)
    whole = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data)
    chunked = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data, chunk_size=4, progress=True)
    np.testing.assert_array_equal(chunked.estimates, whole.estimates)
    np.testing.assert_array_equal(chunked.cov, whole.cov)
    assert "11/11" in capsys.readouterr().err


def test_groups_run_concurrently_or_in_turn_with_the_same_results(monkeypatch):
    """On the CPU groups of lanes run from several threads at once; in turn, as on an
    accelerator, every result is bit-for-bit the same."""
    from jaxmle.batch import backend

    data = logistic_data(40)
    data["y"][7] = (data["X"][7, :, 1] > 0).astype(float)  # separable: a fit that fails
    monkeypatch.setattr(backend, "BLOCK_CPU", (4, 2**20))  # ten groups of four lanes
    assert backend.concurrent_groups() >= 2
    concurrent = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data, progress=False)
    monkeypatch.setattr(backend, "concurrent_groups", lambda: 1)
    in_turn = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data, progress=False)
    for name in ("estimates", "cov", "loglik", "n_iter", "status"):
        np.testing.assert_array_equal(getattr(concurrent, name), getattr(in_turn, name), err_msg=name)
    assert concurrent.status[7] != Status.CONVERGED and np.all(np.delete(concurrent.converged, 7))


def test_two_pass_continues_slow_lanes_exactly(monkeypatch):
    """Converging lanes continued in a second pass end exactly where one long pass ends, with
    the iterations of both passes counted; run-off detection starts afresh in the second pass
    but still flags the separable lane."""
    from jaxmle.batch import backend, two_pass

    data = logistic_data(9)
    data["y"][4] = (data["X"][4, :, 1] > 0).astype(float)
    monkeypatch.setattr(backend, "BLOCK_CPU", (2, 2**20))  # a pilot group of 2 lanes, then 4 groups
    monkeypatch.setattr(two_pass, "first_pass_budget", lambda pilot, budget: budget)
    one_pass = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data)
    monkeypatch.setattr(two_pass, "first_pass_budget", lambda pilot, budget: 2)
    two_pass = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data)
    ok = one_pass.converged
    assert one_pass.n_iter.min() > 2 and ok.sum() == 8
    np.testing.assert_array_equal(two_pass.status, one_pass.status)
    assert two_pass.status[4] == Status.NO_FINITE_MAXIMUM
    np.testing.assert_array_equal(two_pass.n_iter[ok], one_pass.n_iter[ok])
    np.testing.assert_array_equal(two_pass.estimates[ok], one_pass.estimates[ok])


def test_a_users_max_iter_holds_in_every_pass(monkeypatch):
    """max_iter is an argument of the compiled batch program: the pilot, the first pass and
    the continuation together stop each lane where a single fit with that cap stops."""
    from jaxmle.batch import backend, two_pass

    data = logistic_data(9)
    monkeypatch.setattr(backend, "BLOCK_CPU", (2, 2**20))
    monkeypatch.setattr(two_pass, "first_pass_budget", lambda pilot, budget: 1)
    capped = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data, max_iter=3)
    assert np.all(capped.n_iter <= 3) and np.any(capped.status == Status.MAX_ITER)
    for i in range(9):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jm.FitWarning)
            single = jm.fit(logistic_loglik, {"beta": np.zeros(3)}, {k: v[i] for k, v in data.items()}, max_iter=3)
        assert capped.n_iter[i] == single.n_iter and capped.status[i] == single.status
        # the batched and the single-fit programs are compiled differently: last-bit rounding
        np.testing.assert_allclose(capped.estimates[i], single.params["beta"], rtol=1e-13, atol=1e-15)


def test_first_pass_budget_is_the_pilots_quantile():
    from jaxmle.batch.two_pass import first_pass_budget

    pilot = np.array([3] * 90 + [4] * 6 + [100] * 4)  # 4% of the pilot ran to max_iter
    assert first_pass_budget(pilot, 100) == 4
    assert first_pass_budget(np.array([3] * 100), 100) == 3
    assert first_pass_budget(np.array([0, 0]), 100) == 1
    assert first_pass_budget(np.array([50] * 10), 20) == 20


SHARDED = """
import json, sys
import numpy as np
sys.path.insert(0, {root!r})
import jax
import jaxmle as jm
from tests.test_batch import logistic_data, logistic_loglik
data = logistic_data(10)
data["y"][4] = (data["X"][4, :, 1] > 0).astype(float)
res = jm.fit_batch(logistic_loglik, {{"beta": np.zeros(3)}}, data, chunk_size=7)
np.savez({out!r}, estimates=res.estimates, cov=res.cov, status=res.status)
print(json.dumps({{"devices": jax.device_count()}}))
"""


@pytest.mark.slow
def test_four_cpu_devices_give_the_results_of_one(tmp_path):
    out = tmp_path / "sharded.npz"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", SHARDED.format(root=str(ROOT), out=str(out))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["devices"] == 4
    got = np.load(out)
    data = logistic_data(10)
    data["y"][4] = (data["X"][4, :, 1] > 0).astype(float)
    ref = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data)
    assert jax.device_count() == 1
    np.testing.assert_array_equal(got["status"], ref.status)
    np.testing.assert_array_equal(got["estimates"], ref.estimates)
    np.testing.assert_array_equal(got["cov"], ref.cov)


KILLED = """
import os, signal, sys
import numpy as np
sys.path.insert(0, {root!r})
import jaxmle as jm
import jaxmle.checkpoint as ck
from tests.test_batch import logistic_data, logistic_loglik
real_replace, parts = os.replace, []
def replace(src, dst):
    if str(dst).endswith(".npz"):
        parts.append(dst)
        if len(parts) == 3:  # killed after writing the third chunk, before renaming it
            os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
ck.os.replace = replace
jm.fit_batch(logistic_loglik, {{"beta": np.zeros(3)}}, logistic_data(13), chunk_size=3, checkpoint={path!r})
"""


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_or_losing_a_chunk(tmp_path, monkeypatch):
    from jaxmle.batch import runner

    path = tmp_path / "ckpt"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED.format(root=str(ROOT), path=str(path))],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == -9, proc.stderr
    assert len(list(path.glob("part-*.npz"))) == 2 and len(list(path.glob(".tmp-*"))) == 1

    fitted = []
    real_fit_chunk = runner.fit_chunk
    monkeypatch.setattr(
        runner,
        "fit_chunk",
        lambda prep, src, index, *rest: fitted.extend(index) or real_fit_chunk(prep, src, index, *rest),
    )
    data = logistic_data(13)
    resumed = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data, chunk_size=5, checkpoint=path)
    assert sorted(fitted) == list(range(6, 13))  # chunks 0-2 and 3-5 were on disk
    assert not list(path.glob(".tmp-*"))
    straight = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data)
    np.testing.assert_array_equal(resumed.estimates, straight.estimates)
    np.testing.assert_array_equal(resumed.cov, straight.cov)
    np.testing.assert_array_equal(resumed.status, straight.status)

    fitted.clear()
    again = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data, chunk_size=5, checkpoint=path)
    assert fitted == [] and np.array_equal(again.estimates, straight.estimates)
    other = logistic_data(13, seed=9)
    with pytest.raises(ValueError, match="checkpoint .* belongs to a different run .*data"):
        jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, other, checkpoint=path)


def test_lbfgs_batch_equals_a_loop_of_fit():
    """L-BFGS keeps curvature pairs between iterations, so a batch must run it in one pass, as fit
    does: the same iterations and estimates as a loop of fit."""
    data = logistic_data(5, p=4, seed=3)
    data["X"][:, :, 1] *= 10  # badly scaled covariates: L-BFGS needs 20-32 iterations
    data["X"][:, :, 2] *= 0.1
    res = jm.fit_batch(logistic_loglik, {"beta": np.zeros(4)}, data, method="lbfgs", batched_init=False)
    assert res.n_iter.min() > 12  # past the first pass a Newton batch would use
    for i in range(5):
        one = jm.fit(logistic_loglik, {"beta": np.zeros(4)}, {"X": data["X"][i], "y": data["y"][i]}, method="lbfgs")
        assert res.n_iter[i] == one.n_iter and res.status[i] == one.status
        np.testing.assert_allclose(res.params["beta"][i], one.params["beta"], rtol=1e-14, atol=1e-15)


def test_replicates_outside_a_models_support_are_invalid_data():
    x = np.random.default_rng(4).poisson(3.0, size=(6, 30)).astype(float)
    x[1, 4] = -2.5  # negative, not a count
    x[4, 0] = 1.5  # not a whole number
    res = jm.fit_batch(jm.models.poisson(), x)
    assert res.status[1] == res.status[4] == Status.INVALID_DATA
    assert np.isnan(res.params["rate"][[1, 4]]).all() and not res.converged[[1, 4]].any()
    ok = [0, 2, 3, 5]
    assert np.all(res.status[ok] == Status.CONVERGED)
    np.testing.assert_allclose(res.params["rate"][ok], x[ok].mean(axis=1), rtol=1e-12)  # the Poisson MLE
    with pytest.raises(ValueError, match="data must be >= 0"):
        jm.fit_batch(jm.models.poisson(), -np.ones((3, 5)))  # no valid replicate at all


def _scaled_normal(scale):
    return lambda p, x: jax.scipy.stats.norm.logpdf(x, p["mu"], scale)


@pytest.mark.slow
def test_checkpoint_refuses_a_different_model_on_the_same_data(tmp_path):
    x = np.random.default_rng(5).normal(size=(4, 10))
    path = tmp_path / "ckpt"
    jm.fit_batch(lambda p, x: jax.scipy.stats.norm.logpdf(x, p["mu"], 1.0), {"mu": 0.0}, x, checkpoint=path)
    again = lambda p, x: jax.scipy.stats.norm.logpdf(x, p["mu"], 1.0)  # noqa: E731
    jm.fit_batch(again, {"mu": 0.0}, x, checkpoint=path)  # the same code resumes
    for other in (
        lambda p, x: jax.scipy.stats.norm.logpdf(x, p["mu"], 2.0),  # another constant
        lambda p, x: jax.scipy.stats.laplace.logpdf(x, p["mu"], 1.0),  # another name
    ):
        with pytest.raises(ValueError, match="belongs to a different run .*loglik"):
            jm.fit_batch(other, {"mu": 0.0}, x, checkpoint=path)
    closures = tmp_path / "closures"
    jm.fit_batch(_scaled_normal(1.0), {"mu": 0.0}, x, checkpoint=closures)
    jm.fit_batch(_scaled_normal(1.0), {"mu": 0.0}, x, checkpoint=closures)
    with pytest.raises(ValueError, match="belongs to a different run .*loglik"):
        jm.fit_batch(_scaled_normal(np.float64(2.0)), {"mu": 0.0}, x, checkpoint=closures)
    constrained = tmp_path / "constrained"
    init = {"mu": 0.0, "sigma": 1.0}
    jm.fit_batch(normal_loglik, init, x, constraints={"sigma": jm.positive}, checkpoint=constrained)
    with pytest.raises(ValueError, match="belongs to a different run .*constraints"):
        jm.fit_batch(normal_loglik, init, x, constraints={"sigma": jm.greater_than(0.5)}, checkpoint=constrained)
    prior = tmp_path / "prior"
    jm.fit_batch(
        normal_loglik, init, x, constraints={"sigma": jm.positive}, prior=lambda p: -(p["mu"] ** 2), checkpoint=prior
    )
    with pytest.raises(ValueError, match="belongs to a different run .*log_prior"):
        jm.fit_batch(
            normal_loglik,
            init,
            x,
            constraints={"sigma": jm.positive},
            prior=lambda p: -2 * p["mu"] ** 2,
            checkpoint=prior,
        )


def test_unknown_cov_type_is_refused():
    x = np.random.default_rng(6).normal(size=(3, 10))
    with pytest.raises(ValueError, match="cov_type must be one of"):
        jm.fit_batch(
            normal_loglik, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive}, cov_type="sandwich"
        )
