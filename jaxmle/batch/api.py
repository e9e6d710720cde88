"""``fit_batch``: the public entry point; validates the arguments, builds the problem and the
source of each chunk's inputs, and hands the run to ``runner``."""

from __future__ import annotations

import jax
import numpy as np

from .. import covariance, random_effects
from ..batch_results import BatchFitResult
from ..checkpoint import checkpoint_path
from ..fingerprint import run_fingerprint, tree_digest
from ..fit import check_at_start, prepare
from ..models.base import Model
from ..validation import check_support, unbatched_init_hint
from .replicates import (
    batched_u0,
    init_has_batch_axis,
    invalid_replicates,
    model_inits,
    replace_invalid,
    replicate_count,
    take,
)
from .runner import run_batch

__all__ = ["fit_batch"]


def fit_batch(
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
    chunk_size=None,
    progress=None,
    checkpoint=None,
    batched_init=None,
    cov_type="observed",
    random=None,
    nagq=1,
    labels=None,
    groups=None,
) -> BatchFitResult:
    """Fit one model to many datasets: ``fit`` for every replicate, vmapped over devices.

    Arguments are those of ``fit``. Every leaf of ``data`` carries a leading replicate axis;
    ``init`` may carry one too (every leaf, or none; pass ``batched_init=True/False`` where
    that is ambiguous). With a built-in model and no ``init``, each replicate starts at the
    model's ``init`` of its own data. One failing fit never raises (so there is no ``throw``):
    its ``status`` says why. A replicate with NaN data, or data a built-in model's
    ``check_data`` refuses, gets status INVALID_DATA and NaN results; infinite data follow
    ``fit``'s rule (allowed where the log-likelihood is finite at the start, else the
    replicate ends with NONFINITE_START).

    - ``cov_type`` (and ``groups``): as in ``fit``; for ``"cluster"``, ``groups`` (one label
      per observation) is shared by all replicates. The sandwich, OPG and expected
      covariances are computed after each chunk is solved, from every replicate's own scores
      (or the model's expected information), so each replicate's SEs are those ``fit`` gives
      on its data.
    - ``random``: as in ``fit``, every replicate's random effects integrated out by the
      Laplace approximation; the results hold the outer parameters (the conditional modes
      of a replicate: ``jm.fit`` on its data). The random entries of ``init`` give the
      random effects' shapes (with ``batched_init=True``, after the replicate axis).
      ``nagq``: as in ``fit``.
    - ``labels``: names of vector elements, as in ``fit``.

    - ``chunk_size``: replicates per chunk (memory grows with it; default: the data of a
      chunk stay under 128 MB). Results do not depend on it.
    - ``progress``: a progress bar (``None``: on a terminal, shown once a run lasts 2 s).
    - ``checkpoint``: a directory. Each finished chunk is written there atomically, and a
      later call with the same arguments resumes from the chunks found (after a crash or a
      kill), redoing none of them.

    The replicate axis is split over ``jax.devices()``. On several hosts, start JAX's own
    multi-process runtime in every process before fitting, with the same arguments in each
    (every process holds, or simulates, the full data)::

        jax.distributed.initialize()          # coordinator address etc. from the cluster env
        res = jm.fit_batch(loglik, init, data, chunk_size=...)

    ``jax.devices()`` then lists the devices of every host, each process fits its share of a
    chunk, and every process receives all results; only process 0 writes the checkpoint, which
    must be on a file system all processes see.
    """
    if random is not None and cov_type != "observed":
        raise ValueError(f"cov_type must be 'observed' with random effects, got {cov_type!r}")
    checkpoint = checkpoint_path(checkpoint)
    random_effects.check_nagq(nagq, random)
    model = loglik if isinstance(loglik, Model) else None
    if model is not None and data is None:
        data, init = init, None
    if data is None:
        raise ValueError("data: fit_batch needs data whose leaves carry a leading replicate axis")
    host = jax.tree_util.tree_map(np.asarray, data)
    reps = replicate_count(host)
    check = model.check_data if model is not None else None
    invalid_all = invalid_replicates(host, check)
    valid = ~invalid_all
    if check is not None and not valid.any():
        check(take(host, 0))  # raises: no replicate is valid, so there is no model to build
    one = take(host, int(np.argmax(valid)))
    if random is not None:
        loglik, init = random_effects.outer_problem(
            loglik, init, random, constraints, fixed, prior, one, bool(batched_init), nagq
        )

    init_of_data = None
    init_host = None
    if init is None and model is not None:
        init_of_data = model.init
        init0 = model.init(one)
    elif init_has_batch_axis(init, reps, batched_init):
        init_host = jax.tree_util.tree_map(np.asarray, init)
        init0 = take(init_host, int(np.argmax(valid)))
    else:
        init0 = init
    prep = prepare(
        model or loglik,
        init0,
        one,
        constraints=constraints,
        prior=prior,
        fixed=fixed,
        method=method,
        nobs=nobs,
        tol=tol,
        max_iter=max_iter,
        dtype=dtype,
        batched=True,
        labels=labels,
    )
    prep.clusters = covariance.check(cov_type, prep, model, groups)
    if init_host is not None:
        check_support("init", prep.problem.space, jax.tree_util.tree_leaves(init_host), batched=True)
    try:
        nobs = check_at_start(prep, prep.data, finite=False)
    except ValueError as err:
        hint = unbatched_init_hint(init, reps) if init_host is None and init_of_data is None else None
        if hint is None:
            raise
        raise ValueError(f"{hint} ({err})") from err

    def source(index):
        chunk, invalid = replace_invalid(take(host, index), invalid_all[index])
        if init_host is not None:
            u0 = batched_u0(prep, take(init_host, index))
        elif init_of_data is not None:
            u0 = batched_u0(prep, model_inits(init_of_data, chunk, prep.dtype))
        else:
            u0 = np.broadcast_to(prep.u0, (len(index),) + prep.u0.shape)
        return u0, chunk, invalid

    def fingerprint():
        label = repr(model) if model is not None else getattr(loglik, "__qualname__", type(loglik).__name__)
        init_digest = tree_digest(init_host if init_host is not None else init0)
        inputs = {"data": tree_digest(host), "init": init_digest}
        return (
            run_fingerprint(prep, reps, "fit_batch", label) | inputs | covariance.fingerprint(cov_type, prep.clusters)
        )

    return run_batch(
        prep,
        nobs,
        reps,
        source,
        chunk_size=chunk_size,
        progress=progress,
        checkpoint=checkpoint,
        fingerprint=fingerprint,
        cov_type=cov_type,
        model=model,
    )


# --- the chunked, sharded run -----------------------------------------------------------------
