"""Log-priors for MAP estimation, each applied element-wise to one parameter.

``log_prob(x)`` is the log density summed over the elements of ``x``, normalizing
constants included, in the user's own parameterization (no Jacobian term): the mode
of loglik + log_prob is the MAP that the closed-form formulas give. ``sample(key, shape)``
draws independent elements from the prior (every built-in prior is proper), for
simulation-based calibration (``jm.sbc``).

The Laplace prior is kept in two parts: a constant (``log_prob_smooth``) and the L1
penalty ``|x - loc| / scale`` that the proximal solver handles exactly, so a lasso gives
exact zeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.scipy import special, stats

from .validation import finite_number, positive_number

__all__ = [
    "Prior",
    "Normal",
    "Laplace",
    "Beta",
    "Gamma",
    "InverseGamma",
    "HalfNormal",
    "Exponential",
    "Dirichlet",
    "StudentT",
]


@dataclass(frozen=True)
class Prior:
    """Base class: the support is [lower, upper] (or the simplex)."""

    lower = -math.inf
    upper = math.inf
    on_simplex = False

    def log_prob(self, x):
        raise NotImplementedError

    def sample(self, key, shape=()):
        """Independent draws of ``shape``: a proper prior's; an improper one has none."""
        raise ValueError(f"{type(self).__name__} defines no sample(key, shape): it cannot be drawn from")

    def log_prob_smooth(self, x):
        """The differentiable part of ``log_prob`` (all of it, except for Laplace)."""
        return self.log_prob(x)


@dataclass(frozen=True)
class Normal(Prior):
    """N(loc, scale²). A Normal(0, s) prior on regression coefficients is ridge with
    penalty λ = σ²/s² in the least-squares scale."""

    loc: float = 0.0
    scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "loc", finite_number("Normal loc", self.loc))
        object.__setattr__(self, "scale", positive_number("Normal scale", self.scale))

    def log_prob(self, x):
        return jnp.sum(stats.norm.logpdf(x, self.loc, self.scale))

    def sample(self, key, shape=()):
        return self.loc + self.scale * jax.random.normal(key, shape)


@dataclass(frozen=True)
class Laplace(Prior):
    """Laplace(loc, scale), density exp(-|x - loc|/scale) / (2 scale): the lasso with
    weight 1/scale. Its mode has exact zeros (x == loc)."""

    loc: float = 0.0
    scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "loc", finite_number("Laplace loc", self.loc))
        object.__setattr__(self, "scale", positive_number("Laplace scale", self.scale))

    @property
    def l1_weight(self) -> float:
        return 1.0 / self.scale

    def log_prob(self, x):
        return self.log_prob_smooth(x) - jnp.sum(jnp.abs(x - self.loc)) / self.scale

    def sample(self, key, shape=()):
        return self.loc + self.scale * jax.random.laplace(key, shape)

    def log_prob_smooth(self, x):
        return -jnp.size(x) * math.log(2.0 * self.scale)


@dataclass(frozen=True)
class StudentT(Prior):
    """Student t with ``df`` degrees of freedom, location ``loc`` and scale ``scale``."""

    df: float = 3.0
    loc: float = 0.0
    scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "df", positive_number("StudentT df", self.df))
        object.__setattr__(self, "loc", finite_number("StudentT loc", self.loc))
        object.__setattr__(self, "scale", positive_number("StudentT scale", self.scale))

    def log_prob(self, x):
        return jnp.sum(stats.t.logpdf(x, self.df, self.loc, self.scale))

    def sample(self, key, shape=()):
        return self.loc + self.scale * jax.random.t(key, self.df, shape)


@dataclass(frozen=True)
class Beta(Prior):
    """Beta(a, b) on (0, 1)."""

    a: float = 1.0
    b: float = 1.0
    lower = 0.0
    upper = 1.0

    def __post_init__(self):
        object.__setattr__(self, "a", positive_number("Beta a", self.a))
        object.__setattr__(self, "b", positive_number("Beta b", self.b))

    def log_prob(self, x):
        return jnp.sum(special.xlogy(self.a - 1, x) + special.xlog1py(self.b - 1, -x) - special.betaln(self.a, self.b))

    def sample(self, key, shape=()):
        return jax.random.beta(key, self.a, self.b, shape)


