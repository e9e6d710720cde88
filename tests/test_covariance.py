"""Robust (sandwich), OPG and expected-information covariances against independent references."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm

import jaxmle as jm
from jaxmle.models.base import Model


def regression_data(seed=14, n=60):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = X @ [1.0, 2.0, -0.5] + rng.normal(size=n) * (0.5 + np.abs(X[:, 1]))  # heteroskedastic
    return X, y


def linear_loglik(p, d):
    return jax.scipy.stats.norm.logpdf(d["y"], d["X"] @ p["b"], p["s"])


def fit_linear(cov_type, X, y):
    return jm.fit(
        linear_loglik, {"b": np.zeros(3), "s": 1.0}, {"X": X, "y": y}, constraints={"s": jm.positive}, cov_type=cov_type
    )


def test_robust_is_hc0_for_a_gaussian_linear_model():
    X, y = regression_data()
    res = fit_linear("robust", X, y)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    e = y - X @ beta
    bread = np.linalg.inv(X.T @ X)
    hc0 = bread @ (X.T * e**2) @ X @ bread
    np.testing.assert_allclose(res.params["b"], beta, rtol=1e-10)
    np.testing.assert_allclose(res.cov[:3, :3], hc0, rtol=1e-8)
    ols = sm.OLS(y, X).fit(cov_type="HC0")
    np.testing.assert_allclose(res.se["b"], ols.bse, rtol=1e-8)
    assert "covariance: robust" in res.summary()
    # the observed-information SEs differ under heteroskedasticity
    assert not np.allclose(fit_linear("observed", X, y).se["b"], ols.bse, rtol=1e-2)


def test_opg_is_the_inverse_outer_product_of_scores():
    X, y = regression_data(15)
    res = fit_linear("opg", X, y)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    e = y - X @ beta
    s = np.sqrt(np.mean(e**2))
    scores = np.column_stack([X * (e / s**2)[:, None], e**2 / s**3 - 1 / s])
    np.testing.assert_allclose(res.cov, np.linalg.inv(scores.T @ scores), rtol=1e-7)


def test_cov_type_refusals():
    X, y = regression_data(16)
    with pytest.raises(ValueError, match="cov_type must be"):
        fit_linear("sandwich", X, y)
    with pytest.raises(ValueError, match="per-observation"):
        jm.fit(
            lambda p, d: jnp.sum(linear_loglik(p, d)),
            {"b": np.zeros(3), "s": 1.0},
            {"X": X, "y": y},
            constraints={"s": jm.positive},
            cov_type="robust",
        )
    with pytest.raises(ValueError, match="maximum-likelihood"):
        jm.fit(
            linear_loglik,
            {"b": np.zeros(3), "s": 1.0},
            {"X": X, "y": y},
            constraints={"s": jm.positive},
            prior={"b": jm.priors.Normal(0.0, 1.0)},
            cov_type="opg",
        )
    with pytest.raises(ValueError, match="built-in model"):
        fit_linear("expected", X, y)


@dataclass(frozen=True)
class Cauchy(Model):
    """Cauchy location-scale: per-observation Fisher information diag(1/(2σ²), 1/(2σ²))."""

    name: str = "cauchy"
    constraints: tuple = None

    def __post_init__(self):
        object.__setattr__(self, "constraints", {"scale": jm.positive})

    def __hash__(self):
        return hash(self.name)

    def loglik(self, params, data):
        return jax.scipy.stats.cauchy.logpdf(data, params["loc"], params["scale"])

    def init(self, data):
        return {"loc": float(np.median(data)), "scale": 1.0}

    def fisher_information(self, params):
        v = 1.0 / (2.0 * params["scale"] ** 2)
        return jnp.diag(jnp.array([v, v]))


def test_expected_information_from_a_model():
    y = np.random.default_rng(17).standard_cauchy(80) * 2.0 + 1.0
    res = jm.fit(Cauchy(), y)
    s = float(res.params["scale"])
    np.testing.assert_allclose(res.expected_information, 80 / (2 * s**2) * np.eye(2), rtol=1e-12)
    assert not np.allclose(res.information, res.expected_information, rtol=1e-3)  # observed differs
    exp_fit = jm.fit(Cauchy(), y, cov_type="expected")
    np.testing.assert_allclose(
        [exp_fit.se["loc"], exp_fit.se["scale"]], np.sqrt(2 * s**2 / 80) * np.ones(2), rtol=1e-10
    )
    assert fit_linear("observed", *regression_data()).expected_information is None  # not a model


def test_expected_information_of_a_regression_uses_the_fitted_design():
    # canonical link: the expected information conditional on X equals the observed one
    model = jm.models.logistic_regression()
    with jax.enable_x64(True):
        data = model.simulate(jax.random.key(3), {"beta": jnp.array([0.2, 1.0, -0.5])}, 400)
    data = {"X": np.asarray(data["X"]) * np.array([1.0, 10.0, 0.1]), "y": np.asarray(data["y"])}
    obs = jm.fit(model, data)
    exp = jm.fit(model, data, cov_type="expected")
    np.testing.assert_allclose(exp.se["beta"], obs.se["beta"], rtol=1e-8)


def test_expected_covariance_is_refused_before_compiling_when_unavailable():
    x = np.random.default_rng(0).normal(size=30)
    with pytest.raises(ValueError, match="needs every parameter free"):
        jm.fit(jm.models.gaussian(), {"mu": 0.0, "sigma": 1.0}, x, fixed={"sigma": 1.0}, cov_type="expected")
    with pytest.raises(ValueError, match="needs a built-in model"):
        jm.fit(lambda p, d: -0.5 * (d - p["mu"]) ** 2, {"mu": 0.0}, x, cov_type="expected")
