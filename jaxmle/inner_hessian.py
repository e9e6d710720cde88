"""The inner negative Hessian −∇²_uu f of a Laplace marginal: dense, or block diagonal.

When the random effects fall into G conditionally independent groups (row g of every
random entry belongs to group g, and the joint density has no term that couples two
rows), −∇²_uu f is block diagonal with G blocks of size k = q / G. The blocks come from k
Hessian-vector products whose probes hold the j-th coordinate of every group at once
(Curtis, Powell and Reid's compression for a known sparsity pattern), and every
factorization, solve and log-determinant runs block by block: time and memory grow
linearly with G, where the dense path costs O(q²) memory and O(q³) time.

``structure_check`` decides, before anything is compiled for the fit, whether a model has that
structure: every random entry must have the same leading length G ≥ 2, and the block
product must reproduce a full Hessian-vector product at two points, for a random probe.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .solvers.linalg import cholesky, cholesky_solve
from .xla_options import quick_options

#: the block product must match the full Hessian-vector product to this, relative to its size
STRUCTURE_RTOL = 1e-9


class InnerFactor(NamedTuple):
    """A Cholesky factorization of −∇²_uu f: L of shape (q, q), or (G, k, k) by blocks."""

    L: jax.Array
    ok: jax.Array  # bool: positive definite (every block)


def neg_hessian(f, u, re):
    """−∇²_uu f at u: (q, q), or with ``re.groups`` the (G, k, k) diagonal blocks."""
    if re.groups is None:
        return -jax.hessian(f)(u)
    grad = jax.grad(f)
    columns = jax.vmap(lambda v: jax.jvp(grad, (u,), (v,))[1])(jnp.asarray(_probes(re), u.dtype))
    return -jnp.stack([re.to_blocks(c) for c in columns], axis=-1)  # [g, i, j] = H[(g, i), (g, j)]


def _probes(re) -> np.ndarray:
    """(k, q): probe j holds 1 at the j-th coordinate of every group."""
    eye = np.eye(re.block_size)
    return np.stack([re.from_blocks(np.broadcast_to(e, (re.groups, re.block_size)), xp=np) for e in eye])


def factor(neg_h) -> InnerFactor:
    """Cholesky factorization of ``neg_hessian``'s output (for the inner solve, which is
    never differentiated)."""
    if neg_h.ndim == 2:
        fac = cholesky(neg_h, certificate=False)
        return InnerFactor(fac.L, fac.ok)
    fac = jax.vmap(partial(cholesky, certificate=False))(neg_h)
    return InnerFactor(fac.L, jnp.all(fac.ok))


def factor_solve(fac: InnerFactor, v, re):
    """(−∇²_uu f)⁻¹ v for a flat v, from its ``factor`` (not differentiable)."""
    return _by_rows(partial(_solve_factored, fac), v, re)


def _by_rows(fn, v, re):
    """``fn`` applied to the flat v laid out like the rows of −∇²_uu f ((q,) or (G, k))."""
    return fn(v) if re.groups is None else re.from_blocks(fn(re.to_blocks(v)))


def _solve_factored(fac: InnerFactor, b):
    """A⁻¹ b from ``factor(A)``, with b shaped like A's rows ((n,) or (G, n))."""
    return cholesky_solve(fac.L, b) if fac.L.ndim == 2 else jax.vmap(cholesky_solve)(fac.L, b)


def solve(neg_h, v, re):
    """(−∇²_uu f)⁻¹ v for a flat v, NaN where not positive definite; differentiable."""
    return _by_rows(partial(spd_solve, neg_h), v, re)


@jax.custom_jvp
def spd_solve(A, b):
    """A⁻¹ b for a symmetric positive definite A of shape (n, n) or (G, n, n) (NaN
    otherwise). Its derivative, d(A⁻¹b) = A⁻¹(db − dA A⁻¹b), is a rule, so that
    derivatives of any order solve again rather than differentiate the factorization's
    loops (which would make programs several times larger)."""
    fac = factor(A)
    return jnp.where(fac.ok, _solve_factored(fac, b), jnp.nan)


@spd_solve.defjvp
def _spd_solve_jvp(primals, tangents):
    A, b = primals
    dA, db = tangents
    x = spd_solve(A, b)
    return x, spd_solve(A, db - jnp.einsum("...ij,...j->...i", dA, x))


@jax.custom_jvp
def spd_log_det(A):
    """log det A, summed over blocks, for a symmetric positive definite A (NaN otherwise);
    d log det A = tr(A⁻¹ dA), by a rule (see ``spd_solve``)."""
    fac = factor(A)
    return jnp.where(fac.ok, 2.0 * jnp.sum(jnp.log(jnp.diagonal(fac.L, axis1=-2, axis2=-1))), jnp.nan)


@spd_log_det.defjvp
def _spd_log_det_jvp(primals, tangents):
    (A,), (dA,) = primals, tangents
    eye = jnp.broadcast_to(jnp.eye(A.shape[-1], dtype=A.dtype), A.shape)
    inverse = jax.vmap(spd_solve, in_axes=(None, -1), out_axes=-1)(A, eye)
    return spd_log_det(A), jnp.sum(inverse * dA)


def inverse_diagonal(neg_h: np.ndarray, re) -> np.ndarray:
    """diag((−∇²_uu f)⁻¹), flat, on the host."""
    if re.groups is None:
        return np.diag(np.linalg.inv(neg_h))
    return re.from_blocks(np.diagonal(np.linalg.inv(neg_h), axis1=-2, axis2=-1), xp=np)


def smallest_eigenvalue(neg_h: np.ndarray) -> float:
    """The smallest eigenvalue of −∇²_uu f (of any block), on the host."""
    return float(np.linalg.eigvalsh(neg_h).min())


def structure_check(joint, re):
    """``check(outer, data)``: G when the random effects of ``re`` form G ≥ 2 conditionally
    independent groups along the leading axis of every random entry (checked numerically on
    ``joint(outer, u, data)`` at u = 0 and at a random u), else None (the dense path).
    Compiled once per model and reused."""
    leading = {shape[0] if shape else None for shape in re.shapes}
    if len(leading) != 1 or None in leading or next(iter(leading)) < 2:
        return lambda outer, data: None
    blocks = dataclasses.replace(re, groups=next(iter(leading)))
    products = jax.jit(partial(_structure_products, joint, blocks), compiler_options=quick_options())
    rng = np.random.default_rng(0)
    points = np.stack([np.zeros(re.size), 0.1 * rng.standard_normal(re.size)])
    probe = rng.standard_normal(re.size)

    def check(outer, data):
        try:
            full, blockwise = (np.asarray(a) for a in products(outer, jnp.asarray(points), jnp.asarray(probe), data))
        except Exception:  # bad data or init: the fit's own checks, which come next, name the argument
            return None
        if not (np.all(np.isfinite(full)) and np.all(np.isfinite(blockwise))):
            return None
        scale = np.maximum(np.abs(full).max(axis=1, initial=0.0), np.finfo(float).tiny)
        return blocks.groups if np.all(np.abs(full - blockwise).max(axis=1) <= STRUCTURE_RTOL * scale) else None

    return check


def _structure_products(joint, re, outer, points, probe, data):
    """(H v, B v) at each point: the full Hessian-vector product and the block-diagonal one."""

    def at(u):
        f = partial(joint, outer, data=data)
        full = jax.jvp(jax.grad(f), (u,), (probe,))[1]
        blocks = -neg_hessian(f, u, re)
        return full, re.from_blocks(jnp.einsum("gij,gj->gi", blocks, re.to_blocks(probe)))

    return jax.vmap(at)(points)
