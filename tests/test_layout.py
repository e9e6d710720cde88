"""Layout of the pictures and the summary table: nothing clipped, covered or stretched."""

import warnings

import jax
import numpy as np
import pytest

import jaxmle as jm

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def extent(artist, fig):
    fig.draw_without_rendering()  # lays the figure out (constrained layout) as savefig would
    return artist.get_window_extent()


@pytest.mark.slow
def test_one_parameter_study_title_fits_in_the_figure(tmp_path):
    study = jm.simulation_study(jm.models.poisson(), {"rate": 3.0}, 20, 50, seed=0)
    fig = study.plot(tmp_path / "study.png")
    title = extent(fig._suptitle, fig)
    box = fig.bbox
    assert title.x0 >= box.x0 and title.x1 <= box.x1 and title.y1 <= box.y1
    assert (tmp_path / "study.png").stat().st_size > 0


def test_region_legend_does_not_cover_the_estimate():
    y = np.random.default_rng(0).normal(1.0, 2.0, size=40)
    ll = lambda p, d: jax.scipy.stats.norm.logpdf(d, p["mu"], p["sigma"])  # noqa: E731
    res = jm.fit(ll, {"mu": 0.0, "sigma": 1.0}, y, constraints={"sigma": jm.positive})
    region = res.region("mu", "sigma", n=15)
    fig = region.plot()
    ax = fig.axes[0]
    legend = extent(ax.get_legend(), fig)
    axes_box = extent(ax, fig)
    marker = ax.transData.transform(region.estimate)
    assert not legend.contains(*marker)
    assert legend.y1 <= axes_box.y0  # below the axes: it covers no part of the region either
    assert legend.y0 >= fig.bbox.y0  # and is not clipped


def test_long_note_wraps_instead_of_stretching_the_name_column():
    X = np.column_stack([np.ones(30), np.arange(30.0), 2 * np.arange(30.0)])  # collinear: a long note
    y = np.random.default_rng(1).normal(size=30)
    ll = lambda p, d: jax.scipy.stats.norm.logpdf(d["y"], d["X"] @ p["beta"], p["s"])  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jm.FitWarning)
        res = jm.fit(ll, {"beta": np.zeros(3), "s": 1.0}, {"X": X, "y": y}, constraints={"s": jm.positive})
    assert res.notes and len(res.message) > 100
    lines = res.summary().splitlines()
    width = len(lines[0])
    assert all(len(line) == width for line in lines) and width <= 80
    name_cell = next(line for line in lines if line.startswith("│ beta[0]")).split("│")[1]
    assert len(name_cell) <= len("beta[0]") + 6
    text = " ".join(line.strip("│ ") for line in lines)
    assert "not identified by the data" in text
