"""Simulation studies: simulate many datasets from known parameters, fit them all, and measure
the estimator (bias, spread, RMSE, Wald coverage, Cramér–Rao efficiency).

Replicate ``i`` is simulated with the key ``jax.random.fold_in(jax.random.key(seed), i)``,
so its data, and hence every result, are the same whatever the chunk size, the number of
devices, or the interruptions of a checkpointed run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _precision, covariance, random_effects
from .batch.replicates import batched_u0, invalid_replicates, model_inits, replace_invalid, take
from .batch.runner import run_batch
from .batch_results import BatchFitResult, _table
from .checkpoint import checkpoint_path
from .fingerprint import program_digest, run_fingerprint, tree_digest
from .fit import check_at_start, prepare
from .models.base import Model
from .parameters import build_space
from .results import fmt_number, import_pandas, wald_z
from .shards import StudyProgress, check_shard, study_progress
from .status import Status
from .study_store import NAME, StudyDesign, design_arrays
from .validation import (
    check_constraints,
    check_like,
    check_names,
    check_positive_int,
    check_seed,
    check_simulate,
    check_support,
    parameter_values,
    with_element_constraints,
)

__all__ = ["simulation_study", "StudyResult"]


@dataclass
class StudyResult:
    """The outcome of a simulation study.

    Statistics are pytrees shaped like ``truth``, over the fits that converged (``used`` of
    ``reps``); coverage and mean SE over those with a finite SE:

    - ``bias`` = mean(θ̂) − θ, ``sd`` = SD(θ̂), ``rmse`` = √mean((θ̂ − θ)²);
    - ``mean_se``: the mean Wald standard error; ``coverage``: the share of 95% Wald
      intervals θ̂ ± 1.96·SE that contain θ;
    - ``crlb_sd``: √ of the Cramér–Rao bound, the diagonal of (n·I₁(θ))⁻¹ from the model's
      Fisher information per observation (for a custom model, the inverse of the Monte Carlo
      mean of the observed information); ``efficiency`` = CRLB variance / var(θ̂).

    ``mcse`` holds their Monte Carlo standard errors (same keys; efficiency's assumes
    normal estimates). Parameters and elements held by ``fixed`` are not estimated: their
    statistics are NaN, and the CRLB of the others treats them as known (the inverse of the
    free block of the information).
    """

    fits: BatchFitResult
    truth: Any
    n: int
    reps: int
    used: int
    bias: Any
    sd: Any
    mean_se: Any
    rmse: Any
    coverage: Any
    crlb_sd: Any
    efficiency: Any
    mcse: dict
    label: str = "model"
    crlb_source: str = "Fisher information"
    flat: dict = field(default_factory=dict, repr=False)  # name -> (k,) arrays, in the order of fits.names

    def summary(self) -> str:
        """The statistics as a table, Monte Carlo standard errors in parentheses."""
        head = ["name", "truth", "bias", "SD", "mean SE", "RMSE", "coverage", "CRLB SD", "efficiency"]
        f, e = self.flat, {k: v for k, v in self.flat.items() if k.startswith("mcse_")}
        rows = []
        for j, name in enumerate(self.fits.names):
            row = [name, fmt_number(f["truth"][j])]
            for stat in ("bias", "sd", "mean_se", "rmse", "coverage"):
                row.append(f"{_fmt4(f[stat][j])} ({_fmt_mcse(e['mcse_' + stat][j])})")
            row.append(_fmt4(f["crlb_sd"][j]))
            row.append(f"{_fmt4(f['efficiency'][j])} ({_fmt_mcse(e['mcse_efficiency'][j])})")
            rows.append(row)
        removed = {s: c for s, c in self.fits.status_counts().items() if s != Status.CONVERGED}
        counts = ", ".join(f"{s.name}: {c}" for s, c in removed.items()) or "none"
        lines = [
            f"simulation study: {self.label}    n = {self.n}    reps = {self.reps}    converged: {self.used}",
            f"left out of the statistics (not a verified maximum): {counts}",
            f"Monte Carlo standard errors in parentheses; coverage of the 95% Wald interval{self._se_kind()}; "
            f"CRLB from the {self.crlb_source}",
        ]
        undefined = not all(np.isfinite(v).all() for v in e.values())
        return "\n".join(lines + _table(head, rows) + ([MCSE_UNDEFINED] if undefined else []))

    def _se_kind(self) -> str:
        """Which covariance the SEs come from, where it is not the observed information."""
        if self.fits.cov_type == "observed":
            return ""
        over = f" over {self.fits.clusters} clusters" if self.fits.clusters is not None else ""
        return f" (SEs: {self.fits.cov_type}{over})"

    def to_frame(self):
        """A pandas DataFrame, one row per parameter element, indexed by ``fits.names``, with
        the study's statistics as columns (``truth``, ``bias``, ``sd``, ``mean_se``, ``rmse``,
        ``coverage``, ``crlb_sd``, ``efficiency``) and their Monte Carlo SEs (``mcse_bias``
        and so on; see the class). ``frame.attrs`` holds ``n``, ``reps`` and ``used``. Needs
        pandas (``jaxmle[frame]``)."""
        pd = import_pandas("StudyResult.to_frame")
        frame = pd.DataFrame(self.flat, index=pd.Index(self.fits.names, name="name"))
        frame.attrs.update(n=self.n, reps=self.reps, used=self.used)
        return frame

    def __str__(self) -> str:
        return self.summary()

    def plot(self, path=None):
        """Histogram of each estimate against its asymptotic normal N(θ, CRLB) (matplotlib).

        Returns the figure; saves it to ``path`` when given."""
        from .plotting import plot_study

        return plot_study(self, path)


def simulation_study(
    model=None,
    truth=None,
    n=None,
    reps=None,
    *,
    seed,
    simulate=None,
    loglik=None,
    init=None,
    constraints=None,
    fixed=None,
    method="auto",
    tol=None,
    max_iter=None,
    dtype=None,
    chunk_size=None,
    checkpoint=None,
    progress=None,
    random=None,
    nagq=1,
    shard=None,
    cov_type="observed",
    groups=None,
    labels=None,
) -> StudyResult | StudyProgress:
    """Simulate ``reps`` datasets of size ``n`` from ``truth``, fit each, and summarize.

    ``model`` is a built-in model (``jm.models.poisson()``), or pass ``simulate(key, params, n)``
    and ``loglik(params, data)`` for a custom one (starting values: ``init``, else ``truth``).
    ``chunk_size``, ``checkpoint`` and ``progress`` are those of ``fit_batch``, and ``fixed``
    (whole parameters, or elements as ``{index: value}``) that of ``fit``.

    ``random=[names]``: ``loglik`` is a joint log-density whose random effects (those
    entries of ``init``, which then must be given) are integrated out of every fit by the
    Laplace approximation (``jaxmle.random_effects``), or with ``nagq`` as in ``fit``;
    ``truth`` holds the outer parameters.

    ``cov_type`` (and ``groups``, one cluster label per observation of a replicate) and
    ``labels`` are those of ``fit``: the mean SE and the coverage then judge that covariance
    (e.g. ``cov_type="HC1"`` for heteroskedastic errors).

    ``shard=(i, K)``: fit only part i of K of the replicates (``jaxmle.shards``: the chunks
    j with j mod K = i, on the grid of ``chunk_size``) into ``checkpoint``, the directory all
    K parts share, and return its ``StudyProgress``; once every part is there,
    ``jm.load_study(checkpoint)`` gives the StudyResult of one unsharded run, bit for bit.
    Every part must get the same arguments, K and chunk size (the default chunk size depends
    on the platform and the number of devices: give it where the parts run on different
    machines); a part of another run is refused. A checkpointed study keeps its design in the
    directory (``study.npz``), so that ``jm.load_study`` needs no model.
    """
    checkpoint = checkpoint_path(checkpoint)
    shard = check_shard(shard, checkpoint)
    random_effects.check_nagq(nagq, random)
    if random is not None:
        if init is None:
            raise ValueError("init: with random=, init must hold the random effects (their shapes) and the outer start")
        random_effects.check_joint(model or loglik)
    if model is not None and not isinstance(model, Model):
        raise ValueError(f"model must be a built-in model such as jm.models.poisson(), got {type(model).__name__}")
    if model is not None and (simulate is not None or loglik is not None):
        raise ValueError("simulate/loglik: give either a built-in model or simulate= and loglik=, not both")
    if model is None and not (callable(simulate) and callable(loglik)):
        raise ValueError("simulate/loglik: without a built-in model, pass both simulate= and loglik= functions")
    if truth is None:
        raise ValueError("truth: the parameter values to simulate from are required")
    n = check_positive_int("n", n, allow_none=False)
    reps = check_positive_int("reps", reps, allow_none=False)
    seed = check_seed(seed)
    simulate = model.simulate if model is not None else simulate
    dt = _precision.resolve(dtype)
    truth_host = parameter_values("truth", truth, dt)
    constraints = check_names(
        "constraints", constraints, {leaf.key for leaf in build_space(truth_host, {}, {})[0].leaves}
    )
    check_constraints(constraints)
    merged = dict((model.constraints or {}) if model is not None else {})
    merged.update(constraints)
    truth_space, truth_values = build_space(truth_host, merged, {})
    check_support("truth", with_element_constraints(truth_space, merged), truth_values)
    with _precision.context(dt):
        check_simulate(simulate, truth_host, n)
    generate = _generator(simulate, n, dt, seed, truth_host)
    one = take(generate(np.zeros(1, np.int64)), 0)
    if random is not None:
        loglik, init = random_effects.outer_problem(loglik, init, random, constraints, fixed, None, one, nagq=nagq)

    per_data_init = model is not None and init is None  # each replicate starts at model.init of its data
    if init is None:
        init = model.init(one) if model is not None else truth_host
    check_like("truth", truth_host, init, model.name if per_data_init else "init")
    prep = prepare(
        model or loglik,
        init,
        one,
        constraints=constraints,
        prior=None,
        fixed=fixed,
        method=method,
        nobs=None,
        tol=tol,
        max_iter=max_iter,
        dtype=dt,
        batched=True,
        labels=labels,
    )
    prep.clusters = covariance.check(cov_type, prep, model, groups)
    space = prep.problem.space
    truth_flat, truth_index = _flat_truth(truth_host, space)
    check = model.check_data if model is not None else None
    nobs = check_at_start(prep, prep.data, finite=False)

    def source(index):
        chunk = generate(index)
        chunk, invalid = replace_invalid(chunk, invalid_replicates(chunk, check))
        if per_data_init:
            u0 = batched_u0(prep, model_inits(model.init, chunk, dt))
        else:
            u0 = np.broadcast_to(prep.u0, (len(index),) + prep.u0.shape)
        return u0, chunk, invalid

    label = model.name if model is not None else f"{_name(simulate)} / {_name(loglik)}"
    fingerprint = lambda: (
        run_fingerprint(  # noqa: E731
            prep, reps, "simulation_study", repr(model) if model is not None else label
        )
        | {
            "n": n,
            "seed": int(seed),
            "simulate": _simulator_digest(simulate, n, dt, truth_host),
            "truth": tree_digest(truth_host),
            "first": tree_digest(one),
            "init": tree_digest(init) + ("/per-replicate" if per_data_init else ""),
        }
        | covariance.fingerprint(cov_type, prep.clusters)
    )
    design = StudyDesign(
        truth=truth_host,
        n=n,
        reps=reps,
        label=label,
        space=space,
        fixed_leaves=[np.asarray(v) for v in prep.fixed_leaves],
        method=prep.method_name,
        nobs=nobs,
        crlb_var=None if model is None else _model_crlb(model, truth_host, truth_index, n, label),
        cov_type=cov_type,
        clusters=covariance.cluster_count(prep.clusters),
    )
    fits = run_batch(
        prep,
        nobs,
        reps,
        source,
        chunk_size=chunk_size,
        progress=progress,
        checkpoint=checkpoint,
        fingerprint=fingerprint,
        shard=shard,
        attachments=_attachments(design, checkpoint, shard),
        cov_type=cov_type,
        model=model,
    )
    return study_progress(checkpoint) if shard is not None else study_result(fits, design)


def study_result(fits: BatchFitResult, design: StudyDesign) -> StudyResult:
    """The StudyResult of ``fits`` from the study ``design`` (``simulation_study`` and
    ``load_study`` both build it here)."""
    space = design.space
    truth_flat, _ = _flat_truth(design.truth, space)
    if design.crlb_var is not None:
        crlb_var, source_text = design.crlb_var, "model's Fisher information"
    else:
        ok = fits.converged & np.all(np.isfinite(fits.information), axis=(1, 2))
        total, source_text = np.mean(fits.information[ok], axis=0), "Monte Carlo mean of the observed information"
        crlb_var = np.diagonal(np.linalg.pinv(total, hermitian=True)).copy()
    flat = study_statistics(fits, truth_flat, crlb_var)
    not_estimated = [np.full(np.shape(v), np.nan) for v in design.fixed_leaves]
    tree = lambda v: space.assemble(space.x_flat_to_leaves(v, fill=np.nan), not_estimated)  # noqa: E731
    return StudyResult(
        fits=fits,
        truth=design.truth,
        n=design.n,
        reps=design.reps,
        used=int(fits.converged.sum()),
        bias=tree(flat["bias"]),
        sd=tree(flat["sd"]),
        mean_se=tree(flat["mean_se"]),
        rmse=tree(flat["rmse"]),
        coverage=tree(flat["coverage"]),
        crlb_sd=tree(flat["crlb_sd"]),
        efficiency=tree(flat["efficiency"]),
        mcse={k[5:]: tree(v) for k, v in flat.items() if k.startswith("mcse_")},
        label=design.label,
        crlb_source=source_text,
        flat=flat,
    )


def _model_crlb(model: Model, truth, truth_index: np.ndarray, n: int, label: str) -> np.ndarray:
    """The Cramér–Rao variances of the free elements (``truth_index`` among all of truth's),
    from ``n`` times the model's Fisher information per observation at ``truth``."""
    info = np.asarray(model.fisher_information(truth), dtype=float)
    size = sum(int(np.size(v)) for v in jax.tree_util.tree_leaves(truth))
    if info.shape != (size, size):
        raise ValueError(f"{label}: fisher_information returned shape {info.shape}, expected {(size, size)}")
    return np.diagonal(np.linalg.pinv(n * info[np.ix_(truth_index, truth_index)], hermitian=True)).copy()


def _attachments(design: StudyDesign, checkpoint, shard) -> dict | None:
    """What a checkpointed study keeps beside its fits (``study_store``): needed by a shard,
    kept wherever it can be stored otherwise."""
    if checkpoint is None:
        return None
    try:
        return {NAME: design_arrays(design)}
    except ValueError:
        if shard is not None:
            raise
        return None


def study_statistics(fits: BatchFitResult, truth: np.ndarray, crlb_var: np.ndarray, level: float = 0.95) -> dict:
    """Per-parameter statistics and their Monte Carlo standard errors, as ``(k,)`` arrays."""
    ok = fits.converged
    est = fits.estimates[ok]
    se = fits.standard_errors[ok]
    r = est.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        err = est - truth
        sd = np.std(est, axis=0, ddof=1) if r > 1 else np.full(truth.shape, np.nan)
        sq = err**2
        rmse = np.sqrt(sq.mean(axis=0)) if r else np.full(truth.shape, np.nan)
        has_se = np.isfinite(se)
        r_se = has_se.sum(axis=0)
        se0 = np.where(has_se, se, 0.0)
        mean_se = se0.sum(axis=0) / r_se
        sd_se = np.sqrt(np.where(has_se, (se0 - mean_se) ** 2, 0.0).sum(axis=0) / (r_se - 1))  # NaN below 2
        q = wald_z(level)
        covered = (np.abs(err) <= q * se0) & has_se
        coverage = covered.sum(axis=0) / r_se
        efficiency = crlb_var / sd**2
        return {
            "truth": truth,
            "bias": err.mean(axis=0) if r else np.full(truth.shape, np.nan),
            "sd": sd,
            "mean_se": mean_se,
            "rmse": rmse,
            "coverage": coverage,
            "crlb_sd": np.sqrt(crlb_var),
            "efficiency": efficiency,
            "mcse_bias": sd / math.sqrt(max(r, 1)),
            "mcse_sd": sd / math.sqrt(max(2 * (r - 1), 1)),
            "mcse_mean_se": sd_se / np.sqrt(r_se),
            "mcse_rmse": np.std(sq, axis=0, ddof=1) / math.sqrt(max(r, 1)) / (2 * rmse) if r > 1 else rmse * np.nan,
            "mcse_coverage": np.where(
                (coverage > 0) & (coverage < 1), np.sqrt(coverage * (1 - coverage) / r_se), np.nan
            ),
            "mcse_efficiency": efficiency * math.sqrt(2.0 / max(r - 1, 1)),
        }


def _generator(simulate: Callable, n: int, dtype, seed: int, truth) -> Callable:
    """``index -> data`` (host arrays with a leading replicate axis)."""
    fn = _compiled_simulator(simulate, n)

    def generate(index):
        with _precision.context(dtype):
            key = jax.random.key(seed)
            truth_dev = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), truth)
            out = fn(key, truth_dev, jnp.asarray(index, jnp.uint32))
            return jax.tree_util.tree_map(np.asarray, out)

    return generate