@dataclass(frozen=True)
class Gamma(Prior):
    """Gamma(shape, rate): density ∝ x^(shape-1) exp(-rate x) on (0, inf)."""

    shape: float = 1.0
    rate: float = 1.0
    lower = 0.0

    def __post_init__(self):
        object.__setattr__(self, "shape", positive_number("Gamma shape", self.shape))
        object.__setattr__(self, "rate", positive_number("Gamma rate", self.rate))

    def log_prob(self, x):
        return jnp.sum(stats.gamma.logpdf(x, self.shape, scale=1.0 / self.rate))

    def sample(self, key, shape=()):
        return jax.random.gamma(key, self.shape, shape) / self.rate


@dataclass(frozen=True)
class InverseGamma(Prior):
    """InverseGamma(shape, scale): density ∝ x^(-shape-1) exp(-scale/x) on (0, inf)."""

    shape: float = 1.0
    scale: float = 1.0
    lower = 0.0

    def __post_init__(self):
        object.__setattr__(self, "shape", positive_number("InverseGamma shape", self.shape))
        object.__setattr__(self, "scale", positive_number("InverseGamma scale", self.scale))

    def log_prob(self, x):
        a, b = self.shape, self.scale
        return jnp.sum(a * math.log(b) - special.gammaln(a) - (a + 1) * jnp.log(x) - b / x)

    def sample(self, key, shape=()):
        return self.scale / jax.random.gamma(key, self.shape, shape)


@dataclass(frozen=True)
class HalfNormal(Prior):
    """Half-normal with scale ``scale`` on (0, inf)."""

    scale: float = 1.0
    lower = 0.0

    def __post_init__(self):
        object.__setattr__(self, "scale", positive_number("HalfNormal scale", self.scale))

    def log_prob(self, x):
        return jnp.sum(math.log(2.0) + stats.norm.logpdf(x, 0.0, self.scale))

    def sample(self, key, shape=()):
        return self.scale * jnp.abs(jax.random.normal(key, shape))


@dataclass(frozen=True)
class Exponential(Prior):
    """Exponential(rate) on (0, inf)."""

    rate: float = 1.0
    lower = 0.0

    def __post_init__(self):
        object.__setattr__(self, "rate", positive_number("Exponential rate", self.rate))

    def log_prob(self, x):
        return jnp.sum(math.log(self.rate) - self.rate * x)

    def sample(self, key, shape=()):
        return jax.random.exponential(key, shape) / self.rate


@dataclass(frozen=True)
class Dirichlet(Prior):
    """Dirichlet(alpha) on the simplex; ``alpha`` a tuple of concentrations."""

    alpha: tuple = (1.0, 1.0)
    lower = 0.0
    upper = 1.0
    on_simplex = True

    def __post_init__(self):
        alpha = tuple(positive_number("Dirichlet alpha", float(a)) for a in self.alpha)
        if len(alpha) < 2:
            raise ValueError("Dirichlet alpha needs at least 2 concentrations")
        object.__setattr__(self, "alpha", alpha)

    def log_prob(self, x):
        alpha = jnp.asarray(self.alpha, dtype=x.dtype)
        if x.shape != alpha.shape:
            raise ValueError(f"Dirichlet alpha has {alpha.shape[0]} entries but the parameter has shape {x.shape}")
        norm = jnp.sum(special.gammaln(alpha)) - special.gammaln(jnp.sum(alpha))
        return jnp.sum(special.xlogy(alpha - 1, x)) - norm

    def sample(self, key, shape=None):
        """Draws of ``shape`` (by default one vector of len(alpha)); its last axis is len(alpha)."""
        shape = (len(self.alpha),) if shape is None else tuple(shape)
        if not shape or shape[-1] != len(self.alpha):
            raise ValueError(f"Dirichlet alpha has {len(self.alpha)} entries but the shape asked is {shape}")
        return jax.random.dirichlet(key, jnp.asarray(self.alpha), shape[:-1])
