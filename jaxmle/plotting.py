"""Plots of profiles, joint regions, Laplace posteriors and simulation studies.

matplotlib is an optional extra (``pip install jaxmle[plot]``), imported only when a plot
is asked for. Each function returns the matplotlib figure.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from .constraints import Constraint

__all__ = ["plot_profile", "plot_region", "plot_laplace", "plot_study"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'jaxmle[plot]'") from err
    return plt


def plot_profile(profile, ax=None):
    """The profile log-likelihood, its χ²₁ threshold and interval, and the Wald quadratic."""
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    x, lp = profile.grid, profile.loglik
    what = "profile log-posterior" if profile.of_posterior else "profile log-likelihood"
    ax.plot(x, lp, color="C0", lw=2, label=what)
    lo_w, hi_w = profile.wald
    half = (hi_w - lo_w) / 2.0
    if np.isfinite(half) and half > 0:
        z = math.sqrt(2.0 * (profile.loglik_max - profile.threshold))
        quad = profile.loglik_max - 0.5 * ((x - profile.estimate) / (half / z)) ** 2
        ax.plot(x, quad, color="C1", ls="--", lw=1.2, label="Wald (quadratic) approximation")
    ax.axhline(profile.threshold, color="0.4", ls=":", lw=1)
    lo, hi = profile.interval
    if np.isfinite(lo) or np.isfinite(hi):
        left = lo if np.isfinite(lo) else x.min()
        right = hi if np.isfinite(hi) else x.max()
        ax.axvspan(left, right, color="C0", alpha=0.12, label=f"{100 * profile.level:g}% profile interval")
        for end, is_open in zip((lo, hi), profile.open, strict=False):
            if np.isfinite(end):
                ax.axvline(end, color="C0", lw=1, ls="-" if not is_open else "-.")
    ax.plot([profile.estimate], [profile.loglik_max], "o", color="k", ms=4, label="estimate")
    span = profile.loglik_max - profile.threshold
    ax.set_ylim(profile.loglik_max - 3.0 * span, profile.loglik_max + 0.3 * span)
    ax.set_xlabel(profile.name)
    ax.set_ylabel(what)
    ends = [f"{v:.4g}" + (" (open)" if o else "") for v, o in zip((lo, hi), profile.open, strict=True)]
    title = f"{profile.name}: [{ends[0]}, {ends[1]}]"
    if profile.better_fit is not None:
        title += "  (a better fit was found)"
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower center")
    return ax.figure


def plot_region(region, ax=None):
    """The joint region: the profile-deviance contour at χ²₂(level) and the Wald ellipse.
    The legend sits below the axes, where it cannot hide the region or the estimate."""
    plt = _pyplot()
    from matplotlib.lines import Line2D

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5.4), layout="constrained")
    A, B = np.meshgrid(region.grid_a, region.grid_b, indexing="ij")
    q = region.threshold
    dev = np.where(np.isfinite(region.deviance), region.deviance, 10 * q)
    ax.contourf(A, B, dev, levels=[-np.inf, q], colors=["C0"], alpha=0.15)
    ax.contour(A, B, dev, levels=[q], colors=["C0"], linewidths=2)
    handles = [Line2D([], [], color="C0", lw=2, label="profile likelihood region")]
    cov = np.asarray(region.cov)
    if np.all(np.isfinite(cov)):
        w, V = np.linalg.eigh(cov)
        if np.all(w > 0):
            t = np.linspace(0.0, 2.0 * math.pi, 200)
            circle = np.stack([np.cos(t), np.sin(t)])
            ellipse = region.estimate[:, None] + math.sqrt(q) * (V * np.sqrt(w)) @ circle
            ax.plot(ellipse[0], ellipse[1], color="C1", ls="--", lw=1.5)
            handles.append(Line2D([], [], color="C1", ls="--", lw=1.5, label="Wald ellipse"))
    ax.plot(*region.estimate, "o", color="k", ms=4)
    handles.append(Line2D([], [], marker="o", color="k", ls="", ms=4, label="estimate"))
    ax.set_xlabel(region.names[0])
    ax.set_ylabel(region.names[1])
    ax.set_title(f"{100 * region.level:g}% joint confidence region")
    ax.legend(
        handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(handles), frameon=False
    )
    return ax.figure


def plot_laplace(lap, key=None, n: int = 4000, axes=None):
    """Histograms of draws of each parameter with the approximation's marginal density."""
    plt = _pyplot()
    key = jax.random.key(0) if key is None else key
    draws = lap.sample_flat(key, n)
    k = draws.shape[1]
    if axes is None:
        cols = min(k, 3)
        rows = math.ceil(k / cols)
        _, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    axes = np.asarray(axes).ravel()
    densities = _marginal_densities(lap)
    for i, name in enumerate(lap.names):
        ax = axes[i]
        ax.hist(draws[:, i], bins=50, density=True, color="C0", alpha=0.35, label="draws")
        pdf = densities.get(i)
        if pdf is not None:
            lo, hi = np.quantile(draws[:, i], [0.0005, 0.9995])
            grid = np.linspace(lo, hi, 300)
            ax.plot(grid, pdf(grid), color="C0", lw=2, label="Laplace marginal")
        ax.set_xlabel(name)
        ax.set_yticks([])
    for ax in axes[k:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig = axes[0].figure
    fig.suptitle("Laplace approximation of the posterior")
    fig.tight_layout()
    return fig


def _marginal_densities(lap) -> dict:
    """Marginal densities of element-wise parameters: N(u(x); loc_u, var_u) |du/dx|."""
    out, u_start, x_start = {}, 0, 0
    for leaf in lap._space.free:
        c = leaf.constraint
        if c.elementwise:
            for j in range(leaf.size):
                loc, sd = lap.loc_u[u_start + j], math.sqrt(lap.cov_u[u_start + j, u_start + j])
                out[x_start + j] = _pushforward(c.element(j), loc, sd)
        u_start += leaf.free_size
        x_start += leaf.size
    return out


def _pushforward(c: Constraint, loc: float, sd: float):
    def pdf(x):
        with jax.enable_x64(True):
            x = np.asarray(x, dtype=np.float64)
            u = np.asarray(c.inverse(x))
            du = np.abs(np.asarray(jax.vmap(jax.grad(c.inverse))(x)))
        return np.exp(-0.5 * ((u - loc) / sd) ** 2) / (sd * math.sqrt(2.0 * math.pi)) * du

    return pdf


def plot_study(study, path=None):
    """One panel per parameter: a density histogram of the converged estimates, the truth,
    and the asymptotic normal N(θ, CRLB) the MLE should follow."""
    Figure = _pyplot().Figure
    names = study.fits.names
    est = study.fits.estimates[study.fits.converged]
    truth, crlb_sd = study.flat["truth"], study.flat["crlb_sd"]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(max(4.2 * cols, 5.6), 3.2 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for j, (ax, name) in enumerate(zip(axes, names, strict=False)):
        values = est[:, j]
        values = values[np.isfinite(values)]
        ax.hist(
            values,
            bins=min(60, max(10, int(np.sqrt(values.size)))),
            density=True,
            color="#9ecae1",
            edgecolor="white",
            label=f"estimates ({values.size})",
        )
        if np.isfinite(crlb_sd[j]) and crlb_sd[j] > 0:
            lo = min(values.min(initial=truth[j]), truth[j] - 4 * crlb_sd[j])
            hi = max(values.max(initial=truth[j]), truth[j] + 4 * crlb_sd[j])
            grid = np.linspace(lo, hi, 400)
            density = np.exp(-0.5 * ((grid - truth[j]) / crlb_sd[j]) ** 2) / (crlb_sd[j] * math.sqrt(2 * math.pi))
            ax.plot(grid, density, color="#d62728", lw=1.8, label="N(truth, CRLB)")
        ax.axvline(truth[j], color="black", lw=1, ls="--", label="truth")
        ax.set_title(name)
        ax.set_yticks([])
        if j == 0:
            ax.legend(fontsize="small", frameon=False)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(f"{study.label}: sampling distributions\nn = {study.n}, {study.reps} replicates")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
