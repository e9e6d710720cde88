"""Joint Wald tests of restrictions g(θ) = 0 by the delta method.

For q restrictions g (any pytree of values that ``fn(params)`` returns), with G = ∂g/∂θ at
θ̂ by autodiff and Σ the fit's covariance (whatever its ``cov_type``: observed, sandwich,
cluster-robust, ...), the statistic W = g(θ̂)ᵀ [G Σ Gᵀ]⁻¹ g(θ̂) is asymptotically χ²_q
under the null g(θ) = 0. For linear restrictions Rθ = r of a linear model this is the
chi-square form of the usual Wald test (statsmodels' ``wald_test(..., use_f=False)``,
Stata's ``test`` with a chi-square reference).

The restrictions must be non-redundant: G Σ Gᵀ must be positive definite. Redundant
restrictions (one a combination of others), a restriction that does not depend on the free
parameters, or one that depends on a parameter without a defined variance is refused with
a ValueError rather than tested with a generalized inverse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .lrtest import chi2_sf

__all__ = ["WaldTest", "wald_test"]

#: eigenvalues of the restrictions' correlation matrix at or below this count as zero
#: (redundant restrictions)
SINGULAR_TOL = 1e-10


class WaldTest(NamedTuple):
    """A joint Wald test: the statistic W, its degrees of freedom q, the p-value
    P(χ²_q ≥ W), the restrictions' values g(θ̂) (flat, in JAX's leaf order) and their
    delta-method covariance G Σ Gᵀ (q × q)."""

    statistic: float
    df: int
    pvalue: float
    value: np.ndarray
    cov: np.ndarray

    def __repr__(self) -> str:
        return f"WaldTest(chi2({self.df}) = {self.statistic:.6g}, p = {self.pvalue:.4g})"

    def __str__(self) -> str:
        values = ", ".join(f"{v:.6g}" for v in self.value)
        return f"Wald test of {self.df} restriction(s): W = {self.statistic:.6g}, p = {self.pvalue:.4g}; g = [{values}]"


def wald_test(result, fn: Callable) -> WaldTest:
    """The joint Wald test of ``fn(params) = 0`` at the fit ``result`` (a ``FitResult``)."""
    if not callable(fn):
        raise ValueError(f"fn must be a callable fn(params) returning the restrictions, got {type(fn).__name__}")
    delta = result.delta(fn)
    g = np.asarray(delta.flat_value, dtype=np.float64)
    V = np.asarray(delta.cov, dtype=np.float64)
    check_restrictions(g, V)
    W = float(g @ np.linalg.solve(V, g))
    return WaldTest(W, len(g), float(chi2_sf(W, len(g))), g, V)


def check_restrictions(g: np.ndarray, V: np.ndarray) -> None:
    """Refuse restrictions whose joint covariance ``V`` = G Σ Gᵀ is undefined or singular."""
    q = len(g)
    if q == 0:
        raise ValueError("fn returned no restrictions: a Wald test needs at least one value")
    if not np.all(np.isfinite(g)) or not np.all(np.isfinite(V)):
        raise ValueError(
            "wald_test: a restriction is not finite, or depends on a parameter without a defined variance "
            "(NaN in the fit's cov), so its covariance is undefined"
        )
    sd = np.sqrt(np.diagonal(V))
    if np.any(sd == 0):
        raise ValueError(
            f"wald_test: restriction(s) {np.flatnonzero(sd == 0).tolist()} have zero variance "
            "(they do not depend on the free parameters), so G Σ Gᵀ is singular"
        )
    w = np.linalg.eigvalsh(V / np.outer(sd, sd))
    rank = int(np.sum(w > SINGULAR_TOL * w.max()))
    if rank < q:
        raise ValueError(
            f"wald_test: the covariance of the {q} restrictions, G Σ Gᵀ, is singular (rank {rank}): some "
            "restrictions are redundant (combinations of the others); drop them and test the rest"
        )
