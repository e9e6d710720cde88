"""Safeguarded Newton, and its proximal form for L1 (Laplace-prior) terms.

The direction is Newton's on a Jacobi-scaled Hessian (D H D with D = |diag H|^-1/2),
modified through its Cholesky pivots where that is not safely positive definite: a
descent direction even where H is indefinite, and exactly Newton's where H is positive
definite. An Armijo backtracking line search accepts the full step when
the predicted decrease is already below round-off, so the last digits are not lost to a
line search that cannot see them.

Convergence: the Newton decrement g'H^-1 g (twice the predicted decrease) falls below
``tol * (1 + |f|)`` (at a singular or indefinite Hessian too: inference then reports
that the information is not positive definite). The step computed there is still taken
(where the Hessian needed no modification), so the returned point is one
quadratic-convergence step past the test.

Each iteration evaluates the value, gradient and Hessian once, at the full Newton step:
the line search accepts it in the common case, and the derivatives for the next
direction come with the trial value. A rejected full step is backtracked on values alone
(in a loop whose trip count is zero for fits that took the full step, so that under
``vmap`` they pay nothing for the others), and the next iteration then takes the
derivatives at the point the line search accepted, as the first does at the start; such a
refresh is not counted as an iteration (``n_iter`` counts steps).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ..status import Status
from .derivatives import value_grad_hessian
from .driver import Step, Strategy
from .linalg import cholesky_solve, modified_cholesky

PIVOT_FLOOR = 1e-14
PIVOT_REPLACEMENT = 1e-3
ARMIJO = 1e-4
MAX_BACKTRACKS = 40


class Direction(NamedTuple):
    p: jax.Array
    decrement: jax.Array  # -g.p, >= 0
    modified: jax.Array  # bool: the Hessian needed modification


def newton_direction(g, H, mask=None) -> Direction:
    """Modified Newton direction from gradient ``g`` and Hessian ``H``.

    Jacobi scaling D = |diag H|^-1/2 makes D H D unit-diagonal; a modified Cholesky
    factorization of it replaces pivots below ``PIVOT_FLOOR`` (an indefinite or nearly
    singular Hessian) so that the direction is always one of descent, and is exactly
    Newton's where H is safely positive definite. With ``mask`` (bool per coordinate) only
    masked-in coordinates move.
    """
    if mask is not None:
        g = jnp.where(mask, g, 0.0)
        H = jnp.where(mask[:, None] & mask[None, :], H, jnp.eye(H.shape[0], dtype=H.dtype))
    diag = jnp.abs(jnp.diag(H))
    scale = jnp.where(diag > 0, 1.0 / jnp.sqrt(jnp.where(diag > 0, diag, 1.0)), 1.0)
    L, modified = modified_cholesky(H * scale[:, None] * scale[None, :], PIVOT_FLOOR, PIVOT_REPLACEMENT)
    p = -scale * cholesky_solve(L, scale * g)
    if mask is not None:
        p = jnp.where(mask, p, 0.0)
    return Direction(p, -jnp.dot(g, p), modified)


def backtrack(objective, u, f, p, slope, alpha, active):
    """Armijo backtracking along ``p`` (slope = g.p < 0) from step ``alpha``, halving it
    until the step is acceptable; inactive fits make no trial. Returns (alpha, f_new, ok)."""

    def cond(c):
        alpha, f_new, k = c
        return active & ((k == 0) | (~acceptable(f, slope, alpha, f_new) & (k <= MAX_BACKTRACKS)))

    def body(c):
        alpha, _, k = c
        alpha = jnp.where(k == 0, alpha, 0.5 * alpha)
        return alpha, objective(u + alpha * p), k + 1

    init = (jnp.asarray(alpha, f.dtype), jnp.full((), jnp.inf, f.dtype), 0)
    alpha, f_new, _ = lax.while_loop(cond, body, init)
    return alpha, f_new, acceptable(f, slope, alpha, f_new)


def acceptable(f, slope, alpha, f_new):
    """Armijo's sufficient decrease, or a predicted decrease already at round-off."""
    roundoff = 16 * jnp.finfo(f.dtype).eps * (1.0 + jnp.abs(f))
    armijo = f_new <= f + ARMIJO * alpha * slope
    at_roundoff = (-alpha * slope <= roundoff) & (f_new <= f + roundoff)
    return jnp.isfinite(f_new) & (armijo | at_roundoff)


class Derivatives(NamedTuple):
    f: jax.Array
    direction: Direction  # the modified Newton direction at the point


def derivatives_at(objective, u) -> Derivatives:
    f, g, H = value_grad_hessian(objective, u)
    return Derivatives(f, newton_direction(g, H))


class NewtonState(NamedTuple):
    direction: Direction  # at the current point, when ``fresh``
    fresh: jax.Array  # bool: False after a backtracked step, until the derivatives are taken again


