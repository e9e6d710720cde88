"""Likelihood-ratio tests with the null on the boundary (Self and Liang 1987), checked against
scipy.stats.chi2, a Monte Carlo of the projection onto the orthant cone, and simulated
null distributions."""

import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jaxmle as jm
from jaxmle.lrtest import chibar2_sf, chibar2_weights

POS = {"mu": jm.positive, "s": jm.positive}


def norm_loglik(p, d):
    return jax.scipy.stats.norm.logpdf(d, p["mu"], p["s"])


def fit_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jm.FitWarning)  # AT_BOUNDARY is expected under the null
        return jm.fit(*args, **kwargs)


def shift_fits(y):
    full = fit_quietly(norm_loglik, {"mu": 0.5, "s": 1.0}, y, constraints=POS)
    restricted = jm.fit(norm_loglik, {"mu": 0.5, "s": 1.0}, y, constraints=POS, fixed={"mu": 0.0})
    return restricted, full


@pytest.mark.parametrize("shift", [0.35, -0.35])
def test_one_boundary_parameter_is_detected_and_halves_the_p_value(shift):
    y = np.random.default_rng(3).normal(size=40) + shift
    restricted, full = shift_fits(y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an estimate at the boundary under the null is not warned about
        out = jm.lr_test(restricted, full)
    n = len(y)
    # closed form: LR = n log(mean(y²) / var(y)) when ȳ > 0, else 0 (the estimate is at mu = 0)
    lr = n * np.log(np.mean(y**2) / np.var(y)) if y.mean() > 0 else 0.0
    np.testing.assert_allclose(out.statistic, lr, rtol=1e-8, atol=1e-9)
    expected = 0.5 * stats.chi2.sf(lr, 1) if lr > 0 else 1.0
    np.testing.assert_allclose(out.pvalue, expected, rtol=1e-9)
    assert out.boundary == ("mu",) and out.weights == (0.5, 0.5)
    assert "boundary for mu" in str(out)
    wilks = jm.lr_test(restricted, full, boundary=False) if shift > 0 else None
    if wilks is not None:
        np.testing.assert_allclose(wilks.pvalue, stats.chi2.sf(lr, 1), rtol=1e-9)
        assert wilks.boundary == () and "boundary" not in str(wilks)


def test_p_value_formula_against_scipy():
    x = np.array([0.0, 1e-6, 0.3, 1.0, 2.705543454095404, 3.84, 10.0, 40.0])
    # one boundary parameter, df = 1 and df = 3 (two interior parameters tested beside it)
    ref1 = np.where(x > 0, 0.5 * stats.chi2.sf(x, 1), 1.0)
    np.testing.assert_allclose(chibar2_sf(x, chibar2_weights(1, np.eye(1))), ref1, rtol=1e-12)
    ref3 = np.where(x > 0, 0.5 * stats.chi2.sf(x, 2) + 0.5 * stats.chi2.sf(x, 3), 1.0)
    np.testing.assert_allclose(chibar2_sf(x, chibar2_weights(3, np.eye(1))), ref3, rtol=1e-12)
    # two independent boundary parameters: ¼ χ²₀ + ½ χ²₁ + ¼ χ²₂
    assert chibar2_weights(2, np.eye(2)) == (0.25, 0.5, 0.25)
    ref2 = np.where(x > 0, 0.5 * stats.chi2.sf(x, 1) + 0.25 * stats.chi2.sf(x, 2), 1.0)
    np.testing.assert_allclose(chibar2_sf(x, chibar2_weights(2, np.eye(2))), ref2, rtol=1e-12)
    # the 5% critical value of ½χ²₀ + ½χ²₁ is χ²₁'s 10% point
    np.testing.assert_allclose(chibar2_sf(stats.chi2.isf(0.10, 1), (0.5, 0.5)), 0.05, rtol=1e-12)


def orthant_lr(z, cov):
    """Monte Carlo reference: LR = zᵀV⁻¹z − min over θ ≥ 0 of (z−θ)ᵀV⁻¹(z−θ), the minimum by
    enumerating the faces of the orthant (each face: the free coordinates solve a normal equation)."""
    k = cov.shape[0]
    P = np.linalg.inv(cov)
    best = np.einsum("ni,ij,nj->n", z, P, z)  # θ = 0
    for free in itertools.chain.from_iterable(itertools.combinations(range(k), r) for r in range(1, k + 1)):
        f = list(free)
        theta = np.zeros_like(z)
        # minimise over θ_f with the other coordinates at 0: P_ff θ_f = (P z)_f
        theta[:, f] = np.linalg.solve(P[np.ix_(f, f)], (z @ P)[:, f].T).T
        ok = np.all(theta[:, f] >= 0, axis=1)
        r = z - theta
        best = np.where(ok, np.minimum(best, np.einsum("ni,ij,nj->n", r, P, r)), best)
    return np.einsum("ni,ij,nj->n", z, P, z) - best


@pytest.mark.parametrize(
    "cov",
    [
        np.array([[1.0, 0.6], [0.6, 1.0]]),
        np.array([[2.0, -1.1], [-1.1, 1.5]]),
        np.array([[1.0, 0.5, -0.3], [0.5, 2.0, 0.4], [-0.3, 0.4, 1.0]]),
    ],
)
def test_orthant_weights_against_monte_carlo(cov):
    k = len(cov)
    z = np.random.default_rng(11).multivariate_normal(np.zeros(k), cov, size=200_000)
    lr = orthant_lr(z, cov)
    weights = chibar2_weights(k, cov)
    np.testing.assert_allclose(sum(weights), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.mean(lr < 1e-9), weights[0], atol=0.004)  # the atom at 0
    for c in (0.5, 2.0, 5.0):
        np.testing.assert_allclose(np.mean(lr > c), chibar2_sf(c, weights), atol=0.004)


def test_two_correlated_boundary_parameters_detected_with_their_correlation():
    r, n = 0.6, 200
    cov = np.array([[1.0, r], [r, 1.0]])
    y = np.random.default_rng(5).multivariate_normal([0.1, 0.2], cov, size=n)
    prec = np.linalg.inv(cov)

    def ll(p, d):  # y ~ N(m, s² Σ), Σ known
        e = d - p["m"]
        return -0.5 * jnp.einsum("ni,ij,nj->n", e, prec, e) / p["s"] ** 2 - 2.0 * jnp.log(p["s"])

    c = {"m": jm.positive, "s": jm.positive}
    init = {"m": np.array([0.5, 0.5]), "s": 1.0}
    full = fit_quietly(ll, init, y, constraints=c)
    null = jm.fit(ll, init, y, constraints=c, fixed={"m": np.zeros(2)})
    out = jm.lr_test(null, full)
    assert out.boundary == ("m[0]", "m[1]")
    # the information of m is n Σ⁻¹ / s², orthogonal to s, so the estimates' correlation is r
    w0 = np.arccos(r) / (2 * np.pi)
    np.testing.assert_allclose(out.weights, [w0, 0.5, 0.5 - w0], rtol=1e-8)
    # closed form: ȳ > 0 here, so LR = 2n log(ŝ₀² / ŝ²), 2ŝ² the mean of eᵀΣ⁻¹e at m = ȳ and at m = 0
    ybar = y.mean(axis=0)
    assert np.all(ybar > 0)
    quad = lambda e: np.mean(np.einsum("ni,ij,nj->n", e, prec, e))  # noqa: E731
    lr = 2 * n * np.log(quad(y) / quad(y - ybar))
    np.testing.assert_allclose(out.statistic, lr, rtol=1e-8)
    np.testing.assert_allclose(out.pvalue, 0.5 * stats.chi2.sf(lr, 1) + (0.5 - w0) * stats.chi2.sf(lr, 2), rtol=1e-8)
    # asserted independent instead: ¼, ½, ¼
    assert jm.lr_test(null, full, boundary=2).weights == (0.25, 0.5, 0.25)


def test_simulated_null_rejects_five_percent_where_wilks_is_conservative():
    """True mean 0 on the boundary of mu ≥ 0: the mixture test rejects at its level, the naive
    χ²₁ test at about half of it."""
    reps, n = 4000, 100
    y = np.random.default_rng(2026).normal(size=(reps, n))
    full = jm.fit_batch(norm_loglik, {"mu": 0.5, "s": 1.0}, y, constraints=POS, progress=False)
    s0 = np.sqrt(np.mean(y**2, axis=1, keepdims=True))  # the null's MLE of s at mu = 0
    null_loglik = stats.norm.logpdf(y, 0.0, s0).sum(axis=1)
    lr = np.maximum(2.0 * (np.asarray(full.loglik) - null_loglik), 0.0)
    # about half the estimates sit at the boundary, where LR = 0
    at_zero = np.mean(lr < 1e-8)
    assert abs(at_zero - 0.5) < 4 * np.sqrt(0.25 / reps)
    p = chibar2_sf(lr, chibar2_weights(1, np.eye(1)))  # what lr_test refers a detected boundary to
    rate, naive = np.mean(p < 0.05), np.mean(stats.chi2.sf(lr, 1) < 0.05)
    tol = 4 * np.sqrt(0.05 * 0.95 / reps)
    assert abs(rate - 0.05) < tol
    assert abs(naive - 0.025) < 4 * np.sqrt(0.025 * 0.975 / reps) and naive < 0.05 - tol


def test_mixture_weight_at_zero():
    """A two-component mixture with known components: weight 0 is on the boundary of [0, 1)."""
    y = np.random.default_rng(9).normal(size=150)
    y[:12] += 3.0

    def ll(p, d):  # (1 − w) N(mu, 1) + w N(mu + 3, 1)
        a = jnp.log1p(-p["w"]) + jax.scipy.stats.norm.logpdf(d, p["mu"])
        b = jnp.log(p["w"]) + jax.scipy.stats.norm.logpdf(d, p["mu"] + 3.0)
        return jnp.logaddexp(a, b)

    c = {"w": jm.unit_interval}
    full = jm.fit(ll, {"w": 0.2, "mu": 0.0}, y, constraints=c)
    null = jm.fit(
        lambda p, d: jax.scipy.stats.norm.logpdf(d, p["mu"]), {"w": 0.2, "mu": 0.0}, y, constraints=c, fixed={"w": 0.0}
    )
    out = jm.lr_test(null, full)
    assert out.boundary == ("w",)
    lr = 2 * (full.loglik - np.sum(stats.norm.logpdf(y, y.mean())))  # the null's MLE is mu = ȳ
    assert lr > 1.0
    np.testing.assert_allclose(out.pvalue, 0.5 * stats.chi2.sf(lr, 1), rtol=1e-8)


def test_boundary_argument_errors():
    y = np.random.default_rng(1).normal(size=30) + 0.5
    restricted, full = shift_fits(y)
    for bad in (2, 0, -1, "yes", 1.5):
        with pytest.raises(ValueError, match="boundary must be"):
            jm.lr_test(restricted, full, boundary=bad)
    interior = jm.fit(norm_loglik, {"mu": 0.5, "s": 1.0}, y, constraints={"s": jm.positive}, fixed={"mu": 0.2})
    free = jm.fit(norm_loglik, {"mu": 0.5, "s": 1.0}, y, constraints={"s": jm.positive})
    with pytest.raises(ValueError, match="boundary=True"):
        jm.lr_test(interior, free, boundary=True)
    assert jm.lr_test(interior, free).weights == (0.0, 1.0)  # nothing detected: Wilks
    with pytest.raises(ValueError, match="closed-form"):
        chibar2_weights(4, np.full((4, 4), 0.3) + 0.7 * np.eye(4))
    with pytest.raises(ValueError, match=r"fixed\['mu'\].*must be >= 0"):
        jm.fit(norm_loglik, {"mu": 0.5, "s": 1.0}, y, constraints=POS, fixed={"mu": -0.1})


def test_mixture_weight_estimated_at_zero_gives_lr_zero_without_warning():
    """Data far from the second component: the full fit stops at w = 0, LR = 0 and p = 1."""
    y = 0.5 * np.random.default_rng(4).normal(size=80)

    def ll(p, d):
        return jnp.logaddexp(
            jnp.log1p(-p["w"]) + jax.scipy.stats.norm.logpdf(d, p["mu"]),
            jnp.log(p["w"]) + jax.scipy.stats.norm.logpdf(d, 3.0),
        )

    c = {"w": jm.unit_interval}
    full = fit_quietly(ll, {"w": 0.2, "mu": 0.0}, y, constraints=c)
    null = jm.fit(ll, {"w": 0.2, "mu": 0.0}, y, constraints=c, fixed={"w": 0.0})
    assert full.status == jm.Status.AT_BOUNDARY
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = jm.lr_test(null, full)
    assert out.boundary == ("w",)
    np.testing.assert_allclose(null.loglik, np.sum(stats.norm.logpdf(y, y.mean())), rtol=1e-12)
    assert out.statistic < 1e-8 and out.pvalue == 1.0
