"""Regression models: Gaussian linear, logistic and Poisson (log link).

Data are ``{"X": (n, d) design, "y": (n,) responses}``; ``simulate`` draws an intercept
column and d-1 independent standard-normal covariates. ``fisher_information(params, X=None)``
is per observation: with a design ``X``, conditional on it (XᵀWX / n); without one, for the
population design of ``simulate``, where x = (1, z), z ~ N(0, I). There, with η = β₀ + bᵀz,
r = ‖b‖ and t = bᵀz / r ~ N(0, 1), E[w(η) x xᵀ] needs only E[w], E[w t] and E[w t²]: exact
for the linear and Poisson models, and by 96-point Gauss–Hermite quadrature (error below
1e-12 for the logistic weight) for the logistic model.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln
from jax.scipy.stats import norm

from .. import _precision, closed_form
from ..constraints import positive
from . import _checks
from ._logistic import sigmoid, softplus
from .base import Model

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(96)
_WEIGHTS = _WEIGHTS / np.sqrt(2 * np.pi)


def _design(key, n, d):
    z = jax.random.normal(key, (n, d - 1))
    return jnp.concatenate([jnp.ones((n, 1), z.dtype), z], axis=1)


def _population_moments(beta, moments):
    """E[w(η) x xᵀ] for x = (1, z), z ~ N(0, I), from (E w, E w t, E w t²) as functions of
    (β₀, r)."""
    b0, b = beta[0], beta[1:]
    r = jnp.sqrt(jnp.sum(b * b))
    r_safe = jnp.where(r > 0, r, 1.0)
    m0, m1, m2 = moments(b0, r)
    u = b / r_safe
    top = jnp.concatenate([m0[None], m1 * u])
    lower = m0 * jnp.eye(b.shape[0]) + (m2 - m0) * jnp.outer(u, u)
    return jnp.concatenate([top[None, :], jnp.concatenate([(m1 * u)[:, None], lower], axis=1)], axis=0)


class _Regression(Model):
    def check_data(self, data):
        _checks.design(data)

    def fisher_information(self, params, X=None) -> np.ndarray:
        """Expected information per observation over (beta..., [sigma]); conditional on the
        design ``X`` when given, else for the population design of ``simulate``."""
        with _precision.context(np.float64):
            params = jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), params)
            if X is not None:
                X = _checks.values(X, "X")
                if X.ndim != 2 or X.shape[1] != params["beta"].shape[0]:
                    raise ValueError(f"X must be (n, {params['beta'].shape[0]}), got {X.shape}")
                X = jnp.asarray(X)
            return np.asarray(self._information(params, X), dtype=np.float64)

    def asymptotic_cov(self, params, X=None) -> np.ndarray:
        return np.linalg.inv(self.fisher_information(params, X))

    def _weighted(self, params, X, weight, moments):
        beta = params["beta"]
        if X is None:
            return _population_moments(beta, moments)
        w = weight(X @ beta)
        return (X.T * w) @ X / X.shape[0]


@dataclass(frozen=True)
class LinearRegression(_Regression):
    """y = Xβ + ε, ε ~ N(0, σ²): I = [[E xxᵀ / σ², 0], [0, 2/σ²]] over (beta, sigma). The MLE
    is OLS with σ̂² = RSS / n."""

    name = "linear_regression"

    @property
    def constraints(self):
        return {"sigma": positive}

    def loglik(self, params, data):
        return norm.logpdf(data["y"], data["X"] @ params["beta"], params["sigma"])

    def init(self, data):
        X, y = _checks.design(data)
        sd = y.std()
        return {"beta": np.zeros(X.shape[-1]), "sigma": sd if sd > 0 else 1.0}

    def simulate(self, key, params, n):
        kx, ke = jax.random.split(key)
        X = _design(kx, n, jnp.shape(params["beta"])[0])
        return {"X": X, "y": X @ params["beta"] + params["sigma"] * jax.random.normal(ke, (n,))}

    def mle(self, data):
        X, y = _checks.design(data)
        return closed_form.ols(X, y)

    def _information(self, params, X):
        s2 = params["sigma"] ** 2
        one = lambda b0, r: (jnp.ones_like(b0), jnp.zeros_like(b0), jnp.ones_like(b0))  # noqa: E731
        xx = self._weighted(params, X, jnp.ones_like, one)
        d = xx.shape[0]
        info = jnp.zeros((d + 1, d + 1)).at[:d, :d].set(xx / s2)
        return info.at[d, d].set(2 / s2)


@dataclass(frozen=True)
class LogisticRegression(_Regression):
    """P(y = 1 | x) = 1 / (1 + exp(-xᵀβ)): I = E[p(1 - p) x xᵀ]. No closed-form MLE."""

    name = "logistic_regression"

    def loglik(self, params, data):
        eta = data["X"] @ params["beta"]
        return data["y"] * eta - softplus(eta)

    def check_data(self, data):
        _, y = _checks.design(data)
        _checks.values(y, 'data["y"]', integer=True, lower=0, upper=1)

    def init(self, data):
        return {"beta": np.zeros(_checks.design(data)[0].shape[-1])}

    def simulate(self, key, params, n):
        kx, ky = jax.random.split(key)
        X = _design(kx, n, jnp.shape(params["beta"])[0])
        return {"X": X, "y": jax.random.bernoulli(ky, jax.nn.sigmoid(X @ params["beta"])).astype(X.dtype)}

    def _information(self, params, X):
        def weight(eta):
            p = sigmoid(eta)
            return p * (1 - p)

        def moments(b0, r):
            t, w = jnp.asarray(_NODES), jnp.asarray(_WEIGHTS)
            v = w * weight(b0 + r * t)
            return jnp.sum(v), jnp.sum(v * t), jnp.sum(v * t * t)

        return self._weighted(params, X, weight, moments)


@dataclass(frozen=True)
class PoissonRegression(_Regression):
    """y | x ~ Poisson(exp(xᵀβ)): I = E[exp(xᵀβ) x xᵀ], which for the population design is
    exp(β₀ + r²/2) [[1, bᵀ], [b, I + bbᵀ]]. No closed-form MLE."""

    name = "poisson_regression"

    def loglik(self, params, data):
        eta = data["X"] @ params["beta"]
        return data["y"] * eta - jnp.exp(eta) - gammaln(data["y"] + 1.0)

    def check_data(self, data):
        _, y = _checks.design(data)
        _checks.values(y, 'data["y"]', integer=True, lower=0)

    def init(self, data):
        return {"beta": np.zeros(_checks.design(data)[0].shape[-1])}

    def simulate(self, key, params, n):
        kx, ky = jax.random.split(key)
        X = _design(kx, n, jnp.shape(params["beta"])[0])
        return {"X": X, "y": jax.random.poisson(ky, jnp.exp(X @ params["beta"])).astype(X.dtype)}

    def _information(self, params, X):
        def moments(b0, r):
            m = jnp.exp(b0 + r * r / 2)
            return m, r * m, (1 + r * r) * m

        return self._weighted(params, X, jnp.exp, moments)
