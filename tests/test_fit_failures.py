"""Fits that cannot succeed say why; bad input raises ValueError naming the argument."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

import jaxmle as jm


def logistic_loglik(p, d):
    eta = d["X"] @ p["beta"]
    return d["y"] * eta - jnp.logaddexp(0.0, eta)


def gaussian_loglik(p, x):
    return stats.norm.logpdf(x, p["mu"], p["sigma"])


def test_perfect_separation_is_no_finite_maximum():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(200), rng.normal(size=(200, 2))])
    y = (X[:, 1] > 0).astype(float)
    with pytest.warns(jm.FitWarning, match="NO_FINITE_MAXIMUM"):
        res = jm.fit(logistic_loglik, {"beta": np.zeros(3)}, {"X": X, "y": y})
    assert not res.converged and res.status == jm.Status.NO_FINITE_MAXIMUM
    assert res.n_iter <= 10
    assert "separation" in res.status.message


def test_all_ones_bernoulli_runs_to_the_boundary():
    with pytest.warns(jm.FitWarning):
        res = jm.fit(
            lambda p, d: stats.bernoulli.logpmf(d, p["p"]), {"p": 0.5}, np.ones(30), constraints={"p": jm.unit_interval}
        )
    assert res.status == jm.Status.AT_BOUNDARY and not res.converged
    assert res.n_iter <= 10


def test_unbounded_likelihood_does_not_claim_success():
    # all observations equal: the Gaussian likelihood grows without bound as sigma -> 0
    with pytest.warns(jm.FitWarning):
        res = jm.fit(gaussian_loglik, {"mu": 1.0, "sigma": 1.0}, np.full(5, 1.0), constraints={"sigma": jm.positive})
    assert not res.converged
    assert res.status in (jm.Status.LINE_SEARCH_FAILED, jm.Status.NO_FINITE_MAXIMUM)
    assert res.n_iter <= 100


def test_throw_raises_instead_of_warning():
    with pytest.raises(jm.FitError, match="AT_BOUNDARY"):
        jm.fit(
            lambda p, d: stats.bernoulli.logpmf(d, p["p"]),
            {"p": 0.5},
            np.ones(30),
            constraints={"p": jm.unit_interval},
            throw=True,
        )


def test_collinear_design_names_the_unidentified_combination():
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(60), rng.normal(size=(60, 2))])
    X = np.column_stack([X, X[:, 1] + X[:, 2]])  # b[3] duplicates b[1] + b[2]
    y = X[:, :3] @ np.array([1.0, 2.0, 3.0]) + rng.normal(size=60)
    with pytest.warns(jm.FitWarning, match="INFORMATION_NOT_PD"):
        res = jm.fit(
            lambda p, d: stats.norm.logpdf(d["y"], d["X"] @ p["b"], p["s"]),
            {"b": np.zeros(4), "s": 1.0},
            {"X": X, "y": y},
            constraints={"s": jm.positive},
        )
    assert res.status == jm.Status.INFORMATION_NOT_PD and not res.positive_definite
    se = res.se["b"]
    assert np.all(np.isnan(se[1:])) and np.isfinite(se[0]) and np.isfinite(res.se["s"])
    assert any("b[3] - b[1] - b[2] is not identified" in note for note in res.notes)
    assert "b[3] - b[1] - b[2]" in res.summary()
    # the identified parameters still match OLS on the reduced design
    Xr = X[:, :3]
    beta = np.linalg.lstsq(Xr, y, rcond=None)[0]
    np.testing.assert_allclose(res.params["s"], np.sqrt(np.mean((y - Xr @ beta) ** 2)), rtol=1e-8)


# --- bad input -------------------------------------------------------------------------


def fit_gauss(**kw):
    args = dict(
        loglik=gaussian_loglik, init={"mu": 0.0, "sigma": 1.0}, data=np.arange(5.0), constraints={"sigma": jm.positive}
    )
    args.update(kw)
    return jm.fit(args.pop("loglik"), args.pop("init"), args.pop("data"), **args)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(data=np.array([1.0, np.nan])), r"data contains 1 NaN"),
        (dict(data=np.array([1.0, np.inf])), r"data: infinite values in data \(1\), and loglik is not finite"),
        (dict(init={"mu": 0.0, "sigma": -1.0}), r"init: 'sigma' must be > 0"),
        (dict(constraints={"sigam": jm.positive}), r"constraints: \['sigam'\] are not parameters"),
        (dict(prior={"nu": jm.priors.Normal()}), r"prior: \['nu'\] are not parameters"),
        (dict(fixed={"tau": 1.0}), r"fixed: \['tau'\] are not parameters"),
        (dict(prior={"mu": jm.priors.Gamma(2.0, 1.0)}), r"prior\['mu'\]: Gamma has support \[0, inf\]"),
        (dict(prior={"sigma": jm.priors.Laplace()}), r"Laplace \(L1\) prior needs an unconstrained"),
        (dict(loglik=lambda p, x: jnp.outer(x, x) * p["mu"]), r"scalar or a 1-D vector"),
        (dict(loglik=lambda p, x: jnp.log(x - 2.0) + p["mu"]), r"loglik is not finite at the starting values"),
        (dict(method="bfgs"), r"method must be"),
        (dict(constraints={"sigma": "positive"}), r"constraints\['sigma'\] must be a jaxmle constraint"),
        (dict(fixed={"mu": np.zeros(2)}), r"fixed\['mu'\] has shape"),
        (dict(max_iter=0), r"max_iter must be a positive integer"),
        (dict(dtype="int32"), r"dtype must be float32 or float64"),
        (dict(prior={"mu": jm.priors.Laplace()}, method="lbfgs"), r"cannot handle a Laplace"),
        (dict(fixed={"sigma": -1.0}), r"fixed\['sigma'\]: 'sigma' must be >= 0 under its constraint positive"),
        (dict(fixed={"sigma": {"a": 1.0}}), r"fixed\['sigma'\]: element indices need a vector or array parameter"),
        (dict(prior=lambda p: jnp.ones(3) * p["mu"]), r"prior: the log-prior must return a scalar"),
        (dict(data=np.array(["a", "b"])), r"data must hold numbers"),
        (
            dict(init={"mu": 0.0, "sigma": 1.0, "p": 0.5}, constraints={"sigma": jm.positive, "p": jm.simplex}),
            r"init: 'p': a simplex constraint needs a 1-D parameter",
        ),
    ],
)
def test_bad_input_raises_before_compiling(kwargs, match):
    traced = []
    base = kwargs.get("loglik", gaussian_loglik)

    def counting(p, x):
        if isinstance(jax.tree_util.tree_leaves(p)[0], jax.core.Tracer):
            traced.append(1)
        return base(p, x)

    kwargs["loglik"] = counting
    with pytest.raises(ValueError, match=match):
        fit_gauss(**kwargs)
    # the fit itself was never compiled (only the start-value check may trace loglik once)
    assert len(traced) <= 1


def test_prior_parameters_are_checked():
    with pytest.raises(ValueError, match="Normal scale must be a finite number > 0"):
        jm.priors.Normal(0.0, -1.0)
    with pytest.raises(ValueError, match="interval"):
        jm.interval(1.0, 0.0)


def test_bic_needs_nobs_for_a_scalar_loglik():
    x = np.random.default_rng(2).normal(size=50)
    total = lambda p, d: jnp.sum(stats.norm.logpdf(d, p["mu"], 1.0))
    res = jm.fit(total, {"mu": 0.0}, x)
    assert res.nobs is None
    with pytest.raises(ValueError, match="pass nobs="):
        _ = res.bic
    res = jm.fit(total, {"mu": 0.0}, x, nobs=50)
    np.testing.assert_allclose(res.bic, np.log(50) - 2 * res.loglik)


def test_fixed_parameters_are_excluded_from_df_and_covariance():
    x = np.random.default_rng(3).normal(2.0, 3.0, size=100)
    res = jm.fit(
        gaussian_loglik, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive}, fixed={"sigma": 3.0}
    )
    assert res.df == 1 and res.names == ["mu"] and res.cov.shape == (1, 1)
    np.testing.assert_allclose(res.params["mu"], x.mean(), rtol=1e-10)
    np.testing.assert_allclose(res.se["mu"], 3.0 / 10.0, rtol=1e-10)
    assert res.params["sigma"] == 3.0 and res.se["sigma"] == 0.0
    np.testing.assert_allclose(res.aic, 2 - 2 * res.loglik)


def test_a_clean_fit_does_not_warn():
    x = np.random.default_rng(4).normal(size=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_gauss(data=x)


@pytest.mark.parametrize(
    "information, note, se_finite",
    [
        (np.array([[np.nan, 0.0], [0.0, 2.0]]), "NaN or infinite entries", [False, False]),
        (np.array([[1.0, 0.0], [0.0, -2.0]]), "curves upward along b: the estimate is a saddle", [True, False]),
        (np.array([[1.0, 1.0], [1.0, 1.0]]), "b - a is not identified", [False, False]),
    ],
    ids=["non-finite", "saddle", "singular"],
)
def test_information_diagnostics_say_what_is_wrong(information, note, se_finite):
    import sys

    from jaxmle.inference import observed_inference

    diagnostic_notes = sys.modules["jaxmle.fit"].diagnostic_notes
    inf = observed_inference(information, None, np.zeros(2, bool))
    notes = diagnostic_notes(["a", "b"], inf)
    assert len(notes) == 1 and note in notes[0]
    assert not inf.positive_definite
    np.testing.assert_array_equal(np.isfinite(inf.se), se_finite)
