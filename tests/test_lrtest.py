"""Likelihood-ratio tests against scipy.stats.chi2 and closed-form log-likelihoods."""

import jax
import numpy as np
import pytest
from scipy import stats

import jaxmle as jm


def norm_loglik(p, d):
    return jax.scipy.stats.norm.logpdf(d, p["mu"], p["sigma"])


def test_lr_test_mean_zero_against_free_mean():
    y = np.random.default_rng(7).normal(0.4, 1.0, size=30)
    pos = {"sigma": jm.positive}
    full = jm.fit(norm_loglik, {"mu": 0.0, "sigma": 1.0}, y, constraints=pos)
    restricted = jm.fit(norm_loglik, {"mu": 0.0, "sigma": 1.0}, y, constraints=pos, fixed={"mu": 0.0})
    n = len(y)
    # closed form: LR = n log(σ̂₀² / σ̂²)
    lr = n * np.log(np.mean(y**2) / np.var(y))
    out = jm.lr_test(restricted, full)
    assert out.df == 1
    np.testing.assert_allclose(out.statistic, lr, rtol=1e-9)
    np.testing.assert_allclose(out.pvalue, stats.chi2.sf(lr, 1), rtol=1e-9)
    assert "LR =" in str(out)


def test_lr_test_two_df_regression_with_different_data_containers():
    rng = np.random.default_rng(8)
    X = np.column_stack([np.ones(50), rng.normal(size=(50, 2))])
    y = X @ [1.0, 0.3, -0.2] + rng.normal(size=50)

    def full_ll(p, d):
        return jax.scipy.stats.norm.logpdf(d["y"], d["X"] @ p["b"], p["s"])

    def null_ll(p, d):
        return jax.scipy.stats.norm.logpdf(d, p["b0"], p["s"])

    full = jm.fit(full_ll, {"b": np.zeros(3), "s": 1.0}, {"X": X, "y": y}, constraints={"s": jm.positive})
    restricted = jm.fit(null_ll, {"b0": 0.0, "s": 1.0}, y, constraints={"s": jm.positive})
    rss1 = np.sum((y - X @ np.linalg.lstsq(X, y, rcond=None)[0]) ** 2)
    rss0 = np.sum((y - y.mean()) ** 2)
    lr = 50 * np.log(rss0 / rss1)
    out = jm.lr_test(restricted, full)
    assert out.df == 2
    np.testing.assert_allclose(out.statistic, lr, rtol=1e-8)
    np.testing.assert_allclose(out.pvalue, stats.chi2.sf(lr, 2), rtol=1e-8)


def test_lr_test_refusals():
    rng = np.random.default_rng(9)
    y1, y2 = rng.normal(size=20), rng.normal(size=20)
    pos = {"sigma": jm.positive}
    a = jm.fit(norm_loglik, {"mu": 0.0, "sigma": 1.0}, y1, constraints=pos, fixed={"mu": 0.0})
    b = jm.fit(norm_loglik, {"mu": 0.0, "sigma": 1.0}, y2, constraints=pos)
    with pytest.raises(ValueError, match="same data"):
        jm.lr_test(a, b)
    full = jm.fit(norm_loglik, {"mu": 0.0, "sigma": 1.0}, y1, constraints=pos)
    with pytest.raises(ValueError, match="more free parameters"):
        jm.lr_test(full, a)
    with pytest.raises(ValueError, match="restricted must be a FitResult"):
        jm.lr_test("fit", full)
    mapfit = jm.fit(norm_loglik, {"mu": 0.0, "sigma": 1.0}, y1, constraints=pos, prior={"mu": jm.priors.Normal(0, 1)})
    with pytest.raises(ValueError, match="MAP"):
        jm.lr_test(a, mapfit)
