"""simulation_study: the asymptotic theory reproduced within Monte Carlo error, reproducibility
across chunks and interruptions, memory, the table, the plot and the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import gammaln

import jaxmle as jm
from jaxmle.status import Status

ROOT = Path(__file__).resolve().parents[1]
Z95 = 1.959963984540054


def poisson_loglik(params, x):
    return x * jnp.log(params["rate"]) - params["rate"] - gammaln(x + 1.0)


def poisson_simulate(key, params, n):
    return jax.random.poisson(key, params["rate"], (n,)).astype(jnp.float64)


@dataclass(frozen=True)
class Poisson(jm.models.Model):
    name: str = "poisson"

    @property
    def constraints(self):
        return {"rate": jm.positive}

    def loglik(self, params, x):
        return poisson_loglik(params, x)

    def init(self, x):
        return {"rate": jnp.mean(x) + 0.5}

    def simulate(self, key, params, n):
        return poisson_simulate(key, params, n)

    def fisher_information(self, params):
        return np.array([[1.0 / params["rate"]]])


@dataclass(frozen=True)
class NormalVar(jm.models.Model):
    """N(mu, var), parameterized by the variance."""

    name: str = "normal"

    @property
    def constraints(self):
        return {"var": jm.positive}

    def loglik(self, params, x):
        return jax.scipy.stats.norm.logpdf(x, params["mu"], jnp.sqrt(params["var"]))

    def init(self, x):
        return {"mu": jnp.mean(x), "var": jnp.var(x) + 0.1}

    def simulate(self, key, params, n):
        return params["mu"] + jnp.sqrt(params["var"]) * jax.random.normal(key, (n,))

    def fisher_information(self, params):
        return np.diag([1.0 / params["var"], 0.5 / params["var"] ** 2])


def within(value, target, mcse, k=4.0):
    return abs(float(value) - target) <= k * float(mcse)


def test_gaussian_variance_mle_is_biased_by_the_factor_n_minus_1_over_n():
    n, var = 10, 2.0
    st = jm.simulation_study(NormalVar(), {"mu": 1.0, "var": var}, n, 4000, seed=1)
    assert st.used == 4000 and np.all(st.fits.status == Status.CONVERGED)
    mean_var = var + st.bias["var"]
    assert within(mean_var, var * (n - 1) / n, st.mcse["bias"]["var"])
    assert st.bias["var"] < -5 * st.mcse["bias"]["var"]  # the bias is really there
    # var(s²_MLE) = 2 σ⁴ (n-1) / n², and the sample mean attains the Cramér–Rao bound
    assert within(st.sd["var"], np.sqrt(2 * var**2 * (n - 1)) / n, st.mcse["sd"]["var"])
    assert st.crlb_sd["mu"] == pytest.approx(np.sqrt(var / n), rel=1e-12)
    assert within(st.efficiency["mu"], 1.0, st.mcse["efficiency"]["mu"])
    assert within(st.bias["mu"], 0.0, st.mcse["bias"]["mu"])


def exact_poisson_wald_coverage(rate, n):
    from scipy.stats import poisson

    t = np.arange(int(n * rate - 12 * np.sqrt(n * rate)), int(n * rate + 12 * np.sqrt(n * rate)))
    est = t / n
    covered = np.abs(est - rate) <= Z95 * np.sqrt(est / n)
    return float(np.sum(poisson.pmf(t, n * rate) * covered))


@pytest.mark.slow
def test_poisson_wald_coverage_and_efficiency_at_n_200():
    rate, n = 3.0, 200
    st = jm.simulation_study(Poisson(), {"rate": rate}, n, 3000, seed=2)
    exact = exact_poisson_wald_coverage(rate, n)
    assert abs(exact - 0.95) < 0.005
    assert within(st.coverage["rate"], exact, st.mcse["coverage"]["rate"])
    assert within(st.efficiency["rate"], 1.0, st.mcse["efficiency"]["rate"])  # the MLE attains the bound
    assert within(st.bias["rate"], 0.0, st.mcse["bias"]["rate"])
    assert st.mean_se["rate"] == pytest.approx(np.sqrt(rate / n), rel=5e-3)  # E√(λ̂/n) ≈ √(λ/n)
    text = st.summary()
    for word in ("bias", "coverage", "efficiency", "rate", "n = 200", "reps = 3000"):
        assert word in text


@pytest.mark.slow
def test_custom_simulate_and_loglik_match_the_model_form():
    rate, n = 4.0, 50
    custom = jm.simulation_study(
        truth={"rate": rate},
        n=n,
        reps=500,
        seed=3,
        simulate=poisson_simulate,
        loglik=poisson_loglik,
        constraints={"rate": jm.positive},
    )
    model = jm.simulation_study(Poisson(), {"rate": rate}, n, 500, seed=3)
    np.testing.assert_allclose(custom.fits.estimates, model.fits.estimates, rtol=1e-12)  # same data, same MLEs
    # without a Fisher information the bound comes from the mean observed information n / λ̂
    assert custom.crlb_sd["rate"] == pytest.approx(np.sqrt(rate / n), rel=0.01)
    assert "observed information" in custom.summary()
    with pytest.raises(ValueError, match="simulate/loglik"):
        jm.simulation_study(Poisson(), {"rate": 1.0}, 10, 10, seed=0, simulate=poisson_simulate)
    with pytest.raises(ValueError, match="simulate/loglik"):
        jm.simulation_study(truth={"rate": 1.0}, n=10, reps=10, seed=0, loglik=poisson_loglik)
    with pytest.raises(ValueError, match="truth"):
        jm.simulation_study(Poisson(), {"rate": -1.0}, 10, 10, seed=0)
    with pytest.raises(ValueError, match="reps"):
        jm.simulation_study(Poisson(), {"rate": 1.0}, 10, 0, seed=0)


@pytest.mark.slow
def test_same_seed_same_results_across_chunks_and_interruptions(tmp_path, monkeypatch):
    from jaxmle import checkpoint

    truth = {"mu": 0.5, "var": 1.5}
    straight = jm.simulation_study(NormalVar(), truth, 15, 300, seed=4)
    saves = []
    real_save = checkpoint.Checkpoint.save

    def interrupted(self, index, arrays):
        if len(saves) == 2:
            raise KeyboardInterrupt
        saves.append(index)
        real_save(self, index, arrays)

    monkeypatch.setattr(checkpoint.Checkpoint, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        jm.simulation_study(NormalVar(), truth, 15, 300, seed=4, chunk_size=64, checkpoint=tmp_path / "c")
    monkeypatch.setattr(checkpoint.Checkpoint, "save", real_save)
    resumed = jm.simulation_study(NormalVar(), truth, 15, 300, seed=4, chunk_size=100, checkpoint=tmp_path / "c")
    np.testing.assert_array_equal(resumed.fits.estimates, straight.fits.estimates)
    np.testing.assert_array_equal(resumed.fits.cov, straight.fits.cov)
    assert resumed.summary() == straight.summary()
    other_seed = jm.simulation_study(NormalVar(), truth, 15, 300, seed=5)
    assert not np.array_equal(other_seed.fits.estimates, straight.fits.estimates)
    with pytest.raises(ValueError, match="different run .*seed"):
        jm.simulation_study(NormalVar(), truth, 15, 300, seed=5, checkpoint=tmp_path / "c")


MEMORY = """
import json, sys
sys.path.insert(0, {root!r})
import jaxmle as jm
from tests.test_study import NormalVar
st = jm.simulation_study(NormalVar(), {{"mu": 0.0, "var": 1.0}}, 20, {reps}, seed=0, chunk_size={chunk}, progress=False)
# VmHWM: this process's peak resident memory (ru_maxrss would include the peak of the
# process that started it, which Linux carries across fork and exec)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
rss = int(hwm.split()[1]) * 1024
print(json.dumps({{"rss": rss, "used": st.used, "coverage": float(st.coverage["mu"])}}))
"""


def run_memory(reps, chunk):
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY.format(root=str(ROOT), reps=reps, chunk=chunk)],
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=ROOT,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_chunked_study_memory_stays_bounded():
    got = run_memory(50_000, 10_000)
    assert got["used"] == 50_000 and abs(got["coverage"] - 0.94) < 0.02
    assert got["rss"] < 1.5e9


@pytest.mark.slow
def test_a_million_gaussian_fits_under_3_gb():
    got = run_memory(1_000_000, 50_000)
    assert got["used"] == 1_000_000
    assert got["rss"] < 3e9


@pytest.mark.slow
def test_plot_and_command(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    st = jm.simulation_study(NormalVar(), {"mu": 1.0, "var": 2.0}, 20, 200, seed=6)
    fig = st.plot(tmp_path / "study.png")
    assert (tmp_path / "study.png").stat().st_size > 10_000
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["mu", "var"]

    from jaxmle import cli, models

    monkeypatch.setattr(models, "normal", NormalVar, raising=False)
    monkeypatch.setitem(models.DEFAULT_TRUTHS, "normal", {"mu": 1.0, "var": 2.0})  # the CLI's list of models
    out = tmp_path / "out"
    code = cli.main(
        [
            "simulate",
            "normal",
            "--n",
            "20",
            "--reps",
            "200",
            "--truth",
            "mu=1",
            "var=2",
            "--seed",
            "6",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "coverage" in printed and "efficiency" in printed
    rows = (out / "estimates.csv").read_text().splitlines()
    assert rows[0] == "replicate,mu,var,se_mu,se_var,status" and len(rows) == 201
    first = rows[1].split(",")
    assert float(first[1]) == st.fits.estimates[0, 0] and first[-1] == "CONVERGED"
    assert (out / "study.png").exists()
    assert cli.main(["simulate", "no_such_model", "--n", "5", "--reps", "5", "--truth", "a=1"]) == 2
    assert "unknown model" in capsys.readouterr().err


@pytest.mark.slow
def test_simulate_command_passes_factory_arguments(capsys):
    from jaxmle import cli

    code = cli.main(
        [
            "simulate",
            "binomial",
            "--model-arg",
            "trials=10",
            "--n",
            "40",
            "--reps",
            "200",
            "--truth",
            "p=0.3",
            "--seed",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "│ p " in out
    # without the factory's argument: a clear error, exit code 2
    assert cli.main(["simulate", "binomial", "--n", "40", "--reps", "20", "--truth", "p=0.3"]) == 2
    assert "--model-arg" in capsys.readouterr().err


def test_constraints_are_checked_before_the_truth():
    with pytest.raises(ValueError, match=r"constraints\['sigma'\]"):
        jm.simulation_study(
            jm.models.gaussian(), {"mu": 0.0, "sigma": 1.0}, 10, 5, seed=0, constraints={"sigma": "positive"}
        )
    with pytest.raises(ValueError, match="constraints: .*not parameters"):
        jm.simulation_study(
            jm.models.gaussian(), {"mu": 0.0, "sigma": 1.0}, 10, 5, seed=0, constraints={"s": jm.positive}
        )
    with pytest.raises(ValueError, match="truth: 'sigma' .*constraint"):
        jm.simulation_study(jm.models.gaussian(), {"mu": 0.0, "sigma": -1.0}, 10, 5, seed=0)


def test_simulate_command_lists_only_the_factories(capsys):
    from jaxmle import cli

    assert cli.main(["simulate", "Poisson", "--n", "5", "--reps", "5", "--truth", "rate=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'Poisson'" in err and "poisson_regression" in err
    listed = err.split("available: ")[1].rstrip(")\n").split(", ")
    assert all(name.islower() for name in listed) and "resolve" not in listed
