"""Joint Wald tests and the joint delta-method covariance against statsmodels.

statsmodels' OLS covariance uses s² = RSS/(n−d); the MLE's observed information uses
σ̂² = RSS/n, which statsmodels gives with cov_type="fixed scale" and that scale. Estimates
agree to about 1e-12 (Newton at a quadratic optimum), so statistics, p-values and
covariances are compared at rtol 1e-8.
"""

import jax.numpy as jnp
import numpy as np
import pytest
import statsmodels.api as sm

import jaxmle as jm

N = 80
#: two linear restrictions: β₁ = 2 and β₀ + β₂ = 0.5
R = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
Q = np.array([2.0, 0.5])


def restrictions(p):
    return jnp.asarray(R) @ p["beta"] - jnp.asarray(Q)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(31)
    X = np.column_stack([np.ones(N), rng.normal(size=(N, 2))])
    y = X @ [0.7, 2.3, -0.4] + rng.normal(size=N) * (0.5 + np.abs(X[:, 1]))
    return {"X": X, "y": y}


@pytest.fixture(scope="module")
def observed_fit(data):
    return jm.fit(jm.models.linear_regression(), data)


def mle_scale_ols(data):
    ols = sm.OLS(data["y"], data["X"]).fit()
    return sm.OLS(data["y"], data["X"]).fit(cov_type="fixed scale", cov_kwds={"scale": ols.ssr / N})


def test_wald_test_of_linear_restrictions_is_statsmodels_chi2_form(data, observed_fit):
    test = observed_fit.wald_test(restrictions)
    reference = mle_scale_ols(data).wald_test((R, Q), use_f=False, scalar=True)
    assert test.df == 2
    np.testing.assert_allclose(test.statistic, reference.statistic, rtol=1e-8)
    np.testing.assert_allclose(test.pvalue, reference.pvalue, rtol=1e-8)
    assert repr(test).startswith("WaldTest(chi2(2) = ")
    assert "Wald test of 2 restriction(s)" in str(test)


def test_wald_test_uses_the_fits_covariance_type(data):
    res = jm.fit(
        jm.models.linear_regression(),
        {"beta": np.zeros(3), "sigma": 1.0},
        data,
        fixed={"sigma": 1.0},
        cov_type="HC1",
    )
    test = res.wald_test(lambda p: {"slope": p["beta"][1] - 2.0, "sum": p["beta"][0] + p["beta"][2] - 0.5})
    reference = sm.OLS(data["y"], data["X"]).fit(cov_type="HC1").wald_test((R, Q), use_f=False, scalar=True)
    np.testing.assert_allclose(test.statistic, reference.statistic, rtol=1e-8)
    np.testing.assert_allclose(test.pvalue, reference.pvalue, rtol=1e-8)


def test_delta_returns_the_joint_covariance(data, observed_fit):
    cov_beta = mle_scale_ols(data).cov_params()
    value, se = observed_fit.delta(restrictions)  # still a (value, se) pair
    joint = observed_fit.delta(restrictions).cov
    np.testing.assert_allclose(value, R @ observed_fit.params["beta"] - Q, rtol=1e-12)
    np.testing.assert_allclose(joint, R @ cov_beta @ R.T, rtol=1e-8)
    np.testing.assert_allclose(se, np.sqrt(np.diag(R @ cov_beta @ R.T)), rtol=1e-8)
    # a pytree output: leaves flattened in JAX's order (dict keys sorted)
    tree = observed_fit.delta(lambda p: {"b": p["beta"][1:], "a": 2.0 * p["beta"][0]})
    J = np.array([[2.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    np.testing.assert_allclose(tree.cov, J @ cov_beta @ J.T, rtol=1e-8)


def test_redundant_or_constant_restrictions_are_refused(observed_fit):
    with pytest.raises(ValueError, match=r"singular \(rank 2\): some restrictions are redundant"):
        observed_fit.wald_test(lambda p: jnp.concatenate([restrictions(p), restrictions(p)[:1] * 3.0]))
    with pytest.raises(ValueError, match=r"restriction\(s\) \[1\] have zero variance"):
        observed_fit.wald_test(lambda p: jnp.stack([p["beta"][1], jnp.asarray(1.0)]))
    with pytest.raises(ValueError, match="at least one value"):
        observed_fit.wald_test(lambda p: jnp.zeros(0))
    with pytest.raises(ValueError, match="fn must be a callable"):
        observed_fit.wald_test("beta[1] = 2")


def test_a_restriction_on_an_unidentified_parameter_is_refused():
    # b and c enter only through b + c: neither has a defined variance
    x = np.random.default_rng(32).normal(size=30)
    with pytest.warns(jm.FitWarning, match="not identified"):
        res = jm.fit(lambda p, x: -0.5 * (x - p["b"] - p["c"]) ** 2, {"b": 0.0, "c": 0.0}, x)
    with pytest.raises(ValueError, match="without a defined variance"):
        res.wald_test(lambda p: p["b"])
