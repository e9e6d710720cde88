"""to_frame() of fits, batches and studies, and the posterior wording of MAP fits, checked
against closed forms and scipy."""

import sys

import jax
import numpy as np
import pytest
import scipy.stats as ss
from jax.scipy import stats

import jaxmle as jm
from jaxmle.status import Status

pd = pytest.importorskip("pandas")

RNG = np.random.default_rng(17)
N = 40
X = np.column_stack([np.ones(N), RNG.normal(size=N)])
Y = X @ np.array([1.0, -0.5]) + 0.8 * RNG.normal(size=N)
TAU = 2.0  # prior SD of mu in the conjugate normal-normal model
XS = RNG.normal(1.5, 1.0, size=12)


def regression(p, d):
    return stats.norm.logpdf(d["y"], d["X"] @ p["beta"], p["sigma"])


def known_variance(p, x):
    return stats.norm.logpdf(x, p["mu"], 1.0)


@pytest.fixture(scope="module")
def mle():
    return jm.fit(
        regression,
        {"beta": np.zeros(2), "sigma": 1.0},
        {"X": X, "y": Y},
        constraints={"sigma": jm.positive},
        labels={"beta": ["Intercept", "x1"]},
    )


@pytest.fixture(scope="module")
def map_fit():
    return jm.fit(known_variance, {"mu": 0.0}, XS, prior={"mu": jm.priors.Normal(0.0, TAU)})


def test_fit_frame_is_the_closed_form_gaussian_mle(mle):
    frame = mle.to_frame(level=0.9)
    beta = np.linalg.lstsq(X, Y, rcond=None)[0]
    sigma2 = np.sum((Y - X @ beta) ** 2) / N
    se_beta = np.sqrt(sigma2 * np.diag(np.linalg.inv(X.T @ X)))
    assert list(frame.index) == ["beta[Intercept]", "beta[x1]", "sigma"] == mle.names
    assert list(frame.columns) == ["estimate", "se", "z", "p", "lower", "upper"]
    np.testing.assert_allclose(frame["estimate"].to_numpy(), [*beta, np.sqrt(sigma2)], rtol=1e-8)
    # the SE of sigma's MLE is sigma / sqrt(2n) (inverse observed information)
    np.testing.assert_allclose(frame["se"].to_numpy(), [*se_beta, np.sqrt(sigma2 / (2 * N))], rtol=1e-6)
    z = frame["estimate"].to_numpy() / frame["se"].to_numpy()
    np.testing.assert_allclose(frame["z"].to_numpy(), z, rtol=1e-12)
    np.testing.assert_allclose(frame["p"].to_numpy(), 2.0 * ss.norm.sf(np.abs(z)), rtol=1e-10)
    q = ss.norm.ppf(0.95)
    np.testing.assert_allclose(frame["lower"].to_numpy(), frame["estimate"] - q * frame["se"], rtol=1e-12)
    np.testing.assert_allclose(frame["upper"].to_numpy(), frame["estimate"] + q * frame["se"], rtol=1e-12)
    ci = mle.conf_int(level=0.9)
    np.testing.assert_allclose(frame[["lower", "upper"]].to_numpy()[:2], ci["beta"], rtol=1e-12)
    assert frame.attrs["level"] == 0.9


def test_map_fit_reports_a_posterior_mode_sd_and_credible_interval(map_fit):
    precision = len(XS) + 1.0 / TAU**2  # conjugate normal-normal: the posterior is exactly Gaussian
    mode, sd = XS.sum() / precision, 1.0 / np.sqrt(precision)
    frame = map_fit.to_frame()
    assert list(frame.columns) == ["mode", "sd", "lower", "upper"]
    np.testing.assert_allclose(frame.loc["mu", ["mode", "sd"]].to_numpy(dtype=float), [mode, sd], rtol=1e-10)
    q = ss.norm.ppf(0.975)
    np.testing.assert_allclose(
        frame.loc["mu", ["lower", "upper"]].to_numpy(dtype=float), [mode - q * sd, mode + q * sd], rtol=1e-10
    )
    text = map_fit.summary()
    assert "MAP fit (posterior mode)" in text and "credible" in text
    for absent in ("AIC", "BIC", "P>|z|", "estimate"):
        assert absent not in text
    head = next(line for line in text.splitlines() if line.strip("│ ").startswith("name"))
    assert [c.strip() for c in head.strip("│").split("│")] == ["name", "mode", "SD", "2.5%", "97.5%"]
    assert f"{sd:.6g}" in text and "P&gt;|z|" not in map_fit._repr_html_()


