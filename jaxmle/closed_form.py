"""Closed-form estimators: MLEs, ridge, lasso (orthonormal design) and conjugate posteriors.

Plain NumPy on the host, written from the textbook formulas, so every numerical fit can be
checked against them. The MLE functions return params dicts shaped like ``jm.fit``'s for
the matching built-in model. Each conjugate function returns a posterior object holding
its hyperparameters with ``mean``, ``mode`` (the MAP, in the parameterization of the
prior, with no Jacobian term) and ``var``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .models import _checks
from .validation import finite_number, positive_number

__all__ = [
    "bernoulli_mle",
    "binomial_mle",
    "categorical_mle",
    "poisson_mle",
    "geometric_mle",
    "exponential_mle",
    "gaussian_mle",
    "lognormal_mle",
    "ols",
    "ridge",
    "lasso_orthonormal",
    "soft_threshold",
    "BetaPosterior",
    "DirichletPosterior",
    "GammaPosterior",
    "NormalPosterior",
    "InverseGammaPosterior",
    "NormalInverseGammaPosterior",
    "beta_bernoulli",
    "dirichlet_multinomial",
    "gamma_poisson",
    "gamma_exponential",
    "normal_normal",
    "inverse_gamma_normal",
    "normal_inverse_gamma",
]


# --- argument checks -----------------------------------------------------------------
def _vector(name, x, **checks):
    """A non-empty 1-D float64 array, checked element-wise by the models' data checks."""
    x = _checks.values(x, name, **checks)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {x.shape}")
    return x


def _design(X, y):
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be (n, d) and y (n,), got X {X.shape} and y {y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite")
    return X, y


# --- maximum likelihood --------------------------------------------------------------
def bernoulli_mle(x) -> dict:
    """p̂ = mean(x) for 0/1 outcomes."""
    x = _vector("x", x, lower=0, integer=True)
    if np.any(x > 1):
        raise ValueError("x must hold 0/1 outcomes")
    return {"p": x.mean()}


def binomial_mle(x, trials: int) -> dict:
    """p̂ = mean(x) / trials for counts out of ``trials``."""
    x = _vector("x", x, lower=0, integer=True)
    if np.any(x > trials):
        raise ValueError(f"x must be <= trials ({trials})")
    return {"p": x.mean() / trials}


def categorical_mle(x, k: int) -> dict:
    """p̂_j = count_j / n for labels 0..k-1 (the multinomial MLE)."""
    x = _vector("x", x, lower=0, integer=True)
    if np.any(x >= k):
        raise ValueError(f"x must hold labels 0..{k - 1}")
    return {"p": np.bincount(x.astype(int), minlength=k) / x.size}


def poisson_mle(x) -> dict:
    """λ̂ = mean(x)."""
    return {"rate": _vector("x", x, lower=0, integer=True).mean()}


def geometric_mle(x) -> dict:
    """p̂ = 1 / (1 + mean(x)) for x = failures before the first success."""
    return {"p": 1.0 / (1.0 + _vector("x", x, lower=0, integer=True).mean())}


def exponential_mle(x) -> dict:
    """λ̂ = 1 / mean(x)."""
    return {"rate": 1.0 / _vector("x", x, positive=True).mean()}


def gaussian_mle(x) -> dict:
    """μ̂ = mean(x), σ̂ = sqrt(mean((x - μ̂)²)) (divisor n: biased by (n-1)/n for σ²)."""
    x = _vector("x", x)
    return {"mu": x.mean(), "sigma": np.sqrt(np.mean((x - x.mean()) ** 2))}


def lognormal_mle(x) -> dict:
    """The Gaussian MLE of log(x)."""
    return gaussian_mle(np.log(_vector("x", x, positive=True)))


def ols(X, y) -> dict:
    """β̂ = (XᵀX)⁻¹Xᵀy (by least squares) and σ̂ = sqrt(RSS / n): the Gaussian linear MLE."""
    X, y = _design(X, y)
    beta, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    if rank < X.shape[1]:
        raise ValueError(f"X has rank {rank} < {X.shape[1]} columns: the OLS estimate is not unique")
    return {"beta": beta, "sigma": np.sqrt(np.mean((y - X @ beta) ** 2))}


def ridge(X, y, lam: float) -> np.ndarray:
    """argmin ‖y - Xβ‖² + λ‖β‖² = (XᵀX + λI)⁻¹Xᵀy: the MAP of a Gaussian linear model with
    known σ under a N(0, s²) prior on every coefficient, λ = σ²/s²."""
    X, y = _design(X, y)
    lam = positive_number("lam", lam)
    return np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ y)


def soft_threshold(z, lam: float) -> np.ndarray:
    """sign(z) max(|z| - λ, 0)."""
    z = np.asarray(z, dtype=float)
    return np.sign(z) * np.maximum(np.abs(z) - lam, 0.0)


