"""Profile endpoints solved directly (Venzon–Moolgavkar) against a closed form and against
the root search on the profile (Illinois), which re-optimizes at every evaluation."""

import math

import jax
import numpy as np
import pytest
from scipy import stats

import jaxmle as jm
from jaxmle import profile as jp

Q = stats.chi2.ppf(0.95, 1)


def norm_loglik(p, d):
    return jax.scipy.stats.norm.logpdf(d, p["mu"], p["sigma"])


def logistic_loglik(p, d):
    eta = d["X"] @ p["beta"]
    return d["y"] * eta - jax.numpy.logaddexp(0.0, eta)


def solved(res, names=None):
    """(lanes verified by the direct solve, endpoints by ``_endpoints``, by the root search
    alone, root-search open flags), the last three (k, 2)."""
    coords = jp._coords(res, names or res.names)
    lanes = [(c, s) for c in coords for s in (-1.0, 1.0)]
    obj = jp._Objective(res)
    _, verified = obj.direct(
        np.array([c.u_index for c, _ in lanes]),
        np.array([c.index for c, _ in lanes]),
        np.array([s for _, s in lanes]),
        Q,
        jp.RTOL,
    )
    ends = jp._endpoints(jp._Objective(res), coords, Q)
    x, is_open, _, _ = jp._root_search(jp._Objective(res), lanes, Q, jp.RTOL)
    return verified, np.column_stack([ends.lower, ends.upper]), x.reshape(-1, 2), is_open.reshape(-1, 2)


@pytest.fixture(scope="module")
def gaussian():
    y = np.random.default_rng(11).normal(1.0, 2.0, size=25)
    return y, jm.fit(norm_loglik, {"mu": 0.0, "sigma": 1.0}, y, constraints={"sigma": jm.positive})


def test_gaussian_mean_closed_form_and_constrained_sigma(gaussian):
    # the profile of mu is -n/2 log(s² + (mu - ȳ)²) + const, s² the MLE variance, so the
    # interval is ȳ ± sqrt(s² (exp(q/n) - 1)); sigma is profiled on log sigma
    y, res = gaussian
    n, s2 = len(y), np.var(y)
    half = math.sqrt(s2 * math.expm1(Q / n))
    verified, direct, searched, _ = solved(res)
    assert verified.all()
    np.testing.assert_allclose(direct[0], [y.mean() - half, y.mean() + half], rtol=1e-9)
    np.testing.assert_allclose(direct, searched, rtol=1e-8)
    assert direct[1, 0] < math.sqrt(s2) < direct[1, 1]
    np.testing.assert_allclose(res.conf_int(method="profile")["mu"], direct[0], rtol=1e-12)


@pytest.fixture(scope="module")
def logistic_data():
    rng = np.random.default_rng(12)
    X = np.column_stack([np.ones(80), rng.normal(size=(80, 2))])
    y = (rng.uniform(size=80) < 1 / (1 + np.exp(-(X @ [-0.3, 1.0, -0.6])))).astype(float)
    return {"X": X, "y": y}


@pytest.mark.parametrize("prior", [None, {"beta": jm.priors.Normal(0.0, 1.0)}], ids=["mle", "map"])
def test_logistic_regression_matches_root_search(logistic_data, prior):
    res = jm.fit(logistic_loglik, {"beta": np.zeros(3)}, logistic_data, prior=prior, labels={"beta": ("a", "b", "c")})
    verified, direct, searched, _ = solved(res)
    assert verified.all()
    np.testing.assert_allclose(direct, searched, rtol=1e-8)
    # skewed: the profile interval differs from Wald's in the third digit or earlier
    assert np.max(np.abs(direct - res.conf_int()["beta"])) > 1e-3
    assert res.names == ["beta[a]", "beta[b]", "beta[c]"]


def test_binomial_proportion_on_the_unit_interval():
    # 7 of 20: the profile is the log-likelihood itself; p is searched on its logit
    def loglik(p, d):
        return d * jax.numpy.log(p["p"]) + (1 - d) * jax.numpy.log1p(-p["p"])

    y = np.r_[np.ones(7), np.zeros(13)]
    res = jm.fit(loglik, {"p": 0.5}, y, constraints={"p": jm.unit_interval})
    verified, direct, searched, _ = solved(res)
    assert verified.all()
    ll = lambda p: 7 * np.log(p) + 13 * np.log1p(-p)  # noqa: E731
    np.testing.assert_allclose(2 * (ll(0.35) - ll(direct[0])), Q, rtol=1e-9)
    np.testing.assert_allclose(direct, searched, rtol=1e-8)


def test_open_interval_falls_back_to_the_root_search():
    # a mixture weight whose likelihood stays high as w -> 1 (open at 1), next to a normal
    # mean with closed ends: the direct solve cannot verify w's upper end, the root search
    # reports it open, and the other ends keep their direct solutions
    y = np.array([-1.2, -0.6, -0.3, 0.0, 0.1, 0.4, 0.7, 1.1, -0.9, 0.2, 2.5])
    z = np.random.default_rng(13).normal(0.5, 1.0, size=12)

    def loglik(p, d):
        mix = p["w"] * jax.scipy.stats.norm.pdf(d["y"]) + (1 - p["w"]) * jax.scipy.stats.norm.pdf(d["y"], 3.0)
        return jax.numpy.sum(jax.numpy.log(mix)) + jax.numpy.sum(jax.scipy.stats.norm.logpdf(d["z"], p["m"], 1.0))

    res = jm.fit(loglik, {"w": 0.5, "m": 0.0}, {"y": y, "z": z}, constraints={"w": jm.unit_interval})
    assert res.converged
    verified, direct, searched, is_open = solved(res, ["w", "m"])
    assert verified.tolist() == [True, False, True, True]
    assert is_open.tolist() == [[False, True], [False, False]]
    np.testing.assert_allclose(direct, searched, rtol=1e-8)
    assert direct[0, 1] == 1.0
    # known sigma: the profile of m is exactly quadratic, so its interval is Wald's
    np.testing.assert_allclose(direct[1], z.mean() + np.array([-1, 1]) * math.sqrt(Q / len(z)), rtol=1e-9)
    with pytest.warns(jm.ProfileWarning, match="open at its upper end"):
        ci = res.conf_int(method="profile")
    np.testing.assert_allclose(ci["w"], direct[0], rtol=1e-12)
