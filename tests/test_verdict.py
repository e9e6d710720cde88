"""`converged` means one thing for every solver: a verified local maximum.

Each case is a verdict that was once wrong: a saddle, a boundary point or a run-off called
converged, a far maximum called "no finite maximum", an unbounded or non-finite case
misnamed."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.scipy import stats

import jaxmle as jm
from jaxmle import Status


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jm.FitWarning)
        return jm.fit(*args, **kwargs)


def logistic_loglik(p, d):
    eta = d["X"] @ p["beta"]
    return d["y"] * eta - jnp.logaddexp(0.0, eta)


def separated(n=200, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
    return {"X": X, "y": (X[:, 1] > 0).astype(float)}


def bernoulli_loglik(p, d):
    return stats.bernoulli.logpmf(d, p["p"])


def mixture_loglik(p, x):
    first = jnp.log(p["w"]) + stats.norm.logpdf(x, p["mu"][0], p["sigma"][0])
    second = jnp.log1p(-p["w"]) + stats.norm.logpdf(x, p["mu"][1], p["sigma"][1])
    return jnp.logaddexp(first, second)


MIXTURE = {"w": jm.unit_interval, "sigma": jm.positive}


def mixture_data(seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(-2.0, 1.0, 150), rng.normal(2.5, 0.7, 100)])


# --- 1. L-BFGS and first-order solvers get the same verdict as Newton -------------------


@pytest.mark.parametrize("method", ["lbfgs", "adam", "newton"])
def test_separation_is_no_finite_maximum_for_every_solver(method):
    res = quiet_fit(logistic_loglik, {"beta": np.zeros(3)}, separated(), method=method)
    assert not res.converged
    assert res.status == Status.NO_FINITE_MAXIMUM, res.status


@pytest.mark.parametrize("method", ["lbfgs", "newton"])
def test_all_ones_bernoulli_is_on_the_boundary_for_every_solver(method):
    res = quiet_fit(bernoulli_loglik, {"p": 0.5}, np.ones(30), constraints={"p": jm.unit_interval}, method=method)
    assert not res.converged
    assert res.status == Status.AT_BOUNDARY, res.status
    assert any("p -> 1" in note for note in res.notes), res.notes
    assert np.all(np.isnan(res.conf_int()["p"])), "no Wald interval for a parameter at its limit"


def test_lbfgs_batch_flags_every_separated_replicate():
    one = separated()
    clean_y = (np.random.default_rng(5).uniform(size=200) < 0.5).astype(float)
    data = {"X": np.stack([one["X"]] * 4), "y": np.stack([one["y"], clean_y, one["y"], clean_y])}
    res = jm.fit_batch(logistic_loglik, {"beta": np.zeros(3)}, data, method="lbfgs")
    assert list(res.converged) == [False, True, False, True]
    assert list(res.status[[0, 2]]) == [Status.NO_FINITE_MAXIMUM] * 2


def test_auto_with_many_coefficients_flags_separation():
    # 210 coefficients, 150 observations: always separable; "auto" picks L-BFGS here
    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 210))
    y = (rng.uniform(size=150) < 0.5).astype(float)
    for method in ("auto", "newton"):
        res = quiet_fit(logistic_loglik, {"beta": np.zeros(210)}, {"X": X, "y": y}, method=method)
        assert res.method == ("lbfgs" if method == "auto" else "newton")
        assert not res.converged and res.status == Status.NO_FINITE_MAXIMUM, res.status
        assert np.all(np.isnan(res.se["beta"]))
        # the note names a few coefficients and counts the others instead of listing 210
        (note,) = [n for n in res.notes if n.startswith("the log-density keeps increasing as")]
        assert note.count("->") == 8 and note.endswith("more"), note


# --- 2 and 3. saddles and boundary points are not maxima ---------------------------------


def saddle_loglik(p, d):
    # f(a, b) = -a^2 + b^2 - b^4 / 2: a saddle at the origin, maxima at b = ±1
    return -(p["a"] ** 2) + p["b"] ** 2 - 0.5 * p["b"] ** 4


@pytest.mark.parametrize("method", ["line-search", "lbfgs"])
def test_a_saddle_point_is_named_not_converged(method):
    # Started at the saddle the gradient is exactly zero, so a solver that only follows
    # the gradient (or a positive definite model of it) stops there.
    res = quiet_fit(saddle_loglik, {"a": 0.0, "b": 0.0}, method=method)
    assert not res.converged and res.status == Status.SADDLE_POINT, res.status
    assert any("curves upward along b" in note for note in res.notes), res.notes


def test_the_default_newton_leaves_a_saddle_along_negative_curvature():
    res = quiet_fit(saddle_loglik, {"a": 0.0, "b": 0.0})
    assert res.method == "newton" and res.converged, res.status
    assert abs(abs(res.params["b"]) - 1.0) < 1e-10 and abs(res.params["a"]) < 1e-10
    np.testing.assert_allclose(res.loglik, 0.5, rtol=0, atol=1e-12)


def test_symmetric_mixture_start_never_claims_a_lower_maximum():
    x = mixture_data()
    fixed = {"w": 0.5, "sigma": np.array([1.0, 1.0])}
    best = quiet_fit(mixture_loglik, {**fixed, "mu": np.array([-1.0, 1.0])}, x, fixed=fixed)
    assert best.converged
    for start in ([0.3, 0.3], [0.0, 0.0], [2.0, 2.0]):
        res = quiet_fit(mixture_loglik, {**fixed, "mu": np.array(start)}, x, fixed=fixed)
        assert not res.converged or abs(res.loglik - best.loglik) < 1e-8, (start, res.status, res.loglik)


def test_collapsed_mixture_component_is_on_the_boundary():
    x = mixture_data()
    start = {"w": 0.999, "mu": np.array([0.0, x[0]]), "sigma": np.array([2.0, 1e-3])}
    res = quiet_fit(mixture_loglik, start, x, constraints=MIXTURE)
    assert not res.converged, (res.status, res.params)
    assert res.status in (Status.AT_BOUNDARY, Status.NO_FINITE_MAXIMUM), res.status
    ci = res.conf_int()
    inside = lambda lo_hi, lo, hi: np.all(np.isnan(lo_hi) | ((lo_hi >= lo) & (lo_hi <= hi)))  # noqa: E731
    assert inside(ci["w"], 0.0, 1.0) and inside(ci["sigma"], 0.0, np.inf)


# --- 4. a far maximum is not "no finite maximum" -----------------------------------------


def test_far_scale_is_found_from_sigma_one():
    x = np.random.default_rng(0).normal(0.0, 5e4, size=200)
    res = quiet_fit(
        lambda p, d: stats.norm.logpdf(d, p["mu"], p["sigma"]),
        {"mu": 0.0, "sigma": 1.0},
        x,
        constraints={"sigma": jm.positive},
    )
    assert res.converged, res.status
    np.testing.assert_allclose(res.params["sigma"], x.std(), rtol=1e-10)


def test_far_rate_is_found_from_rate_one_single_and_batched():
    x = np.random.default_rng(1).exponential(1e5, size=(6, 100))
    res = quiet_fit(jm.models.exponential(), {"rate": 1.0}, x[0])
    assert res.converged, res.status
    np.testing.assert_allclose(res.params["rate"], 1 / x[0].mean(), rtol=1e-10)
    batch = jm.fit_batch(jm.models.exponential(), {"rate": 1.0}, x)
    assert batch.converged.all(), batch.status
    np.testing.assert_allclose(batch.params["rate"], 1 / x.mean(axis=1), rtol=1e-10)


def test_unconstrained_sigma_from_a_small_start():
    x = np.random.default_rng(2).normal(3.0, 2.0, size=300)
    res = quiet_fit(lambda p, d: stats.norm.logpdf(d, p["mu"], jnp.abs(p["sigma"])), {"mu": 0.0, "sigma": 0.1}, x)
    assert res.converged, res.status
    np.testing.assert_allclose(abs(res.params["sigma"]), x.std(), rtol=1e-10)


# --- 5 and 6. unbounded likelihoods and non-finite gradients are named -------------------


def test_exact_linear_fit_is_an_unbounded_likelihood():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(3, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    res = quiet_fit(
        lambda p, d: stats.norm.logpdf(d["y"], d["X"] @ p["b"], p["s"]),
        {"b": np.zeros(3), "s": 1.0},
        {"X": X, "y": y},
        constraints={"s": jm.positive},
    )
    assert not res.converged
    assert res.status == Status.NO_FINITE_MAXIMUM, res.status
    assert any(note.startswith("s -> 0") for note in res.notes), res.notes


def test_nan_gradient_at_the_start_is_named():
    # an ordered probit with a scale, written with ±inf outer cutpoints: (±inf - eta) / s
    # has an infinite derivative in s where the normal density is 0, so the value is finite
    # and the gradient in s is NaN
    rng = np.random.default_rng(5)
    x = rng.normal(size=100)
    y = np.digitize(x + rng.logistic(size=100) * 0.5, [-0.5, 0.5])  # 3 ordered categories

    def ordered_probit(p, d):
        cuts = jnp.concatenate([jnp.array([-jnp.inf]), p["c"], jnp.array([jnp.inf])])
        eta = p["b"] * d["x"]
        upper = stats.norm.cdf((cuts[d["y"] + 1] - eta) / p["s"])
        return jnp.log(upper - stats.norm.cdf((cuts[d["y"]] - eta) / p["s"]))

    res = quiet_fit(
        ordered_probit,
        {"b": 0.0, "c": np.array([-1.0, 1.0]), "s": 1.0},
        {"x": x, "y": y},
        constraints={"c": jm.ordered, "s": jm.positive},
    )
    assert not res.converged
    assert res.status == Status.NONFINITE_GRADIENT, res.status
    assert any(note == "the gradient is not finite for s" for note in res.notes), res.notes


# --- multi-start ---------------------------------------------------------------------


@pytest.mark.slow
def test_symmetric_mixture_finds_the_global_maximum_with_eight_starts():
    x = mixture_data()
    best = quiet_fit(
        mixture_loglik, {"w": 0.4, "mu": np.array([-2.0, 2.5]), "sigma": np.array([1.0, 0.7])}, x, constraints=MIXTURE
    )
    assert best.converged
    start = {"w": 0.5, "mu": np.array([0.0, 0.0]), "sigma": np.array([1.0, 1.0])}
    res = quiet_fit(mixture_loglik, start, x, constraints=MIXTURE, starts=8, seed=1)
    assert res.converged
    assert abs(res.loglik - best.loglik) < 1e-8
    assert res.optima and res.optima[0].loglik == pytest.approx(res.loglik, abs=1e-8)
    assert all(o.status == Status.CONVERGED for o in res.optima)
    assert sorted((o.loglik for o in res.optima), reverse=True) == [o.loglik for o in res.optima]
    assert sum(o.count for o in res.optima) <= 8


@pytest.mark.slow
def test_explicit_starts_and_bad_starts():
    x = np.random.default_rng(3).normal(1.0, 2.0, size=100)
    ll = lambda p, d: stats.norm.logpdf(d, p["mu"], p["sigma"])  # noqa: E731
    starts = {"mu": np.array([0.0, 5.0, -5.0]), "sigma": np.array([1.0, 0.1, 10.0])}
    res = jm.fit(ll, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive}, starts=starts)
    assert res.converged and len(res.optima) == 1 and res.optima[0].count == 3
    np.testing.assert_allclose(res.params["mu"], x.mean(), rtol=1e-12)
    fixed = jm.fit(ll, {"mu": 0.0, "sigma": 2.0}, x, fixed={"sigma": 2.0}, starts=4)
    assert fixed.converged and fixed.params["sigma"] == 2.0 and fixed.optima[0].count == 4
    no_data = jm.fit(lambda p, d: -((p["a"] - 1.0) ** 2), {"a": 0.0}, starts=3)
    assert no_data.converged and abs(no_data.params["a"] - 1.0) < 1e-12
    with pytest.raises(ValueError, match="starts"):
        jm.fit(ll, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive}, starts=0)
    with pytest.raises(ValueError, match="starts"):
        jm.fit(ll, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive}, starts={"mu": np.zeros(2)})


def test_starts_with_a_built_in_model():
    # the model's own init, constraints and data reading carry into the batch of starts
    x = np.random.default_rng(4).normal(2.0, 3.0, size=100)
    res = jm.fit(jm.models.gaussian(), x, starts=3, seed=2)
    assert res.converged and len(res.optima) == 1
    np.testing.assert_allclose([res.params["mu"], res.params["sigma"]], [x.mean(), x.std()], rtol=1e-10)


def test_a_simplex_at_a_vertex_is_on_the_boundary_with_a_finite_loglik():
    # one component's data: the weight of the other runs to 0 and the inference coordinate
    # of the simplex to -inf, where its Jacobian is not finite
    x = np.random.default_rng(0).normal(0.0, 1.0, 200)

    def mixture(p, d):
        return jnp.log(p["w"][0] * stats.norm.pdf(d, 0.0, 1.0) + p["w"][1] * stats.norm.pdf(d, 3.0, 1.0))

    with pytest.warns(jm.FitWarning, match="AT_BOUNDARY"):
        res = jm.fit(mixture, {"w": np.array([0.5, 0.5])}, x, constraints={"w": jm.simplex})
    assert res.status == Status.AT_BOUNDARY and not res.converged
    np.testing.assert_allclose(res.params["w"], [1.0, 0.0], atol=1e-12)
    exact = scipy.stats.norm.logpdf(x).sum()  # the one-component log-likelihood, in float64
    np.testing.assert_allclose(res.loglik, exact, rtol=1e-12)
    data = np.stack([x, np.random.default_rng(1).normal(1.5, 1.0, 200), x])
    batch = jm.fit_batch(mixture, {"w": np.array([0.5, 0.5])}, data, constraints={"w": jm.simplex}, progress=False)
    assert list(batch.status) == [Status.AT_BOUNDARY, Status.CONVERGED, Status.AT_BOUNDARY]
    np.testing.assert_allclose(batch.loglik[[0, 2]], exact, rtol=1e-12)


def test_a_study_says_which_statuses_it_left_out():
    # n = 5 draws with p = 0.9: about 59% of the samples are all ones (p -> 1, AT_BOUNDARY)
    study = jm.simulation_study(
        loglik=bernoulli_loglik,
        simulate=lambda key, p, n: jax.random.bernoulli(key, p["p"], (n,)).astype(jnp.float64),
        truth={"p": 0.9},
        init={"p": 0.5},
        constraints={"p": jm.unit_interval},
        n=5,
        reps=200,
        seed=0,
    )
    counts = study.fits.status_counts()
    assert set(counts) <= {Status.CONVERGED, Status.AT_BOUNDARY}, counts
    assert 90 <= counts[Status.AT_BOUNDARY] <= 150
    assert study.used == counts[Status.CONVERGED]
    assert f"AT_BOUNDARY: {counts[Status.AT_BOUNDARY]}" in study.summary()


def test_a_long_direction_is_named_by_its_largest_loadings():
    from jaxmle.fit import describe_direction

    names = [f"b[{i}]" for i in range(20)]
    text = describe_direction(names, np.arange(1.0, 21.0))
    # b[19] leads; the next 8 largest loadings (b[11]..b[18]) follow in order; 11 more are counted
    assert text.startswith("b[19] + 0.6*b[11] + 0.65*b[12]"), text
    assert text.endswith("b[18] + ... (11 more terms)"), text
