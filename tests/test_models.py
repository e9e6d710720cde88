"""Built-in models: simulate against the distribution, Fisher information against the Monte
Carlo mean of the score outer product, hashing, data checks and closed-form MLE errors."""

import decimal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import jaxmle as jm
from jaxmle.models.base import ModelLoglik

M = jm.models
# (model, params, scipy distribution with the same law)
ELEMENTWISE = [
    (M.bernoulli(), {"p": 0.3}, stats.bernoulli(0.3)),
    (M.binomial(6), {"p": 0.35}, stats.binom(6, 0.35)),
    (M.poisson(), {"rate": 3.5}, stats.poisson(3.5)),
    (M.geometric(), {"p": 0.25}, stats.geom(0.25, loc=-1)),
    (M.exponential(), {"rate": 2.0}, stats.expon(scale=0.5)),
    (M.gaussian(), {"mu": 1.0, "sigma": 2.0}, stats.norm(1.0, 2.0)),
    (M.lognormal(), {"mu": 0.2, "sigma": 0.5}, stats.lognorm(0.5, scale=np.exp(0.2))),
    (M.gamma(), {"shape": 2.5, "rate": 1.5}, stats.gamma(2.5, scale=1 / 1.5)),
    (M.weibull(), {"shape": 1.5, "scale": 2.0}, stats.weibull_min(1.5, scale=2.0)),
]
IDS = [m.name for m, _, _ in ELEMENTWISE]
N_MC = 200_000


def _draw(model, params, n, seed=0):
    with jax.enable_x64(True):
        return jax.tree_util.tree_map(np.asarray, model.simulate(jax.random.key(seed), params, n))


def _scores(model, params, data):
    """Per-observation scores in the fit's name order (sorted keys), shape (n, k)."""
    with jax.enable_x64(True):
        params = {k: jnp.asarray(v, jnp.float64) for k, v in params.items()}
        grads = jax.jacfwd(lambda p: model.loglik(p, data))(params)
        return np.column_stack([np.asarray(grads[k]).reshape(len(np.atleast_1d(grads[k])), -1)
                                for k in sorted(grads)])  # fmt: skip


def _assert_mc_close(samples, expected, z=5.0):
    """Mean of ``samples`` (n, ...) equals ``expected`` within z Monte Carlo standard errors."""
    mean = samples.mean(0)
    se = samples.std(0) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(mean - expected) <= z * se + 1e-12), (mean, expected, se)


@pytest.mark.parametrize("model, params, dist", ELEMENTWISE, ids=IDS)
def test_simulate_matches_distribution(model, params, dist):
    x = _draw(model, params, 50_000)
    assert x.shape == (50_000,)
    _assert_mc_close(x, dist.mean())
    _assert_mc_close((x - dist.mean()) ** 2, dist.var())
    # the log-likelihood is the distribution's log density
    ll = np.asarray(jax.jit(model.loglik)({k: jnp.asarray(v) for k, v in params.items()}, x[:50]))
    ref = dist.logpmf(x[:50]) if hasattr(dist, "logpmf") else dist.logpdf(x[:50])
    np.testing.assert_allclose(ll, ref, rtol=1e-5)


@pytest.mark.parametrize("model, params, dist", ELEMENTWISE, ids=IDS)
def test_fisher_information_is_the_score_outer_product(model, params, dist):
    x = dist.rvs(size=N_MC, random_state=np.random.default_rng(1)).astype(float)
    s = _scores(model, params, x)
    outer = s[:, :, None] * s[:, None, :]
    _assert_mc_close(outer, model.fisher_information(params))


def test_categorical_simulate_and_information():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    model = M.categorical(4)
    x = _draw(model, {"p": p}, N_MC)
    onehot = (x[:, None] == np.arange(4)).astype(float)
    _assert_mc_close(onehot, p)
    P = np.eye(4) - 0.25
    s = onehot / p @ P  # projected score on the simplex's tangent space
    _assert_mc_close(s[:, :, None] * s[:, None, :], model.fisher_information({"p": p}))
    np.testing.assert_allclose(model.asymptotic_cov({"p": p}), np.diag(p) - np.outer(p, p), atol=1e-12)


