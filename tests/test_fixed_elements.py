"""Element-wise fixing: ``fixed={"beta": {2: 0.0}}`` holds elements of a vector or array
parameter and frees the rest, checked against the closed-form least-squares fit of the
reduced design."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

import jaxmle as jm

N, BETA = 60, np.array([1.0, -0.7, 0.4])


def regression(p, d):
    return stats.norm.logpdf(d["y"], d["X"] @ p["beta"], p["sigma"])


def make_data(seed=0, reps=None):
    rng = np.random.default_rng(seed)
    shape = (N,) if reps is None else (reps, N)
    X = np.concatenate([np.ones(shape + (1,)), rng.normal(size=shape + (2,))], axis=-1)
    y = X @ BETA + 0.8 * rng.normal(size=shape)
    return {"X": X, "y": y}


INIT = {"beta": np.zeros(3), "sigma": 1.0}
KW = {"constraints": {"sigma": jm.positive}}


def reduced_least_squares(d, held: int, value: float):
    """The Gaussian MLE with beta[held] = value: least squares of y - value·x_held on the
    other columns, σ̂² = RSS/n, cov(β̂) = σ̂²(XᵀX)⁻¹, SE(σ̂) = σ̂/√(2n), and the log-likelihood."""
    keep = [j for j in range(d["X"].shape[1]) if j != held]
    Xr, yr = d["X"][:, keep], d["y"] - value * d["X"][:, held]
    b = np.linalg.solve(Xr.T @ Xr, Xr.T @ yr)
    rss = float(np.sum((yr - Xr @ b) ** 2))
    s2 = rss / len(yr)
    se = np.sqrt(np.diag(s2 * np.linalg.inv(Xr.T @ Xr)))
    loglik = -0.5 * len(yr) * (np.log(2 * np.pi * s2) + 1.0)
    return b, se, np.sqrt(s2), loglik, rss


@pytest.mark.parametrize("value", [0.0, BETA[2]])
def test_held_coefficient_is_the_reduced_least_squares_fit(value):
    d = make_data()
    res = jm.fit(regression, INIT, d, fixed={"beta": {2: value}}, **KW)
    b, se, sigma, loglik, _ = reduced_least_squares(d, 2, value)
    assert res.converged
    np.testing.assert_allclose(res.params["beta"][:2], b, rtol=0, atol=1e-10)
    assert res.params["beta"][2] == value
    np.testing.assert_allclose(res.se["beta"][:2], se, rtol=1e-8)
    assert res.se["beta"][2] == 0.0  # as for a whole fixed parameter
    np.testing.assert_allclose(res.params["sigma"], sigma, rtol=1e-10)
    np.testing.assert_allclose(res.se["sigma"], sigma / np.sqrt(2 * N), rtol=1e-8)
    np.testing.assert_allclose(res.loglik, loglik, rtol=1e-12)
    assert res.df == 3  # k - 1: beta[0], beta[1], sigma
    assert res.names == ["beta[0]", "beta[1]", "sigma"]
    assert res.cov.shape == (3, 3)
    np.testing.assert_allclose(res.aic, 2 * 3 - 2 * loglik, rtol=1e-12)
    np.testing.assert_allclose(res.bic, 3 * np.log(N) - 2 * loglik, rtol=1e-12)
    ci = res.conf_int()
    np.testing.assert_array_equal(ci["beta"][2], [value, value])
    np.testing.assert_allclose(ci["beta"][1], b[1] + np.array([-1, 1]) * 1.959963984540054 * se[1], rtol=1e-8)
    frame = res.to_frame()
    assert list(frame.index) == res.names
    np.testing.assert_allclose(frame["se"].to_numpy()[:2], se, rtol=1e-8)
    assert "beta[2]" not in res.summary() and "beta[1]" in res.summary()


def test_held_at_the_unrestricted_mle_gives_the_full_loglik():
    d = make_data(1)
    full = jm.fit(regression, INIT, d, **KW)
    held = jm.fit(regression, INIT, d, fixed={"beta": {0: float(full.params["beta"][0])}}, **KW)
    np.testing.assert_allclose(held.loglik, full.loglik, rtol=1e-13)
    np.testing.assert_allclose(held.params["beta"], full.params["beta"], atol=1e-8)
    assert (full.df, held.df) == (4, 3)


def test_lr_test_of_the_element_restriction_is_n_log_rss_ratio():
    d = make_data(2)
    full = jm.fit(regression, INIT, d, **KW)
    restricted = jm.fit(regression, INIT, d, fixed={"beta": {1: 0.0}}, **KW)
    rss0 = reduced_least_squares(d, 1, 0.0)[4]
    b1 = np.linalg.lstsq(d["X"], d["y"], rcond=None)[0]
    rss1 = float(np.sum((d["y"] - d["X"] @ b1) ** 2))
    test = jm.lr_test(restricted, full)
    assert test.df == 1
    np.testing.assert_allclose(test.statistic, N * np.log(rss0 / rss1), rtol=1e-9)


def test_delta_wald_and_profile_with_a_held_element():
    d = make_data(3)
    res = jm.fit(regression, INIT, d, fixed={"beta": {2: 0.0}}, **KW)
    _, se, *_ = reduced_least_squares(d, 2, 0.0)
    value, se_sum = res.delta(lambda p: p["beta"][1] + p["beta"][2])  # beta[2] held: no variance
    np.testing.assert_allclose(value, res.params["beta"][1], rtol=1e-14)
    np.testing.assert_allclose(se_sum, se[1], rtol=1e-8)
    wald = res.wald_test(lambda p: p["beta"][1])
    np.testing.assert_allclose(wald.statistic, (res.params["beta"][1] / se[1]) ** 2, rtol=1e-8)
    ci = res.conf_int(method="profile")
    np.testing.assert_array_equal(ci["beta"][2], [0.0, 0.0])
    # the profile interval of a Gaussian mean parameter: 2(ℓ̂ − ℓ_p) = n log(RSS_p/RSS) ≤ χ²₁(0.95)
    b, _, sigma, loglik, rss = reduced_least_squares(d, 2, 0.0)
    for end in ci["beta"][1]:
        rss_p = reduced_least_squares({"X": d["X"][:, :2], "y": d["y"]}, 1, end)[4]
        np.testing.assert_allclose(N * np.log(rss_p / rss), 3.841458820694124, rtol=1e-6)


def test_matrix_element_held_by_a_tuple_index():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 2, 2)) + np.array([[1.0, 2.0], [3.0, 4.0]])

    def loglik(p, x):
        return jnp.sum(stats.norm.logpdf(x, p["m"], 1.0), axis=(1, 2))

    res = jm.fit(loglik, {"m": np.zeros((2, 2))}, x, fixed={"m": {(1, 0): 3.5}})
    np.testing.assert_allclose(res.params["m"], [[x[:, 0, 0].mean(), x[:, 0, 1].mean()], [3.5, x[:, 1, 1].mean()]])
    np.testing.assert_allclose(res.se["m"], [[0.1581138830084190, 0.1581138830084190], [0.0, 0.1581138830084190]])
    assert res.names == ["m[0,0]", "m[0,1]", "m[1,1]"] and res.df == 3
    mask, values = np.array([[False, False], [True, False]]), np.full((2, 2), 3.5)
    from_mask = jm.fit(
        loglik, {"m": np.zeros((2, 2))}, x, fixed={"m": dict(zip(map(tuple, np.argwhere(mask)), values[mask]))}
    )
    np.testing.assert_array_equal(from_mask.params["m"], res.params["m"])


@pytest.mark.slow
def test_fit_batch_with_held_elements_equals_each_fit():
    d = make_data(5, reps=3)
    fixed = {"beta": {0: 1.0}}
    batch = jm.fit_batch(regression, INIT, d, fixed=fixed, **KW)
    assert batch.names == ["beta[1]", "beta[2]", "sigma"] and batch.df == 3
    for r in range(3):
        one = jm.fit(regression, INIT, {"X": d["X"][r], "y": d["y"][r]}, fixed=fixed, **KW)
        np.testing.assert_allclose(batch.params["beta"][r], one.params["beta"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(batch.se["beta"][r], one.se["beta"], rtol=1e-8)
        np.testing.assert_allclose(batch.loglik[r], one.loglik, rtol=1e-12)
    assert np.all(batch.params["beta"][:, 0] == 1.0) and np.all(batch.se["beta"][:, 0] == 0.0)


@pytest.mark.slow
def test_simulation_study_with_a_held_element():
    def simulate(key, p, n):
        kx, ky = jax.random.split(key)
        X = jnp.concatenate([jnp.ones((n, 1)), jax.random.normal(kx, (n, 2))], axis=1)
        return {"X": X, "y": X @ p["beta"] + p["sigma"] * jax.random.normal(ky, (n,))}

    truth = {"beta": BETA, "sigma": 0.8}
    study = jm.simulation_study(
        simulate=simulate, loglik=regression, truth=truth, n=40, reps=20, seed=1, fixed={"beta": {2: BETA[2]}}, **KW
    )
    assert study.fits.names == ["beta[0]", "beta[1]", "sigma"]
    assert np.all(study.fits.params["beta"][:, 2] == BETA[2])
    assert np.isnan(study.bias["beta"][2]) and np.all(np.isfinite(study.bias["beta"][:2]))
    # the bias is the mean of the replicates' estimates minus the truth
    used = study.fits.converged
    np.testing.assert_allclose(study.bias["beta"][:2], study.fits.params["beta"][used, :2].mean(0) - BETA[:2])


def test_a_prior_covers_the_free_elements_only():
    d = make_data(6)
    res = jm.fit(regression, INIT, d, fixed={"beta": {2: 5.0}}, prior={"beta": jm.priors.Normal(0.0, 2.0)}, **KW)
    free = np.asarray(res.params["beta"][:2])
    expected = np.sum(-0.5 * np.log(2 * np.pi * 4.0) - free**2 / 8.0)  # N(0, 2²) log-density
    np.testing.assert_allclose(res.logpost - res.loglik, expected, rtol=1e-12)


def test_every_element_held_is_the_whole_parameter_held():
    d = make_data(7)
    whole = jm.fit(regression, INIT, d, fixed={"beta": BETA}, **KW)
    elements = jm.fit(regression, INIT, d, fixed={"beta": dict(enumerate(BETA))}, **KW)
    assert elements.df == whole.df == 1
    np.testing.assert_allclose(elements.loglik, whole.loglik, rtol=1e-14)


def counting(loglik):
    calls = []

    def wrapped(p, d):
        calls.append(1)
        return loglik(p, d)

    return wrapped, calls


@pytest.mark.parametrize(
    "init, fixed, constraints, match",
    [
        (INIT, {"beta": {3: 0.0}}, {}, r"fixed\['beta'\]: element index 3 is out of range for shape \(3,\)"),
        (INIT, {"beta": {-1: 0.0}}, {}, r"fixed\['beta'\]: element index -1 is out of range"),
        (INIT, {"beta": {2: 0.0, (2,): 1.0}}, {}, r"fixed\['beta'\]: element 2 is given twice"),
        (INIT, {"beta": {1.0: 0.0}}, {}, r"fixed\['beta'\]: element indices must be an int for shape \(3,\), got 1\.0"),
        (INIT, {"beta": {True: 0.0}}, {}, r"fixed\['beta'\]: element indices must be an int"),
        (INIT, {"beta": {"a": 0.0}}, {}, r"fixed\['beta'\]: element indices must be an int"),
        (INIT, {"beta": {0: "x"}}, {}, r"fixed\['beta'\]\[0\] must be a number"),
        (INIT, {"beta": {}}, {}, r"fixed\['beta'\] is an empty dict"),
        (INIT, {"beta": np.ma.masked_array(np.zeros(3), [1, 1, 0])}, {}, r"fixed\['beta'\]: a masked array is not"),
        ({"m": np.zeros((2, 2))}, {"m": {1: 0.0}}, {}, r"fixed\['m'\]: element indices must be a tuple of 2 ints"),
        ({"m": np.zeros((2, 2))}, {"m": {(0, 2): 0.0}}, {}, r"fixed\['m'\]: element index \(0, 2\) is out of range"),
        (INIT, {"sigma": {0: 1.0}}, {}, r"fixed\['sigma'\]: element indices need a vector or array parameter"),
        (INIT, {"beta": {1: -1.0}}, {"beta": jm.positive}, r"fixed\['beta'\]\[1\] must be >= 0 under .*positive"),
        (INIT, {"beta": {1: np.nan}}, {}, r"fixed\['beta'\]\[1\] is not finite"),
        (
            {"w": np.ones(3) / 3, "sigma": 1.0},
            {"w": {0: 0.5}},
            {"w": jm.simplex},
            r"fixed\['w'\]: the elements of 'w' under simplex are not free separately",
        ),
        (
            {"c": np.arange(3.0)},
            {"c": {0: 0.0}},
            {"c": jm.ordered},
            r"fixed\['c'\]: the elements of 'c' under ordered are not free separately",
        ),
        ({"beta": np.zeros(3)}, {"beta": {0: 0.0, 1: 0.0, 2: 0.0}}, {}, r"fixed: every parameter is fixed"),
    ],
)
def test_bad_element_fixing_fails_before_compiling(init, fixed, constraints, match):
    loglik, calls = counting(lambda p, d: jnp.zeros(3))
    with pytest.raises(ValueError, match=match):
        jm.fit(loglik, init, np.zeros(3), fixed=fixed, constraints=constraints)
    assert calls == []


def test_robust_covariance_with_a_held_element_is_the_reduced_hc0():
    d = make_data(8)
    res = jm.fit(regression, INIT, d, fixed={"beta": {1: 0.0}}, cov_type="robust", **KW)
    Xr = d["X"][:, [0, 2]]
    b = np.linalg.solve(Xr.T @ Xr, Xr.T @ d["y"])
    e = d["y"] - Xr @ b
    bread = np.linalg.inv(Xr.T @ Xr)
    hc0 = bread @ (Xr.T * e**2) @ Xr @ bread  # the β block: the information is block-diagonal at the MLE
    np.testing.assert_allclose(res.cov[:2, :2], hc0, rtol=1e-8)
    assert res.se["beta"][1] == 0.0


def test_an_element_held_at_its_limit_is_a_boundary_null():
    def loglik(p, y):
        return jnp.sum(stats.norm.logpdf(y, p["mu"], p["s"]), axis=1)

    y = np.random.default_rng(9).normal(size=(40, 2)) + np.array([0.6, 1.0])
    kw = {"constraints": {"mu": jm.positive, "s": jm.positive}}
    init = {"mu": np.array([0.5, 0.5]), "s": np.ones(2)}
    full = jm.fit(loglik, init, y, **kw)
    restricted = jm.fit(loglik, init, y, fixed={"mu": {0: 0.0}}, **kw)
    out = jm.lr_test(restricted, full)
    y0 = y[:, 0]
    assert y0.mean() > 0
    lr = len(y0) * np.log(np.mean(y0**2) / np.var(y0))  # only column 0's fit changes
    np.testing.assert_allclose(out.statistic, lr, rtol=1e-8)
    assert out.boundary == ("mu[0]",) and out.weights == (0.5, 0.5)
    np.testing.assert_allclose(out.pvalue, 0.5 * math.erfc(math.sqrt(lr / 2)), rtol=1e-9)  # ½ P(χ²₁ ≥ LR)
