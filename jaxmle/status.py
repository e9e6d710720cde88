"""Fit status codes: plain integers on the device, an IntEnum with messages on the host."""

from __future__ import annotations

import enum

import numpy as np


class Status(enum.IntEnum):
    """Why a fit stopped. ``CONVERGED`` is the only fully successful outcome."""

    CONVERGED = 0
    MAX_ITER = 1
    NO_FINITE_MAXIMUM = 2
    LINE_SEARCH_FAILED = 3
    NONFINITE = 4
    INFORMATION_NOT_PD = 5
    NONFINITE_START = 6
    INVALID_DATA = 7

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
        "converged, but the observed information is not positive definite: some parameters "
        "are not identified and their SEs are NaN"
    ),
    Status.NONFINITE_START: "the log-likelihood is not finite at the starting values",
    Status.INVALID_DATA: "the data of this fit contain NaN or infinite values",
}


#: statuses whose optimizer converged (the second with an information that is not
#: positive definite: estimates without SEs for the unidentified parameters)
CONVERGED_STATUSES = (Status.CONVERGED, Status.INFORMATION_NOT_PD)


def converged(status) -> np.ndarray:
    """Whether each status code is one of ``CONVERGED_STATUSES`` (element-wise)."""
    return np.isin(np.asarray(status), CONVERGED_STATUSES)
