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
    # exact here: x = u, so the mean is the mode and cov is cov_u
    np.testing.assert_allclose(lap.mode["mu"], mean, rtol=1e-10)
    np.testing.assert_allclose(lap.mean["mu"], mean, rtol=1e-10)
    np.testing.assert_allclose(lap.cov_u, [[1 / prec]], rtol=1e-10)
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
    mode = (a + len(x)) / (b + x.sum())
    np.testing.assert_allclose(lap.loc_u, [np.log(mode)], rtol=1e-10)
    np.testing.assert_allclose(lap.cov_u, [[1 / (a + len(x))]], rtol=1e-10)
    np.testing.assert_allclose(lap.mode["rate"], mode, rtol=1e-10)
    # linearized: d rate / du = rate, so var(rate) ≈ mode² var(u)
    np.testing.assert_allclose(lap.cov, [[mode**2 / (a + len(x))]], rtol=1e-10)
    draws = lap.sample(jax.random.key(1), 5000)["rate"]
    assert np.all(draws > 0)
    # the draws are lognormal: exact mean exp(loc + var/2), above the linearized mean
    var_u = 1 / (a + len(x))
    exact = mode * np.exp(var_u / 2)
    sd = exact * np.sqrt(np.expm1(var_u))
    assert abs(draws.mean() - exact) < 4 * sd / np.sqrt(5000)


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
    np.testing.assert_allclose(lap.cov_u, np.linalg.inv(P), rtol=1e-9)
    np.testing.assert_allclose(lap.cov, np.linalg.inv(P), rtol=1e-9)
    np.testing.assert_allclose(lap.mean["b"], np.linalg.solve(P, X.T @ y), rtol=1e-9)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            lap.sample(jax.random.key(0), bad)


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


@pytest.mark.slow
def test_simplex_then_positive_moments_in_both_parameterizations():
    # flat prior in x: the posterior of the probabilities is Dirichlet(c + 1), whose density
    # in the log-ratios u is ∝ Π x_i^(c_i + 1): a multinomial log-likelihood with counts
    # α = c + 1, so the mode is α/Σα and the curvature in u is Σα (diag(p) − p pᵀ), p = the
    # first k−1 probabilities. For s: in v = log s, ∝ exp(−(n−1)v − S e^(−2v)/2), mode
    # s² = S/(n−1), curvature 2(n−1).
    rng = np.random.default_rng(14)
    c = np.array([6.0, 2.0, 11.0])
    y = rng.normal(0.0, 1.5, size=20)

    def loglik(p, d):
        return d["c"] @ jax.numpy.log(p["a"]) + jax.numpy.sum(jax.scipy.stats.norm.logpdf(d["y"], 0.0, p["s"]))

    res = jm.fit(
        loglik, {"a": np.ones(3) / 3, "s": 1.0}, {"c": c, "y": y}, constraints={"a": jm.simplex, "s": jm.positive}
    )
    lap = res.laplace()
    alpha, n, S = c + 1, len(y), np.sum(y**2)
    x = alpha / alpha.sum()
    s_mode = np.sqrt(S / (n - 1))
    np.testing.assert_allclose(lap.mode["a"], x, rtol=1e-9)
    np.testing.assert_allclose(lap.mode["s"], s_mode, rtol=1e-9)
    p = x[:2]
    cov_u = np.zeros((3, 3))
    cov_u[:2, :2] = np.linalg.inv(alpha.sum() * (np.diag(p) - np.outer(p, p)))
    cov_u[2, 2] = 1 / (2 * (n - 1))
    assert lap.cov_u.shape == (3, 3) and lap.cov.shape == (4, 4) and len(lap.names) == 4
    np.testing.assert_allclose(lap.cov_u, cov_u, rtol=1e-8, atol=1e-12)
    # J = ∂x/∂u: the softmax Jacobian's first k−1 columns, and s for ∂s/∂log s
    J = np.zeros((4, 3))
    J[:3, :2] = (np.diag(x) - np.outer(x, x))[:, :2]
    J[3, 2] = s_mode
    np.testing.assert_allclose(lap.cov, J @ cov_u @ J.T, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(lap.cov[:3].sum(axis=0), 0.0, atol=1e-12)  # the probabilities sum to 1
