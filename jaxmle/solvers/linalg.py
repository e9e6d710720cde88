"""Small dense Cholesky factorization and solves in plain ``jax.numpy``.

For the small systems of Newton steps (k up to a few hundred) these loops compile and
batch well: they avoid LAPACK custom calls (whose first lowering costs a noticeable part
of a one-off fit's time on the CPU) and vectorize across replicates under ``vmap`` on any
device."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def modified_cholesky(A, pivot_floor: float, pivot_replacement: float):
    """Lower-triangular L with L Lᵀ = A + E, E diagonal and non-negative, and whether E ≠ 0.

    A pivot (the Schur complement's diagonal entry) below ``pivot_floor`` is replaced by
    ``max(|pivot|, pivot_replacement)``: E = 0 when A is safely positive definite, and
    L Lᵀ is positive definite always. Meant for a unit-diagonal (Jacobi-scaled) A.
    """
    n = A.shape[0]
    idx = jnp.arange(n)

    def column(j, carry):
        L, modified = carry
        s = A[:, j] - L @ L[j]
        small = ~(s[j] > pivot_floor)  # also catches NaN
        pivot = jnp.where(small, jnp.maximum(jnp.abs(s[j]), pivot_replacement), s[j])
        d = jnp.sqrt(pivot)
        col = jnp.where(idx > j, s / d, 0.0)
        return L.at[:, j].set(jnp.where(idx == j, d, col)), modified | small

    return lax.fori_loop(0, n, column, (jnp.zeros_like(A), jnp.bool_(False)))


def cholesky_solve(L, b):
    """x with L Lᵀ x = b, by forward then backward substitution."""
    n = L.shape[0]

    def forward(i, y):
        return y.at[i].set((b[i] - L[i] @ y) / L[i, i])

    y = lax.fori_loop(0, n, forward, jnp.zeros_like(b))

    def backward(k, x):
        i = n - 1 - k
        return x.at[i].set((y[i] - L[:, i] @ x) / L[i, i])

    return lax.fori_loop(0, n, backward, jnp.zeros_like(b))