REGRESSIONS = [
    (M.linear_regression(), {"beta": np.array([1.0, 0.5, -0.3]), "sigma": 1.5}),
    (M.logistic_regression(), {"beta": np.array([0.5, 1.0, -0.75])}),
    (M.poisson_regression(), {"beta": np.array([0.5, 0.3, -0.2])}),
]


@pytest.mark.parametrize("model, params", REGRESSIONS, ids=[m.name for m, _ in REGRESSIONS])
def test_regression_simulate_and_information(model, params):
    data = _draw(model, params, N_MC)
    X, y = data["X"], data["y"]
    assert X.shape == (N_MC, 3) and y.shape == (N_MC,)
    np.testing.assert_array_equal(X[:, 0], 1.0)
    _assert_mc_close(X[:, 1:], np.zeros(2))
    _assert_mc_close(X[:, 1:] ** 2, np.ones(2))
    eta = X @ params["beta"]
    mean = {"linear_regression": eta, "logistic_regression": 1 / (1 + np.exp(-eta)),
            "poisson_regression": np.exp(eta)}[model.name]  # fmt: skip
    _assert_mc_close(y - mean, 0.0)
    s = _scores(model, params, data)
    _assert_mc_close(s[:, :, None] * s[:, None, :], model.fisher_information(params))


@pytest.mark.parametrize("model, params", REGRESSIONS, ids=[m.name for m, _ in REGRESSIONS])
def test_regression_information_given_design_is_minus_mean_hessian(model, params):
    data = _draw(model, params, 500, seed=3)
    with jax.enable_x64(True):
        p = {k: jnp.asarray(v) for k, v in params.items()}
        # E[-H | X] over y: -H does not depend on y for these models except the sigma rows of
        # the linear model, whose expectation uses E[(y - Xβ)²] = σ²; use the mean response
        if model.name == "linear_regression":
            data = {"X": data["X"], "y": data["X"] @ params["beta"] + params["sigma"] * np.sign(
                np.arange(500) % 2 - 0.5)}  # fmt: skip
        H = jax.hessian(lambda q: jnp.sum(model.loglik(q, data)))(p)
    keys = sorted(H)
    blocks = [[np.atleast_2d(np.asarray(H[a][b])).reshape(np.size(p[a]), np.size(p[b])) for b in keys] for a in keys]
    info = -np.block(blocks) / 500
    got = model.fisher_information(params, X=data["X"])
    if model.name == "linear_regression":  # the residuals above have mean 0 and square σ² exactly
        info[:3, 3] = info[3, :3] = 0.0  # cross terms vanish in expectation (∝ Σ x_i r_i)
    np.testing.assert_allclose(got, info, rtol=1e-10, atol=1e-12)


def test_logistic_population_information_by_quadrature_matches_large_design():
    model, params = REGRESSIONS[1]
    X = np.column_stack([np.ones(400_000), np.random.default_rng(5).normal(size=(400_000, 2))])
    np.testing.assert_allclose(model.fisher_information(params), model.fisher_information(params, X), rtol=0.01)


def test_equal_models_share_compiled_fits():
    traces = []

    class Counting(M.Poisson):
        def loglik(self, params, data):
            traces.append(1)
            return super().loglik(params, data)

    from dataclasses import dataclass

    Counting = dataclass(frozen=True)(Counting)
    assert Counting() == Counting() and hash(ModelLoglik(Counting())) == hash(ModelLoglik(Counting()))
    rng = np.random.default_rng(0)
    r1 = jm.fit(Counting(), rng.poisson(3.0, 100).astype(float))
    after_first = len(traces)
    r2 = jm.fit(Counting(), rng.poisson(5.0, 100).astype(float))
    assert after_first > 0 and len(traces) == after_first
    assert r1.params["rate"] != r2.params["rate"]


@pytest.mark.parametrize(
    "model, data, match",
    [
        (M.bernoulli(), [0.0, 2.0], "data must be <= 1"),
        (M.poisson(), [1.0, 0.5], "whole numbers"),
        (M.exponential(), [1.0, -1.0], "data must be > 0"),
        (M.categorical(3), [0, 3], "<= 2"),
        (M.gaussian(), [1.0, np.nan], "NaN"),
        (M.logistic_regression(), {"X": np.ones((3, 2)), "y": np.ones(4)}, "must be"),
        (M.logistic_regression(), {"X": np.ones((3, 2)), "y": np.array([0.0, 1.0, 2.0])}, "<= 1"),
    ],
)
def test_bad_data_raises_before_fitting(model, data, match):
    with pytest.raises(ValueError, match=match):
        jm.fit(model, data)


