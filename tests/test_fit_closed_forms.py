"""MLEs, MAPs and their SEs against closed forms and independent software."""

import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

import jaxmle as jm

RTOL = 1e-9  # float64 estimates and SEs


def gaussian_loglik(params, x):
    return stats.norm.logpdf(x, params["mu"], params["sigma"])


def test_gaussian_mean_and_sd():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=400)
    res = jm.fit(gaussian_loglik, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive})
    n, mu, sigma = x.size, x.mean(), x.std()
    assert res.converged and res.status == jm.Status.CONVERGED
    np.testing.assert_allclose(res.params["mu"], mu, rtol=RTOL)
    np.testing.assert_allclose(res.params["sigma"], sigma, rtol=RTOL)
    # inverse observed information at the MLE: diag(sigma²/n, sigma²/(2n)), zero covariance
    np.testing.assert_allclose(res.se["mu"], sigma / np.sqrt(n), rtol=RTOL)
    np.testing.assert_allclose(res.se["sigma"], sigma / np.sqrt(2 * n), rtol=RTOL)
    assert abs(res.cov[0, 1]) < 1e-12
    np.testing.assert_allclose(res.information, np.diag([n / sigma**2, 2 * n / sigma**2]), rtol=RTOL, atol=1e-9)
    assert res.nobs == n and res.df == 2
    np.testing.assert_allclose(res.loglik, n * (-0.5 * np.log(2 * np.pi * sigma**2) - 0.5), rtol=1e-12)
    np.testing.assert_allclose(res.aic, 4 - 2 * res.loglik)
    np.testing.assert_allclose(res.bic, 2 * np.log(n) - 2 * res.loglik)
    assert res.names == ["mu", "sigma"]


def test_bernoulli():
    x = (np.random.default_rng(2).uniform(size=300) < 0.3).astype(float)
    res = jm.fit(lambda p, d: stats.bernoulli.logpmf(d, p["p"]), {"p": 0.5}, x, constraints={"p": jm.unit_interval})
    p = x.mean()
    np.testing.assert_allclose(res.params["p"], p, rtol=RTOL)
    np.testing.assert_allclose(res.se["p"], np.sqrt(p * (1 - p) / x.size), rtol=RTOL)


def test_poisson():
    x = np.random.default_rng(3).poisson(4.2, size=250)
    res = jm.fit(lambda p, d: stats.poisson.logpmf(d, p["rate"]), {"rate": 1.0}, x, constraints={"rate": jm.positive})
    np.testing.assert_allclose(res.params["rate"], x.mean(), rtol=RTOL)
    np.testing.assert_allclose(res.se["rate"], np.sqrt(x.mean() / x.size), rtol=RTOL)


def test_exponential():
    x = np.random.default_rng(4).exponential(1 / 2.5, size=300)
    res = jm.fit(lambda p, d: jnp.log(p["rate"]) - p["rate"] * d, {"rate": 1.0}, x, constraints={"rate": jm.positive})
    rate = 1 / x.mean()
    np.testing.assert_allclose(res.params["rate"], rate, rtol=RTOL)
    np.testing.assert_allclose(res.se["rate"], rate / np.sqrt(x.size), rtol=RTOL)


def test_multinomial_on_the_simplex():
    counts = np.array([12.0, 30.0, 58.0, 100.0])
    N = counts.sum()
    res = jm.fit(
        lambda p, c: jnp.sum(c * jnp.log(p["p"])),
        {"p": np.full(4, 0.25)},
        counts,
        constraints={"p": jm.simplex},
        nobs=int(N),
    )
    p = counts / N
    np.testing.assert_allclose(res.params["p"], p, rtol=RTOL)
    # inverse Fisher information of the multinomial: (diag(p) - p pᵀ) / N, rank k-1
    np.testing.assert_allclose(res.cov, (np.diag(p) - np.outer(p, p)) / N, rtol=1e-8, atol=1e-15)
    np.testing.assert_allclose(res.se["p"], np.sqrt(p * (1 - p) / N), rtol=1e-8)
    assert res.df == 3 and len(res.names) == 4 and res.names[0] == "p[0]"


def linear_data(seed=5, n=80):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + rng.normal(scale=1.5, size=n)
    return X, y


def linear_loglik(params, d):
    return stats.norm.logpdf(d["y"], d["X"] @ params["beta"], params["sigma"])


def test_ols_is_the_gaussian_mle():
    X, y = linear_data()
    res = jm.fit(
        linear_loglik, {"beta": np.zeros(4), "sigma": 1.0}, {"X": X, "y": y}, constraints={"sigma": jm.positive}
    )
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    sigma2 = np.sum((y - X @ beta) ** 2) / len(y)
    np.testing.assert_allclose(res.params["beta"], beta, rtol=RTOL)
    np.testing.assert_allclose(res.params["sigma"], np.sqrt(sigma2), rtol=RTOL)
    np.testing.assert_allclose(res.cov[:4, :4], sigma2 * np.linalg.inv(X.T @ X), rtol=1e-8)
    assert res.names == ["beta[0]", "beta[1]", "beta[2]", "beta[3]", "sigma"]


