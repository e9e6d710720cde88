"""Safeguarded Newton, and its proximal form for L1 (Laplace-prior) terms.

The direction is Newton's on a Jacobi-scaled Hessian (D H D with D = |diag H|^-1/2),
modified through its Cholesky pivots where that is not safely positive definite: a
descent direction even where H is indefinite, and exactly Newton's where H is positive
definite. An Armijo backtracking line search accepts the full step when
the predicted decrease is already below round-off, so the last digits are not lost to a
line search that cannot see them.

Convergence: the Newton decrement g'H^-1 g (twice the predicted decrease) falls below
``tol * (1 + |f|)`` (at a singular or indefinite Hessian too: inference then reports
that the information is not positive definite). The step computed there is still taken,
so the returned point is one quadratic-convergence step past the test.
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


def backtrack(objective, u, f, p, slope):
    """Armijo backtracking along ``p`` (slope = g.p < 0). Returns (alpha, f_new, ok)."""
    roundoff = 16 * jnp.finfo(f.dtype).eps * (1.0 + jnp.abs(f))

    def acceptable(alpha, f_new):
        armijo = f_new <= f + ARMIJO * alpha * slope
        at_roundoff = (-alpha * slope <= roundoff) & (f_new <= f + roundoff)
        return jnp.isfinite(f_new) & (armijo | at_roundoff)

    def cond(c):
        alpha, f_new, k = c
        return (k == 0) | (~acceptable(alpha, f_new) & (k <= MAX_BACKTRACKS))

    def body(c):
        alpha, _, k = c
        alpha = jnp.where(k == 0, alpha, 0.5 * alpha)
        return alpha, objective(u + alpha * p), k + 1

    alpha, f_new, _ = lax.while_loop(cond, body, (jnp.ones((), f.dtype), jnp.full((), jnp.inf, f.dtype), 0))
    return alpha, f_new, acceptable(alpha, f_new)


def newton(objective, tol: float) -> Strategy:
    """Safeguarded Newton on a smooth ``objective`` (to be minimized)."""

    def init(u):
        return objective(u), ()

    def step(u, f, inner):
        f, g, H = value_grad_hessian(objective, u)
        d = newton_direction(g, H)
        converged = d.decrement <= tol * (1.0 + jnp.abs(f))
        alpha, f_new, ok = backtrack(objective, u, f, d.p, -d.decrement)
        stalled = ~ok & (d.decrement <= jnp.sqrt(tol) * (1.0 + jnp.abs(f)))
        return Step(
            u=jnp.where(ok, u + alpha * d.p, u),
            f=jnp.where(ok, f_new, f),
            inner=inner,
            converged=converged | stalled,
            failed=jnp.where(ok | converged | stalled, Status.CONVERGED, Status.LINE_SEARCH_FAILED),
            full_step=ok & (alpha == 1.0) & ~d.modified,
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

    def step(u, f, inner):
        f_smooth, g, H = value_grad_hessian(objective, u)
        f = f_smooth + jnp.sum(l1_weight * jnp.abs(u - l1_centre))
        lam_max = jnp.maximum(jnp.max(jnp.sum(jnp.abs(H), axis=1)), jnp.finfo(H.dtype).tiny)  # >= λmax

        # candidate 1: proximal gradient, backtracked until it decreases the total
        def pg_point(t):
            return prox(u - t * g, t)

        def pg_cond(c):
            t, f_t, k = c
            return ~(jnp.isfinite(f_t) & (f_t <= f)) & (k < MAX_BACKTRACKS)

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
        )

    return Strategy(init, step)