def test_bad_model_arguments_and_missing_closed_forms():
    with pytest.raises(ValueError, match="trials"):
        M.binomial(0)
    with pytest.raises(ValueError, match="k must"):
        M.categorical(1)
    for model, data in [(M.gamma(), [1.0, 2.0]), (M.weibull(), [1.0, 2.0]),
                        (M.logistic_regression(), {"X": np.ones((2, 1)), "y": np.ones(2)})]:  # fmt: skip
        with pytest.raises(ValueError, match="no closed-form MLE"):
            model.mle(data)


def test_fit_with_init_given_and_constraint_override():
    x = np.random.default_rng(2).exponential(0.5, 200)
    res = jm.fit(M.exponential(), {"rate": 1.0}, x)
    assert res.params["rate"] == pytest.approx(1 / x.mean(), rel=1e-10)


@pytest.mark.parametrize(
    "model, counts, mle",
    [
        (jm.models.poisson(), np.array([1, 2, 3, 4]), {"rate": 2.5}),
        (jm.models.bernoulli(), np.array([0, 1, 1, 0, 1]), {"p": 0.6}),
        (jm.models.binomial(5), np.array([1, 2, 3]), {"p": 0.4}),
        (jm.models.geometric(), np.array([0, 1, 2, 5]), {"p": 1 / 3}),  # failures before a success
    ],
    ids=["poisson", "bernoulli", "binomial", "geometric"],
)
def test_integer_counts_fit_like_floats(model, counts, mle):
    # integer data are what users have; xlogy cannot differentiate through integer arrays
    res = jm.fit(model, counts)
    assert res.converged
    for name, value in mle.items():
        np.testing.assert_allclose(res.params[name], value, rtol=1e-10)


def test_softplus_and_sigmoid_values_and_derivatives_of_every_order():
    """The logistic model's softplus and sigmoid against 60-digit decimal values over
    |x| ≤ 800 (no overflow), and their first three derivatives to full relative precision,
    for x ≫ 0 too, and at x = 0, where the traced gradient of max(x, 0) + log1p(exp(-|x|))
    is 0 instead of 1/2."""
    from jaxmle.models._logistic import sigmoid, softplus

    x = np.array([-800.0, -40.0, -3.0, -1e-8, 0.0, 1e-8, 0.5, 3.0, 40.0, 800.0])
    with decimal.localcontext(decimal.Context(prec=60)):  # references in 60 digits
        exp = [decimal.Decimal(v).exp() for v in x]
        expected_softplus = np.array([float((1 + ex).ln()) for ex in exp])
        s = np.array([float(ex / (1 + ex)) for ex in exp])
        ds = np.array([float(ex / (1 + ex) ** 2) for ex in exp])
        dds = np.array([float(ex * (1 - ex) / (1 + ex) ** 3) for ex in exp])
    with jax.enable_x64(True):
        xs = jnp.asarray(x)
        np.testing.assert_allclose(softplus(xs), expected_softplus, rtol=1e-15, atol=0)
        np.testing.assert_allclose(sigmoid(xs), s, rtol=1e-15, atol=0)
        d1 = jax.vmap(jax.grad(softplus))(xs)
        d2 = jax.vmap(jax.grad(jax.grad(softplus)))(xs)
        d3 = jax.vmap(jax.grad(jax.grad(jax.grad(softplus))))(xs)
        hessian_at_0 = jax.hessian(lambda v: jnp.sum(softplus(v)))(jnp.zeros(2))
    np.testing.assert_allclose(d1, s, rtol=1e-15, atol=0)
    np.testing.assert_allclose(d2, ds, rtol=1e-14, atol=0)
    # σ'' = σ(x)σ(-x)(σ(-x) - σ(x)) cancels near 0: exact to rounding of its scale, 0.1
    np.testing.assert_allclose(d3, dds, rtol=1e-12, atol=1e-16)
    assert float(d1[4]) == 0.5 and float(d2[4]) == 0.25 and float(d3[4]) == 0.0
    np.testing.assert_array_equal(hessian_at_0, np.diag([0.25, 0.25]))
