"""Models for continuous data: exponential, Gaussian, log-normal, gamma, Weibull."""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, polygamma
from jax.scipy.stats import norm

from .. import closed_form
from ..constraints import positive
from . import _checks
from .base import Model

EULER_GAMMA = 0.5772156649015329


def _location_scale_init(x):
    sd = x.std()
    return {"mu": x.mean(), "sigma": sd if sd > 0 else 1.0}


def _location_scale_information(params):
    s2 = params["sigma"] ** 2
    return jnp.diag(jnp.stack([1 / s2, 2 / s2]))


@dataclass(frozen=True)
class Exponential(Model):
    """Positive data with density λ exp(-λx): I(λ) = 1 / λ²."""

    name = "exponential"

    @property
    def constraints(self):
        return {"rate": positive}

    def loglik(self, params, data):
        rate = params["rate"]
        return jnp.log(rate) - rate * data

    def check_data(self, data):
        _checks.values(data, positive=True)

    def init(self, data):
        return {"rate": 1.0 / _checks.values(data).mean()}

    def simulate(self, key, params, n):
        return jax.random.exponential(key, (n,)) / params["rate"]

    def mle(self, data):
        return closed_form.exponential_mle(np.ravel(data))

    def _information(self, params):
        return jnp.reshape(1 / params["rate"] ** 2, (1, 1))


@dataclass(frozen=True)
class Gaussian(Model):
    """N(mu, sigma²) data: I = diag(1/σ², 2/σ²) over (mu, sigma)."""

    name = "gaussian"

    @property
    def constraints(self):
        return {"sigma": positive}

    def loglik(self, params, data):
        return norm.logpdf(data, params["mu"], params["sigma"])

    def check_data(self, data):
        _checks.values(data)

    def init(self, data):
        return _location_scale_init(_checks.values(data))

    def simulate(self, key, params, n):
        return params["mu"] + params["sigma"] * jax.random.normal(key, (n,))

    def mle(self, data):
        return closed_form.gaussian_mle(np.ravel(data))

    def _information(self, params):
        return _location_scale_information(params)


@dataclass(frozen=True)
class LogNormal(Model):
    """Positive data whose log is N(mu, sigma²): I = diag(1/σ², 2/σ²) over (mu, sigma)."""

    name = "lognormal"

    @property
    def constraints(self):
        return {"sigma": positive}

    def loglik(self, params, data):
        logx = jnp.log(data)
        return norm.logpdf(logx, params["mu"], params["sigma"]) - logx

    def check_data(self, data):
        _checks.values(data, positive=True)

    def init(self, data):
        return _location_scale_init(np.log(_checks.values(data)))

    def simulate(self, key, params, n):
        return jnp.exp(params["mu"] + params["sigma"] * jax.random.normal(key, (n,)))

    def mle(self, data):
        return closed_form.lognormal_mle(np.ravel(data))

    def _information(self, params):
        return _location_scale_information(params)


@dataclass(frozen=True)
class Gamma(Model):
    """Gamma(shape α, rate β), density β^α x^(α-1) exp(-βx) / Γ(α).

    I = [[α/β², -1/β], [-1/β, ψ'(α)]] over (rate, shape), the fit's order (names sort); it
    equals the observed information
    at every point. No closed-form MLE (the shape solves log α - ψ(α) = log x̄ - mean log x)."""

    name = "gamma"

    @property
    def constraints(self):
        return {"shape": positive, "rate": positive}

    def loglik(self, params, data):
        a, b = params["shape"], params["rate"]
        return a * jnp.log(b) - gammaln(a) + (a - 1) * jnp.log(data) - b * data

    def check_data(self, data):
        _checks.values(data, positive=True)

    def init(self, data):
        x = _checks.values(data)
        m, v = x.mean(), x.var()
        shape = m * m / v if v > 0 else 1.0
        return {"shape": shape, "rate": shape / m}

    def simulate(self, key, params, n):
        return jax.random.gamma(key, params["shape"], (n,)) / params["rate"]

    def _information(self, params):
        a, b = params["shape"], params["rate"]
        return jnp.array([[a / b**2, -1 / b], [-1 / b, polygamma(1, a)]])


@dataclass(frozen=True)
class Weibull(Model):
    """Weibull(shape k, scale λ), density (k/λ)(x/λ)^(k-1) exp(-(x/λ)^k).

    I = [[k²/λ², -(1-γ)/λ], [-(1-γ)/λ, ((1-γ)² + π²/6)/k²]] over (scale, shape), the fit's
    order (names sort), with γ the Euler–Mascheroni constant. No closed-form MLE."""

    name = "weibull"

    @property
    def constraints(self):
        return {"shape": positive, "scale": positive}

    def loglik(self, params, data):
        k, lam = params["shape"], params["scale"]
        logz = jnp.log(data) - jnp.log(lam)
        return jnp.log(k) - jnp.log(lam) + (k - 1) * logz - jnp.exp(k * logz)

    def check_data(self, data):
        _checks.values(data, positive=True)

    def init(self, data):
        logx = np.log(_checks.values(data))
        sd = logx.std()
        shape = math.pi / (math.sqrt(6.0) * sd) if sd > 0 else 1.0  # sd(log x) = π / (k √6)
        return {"shape": shape, "scale": math.exp(logx.mean() + EULER_GAMMA / shape)}

    def simulate(self, key, params, n):
        return params["scale"] * jax.random.exponential(key, (n,)) ** (1 / params["shape"])

    def _information(self, params):
        k, lam = params["shape"], params["scale"]
        c = 1 - EULER_GAMMA
        return jnp.array([[k**2 / lam**2, -c / lam], [-c / lam, (c * c + math.pi**2 / 6) / k**2]])
