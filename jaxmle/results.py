"""FitResult: the host-side view of one fit, with inference and a printable summary."""

from __future__ import annotations

import html
import math
import numbers
import statistics
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _precision
from .inference import Delta, delta_method
from .parameters import ParameterSpace
from .status import Status

__all__ = ["FitResult", "Status"]


def normal_quantile(p: float) -> float:
    """Standard normal quantile Φ⁻¹(p) (Wichura's AS 241, through the standard library)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be strictly between 0 and 1, got {p}")
    return statistics.NormalDist().inv_cdf(p)


def wald_z(level: float) -> float:
    """The critical value z with P(|Z| <= z) = ``level``: a Wald interval is estimate ± z·SE."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    return normal_quantile(0.5 + level / 2.0)


def two_sided_p(z: np.ndarray) -> np.ndarray:
    """P(|Z| > |z|) for a standard normal Z."""
    return np.vectorize(lambda v: math.erfc(abs(v) / math.sqrt(2.0)) if np.isfinite(v) else np.nan, otypes=[float])(z)


def element_statistics(est, se, level: float, posterior: bool) -> dict[str, np.ndarray]:
    """Per-element statistics from estimates and SEs (arrays of one shape), by column.

    For an MLE: ``estimate``, ``se``, ``z`` = estimate / SE, ``p`` = P(|Z| > |z|) and the
    Wald interval ``lower``, ``upper`` = estimate ∓ z_(1+level)/2 · SE. For a posterior mode
    (a MAP fit): ``mode``, ``sd`` (the posterior SD from the curvature of the log-posterior
    at the mode) and the credible interval ``lower``, ``upper`` = mode ∓ z_(1+level)/2 · SD of
    that Gaussian approximation; no z or p."""
    est, se = np.asarray(est, dtype=float), np.asarray(se, dtype=float)
    q = wald_z(level)
    bounds = {"lower": est - q * se, "upper": est + q * se}
    if posterior:
        return {"mode": est, "sd": se, **bounds}
    with np.errstate(divide="ignore", invalid="ignore"):
        z = est / se
    return {"estimate": est, "se": se, "z": z, "p": two_sided_p(z), **bounds}


def import_pandas(caller: str):
    """pandas, imported on first use (an optional extra)."""
    try:
        import pandas
    except ImportError as err:
        raise ImportError(f"{caller} needs pandas: pip install 'jaxmle[frame]'") from err
    return pandas


