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

from .inference import Inference, observed_inference
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


def off_interior_inference(inf: Inference, status, raw, space) -> Inference:
    """The inference of fits that stopped off an interior maximum; the others untouched.

    NO_FINITE_MAXIMUM: NaN covariances (the curvature there describes no maximum). At a
    boundary (AT_BOUNDARY): NaN for the parameters at the limit of their constraint, and
    for the others the covariance conditional on those held at their limits (the inverse
    of the information over the other coordinates, as lme4 reports fixed-effect SEs at a
    zero variance); no Wald interval can leave the support. ``raw`` holds the arrays of
    ``problem.RawFit`` (a leading replicate axis where ``status`` has one)."""
    status = np.asarray(status)
    at_boundary = status == Status.AT_BOUNDARY
    blank = np.isin(status, NO_INTERIOR_MAXIMUM)
    if not blank.any():  # the common case: no copy of every covariance
        return inf
    cov, se = np.array(inf.cov, dtype=float), np.array(inf.se, dtype=float)
    if at_boundary.any():
        u = np.asarray(raw.u)
        limits = at_limit_mask(space, u)
        held = at_boundary & limits.any(axis=-1)
        if held.any():
            pick = held if held.ndim else ...
            J = None if raw.jacobian is None else np.asarray(raw.jacobian)[pick]
            kink = np.asarray(raw.at_kink_z)[pick] | limits[pick]
            conditional = observed_inference(np.asarray(raw.information_z)[pick], J, kink)
            cov[pick], se[pick] = conditional.cov, conditional.se
            blank = blank & ~held
    cov[blank], se[blank] = np.nan, np.nan
    return inf._replace(cov=cov, se=se)


def at_limit_mask(space, u: np.ndarray) -> np.ndarray:
    """Per unconstrained coordinate (over any leading axes of ``u``): beyond
    ``CONVERGED_BOUNDARY_U`` towards a finite limit of its constraint."""
    lower, upper = (np.asarray(e, bool) for e in space.finite_ends())
    return (lower & (u <= -CONVERGED_BOUNDARY_U)) | (upper & (u >= CONVERGED_BOUNDARY_U))


def status_notes(status: Status, space, u: np.ndarray, grad_z: np.ndarray | None) -> list[str]:
    """Notes that name the parameters a failed verdict concerns: those at the limit of
    their constraint (boundary, unbounded likelihood), or with a non-finite gradient."""
    names = space.coordinate_names()
    if status in NO_INTERIOR_MAXIMUM:
        limits = at_limits(space, u)
        if limits:
            if status == Status.AT_BOUNDARY:
                return [
                    f"{join_names(limits)}: the estimate is at the limit of its constraint (no SE; the other SEs "
                    "hold it there)"
                ]
            return [f"{join_names(limits)}: the estimate runs off to the limit of its constraint"]
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
    """'sigma[1] -> 0 (positive)' for each unconstrained coordinate of one fit at the limit
    of its constraint (``at_limit_mask``)."""
    names = space.coordinate_names()
    constraint_of = [leaf.constraint.element(j) for leaf in space.free for j in range(leaf.free_size)]
    return [
        f"{names[j]} -> {_limit(constraint_of[j], upper=u[j] > 0)} ({constraint_of[j].name})"
        for j in np.flatnonzero(at_limit_mask(space, u))
    ]


def _limit(c, upper: bool) -> str:
    """Where u -> +inf (``upper``) or -inf takes a value of constraint ``c``."""
    if not c.same_dimension:
        return "a probability of 0 or 1"
    if c.name == "ordered":
        return "a tie with the element before it"
    if upper:
        return f"{c.upper:g}"
    return f"{c.lower if np.isfinite(c.lower) else c.upper:g}"