def _simulator_digest(simulate: Callable, n: int, dtype, truth) -> str:
    """The digest of the program that simulates a replicate (see ``fingerprint.program_digest``)."""
    with _precision.context(dtype):
        truth_dev = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), truth)
        index = jnp.zeros(1, jnp.uint32)
        return program_digest("simulate", _compiled_simulator(simulate, n), jax.random.key(0), truth_dev, index)


@functools.lru_cache(maxsize=32)
def _compiled_simulator(simulate: Callable, n: int):
    def one(key, truth, i):
        _precision.user_code_ran()
        return simulate(jax.random.fold_in(key, i), truth, n)

    return jax.jit(jax.vmap(one, in_axes=(None, None, 0)))


def _flat_truth(truth, space) -> tuple[np.ndarray, np.ndarray]:
    """``truth`` (checked against the parameters by ``check_like``) at the free elements of
    ``space``, as one flat vector, and their positions among all of truth's elements."""
    values, index, start = [], [], 0
    for leaf, value in zip(space.leaves, jax.tree_util.tree_leaves(truth), strict=True):
        size = int(np.prod(leaf.shape))
        if not leaf.fixed:
            values.append(leaf.free_part(np.asarray(value, float)))
            index.append(start + leaf.free_part(np.arange(size).reshape(leaf.shape)))
        start += size
    return np.concatenate(values), np.concatenate(index)


def _name(fn) -> str:
    return getattr(fn, "__qualname__", type(fn).__name__)


MCSE_UNDEFINED = (
    "n/a: no Monte Carlo SE (fewer than 2 converged fits, or a coverage of exactly 0 or 1, where the binomial "
    "estimate would be 0)"
)


def _fmt_mcse(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:.4g}"


def _fmt4(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.4g}"
