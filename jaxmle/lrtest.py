"""Likelihood-ratio test of two nested maximum-likelihood fits to the same data.

Under the restricted model, LR = 2(ℓ̂_full − ℓ̂_restricted) is asymptotically χ² with
df = (free parameters of the full fit) − (free parameters of the restricted fit) degrees
of freedom (Wilks); the p-value is P(χ²_df ≥ LR). Nesting itself cannot be checked from
the fits: it is the caller's claim.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .results import FitResult

__all__ = ["LRTest", "lr_test"]


class LRTest(NamedTuple):
    statistic: float
    df: int
    pvalue: float

    def __str__(self) -> str:
        return f"likelihood-ratio test: LR = {self.statistic:.6g}, df = {self.df}, p = {self.pvalue:.4g}"


def chi2_sf(x: float, df: int) -> float:
    """P(χ²_df ≥ x), the regularized upper incomplete gamma Q(df/2, x/2)."""
    with jax.enable_x64(True):
        return float(jax.scipy.special.gammaincc(jnp.float64(df / 2.0), jnp.float64(x / 2.0)))


def lr_test(restricted: FitResult, full: FitResult) -> LRTest:
    """The likelihood-ratio test of ``restricted`` (the null model) against ``full``.

    Refuses fits of different data, fits with priors, and a ``full`` fit with no more
    free parameters than ``restricted``. A restricted log-likelihood above the full one
    by more than round-off means the fits are not nested or one did not reach its
    maximum, and is refused too."""
    for arg, res in (("restricted", restricted), ("full", full)):
        if not isinstance(res, FitResult):
            raise ValueError(f"{arg} must be a FitResult from jm.fit, got {type(res).__name__}")
        if res.has_prior:
            raise ValueError(f"{arg} is a MAP fit (it has a prior): the likelihood-ratio test compares MLEs")
    if not _same_data(restricted, full):
        raise ValueError(
            "restricted and full were not fitted to the same data arrays (pass the data to jm.fit): a "
            "likelihood-ratio test needs the same data"
        )
    df = full.df - restricted.df
    if df < 1:
        raise ValueError(f"full must have more free parameters than restricted (got df {full.df} and {restricted.df})")
    for arg, res in (("restricted", restricted), ("full", full)):
        if not res.converged:
            warnings.warn(f"{arg} did not converge ({res.status.name}): the test is not valid", stacklevel=2)
    statistic = 2.0 * (full.loglik - restricted.loglik)
    slack = 1e-8 * max(1.0, abs(full.loglik))
    if statistic < -slack:
        raise ValueError(
            f"restricted has a higher log-likelihood ({restricted.loglik:.10g}) than full ({full.loglik:.10g}): the "
            "models are not nested, or full did not reach its maximum"
        )
    statistic = max(statistic, 0.0)  # within round-off of zero
    return LRTest(statistic, df, chi2_sf(statistic, df))


def _same_data(a: FitResult, b: FitResult) -> bool:
    """Same nobs, and every data array of one fit is among the other's (a restricted model
    may use fewer of the arrays, e.g. no design matrix)."""
    if a._prep is None or b._prep is None:
        raise ValueError("lr_test needs fits made by jm.fit (they carry their data)")
    if a.nobs != b.nobs:
        return False
    la = [np.asarray(v) for v in jax.tree_util.tree_leaves(a._prep.data)]
    lb = [np.asarray(v) for v in jax.tree_util.tree_leaves(b._prep.data)]
    small, large = (la, lb) if len(la) <= len(lb) else (lb, la)
    same = lambda x, y: x.shape == y.shape and np.array_equal(x, y)  # noqa: E731
    return len(large) > 0 and all(any(same(x, y) for y in large) for x in small)