@dataclass
class FitResult:
    """One fit: estimates, inference and diagnostics.

    ``se`` are Wald standard errors, the square roots of the diagonal of ``cov``, in the
    user's parameterization; ``cov`` is the inverse observed information (of the
    log-posterior for a MAP fit) unless ``fit(cov_type=...)`` chose the sandwich, the outer
    product of gradients or the inverse expected information (``cov_type`` says which).
    ``loglik`` excludes the prior, ``logpost`` includes it. ``df`` counts free parameters
    (a k-simplex counts k-1; fixed parameters count 0), and AIC = 2 df - 2 loglik,
    BIC = df log(nobs) - 2 loglik.
    """

    params: Any
    se: Any
    cov: np.ndarray
    names: list[str]
    loglik: float
    logpost: float
    converged: bool
    status: Status
    n_iter: int
    grad_norm: float
    nobs: int | None
    df: int
    information: np.ndarray
    method: str
    positive_definite: bool
    condition_number: float
    has_prior: bool
    notes: list[str] = field(default_factory=list)
    cov_type: str = "observed"
    #: with ``cov_type="cluster"``: the number of clusters G behind the covariance, else None
    clusters: int | None = None
    #: expected (Fisher) information n·I₁(θ̂) where a built-in model provides it, else None
    expected_information: np.ndarray | None = None
    _space: ParameterSpace | None = field(default=None, repr=False)
    _fixed_leaves: list | None = field(default=None, repr=False)
    _x: np.ndarray | None = field(default=None, repr=False)
    _prep: Any = field(default=None, repr=False)  # the validated problem and data, for profiling
    _u: np.ndarray | None = field(default=None, repr=False)  # the optimum in unconstrained coordinates
    #: with ``fit(..., starts=)``: the distinct local maxima found (``multistart.Optimum``), best first
    optima: list = field(default_factory=list)
    #: with ``fit(..., random=)``: the names integrated out (their modes are in ``params``)
    random: tuple = ()

    # --- information criteria -------------------------------------------------------
    @property
    def aic(self) -> float:
        return 2.0 * self.df - 2.0 * self.loglik

    @property
    def bic(self) -> float:
        advice = "the log-likelihood returned a scalar, so pass nobs= to fit"
        return bic_penalty(self.df, self.nobs, advice) - 2.0 * self.loglik

    @property
    def message(self) -> str:
        """The status message, followed by the diagnostic notes (e.g. which combination
        of parameters the data do not identify)."""
        return "; ".join([self.status.message] + self.notes)

    # --- intervals and derived quantities --------------------------------------------
    def conf_int(self, level: float = 0.95, method: str = "wald"):
        """Confidence intervals as a pytree like ``params`` whose leaves carry a trailing
        axis of 2 (lower, upper). Wald: estimate ± z_(1+level)/2 · SE. Profile: the set where
        2(ℓ̂ − ℓ_p(θ)) ≤ χ²₁(level), see ``jaxmle.profile``. A fixed parameter gets the
        degenerate interval [value, value]."""
        if method == "profile":
            from .profile import profile_conf_int

            return profile_conf_int(self, level)
        if method != "wald":
            raise ValueError(f"method must be 'wald' or 'profile', got {method!r}")
        q = wald_z(level)
        return jax.tree_util.tree_map(
            lambda p, s: np.stack([np.asarray(p) - q * np.asarray(s), np.asarray(p) + q * np.asarray(s)], axis=-1),
            self.params,
            self.se,
        )

    def profile(self, name: str, level: float = 0.95, n: int = 41):
        """The profile log-likelihood of parameter ``name`` (e.g. ``"beta[1]"``): a
        ``jaxmle.profile.Profile`` with its grid, values, interval and ``plot()``."""
        from .profile import profile

        return profile(self, name, level, n)

    def region(self, a: str, b: str, level: float = 0.95, n: int = 41):
        """The joint confidence region of two parameters: profile deviance on a grid and
        the Wald ellipse (a ``jaxmle.profile.Region`` with ``plot()``)."""
        from .profile import region

        return region(self, a, b, level, n)

    def laplace(self):
        """The Laplace approximation of the posterior (``jaxmle.laplace.LaplaceApproximation``)."""
        from .laplace import laplace

        return laplace(self)

    def delta(self, fn: Callable) -> Delta:
        """Value and delta-method SE of ``fn(params)``: Var = J cov Jᵀ, J by autodiff.

        Returns ``(value, se)``, two pytrees shaped like ``fn``'s output (the SE is NaN
        wherever the value is not finite), whose ``.cov`` is the joint covariance J cov Jᵀ of
        all the output's elements, flattened in JAX's leaf order (``inference.Delta``)."""
        space = self._space
        with _precision.context(self._x.dtype):
            fixed = [jnp.asarray(v) for v in self._fixed_leaves]

            def of_flat(x):
                return fn(space.assemble(space.x_flat_to_leaves(x), fixed))

            return delta_method(of_flat, jnp.asarray(self._x), jnp.asarray(self.cov))

    def wald_test(self, fn: Callable):
        """Joint Wald test of the restrictions ``fn(params) = 0`` (any pytree of q values):
        W = gᵀ (G cov Gᵀ)⁻¹ g with g = fn(θ̂), G = ∂g/∂θ by autodiff, referred to χ²_q
        (``jaxmle.wald``). It uses this fit's ``cov``, so its ``cov_type``."""
        from .wald import wald_test

        return wald_test(self, fn)

    # --- presentation ------------------------------------------------------------------
    def _statistics(self, level: float = 0.95) -> dict[str, np.ndarray]:
        """The table's columns in the order of ``names`` (see ``element_statistics``)."""
        se = np.sqrt(np.diag(self.cov)) if self.cov.size else np.zeros(0)
        return element_statistics(self._x, se, level, posterior=self.has_prior)

    def to_frame(self, level: float = 0.95):
        """A pandas DataFrame, one row per free element, indexed by ``names``.

        Columns: ``estimate``, ``se``, ``z``, ``p`` and the Wald interval ``lower``, ``upper``
        at ``level``; for a MAP fit ``mode``, ``sd`` (posterior SD from the curvature) and the
        credible interval ``lower``, ``upper``, with no z or p (see ``element_statistics``).
        ``frame.attrs["level"]`` holds the level. Needs pandas (``jaxmle[frame]``)."""
        pd = import_pandas("FitResult.to_frame")
        frame = pd.DataFrame(self._statistics(level), index=pd.Index(self.names, name="name"))
        frame.attrs["level"] = level
        return frame

    def _header(self) -> list[str]:
        """The fit's flags above the table; a MAP fit's speak of a posterior mode (no AIC or BIC)."""
        kind = "MAP fit (posterior mode)" if self.has_prior else "MLE fit"
        pd = "positive definite" if self.positive_definite else "NOT positive definite"
        counts = f"nobs: {self.nobs if self.nobs is not None else 'n/a'}    df: {self.df}"
        lines = [
            f"jaxmle {kind}    method: {self.method}    status: {self.status.name}",
            f"loglik: {self.loglik:.10g}" + (f"    logpost: {self.logpost:.10g}" if self.has_prior else ""),
            counts if self.has_prior else f"AIC: {self.aic:.6g}    BIC: {self._bic_text()}    {counts}",
            f"iterations: {self.n_iter}    max|grad|: {self.grad_norm:.2e}",
            f"information: {pd}, condition number {self.condition_number:.3g}",
        ]
        if self.has_prior:
            lines.append("posterior: SD from the curvature at the mode; credible intervals")
        if self.cov_type != "observed":
            over = f" over {self.clusters} clusters" if self.clusters is not None else ""
            lines.append(f"covariance: {self.cov_type}{over}")
        if self.random:
            lines.append(
                f"random effects: {', '.join(self.random)} integrated out (Laplace); loglik is the marginal; "
                "their conditional modes and prediction SEs are in params and se"
            )
        if self.status != Status.CONVERGED:
            lines.append(f"warning: {self.status.message}")
        if len(self.optima) > 1:
            found = ", ".join(f"{o.loglik:.6g} ({o.count})" for o in self.optima)
            lines.append(f"local maxima: {len(self.optima)} distinct, loglik (starts) {found}; the best is shown")
        return lines + [f"note: {n}" for n in self.notes]

    def _bic_text(self) -> str:
        if self.nobs:
            return f"{self.bic:.6g}"
        return "n/a (pass nobs=)" if self.nobs is None else "n/a (no observations)"

    def summary(self, level: float = 0.95) -> str:
        """A box table: estimate, SE, z, P>|z| and the Wald interval for each parameter; for a
        MAP fit the posterior mode, posterior SD and credible interval (``element_statistics``)."""
        stats = self._statistics(level)
        body = [[name] + _cells(stats, i) for i, name in enumerate(self.names)]
        return box_table(self._header(), _columns(level, stats), body)

    def _repr_html_(self) -> str:
        head = "".join(f"<div>{html.escape(line)}</div>" for line in self._header())
        stats = self._statistics()
        rows = "".join(
            "<tr><td>"
            + html.escape(name)
            + "</td>"
            + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(stats, i))
            + "</tr>"
            for i, name in enumerate(self.names)
        )
        cols = "".join(f"<th>{html.escape(c)}</th>" for c in _columns(0.95, stats))
        return f"<div>{head}<table><tr>{cols}</tr>{rows}</table></div>"

    def __str__(self) -> str:
        return self.summary()


