"""Bijectors round-trip and respect their supports; priors match scipy's densities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as ss
from jax.scipy import stats

import jaxmle as jm

ELEMENTWISE = [jm.real, jm.positive, jm.unit_interval, jm.interval(-2.0, 5.0), jm.greater_than(3.0), jm.less_than(-1.0)]


@pytest.mark.parametrize("c", ELEMENTWISE, ids=repr)
def test_elementwise_round_trip_and_support(c):
    with jax.enable_x64(True):
        u = jnp.linspace(-5, 5, 11)
        x = c.forward(u)
        assert np.all(np.asarray(x) > c.lower) and np.all(np.asarray(x) < c.upper)
        np.testing.assert_allclose(c.inverse(x), u, rtol=1e-10, atol=1e-10)


def test_simplex_and_ordered_round_trip():
    with jax.enable_x64(True):
        p = jnp.array([0.1, 0.2, 0.3, 0.4])
        np.testing.assert_allclose(jm.simplex.forward(jm.simplex.inverse(p)), p, rtol=1e-14)
        assert jm.simplex.free_size((4,)) == 3
        o = jnp.array([-1.0, 0.5, 2.0])
        np.testing.assert_allclose(jm.ordered.forward(jm.ordered.inverse(o)), o, rtol=1e-14)
    assert jm.simplex.violation(np.array([0.5, 0.6])) is not None
    assert jm.ordered.violation(np.array([1.0, 0.0])) is not None


@pytest.mark.parametrize(
    "c, truth",
    [(jm.interval(-1.0, 10.0), 2.5), (jm.greater_than(-5.0), 2.5), (jm.less_than(100.0), 2.5), (jm.real, 2.5)],
    ids=repr,
)
def test_constrained_fit_matches_the_unconstrained_mle_inside_the_support(c, truth):
    x = np.random.default_rng(0).normal(truth, 1.0, size=200)
    res = jm.fit(lambda p, d: stats.norm.logpdf(d, p["mu"], 1.0), {"mu": 0.0}, x, constraints={"mu": c})
    np.testing.assert_allclose(res.params["mu"], x.mean(), rtol=1e-10)
    np.testing.assert_allclose(res.se["mu"], 1 / np.sqrt(200), rtol=1e-10)  # on the scale of mu


def test_ordered_group_means():
    rng = np.random.default_rng(1)
    g = np.repeat([0, 1, 2], 50)
    x = np.array([-1.0, 0.5, 3.0])[g] + rng.normal(size=150)
    res = jm.fit(
        lambda p, d: stats.norm.logpdf(d["x"], p["m"][d["g"]], 1.0),
        {"m": np.array([-1.0, 0.0, 1.0])},
        {"x": x, "g": g},
        constraints={"m": jm.ordered},
    )
    means = np.array([x[g == k].mean() for k in range(3)])
    np.testing.assert_allclose(res.params["m"], means, rtol=1e-10)
    np.testing.assert_allclose(res.se["m"], np.full(3, 1 / np.sqrt(50)), rtol=1e-9)


@pytest.mark.parametrize(
    "prior, ref, x",
    [
        (jm.priors.Normal(1.0, 2.0), ss.norm(1.0, 2.0), np.array([-1.0, 0.3, 2.0])),
        (jm.priors.Laplace(0.5, 1.5), ss.laplace(0.5, 1.5), np.array([-1.0, 0.3, 2.0])),
        (jm.priors.StudentT(4.0, 0.0, 2.0), ss.t(4.0, 0.0, 2.0), np.array([-1.0, 0.3, 2.0])),
        (jm.priors.Beta(2.0, 3.0), ss.beta(2.0, 3.0), np.array([0.1, 0.5, 0.9])),
        (jm.priors.Gamma(2.0, 3.0), ss.gamma(2.0, scale=1 / 3.0), np.array([0.1, 1.0, 4.0])),
        (jm.priors.InverseGamma(3.0, 2.0), ss.invgamma(3.0, scale=2.0), np.array([0.1, 1.0, 4.0])),
        (jm.priors.HalfNormal(2.0), ss.halfnorm(scale=2.0), np.array([0.1, 1.0, 4.0])),
        (jm.priors.Exponential(1.5), ss.expon(scale=1 / 1.5), np.array([0.1, 1.0, 4.0])),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, jm.priors.Prior) else "",
)
def test_prior_log_densities_match_scipy(prior, ref, x):
    with jax.enable_x64(True):
        np.testing.assert_allclose(prior.log_prob(jnp.asarray(x)), ref.logpdf(x).sum(), rtol=1e-12)


def test_dirichlet_log_density_matches_scipy():
    p = np.array([0.2, 0.3, 0.5])
    with jax.enable_x64(True):
        np.testing.assert_allclose(
            jm.priors.Dirichlet((2.0, 3.0, 4.0)).log_prob(jnp.asarray(p)),
            ss.dirichlet([2.0, 3.0, 4.0]).logpdf(p),
            rtol=1e-12,
        )


def test_dirichlet_multinomial_map():
    counts = np.array([3.0, 7.0, 10.0])
    alpha = np.array([2.0, 2.0, 5.0])
    res = jm.fit(
        lambda p, c: jnp.sum(c * jnp.log(p["p"])),
        {"p": np.full(3, 1 / 3)},
        counts,
        constraints={"p": jm.simplex},
        prior={"p": jm.priors.Dirichlet(tuple(alpha))},
        nobs=20,
    )
    mode = (counts + alpha - 1) / (counts.sum() + alpha.sum() - 3)
    np.testing.assert_allclose(res.params["p"], mode, rtol=1e-10)


def test_callable_log_prior():
    x = np.random.default_rng(2).normal(2.0, 1.0, size=40)
    res = jm.fit(
        lambda p, d: stats.norm.logpdf(d, p["mu"], 1.0),
        {"mu": 0.0},
        x,
        prior=lambda p: stats.norm.logpdf(p["mu"], 0.0, 0.5),
    )
    post_prec = 40 + 1 / 0.25
    np.testing.assert_allclose(res.params["mu"], x.sum() / post_prec, rtol=1e-10)
    np.testing.assert_allclose(res.se["mu"], 1 / np.sqrt(post_prec), rtol=1e-10)
