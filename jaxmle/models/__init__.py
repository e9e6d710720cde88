"""Built-in models: log-likelihood, simulator, closed-form MLE and Fisher information.

Each factory returns a frozen, hashable model that ``jm.fit(model, data)`` accepts in place
of a log-likelihood (its ``init`` and ``constraints`` are used)."""

import numpy as np

from .base import Model, ModelLoglik, resolve
from .continuous import Exponential, Gamma, Gaussian, LogNormal, Weibull
from .discrete import Bernoulli, Binomial, Categorical, Geometric, Poisson
from .regression import LinearRegression, LogisticRegression, PoissonRegression

__all__ = [
    "Model",
    "ModelLoglik",
    "resolve",
    "DEFAULT_TRUTHS",
    "default_truth",
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


#: Each factory's default true values, used by ``jaxmle simulate`` when no ``--truth`` is
#: given (the regressions: an intercept and two covariates; ``categorical(k)``: uniform).
DEFAULT_TRUTHS = {
    "bernoulli": {"p": 0.3},
    "binomial": {"p": 0.3},
    "categorical": None,
    "poisson": {"rate": 3.0},
    "geometric": {"p": 0.3},
    "exponential": {"rate": 2.0},
    "gaussian": {"mu": 0.0, "sigma": 1.0},
    "lognormal": {"mu": 0.0, "sigma": 0.5},
    "gamma": {"shape": 2.0, "rate": 1.0},
    "weibull": {"shape": 1.5, "scale": 1.0},
    "linear_regression": {"beta": (1.0, 0.5, -0.5), "sigma": 1.0},
    "logistic_regression": {"beta": (-0.5, 1.0, -1.0)},
    "poisson_regression": {"beta": (0.5, 0.3, -0.2)},
}


def default_truth(model: Model) -> dict:
    """The default true values of a built-in model (``DEFAULT_TRUTHS``; vectors as arrays)."""
    if model.name == "categorical":
        return {"p": np.full(model.k, 1.0 / model.k)}
    return {name: np.asarray(v) if isinstance(v, tuple) else v for name, v in DEFAULT_TRUTHS[model.name].items()}
