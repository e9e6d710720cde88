"""Covariance estimates beside the inverse observed information.

- ``"observed"``: A⁻¹, A = −∇²ℓ(θ̂) the observed information (the default).
- ``"robust"``: the Huber–White sandwich A⁻¹ B A⁻¹ with B = Σᵢ sᵢ sᵢᵀ, sᵢ = ∂ℓᵢ/∂θ the
  per-observation scores at θ̂. It stays consistent when the model is misspecified; for a
  Gaussian linear model its β block is White's HC0, (XᵀX)⁻¹ Xᵀ diag(eᵢ²) X (XᵀX)⁻¹.
- ``"opg"``: B⁻¹, the outer product of gradients (BHHH).
- ``"expected"``: the inverse expected (Fisher) information n·I₁(θ̂), for a built-in model
  that provides ``fisher_information``.

Scores and information are taken in the inference coordinates z and mapped to the user's
parameters by J = ∂x/∂z, as for the observed covariance (see ``jaxmle.inference``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from . import _precision
from .inference import Inference, observed_inference, to_user_coordinates

COV_TYPES = ("observed", "robust", "opg", "expected")


def check(cov_type, prep, model) -> None:
    """Refuse a ``cov_type`` the fit cannot provide (before anything is compiled)."""
    if not isinstance(cov_type, str) or cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {COV_TYPES}, got {cov_type!r}")
    if cov_type == "observed":
        return
    if prep.problem.has_prior:
        raise ValueError(
            f"cov_type={cov_type!r} is for maximum-likelihood fits; a fit with a prior uses the observed "
            "information of the log-posterior (cov_type='observed')"
        )
    shape = _loglik_shape(prep)
    if cov_type == "expected":
        why = expected_unavailable(model, prep.problem.space, prep.nobs if shape is None or len(shape) != 1 else 1)
        if why is not None:
            raise ValueError(f"cov_type='expected' {why}")
        return
    if shape is not None and len(shape) != 1:
        raise ValueError(
            f"cov_type={cov_type!r} needs per-observation scores: loglik must return one term per "
            f"observation (a vector), but it returned shape {shape}"
        )


def _loglik_shape(prep):
    """The shape of the log-likelihood at the start (traced, not compiled), or None if it fails
    (the check at the starting values then reports it)."""
    problem, space = prep.problem, prep.problem.space
    with _precision.context(prep.dtype):
        free = space.u_to_x_leaves(jnp.asarray(prep.u0, prep.dtype))
        try:
            return jax.eval_shape(lambda f: problem.loglik_terms(f, prep.fixed_leaves, prep.data), free).shape
        except Exception:
            return None


def expected_unavailable(model, space, nobs) -> str | None:
    """Why the model's expected information cannot serve this fit, or None when it can."""
    if model is None:
        return "needs a built-in model that provides fisher_information"
    if nobs is None:
        return "needs the number of observations: a per-observation loglik, or nobs="
    if any(leaf.fixed for leaf in space.leaves):
        return "needs every parameter free (the model's information covers all of them)"
    if space.k != space.m:
        return "is not available for simplex parameters (the information is on the simplex's tangent space)"
    return None


def expected_information(model, params, data, nobs, space, dtype) -> np.ndarray | None:
    """n·I₁(θ̂) in the order of the fit's names, where ``model`` provides it; else None.

    For a regression the information is conditional on the fitted design ``data["X"]``
    (Xᵀ W X / n per observation), not the population design of ``simulate``."""
    if expected_unavailable(model, space, nobs) is not None:
        return None
    design = {"X": data["X"]} if isinstance(data, dict) and "X" in data else {}
    try:
        with _precision.context(dtype):
            info = np.asarray(model.fisher_information(params, **design), dtype=np.float64)
    except NotImplementedError:
        return None
    if info.shape != (space.k, space.k):
        raise ValueError(
            f"{type(model).__name__}.fisher_information returned shape {info.shape}, expected "
            f"({space.k}, {space.k}) in the order {space.names}"
        )
    return nobs * info


def replace(inf: Inference, cov_type: str, raw, prep, expected) -> Inference:
    """``inf`` with ``cov`` and ``se`` from ``cov_type`` (diagnostics stay the observed ones)."""
    if cov_type == "expected":
        if expected is None:
            raise ValueError("cov_type='expected': the model does not implement fisher_information")
        cov = observed_inference(expected, None, np.zeros(len(expected), bool)).cov
    else:
        S = np.asarray(scores(prep, raw), dtype=np.float64)
        B = S.T @ S
        if cov_type == "opg":
            cov = observed_inference(B, raw.jacobian, raw.at_kink_z).cov
        else:
            cov = sandwich(np.asarray(raw.information_z), B, raw.jacobian, raw.at_kink_z)
    return inf._replace(cov=cov, se=np.sqrt(np.diagonal(cov)))


def sandwich(information_z, B, jacobian, at_kink_z) -> np.ndarray:
    """J A⁻¹ B A⁻¹ Jᵀ; coordinates without a defined A⁻¹ (unidentified) get NaN."""
    a_inv = observed_inference(information_z, None, at_kink_z).cov
    bad = np.isnan(np.diagonal(a_inv))
    a_inv = np.where(np.isnan(a_inv), 0.0, a_inv)
    J = None if jacobian is None else np.asarray(jacobian, dtype=np.float64)
    return to_user_coordinates(a_inv @ B @ a_inv, J, bad)


def scores(prep, raw) -> jax.Array:
    """Per-observation scores ∂ℓᵢ/∂z at the optimum, shape (n, m)."""
    space = prep.problem.space
    with _precision.context(prep.dtype):
        z = space.x_leaves_to_z(space.x_flat_to_leaves(jnp.asarray(raw.x, prep.dtype)))
        return _compiled_scores(prep.problem)(z, prep.fixed_leaves, prep.data)


@functools.lru_cache(maxsize=64)
def _compiled_scores(problem):
    space = problem.space

    def score(z, fixed_leaves, data):
        return jax.jacfwd(lambda z: problem.loglik_terms(space.z_to_x_leaves(z), fixed_leaves, data))(z)

    return jax.jit(score)