def lasso_orthonormal(X, y, lam: float) -> np.ndarray:
    """argmin ½‖y - Xβ‖² + λ‖β‖₁ for XᵀX = I: soft thresholding of Xᵀy. It is the MAP of a
    Gaussian linear model with known σ under a Laplace(0, b) prior, λ = σ²/b."""
    X, y = _design(X, y)
    lam = positive_number("lam", lam)
    gram = X.T @ X
    if not np.allclose(gram, np.eye(X.shape[1]), atol=1e-10):
        raise ValueError("X must have orthonormal columns (XᵀX = I) for the closed-form lasso")
    return soft_threshold(X.T @ y, lam)


# --- conjugate posteriors ------------------------------------------------------------
def _mode_error(family, why):
    return ValueError(f"the {family} posterior has no interior mode: {why}")


@dataclass(frozen=True)
class BetaPosterior:
    """Beta(a, b) on a probability."""

    a: float
    b: float

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)

    @property
    def mode(self) -> float:
        """(a - 1) / (a + b - 2), defined for a, b >= 1 and a + b > 2."""
        if self.a < 1 or self.b < 1 or self.a + self.b <= 2:
            raise _mode_error("Beta", f"needs a, b >= 1 and a + b > 2 (a={self.a:g}, b={self.b:g})")
        return (self.a - 1) / (self.a + self.b - 2)

    @property
    def var(self) -> float:
        s = self.a + self.b
        return self.a * self.b / (s * s * (s + 1))


@dataclass(frozen=True)
class DirichletPosterior:
    """Dirichlet(alpha) on a probability vector; ``var`` holds the marginal variances."""

    alpha: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.alpha / self.alpha.sum()

    @property
    def mode(self) -> np.ndarray:
        """(alpha - 1) / (sum(alpha) - k), defined for every alpha >= 1, not all 1."""
        k = self.alpha.size
        if np.any(self.alpha < 1) or self.alpha.sum() <= k:
            raise _mode_error("Dirichlet", "needs every alpha >= 1 and not all equal to 1")
        return (self.alpha - 1) / (self.alpha.sum() - k)

    @property
    def var(self) -> np.ndarray:
        a0 = self.alpha.sum()
        return self.alpha * (a0 - self.alpha) / (a0 * a0 * (a0 + 1))


@dataclass(frozen=True)
class GammaPosterior:
    """Gamma(shape, rate) on a positive rate."""

    shape: float
    rate: float

    @property
    def mean(self) -> float:
        return self.shape / self.rate

    @property
    def mode(self) -> float:
        """(shape - 1) / rate, defined for shape >= 1."""
        if self.shape < 1:
            raise _mode_error("Gamma", f"needs shape >= 1 (shape={self.shape:g})")
        return (self.shape - 1) / self.rate

    @property
    def var(self) -> float:
        return self.shape / self.rate**2


@dataclass(frozen=True)
class NormalPosterior:
    """N(loc, scale²) on a mean."""

    loc: float
    scale: float

    @property
    def mean(self) -> float:
        return self.loc

    @property
    def mode(self) -> float:
        return self.loc

    @property
    def var(self) -> float:
        return self.scale**2


@dataclass(frozen=True)
class InverseGammaPosterior:
    """InverseGamma(shape, scale) on a variance: density ∝ v^(-shape-1) exp(-scale/v)."""

    shape: float
    scale: float

    @property
    def mean(self) -> float:
        """scale / (shape - 1), finite for shape > 1."""
        if self.shape <= 1:
            raise ValueError(f"the InverseGamma mean is infinite for shape <= 1 (shape={self.shape:g})")
        return self.scale / (self.shape - 1)

    @property
    def mode(self) -> float:
        return self.scale / (self.shape + 1)

    @property
    def var(self) -> float:
        """scale² / ((shape - 1)² (shape - 2)), finite for shape > 2."""
        if self.shape <= 2:
            raise ValueError(f"the InverseGamma variance is infinite for shape <= 2 (shape={self.shape:g})")
        return self.scale**2 / ((self.shape - 1) ** 2 * (self.shape - 2))


@dataclass(frozen=True)
class NormalInverseGammaPosterior:
    """μ | v ~ N(mu, v / kappa), v ~ InverseGamma(a, b), for a mean μ and variance v.

    ``mean``, ``mode`` and ``var`` are dicts over ``"mu"`` and ``"var"``: the joint mode of
    (μ, v) is (mu, b / (a + 3/2)); the marginal of μ is a Student t with 2a degrees of
    freedom, so E μ = mu and Var μ = b / ((a - 1) kappa) for a > 1."""

    mu: float
    kappa: float
    a: float
    b: float

    @property
    def _var(self) -> InverseGammaPosterior:
        return InverseGammaPosterior(self.a, self.b)

    @property
    def mean(self) -> dict:
        return {"mu": self.mu, "var": self._var.mean}

    @property
    def mode(self) -> dict:
        return {"mu": self.mu, "var": self.b / (self.a + 1.5)}

    @property
    def var(self) -> dict:
        return {"mu": self._var.mean / self.kappa, "var": self._var.var}


