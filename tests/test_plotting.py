"""Each plot renders to a PNG file (Agg backend)."""

import jax
import numpy as np
import pytest

import jaxmle as jm

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


@pytest.fixture(scope="module")
def gaussian_fit():
    y = np.random.default_rng(19).normal(1.0, 2.0, size=12)
    return jm.fit(
        lambda p, d: jax.scipy.stats.norm.logpdf(d, p["mu"], p["sigma"]),
        {"mu": 0.0, "sigma": 1.0},
        y,
        constraints={"sigma": jm.positive},
        prior={"sigma": jm.priors.HalfNormal(5.0)},
    )


def saved(fig, path):
    fig.savefig(path, dpi=80)
    matplotlib.pyplot.close(fig)
    return path.stat().st_size


def test_profile_plot(gaussian_fit, tmp_path):
    prof = gaussian_fit.profile("sigma")
    fig = prof.plot()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "sigma" and len(ax.lines) >= 3
    assert saved(fig, tmp_path / "profile.png") > 5000


def test_region_plot(gaussian_fit, tmp_path):
    fig = gaussian_fit.region("mu", "sigma", n=31).plot()
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "Wald ellipse" in labels and "profile likelihood region" in labels
    assert saved(fig, tmp_path / "region.png") > 5000


def test_laplace_plot(gaussian_fit, tmp_path):
    fig = gaussian_fit.laplace().plot(key=jax.random.key(3), n=3000)
    assert [ax.get_xlabel() for ax in fig.axes] == ["mu", "sigma"]
    assert saved(fig, tmp_path / "laplace.png") > 5000
