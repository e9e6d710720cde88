"""Covariance estimates beside the inverse observed information.

- ``"observed"``: A⁻¹, A = −∇²ℓ(θ̂) the observed information (the default).
- ``"robust"``: the Huber–White sandwich A⁻¹ B A⁻¹ with B = Σᵢ sᵢ sᵢᵀ, sᵢ = ∂ℓᵢ/∂θ the
  per-observation scores at θ̂. It stays consistent when the model is misspecified; for a
  Gaussian linear model its β block is White's HC0, (XᵀX)⁻¹ Xᵀ diag(eᵢ²) X (XᵀX)⁻¹.
- ``"HC1"``: the sandwich times n/(n−k), n observations and k free parameters, as R's
  ``sandwich(x, adjust=TRUE)`` defines it for every model (statsmodels applies it to OLS
  only). k counts every free parameter: for a Gaussian linear model with a free σ it is
  d+1, where statsmodels' and ``lm``'s HC1 count the d coefficients; hold σ fixed (the β
  block of the sandwich does not depend on its value) to get theirs.
- ``"cluster"``: the sandwich with B = Σ_g (Σ_{i∈g} sᵢ)(Σ_{i∈g} sᵢ)ᵀ over the G clusters
  given by ``groups`` (one label per observation), times G/(G−1)·(n−1)/(n−k), the
  small-sample factor statsmodels (and Stata) apply by default. It stays consistent when
  observations are correlated within clusters and independent across them.
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
from .fingerprint import tree_digest
from .inference import Inference, observed_inference, to_user_coordinates

COV_TYPES = ("observed", "robust", "HC1", "cluster", "opg", "expected")


def check(cov_type, prep, model, groups=None) -> np.ndarray | None:
    """Refuse a ``cov_type`` (or ``groups``) the fit cannot provide, before anything is
    compiled. Returns the cluster of each observation as codes 0..G−1 for
    ``cov_type="cluster"``, else None."""
    if not isinstance(cov_type, str) or cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {COV_TYPES}, got {cov_type!r}")
    if cov_type == "cluster" and groups is None:
        raise ValueError("groups: cov_type='cluster' needs groups=, one cluster label per observation")
    if cov_type != "cluster" and groups is not None:
        raise ValueError(f"groups is only used with cov_type='cluster', got cov_type={cov_type!r}")
    if cov_type == "observed":
        return None
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
        return None
    if shape is not None and len(shape) != 1:
        raise ValueError(
            f"cov_type={cov_type!r} needs per-observation scores: loglik must return one term per "
            f"observation (a vector), but it returned shape {shape}"
        )
    n, k = (None if shape is None else shape[0]), prep.problem.space.m
    if cov_type in ("HC1", "cluster") and n is not None and n <= k:
        raise ValueError(
            f"cov_type={cov_type!r}: its factor n/(n-k) needs more observations (n = {n}) than free "
            f"parameters (k = {k})"
        )
    return cluster_codes(groups, n) if cov_type == "cluster" else None


def cluster_codes(groups, n: int | None) -> np.ndarray:
    """The cluster of each observation as codes 0..G−1 (in the order of the sorted labels),
    after checking ``groups``: one dimension, one label per observation (``n``, when
    known), no missing labels and at least two clusters."""
    labels = np.asarray(groups)
    if labels.ndim != 1:
        raise ValueError(f"groups must be one-dimensional (one label per observation), got shape {labels.shape}")
    if n is not None and len(labels) != n:
        raise ValueError(f"groups has {len(labels)} labels but loglik returned {n} per-observation terms")
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        raise ValueError("groups holds NaN or infinite labels: every observation needs a cluster")
    try:
        _, codes = np.unique(labels, return_inverse=True)
    except TypeError as err:
        raise ValueError(f"groups: labels must be mutually comparable (one type), {err}") from err
    clusters = int(codes.max()) + 1 if len(codes) else 0
    if clusters < 2:
        raise ValueError(f"groups must hold at least 2 distinct clusters, got {clusters}")
    return codes.reshape(-1)


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
    if any(leaf.fixed or leaf.held for leaf in space.leaves):
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


def replace(inf: Inference, cov_type: str, raw, prep, expected, data=None) -> Inference:
    """``inf`` with ``cov`` and ``se`` from ``cov_type`` (diagnostics stay the observed ones;
    the clusters are ``prep.clusters``, from ``check``).

    ``data``: a batch's replicates, whose leaves (like those of ``raw`` and ``expected``)
    carry a leading replicate axis; by default the fit's own data."""
    if cov_type == "expected":
        if expected is None:
            raise ValueError("cov_type='expected': the model does not implement fisher_information")
        cov = observed_inference(expected, None, np.zeros(np.shape(expected)[:-1], bool)).cov
    else:
        batched = data is not None
        S = np.asarray(scores(prep, raw.x, prep.data if data is None else data, batched), dtype=np.float64)
        B = meat(S, prep.clusters)
        if cov_type == "opg":
            cov = observed_inference(B, raw.jacobian, raw.at_kink_z).cov
        else:
            factor = small_sample_factor(cov_type, S.shape[-2], prep.problem.space.m, prep.clusters)
            cov = factor * sandwich(np.asarray(raw.information_z), B, raw.jacobian, raw.at_kink_z)
    return inf._replace(cov=cov, se=np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1)))


