"""Value, gradient and Hessian from one forward-over-reverse pass.

``jax.vmap`` of ``jax.jvp`` over the basis vectors of ``value_and_grad`` gives the value
and gradient (as primal outputs) and the Hessian columns (as tangents) from a single
traced instance of the objective, which keeps compile times short.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def value_grad_hessian(fn, x, has_aux: bool = False):
    """(fn(x), ∇fn(x), ∇²fn(x)) for a scalar ``fn`` of a 1-D ``x``; with ``has_aux``,
    ``fn`` returns (value, aux) and the result is (value, gradient, Hessian, aux)."""
    basis = jnp.eye(x.shape[0], dtype=x.dtype)
    value_and_grad = jax.value_and_grad(fn, has_aux=has_aux)
    (value, grad), (_, hess) = jax.vmap(lambda v: jax.jvp(value_and_grad, (x,), (v,)), out_axes=(None, 0))(basis)
    if has_aux:
        value, aux = value
        return value, grad, hess, aux
    return value, grad, hess
