"""Plots (matplotlib is an optional extra, imported only when a plot is asked for)."""

from __future__ import annotations

import math

import numpy as np


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install 'jaxmle[plot]'") from err
    return Figure


def plot_study(study, path=None):
    """One panel per parameter: a density histogram of the converged estimates, the truth,
    and the asymptotic normal N(θ, CRLB) the MLE should follow."""
    Figure = _figure_class()
    names = study.fits.names
    est = study.fits.estimates[study.fits.converged]
    truth, crlb_sd = study.flat["truth"], study.flat["crlb_sd"]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
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
    fig.suptitle(f"{study.label}: sampling distributions, n = {study.n}, {study.reps} replicates")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