def test_logistic_regression_against_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(6)
    X = np.column_stack([np.ones(1000), rng.normal(size=(1000, 5))])
    y = (rng.uniform(size=1000) < 1 / (1 + np.exp(-X @ np.array([0.5, 1, -1, 0.5, 0, 0.25])))).astype(float)

    def loglik(p, d):
        eta = d["X"] @ p["beta"]
        return d["y"] * eta - jnp.logaddexp(0.0, eta)

    res = jm.fit(loglik, {"beta": np.zeros(6)}, {"X": X, "y": y})
    ref = sm.Logit(y, X).fit(method="newton", tol=1e-14, maxiter=100, disp=False)
    np.testing.assert_allclose(res.params["beta"], ref.params, rtol=1e-8)
    np.testing.assert_allclose(res.se["beta"], ref.bse, rtol=1e-8)
    np.testing.assert_allclose(res.loglik, ref.llf, rtol=1e-12)


def test_beta_bernoulli_map():
    x = (np.random.default_rng(7).uniform(size=40) < 0.2).astype(float)
    a, b = 3.0, 5.0
    res = jm.fit(
        lambda p, d: stats.bernoulli.logpmf(d, p["p"]),
        {"p": 0.5},
        x,
        constraints={"p": jm.unit_interval},
        prior={"p": jm.priors.Beta(a, b)},
    )
    k, n = x.sum(), x.size
    mode = (k + a - 1) / (n + a + b - 2)
    np.testing.assert_allclose(res.params["p"], mode, rtol=RTOL)
    # SE from the curvature of the log-posterior at the mode
    info = (k + a - 1) / mode**2 + (n - k + b - 1) / (1 - mode) ** 2
    np.testing.assert_allclose(res.se["p"], 1 / np.sqrt(info), rtol=1e-8)
    assert res.has_prior and res.logpost != res.loglik


def test_ridge_is_map_under_a_normal_prior():
    X, y = linear_data(seed=8)
    tau = 0.5  # prior sd; with unit noise variance the ridge penalty is λ = 1/τ²
    res = jm.fit(
        lambda p, d: stats.norm.logpdf(d["y"], d["X"] @ p["beta"], 1.0),
        {"beta": np.zeros(4)},
        {"X": X, "y": y},
        prior={"beta": jm.priors.Normal(0.0, tau)},
    )
    lam = 1 / tau**2
    ridge = np.linalg.solve(X.T @ X + lam * np.eye(4), X.T @ y)
    np.testing.assert_allclose(res.params["beta"], ridge, rtol=RTOL)
    np.testing.assert_allclose(res.cov, np.linalg.inv(X.T @ X + lam * np.eye(4)), rtol=1e-8)


def test_lasso_on_an_orthonormal_design_soft_thresholds_with_exact_zeros():
    rng = np.random.default_rng(9)
    n = 100
    Q, _ = np.linalg.qr(rng.normal(size=(n, 6)))
    X = Q * np.sqrt(n)  # XᵀX = n I
    y = X @ np.array([2.0, 0.05, -1.0, 0.0, 0.5, -0.02]) + rng.normal(size=n)
    lam = 12.0  # Laplace(0, 1/λ) prior with unit noise variance
    res = jm.fit(
        lambda p, d: stats.norm.logpdf(d["y"], d["X"] @ p["beta"], 1.0),
        {"beta": np.zeros(6)},
        {"X": X, "y": y},
        prior={"beta": jm.priors.Laplace(0.0, 1 / lam)},
    )
    ols = X.T @ y / n
    soft = np.sign(ols) * np.maximum(np.abs(ols) - lam / n, 0.0)
    assert np.sum(soft == 0) >= 2  # the test design has zeros to find
    np.testing.assert_array_equal(res.params["beta"] == 0.0, soft == 0.0)  # exact zeros, not 1e-9
    np.testing.assert_allclose(res.params["beta"], soft, rtol=1e-10, atol=1e-13)
    assert res.converged and res.method == "proximal newton"
    zero = soft == 0
    assert np.all(np.isnan(res.se["beta"][zero])) and np.all(np.isfinite(res.se["beta"][~zero]))
    assert any("Laplace prior" in note for note in res.notes)


def test_delta_method_against_analytic_ses():
    x = np.random.default_rng(10).normal(1.0, 2.0, size=200)
    res = jm.fit(gaussian_loglik, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive})
    s, se_s = res.params["sigma"], res.se["sigma"]
    value, se = res.delta(lambda p: {"var": p["sigma"] ** 2, "cv": p["sigma"] / p["mu"]})
    np.testing.assert_allclose(value["var"], s**2, rtol=1e-12)
    np.testing.assert_allclose(se["var"], 2 * s * se_s, rtol=1e-10)
    # cv = sigma/mu with independent estimates: Var = (se_s/mu)² + (sigma se_mu / mu²)²
    mu, se_mu = res.params["mu"], res.se["mu"]
    np.testing.assert_allclose(se["cv"], np.sqrt((se_s / mu) ** 2 + (s * se_mu / mu**2) ** 2), rtol=1e-10)


def test_wald_conf_int():
    x = np.random.default_rng(11).poisson(3.0, size=100)
    res = jm.fit(lambda p, d: stats.poisson.logpmf(d, p["rate"]), {"rate": 1.0}, x, constraints={"rate": jm.positive})
    ci = res.conf_int(0.9)
    z = 1.6448536269514722
    np.testing.assert_allclose(ci["rate"], [x.mean() - z * res.se["rate"], x.mean() + z * res.se["rate"]], rtol=1e-12)
    assert ci["rate"].shape == (2,)