def beta_bernoulli(x, a: float = 1.0, b: float = 1.0) -> BetaPosterior:
    """Beta(a, b) prior, Bernoulli outcomes: Beta(a + Σx, b + n - Σx). Beta(1, 1) gives the
    posterior mean (Σx + 1) / (n + 2): Laplace's rule of succession (add-one smoothing)."""
    a, b = positive_number("a", a), positive_number("b", b)
    x = _vector("x", x, lower=0, integer=True)
    if np.any(x > 1):
        raise ValueError("x must hold 0/1 outcomes")
    return BetaPosterior(a + x.sum(), b + x.size - x.sum())


def dirichlet_multinomial(counts, alpha) -> DirichletPosterior:
    """Dirichlet(alpha) prior, multinomial counts: Dirichlet(alpha + counts). Alpha of ones
    gives the posterior mean (count_j + 1) / (n + k): add-one smoothing."""
    counts = _vector("counts", counts, lower=0, integer=True)
    alpha = _vector("alpha", alpha, positive=True)
    if alpha.size != counts.size or alpha.size < 2:
        raise ValueError(f"alpha and counts need the same length >= 2, got {alpha.size} and {counts.size}")
    return DirichletPosterior(alpha + counts)


def gamma_poisson(x, shape: float, rate: float) -> GammaPosterior:
    """Gamma(shape, rate) prior on a Poisson rate: Gamma(shape + Σx, rate + n)."""
    shape, rate = positive_number("shape", shape), positive_number("rate", rate)
    x = _vector("x", x, lower=0, integer=True)
    return GammaPosterior(shape + x.sum(), rate + x.size)


def gamma_exponential(x, shape: float, rate: float) -> GammaPosterior:
    """Gamma(shape, rate) prior on an exponential rate: Gamma(shape + n, rate + Σx)."""
    shape, rate = positive_number("shape", shape), positive_number("rate", rate)
    x = _vector("x", x, positive=True)
    return GammaPosterior(shape + x.size, rate + x.sum())


def normal_normal(x, sigma: float, mu0: float, tau0: float) -> NormalPosterior:
    """N(mu0, tau0²) prior on the mean of N(μ, sigma²) data with known sigma: posterior
    precision 1/tau0² + n/sigma², mean (mu0/tau0² + Σx/sigma²) / precision."""
    sigma, mu0, tau0 = positive_number("sigma", sigma), finite_number("mu0", mu0), positive_number("tau0", tau0)
    x = _vector("x", x)
    precision = 1.0 / tau0**2 + x.size / sigma**2
    return NormalPosterior((mu0 / tau0**2 + x.sum() / sigma**2) / precision, 1.0 / np.sqrt(precision))


def inverse_gamma_normal(x, mu: float, a: float, b: float) -> InverseGammaPosterior:
    """InverseGamma(a, b) prior on the variance of N(mu, v) data with known mean:
    InverseGamma(a + n/2, b + Σ(x - mu)²/2)."""
    mu, a, b = finite_number("mu", mu), positive_number("a", a), positive_number("b", b)
    x = _vector("x", x)
    return InverseGammaPosterior(a + x.size / 2, b + np.sum((x - mu) ** 2) / 2)


def normal_inverse_gamma(x, mu0: float, kappa0: float, a0: float, b0: float) -> NormalInverseGammaPosterior:
    """Normal-inverse-gamma prior μ | v ~ N(mu0, v/kappa0), v ~ InverseGamma(a0, b0) on the
    mean and variance of N(μ, v) data: kappa = kappa0 + n, mu = (kappa0 mu0 + n x̄)/kappa,
    a = a0 + n/2, b = b0 + Σ(x - x̄)²/2 + kappa0 n (x̄ - mu0)² / (2 kappa)."""
    mu0, kappa0 = finite_number("mu0", mu0), positive_number("kappa0", kappa0)
    a0, b0 = positive_number("a0", a0), positive_number("b0", b0)
    x = _vector("x", x)
    n, xbar = x.size, x.mean()
    kappa = kappa0 + n
    b = b0 + np.sum((x - xbar) ** 2) / 2 + kappa0 * n * (xbar - mu0) ** 2 / (2 * kappa)
    return NormalInverseGammaPosterior((kappa0 * mu0 + n * xbar) / kappa, kappa, a0 + n / 2, b)