def meat(S: np.ndarray, clusters=None) -> np.ndarray:
    """B = Σ_g (Σ_{i∈g} sᵢ)(Σ_{i∈g} sᵢ)ᵀ from scores ``S`` of shape (..., n, m), summed
    within the clusters given by codes 0..G−1; without ``clusters`` every observation is its
    own cluster, B = Σᵢ sᵢ sᵢᵀ."""
    if clusters is not None:
        order = np.argsort(clusters, kind="stable")
        starts = np.flatnonzero(np.diff(clusters[order], prepend=-1))
        S = np.add.reduceat(S[..., order, :], starts, axis=-2)
    return np.swapaxes(S, -1, -2) @ S


def fingerprint(cov_type: str, clusters) -> dict:
    """What a ``cov_type`` adds to a batch run's checkpoint fingerprint (nothing for the
    observed information, so that such runs keep the fingerprint of earlier versions)."""
    if cov_type == "observed":
        return {}
    return {"cov_type": cov_type, "groups": tree_digest(clusters)}


def cluster_count(clusters) -> int | None:
    """G, the number of clusters coded 0..G−1 by ``check`` (None without clusters)."""
    return None if clusters is None else int(clusters.max()) + 1


def small_sample_factor(cov_type: str, n: int, k: int, clusters=None) -> float:
    """The factor on the sandwich: n/(n−k) for HC1, G/(G−1)·(n−1)/(n−k) for G clusters,
    1 for the plain (HC0) sandwich."""
    if cov_type == "HC1":
        return n / (n - k)
    if cov_type == "cluster":
        G = cluster_count(clusters)
        return G / (G - 1) * (n - 1) / (n - k)
    return 1.0


def sandwich(information_z, B, jacobian, at_kink_z) -> np.ndarray:
    """J A⁻¹ B A⁻¹ Jᵀ; coordinates without a defined A⁻¹ (unidentified) get NaN."""
    a_inv = observed_inference(information_z, None, at_kink_z).cov
    bad = np.isnan(np.diagonal(a_inv, axis1=-2, axis2=-1))
    a_inv = np.where(np.isnan(a_inv), 0.0, a_inv)
    J = None if jacobian is None else np.asarray(jacobian, dtype=np.float64)
    return to_user_coordinates(a_inv @ B @ a_inv, J, bad)


def replace_batch(inf: Inference, raw, data, *, cov_type: str, prep, model, nobs) -> Inference:
    """``replace`` for a chunk of ``fit_batch``: every leaf of ``inf``, ``raw`` and ``data``
    carries a leading replicate axis; the clusters are shared by all replicates. The
    expected information is the model's, replicate by replicate, as ``fit`` computes it."""
    expected = None
    if cov_type == "expected":
        space = prep.problem.space
        fixed = [np.asarray(v) for v in prep.fixed_leaves]
        each = [
            expected_information(
                model,
                space.assemble([np.asarray(v) for v in space.x_flat_to_leaves(x)], fixed),
                jax.tree_util.tree_map(lambda a, i=i: np.asarray(a)[i], data),
                nobs,
                space,
                prep.dtype,
            )
            for i, x in enumerate(np.asarray(raw.x))
        ]
        expected = None if any(e is None for e in each) else np.stack(each)
    return replace(inf, cov_type, raw, prep, expected, data)


def scores(prep, x, data, batched: bool = False) -> jax.Array:
    """Per-observation scores ∂ℓᵢ/∂z at the estimate ``x`` (flat, the user's values), shape
    (n, m); with ``batched``, ``x`` and ``data`` carry a replicate axis: (reps, n, m)."""
    with _precision.context(prep.dtype):
        if batched:  # a chunk of host arrays (a single fit's data are already on the device)
            data = _precision.to_device(data, prep.dtype)
        return _compiled_scores(prep.problem, batched)(jnp.asarray(x, prep.dtype), prep.fixed_leaves, data)


@functools.lru_cache(maxsize=64)
def _compiled_scores(problem, batched: bool):
    space = problem.space

    def score(x, fixed_leaves, data):
        z = space.x_leaves_to_z(space.x_flat_to_leaves(x))
        return jax.jacfwd(lambda z: problem.loglik_terms(space.z_to_x_leaves(z), fixed_leaves, data))(z)

    return jax.jit(jax.vmap(score, in_axes=(0, None, 0)) if batched else score)
