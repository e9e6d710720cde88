"""Models for counts and categories: Bernoulli, binomial, categorical, Poisson, geometric."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, xlog1py, xlogy

from .. import closed_form
from ..constraints import positive, simplex, unit_interval
from ..validation import check_positive_int
from . import _checks
from .base import Model


def _float(x):
    return jnp.asarray(x, dtype=float)


@dataclass(frozen=True)
class Bernoulli(Model):
    """0/1 outcomes with success probability ``p``: I(p) = 1 / (p (1 - p))."""

    name = "bernoulli"

    @property
    def constraints(self):
        return {"p": unit_interval}

    def loglik(self, params, data):
        p = params["p"]
        data = _counts(data, p)
        return xlogy(data, p) + xlog1py(1 - data, -p)

    def check_data(self, data):
        _checks.values(data, integer=True, lower=0, upper=1)

    def init(self, data):
        x = _checks.values(data)
        return {"p": (x.sum() + 0.5) / (x.size + 1)}

    def simulate(self, key, params, n):
        return _float(jax.random.bernoulli(key, params["p"], (n,)))

    def mle(self, data):
        return closed_form.bernoulli_mle(np.ravel(data))

    def _information(self, params):
        p = params["p"]
        return jnp.reshape(1 / (p * (1 - p)), (1, 1))


@dataclass(frozen=True)
class Binomial(Model):
    """Counts of successes out of ``trials`` with probability ``p``: I(p) = trials / (p (1 - p))."""

    trials: int = 1
    name = "binomial"

    def __post_init__(self):
        object.__setattr__(self, "trials", check_positive_int("trials", self.trials, allow_none=False))

    @property
    def constraints(self):
        return {"p": unit_interval}

    def loglik(self, params, data):
        p, m = params["p"], self.trials
        data = _counts(data, p)
        log_choose = gammaln(m + 1.0) - gammaln(data + 1.0) - gammaln(m - data + 1.0)
        return log_choose + xlogy(data, p) + xlog1py(m - data, -p)

    def check_data(self, data):
        _checks.values(data, integer=True, lower=0, upper=self.trials)

    def init(self, data):
        x = _checks.values(data)
        return {"p": (x.sum() + 0.5) / (self.trials * x.size + 1)}

    def simulate(self, key, params, n):
        return _float(jax.random.binomial(key, self.trials, params["p"], (n,)))

    def mle(self, data):
        return closed_form.binomial_mle(np.ravel(data), self.trials)

    def _information(self, params):
        p = params["p"]
        return jnp.reshape(self.trials / (p * (1 - p)), (1, 1))


@dataclass(frozen=True)
class Categorical(Model):
    """Labels 0..k-1 with probabilities ``p`` on the simplex (the multinomial for one draw).

    The expected information is given on the simplex's tangent space: P diag(1/p) P with
    P = I - 11ᵀ/k, whose pseudo-inverse diag(p) - ppᵀ is the per-observation covariance of p̂.
    """

    k: int = 2
    name = "categorical"

    def __post_init__(self):
        object.__setattr__(self, "k", check_positive_int("k", self.k, allow_none=False, minimum=2))

    @property
    def constraints(self):
        return {"p": simplex}

    def loglik(self, params, data):
        return jnp.log(params["p"])[jnp.asarray(data).astype(jnp.int32)]

    def check_data(self, data):
        _checks.values(data, integer=True, lower=0, upper=self.k - 1)

    def init(self, data):
        x = _checks.values(data).astype(int).ravel()
        counts = np.bincount(x, minlength=self.k) + 0.5
        return {"p": counts / counts.sum()}

    def simulate(self, key, params, n):
        return jax.random.categorical(key, jnp.log(params["p"]), shape=(n,))

    def mle(self, data):
        return closed_form.categorical_mle(np.ravel(data), self.k)

    def _information(self, params):
        p = params["p"]
        if p.shape != (self.k,):
            raise ValueError(f"params['p'] must have shape ({self.k},), got {p.shape}")
        P = jnp.eye(self.k) - 1.0 / self.k
        return P @ jnp.diag(1 / p) @ P


@dataclass(frozen=True)
class Poisson(Model):
    """Counts with mean ``rate``: I(λ) = 1 / λ."""

    name = "poisson"

    @property
    def constraints(self):
        return {"rate": positive}

    def loglik(self, params, data):
        rate = params["rate"]
        data = _counts(data, rate)
        return xlogy(data, rate) - rate - gammaln(data + 1.0)

    def check_data(self, data):
        _checks.values(data, integer=True, lower=0)

    def init(self, data):
        x = _checks.values(data)
        return {"rate": (x.sum() + 0.5) / x.size}

    def simulate(self, key, params, n):
        return _float(jax.random.poisson(key, params["rate"], (n,)))

    def mle(self, data):
        return closed_form.poisson_mle(np.ravel(data))

    def _information(self, params):
        return jnp.reshape(1 / params["rate"], (1, 1))


@dataclass(frozen=True)
class Geometric(Model):
    """Failures before the first success, success probability ``p``: I(p) = 1 / (p² (1 - p))."""

    name = "geometric"

    @property
    def constraints(self):
        return {"p": unit_interval}

    def loglik(self, params, data):
        p = params["p"]
        return jnp.log(p) + xlog1py(_counts(data, p), -p)

    def check_data(self, data):
        _checks.values(data, integer=True, lower=0)

    def init(self, data):
        x = _checks.values(data)
        return {"p": 1.0 / (1.0 + x.mean() + 0.5 / x.size)}

    def simulate(self, key, params, n):
        return _float(jax.random.geometric(key, params["p"], (n,)) - 1)

    def mle(self, data):
        return closed_form.geometric_mle(np.ravel(data))

    def _information(self, params):
        p = params["p"]
        return jnp.reshape(1 / (p * p * (1 - p)), (1, 1))


def _counts(data, like):
    """Counts as floats of the parameter's dtype: ``xlogy`` cannot be differentiated when its
    first argument is an integer array (its zero tangent has no arithmetic)."""
    return jnp.asarray(data, jnp.result_type(like))
