"""fit(): one maximum-likelihood or MAP fit of a JAX log-density, with inference."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from . import _precision, covariance, models, validation
from .inference import Inference, observed_inference
from .parameters import ParameterSpace
from .problem import (
    QUICK_COMPILE_MAX_ELEMENTS,
    Problem,
    RawFit,
    compiled_loglik,
    compiled_solve,
    has_l1,
    resolve_method,
)
from .results import FitResult
from .status import Status, converged

__all__ = ["fit", "FitError", "FitWarning"]


class FitError(RuntimeError):
    """Raised by ``fit(..., throw=True)`` when the fit does not converge cleanly."""


class FitWarning(UserWarning):
    """Warned by ``fit`` when the fit does not converge cleanly."""


@dataclass
class Prepared:
    """Everything a fit needs, validated on the host, before any compiling."""

    problem: Problem
    method_name: str
    dtype: np.dtype
    u0: np.ndarray
    fixed_leaves: list
    data: object
    nobs: int | None


def prepare(
    loglik, init, data, *, constraints, prior, fixed, method, nobs, tol, max_iter, dtype, batched: bool = False
) -> Prepared:
    """Validate the arguments and build the problem. Raises ValueError on bad input."""
    loglik, init, data, constraints = models.resolve(loglik, init, data, constraints)
    if not callable(loglik):
        raise ValueError(f"loglik must be a callable loglik(params, data), got {type(loglik).__name__}")
    dtype = _precision.resolve(dtype)
    tol = validation.check_tol(tol)
    max_iter = validation.check_positive_int("max_iter", max_iter)
    nobs = validation.check_positive_int("nobs", nobs)

    constraints = validation.as_mapping("constraints", constraints)
    validation.check_constraints(constraints)
    fixed = validation.as_mapping("fixed", fixed)
    space, values = _build_space(init, constraints, fixed)
    keys = {leaf.key for leaf in space.leaves}
    validation.check_names("constraints", constraints, keys)
    validation.check_names("fixed", fixed, keys)
    if len(space.free) == 0:
        raise ValueError("fixed: every parameter is fixed, so there is nothing to fit")
    validation.check_init(space, values)
    fixed_values = validation.check_fixed(space, fixed, values)
    priors, log_prior = validation.check_priors(space, prior)
    method_name, solver = resolve_method(method, space.m, has_l1(priors))
    validation.check_data(data, values=not batched)

    problem = Problem(loglik, space, priors, log_prior, solver, tol, max_iter)
    with _precision.context(dtype):
        data = to_device(data, dtype)
        fixed_leaves = [jnp.asarray(v, dtype) for v in fixed_values]
        free_init = [jnp.asarray(v, dtype) for v, leaf in zip(values, space.leaves) if not leaf.fixed]
        u0 = np.asarray(space.x_leaves_to_u(free_init))
    return Prepared(problem, method_name, dtype, u0, fixed_leaves, data, nobs)


def check_at_start(prep: Prepared, data_one, finite: bool = True) -> int | None:
    """Evaluate the log-likelihood once at the start (eagerly): its shape and finiteness
    (with ``finite=False`` a non-finite value is left for the solver to report).

    Returns the number of observations (the length of a per-observation vector, else the
    ``nobs`` given)."""
    problem, space = prep.problem, prep.problem.space
    with _precision.context(prep.dtype):
        free = space.u_to_x_leaves(jnp.asarray(prep.u0, prep.dtype))
        validation.loglik_output(compiled_loglik(problem), free, prep.fixed_leaves, data_one)
        try:
            terms = compiled_loglik(problem)(free, prep.fixed_leaves, data_one)
        except Exception as err:  # the user's function failed: name it
            raise ValueError(f"loglik failed at the starting values: {type(err).__name__}: {err}") from err
        shape = jnp.shape(terms)
        values = np.asarray(terms)
        if finite and not np.all(np.isfinite(values)):
            raise ValueError(validation.not_finite_at_start(values, data_one))
        prior_value = np.asarray(problem.log_prior_value(free, prep.fixed_leaves, smooth=False))
        if prior_value.ndim != 0:
            raise ValueError(f"prior: the log-prior must return a scalar, got shape {prior_value.shape}")
        if finite and not np.isfinite(prior_value):
            raise ValueError("prior: the log-prior is not finite at the starting values (init)")
    if len(shape) == 1:
        if prep.nobs is not None and prep.nobs != shape[0]:
            raise ValueError(f"nobs={prep.nobs} but loglik returned {shape[0]} per-observation terms")
        return int(shape[0])
    return prep.nobs


def fit(
    loglik,
    init,
    data=None,
    *,
    constraints=None,
    prior=None,
    fixed=None,
    method="auto",
    nobs=None,
    tol=None,
    max_iter=None,
    dtype=None,
    throw=False,
    cov_type="observed",
) -> FitResult:
    """Maximize ``sum(loglik(params, data)) + log_prior(params)`` over ``params``.

    ``loglik`` may be a built-in model (``jm.fit(jm.models.poisson(), data)``): its
    log-likelihood, starting values and constraints are then used.

    ``loglik(params, data)`` returns the total log-likelihood or, preferably, one term per
    observation. Without a prior this is the MLE; with one, the posterior mode in the
    user's parameterization. Runs in float64 unless ``dtype=jnp.float32``. A fit that does
    not converge cleanly warns (``FitWarning``), or raises ``FitError`` with ``throw=True``.

    ``cov_type`` picks the covariance behind ``se`` and ``cov``: ``"observed"`` (inverse
    observed information), ``"robust"`` (Huber–White sandwich), ``"opg"`` (outer product
    of per-observation scores) or ``"expected"`` (inverse Fisher information of a built-in
    model); see ``jaxmle.covariance``.
    """
    model = loglik if isinstance(loglik, models.Model) else None
    prep = prepare(
        loglik,
        init,
        data,
        constraints=constraints,
        prior=prior,
        fixed=fixed,
        method=method,
        nobs=nobs,
        tol=tol,
        max_iter=max_iter,
        dtype=dtype,
    )
    covariance.check(cov_type, prep, model)
    nobs = check_at_start(prep, prep.data)
    with _precision.context(prep.dtype):
        quick = data_size(prep.data) <= QUICK_COMPILE_MAX_ELEMENTS
        solve = compiled_solve(prep.problem, quick=quick)
        raw = solve(jnp.asarray(prep.u0, prep.dtype), prep.fixed_leaves, prep.data)
        raw = jax.tree_util.tree_map(np.asarray, raw)
    result = to_result(raw, prep, nobs, cov_type=cov_type, model=model)
    if result.status != Status.CONVERGED:
        text = f"fit did not converge cleanly: {result.status.name}: {result.status.message}"
        if result.notes:
            text += " (" + "; ".join(result.notes) + ")"
        if throw:
            raise FitError(text)
        warnings.warn(text, FitWarning, stacklevel=2)
    return result


def to_result(raw: RawFit, prep: Prepared, nobs: int | None, cov_type: str = "observed", model=None) -> FitResult:
    """The host-side FitResult from one (unbatched) RawFit."""
    space = prep.problem.space
    inf = observed_inference(raw.information_z, raw.jacobian, raw.at_kink_z)
    status = final_status(raw.status, inf.positive_definite)
    status = Status(int(status))
    fixed_np = [np.asarray(v) for v in prep.fixed_leaves]
    params = space.assemble([np.asarray(v) for v in space.x_flat_to_leaves(raw.x)], fixed_np)
    expected = covariance.expected_information(model, params, prep.data, nobs, space, prep.dtype)
    if cov_type != "observed":
        inf = covariance.replace(inf, cov_type, raw, prep, expected)
    se = space.assemble(space.x_flat_to_leaves(inf.se), [np.zeros_like(v) for v in fixed_np])
    return FitResult(
        params=params,
        se=se,
        cov=inf.cov,
        names=space.names,
        loglik=float(raw.loglik),
        logpost=float(raw.logpost),
        converged=bool(converged(status)),
        status=status,
        n_iter=int(raw.n_iter),
        grad_norm=float(raw.grad_norm),
        nobs=nobs,
        df=space.m,
        information=inf.information,
        method=prep.method_name,
        positive_definite=bool(inf.positive_definite),
        condition_number=float(inf.condition_number),
        has_prior=prep.problem.has_prior,
        notes=diagnostic_notes(space.names, inf),
        cov_type=cov_type,
        expected_information=expected,
        _space=space,
        _fixed_leaves=fixed_np,
        _x=raw.x,
        _prep=prep,
        _u=np.asarray(raw.u),
    )


def final_status(solver_status, positive_definite):
    """A converged solve whose information is not positive definite gets INFORMATION_NOT_PD."""
    solver_status = np.asarray(solver_status)
    return np.where(
        (solver_status == Status.CONVERGED) & ~np.asarray(positive_definite),
        int(Status.INFORMATION_NOT_PD),
        solver_status,
    )


def diagnostic_notes(names: list[str], inf: Inference) -> list[str]:
    """Human-readable notes: unidentified combinations, ill-conditioning, L1 zeros."""
    notes = []
    condition = float(inf.condition_number)
    if not bool(inf.finite):
        notes.append("the observed information has NaN or infinite entries at the estimate: no SE is defined")
    elif bool(inf.indefinite):
        combo = describe_direction(names, np.asarray(inf.null_direction))
        notes.append(f"the log-density curves upward along {combo}: the estimate is a saddle point, not a maximum")
    elif not bool(inf.positive_definite) or condition > 1e8:
        combo = describe_direction(names, np.asarray(inf.null_direction))
        verb = "is not identified" if not bool(inf.positive_definite) else "is barely identified"
        notes.append(f"{combo} {verb} by the data (condition number {condition:.3g})")
    kinks = [n for n, k in zip(names, np.asarray(inf.at_kink)) if k]
    if kinks:
        notes.append(f"{', '.join(kinks)} exactly at the centre of a Laplace prior (L1 zero): no SE is defined there")
    return notes


def describe_direction(names: list[str], direction: np.ndarray, tol: float = 0.05) -> str:
    """A direction as a signed combination, e.g. 'b[3] - b[1] - b[2]'.

    The largest loading (the last one among near-ties) is scaled to +1 and written first,
    then the other loadings above ``tol`` in parameter order."""
    if not np.all(np.isfinite(direction)) or not np.any(direction):
        return "some parameter combination"
    size = np.abs(direction)
    lead = int(np.flatnonzero(size >= (1 - 1e-3) * size.max())[-1])
    d = direction / direction[lead]
    text = names[lead]
    for i in range(len(d)):
        if i == lead or abs(d[i]) < tol:
            continue
        coef = "" if abs(abs(d[i]) - 1) < 1e-3 else f"{abs(d[i]):.3g}*"
        text += f" {'-' if d[i] < 0 else '+'} {coef}{names[i]}"
    return text


def _build_space(init, constraints, fixed) -> tuple[ParameterSpace, list]:
    from .parameters import build_space

    try:
        return build_space(init, constraints, fixed)
    except ValueError as err:
        if str(err).startswith("init"):
            raise
        raise ValueError(f"init: {err}") from err


def data_size(data) -> int:
    return sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(data))


def to_device(data, dtype):
    """Floating leaves of ``data`` to ``dtype``; others as they are."""

    def convert(leaf):
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.floating):
            return jnp.asarray(arr, dtype)
        return jnp.asarray(arr)

    return jax.tree_util.tree_map(convert, data)
