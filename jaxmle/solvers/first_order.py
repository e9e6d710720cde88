"""First-order strategies through optax: L-BFGS, Adam, or any GradientTransformation.

Convergence: the largest absolute gradient entry at the current point falls below
``tol * (1 + |f|)``; the point is then returned without a further update.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ..status import Status
from .driver import Step, Strategy


def _gradient_converged(g, f, tol):
    return jnp.max(jnp.abs(g), initial=0.0) <= tol * (1.0 + jnp.abs(f))


def lbfgs(objective, tol: float, memory_size: int = 10) -> Strategy:
    """optax L-BFGS with its zoom line search (strong Wolfe conditions)."""
    opt = optax.lbfgs(memory_size=memory_size)
    value_and_grad = optax.value_and_grad_from_state(objective)

    def init(u):
        return objective(u), opt.init(u)

    def step(u, f, state, active):
        value, g = value_and_grad(u, state=state)
        converged = _gradient_converged(g, value, tol)
        updates, new_state = opt.update(g, state, u, value=value, grad=g, value_fn=objective)
        u_new = optax.apply_updates(u, updates)
        f_new = optax.tree_utils.tree_get(new_state, "value")
        return _step(u, f, state, u_new, f_new, new_state, converged)

    return Strategy(init, step)


def gradient_transformation(objective, transform: optax.GradientTransformation, tol: float) -> Strategy:
    """Any optax transformation (Adam included): u <- u + update(grad)."""
    value_and_grad = jax.value_and_grad(objective)

    def init(u):
        return objective(u), transform.init(u)

    def step(u, f, state, active):
        value, g = value_and_grad(u)
        converged = _gradient_converged(g, value, tol)
        updates, new_state = transform.update(g, state, u)
        u_new = optax.apply_updates(u, updates)
        return _step(u, f, state, u_new, objective(u_new), new_state, converged)

    return Strategy(init, step)


def _step(u, f, state, u_new, f_new, new_state, converged):
    """Stay at ``u`` once converged; otherwise move (first-order steps are never 'full')."""
    keep = lambda a, b: jnp.where(converged, a, b)  # noqa: E731
    return Step(
        u=keep(u, u_new),
        f=keep(f, f_new),
        inner=jax.tree_util.tree_map(keep, state, new_state),
        converged=converged,
        failed=jnp.int32(Status.CONVERGED),
        full_step=jnp.bool_(False),
        refreshed=jnp.bool_(False),
    )
