"""Fit status codes: plain integers on the device, an IntEnum with messages on the host."""

from __future__ import annotations

import enum

import numpy as np


class Status(enum.IntEnum):
    """Why a fit stopped. ``CONVERGED`` is the only successful outcome: the point returned is
    a verified local maximum (the gradient test holds and the observed information is
    positive definite), whichever solver got there."""

    CONVERGED = 0
    MAX_ITER = 1
    NO_FINITE_MAXIMUM = 2
    LINE_SEARCH_FAILED = 3
    NONFINITE = 4
    INFORMATION_NOT_PD = 5
    NONFINITE_START = 6
    INVALID_DATA = 7
    SADDLE_POINT = 8
    AT_BOUNDARY = 9
    NONFINITE_GRADIENT = 10
    NOT_STATIONARY = 11

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Status.CONVERGED: "converged",
    Status.MAX_ITER: "stopped at max_iter before the convergence criterion was met",
    Status.NO_FINITE_MAXIMUM: (
        "no finite maximum: the objective keeps improving as parameters run off to infinity "
        "or to a boundary of their support (e.g. separation in a logistic regression, or an "
        "estimate at p = 0 or 1); the estimates are not MLEs"
    ),
    Status.LINE_SEARCH_FAILED: (
        "no step improved the objective: the likelihood may be unbounded, or not finite near the current point"
    ),
    Status.NONFINITE: "the objective or its gradient became NaN or infinite during the fit",
    Status.INFORMATION_NOT_PD: (
        "a flat ridge: the maximum is attained, but the observed information is singular, so a "
        "combination of parameters is not identified (its SEs are NaN)"
    ),
    Status.NONFINITE_START: "the log-likelihood is not finite at the starting values",
    Status.INVALID_DATA: "the data of this fit contain NaN values, or values a built-in model refuses",
    Status.SADDLE_POINT: (
        "a saddle point, not a maximum: the log-density still curves upward along some direction "
        "(try other starting values, or starts=K)"
    ),
    Status.AT_BOUNDARY: (
        "the supremum lies on the boundary of a constraint: the estimate is at the limit of its "
        "support, so it is not an interior maximum and has no Wald interval"
    ),
    Status.NONFINITE_GRADIENT: "the gradient of the log-density is NaN or infinite at the returned point",
    Status.NOT_STATIONARY: "the solver stopped, but the gradient test does not hold at the returned point",
}


def converged(status) -> np.ndarray:
    """Whether each status code is ``CONVERGED``, a verified local maximum (element-wise)."""
    return np.asarray(status) == Status.CONVERGED
