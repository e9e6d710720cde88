"""Observed information, covariance and SEs at the optimum.

The device computes the information -∇² of the smooth log-posterior (log-likelihood plus
the differentiable part of the log-prior) in the inference coordinates z: the user's own
values, or the free log-ratios of a simplex. This module turns it into the covariance of
the user's values, J Σ_z Jᵀ with J = ∂x/∂z, batched over any leading axes: on the host in
float64 NumPy for single fits (no LAPACK call in their compiled program), and in the
batched program itself, in ``jax.numpy``, for ``fit_batch``. For an unconstrained or
element-wise constrained parameter J is the identity, so SEs are exactly the square roots
of the diagonal of the inverse observed information in the user's parameterization.

A coordinate held exactly at its centre by a Laplace (L1) prior sits at a kink of the
objective and has no curvature-based SE: it is left out of the covariance (NaN row and
column). An information matrix that is singular or indefinite is never repaired: the
parameters that load on its null directions get NaN variances, the others keep the
variance of an estimable function, and the direction of the smallest eigenvalue is kept
so the unidentified combination can be named.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import jax
import numpy as np

#: eigenvalues of the Jacobi-scaled information at or below this fraction of the largest
#: count as zero (an inverse would carry relative errors of about eps / SINGULAR_TOL).
SINGULAR_TOL = 1e-11
#: a parameter whose loading on a null eigenvector exceeds this is not identified
LOADING_TOL = 1e-6


class Inference(NamedTuple):
    information: np.ndarray  # (..., k, k) observed information in the user's coordinates
    cov: np.ndarray  # (..., k, k)
    se: np.ndarray  # (..., k)
    positive_definite: np.ndarray  # (...,) bool
    condition_number: np.ndarray  # (...,) of the Jacobi-scaled information
    null_direction: np.ndarray  # (..., k) user-coordinate direction of the smallest eigenvalue
    at_kink: np.ndarray  # (..., k) bool: held at the centre of a Laplace prior
    finite: np.ndarray | bool = True  # (...,) the information has no NaN or inf entries
    indefinite: np.ndarray | bool = False  # (...,) a clearly negative eigenvalue: not a maximum
    decrement: np.ndarray | float = np.nan  # (...,) g' I^-1 g off null directions and kinks


def observed_inference(information_z, jacobian, at_kink_z, xp=np, grad_z=None) -> Inference:
    """Covariance and diagnostics from the information in z (``(..., m, m)``).

    ``jacobian`` is ∂x/∂z, ``(k, m)`` or batched, or None for the identity. ``xp`` is the
    array namespace: NumPy (in float64), or ``jax.numpy`` inside a traced program (in the
    information's own precision). With ``grad_z`` (the log-posterior's gradient in z) the
    Newton decrement g' I⁻¹ g is returned too: twice the gain a Newton step predicts, the
    scale-free test of a stationary point."""
    info = xp.asarray(information_z, dtype=np.float64 if xp is np else None)
    kink = xp.asarray(at_kink_z, dtype=bool)
    m = info.shape[-1]
    J = None if jacobian is None else xp.asarray(jacobian, dtype=info.dtype)
    eye = xp.eye(m, dtype=info.dtype)
    both = ~kink[..., :, None] & ~kink[..., None, :]
    H = xp.where(both, info, eye)
    diag = xp.diagonal(H, axis1=-2, axis2=-1)
    finite = xp.all(xp.isfinite(H), axis=(-2, -1))
    H = xp.where(finite[..., None, None], H, eye)
    if J is not None:  # a Jacobian that is not finite (a simplex at a vertex) maps nothing
        J_finite = xp.all(xp.isfinite(J), axis=(-2, -1))
        J = xp.where(J_finite[..., None, None], J, 0.0)
        finite = finite & J_finite
    with _quiet(xp):
        scale = xp.where(diag > 0, 1.0 / xp.sqrt(xp.where(diag > 0, diag, 1.0)), 1.0)
    Hs = H * scale[..., :, None] * scale[..., None, :]
    w, V = symmetric_eigh(Hs, xp)
    w_max = xp.maximum(xp.max(xp.abs(w), axis=-1, initial=0.0), xp.finfo(info.dtype).tiny)
    null = w <= SINGULAR_TOL * w_max[..., None]
    affected = xp.any(null[..., None, :] & (xp.abs(V) > LOADING_TOL), axis=-1) | (diag <= 0) | ~finite[..., None]
    positive_definite = ~xp.any(affected, axis=-1)
    with _quiet(xp):
        inv_w = xp.where(null, 0.0, 1.0 / xp.where(null, 1.0, w))
    scaled_V = scale[..., :, None] * V
    cov_z = (scaled_V * inv_w[..., None, :]) @ xp.swapaxes(scaled_V, -1, -2)
    cov = to_user_coordinates(cov_z, J, affected | kink, xp)
    se = xp.sqrt(xp.diagonal(cov, axis1=-2, axis2=-1))

    information = xp.where(both, info, 0.0)
    first = scaled_V[..., :, 0] if m else xp.zeros(info.shape[:-1])
    if J is not None:
        J_pinv = xp.linalg.pinv(J)
        information = xp.swapaxes(J_pinv, -1, -2) @ information @ J_pinv
        first = (J @ first[..., None])[..., 0]
    with _quiet(xp):
        null_direction = first / xp.max(xp.abs(first), axis=-1, keepdims=True, initial=0.0)
        w_min = w[..., 0] if m else xp.ones(info.shape[:-2])
        condition = xp.where(w_min > 0, w_max / xp.where(w_min > 0, w_min, 1.0), xp.inf)
    # a non-finite information has no meaningful spectrum: no direction, no condition number
    condition = xp.where(finite, condition, xp.nan)
    null_direction = xp.where(finite[..., None], null_direction, xp.nan)
    indefinite = finite & (w_min < -SINGULAR_TOL * w_max)
    decrement = xp.nan
    if grad_z is not None:
        g = xp.where(kink, 0.0, xp.asarray(grad_z, dtype=info.dtype)) * scale
        along = (xp.swapaxes(V, -1, -2) @ g[..., None])[..., 0]
        decrement = xp.where(finite, xp.sum(along * along * xp.abs(inv_w), axis=-1), xp.nan)
    return Inference(
        information,
        cov,
        se,
        positive_definite,
        condition,
        null_direction,
        touched(J, kink, xp),
        finite,
        indefinite,
        decrement,
    )


def symmetric_eigh(A, xp=np):
    """Eigenvalues (ascending) and eigenvectors (columns) of symmetric ``(..., m, m)`` matrices.

    Up to m = 2 by one Jacobi rotation, elementwise over the leading axes (batched LAPACK
    calls handle one small matrix at a time: for 2 x 2 informations that costs about as
    much as a Newton iteration per fit); larger m by ``xp.linalg.eigh``. The rotation is the
    one that zeroes the off-diagonal entry b of [[a, b], [b, c]], with t = tan(angle) the
    smaller root of t² + 2θt - 1 = 0, θ = (c - a) / 2b (as in LAPACK's dlaev2 and the
    Jacobi method), which keeps every eigenvalue accurate to round-off in the matrix norm.
    """
    m = A.shape[-1]
    if m > 2:
        return xp.linalg.eigh(A)
    if m < 2:  # no parameters, or one: a 1 x 1 matrix is its own eigenvalue
        return xp.diagonal(A, axis1=-2, axis2=-1), xp.ones_like(A)
    a, b, c = A[..., 0, 0], A[..., 0, 1], A[..., 1, 1]
    rotate = b != 0
    with _quiet(xp):
        theta = (c - a) / (2.0 * xp.where(rotate, b, 1.0))
        t = xp.where(theta >= 0, 1.0, -1.0) / (xp.abs(theta) + xp.sqrt(1.0 + theta * theta))
    t = xp.where(rotate & xp.isfinite(theta), t, 0.0)
    cs = 1.0 / xp.sqrt(1.0 + t * t)
    sn = t * cs
    first, second = a - t * b, c + t * b  # for the eigenvectors (cs, -sn) and (sn, cs)
    swap = second < first
    w = xp.stack([xp.where(swap, second, first), xp.where(swap, first, second)], axis=-1)
    v_first = xp.stack([cs, -sn], axis=-1)
    v_second = xp.stack([sn, cs], axis=-1)
    V = xp.stack([xp.where(swap[..., None], v_second, v_first), xp.where(swap[..., None], v_first, v_second)], axis=-1)
    return w, V


def _quiet(xp):
    """NumPy's warnings off for divisions whose results are masked out (traced code has none)."""
    return np.errstate(divide="ignore", invalid="ignore") if xp is np else contextlib.nullcontext()


