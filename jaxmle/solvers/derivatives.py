"""Value, gradient and Hessian from one forward-over-reverse pass.

``jax.vmap`` of ``jax.jvp`` over the basis vectors of ``value_and_grad`` gives the value
and gradient (as primal outputs) and the Hessian columns (as tangents) from a single
traced instance of the objective, which keeps compile times short.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def value_grad_hessian(fn, x):
    """(fn(x), ∇fn(x), ∇²fn(x)) for a scalar ``fn`` of a 1-D ``x``."""
    basis = jnp.eye(x.shape[0], dtype=x.dtype)
    (value, grad), (_, hess) = jax.vmap(lambda v: jax.jvp(jax.value_and_grad(fn), (x,), (v,)), out_axes=(None, 0))(
        basis
    )
    return value, grad, hess
