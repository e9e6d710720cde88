"""fit(): one maximum-likelihood or MAP fit of a JAX log-density, with inference."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from . import _precision, covariance, models, multistart, random_effects, validation, verdict
from .inference import Inference, observed_inference
from .parameters import ParameterSpace
from .problem import (
    Problem,
    RawFit,
    compiled_loglik,
    compiled_loglik64,
    compiled_solve,
    has_l1,
    resolve_method,
)
from .results import FitResult
from .status import Status, converged
from .xla_options import QUICK_COMPILE_MAX_ELEMENTS

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
    #: for cov_type="cluster": the cluster of each observation, codes 0..G-1 (``covariance.check``)
    clusters: np.ndarray | None = None


def prepare(
    loglik,
    init,
    data,
    *,
    constraints,
    prior,
    fixed,
    method,
    nobs,
    tol,
    max_iter,
    dtype,
    batched: bool = False,
    labels=None,
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
    space = validation.with_element_constraints(space, constraints)
    validation.check_names("fixed", fixed, keys)
    space = space.with_labels(validation.check_labels(space, labels))
    space, fixed_values = validation.check_fixed(space, fixed, values)
    if len(space.free) == 0:
        raise ValueError("fixed: every parameter is fixed, so there is nothing to fit")
    validation.check_init(space, values)
    priors, log_prior = validation.check_priors(space, prior)
    method_name, solver = resolve_method(method, space.m, has_l1(priors))
    validation.check_data(data, values=not batched)

    problem = Problem(loglik, space, priors, log_prior, solver, tol, max_iter)
    with _precision.context(dtype):
        data = _precision.to_device(data, dtype)
        fixed_leaves = [jnp.asarray(v, dtype) for v in fixed_values]
        free_init = [jnp.asarray(v, dtype) for v, leaf in zip(values, space.leaves) if not leaf.fixed]
        u0 = np.asarray(space.x_leaves_to_u(free_init))
    return Prepared(problem, method_name, dtype, u0, fixed_leaves, data, nobs)


def check_at_start(prep: Prepared, data_one, finite: bool = True) -> int | None:
    """Evaluate the log-likelihood once at the start (eagerly): its shape and finiteness
    (with ``finite=False`` a non-finite value is left for the solver to report); of a
    Laplace marginal, the joint density where the inner solve starts (``compiled_loglik``).

    Returns the number of observations (the length of a per-observation vector, else the
    ``nobs`` given; always the ``nobs`` given for a marginal, a single value)."""
    problem, space = prep.problem, prep.problem.space
    with _precision.context(prep.dtype):
        free = space.u_to_x_leaves(jnp.asarray(prep.u0, prep.dtype))
        low_precision = check_traced_loglik(problem, free, prep, data_one)
        try:
            terms = compiled_loglik(problem)(free, prep.fixed_leaves, data_one)
        except Exception as err:  # the user's function failed: name it
            raise ValueError(f"loglik failed at the starting values: {type(err).__name__}: {err}") from err
        _precision.warn_low_precision_constants("loglik", low_precision)
        shape = jnp.shape(terms)
        values = np.asarray(terms)
        if finite and not np.all(np.isfinite(values)):
            raise ValueError(validation.not_finite_at_start(values, data_one))
        prior_value = np.asarray(problem.log_prior_value(free, prep.fixed_leaves, smooth=False))
        if prior_value.ndim != 0:
            raise ValueError(f"prior: the log-prior must return a scalar, got shape {prior_value.shape}")
        if finite and not np.isfinite(prior_value):
            raise ValueError("prior: the log-prior is not finite at the starting values (init)")
    if len(shape) == 1 and not random_effects.is_marginal(problem.loglik):
        if prep.nobs is not None and prep.nobs != shape[0]:
            raise ValueError(f"nobs={prep.nobs} but loglik returned {shape[0]} per-observation terms")
        return int(shape[0])
    return prep.nobs


def check_traced_loglik(problem: Problem, free, prep: Prepared, data_one) -> list[tuple[int, ...]]:
    """Check what ``loglik`` returns (``validation.loglik_output``) and find the shapes of
    the constants narrower than the fit's precision that it captures: traced once per
    problem and argument shapes (tracing on every fit would defeat the compile cache,
    since tracing caches do not outlive a float64 scope, see ``_precision``)."""
    args = (free, prep.fixed_leaves, data_one)
    leaves, tree = jax.tree_util.tree_flatten(args)
    key = (problem, prep.dtype, tree, tuple((np.shape(a), np.dtype(jnp.result_type(a)).str) for a in leaves))
    if key not in _CAPTURED:
        validation.loglik_output(compiled_loglik(problem), *args)
        constants = _precision.captured_constants(compiled_loglik(problem).trace(*args).jaxpr)
        if prep.dtype == np.float64 and _precision.captures_numpy(_precision.low_precision(constants, prep.dtype)):
            # the caller's float32 program holds JAX's conversion of an array loglik captures:
            # drop every reference to that conversion, then trace again
            del constants
            _precision.clear_tracing_caches()
            constants = _precision.captured_constants(compiled_loglik(problem).trace(*args).jaxpr)
        if not _precision.captures_numpy(constants):
            _precision.captures_no_numpy(problem.loglik)
        if len(_CAPTURED) >= 128:
            _CAPTURED.pop(next(iter(_CAPTURED)))
        _CAPTURED[key] = [tuple(np.shape(c)) for c in _precision.low_precision(constants, prep.dtype)]
    return _CAPTURED[key]


#: per (problem, precision, argument shapes): the low-precision constants found
_CAPTURED: dict = {}


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
    starts=None,
    seed=0,
    random=None,
    nagq=1,
    labels=None,
    groups=None,
) -> FitResult:
    """Maximize ``sum(loglik(params, data)) + log_prior(params)`` over ``params``.

    ``loglik`` may be a built-in model (``jm.fit(jm.models.poisson(), data)``): its
    log-likelihood, starting values and constraints are then used.

    ``loglik(params, data)`` returns the total log-likelihood or, preferably, one term per
    observation. Without a prior this is the MLE; with one, the posterior mode in the
    user's parameterization. Runs in float64 unless ``dtype=jnp.float32``. A fit that does
    not converge cleanly warns (``FitWarning``), or raises ``FitError`` with ``throw=True``.

    ``cov_type`` picks the covariance behind ``se`` and ``cov``: ``"observed"`` (inverse
    observed information), ``"robust"`` (Huber–White sandwich, HC0), ``"HC1"`` (the sandwich
    times n/(n−k)), ``"cluster"`` (cluster-robust sandwich over ``groups``, one cluster label
    per observation, times G/(G−1)·(n−1)/(n−k)), ``"opg"`` (outer product of
    per-observation scores) or ``"expected"`` (inverse Fisher information of a built-in
    model); see ``jaxmle.covariance``.

    ``starts=K`` (with ``seed``) or a pytree of starting points with a leading axis: every
    start in one vmapped solve, the best verified maximum refitted and returned, and the
    distinct local maxima found in ``result.optima`` (see ``jaxmle.multistart``).

    ``converged`` is true only at a verified local maximum: the gradient test holds and the
    observed information is positive definite, whatever the solver (see ``jaxmle.verdict``).

    ``fixed={name: value}`` holds a whole parameter at ``value``; ``fixed={name: {index:
    value, ...}}`` holds those elements of a vector or array parameter (an int index for a
    vector, a tuple of ints for an array; to hold a boolean ``mask``, pass
    ``dict(zip(map(tuple, np.argwhere(mask)), values[mask]))``) and frees the rest, which is
    the fit of the restricted model θ_j = c_j. Held values may sit on a constraint's limit
    (closed support). Held elements, like fixed parameters, count 0 in ``df`` (so AIC and
    BIC), are left out of ``names``, ``cov``, the summary and ``to_frame()``, and have
    ``se`` 0 and the interval [value, value]; a prior on the parameter covers its free
    elements. Elements of a simplex or ordered parameter are not free separately and cannot
    be held one by one. Changing a held element's value compiles the fit anew.

    ``random=[names]``: those entries of ``init`` are random effects, integrated out of the
    joint log-density ``loglik`` by the Laplace approximation (``jaxmle.random_effects``):
    ``loglik`` is then the marginal log-likelihood, ``df`` counts the outer parameters, and
    ``params``/``se`` also hold the conditional modes and their prediction SEs. ``nagq=K``
    (up to 25, one scalar random effect per group) integrates by K-node adaptive
    Gauss–Hermite quadrature instead (``jaxmle.quadrature``; lme4's nAGQ).

    ``labels={"beta": ["Intercept", "x1"]}`` names the elements of vector parameters
    (``beta[Intercept]``, ``beta[x1]`` in ``names``, the summary, ``to_frame()``, profiles and
    plots); a pandas Series given as a vector's starting values names them by its index.
    """
    random_effects.check_nagq(nagq, random)
    if random is not None:
        if cov_type != "observed":
            raise ValueError(f"cov_type must be 'observed' with random effects, got {cov_type!r}")
        loglik, init = random_effects.outer_problem(loglik, init, random, constraints, fixed, prior, data, nagq=nagq)
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
        labels=labels,
    )
    prep.clusters = covariance.check(cov_type, prep, model, groups)
    nobs = check_at_start(prep, prep.data)
    if starts is not None:
        options = dict(constraints=constraints, prior=prior, fixed=fixed, method=method, nobs=nobs, tol=tol)
        options.update(max_iter=max_iter, dtype=dtype, labels=prep.problem.space.labels)
        final = dict(throw=throw, cov_type=cov_type, groups=groups)
        return fit_from_starts(loglik, init, data, prep, starts, seed, options, **final)
    with _precision.context(prep.dtype):
        quick = data_size(prep.data) <= QUICK_COMPILE_MAX_ELEMENTS
        solve = compiled_solve(prep.problem, quick=quick)
        raw = solve(jnp.asarray(prep.u0, prep.dtype), prep.fixed_leaves, prep.data)
        raw = jax.tree_util.tree_map(np.asarray, raw)
    if prep.dtype == np.float32:
        raw = raw._replace(**dict(zip(("loglik", "logpost"), float64_loglik(prep, raw.x, data))))
    result = to_result(raw, prep, nobs, cov_type=cov_type, model=model)
    if random_effects.is_marginal(prep.problem.loglik):
        attach_random_effects(result, raw.modes)
    report_verdict(result, throw, stacklevel=3)
    return result


def report_verdict(result: FitResult, throw: bool, stacklevel: int) -> None:
    """Warn (``FitWarning``), or raise ``FitError`` with ``throw``, unless the fit converged."""
    if result.status != Status.CONVERGED:
        text = f"fit did not converge cleanly: {result.status.name}: {result.status.message}"
        if result.notes:
            text += " (" + "; ".join(result.notes) + ")"
        if throw:
            raise FitError(text)
        warnings.warn(text, FitWarning, stacklevel=stacklevel)


def attach_random_effects(result: FitResult, modes=None) -> None:
    """Add the conditional modes of the random effects and their prediction SEs to the
    ``params`` and ``se`` of a fit of a Laplace marginal (``jaxmle.random_effects``);
    ``modes``: û as the fit found it, if it did."""
    prep = result._prep
    marginal = prep.problem.loglik
    with _precision.context(prep.dtype):
        prediction = random_effects.predict(
            marginal, result._space, result._x, prep.fixed_leaves, prep.data, result.cov, prep.dtype, modes
        )
    result.params = {**result.params, **prediction.modes}
    result.se = {**result.se, **prediction.se}
    result.random = marginal.random_effects.keys
    result.notes = result.notes + prediction.notes


def float64_loglik(prep: Prepared, x, data, batched: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(loglik, logpost) of a float32 fit, evaluated once in float64 at its estimate ``x``
    from the original data: a float32 sum of 10^6 terms is off by about 100 (each term
    carries float32 rounding), enough to turn a likelihood-ratio test or an AIC around."""
    with _precision.context(np.float64):
        fixed = [jnp.asarray(v, np.float64) for v in prep.fixed_leaves]
        values = compiled_loglik64(prep.problem, batched)(
            jnp.asarray(x, np.float64), fixed, _precision.to_device(data, np.float64)
        )
        return tuple(np.asarray(v) for v in values)


def fit_from_starts(loglik, init, data, prep: Prepared, starts, seed, options: dict, **final) -> FitResult:
    """``fit`` from several starts (``jaxmle.multistart``): all of them as one batch over
    the same data, then the best refitted singly, with the distinct maxima attached."""
    from .batch import fit_batch

    # a built-in model's pieces, so that the batch reads the stacked data as data
    plain, init, data, constraints = models.resolve(loglik, init, data, options["constraints"])
    inits, k = multistart.start_inits(prep, init, starts, seed)
    stacked = jax.tree_util.tree_map(lambda a: np.broadcast_to(np.asarray(a), (k,) + np.shape(a)), data)
    batched_loglik = plain
    if data is None:  # a batch needs a replicate axis: give it an unused one
        stacked = np.zeros(k)
        batched_loglik = lambda params, _: plain(params, None)  # noqa: E731
    batch_options = options | {"constraints": constraints}
    batch = fit_batch(batched_loglik, inits, stacked, batched_init=True, progress=False, **batch_options)
    best = batch[multistart.best_start(batch)].params
    result = fit(loglik, best, data, **options, **final)
    result.optima = multistart.distinct_optima(batch)
    return result


def to_result(raw: RawFit, prep: Prepared, nobs: int | None, cov_type: str = "observed", model=None) -> FitResult:
    """The host-side FitResult from one (unbatched) RawFit."""
    space = prep.problem.space
    inf = observed_inference(raw.information_z, raw.jacobian, raw.at_kink_z, grad_z=raw.grad_z)
    status = Status(int(verdict.final_status(raw.status, inf, raw.logpost, prep.problem.verify_tol(prep.dtype))))
    inf = verdict.off_interior_inference(inf, status, raw, space)
    fixed_np = [np.asarray(v) for v in prep.fixed_leaves]
    params = space.assemble([np.asarray(v) for v in space.x_flat_to_leaves(raw.x)], fixed_np)
    expected = covariance.expected_information(model, params, prep.data, nobs, space, prep.dtype)
    if cov_type != "observed":
        inf = covariance.replace(inf, cov_type, raw, prep, expected)
    se = space.assemble(space.x_flat_to_leaves(inf.se, fill=0.0), [np.zeros_like(v) for v in fixed_np])
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
        notes=verdict.status_notes(status, space, raw.u, raw.grad_z) + diagnostic_notes(space.names, inf),
        cov_type=cov_type,
        clusters=covariance.cluster_count(prep.clusters),
        expected_information=expected,
        _space=space,
        _fixed_leaves=fixed_np,
        _x=raw.x,
        _prep=prep,
        _u=np.asarray(raw.u),
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
        notes.append(
            f"{verdict.join_names(kinks)} exactly at the centre of a Laplace prior (L1 zero): no SE is defined there"
        )
    return notes


def describe_direction(names: list[str], direction: np.ndarray, tol: float = 0.05) -> str:
    """A direction as a signed combination, e.g. 'b[3] - b[1] - b[2]'.

    The largest loading (the last one among near-ties) is scaled to +1 and written first,
    then the other loadings above ``tol`` in parameter order: at most the
    ``verdict.NAMES_SHOWN`` largest of them, then how many more terms there are."""
    if not np.all(np.isfinite(direction)) or not np.any(direction):
        return "some parameter combination"
    size = np.abs(direction)
    lead = int(np.flatnonzero(size >= (1 - 1e-3) * size.max())[-1])
    d = direction / direction[lead]
    text = names[lead]
    others = [i for i in range(len(d)) if i != lead and abs(d[i]) >= tol]
    shown = sorted(sorted(others, key=lambda i: -abs(d[i]))[: verdict.NAMES_SHOWN])
    for i in shown:
        coef = "" if abs(abs(d[i]) - 1) < 1e-3 else f"{abs(d[i]):.3g}*"
        text += f" {'-' if d[i] < 0 else '+'} {coef}{names[i]}"
    if len(others) > len(shown):
        text += f" + ... ({len(others) - len(shown)} more terms)"
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