_TITLES = {"estimate": "estimate", "se": "SE", "z": "z", "p": "P>|z|", "mode": "mode", "sd": "SD"}


def box_table(header: list[str], head: list[str], body: list[list[str]]) -> str:
    """A box-drawn table: the ``header`` lines (wrapped to the table's width, at least
    ``HEADER_WIDTH``) above the column titles ``head`` and the rows ``body`` (the first
    column left-aligned, the others right-aligned)."""
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    table_width = sum(widths) + 3 * len(widths) + 1
    header = _wrap(header, max(table_width - 4, HEADER_WIDTH))
    inner = max(table_width - 4, max(len(line) for line in header))
    widths[0] += inner + 4 - table_width
    out = ["┌" + "─" * (inner + 2) + "┐"]
    out += ["│ " + line.ljust(inner) + " │" for line in header]
    out.append("├" + "┬".join("─" * (w + 2) for w in widths) + "┤")
    out.append("│" + "│".join(" " + h.center(w) + " " for h, w in zip(head, widths)) + "│")
    out.append("├" + "┼".join("─" * (w + 2) for w in widths) + "┤")
    for row in body:
        cells = [" " + row[0].ljust(widths[0]) + " "] + [" " + c.rjust(w) + " " for c, w in zip(row[1:], widths[1:])]
        out.append("│" + "│".join(cells) + "│")
    out.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
    return "\n".join(out)


def _columns(level: float, stats: dict) -> list[str]:
    """Column titles of the table for the columns of ``stats``, with the interval's percentiles."""
    bounds = {"lower": f"{100 * (0.5 - level / 2):.3g}%", "upper": f"{100 * (0.5 + level / 2):.3g}%"}
    return ["name"] + [_TITLES.get(key) or bounds[key] for key in stats]


def _cells(stats: dict, i: int) -> list[str]:
    """Row ``i`` of ``stats`` as table cells."""
    return [_fmt_p(values[i]) if key == "p" else fmt_number(values[i]) for key, values in stats.items()]


#: header lines (flags, warnings, notes) wrap at the table's width, or at this many characters
#: where the table is narrower, instead of stretching the name column
HEADER_WIDTH = 76


def _wrap(lines: list[str], width: int) -> list[str]:
    """Each line wrapped to ``width``, its continuations indented by two spaces."""
    return [
        part
        for line in lines
        for part in textwrap.wrap(line, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
    ]


def bic_penalty(df: int, nobs: int | None, advice: str) -> float:
    """BIC's penalty df·log(nobs); ValueError when ``nobs`` is unknown (with ``advice``) or
    not positive."""
    if nobs is None:
        raise ValueError(f"bic needs the number of observations: {advice}")
    if nobs < 1:
        raise ValueError(f"bic is undefined without observations (nobs = {nobs})")
    return df * math.log(nobs)


def fmt_number(v: float) -> str:
    """A number to six significant digits for the tables ("nan" where not finite)."""
    return "nan" if not np.isfinite(v) else f"{v:.6g}"


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "nan"
    return "<1e-16" if p < 1e-16 else f"{p:.3g}"
