"""Simulation studies judge the covariance they are given: a heteroskedastic linear model,
where the observed-information SE of the slope is too small (true variance / model
variance = E[x²σ²(x)] / (E[σ²(x)]·E[x²]) ≈ 2.6 for σ(x) = 0.3 + |x|, x ~ N(0, 1), so its
Wald interval covers about 78%) and the HC1 sandwich covers about 95%."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

import jaxmle as jm

TRUTH = {"beta": np.array([1.0, 2.0]), "sigma": 1.0}
LABELS = {"beta": ["Intercept", "x"]}


def simulate(key, params, n):
    kx, ke = jax.random.split(key)
    x = jax.random.normal(kx, (n,))
    X = jnp.stack([jnp.ones(n), x], axis=1)
    return {"X": X, "y": X @ params["beta"] + (0.3 + jnp.abs(x)) * jax.random.normal(ke, (n,))}


def loglik(params, data):
    return stats.norm.logpdf(data["y"], data["X"] @ params["beta"], params["sigma"])


def study(**kw):
    kw = {"labels": LABELS, "constraints": {"sigma": jm.positive}, "progress": False} | kw
    return jm.simulation_study(truth=TRUTH, n=100, reps=400, seed=3, simulate=simulate, loglik=loglik, **kw)


@pytest.mark.slow
def test_hc1_covers_where_the_observed_information_does_not(tmp_path):
    observed, hc1 = study(), study(cov_type="HC1", checkpoint=tmp_path)
    slope = observed.fits.names.index("beta[x]")
    assert observed.used == hc1.used == 400
    # the same fits, other standard errors
    np.testing.assert_array_equal(observed.fits.estimates, hc1.fits.estimates)
    assert observed.flat["coverage"][slope] < 0.85
    mcse = np.sqrt(0.95 * 0.05 / 400)
    assert abs(hc1.flat["coverage"][slope] - 0.95) < 3.5 * mcse
    assert hc1.flat["mean_se"][slope] > 1.4 * observed.flat["mean_se"][slope]
    assert "(SEs: HC1)" in hc1.summary() and "SEs:" not in observed.summary()
    loaded = jm.load_study(tmp_path)
    assert loaded.fits.cov_type == "HC1"
    np.testing.assert_array_equal(loaded.fits.standard_errors, hc1.fits.standard_errors)


def test_cluster_covariance_of_a_study_names_its_clusters():
    res = study(cov_type="cluster", groups=np.arange(100) % 10)
    assert res.fits.cov_type == "cluster" and res.fits.clusters == 10
    assert "(SEs: cluster over 10 clusters)" in res.summary()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"cov_type": "sandwich"}, "cov_type must be one of"),
        ({"cov_type": "cluster"}, "groups: cov_type='cluster' needs groups="),
        ({"cov_type": "cluster", "groups": np.arange(99) % 10}, "groups has 99 labels"),
        ({"labels": {"beta": ["a"]}}, "labels"),
    ],
)
def test_bad_covariance_or_labels_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        study(**kw)
