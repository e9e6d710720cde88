"""Trust-region Newton: exact Hessian, a Jacobi-scaled region, Moré–Sorensen subproblems.

Each iteration minimizes the quadratic model m(p) = gᵀp + pᵀHp/2 over the region
|D p| ≤ Δ, D = |diag H|^1/2 (1 where a diagonal entry is 0). In the scaled step s = D p
the model is bᵀs + sᵀAs/2 with the unit-diagonal A = D⁻¹HD⁻¹ and b = D⁻¹g, and the
region is a ball. Where A is positive definite and the Newton step -A⁻¹b lies in the
ball, the step is exactly Newton's: convergence near a strict minimum is quadratic and a
quadratic objective is minimized in one step. Otherwise the subproblem is solved by
Moré and Sorensen's method (SIAM J. Sci. Stat. Comput. 4, 1983): safeguarded Newton
iterations on the secular equation 1/|s(λ)| = 1/Δ, s(λ) = -(A + λI)⁻¹b, with a Cholesky
factorization of A + λI per trial λ; the hard case (b orthogonal to the eigenvectors of
the most negative eigenvalue, e.g. g = 0 at a saddle) moves to the boundary along an
approximate eigenvector of the smallest eigenvalue, found by inverse iteration, so that
saddles are left along the direction of most negative curvature.

A step is accepted when the actual decrease is at least ``ETA`` times the predicted one
(or both are at round-off). The radius shrinks to ``SHRINK`` times the step after a
poor step (ratio below 1/4) and grows to twice the step after a good one (above 3/4).

Convergence, as in ``newton``: the Newton decrement gᵀH⁻¹g ≤ tol·(1 + |f|) at a
positive definite H. Where H is not numerically positive definite (a flat ridge) the
scaled gradient test bᵀb ≤ tol·(1 + |f|) stands in for it, but only where A has no
eigenvalue below ``-NEGATIVE_CURVATURE``: a saddle is never reported converged. At
convergence the Newton step computed there is still taken, as in ``newton``. When no
step can decrease the objective any more (the predicted decrease is at round-off, or
the step no longer moves the parameters), the same tests with √tol decide between
converged and LINE_SEARCH_FAILED.

Each iteration evaluates the value, gradient and Hessian once, at the trial point; a
rejected trial counts as an iteration and keeps the derivatives at the current point. A
trial whose value is finite but whose derivatives are not is rejected like a poor one;
at the start, where there is nothing to fall back on, it ends the fit with
NONFINITE_GRADIENT.
The first call only takes the value and derivatives at the start (a refresh, not an
iteration), so that the program holds one traced Hessian and no value at the start
(``init`` leaves it to the refresh). With ``eager_start`` they are taken before
the loop instead: one trip of the loop fewer for a second traced Hessian, which pays in
batches of cheap fits (workload C converges in about three iterations, so the refresh
trip was a quarter of its trips) but not where the Hessian is costly to compile (a
Laplace marginal). Derivatives at the start that are not finite still go through the
refresh, which names them.

An objective that runs an iteration of its own (a Laplace marginal's inner solve) can be
given ``warm``: each trial then starts that iteration where the current point's ended,
carried in the state; the value, and so every test above, is the same as from a cold start.
Such an objective's Hessian is costly to compile, so the caller takes the inference from
the final state: every fit ends with a refresh at the point returned (``refresh_at_end``),
and ``derivatives_at_end`` recovers the gradient and Hessian there from the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ..status import Status
from .derivatives import value_grad_hessian
from .driver import Step, Strategy, at_most_once
from .linalg import cholesky, cholesky_solve, forward_solve

ETA = 1e-4
POOR, GOOD = 0.25, 0.75
#: the radius after a poor step, as a fraction of that step's length
SHRINK = 0.25
#: a pivot of the unit-diagonal A at or below this makes Newton's test inapplicable
PIVOT_FLOOR = 1e-14
#: an eigenvalue of A below minus this is clearly negative (A has a unit diagonal)
NEGATIVE_CURVATURE = 1e-8
#: Moré–Sorensen's tolerances: |s| within KAPPA_EASY·Δ of Δ; the hard-case test
KAPPA_EASY, KAPPA_HARD = 0.1, 0.2
MAX_SECULAR_TRIPS = 30
#: relative and absolute margin on the upper bound for λ (A has a unit diagonal)
HI_MARGIN = 1e-6
INVERSE_ITERATIONS = 2


class Model(NamedTuple):
    """The quadratic model at a point, in the scaled step s = p / scale."""

    scale: jax.Array  # D⁻¹ = |diag H|^-1/2, or 1
    A: jax.Array  # D⁻¹HD⁻¹
    b: jax.Array  # D⁻¹g
    newton: jax.Array  # -A⁻¹b, meaningful where ``pd``
    decrement: jax.Array  # bᵀA⁻¹b = gᵀH⁻¹g, meaningful where ``pd``
    pd: jax.Array  # bool: A is positive definite (pivots above PIVOT_FLOOR)
    finite: jax.Array  # bool: g and H are finite (else A = I, b = 0)


def model_at(g, H) -> Model:
    """The scaled model from gradient ``g`` and Hessian ``H``."""
    diag = jnp.abs(jnp.diag(H))
    scale = jnp.where(diag > 0, 1.0 / jnp.sqrt(jnp.where(diag > 0, diag, 1.0)), 1.0)
    A = H * scale[:, None] * scale[None, :]
    b = scale * g
    finite = jnp.all(jnp.isfinite(A)) & jnp.all(jnp.isfinite(b))
    A = jnp.where(finite, A, jnp.eye(A.shape[0], dtype=A.dtype))
    b = jnp.where(finite, b, 0.0)
    factor = cholesky(A, PIVOT_FLOOR, certificate=False)
    newton = -cholesky_solve(factor.L, b)
    return Model(scale, A, b, newton, -jnp.dot(b, newton), factor.ok, finite)


class _Secular(NamedTuple):
    lam: jax.Array
    lo: jax.Array  # lower bound on the optimal λ
    hi: jax.Array  # upper bound on the optimal λ
    s: jax.Array  # the solution once ``done``; before, the best safe step so far
    done: jax.Array
    trips: jax.Array


def more_sorensen(A, b, radius, active):
    """An approximate minimizer of bᵀs + sᵀAs/2 over |s| ≤ radius (Moré–Sorensen).

    Returns s with |s| within KAPPA_EASY of the boundary where the solution lies there,
    or satisfying the hard-case test; after MAX_SECULAR_TRIPS (or for inactive fits,
    which make no trips) the last step from a positive definite A + λI, cut back to the
    ball, or else the scaled steepest-descent step to the boundary."""
    n = b.shape[0]
    eye = jnp.eye(n, dtype=A.dtype)
    tiny = jnp.finfo(A.dtype).tiny
    diag = jnp.diag(A)
    off = jnp.sum(jnp.abs(A), axis=1) - jnp.abs(diag)
    frobenius = jnp.linalg.norm(A)
    b_norm = jnp.linalg.norm(b)
    lo = jnp.maximum(jnp.maximum(0.0, jnp.max(-diag)), b_norm / radius - jnp.minimum(jnp.max(diag + off), frobenius))
    hi = jnp.maximum(0.0, b_norm / radius + jnp.minimum(jnp.max(off - diag), frobenius))
    hi = (1.0 + HI_MARGIN) * hi + HI_MARGIN  # strictly above -λ_min(A) even where the bound is tight
    steepest = -radius * b / jnp.maximum(b_norm, tiny)
    z0 = _generic_vector(n, A.dtype)

    def trip(c: _Secular) -> _Secular:
        fac = cholesky(A + c.lam * eye)
        s = -cholesky_solve(fac.L, b)
        s_norm = jnp.linalg.norm(s)
        w_norm = jnp.linalg.norm(forward_solve(fac.L, s))
        z = _inverse_iteration(fac.L, z0)
        zMz = jnp.sum((fac.L.T @ z) ** 2)  # zᵀ(A + λI)z ≥ λ_min(A) + λ
        tau = _to_boundary(s, z, radius)
        inside = s_norm < radius
        on_boundary = jnp.abs(s_norm - radius) <= KAPPA_EASY * radius
        interior = inside & (c.lam == 0)
        hard = inside & (tau**2 * zMz <= KAPPA_HARD * (-jnp.dot(b, s) + c.lam * radius**2))
        done = fac.ok & (on_boundary | interior | hard)
        found = jnp.where(on_boundary | interior, s, s + tau * z)
        safe_step = s * jnp.minimum(1.0, radius / jnp.maximum(s_norm, tiny))

        bound_from_defect = c.lam + jnp.abs(fac.pivot) / jnp.maximum(jnp.sum(fac.defect**2), tiny)
        lo = jnp.where(
            fac.ok, jnp.where(inside, jnp.maximum(c.lo, c.lam - zMz), c.lam), jnp.maximum(c.lo, bound_from_defect)
        )
        hi = jnp.where(fac.ok & inside, c.lam, c.hi)
        newton = c.lam + (s_norm / jnp.maximum(w_norm, tiny)) ** 2 * (s_norm - radius) / radius
        safeguard = jnp.maximum(jnp.sqrt(lo * hi), lo + 0.01 * (hi - lo))
        use_newton = fac.ok & (w_norm > 0) & (newton > lo) & (newton < hi)
        return _Secular(
            lam=jnp.where(use_newton, newton, safeguard),
            lo=lo,
            hi=hi,
            s=jnp.where(done, found, jnp.where(fac.ok, safe_step, c.s)),
            done=done,
            trips=c.trips + 1,
        )

    def cond(c):
        return active & ~c.done & (c.trips < MAX_SECULAR_TRIPS)

    start = _Secular(lo, lo, hi, steepest, jnp.bool_(False), jnp.int32(0))
    return lax.while_loop(cond, trip, start).s


def _generic_vector(n, dtype):
    """A fixed unit vector with no special relation to any coordinate or symmetry."""
    v = jnp.sin(1.0 + 2.0 * jnp.arange(n, dtype=dtype)) + 0.1 * jnp.arange(1, n + 1, dtype=dtype) / n
    return v / jnp.linalg.norm(v)


def _inverse_iteration(L, z):
    """A few steps of inverse iteration with (L Lᵀ)⁻¹: towards the eigenvector of the
    smallest eigenvalue."""
    for _ in range(INVERSE_ITERATIONS):
        z = cholesky_solve(L, z)
        z = z / jnp.maximum(jnp.linalg.norm(z), jnp.finfo(z.dtype).tiny)
    return z


def _to_boundary(s, z, radius):
    """The root τ of |s + τz| = radius of smaller magnitude (|z| = 1, |s| < radius)."""
    sz = jnp.dot(s, z)
    gap = radius**2 - jnp.dot(s, s)
    far = -sz - jnp.where(sz >= 0, 1.0, -1.0) * jnp.sqrt(sz**2 + jnp.maximum(gap, 0.0))
    return -gap / jnp.where(far == 0, 1.0, far)


def _clearly_indefinite(A):
    """λ_min(A) < -NEGATIVE_CURVATURE: A + NEGATIVE_CURVATURE·I has no Cholesky factor."""
    return ~cholesky(A + NEGATIVE_CURVATURE * jnp.eye(A.shape[0], dtype=A.dtype), certificate=False).ok


class TrustState(NamedTuple):
    model: Model  # at the current point, once ``fresh``
    radius: jax.Array  # Δ, in the scaled coordinates of the current point
    fresh: jax.Array  # bool: False before the derivatives at the start are taken
    start: Any  # the warm start the objective returned at the current point (None without one)


class Warm(NamedTuple):
    """An objective that is itself the result of an iteration (a Laplace marginal's inner
    solve): ``fn(u, start) -> (objective(u), next start)``, where ``start`` is the
    next start returned at a nearby point, or ``start`` (the first) for the first call."""

    fn: Callable
    start: Any


def _first_radius(model: Model):
    """The radius at the start: the Newton step's length, or the scaled gradient's (at least 1)."""
    return jnp.where(model.pd, jnp.linalg.norm(model.newton), jnp.maximum(jnp.linalg.norm(model.b), 1.0))


def trust_region_newton(objective, tol: float, eager_start: bool = False, warm: Warm | None = None) -> Strategy:
    """Trust-region Newton on a smooth ``objective`` (to be minimized); ``eager_start``:
    take the derivatives at the start before the loop (see the module's docstring);
    ``warm``: the same objective with a warm start, used for every evaluation of value
    and derivatives, each trial started from the current point's."""

    def derivatives(u, start):
        if warm is None:
            return (*value_grad_hessian(objective, u), None)
        return value_grad_hessian(lambda v: warm.fn(v, start), u, has_aux=True)

    def init(u):
        first = None if warm is None else warm.start
        if eager_start:
            f, g, H, first = derivatives(u, first)
            model = model_at(g, H)
            return f, TrustState(model, _first_radius(model), model.finite, first)
        k = u.shape[0]
        zero = jnp.zeros((), u.dtype)
        eye, ones, zeros = jnp.eye(k, dtype=u.dtype), jnp.ones_like(u), jnp.zeros_like(u)
        model = Model(ones, eye, zeros, zeros, zero, jnp.bool_(False), jnp.bool_(True))
        return None, TrustState(model, zero, jnp.bool_(False), first)

    def step(u, f, state, active):
        m, radius, fresh, start = state
        interior = m.pd & (jnp.linalg.norm(m.newton) <= radius)
        boundary = active & fresh & ~interior
        # its setup and loop run only where some fit needs them
        s = at_most_once(boundary, more_sorensen, m.newton, m.A, m.b, radius, boundary)
        s = jnp.where(fresh, s, 0.0)
        s_norm = jnp.linalg.norm(s)
        predicted = -(jnp.dot(m.b, s) + 0.5 * jnp.dot(s, m.A @ s))
        trial = u + m.scale * s

        f_t, g_t, H_t, start_t = derivatives(trial, start)
        new = model_at(g_t, H_t)
        roundoff = 16 * jnp.finfo(f.dtype).eps * (1.0 + jnp.abs(f))
        decrease = f - f_t
        ratio = decrease / jnp.maximum(predicted, jnp.finfo(f.dtype).tiny)
        negligible = (predicted <= roundoff) & (decrease >= -roundoff)
        accepted = fresh & jnp.isfinite(f_t) & new.finite & ((ratio >= ETA) | negligible)
        take = accepted | ~fresh
        stalled = fresh & ~accepted & ((predicted <= roundoff) | jnp.all(trial == u))

        radius = jnp.select(
            [~fresh, ~accepted | ((ratio < POOR) & ~negligible), ratio > GOOD],
            [_first_radius(new), SHRINK * jnp.where(s_norm > 0, s_norm, radius), jnp.maximum(radius, 2.0 * s_norm)],
            radius,
        )

        def keep(a, b):
            return jnp.where(take, a, b)

        cur = jax.tree_util.tree_map(keep, new, m)
        f_cur = jnp.where(take, f_t, f)
        small = tol * (1.0 + jnp.abs(f_cur))
        loose = jnp.sqrt(tol) * (1.0 + jnp.abs(f_cur))
        gradient = jnp.dot(cur.b, cur.b)
        suspect = active & ~cur.pd & (gradient <= loose)
        negative = at_most_once(suspect, _clearly_indefinite, jnp.bool_(False), cur.A)
        measure = jnp.where(cur.pd, cur.decrement, gradient)
        admissible = cur.finite & (cur.pd | ~negative)
        converged = admissible & ((take & (measure <= small)) | (stalled & (measure <= loose)))
        finish = take & converged & cur.pd  # one more, unevaluated, Newton step
        u_new = jnp.where(accepted, trial, u)
        failed = jnp.select(
            [take & ~cur.finite, stalled & ~converged],
            [Status.NONFINITE_GRADIENT, Status.LINE_SEARCH_FAILED],
            Status.CONVERGED,
        )
        return Step(
            u=jnp.where(finish, u_new + cur.scale * cur.newton, u_new),
            f=f_cur,
            inner=TrustState(cur, radius, jnp.bool_(True), jax.tree_util.tree_map(keep, start_t, start)),
            converged=converged,
            failed=failed.astype(jnp.int32),
            full_step=accepted & interior,
            refreshed=~fresh,
        )

    if warm is None:
        return Strategy(init, step)
    return Strategy(init, step, lambda state: state._replace(fresh=jnp.bool_(False)))


def derivatives_at_end(state: TrustState):
    """(gradient, Hessian) of the objective at the point a fit with ``refresh_at_end``
    returned, from its final model (NaN where they were not finite or never taken)."""
    m = state.model
    valid = state.fresh & m.finite
    g = jnp.where(valid, m.b / m.scale, jnp.nan)
    H = jnp.where(valid, m.A / (m.scale[:, None] * m.scale[None, :]), jnp.nan)
    return g, H
