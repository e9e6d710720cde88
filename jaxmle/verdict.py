"""The verdict: one meaning of ``converged`` for every solver, and notes that say why not.

The solver's status says how it stopped (its own test held, a run-off, a boundary, a cap).
The verdict then checks the point itself, the same way after Newton, L-BFGS, Adam or any
optax transformation: ``CONVERGED`` only when the Newton decrement g' I⁻¹ g of the smooth
log-posterior is negligible (``stationary``) and the observed information I is positive
definite. Otherwise: a clearly negative eigenvalue is a saddle point (SADDLE_POINT), a
singular information a flat ridge (INFORMATION_NOT_PD), and a point whose gradient test
fails is NOT_STATIONARY. Elementwise over any leading (replicate) axes.
"""

from __future__ import annotations

import numpy as np

from .inference import Inference
from .solvers.driver import CONVERGED_BOUNDARY_U
from .status import Status

#: statuses whose point is not an interior maximum of any kind: no SEs are reported
NO_INTERIOR_MAXIMUM = (Status.AT_BOUNDARY, Status.NO_FINITE_MAXIMUM)

#: an unconstrained coordinate this large, in a run-off, is named as running off
RUN_OFF_U = 100.0

#: a note names at most this many parameters, then says how many more
NAMES_SHOWN = 8

#: the decrement test of the verdict, relative to 1 + |log-posterior|, in float64; float32
#: scales it by the ratio of machine epsilons. Looser than Newton's own stopping test
#: (1e-14), which it must never contradict, and tight enough that a parameter is off by
#: at most about 1e-4 standard errors
VERIFY_TOL = 1e-9


def verify_tol(dtype, solver_tol: float | None = None) -> float:
    """The decrement tolerance of the verdict at a precision (never tighter than a
    Newton tolerance the user asked for)."""
    ratio = float(np.finfo(dtype).eps / np.finfo(np.float64).eps)
    return max(VERIFY_TOL * ratio, solver_tol or 0.0)


def final_status(solver_status, inf: Inference, logpost, tol: float) -> np.ndarray:
    """The status of each fit from the solver's status and the inference at its point."""
    solver_status = np.asarray(solver_status)
    stationary = np.asarray(inf.decrement) <= tol * (1.0 + np.abs(np.asarray(logpost)))
    return np.select(
        [
            solver_status != Status.CONVERGED,
            np.asarray(inf.indefinite),
            ~np.asarray(inf.positive_definite),
            ~stationary,
        ],
        [solver_status, int(Status.SADDLE_POINT), int(Status.INFORMATION_NOT_PD), int(Status.NOT_STATIONARY)],
        int(Status.CONVERGED),
    )


def blank_off_interior(inf: Inference, status) -> Inference:
    """NaN covariances in fits that stopped at a boundary or ran off (AT_BOUNDARY,
    NO_FINITE_MAXIMUM): the curvature there describes no interior maximum, and a Wald
    interval built from it could leave the support."""
    stopped = np.isin(np.asarray(status), NO_INTERIOR_MAXIMUM)
    if not stopped.any():  # the common case: no copy of every covariance
        return inf
    return inf._replace(
        cov=np.where(stopped[..., None, None], np.nan, inf.cov), se=np.where(stopped[..., None], np.nan, inf.se)
    )


def status_notes(status: Status, space, u: np.ndarray, grad_z: np.ndarray | None) -> list[str]:
    """Notes that name the parameters a failed verdict concerns: those at the limit of
    their constraint (boundary, unbounded likelihood), or with a non-finite gradient."""
    names = space.coordinate_names()
    if status in NO_INTERIOR_MAXIMUM:
        limits = at_limits(space, u)
        if limits:
            verb = "is at" if status == Status.AT_BOUNDARY else "runs off to"
            return [f"{join_names(limits)}: the estimate {verb} the limit of its constraint"]
        far = np.abs(u) >= 0.1 * np.max(np.abs(u), initial=0.0)
        if status == Status.NO_FINITE_MAXIMUM and np.max(np.abs(u), initial=0.0) >= RUN_OFF_U:
            runs = [f"{n} -> {'+' if v > 0 else '-'}inf" for n, v, f in zip(names, u, far) if f]
            return [f"the log-density keeps increasing as {join_names(runs)}"]
    if status == Status.NONFINITE_GRADIENT and grad_z is not None:
        bad = [n for n, g in zip(names, np.asarray(grad_z)) if not np.isfinite(g)]
        if bad:
            return [f"the gradient is not finite for {join_names(bad)}"]
    return []


def join_names(items: list[str]) -> str:
    """'a, b, c', or the first ``NAMES_SHOWN`` and '… and 12 more'."""
    if len(items) <= NAMES_SHOWN:
        return ", ".join(items)
    return ", ".join(items[:NAMES_SHOWN]) + f", ... and {len(items) - NAMES_SHOWN} more"


def at_limits(space, u: np.ndarray) -> list[str]:
    """'sigma[1] -> 0 (positive)' for each unconstrained coordinate beyond the boundary
    threshold towards a finite limit of its constraint."""
    lower, upper = space.finite_ends()
    names = space.coordinate_names()
    out, start = [], 0
    for leaf in space.free:
        c = leaf.constraint
        for j in range(start, start + leaf.free_size):
            if lower[j] and u[j] <= -CONVERGED_BOUNDARY_U:
                out.append(f"{names[j]} -> {_limit(c, upper=False)} ({c.name})")
            elif upper[j] and u[j] >= CONVERGED_BOUNDARY_U:
                out.append(f"{names[j]} -> {_limit(c, upper=True)} ({c.name})")
        start += leaf.free_size
    return out


def _limit(c, upper: bool) -> str:
    """Where u -> +inf (``upper``) or -inf takes a value of constraint ``c``."""
    if not c.same_dimension:
        return "a probability of 0 or 1"
    if c.name == "ordered":
        return "a tie with the element before it"
    if upper:
        return f"{c.upper:g}"
    return f"{c.lower if np.isfinite(c.lower) else c.upper:g}"
