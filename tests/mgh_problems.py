"""The least-squares test problems of Moré, Garbow and Hillstrom.

J. J. Moré, B. S. Garbow and K. E. Hillstrom, "Testing unconstrained optimization
software", ACM Transactions on Mathematical Software 7(1), 17–41 (1981), problems 1–10
and 12–20: residuals r(x) ∈ R^m, standard starting points x0 and the published minimum
values f* of f(x) = Σ r_i(x)², given there to six significant digits.

The residuals, data and starting points agree with MINPACK-1's test routines ``ssqfcn``
and ``initpt`` (Argonne, 1980) for the problems that MINPACK's test set shares; the f*
values were cross-checked against two independent transcriptions of the paper (the
Compressed Continuous Computation library's ``unconstrained_functions.c`` and
optimistix's test problems; the latter gives 1.12798e-8 for the Gaussian function where
the paper and the former give 1.12793e-8).

Each problem becomes a Gaussian log-likelihood with unit variance,
loglik(p) = -½ Σ r_i(p["x"])², so that the MLE minimizes f and f = -2 loglik.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np


class MGHProblem(NamedTuple):
    number: int  # in Moré, Garbow and Hillstrom (1981)
    name: str
    residuals: Callable  # x -> r(x), jax.numpy
    x0: tuple
    m: int
    f_star: float  # the published minimum of Σ r², 0.0 where it is exactly zero
    other_minima: tuple = ()  # further published local minimum values at finite points
    note: str = ""  # published values approached at infinity

    @property
    def n(self) -> int:
        return len(self.x0)

    def loglik(self, params, data=None):
        """Per-residual Gaussian log-likelihood terms -½ r_i², unit variance."""
        return -0.5 * self.residuals(params["x"]) ** 2

    def objective(self, x) -> float:
        """f(x) = Σ r_i(x)²."""
        return float(jnp.sum(self.residuals(jnp.asarray(x)) ** 2))

    def reached(self, f) -> float | None:
        """The published minimum value that ``f`` matches, or None."""
        for value in (self.f_star, *self.other_minima):
            if abs(f - value) <= tolerance(value):
                return value
        return None


def tolerance(f_star: float) -> float:
    """The accuracy to which a published f* is known: 1e-6 relative, or one unit in the
    sixth significant digit where that is larger (the paper prints six digits, truncated:
    48.9842... for 48.98425...); 1e-10 absolute where f* = 0."""
    if f_star == 0.0:
        return 1e-10
    last_digit = 10.0 ** (np.floor(np.log10(f_star)) - 5)
    return max(1e-6 * f_star, last_digit)


def rosenbrock(x):
    return jnp.stack([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]])


def freudenstein_roth(x):
    return jnp.stack(
        [
            -13.0 + x[0] + ((5.0 - x[1]) * x[1] - 2.0) * x[1],
            -29.0 + x[0] + ((x[1] + 1.0) * x[1] - 14.0) * x[1],
        ]
    )


def powell_badly_scaled(x):
    return jnp.stack([1e4 * x[0] * x[1] - 1.0, jnp.exp(-x[0]) + jnp.exp(-x[1]) - 1.0001])


def brown_badly_scaled(x):
    return jnp.stack([x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2.0])


BEALE_Y = np.array([1.5, 2.25, 2.625])


def beale(x):
    i = np.arange(1, 4)
    return BEALE_Y - x[0] * (1.0 - x[1] ** i)


def jennrich_sampson(x):
    i = np.arange(1, 11)
    return 2.0 + 2.0 * i - (jnp.exp(i * x[0]) + jnp.exp(i * x[1]))


def helical_valley(x):
    theta = jnp.arctan(x[1] / x[0]) / (2 * np.pi) + jnp.where(x[0] < 0, 0.5, 0.0)
    return jnp.stack([10.0 * (x[2] - 10.0 * theta), 10.0 * (jnp.sqrt(x[0] ** 2 + x[1] ** 2) - 1.0), x[2]])


BARD_Y = np.array([0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96, 1.34, 2.10, 4.39])


def bard(x):
    u = np.arange(1, 16, dtype=float)
    v = 16.0 - u
    w = np.minimum(u, v)
    return BARD_Y - (x[0] + u / (v * x[1] + w * x[2]))


GAUSSIAN_Y = np.array(
    [0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989, 0.3521, 0.2420, 0.1295, 0.0540, 0.0175, 0.0044]
    + [0.0009]
)


def gaussian(x):
    t = (8.0 - np.arange(1, 16)) / 2.0
    return x[0] * jnp.exp(-x[1] * (t - x[2]) ** 2 / 2.0) - GAUSSIAN_Y


MEYER_Y = np.array(
    [34780, 28610, 23650, 19630, 16370, 13720, 11540, 9744, 8261, 7030, 6005, 5147, 4427, 3820, 3307, 2872], float
)


def meyer(x):
    t = 45.0 + 5.0 * np.arange(1, 17)
    return x[0] * jnp.exp(x[1] / (t + x[2])) - MEYER_Y


def box_3d(x):
    t = 0.1 * np.arange(1, 11)
    return jnp.exp(-t * x[0]) - jnp.exp(-t * x[1]) - x[2] * (np.exp(-t) - np.exp(-10.0 * t))


def powell_singular(x):
    return jnp.stack(
        [x[0] + 10.0 * x[1], np.sqrt(5.0) * (x[2] - x[3]), (x[1] - 2.0 * x[2]) ** 2, np.sqrt(10.0) * (x[0] - x[3]) ** 2]
    )


def wood(x):
    return jnp.stack(
        [
            10.0 * (x[1] - x[0] ** 2),
            1.0 - x[0],
            np.sqrt(90.0) * (x[3] - x[2] ** 2),
            1.0 - x[2],
            np.sqrt(10.0) * (x[1] + x[3] - 2.0),
            (x[1] - x[3]) / np.sqrt(10.0),
        ]
    )


KOWALIK_OSBORNE_Y = np.array([0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323, 0.0235, 0.0246])
KOWALIK_OSBORNE_U = np.array([4.0, 2.0, 1.0, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625])


def kowalik_osborne(x):
    u = KOWALIK_OSBORNE_U
    return KOWALIK_OSBORNE_Y - x[0] * (u**2 + u * x[1]) / (u**2 + u * x[2] + x[3])


def brown_dennis(x):
    t = np.arange(1, 21) / 5.0
    return (x[0] + t * x[1] - np.exp(t)) ** 2 + (x[2] + x[3] * np.sin(t) - np.cos(t)) ** 2


OSBORNE1_Y = np.array(
    [0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751, 0.718, 0.685, 0.658, 0.628, 0.603]
    + [0.580, 0.558, 0.538, 0.522, 0.506, 0.490, 0.478, 0.467, 0.457, 0.448, 0.438, 0.431, 0.424, 0.420, 0.414]
    + [0.411, 0.406]
)


def osborne1(x):
    t = 10.0 * np.arange(33)
    return OSBORNE1_Y - (x[0] + x[1] * jnp.exp(-t * x[3]) + x[2] * jnp.exp(-t * x[4]))


def biggs_exp6(x):
    t = 0.1 * np.arange(1, 14)
    y = np.exp(-t) - 5.0 * np.exp(-10.0 * t) + 3.0 * np.exp(-4.0 * t)
    return x[2] * jnp.exp(-t * x[0]) - x[3] * jnp.exp(-t * x[1]) + x[5] * jnp.exp(-t * x[4]) - y


OSBORNE2_Y = np.array(
    [1.366, 1.191, 1.112, 1.013, 0.991, 0.885, 0.831, 0.847, 0.786, 0.725, 0.746, 0.679, 0.608, 0.655, 0.616, 0.606]
    + [0.602, 0.626, 0.651, 0.724, 0.649, 0.649, 0.694, 0.644, 0.624, 0.661, 0.612, 0.558, 0.533, 0.495, 0.500]
    + [0.423, 0.395, 0.375, 0.372, 0.391, 0.396, 0.405, 0.428, 0.429, 0.523, 0.562, 0.607, 0.653, 0.672, 0.708]
    + [0.633, 0.668, 0.645, 0.632, 0.591, 0.559, 0.597, 0.625, 0.739, 0.710, 0.729, 0.720, 0.636, 0.581, 0.428]
    + [0.292, 0.162, 0.098, 0.054]
)


def osborne2(x):
    t = np.arange(65) / 10.0
    model = (
        x[0] * jnp.exp(-t * x[4])
        + x[1] * jnp.exp(-((t - x[8]) ** 2) * x[5])
        + x[2] * jnp.exp(-((t - x[9]) ** 2) * x[6])
        + x[3] * jnp.exp(-((t - x[10]) ** 2) * x[7])
    )
    return OSBORNE2_Y - model


def watson(x):
    n = x.shape[0]
    t = np.arange(1, 30) / 29.0
    j = np.arange(n)
    powers = t[:, None] ** j[None, :]  # t_i^(j-1) for j = 1..n
    derivative = powers[:, :-1] @ (j[1:] * x[1:])  # Σ_{j≥2} (j-1) x_j t^(j-2)
    value = powers @ x
    return jnp.concatenate([derivative - value**2 - 1.0, jnp.stack([x[0], x[1] - x[0] ** 2 - 1.0])])


PROBLEMS = (
    MGHProblem(1, "Rosenbrock", rosenbrock, (-1.2, 1.0), 2, 0.0),
    MGHProblem(
        2,
        "Freudenstein-Roth",
        freudenstein_roth,
        (0.5, -2.0),
        2,
        0.0,
        (48.9842,),  # at (11.41..., -0.8968...)
    ),
    MGHProblem(3, "Powell badly scaled", powell_badly_scaled, (0.0, 1.0), 2, 0.0),
    MGHProblem(4, "Brown badly scaled", brown_badly_scaled, (1.0, 1.0), 3, 0.0),
    MGHProblem(5, "Beale", beale, (1.0, 1.0), 3, 0.0),
    MGHProblem(6, "Jennrich-Sampson", jennrich_sampson, (0.3, 0.4), 10, 124.362),
    MGHProblem(7, "Helical valley", helical_valley, (-1.0, 0.0, 0.0), 3, 0.0),
    MGHProblem(8, "Bard", bard, (1.0, 1.0, 1.0), 15, 8.21487e-3, (), "f = 17.4286 at (0.8406..., -inf, -inf)"),
    MGHProblem(9, "Gaussian", gaussian, (0.4, 1.0, 0.0), 15, 1.12793e-8),
    MGHProblem(10, "Meyer", meyer, (0.02, 4000.0, 250.0), 16, 87.9458),
    MGHProblem(12, "Box 3-D", box_3d, (0.0, 10.0, 20.0), 10, 0.0),
    MGHProblem(13, "Powell singular", powell_singular, (3.0, -1.0, 0.0, 1.0), 4, 0.0),
    MGHProblem(14, "Wood", wood, (-3.0, -1.0, -3.0, -1.0), 6, 0.0),
    MGHProblem(
        15,
        "Kowalik-Osborne",
        kowalik_osborne,
        (0.25, 0.39, 0.415, 0.39),
        11,
        3.07505e-4,
        (),
        "f = 1.02734e-3 at (+inf, -14.07..., -inf, -inf)",
    ),
    MGHProblem(16, "Brown-Dennis", brown_dennis, (25.0, 5.0, -5.0, -1.0), 20, 85822.2),
    MGHProblem(17, "Osborne 1", osborne1, (0.5, 1.5, -1.0, 0.01, 0.02), 33, 5.46489e-5),
    MGHProblem(18, "Biggs EXP6", biggs_exp6, (1.0, 2.0, 1.0, 1.0, 1.0, 1.0), 13, 0.0, (5.65565e-3,)),
    MGHProblem(19, "Osborne 2", osborne2, (1.3, 0.65, 0.65, 0.7, 0.6, 3.0, 5.0, 7.0, 2.0, 4.5, 5.5), 65, 4.01377e-2),
    MGHProblem(20, "Watson (n=6)", watson, (0.0,) * 6, 31, 2.28767e-3),
    MGHProblem(20, "Watson (n=9)", watson, (0.0,) * 9, 31, 1.39976e-6),
)
