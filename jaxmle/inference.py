"""Observed information, covariance and SEs at the optimum.

The device computes the information -∇² of the smooth log-posterior (log-likelihood plus
the differentiable part of the log-prior) in the inference coordinates z: the user's own
values, or the free log-ratios of a simplex. This module turns it into the covariance of
the user's values, J Σ_z Jᵀ with J = ∂x/∂z, on the host in float64 NumPy (batched over any
leading axes). For an unconstrained or element-wise constrained parameter J is the
identity, so SEs are exactly the square roots of the diagonal of the inverse observed
information in the user's parameterization.

A coordinate held exactly at its centre by a Laplace (L1) prior sits at a kink of the
objective and has no curvature-based SE: it is left out of the covariance (NaN row and
column). An information matrix that is singular or indefinite is never repaired: the
parameters that load on its null directions get NaN variances, the others keep the
variance of an estimable function, and the direction of the smallest eigenvalue is kept
so the unidentified combination can be named.
"""

from __future__ import annotations

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


def observed_inference(information_z, jacobian, at_kink_z) -> Inference:
    """Covariance and diagnostics from the information in z (``(..., m, m)``).

    ``jacobian`` is ∂x/∂z, ``(k, m)`` or batched, or None for the identity."""
    info = np.asarray(information_z, dtype=np.float64)
    kink = np.asarray(at_kink_z, dtype=bool)
    m = info.shape[-1]
    J = None if jacobian is None else np.asarray(jacobian, dtype=np.float64)
    eye = np.eye(m)
    both = ~kink[..., :, None] & ~kink[..., None, :]
    H = np.where(both, info, eye)
    diag = np.diagonal(H, axis1=-2, axis2=-1)
    finite = np.all(np.isfinite(H), axis=(-2, -1))
    H = np.where(finite[..., None, None], H, eye)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 1.0)
    Hs = H * scale[..., :, None] * scale[..., None, :]
    w, V = np.linalg.eigh(Hs) if m else (np.zeros(info.shape[:-1]), np.zeros(info.shape))
    w_max = np.maximum(np.max(np.abs(w), axis=-1, initial=0.0), np.finfo(float).tiny)
    null = w <= SINGULAR_TOL * w_max[..., None]
    affected = np.any(null[..., None, :] & (np.abs(V) > LOADING_TOL), axis=-1) | (diag <= 0) | ~finite[..., None]
    positive_definite = ~np.any(affected, axis=-1)
    with np.errstate(divide="ignore"):
        inv_w = np.where(null, 0.0, 1.0 / np.where(null, 1.0, w))
    scaled_V = scale[..., :, None] * V
    cov_z = (scaled_V * inv_w[..., None, :]) @ np.swapaxes(scaled_V, -1, -2)
    cov = to_user_coordinates(cov_z, J, affected | kink)
    se = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))

    information = np.where(both, info, 0.0)
    first = scaled_V[..., :, 0] if m else np.zeros(info.shape[:-1])
    if J is not None:
        J_pinv = np.linalg.pinv(J)
        information = np.swapaxes(J_pinv, -1, -2) @ information @ J_pinv
        first = (J @ first[..., None])[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        null_direction = first / np.max(np.abs(first), axis=-1, keepdims=True, initial=0.0)
        w_min = w[..., 0] if m else np.ones(info.shape[:-2])
        condition = np.where(w_min > 0, w_max / np.where(w_min > 0, w_min, 1.0), np.inf)
    # a non-finite information has no meaningful spectrum: no direction, no condition number
    condition = np.where(finite, condition, np.nan)
    null_direction = np.where(finite[..., None], null_direction, np.nan)
    indefinite = finite & (w_min < -SINGULAR_TOL * w_max)
    return Inference(
        information, cov, se, positive_definite, condition, null_direction, touched(J, kink), finite, indefinite
    )


def touched(J, mask_z) -> np.ndarray:
    """The user coordinates x that depend (through J = ∂x/∂z, None for the identity) on a z
    coordinate in ``mask_z``."""
    mask_z = np.asarray(mask_z, dtype=bool)
    if J is None:
        return mask_z
    return ((np.abs(J) > 0).astype(float) @ mask_z[..., None].astype(float) > 0)[..., 0]


def to_user_coordinates(cov_z, J, bad_z) -> np.ndarray:
    """J Σ_z Jᵀ (J = None: the identity), with NaN rows and columns for every x that depends
    on a coordinate in ``bad_z`` (one without a defined variance: unidentified, or held at
    an L1 kink)."""
    cov_z = np.where(bad_z[..., :, None] | bad_z[..., None, :], 0.0, cov_z)
    cov = cov_z if J is None else J @ cov_z @ np.swapaxes(J, -1, -2)
    bad_x = touched(J, bad_z)
    return np.where(bad_x[..., :, None] | bad_x[..., None, :], np.nan, cov)


def delta_method(fn_of_flat_x, x_hat, cov):
    """Value and SE of ``fn(x)`` by the delta method: Var = J Σ Jᵀ, J = ∂fn/∂x at x̂.

    Returns pytrees shaped like ``fn``'s output. A derived quantity that depends on a
    parameter with a NaN variance gets a NaN SE.
    """
    value = fn_of_flat_x(x_hat)
    jac = jax.jacobian(fn_of_flat_x)(x_hat)
    cov = np.asarray(cov)
    nan = np.isnan(cov)
    safe_cov = np.where(nan, 0.0, cov)

    def se_of(j):
        j = np.asarray(j)
        j2 = j.reshape(-1, x_hat.shape[0])
        used = np.abs(j2) > 0
        var = np.einsum("ai,ij,aj->a", j2, safe_cov, j2)
        touches_nan = np.any(used[:, :, None] & used[:, None, :] & nan[None], axis=(1, 2))
        return np.where(touches_nan, np.nan, np.sqrt(np.maximum(var, 0.0))).reshape(j.shape[:-1])

    return jax.tree_util.tree_map(np.asarray, value), jax.tree_util.tree_map(se_of, jac)
