"""BatchFitResult: many fits of one model, every field with a leading replicate axis."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from .inference import Inference
from .parameters import ParameterSpace
from .results import FitResult, bic_penalty, element_statistics, fmt_number, import_pandas, wald_z
from .status import Status

__all__ = ["BatchFitResult"]


@dataclass
class BatchFitResult:
    """The fits of a batch: the fields of ``FitResult``, each with a leading replicate axis.

    ``params`` and ``se`` are pytrees shaped like ``init`` with that axis in front; ``cov``
    and ``information`` are ``(reps, k, k)``; ``status`` holds ``Status`` codes (one per
    fit) and ``converged`` is true for CONVERGED and INFORMATION_NOT_PD, as in ``FitResult``.
    A fit whose data were not finite has status INVALID_DATA and NaN estimates. ``result[i]``
    is the ``FitResult`` of replicate ``i``.
    """

    params: Any
    se: Any
    cov: np.ndarray
    names: list[str]
    loglik: np.ndarray
    logpost: np.ndarray
    converged: np.ndarray
    status: np.ndarray
    n_iter: np.ndarray
    grad_norm: np.ndarray
    nobs: int | None
    df: int
    information: np.ndarray
    method: str
    positive_definite: np.ndarray
    condition_number: np.ndarray
    has_prior: bool
    null_direction: np.ndarray = field(repr=False)
    at_kink: np.ndarray = field(repr=False)
    estimates: np.ndarray = field(repr=False)  # (reps, k) in the order of names
    cov_type: str = "observed"  # the covariance behind se and cov, as in FitResult
    clusters: int | None = None  # with cov_type="cluster": the number of clusters G
    _space: ParameterSpace | None = field(default=None, repr=False)
    _fixed_leaves: list | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.status.shape[0])

    @property
    def aic(self) -> np.ndarray:
        return 2.0 * self.df - 2.0 * self.loglik

    @property
    def bic(self) -> np.ndarray:
        return bic_penalty(self.df, self.nobs, "pass nobs= to fit_batch") - 2.0 * self.loglik

    @property
    def standard_errors(self) -> np.ndarray:
        """``(reps, k)`` standard errors in the order of ``names``."""
        return np.sqrt(np.diagonal(self.cov, axis1=-2, axis2=-1))

    def status_counts(self) -> dict[Status, int]:
        """How many fits ended with each status."""
        counts = Counter(int(s) for s in self.status)
        return {Status(code): counts[code] for code in sorted(counts)}

    def conf_int(self, level: float = 0.95):
        """Wald intervals, a pytree like ``params`` whose leaves gain a trailing axis of 2."""
        q = wald_z(level)
        return jax.tree_util.tree_map(lambda p, s: np.stack([p - q * s, p + q * s], axis=-1), self.params, self.se)

    def __getitem__(self, i: int) -> FitResult:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"index a BatchFitResult with an integer replicate number, got {type(i).__name__}")
        if not -len(self) <= i < len(self):
            raise IndexError(
                f"replicate index {i} is out of range: the batch has {len(self)} fits (0 to {len(self) - 1})"
            )
        i = int(i) % len(self)
        from .fit import diagnostic_notes

        inf = Inference(
            self.information[i],
            self.cov[i],
            self.standard_errors[i],
            self.positive_definite[i],
            self.condition_number[i],
            self.null_direction[i],
            self.at_kink[i],
        )
        status = Status(int(self.status[i]))
        pick = lambda tree: jax.tree_util.tree_map(lambda a: np.asarray(a[i]), tree)  # noqa: E731
        return FitResult(
            params=pick(self.params),
            se=pick(self.se),
            cov=self.cov[i],
            names=self.names,
            loglik=float(self.loglik[i]),
            logpost=float(self.logpost[i]),
            converged=bool(self.converged[i]),
            status=status,
            n_iter=int(self.n_iter[i]),
            grad_norm=float(self.grad_norm[i]),
            nobs=self.nobs,
            df=self.df,
            information=self.information[i],
            method=self.method,
            positive_definite=bool(self.positive_definite[i]),
            condition_number=float(self.condition_number[i]),
            has_prior=self.has_prior,
            cov_type=self.cov_type,
            clusters=self.clusters,
            notes=[] if status == Status.INVALID_DATA else diagnostic_notes(self.names, inf),
            _space=self._space,
            _fixed_leaves=self._fixed_leaves,
            _x=self.estimates[i],
        )

    def summary(self) -> str:
        """Counts of each status, then the distribution of each estimate over the converged fits."""
        reps = len(self)
        lines = [f"jaxmle batch of {reps} fits    method: {self.method}    converged: {int(self.converged.sum())}"]
        for status, count in self.status_counts().items():
            lines.append(f"  {status.name:<20} {count:>9}  ({100.0 * count / reps:5.1f}%)  {status.message}")
        ok = self.converged
        head = ["name", "mean", "SD", "2.5%", "median", "97.5%", "mean SE"]
        rows = []
        for j, name in enumerate(self.names):
            est = self.estimates[ok, j]
            se = self.standard_errors[ok, j]
            if est.size:
                q = np.quantile(est, [0.025, 0.5, 0.975])
                sd = np.std(est, ddof=1) if est.size > 1 else math.nan
                se_ok = se[np.isfinite(se)]
                values = [est.mean(), sd, *q, se_ok.mean() if se_ok.size else math.nan]
            else:
                values = [math.nan] * 6
            rows.append([name] + [fmt_number(v) for v in values])
        lines.append("estimates over the converged fits:")
        lines += _table(head, rows)
        return "\n".join(lines)

    def to_frame(self, level: float = 0.95):
        """A long pandas DataFrame: one row per replicate and free element (replicate by
        replicate, elements in the order of ``names``). Columns: ``replicate``, ``name``, the
        statistics of ``FitResult.to_frame`` (``element_statistics``: estimate, se, z, p and
        the Wald interval lower, upper; for MAP fits mode, sd and the credible interval),
        the replicate's ``status`` (its name) and ``converged``. ``frame.attrs["level"]``
        holds the level. Needs pandas (``jaxmle[frame]``)."""
        pd = import_pandas("BatchFitResult.to_frame")
        reps, k = self.estimates.shape
        stats = element_statistics(self.estimates, self.standard_errors, level, posterior=self.has_prior)
        codes, inverse = np.unique(np.asarray(self.status), return_inverse=True)
        frame = pd.DataFrame(
            {
                "replicate": np.repeat(np.arange(reps), k),
                "name": pd.Categorical.from_codes(np.tile(np.arange(k), reps), self.names),
                **{key: values.reshape(-1) for key, values in stats.items()},
                "status": pd.Categorical.from_codes(
                    np.repeat(inverse.reshape(-1), k), [Status(int(c)).name for c in codes]
                ),
                "converged": np.repeat(np.asarray(self.converged, dtype=bool), k),
            }
        )
        frame.attrs["level"] = level
        return frame

    def __str__(self) -> str:
        return self.summary()


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A plain box table (first column left-aligned, the others right-aligned)."""
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    rule = lambda a, b, c: a + b.join("─" * (w + 2) for w in widths) + c  # noqa: E731
    out = [
        rule("┌", "┬", "┐"),
        "│" + "│".join(" " + h.center(w) + " " for h, w in zip(head, widths, strict=True)) + "│",
    ]
    out.append(rule("├", "┼", "┤"))
    for row in rows:
        cells = [" " + row[0].ljust(widths[0]) + " "] + [
            " " + c.rjust(w) + " " for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        out.append("│" + "│".join(cells) + "│")
    out.append(rule("└", "┴", "┘"))
    return out