def touched(J, mask_z, xp=np):
    """The user coordinates x that depend (through J = ∂x/∂z, None for the identity) on a z
    coordinate in ``mask_z``."""
    mask_z = xp.asarray(mask_z, dtype=bool)
    if J is None:
        return mask_z
    return ((xp.abs(J) > 0).astype(J.dtype) @ mask_z[..., None].astype(J.dtype) > 0)[..., 0]


def to_user_coordinates(cov_z, J, bad_z, xp=np):
    """J Σ_z Jᵀ (J = None: the identity), with NaN rows and columns for every x that depends
    on a coordinate in ``bad_z`` (one without a defined variance: unidentified, or held at
    an L1 kink)."""
    cov_z = xp.where(bad_z[..., :, None] | bad_z[..., None, :], 0.0, cov_z)
    cov = cov_z if J is None else J @ cov_z @ xp.swapaxes(J, -1, -2)
    bad_x = touched(J, bad_z, xp)
    return xp.where(bad_x[..., :, None] | bad_x[..., None, :], xp.nan, cov)


class Delta(tuple):
    """``(value, se)`` of a derived quantity, unpacking as that pair, with ``cov``: the joint
    delta-method covariance J Σ Jᵀ of its q elements, (q, q), and ``flat_value``: the q
    values in that order (the leaves of the output flattened in JAX's leaf order)."""

    def __new__(cls, value, se, cov, flat_value):
        pair = super().__new__(cls, (value, se))
        pair.cov = cov
        pair.flat_value = flat_value
        return pair

    @property
    def value(self):
        return self[0]

    @property
    def se(self):
        return self[1]


