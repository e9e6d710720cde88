"""Profile-likelihood intervals against closed-form profiles with roots from scipy's brentq."""

import math
import warnings

import jax
import numpy as np
import pytest
from scipy import optimize, stats

import jaxmle as jm

LEVEL = 0.95
Q = stats.chi2.ppf(LEVEL, 1)


def expon_loglik(p, d):
    return jax.scipy.stats.expon.logpdf(d, scale=1.0 / p["rate"])


def norm_loglik(p, d):
    return jax.scipy.stats.norm.logpdf(d, p["mu"], p["sigma"])


def roots(lp, hat, lo, hi):
    """Both roots of 2(lp(hat) - lp(t)) = Q on (lo, hat) and (hat, hi), by brentq."""
    g = lambda t: 2.0 * (lp(hat) - lp(t)) - Q  # noqa: E731
    return optimize.brentq(g, lo, hat, xtol=1e-14, rtol=1e-14), optimize.brentq(g, hat, hi, xtol=1e-14, rtol=1e-14)


def test_exponential_rate_profile_interval():
    x = np.random.default_rng(1).exponential(2.0, size=12)
    res = jm.fit(expon_loglik, {"rate": 1.0}, x, constraints={"rate": jm.positive})
    n, s = len(x), x.sum()
    lp = lambda r: n * math.log(r) - r * s  # noqa: E731
    lo, hi = roots(lp, n / s, 1e-8, 50.0)
    ci = res.conf_int(method="profile")["rate"]
    np.testing.assert_allclose(ci, [lo, hi], rtol=1e-6)
    prof = res.profile("rate")
    np.testing.assert_allclose(prof.interval, [lo, hi], rtol=1e-6)
    assert prof.open == (False, False) and prof.reliable == (True, True)
    # the curve itself is the closed-form profile (here the log-likelihood)
    np.testing.assert_allclose(prof.loglik, [lp(r) - n * 0 for r in prof.grid], rtol=1e-10)
    # skewed: the profile interval is not symmetric about the estimate, unlike Wald's
    assert hi - n / s > (n / s - lo) * 1.2


def test_gaussian_sigma_and_mu_profiles():
    y = np.random.default_rng(2).normal(1.0, 2.0, size=15)
    res = jm.fit(norm_loglik, {"mu": 0.0, "sigma": 1.0}, y, constraints={"sigma": jm.positive})
    n, ss = len(y), np.sum((y - y.mean()) ** 2)
    lp_sigma = lambda s: -n * math.log(s) - ss / (2 * s * s)  # mu profiled out at the mean  # noqa: E731
    lp_mu = lambda m: -0.5 * n * math.log(np.mean((y - m) ** 2))  # sigma profiled out  # noqa: E731
    s_hat = math.sqrt(ss / n)
    sig = roots(lp_sigma, s_hat, 1e-3, 50.0)
    mu = roots(lp_mu, y.mean(), y.mean() - 20, y.mean() + 20)
    ci = res.conf_int(method="profile")
    np.testing.assert_allclose(ci["sigma"], sig, rtol=1e-6)
    np.testing.assert_allclose(ci["mu"], mu, rtol=1e-6)
    prof = res.profile("sigma", n=11)
    const = res.loglik - lp_sigma(s_hat)
    np.testing.assert_allclose(prof.loglik, [lp_sigma(s) + const for s in prof.grid], rtol=1e-9)


def test_vector_parameter_and_fixed():
    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(30), rng.normal(size=30)])
    y = X @ [1.0, 0.5] + rng.normal(size=30)

    def loglik(p, d):
        return jax.scipy.stats.norm.logpdf(d["y"], d["X"] @ p["b"], p["s"])

    res = jm.fit(loglik, {"b": np.zeros(2), "s": 1.0}, {"X": X, "y": y}, fixed={"s": 1.0})
    # known sigma: the profile of a coefficient is exactly quadratic, so profile = Wald
    ci = res.conf_int(method="profile")
    np.testing.assert_allclose(ci["b"], res.conf_int()["b"], rtol=1e-7)
    np.testing.assert_array_equal(ci["s"], [1.0, 1.0])
    assert ci["b"].shape == (2, 2)