def newton(objective, tol: float) -> Strategy:
    """Safeguarded Newton on a smooth ``objective`` (to be minimized)."""

    def init(u):
        # the first iteration takes the derivatives at u (one place in the program does)
        no_direction = Direction(jnp.zeros_like(u), jnp.zeros((), u.dtype), jnp.bool_(False))
        return objective(u), NewtonState(no_direction, jnp.bool_(False))

    def step(u, f, state, active):
        d, fresh = state
        slope = -d.decrement
        at_point = derivatives_at(objective, jnp.where(fresh, u + d.p, u))
        full_ok = fresh & acceptable(f, slope, 1.0, at_point.f)
        alpha, f_bt, ok_bt = backtrack(objective, u, f, d.p, slope, 0.5, active & fresh & ~full_ok)
        backtracked = fresh & ~full_ok & ok_bt
        failed = fresh & ~full_ok & ~ok_bt
        have_derivatives = full_ok | ~fresh
        u_new = jnp.where(full_ok, u + d.p, jnp.where(backtracked, u + alpha * d.p, u))
        f_new = jnp.where(have_derivatives, at_point.f, jnp.where(backtracked, f_bt, f))
        d_new = jax.tree_util.tree_map(lambda a, b: jnp.where(have_derivatives, a, b), at_point.direction, d)
        stalled = failed & (d.decrement <= jnp.sqrt(tol) * (1.0 + jnp.abs(f)))
        converged = have_derivatives & (d_new.decrement <= tol * (1.0 + jnp.abs(f_new)))
        finish = converged & ~d_new.modified  # one more, unevaluated, Newton step
        return Step(
            u=jnp.where(finish, u_new + d_new.p, u_new),
            f=f_new,
            inner=NewtonState(d_new, ~backtracked),
            converged=converged | stalled,
            failed=jnp.where(failed & ~stalled, Status.LINE_SEARCH_FAILED, Status.CONVERGED),
            full_step=full_ok & ~d.modified,
            refreshed=~fresh,
        )

    return Strategy(init, step)


def proximal_newton(objective, l1_weight, l1_centre, tol: float) -> Strategy:
    """Proximal Newton for objective(u) + sum(l1_weight * |u - l1_centre|).

    Each iteration takes the better of two candidates on the full (non-smooth)
    objective: a proximal-gradient step with step size 1/(a Gershgorin bound on λmax(H)), which sets
    coordinates exactly to their centre; and a Newton step on the coordinates that the
    proximal step leaves non-zero, with the signs it gives them, projected back onto that
    orthant (a coordinate that would cross its centre stops at it). Converged when the
    proximal-gradient fixed-point residual and the Newton decrement on the support are
    both negligible.
    """
    penalized = l1_weight > 0

    def total(u):
        return objective(u) + jnp.sum(l1_weight * jnp.abs(u - l1_centre))

    def prox(v, t):
        shifted = v - l1_centre
        return l1_centre + jnp.sign(shifted) * jnp.maximum(jnp.abs(shifted) - t * l1_weight, 0.0)

    def init(u):
        return total(u), ()

    def step(u, f, inner, active):
        f_smooth, g, H = value_grad_hessian(objective, u)
        f = f_smooth + jnp.sum(l1_weight * jnp.abs(u - l1_centre))
        lam_max = jnp.maximum(jnp.max(jnp.sum(jnp.abs(H), axis=1)), jnp.finfo(H.dtype).tiny)  # >= λmax

        # candidate 1: proximal gradient, backtracked until it decreases the total
        def pg_point(t):
            return prox(u - t * g, t)

        def pg_cond(c):
            t, f_t, k = c
            return active & ~(jnp.isfinite(f_t) & (f_t <= f)) & (k < MAX_BACKTRACKS)

        def pg_body(c):
            t, _, k = c
            t = 0.5 * t
            return t, total(pg_point(t)), k + 1

        t0 = 1.0 / lam_max
        t, f_pg, _ = lax.while_loop(pg_cond, pg_body, (t0, total(pg_point(t0)), 0))
        u_pg = pg_point(t)
        residual = jnp.max(jnp.abs(prox(u - t0 * g, t0) - u)) / t0

        # candidate 2: Newton on the support of the proximal point, signs held fixed
        support = ~penalized | (u_pg != l1_centre)
        sign = jnp.sign(u_pg - l1_centre)
        g_orth = g + jnp.where(penalized, l1_weight * sign, 0.0)
        start = jnp.where(support, u, l1_centre)
        d = newton_direction(g_orth + H @ (start - u), H, mask=support)
        u_nt = start + d.p
        crossed = penalized & support & (jnp.sign(u_nt - l1_centre) != sign)
        u_nt = jnp.where(crossed, l1_centre, u_nt)
        f_nt = total(u_nt)

        use_newton = jnp.isfinite(f_nt) & (f_nt <= f_pg)
        u_new = jnp.where(use_newton, u_nt, u_pg)
        f_new = jnp.where(use_newton, f_nt, f_pg)
        ok = jnp.isfinite(f_new) & (f_new <= f + 16 * jnp.finfo(f.dtype).eps * (1.0 + jnp.abs(f)))
        small = tol * (1.0 + jnp.abs(f))
        converged = (residual**2 * t0 <= small) & (d.decrement <= small)
        return Step(
            u=jnp.where(ok, u_new, u),
            f=jnp.where(ok, f_new, f),
            inner=inner,
            converged=converged,
            failed=jnp.where(ok | converged, Status.CONVERGED, Status.LINE_SEARCH_FAILED),
            full_step=ok & use_newton & ~d.modified & ~jnp.any(crossed),
            refreshed=jnp.bool_(False),
        )

    return Strategy(init, step)
