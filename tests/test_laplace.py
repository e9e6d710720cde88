"""Laplace approximation against exact conjugate posteriors."""

import jax
import numpy as np
import pytest

import jaxmle as jm


def test_exact_for_normal_known_variance_and_normal_prior():
    rng = np.random.default_rng(10)
    s, m0, t0 = 2.0, 1.0, 0.5
    y = rng.normal(3.0, s, size=25)

    def loglik(p, d):
        return jax.scipy.stats.norm.logpdf(d, p["mu"], s)

    res = jm.fit(loglik, {"mu": 0.0}, y, prior={"mu": jm.priors.Normal(m0, t0)})
    lap = res.laplace()
    prec = 1 / t0**2 + len(y) / s**2
    mean = (m0 / t0**2 + y.sum() / s**2) / prec
    np.testing.assert_allclose(lap.mean["mu"], mean, rtol=1e-10)
    np.testing.assert_allclose(lap.cov, [[1 / prec]], rtol=1e-10)
    draws = lap.sample(jax.random.key(0), 20000)["mu"]
    assert draws.shape == (20000,)
    sd = np.sqrt(1 / prec)
    assert abs(draws.mean() - mean) < 4 * sd / np.sqrt(20000)
    assert abs(draws.std() / sd - 1) < 4 * np.sqrt(0.5 / 20000)


def test_gamma_exponential_on_the_log_scale():
    # posterior of the rate: Gamma(a + n, b + S); of u = log rate: ∝ exp((a+n)u - (b+S)e^u),
    # whose mode is log((a+n)/(b+S)) with curvature a + n exactly
    rng = np.random.default_rng(11)
    a, b = 2.0, 3.0
    x = rng.exponential(0.5, size=15)

    def loglik(p, d):
        return jax.scipy.stats.expon.logpdf(d, scale=1 / p["rate"])

    res = jm.fit(loglik, {"rate": 1.0}, x, constraints={"rate": jm.positive}, prior={"rate": jm.priors.Gamma(a, b)})
    # the MAP in the user's parameterization is (a + n - 1)/(b + S)
    np.testing.assert_allclose(res.params["rate"], (a + len(x) - 1) / (b + x.sum()), rtol=1e-10)
    lap = res.laplace()
    np.testing.assert_allclose(lap.loc, [np.log((a + len(x)) / (b + x.sum()))], rtol=1e-10)
    np.testing.assert_allclose(lap.cov, [[1 / (a + len(x))]], rtol=1e-10)
    draws = lap.sample(jax.random.key(1), 5000)["rate"]
    assert np.all(draws > 0)


def test_sample_shapes_with_fixed_and_vector_parameters():
    rng = np.random.default_rng(12)
    X = np.column_stack([np.ones(40), rng.normal(size=40)])
    y = X @ [0.5, -1.0] + rng.normal(size=40)

    def loglik(p, d):
        return jax.scipy.stats.norm.logpdf(d["y"], d["X"] @ p["b"], p["s"])

    res = jm.fit(
        loglik,
        {"b": np.zeros(2), "s": 1.0},
        {"X": X, "y": y},
        fixed={"s": 1.0},
        prior={"b": jm.priors.Normal(0.0, 10.0)},
    )
    lap = res.laplace()
    draws = lap.sample(jax.random.key(2), 7)
    assert draws["b"].shape == (7, 2) and draws["s"].shape == (7,)
    assert np.all(draws["s"] == 1.0)
    # Normal-Normal with known variance: exact posterior N((X'X + I/100)^-1 X'y, (X'X + I/100)^-1)
    P = X.T @ X + np.eye(2) / 100
    np.testing.assert_allclose(lap.cov, np.linalg.inv(P), rtol=1e-9)
    np.testing.assert_allclose(lap.mean["b"], np.linalg.solve(P, X.T @ y), rtol=1e-9)
    with pytest.raises(ValueError, match="n must be"):
        lap.sample(jax.random.key(0), 0)


def test_laplace_prior_is_refused():
    y = np.random.default_rng(13).normal(size=10)
    res = jm.fit(
        lambda p, d: jax.scipy.stats.norm.logpdf(d, p["mu"], 1.0),
        {"mu": 0.0},
        y,
        prior={"mu": jm.priors.Laplace(0.0, 0.01)},
    )
    with pytest.raises(ValueError, match="kink"):
        res.laplace()