def test_open_interval_at_a_bound():
    # two-component mixture weight: the likelihood stays high as w -> 1
    y = np.array([-1.2, -0.6, -0.3, 0.0, 0.1, 0.4, 0.7, 1.1, -0.9, 0.2, 2.5])
    mix = lambda w, t: w * stats.norm.pdf(t) + (1 - w) * stats.norm.pdf(t, 3.0)  # noqa: E731
    lp = lambda w: np.sum(np.log(mix(w, y)))  # noqa: E731

    def loglik(p, d):
        return jax.numpy.log(p["w"] * jax.scipy.stats.norm.pdf(d) + (1 - p["w"]) * jax.scipy.stats.norm.pdf(d, 3.0))

    res = jm.fit(loglik, {"w": 0.5}, y, constraints={"w": jm.unit_interval})
    w_hat = float(res.params["w"])
    assert 2 * (lp(w_hat) - lp(1.0)) < Q  # the reference says: open at 1
    lo = optimize.brentq(lambda w: 2 * (lp(w_hat) - lp(w)) - Q, 1e-9, w_hat, xtol=1e-14)
    with pytest.warns(jm.ProfileWarning, match="open at its upper end"):
        prof = res.profile("w")
    assert prof.open == (False, True)
    assert prof.interval[1] == 1.0
    np.testing.assert_allclose(prof.interval[0], lo, rtol=1e-6)


def test_better_fit_found_is_reported_and_offered():
    y = np.random.default_rng(4).normal(3.0, 1.5, size=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jm.FitWarning)
        res = jm.fit(norm_loglik, {"mu": 0.0, "sigma": 1.0}, y, constraints={"sigma": jm.positive}, max_iter=1)
    assert not res.converged
    best = np.sum(stats.norm.logpdf(y, y.mean(), y.std()))
    with pytest.warns(jm.ProfileWarning, match="not the maximum"):
        prof = res.profile("mu")
    assert prof.better_fit is not None and math.isnan(prof.interval[0])
    np.testing.assert_allclose(prof.better_fit.loglik, best, rtol=1e-10)
    with pytest.raises(jm.BetterFitFound) as err:
        res.conf_int(method="profile")
    np.testing.assert_allclose(err.value.better_fit.params["mu"], y.mean(), rtol=1e-8)


def test_region_extent_matches_two_df_profile():
    y = np.random.default_rng(5).normal(1.0, 2.0, size=15)
    res = jm.fit(norm_loglik, {"mu": 0.0, "sigma": 1.0}, y, constraints={"sigma": jm.positive})
    reg = res.region("mu", "sigma", n=21)
    n = len(y)
    A, B = np.meshgrid(reg.grid_a, reg.grid_b, indexing="ij")
    ll = lambda m, s: np.sum(stats.norm.logpdf(y[:, None, None], m, s), axis=0)  # noqa: E731
    np.testing.assert_allclose(reg.deviance, 2 * (ll(y.mean(), y.std()) - ll(A, B)), rtol=1e-9, atol=1e-9)
    assert reg.deviance.shape == (21, 21) and n == 15
    np.testing.assert_allclose(reg.threshold, stats.chi2.ppf(LEVEL, 2), rtol=1e-12)


def test_bad_arguments():
    y = np.random.default_rng(6).normal(size=10)
    res = jm.fit(norm_loglik, {"mu": 0.0, "sigma": 1.0}, y, constraints={"sigma": jm.positive})
    with pytest.raises(ValueError, match="name"):
        res.profile("tau")
    with pytest.raises(ValueError, match="level"):
        res.conf_int(level=1.5, method="profile")
    with pytest.raises(ValueError, match="method"):
        res.conf_int(method="bootstrap")
    for bad in (2, 3.0, True):
        with pytest.raises(ValueError, match="n must be an integer >= 3"):
            res.profile("mu", n=bad)
    with pytest.raises(ValueError, match="simplex"):
        jm.fit(
            lambda p, d: d @ jax.numpy.log(p["p"]),
            {"p": np.ones(3) / 3},
            np.array([3.0, 1.0, 2.0]),
            constraints={"p": jm.simplex},
        ).profile("p[0]")


