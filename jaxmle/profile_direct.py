"""Profile-interval endpoints solved directly (Venzon and Moolgavkar, 1988).

An endpoint of the profile interval of θᵢ at threshold q (χ²₁(1 − α) for an interval) is a
point θ where

    ℓ(θ) = ℓ̂ − q/2   and   ∂ℓ/∂θⱼ = 0 for every j ≠ i,

since there the other parameters maximize ℓ with θᵢ held, and the profile crosses
ℓ̂ − q/2. Newton's method solves these k equations in θ (the Jacobian has the gradient
as row i and the Hessian's rows j ≠ i, all by autodiff; each step eliminates the other
coordinates through their Hessian block, factorized as in the fit's Newton step, and row
i then gives the step in θᵢ), preceded by chord iterations (the same steps with the
Hessian at θ̂, so one gradient per endpoint each, where Newton's take k Hessian-vector
products) and started at the maximum of the
quadratic approximation of ℓ at θ̂ on the Wald endpoint θᵢ = θ̂ᵢ ± √(q Σᵢᵢ), which is
θ̂ ± √q Σ₍·ᵢ₎ / √Σᵢᵢ with Σ the inverse of the observed information. It runs in the
unconstrained coordinates u (profiles are invariant under monotone reparameterization),
every endpoint of every parameter in one vmapped program.

An endpoint is accepted only when verified: the Newton correction at the last point is
within ``rtol`` × the Wald SE of every coordinate (for the profiled one, alternatively
within ``rtol`` relative on the parameter's own scale), so the equations hold to that
tolerance and the last correction is applied; the observed information of the other
coordinates is positive definite there (a maximum over them, not a saddle); and the point
lies on its own side of θ̂. The others (an interval open at a bound, an iteration that
does not settle, non-finite values) are left to the root search in ``jaxmle.profile``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .problem import Problem, logpost_in
from .solvers.derivatives import value_grad_hessian
from .solvers.linalg import cholesky, cholesky_solve
from .solvers.newton import newton_direction

#: Newton iterations before an endpoint that has not settled is left to the root search
MAX_NEWTON = 30
#: chord iterations (the Hessian at θ̂ for every step: one gradient per endpoint each)
#: before Newton's; they converge linearly, Newton's quadratically at k Hessian-vector
#: products per endpoint each
MAX_CHORD = 40


class DirectEndpoints(NamedTuple):
    """One row per endpoint (lane)."""

    u: jax.Array  # (L, m) the endpoint in u
    verified: jax.Array  # (L,) the checks in the module's docstring hold
    best: jax.Array  # (L,) the highest log-posterior evaluated on the way
    best_u: jax.Array  # (L, m) where it was evaluated


class _State(NamedTuple):
    u: jax.Array
    done: jax.Array
    verified: jax.Array
    best: jax.Array
    best_u: jax.Array
    it: jax.Array


@functools.lru_cache(maxsize=64)
def compiled_endpoints(problem: Problem):
    """jit of ``endpoints(u_hat, fixed_leaves, data, held, x_index, sign, target, q, rtol)``:
    for lane l, the endpoint of u[held[l]] on the side ``sign[l]`` (−1 or +1) where the
    log-posterior is ``target`` (ℓ̂ − q/2); ``x_index[l]`` is that coordinate's position
    in the user's flat values x."""
    space = problem.space
    m = space.m
    logpost = logpost_in(problem)

    def to_x(u):
        return space.flat_x(space.u_to_x_leaves(u))

    def endpoints(u_hat, fixed_leaves, data, held, x_index, sign, target, q, rtol):
        def value_grad_hess(u):
            return value_grad_hessian(lambda v: logpost(v, fixed_leaves, data), u)

        _, _, hess_hat = value_grad_hess(u_hat)
        factor = cholesky(-hess_hat, certificate=False)
        cov = jax.vmap(lambda e: cholesky_solve(factor.L, e))(jnp.eye(m, dtype=u_hat.dtype))
        sd = jnp.sqrt(jnp.diag(cov))
        start = u_hat + (sign * jnp.sqrt(q) / sd[held])[:, None] * cov[held]

        def newton(u, i, xi, s, chord=False):
            """The Newton correction at u, whether it is within tolerance, and the checks;
            with ``chord``, the Hessian at θ̂ stands in for the one at u."""
            if chord:
                value, grad = jax.value_and_grad(lambda v: logpost(v, fixed_leaves, data))(u)
                hess = hess_hat
            else:
                value, grad, hess = value_grad_hess(u)
            row = jnp.arange(m) == i
            # the rows j != i, -hess_oo d_o = grad_o + hess_oi d_i, give d_o = a + c d_i;
            # then row i, grad . d = target - value, gives d_i
            a_c = jax.vmap(lambda b: newton_direction(b, -hess, ~row))(jnp.stack([grad, hess[:, i]]))
            a, c = -a_c.p[0], -a_c.p[1]
            d_i = (target - value - grad @ a) / (grad[i] + grad @ c)
            delta = jnp.where(row, d_i, a + c * d_i)
            x, dx = jax.jvp(to_x, (u,), (delta,))
            small = jnp.abs(delta) <= rtol * sd
            small_i = small[i] | (jnp.abs(dx[xi]) <= rtol * jnp.abs(x[xi]))
            settled = jnp.all(jnp.where(row, small_i, small))
            checks = ~a_c.modified[0] & (s * (u[i] - u_hat[i]) > 0)
            finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(delta))
            return value, u + delta, settled & finite, checks, finite

        def chord_cond(c):
            return (c[2] < MAX_CHORD) & ~jnp.all(c[1])

        def chord_body(c):
            u, done, it = c
            _, moved, settled, _, finite = jax.vmap(functools.partial(newton, chord=True))(u, held, x_index, sign)
            return jnp.where((~done & finite)[:, None], moved, u), done | settled | ~finite, it + 1

        lanes_n = held.shape[0]
        chord_u, chord_done, _ = jax.lax.while_loop(
            chord_cond, chord_body, (start, ~jnp.all(jnp.isfinite(start), axis=1), jnp.int32(0))
        )
        # Newton's iterations verify (and finish) what the chord iterations settled, and start
        # again from the quadratic approximation's point where they did not
        start = jnp.where((chord_done & jnp.all(jnp.isfinite(chord_u), axis=1))[:, None], chord_u, start)
        lanes = jax.vmap(newton)

        def cond(s: _State):
            return (s.it < MAX_NEWTON) & ~jnp.all(s.done)

        def body(s: _State):
            value, moved, settled, checks, finite = lanes(s.u, held, x_index, sign)
            live = ~s.done
            higher = live & (value > s.best)
            return _State(
                u=jnp.where((live & finite)[:, None], moved, s.u),
                done=s.done | settled | ~finite,
                verified=s.verified | (live & settled & checks),
                best=jnp.where(higher, value, s.best),
                best_u=jnp.where(higher[:, None], s.u, s.best_u),
                it=s.it + 1,
            )

        init = _State(
            u=start,
            done=~jnp.all(jnp.isfinite(start), axis=1),
            verified=jnp.zeros(lanes_n, bool),
            best=jnp.full(lanes_n, -jnp.inf, u_hat.dtype),
            best_u=start,
            it=jnp.int32(0),
        )
        out = jax.lax.while_loop(cond, body, init)
        return DirectEndpoints(out.u, out.verified, out.best, out.best_u)

    return jax.jit(endpoints)