def test_laplace_repr_and_mode_of_an_exact_gaussian_posterior(map_fit):
    post = map_fit.laplace()
    text = repr(post)
    assert text.startswith("LaplaceApproximation(") and "mode=" in text
    for private in ("_space", "_fixed_leaves", "_dtype", "ParameterSpace"):
        assert private not in text
    # unconstrained parameter: no Jacobian, so the Laplace mode is the MAP (the posterior mean here)
    np.testing.assert_allclose(post.mode["mu"], XS.sum() / (len(XS) + 1.0 / TAU**2), rtol=1e-10)


@pytest.fixture(scope="module")
def batch():
    reps = 4
    ys = np.stack([X @ np.array([1.0, -0.5]) + RNG.normal(size=N) for _ in range(reps)])
    ys[2, 5] = np.nan  # an invalid replicate: status INVALID_DATA, NaN estimates
    data = {"X": np.broadcast_to(X, (reps,) + X.shape), "y": ys}
    return jm.fit_batch(
        regression,
        {"beta": np.zeros(2), "sigma": 1.0},
        data,
        constraints={"sigma": jm.positive},
        labels={"beta": ["Intercept", "x1"]},
        progress=False,
    )


def test_batch_frame_is_long_and_matches_the_arrays(batch):
    frame = batch.to_frame()
    reps, k = len(batch), len(batch.names)
    assert len(frame) == reps * k == 12
    assert list(frame.columns) == [
        "replicate",
        "name",
        "estimate",
        "se",
        "z",
        "p",
        "lower",
        "upper",
        "status",
        "converged",
    ]
    np.testing.assert_array_equal(frame["replicate"], np.repeat(np.arange(reps), k))
    assert list(frame["name"][:k]) == ["beta[Intercept]", "beta[x1]", "sigma"] == batch.names
    np.testing.assert_array_equal(frame["estimate"].to_numpy().reshape(reps, k), batch.estimates)
    np.testing.assert_array_equal(frame["se"].to_numpy().reshape(reps, k), batch.standard_errors)
    np.testing.assert_array_equal(frame["se"].to_numpy().reshape(reps, k)[:, :2], batch.se["beta"])
    z = batch.estimates / batch.standard_errors
    np.testing.assert_allclose(frame["p"].to_numpy().reshape(reps, k), 2.0 * ss.norm.sf(np.abs(z)), rtol=1e-10)
    names = [Status(int(s)).name for s in batch.status]
    assert names[2] == "INVALID_DATA" and names[0] == "CONVERGED"
    assert list(frame["status"]) == [n for n in names for _ in range(k)]
    np.testing.assert_array_equal(frame["converged"].to_numpy(), np.repeat(batch.converged, k))
    # replicate 1's rows are that replicate's own FitResult frame
    one = batch[1].to_frame()
    rows = frame[frame["replicate"] == 1].set_index("name")[one.columns]
    np.testing.assert_allclose(rows.to_numpy(dtype=float), one.to_numpy(), rtol=1e-12)


def simulate_regression(key, p, n):
    return {"X": X, "y": X @ p["beta"] + p["sigma"] * jax.random.normal(key, (n,))}


def test_study_frame_holds_the_studys_statistics(batch):
    # the batch's model, data shapes and replicate count: the study reuses its compiled solve
    truth = {"beta": np.array([1.0, -0.5]), "sigma": 0.8}
    st = jm.simulation_study(
        truth=truth,
        n=N,
        reps=len(batch),
        seed=3,
        simulate=simulate_regression,
        loglik=regression,
        constraints={"sigma": jm.positive},
        progress=False,
    )
    frame = st.to_frame()
    ok = st.fits.converged
    est, se = st.fits.estimates[ok], st.fits.standard_errors[ok]
    flat_truth = np.array([1.0, -0.5, 0.8])
    assert list(frame.index) == st.fits.names and frame.attrs == {"n": N, "reps": 4, "used": int(ok.sum())}
    np.testing.assert_allclose(frame["truth"], flat_truth)
    np.testing.assert_allclose(frame["bias"], est.mean(axis=0) - flat_truth, rtol=1e-10)
    np.testing.assert_allclose(frame["sd"], est.std(axis=0, ddof=1), rtol=1e-10)
    np.testing.assert_allclose(frame["rmse"], np.sqrt(((est - flat_truth) ** 2).mean(axis=0)), rtol=1e-10)
    np.testing.assert_allclose(frame["mcse_bias"], est.std(axis=0, ddof=1) / np.sqrt(ok.sum()), rtol=1e-10)
    covered = np.abs(est - flat_truth) <= ss.norm.ppf(0.975) * se
    np.testing.assert_allclose(frame["coverage"], covered.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(frame["mean_se"], se.mean(axis=0), rtol=1e-12)


def test_without_pandas_to_frame_names_the_extra(mle, batch, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    for make in (mle.to_frame, batch.to_frame):
        with pytest.raises(ImportError, match=r"needs pandas: pip install 'jaxmle\[frame\]'"):
            make()