@pytest.mark.slow
def test_parameters_after_a_simplex_use_their_own_coordinates():
    # a 3-simplex has 2 unconstrained coordinates, so "s" is x[3] but u[2]; the two parts of
    # the likelihood are separate, so the profile of s is the closed form of a zero-mean normal
    rng = np.random.default_rng(7)
    counts = np.array([5.0, 2.0, 9.0])
    y = rng.normal(0.0, 1.5, size=14)

    def loglik(p, d):
        return d["c"] @ jax.numpy.log(p["a"]) + jax.numpy.sum(jax.scipy.stats.norm.logpdf(d["y"], 0.0, p["s"]))

    res = jm.fit(
        loglik,
        {"a": np.ones(3) / 3, "s": 1.0},
        {"c": counts, "y": y},
        constraints={"a": jm.simplex, "s": jm.positive},
    )
    n, ss = len(y), np.sum(y**2)
    lp = lambda s: -n * math.log(s) - ss / (2 * s * s)  # noqa: E731
    s_hat = math.sqrt(ss / n)
    ref = roots(lp, s_hat, 1e-3, 50.0)
    prof = res.profile("s", n=7)
    np.testing.assert_allclose(prof.interval, ref, rtol=1e-6)
    const = res.loglik - lp(s_hat)
    np.testing.assert_allclose(prof.loglik, [lp(s) + const for s in prof.grid], rtol=1e-9)
    # the simplex's elements get NaN intervals, with a warning naming them; s still gets its own
    with pytest.warns(jm.ProfileWarning, match=r"a\[0\], a\[1\], a\[2\]"):
        ci = res.conf_int(method="profile")
    assert ci["a"].shape == (3, 2) and np.all(np.isnan(ci["a"]))
    np.testing.assert_allclose(ci["s"], ref, rtol=1e-6)


@pytest.mark.slow
def test_region_after_a_simplex():
    # a 3-simplex (2 coordinates in u) before (mu, sigma) of a normal sample: independent parts
    y = np.random.default_rng(8).normal(1.0, 2.0, size=15)

    def loglik(p, d):
        return jax.numpy.array([4.0, 1.0, 3.0]) @ jax.numpy.log(p["a"]) + jax.numpy.sum(
            jax.scipy.stats.norm.logpdf(d, p["mu"], p["sigma"])
        )

    res = jm.fit(
        loglik,
        {"a": np.ones(3) / 3, "mu": 0.0, "sigma": 1.0},
        y,
        constraints={"a": jm.simplex, "sigma": jm.positive},
    )
    reg = res.region("mu", "sigma", n=9)
    A, B = np.meshgrid(reg.grid_a, reg.grid_b, indexing="ij")
    ll = lambda m, s: np.sum(stats.norm.logpdf(y[:, None, None], m, s), axis=0)  # noqa: E731
    np.testing.assert_allclose(reg.deviance, 2 * (ll(y.mean(), y.std()) - ll(A, B)), rtol=1e-9, atol=1e-9)


def test_chi2_quantile_closed_forms_only():
    from jaxmle.profile import chi2_quantile

    np.testing.assert_allclose(chi2_quantile(0.9, 1), stats.chi2.ppf(0.9, 1), rtol=1e-12)
    np.testing.assert_allclose(chi2_quantile(0.9, 2), stats.chi2.ppf(0.9, 2), rtol=1e-12)
    with pytest.raises(ValueError, match="df"):
        chi2_quantile(0.9, 3)
