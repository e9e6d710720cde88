"""HC1 and cluster-robust covariances against statsmodels, and every cov_type in fit_batch.

statsmodels applies the HC1 factor n/(n−k) to OLS only (its GLM "HC1" is HC0), so the
Gaussian linear model is checked against its OLS HC1 (with σ held fixed, so that k counts
the coefficients as OLS does) and the GLMs against n/(n−k) times its HC0. Its cluster
covariance carries G/(G−1)·(n−1)/(n−k) for OLS and GLMs alike. Estimates agree to about
1e-12 (Newton at a quadratic optimum), so the covariances are compared at rtol 1e-8.
"""

import jax
import numpy as np
import pytest
import statsmodels.api as sm

import jaxmle as jm

N, G = 90, 9
CLUSTERS = np.repeat(np.arange(G), N // G)


@pytest.fixture(scope="module")
def regression():
    """A heteroskedastic linear model with errors correlated within clusters."""
    rng = np.random.default_rng(21)
    X = np.column_stack([np.ones(N), rng.normal(size=(N, 2))])
    e = rng.normal(size=N) * (0.5 + np.abs(X[:, 1])) + rng.normal(size=G)[CLUSTERS]
    return {"X": X, "y": X @ [1.0, 2.0, -0.5] + e}


@pytest.fixture(scope="module")
def counts():
    """Poisson counts with a random effect per cluster (overdispersed within clusters)."""
    rng = np.random.default_rng(22)
    X = np.column_stack([np.ones(N), rng.normal(size=(N, 2))])
    y = rng.poisson(np.exp(X @ [0.3, 0.5, -0.4] + 0.5 * rng.normal(size=G)[CLUSTERS]))
    return {"X": X, "y": y.astype(float)}


def ols_fit(data, cov_type, **kwargs):
    """The Gaussian linear model with σ held fixed: k counts the coefficients only, as OLS
    does, and the β block of the sandwich does not depend on σ."""
    init = {"beta": np.zeros(3), "sigma": 1.0}
    return jm.fit(jm.models.linear_regression(), init, data, fixed={"sigma": 1.0}, cov_type=cov_type, **kwargs)


def test_hc1_of_a_linear_model_is_statsmodels_ols_hc1(regression):
    res = ols_fit(regression, "HC1")
    ols = sm.OLS(regression["y"], regression["X"]).fit(cov_type="HC1")
    np.testing.assert_allclose(res.params["beta"], ols.params, rtol=1e-10)
    np.testing.assert_allclose(res.cov, ols.cov_params(), rtol=1e-8)
    np.testing.assert_allclose(res.se["beta"], ols.bse, rtol=1e-8)
    assert "covariance: HC1" in res.summary()


def test_hc1_counts_every_free_parameter(regression):
    # with σ free, k = 4: the β block is n/(n−4) times White's HC0 (not OLS's n/(n−3))
    res = jm.fit(jm.models.linear_regression(), regression, cov_type="HC1")
    hc0 = sm.OLS(regression["y"], regression["X"]).fit(cov_type="HC0").cov_params()
    np.testing.assert_allclose(res.cov[:3, :3], N / (N - 4) * hc0, rtol=1e-8)


def test_hc1_of_a_logistic_regression_is_the_scaled_sandwich(counts):
    y = (counts["y"] > 1).astype(float)
    res = jm.fit(jm.models.logistic_regression(), {"X": counts["X"], "y": y}, cov_type="HC1")
    glm = sm.GLM(y, counts["X"], family=sm.families.Binomial()).fit(cov_type="HC0")
    np.testing.assert_allclose(res.cov, N / (N - 3) * glm.cov_params(), rtol=1e-8)


def test_cluster_of_a_linear_model_is_statsmodels_ols_cluster(regression):
    res = ols_fit(regression, "cluster", groups=CLUSTERS)
    ols = sm.OLS(regression["y"], regression["X"]).fit(cov_type="cluster", cov_kwds={"groups": CLUSTERS})
    np.testing.assert_allclose(res.cov, ols.cov_params(), rtol=1e-8)
    assert res.clusters == G and f"covariance: cluster over {G} clusters" in res.summary()
    # within-cluster correlation: the cluster SEs differ from the heteroskedasticity-robust ones
    hc1 = sm.OLS(regression["y"], regression["X"]).fit(cov_type="HC1")
    assert not np.allclose(res.se["beta"], hc1.bse, rtol=0.05)


def test_cluster_of_a_poisson_regression_is_statsmodels_glm_cluster(counts):
    labels = np.array([f"school {c}" for c in CLUSTERS[::-1]])  # any labels; codes in another order
    res = jm.fit(jm.models.poisson_regression(), counts, cov_type="cluster", groups=labels)
    glm = sm.GLM(counts["y"], counts["X"], family=sm.families.Poisson()).fit(
        cov_type="cluster", cov_kwds={"groups": CLUSTERS[::-1]}
    )
    np.testing.assert_allclose(res.params["beta"], glm.params, rtol=1e-9)
    np.testing.assert_allclose(res.cov, glm.cov_params(), rtol=1e-8)


def counting_loglik():
    """The linear model's loglik, recording each trace: bad ``groups`` must be refused with
    at most the shape check's trace (nothing compiled)."""
    calls = []
    model = jm.models.linear_regression()

    def loglik(p, d):
        if isinstance(p["beta"], jax.core.Tracer):
            calls.append(1)
        return model.loglik(p, d)

    return loglik, calls


@pytest.mark.parametrize(
    "cov_type, groups, match",
    [
        ("cluster", None, r"groups: cov_type='cluster' needs groups="),
        ("robust", CLUSTERS, r"groups is only used with cov_type='cluster'"),
        ("cluster", CLUSTERS[:-1], r"groups has 89 labels but loglik returned 90"),
        ("cluster", CLUSTERS.reshape(-1, 1), r"groups must be one-dimensional"),
        ("cluster", np.zeros(N), r"groups must hold at least 2 distinct clusters, got 1"),
        ("cluster", np.where(CLUSTERS > 0, CLUSTERS, np.nan), r"groups holds NaN"),
    ],
)
def test_bad_groups_are_refused_before_compiling(regression, cov_type, groups, match):
    loglik, calls = counting_loglik()
    init = {"beta": np.zeros(3), "sigma": 1.0}
    with pytest.raises(ValueError, match=match):
        jm.fit(loglik, init, regression, constraints={"sigma": jm.positive}, cov_type=cov_type, groups=groups)
    assert len(calls) <= 1
    with pytest.raises(ValueError, match=match):
        data = jax.tree_util.tree_map(lambda a: np.stack([a, a]), regression)
        jm.fit_batch(loglik, init, data, constraints={"sigma": jm.positive}, cov_type=cov_type, groups=groups)


def test_small_sample_factor_needs_more_observations_than_parameters():
    x = np.array([0.5, 1.5])
    with pytest.raises(ValueError, match=r"cov_type='HC1': its factor n/\(n-k\) needs more observations \(n = 2\)"):
        jm.fit(jm.models.gaussian(), x, cov_type="HC1")


@pytest.fixture(scope="module")
def replicates():
    """Four replicates of a heteroskedastic linear model."""
    rng = np.random.default_rng(23)
    reps, n = 4, 40
    X = np.concatenate([np.ones((reps, n, 1)), rng.normal(size=(reps, n, 2))], axis=2)
    y = np.einsum("rnk,k->rn", X, [1.0, 2.0, -0.5]) + rng.normal(size=(reps, n)) * (0.5 + np.abs(X[..., 1]))
    return {"X": X, "y": y}


@pytest.mark.parametrize(
    "cov_type, groups",
    [("robust", None), ("HC1", None), ("cluster", np.arange(40) % 5), ("opg", None), ("expected", None)],
)
@pytest.mark.slow
def test_a_batch_gives_each_replicate_the_se_of_its_own_fit(replicates, cov_type, groups):
    model = jm.models.linear_regression()
    batch = jm.fit_batch(model, replicates, cov_type=cov_type, groups=groups)
    assert batch.converged.all() and batch.cov_type == cov_type
    assert batch.clusters == (5 if cov_type == "cluster" else None)
    for i in range(len(batch)):
        one = jm.fit(model, jax.tree_util.tree_map(lambda a, i=i: a[i], replicates), cov_type=cov_type, groups=groups)
        np.testing.assert_allclose(batch.cov[i], one.cov, rtol=1e-10, atol=1e-14)
        assert batch[i].cov_type == cov_type and batch[i].clusters == one.clusters
    if cov_type != "expected":  # (for a linear model the expected information given X is the observed one)
        observed = jm.fit_batch(model, replicates)
        assert not np.allclose(batch.standard_errors, observed.standard_errors, rtol=1e-3)


def test_a_checkpoint_is_resumed_only_with_the_same_covariance(replicates, tmp_path):
    model = jm.models.linear_regression()
    jm.fit_batch(model, replicates, cov_type="HC1", checkpoint=tmp_path)
    with pytest.raises(ValueError, match="cov_type"):
        jm.fit_batch(model, replicates, cov_type="robust", checkpoint=tmp_path)
