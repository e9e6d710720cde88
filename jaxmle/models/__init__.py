"""Built-in models: log-likelihood, simulator, closed-form MLE and Fisher information.

Each factory returns a frozen, hashable model that ``jm.fit(model, data)`` accepts in place
of a log-likelihood (its ``init`` and ``constraints`` are used)."""

from .base import Model, ModelLoglik, resolve
from .continuous import Exponential, Gamma, Gaussian, LogNormal, Weibull
from .discrete import Bernoulli, Binomial, Categorical, Geometric, Poisson
from .regression import LinearRegression, LogisticRegression, PoissonRegression

__all__ = [
    "Model",
    "ModelLoglik",
    "resolve",
    "bernoulli",
    "binomial",
    "categorical",
    "poisson",
    "geometric",
    "exponential",
    "gaussian",
    "lognormal",
    "gamma",
    "weibull",
    "linear_regression",
    "logistic_regression",
    "poisson_regression",
]


def bernoulli() -> Bernoulli:
    """0/1 outcomes; parameter ``p``."""
    return Bernoulli()


def binomial(trials: int) -> Binomial:
    """Successes out of ``trials``; parameter ``p``."""
    return Binomial(trials)


def categorical(k: int) -> Categorical:
    """Labels 0..k-1; parameter ``p`` on the simplex."""
    return Categorical(k)


def poisson() -> Poisson:
    """Counts; parameter ``rate``."""
    return Poisson()


def geometric() -> Geometric:
    """Failures before the first success; parameter ``p``."""
    return Geometric()


def exponential() -> Exponential:
    """Positive data; parameter ``rate``."""
    return Exponential()


def gaussian() -> Gaussian:
    """Real data; parameters ``mu``, ``sigma``."""
    return Gaussian()


def lognormal() -> LogNormal:
    """Positive data with Gaussian log; parameters ``mu``, ``sigma`` of the log."""
    return LogNormal()


def gamma() -> Gamma:
    """Positive data; parameters ``shape``, ``rate``."""
    return Gamma()


def weibull() -> Weibull:
    """Positive data; parameters ``shape``, ``scale``."""
    return Weibull()


def linear_regression() -> LinearRegression:
    """``{"X", "y"}`` with Gaussian errors; parameters ``beta``, ``sigma``."""
    return LinearRegression()


def logistic_regression() -> LogisticRegression:
    """``{"X", "y"}`` with 0/1 responses; parameter ``beta``."""
    return LogisticRegression()


def poisson_regression() -> PoissonRegression:
    """``{"X", "y"}`` with counts and a log link; parameter ``beta``."""
    return PoissonRegression()
