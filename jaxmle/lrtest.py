"""Likelihood-ratio test of two nested maximum-likelihood fits to the same data.

Under the restricted model, LR = 2(ℓ̂_full − ℓ̂_restricted) is asymptotically χ² with
df = (free parameters of the full fit) − (free parameters of the restricted fit) degrees
of freedom (Wilks); the p-value is P(χ²_df ≥ LR). Nesting itself cannot be checked from
the fits: it is the caller's claim.

When the null holds k of those df parameters on the boundary of their support (a variance
or a mixture weight at 0), Wilks' theorem fails: LR is asymptotically a chi-bar-squared
mixture Σ_j w_j χ²_(df−k+j), j = 0..k (Self and Liang 1987), with χ²₀ a point mass at 0.
Its weights are those of the orthant cone of the k boundary parameters, with V the
asymptotic covariance of their estimates (a block of the inverse information) and P_k(R)
the probability that a centred normal with correlation R lies in the positive orthant:
w_k = P_k(corr V), w_0 = P_k(corr V⁻¹), and Σ_j (−1)^j w_j = 0. In closed form:

- k = 1: ½, ½ (so for df = 1 the p-value is ½·P(χ²₁ ≥ LR) for LR > 0);
- k = 2: acos(ρ)/2π, ½, ½ − acos(ρ)/2π, with ρ the correlation of the two estimates
  (¼, ½, ¼ when they are independent);
- k = 3: P₃(R) = 1/8 + (asin r₁₂ + asin r₁₃ + asin r₂₃)/4π gives w_3 and w_0, then
  w_1 = ½ − w_3, w_2 = ½ − w_0;
- any k with independent estimates: binomial, w_j = C(k, j)/2^k.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .results import FitResult
from .status import Status
from .verdict import at_limit_mask

__all__ = ["LRTest", "lr_test"]


#: off-diagonal correlations below this count as independent estimates
INDEPENDENT = 1e-8


class LRTest(NamedTuple):
    """The statistic, its degrees of freedom and p-value; ``weights[j]`` is the weight of
    χ²_j in the null distribution (a single 1 at ``df`` for Wilks' χ²_df) and ``boundary``
    names the parameters the null holds on the boundary of their support."""

    statistic: float
    df: int
    pvalue: float
    weights: tuple[float, ...] = ()
    boundary: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"likelihood-ratio test: LR = {self.statistic:.6g}, df = {self.df}, p = {self.pvalue:.4g}"
        terms = [f"{w:.4g}·χ²_{j}" for j, w in enumerate(self.weights) if w > 0]
        if len(terms) < 2:
            return text
        where = f" for {', '.join(self.boundary)}" if self.boundary else ""
        return f"{text} (null on the boundary{where}: {' + '.join(terms)})"


def chi2_sf(x, df: int):
    """P(χ²_df ≥ x), the regularized upper incomplete gamma Q(df/2, x/2) (element-wise);
    χ²₀ is a point mass at 0."""
    x = np.asarray(x, dtype=float)
    if df == 0:
        return np.where(x <= 0.0, 1.0, 0.0)
    with jax.enable_x64(True):
        return np.asarray(jax.scipy.special.gammaincc(jnp.float64(df / 2.0), jnp.asarray(x, jnp.float64) / 2.0))


def chibar2_sf(x, weights):
    """P(Σ_j w_j χ²_j ≥ x) for the mixture with ``weights[j]`` on χ²_j (element-wise over x)."""
    return sum(w * chi2_sf(x, j) for j, w in enumerate(weights) if w > 0)


def chibar2_weights(df: int, cov: np.ndarray) -> tuple[float, ...]:
    """Weights over χ²_0..χ²_df of LR when the null holds k = len(cov) of the df restricted
    parameters on the boundary, ``cov`` the asymptotic covariance of their estimates with
    each boundary oriented so that the alternative lies on its positive side (see the
    module docstring). Raises ValueError where no closed form is known (k ≥ 4, correlated)."""
    k = len(cov)
    corr = _correlation(cov)
    if np.all(np.abs(corr - np.eye(k)) <= INDEPENDENT):
        inner = [math.comb(k, j) / 2.0**k for j in range(k + 1)]
    elif k <= 3:
        inner = _orthant_weights(corr, _correlation(np.linalg.inv(cov)))
    else:
        raise ValueError(
            f"boundary: {k} parameters on the boundary with correlated estimates have no closed-form "
            "chi-bar-squared weights; pass boundary=k only if their estimates are asymptotically independent"
        )
    return (0.0,) * (df - k) + tuple(inner)


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(cov))
    return cov / np.outer(sd, sd)


def _orthant_weights(corr: np.ndarray, corr_inverse: np.ndarray) -> list[float]:
    """w_0..w_k for k ≤ 3 from the orthant probabilities of corr V and corr V⁻¹."""
    k = len(corr)
    w_top, w_zero = _orthant(corr), _orthant(corr_inverse)
    if k == 2:
        return [w_zero, 0.5, w_top]
    return [w_zero, 0.5 - w_top, 0.5 - w_zero, w_top]


def _orthant(corr: np.ndarray) -> float:
    """P(Z > 0 element-wise) for a centred normal Z with correlation ``corr`` (k = 2 or 3)."""
    k = len(corr)
    pairs = sum(math.asin(float(np.clip(corr[i, j], -1.0, 1.0))) for i in range(k) for j in range(i + 1, k))
    return 2.0**-k + pairs / (2.0 * math.pi if k == 2 else 4.0 * math.pi)


def lr_test(restricted: FitResult, full: FitResult, *, boundary: bool | int | None = None) -> LRTest:
    """The likelihood-ratio test of ``restricted`` (the null model) against ``full``.

    ``boundary`` says whether the null lies on the boundary of the parameter space:

    - ``None`` (default): detected. Each element that ``restricted`` holds fixed at a finite
      limit of the constraint the same parameter has, free, in ``full`` (e.g. both fits with
      ``constraints={"tau": jm.positive}`` and the restricted one with ``fixed={"tau": 0.0}``,
      or an element held with ``fixed={"tau": {0: 0.0}}``)
      is on the boundary, and LR is referred to the chi-bar-squared mixture, its weights
      from the inverse information of ``full``; with none, to Wilks' χ²_df;
    - ``True``: as detected, but an error when nothing is found on the boundary;
    - ``False``: Wilks' χ²_df whatever the constraints;
    - an integer k (1 ≤ k ≤ df): k of the restricted parameters are on the boundary with
      asymptotically independent estimates (binomial weights; for k = 1 independence
      is not needed).

    On the boundary, a ``full`` fit whose estimate is at the limit (status AT_BOUNDARY for
    the boundary parameters only) is the expected outcome half of the time under the null,
    and gives LR = 0: it is not warned about.

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
    names, weights = _null_distribution(restricted, full, df, boundary)
    for arg, res in (("restricted", restricted), ("full", full)):
        if not res.converged and not (arg == "full" and _expected_at_boundary(full, names, boundary)):
            warnings.warn(f"{arg} did not converge ({res.status.name}): the test is not valid", stacklevel=2)
    statistic = 2.0 * (full.loglik - restricted.loglik)
    slack = 1e-8 * max(1.0, abs(full.loglik))
    if statistic < -slack:
        raise ValueError(
            f"restricted has a higher log-likelihood ({restricted.loglik:.10g}) than full ({full.loglik:.10g}): the "
            "models are not nested, or full did not reach its maximum"
        )
    statistic = statistic if statistic > slack else 0.0  # within round-off of zero (the atom of a boundary null)
    return LRTest(statistic, df, float(chibar2_sf(statistic, weights)), weights, tuple(names))


def _null_distribution(restricted: FitResult, full: FitResult, df: int, boundary) -> tuple[list[str], tuple]:
    """The boundary parameters' names and the mixture weights over χ²_0..χ²_df."""
    wilks = (0.0,) * df + (1.0,)
    if boundary is False:
        return [], wilks
    if boundary is None or boundary is True:
        found = boundary_elements(restricted, full)
        if not found:
            if boundary:
                raise ValueError(
                    "boundary=True, but restricted holds no parameter fixed at a finite limit of its constraint in "
                    "full (fix it at that limit, e.g. fixed={'tau': 0.0} with tau positive, or pass boundary=k)"
                )
            return [], wilks
        if len(found) > df:
            raise ValueError(f"boundary: {len(found)} parameters on the boundary, more than df = {df}")
        names = [name for name, _, _ in found]
        return names, chibar2_weights(df, _boundary_cov(full, found))
    if isinstance(boundary, numbers.Integral) and 1 <= boundary <= df:
        return [], chibar2_weights(df, np.eye(int(boundary)))
    raise ValueError(f"boundary must be None, True, False or an integer from 1 to df = {df}, got {boundary!r}")


def boundary_elements(restricted: FitResult, full: FitResult) -> list[tuple[str, int | None, int]]:
    """(name, coordinate of ``full``'s information or None, side: -1 lower / +1 upper) for
    each element ``restricted`` holds fixed at a finite limit of the constraint the same
    parameter has, free, in ``full``."""
    free = {}
    start = 0
    for leaf in full._space.free:
        free[leaf.key] = (leaf, start)
        start += leaf.free_size
    found = []
    fixed_values = iter(restricted._fixed_leaves)
    for leaf in restricted._space.leaves:
        if leaf.fixed:  # every element held
            value = np.asarray(next(fixed_values)).reshape(-1)
            index = np.arange(value.size)
        elif leaf.held:
            index, value = (np.asarray(a) for a in zip(*leaf.held))
        else:
            continue
        if leaf.key not in free or free[leaf.key][0].shape != leaf.shape or free[leaf.key][0].held:
            continue
        target, offset = free[leaf.key]
        names = target.element_names()
        for i, side in zip(index, target.constraint.limit_side(value)):
            if side:
                found.append((names[i], offset + int(i) if target.constraint.same_dimension else None, int(side)))
    return found


def _boundary_cov(full: FitResult, found) -> np.ndarray:
    """The asymptotic covariance of the boundary parameters' estimates, each oriented so the
    alternative is positive: the block of the inverse information of ``full``."""
    if len(found) == 1:
        return np.ones((1, 1))
    index = [i for _, i, _ in found]
    if None not in index:
        with np.errstate(all="ignore"):
            info = np.asarray(full.information, dtype=float)
            cov = np.linalg.inv(info)[np.ix_(index, index)] if np.all(np.isfinite(info)) else None
        if cov is not None and np.all(np.isfinite(cov)) and np.all(np.linalg.eigvalsh(cov) > 0):
            side = -np.array([s for _, _, s in found], dtype=float)
            return cov * np.outer(side, side)
    raise ValueError(
        "boundary: the covariance of the boundary parameters' estimates is not available from full's information "
        f"({', '.join(n for n, _, _ in found)}); pass boundary=k if their estimates are asymptotically independent"
    )


def _expected_at_boundary(full: FitResult, names: list[str], boundary) -> bool:
    """Whether ``full`` stopped at the limit of boundary parameters only (LR = 0 there)."""
    if full.status != Status.AT_BOUNDARY:
        return False
    if isinstance(boundary, numbers.Integral) and not isinstance(boundary, bool):
        return True  # boundary=k: which parameters is not known
    if not names:
        return False
    at_limit = at_limit_mask(full._space, np.asarray(full._u))
    return set(np.asarray(full._space.coordinate_names())[at_limit]) <= set(names)


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
