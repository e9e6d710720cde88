"""Per-replicate result arrays, filled chunk by chunk, and the ``BatchFitResult`` built from them."""

from __future__ import annotations

import numpy as np

from .. import covariance
from ..batch_results import BatchFitResult
from ..fit import Prepared
from ..status import converged


class Outputs:
    """Preallocated per-replicate result arrays, filled chunk by chunk."""

    def __init__(self, reps: int, k: int):
        nan = lambda *shape: np.full((reps, *shape), np.nan)  # noqa: E731
        self.arrays = {
            "estimates": nan(k),
            "loglik": nan(),
            "logpost": nan(),
            "status": np.zeros(reps, np.int8),
            "n_iter": np.zeros(reps, np.int32),
            "grad_norm": nan(),
            "cov": nan(k, k),
            "information": nan(k, k),
            "positive_definite": np.zeros(reps, bool),
            "condition_number": nan(),
            "null_direction": nan(k),
            "at_kink": np.zeros((reps, k), bool),
        }
        self.done = np.zeros(reps, bool)

    def put(self, index: np.ndarray, arrays: dict) -> None:
        for name, a in arrays.items():
            self.arrays[name][index] = a
        self.done[index] = True

    def result(self, prep: Prepared, nobs, cov_type: str = "observed") -> BatchFitResult:
        problem = prep.problem
        clusters = covariance.cluster_count(prep.clusters)
        return batch_result(
            self.arrays, problem.space, prep.fixed_leaves, nobs, prep.method_name, problem.has_prior, cov_type, clusters
        )


def batch_result(
    a: dict, space, fixed_leaves, nobs, method: str, has_prior: bool, cov_type: str = "observed", clusters=None
) -> BatchFitResult:
    """The BatchFitResult of the per-replicate arrays ``a`` (those of ``Outputs``), with the
    parameters ``space``, the values of the fixed leaves and the fits' settings (``clusters``:
    the number of clusters of a cluster covariance)."""
    reps = len(a["status"])
    fixed = [np.asarray(v) for v in fixed_leaves]
    se_flat = np.sqrt(np.diagonal(a["cov"], axis1=-2, axis2=-1))
    status = a["status"]
    return BatchFitResult(
        params=batched_params(space, a["estimates"], fixed, reps),
        se=batched_params(space, se_flat, [np.zeros_like(v) for v in fixed], reps, fill=0.0),
        cov=a["cov"],
        names=space.names,
        loglik=a["loglik"],
        logpost=a["logpost"],
        converged=converged(status),
        status=status,
        n_iter=a["n_iter"],
        grad_norm=a["grad_norm"],
        nobs=nobs,
        df=space.m,
        information=a["information"],
        method=method,
        positive_definite=a["positive_definite"],
        condition_number=a["condition_number"],
        has_prior=has_prior,
        null_direction=a["null_direction"],
        at_kink=a["at_kink"],
        estimates=a["estimates"],
        cov_type=cov_type,
        clusters=clusters,
        _space=space,
        _fixed_leaves=fixed,
    )


def batched_params(space, flat: np.ndarray, fixed_leaves: list, reps: int, fill: float | None = None):
    """The params pytree from ``(reps, k)`` flat values, every leaf with the replicate axis
    (held elements at their values, or ``fill``, see ``Leaf.full``)."""
    fixed = [np.broadcast_to(v, (reps, *v.shape)) for v in fixed_leaves]
    return space.assemble(space.x_flat_to_leaves(np.asarray(flat), fill), fixed)