def delta_method(fn_of_flat_x, x_hat, cov) -> Delta:
    """Value, SE and joint covariance of ``fn(x)`` by the delta method: Var = J Σ Jᵀ,
    J = ∂fn/∂x at x̂.

    Value and SE are pytrees shaped like ``fn``'s output. An element that is not finite, or
    that depends on a parameter with a NaN variance, gets a NaN SE (and NaN covariances).
    """
    value = jax.tree_util.tree_map(np.asarray, fn_of_flat_x(x_hat))
    jac = jax.jacobian(fn_of_flat_x)(x_hat)
    cov = np.asarray(cov)
    nan = np.isnan(cov)
    rows = [np.asarray(j).reshape(-1, x_hat.shape[0]) for j in jax.tree_util.tree_leaves(jac)]
    J = np.concatenate(rows) if rows else np.zeros((0, x_hat.shape[0]))
    used = np.abs(J) > 0
    flat_value = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(value)] + [np.zeros(0)])
    undefined = np.any(used[:, :, None] & used[:, None, :] & nan[None], axis=(1, 2)) | ~np.isfinite(flat_value)
    joint = J @ np.where(nan, 0.0, cov) @ J.T
    joint = np.where(undefined[:, None] | undefined[None, :], np.nan, joint)
    flat_se = np.sqrt(np.maximum(np.diagonal(joint), 0.0))
    parts = iter(np.split(flat_se, np.cumsum([len(r) for r in rows])[:-1]))
    se = jax.tree_util.tree_map(lambda v: next(parts).reshape(np.shape(v)), value)
    return Delta(value, se, joint, flat_value)
