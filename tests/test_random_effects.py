"""Random effects integrated out by the Laplace approximation, against exact marginals and
against lme4 and glmmTMB (reference values: tests/reference/mixed_models.R)."""

import json
import math
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from jax.scipy.stats import multivariate_normal, norm

import jaxmle as jm
from jaxmle import random_effects
from jaxmle.problem import compiled_solve, logpost_in
from jaxmle.solvers.derivatives import value_grad_hessian
from jaxmle.status import Status

REFERENCE = Path(__file__).parent / "reference"
REF = json.loads((REFERENCE / "mixed_models.json").read_text())


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jm.FitWarning)
        return jm.fit(*args, **kwargs)


# --- the marginal and its derivatives ------------------------------------------------


def small_lmm():
    rng = np.random.default_rng(0)
    groups, per = 6, 5
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=groups * per)
    y = 1.0 + 0.5 * x + 0.8 * rng.normal(size=groups)[g] + rng.normal(size=groups * per)
    return {"x": x, "y": y, "g": g}, groups


def lmm_joint(p, d):
    mu = p["b0"] + p["b1"] * d["x"] + p["u"][d["g"]]
    return norm.logpdf(d["y"], mu, jnp.exp(p["log_s"])).sum() + norm.logpdf(p["u"], 0.0, jnp.exp(p["log_t"])).sum()


def test_laplace_marginal_is_exact_for_a_linear_mixed_model():
    # y ~ N(Xb, s² I + t² Z Zᵀ) exactly: value, gradient and Hessian (the last two through
    # the implicit-function derivative of the inner mode) to round-off
    d, groups = small_lmm()
    _, re = random_effects.split(
        {"b0": 0.0, "b1": 0.0, "log_s": 0.0, "log_t": 0.0, "u": np.zeros(groups)}, ["u"], None, None, None
    )
    marginal = random_effects.marginal_loglik(lmm_joint, re)
    Z = (d["g"][:, None] == np.arange(groups)).astype(float)

    def exact(p, d):
        V = jnp.exp(2 * p["log_s"]) * jnp.eye(len(d["y"])) + jnp.exp(2 * p["log_t"]) * Z @ Z.T
        return multivariate_normal.logpdf(d["y"], p["b0"] + p["b1"] * d["x"], V)

    def all_three(f):
        return jax.jit(lambda p: (f(p, d), jax.grad(f)(p, d), jax.hessian(f)(p, d)))

    p = {"b0": 0.7, "b1": 0.3, "log_s": 0.1, "log_t": -0.2}
    with jax.enable_x64(True):
        p = {k: jnp.float64(v) for k, v in p.items()}
        got, want = all_three(marginal)(p), all_three(exact)(p)
    flat = lambda t: np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(t)])  # noqa: E731
    for a, b in zip(got, want):
        np.testing.assert_allclose(flat(a), flat(b), rtol=1e-12, atol=1e-12)


def small_logistic_glmm():
    """(data, the Laplace marginal over u of a random-intercept logistic model in b, log_t)."""
    rng = np.random.default_rng(1)
    groups = 8
    g = np.repeat(np.arange(groups), 12)
    x = rng.normal(size=g.size)
    y = (rng.uniform(size=g.size) < 1 / (1 + np.exp(-(0.3 + x + rng.normal(size=groups)[g])))).astype(float)
    d = {"x": x, "y": y, "g": g}

    def joint(p, d):
        eta = p["b"][0] + p["b"][1] * d["x"] + p["u"][d["g"]]
        return (d["y"] * eta - jnp.logaddexp(0.0, eta)).sum() + norm.logpdf(p["u"], 0.0, jnp.exp(p["log_t"])).sum()

    _, re = random_effects.split({"b": np.zeros(2), "log_t": 0.0, "u": np.zeros(groups)}, ["u"], None, None, None)
    return d, random_effects.marginal_loglik(joint, re)


def test_marginal_derivatives_match_finite_differences_for_a_logistic_glmm():
    d, marginal = small_logistic_glmm()
    with jax.enable_x64(True):
        theta = jnp.array([0.2, 0.9, 0.1])

        def f(t):
            return marginal({"b": t[:2], "log_t": t[2]}, d)

        value_grad_hessian = jax.jit(lambda t: (f(t), jax.grad(f)(t), jax.hessian(f)(t)))
        _, grad, hess = (np.asarray(a) for a in value_grad_hessian(theta))
        h = 1e-5
        eye = np.eye(3) * h
        fd_grad = np.array(
            [(value_grad_hessian(theta + e)[0] - value_grad_hessian(theta - e)[0]) / (2 * h) for e in eye]
        )
        fd_hess = np.array(
            [(value_grad_hessian(theta + e)[1] - value_grad_hessian(theta - e)[1]) / (2 * h) for e in eye]
        )
    np.testing.assert_allclose(grad, fd_grad, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(hess, fd_hess, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-12, atol=1e-12)


def test_a_warm_started_marginal_equals_the_cold_one():
    # the outer solver starts each inner solve at the last û; a start that is not finite
    # (a failed inner solve) falls back to u = 0
    d, marginal = small_logistic_glmm()

    def outer(t):
        return {"b": t[:2], "log_t": t[2]}

    def value_and_grad(f, t):  # the derivatives come from the same rule with either start
        return [np.asarray(a) for a in jax.jit(jax.value_and_grad(f))(t)]

    with jax.enable_x64(True):
        theta = jnp.array([0.2, 0.9, 0.1])
        near = marginal.warm(outer(theta + 0.05), d, None)[1]  # û from u = 0
        cold = value_and_grad(lambda t: marginal(outer(t), d), theta)
        for start in (near, jnp.full_like(near, jnp.nan)):
            warm = value_and_grad(lambda t, start=start: marginal.warm(outer(t), d, start)[0], theta)
            for got, want in zip(warm, cold):
                np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        u_hat = marginal.warm(outer(theta), d, near)[1]
        np.testing.assert_allclose(u_hat, marginal.warm(outer(theta), d, None)[1], rtol=1e-10, atol=1e-12)
        assert np.all(np.abs(np.asarray(u_hat - near)) > 1e-4)  # the start was not already the answer


def test_a_fit_takes_its_inference_and_modes_from_the_solvers_last_evaluation():
    # the information and gradient come from the trust region's final model, moved to the
    # inference coordinates by the chain rule through sd = exp(u), and the modes from its
    # last inner solve: as a direct evaluation at the estimate and a cold inner solve give them
    d, _ = small_logistic_glmm()
    groups = int(d["g"].max()) + 1

    def joint(p, d):
        eta = p["b"][0] + p["b"][1] * d["x"] + p["u"][d["g"]]
        return (d["y"] * eta - jnp.logaddexp(0.0, eta)).sum() + norm.logpdf(p["u"], 0.0, p["sd"]).sum()

    init = {"b": np.zeros(2), "sd": 1.0, "u": np.zeros(groups)}
    res = quiet_fit(joint, init, d, constraints={"sd": jm.positive}, random=["u"])
    assert res.converged
    prep = res._prep
    problem, space = prep.problem, prep.problem.space
    with jax.enable_x64(True):
        raw = compiled_solve(problem)(jnp.asarray(prep.u0), prep.fixed_leaves, prep.data)
        z = space.x_leaves_to_z(space.x_flat_to_leaves(jnp.asarray(raw.x)))
        logpost_z = logpost_in(problem, "z")
        value, grad, hessian = value_grad_hessian(lambda c: logpost_z(c, prep.fixed_leaves, prep.data), z)
        cold = random_effects.predict(problem.loglik, space, res._x, prep.fixed_leaves, prep.data, res.cov, np.float64)
    np.testing.assert_allclose(raw.information_z, -np.asarray(hessian), rtol=1e-9)
    np.testing.assert_allclose(raw.grad_z, grad, atol=1e-9)
    assert float(raw.loglik) == pytest.approx(float(value), rel=1e-13)
    np.testing.assert_allclose(raw.modes, cold.modes["u"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.params["u"], cold.modes["u"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.se["u"], cold.se["u"], rtol=1e-10)


def test_a_joint_density_that_is_not_finite_at_the_start_is_named_before_the_fit():
    # the start is checked on the user's joint density where the inner solve starts (u = 0),
    # per observation, and the marginal's nobs is the one given
    d, _ = small_logistic_glmm()
    groups = int(d["g"].max()) + 1

    def joint(p, d):
        eta = p["b"][0] + p["b"][1] * d["x"] + p["u"][d["g"]]
        terms = d["y"] * eta - jnp.logaddexp(0.0, eta)
        return jnp.concatenate([terms, norm.logpdf(p["u"], 0.0, p["sd"])])

    init = {"b": np.array([0.0, 1.0]), "sd": 1.0, "u": np.zeros(groups)}
    bad = dict(d, x=np.where(np.arange(d["x"].size) == 3, np.inf, d["x"]))
    with pytest.raises(ValueError, match=r"data: infinite values in data\['x'\].*\(1 of 104 terms\)"):
        jm.fit(joint, init, bad, constraints={"sd": jm.positive}, random=["u"])
    res = quiet_fit(joint, init, d, constraints={"sd": jm.positive}, random=["u"], nobs=96)
    assert res.converged and res.nobs == 96 and res.df == 3


def test_the_inner_solve_settles_in_float32():
    # the decrement cannot fall below float32's round-off: a float64 tolerance made one of
    # these nine marginals NaN (an inner solve that never converged)
    d, marginal = small_logistic_glmm()
    marginal = jax.jit(marginal)
    d32 = {k: jnp.asarray(v, jnp.float32) if np.asarray(v).dtype.kind == "f" else jnp.asarray(v) for k, v in d.items()}
    for t in np.linspace(-1.0, 1.0, 9):
        value32 = marginal({"b": jnp.array([0.2 + t, 0.9], jnp.float32), "log_t": jnp.float32(0.1 + t)}, d32)
        with jax.enable_x64(True):
            value64 = marginal({"b": jnp.array([0.2 + t, 0.9]), "log_t": jnp.float64(0.1 + t)}, d)
        assert np.isfinite(value32), t
        np.testing.assert_allclose(value32, value64, rtol=1e-5)


def test_conditionally_independent_groups_are_found_and_integrate_block_by_block():
    d, groups = small_lmm()
    init = {"b0": 0.0, "b1": 0.0, "log_s": 0.0, "log_t": 0.0, "u": np.zeros(groups)}
    blocks, _ = random_effects.outer_problem(lmm_joint, init, ["u"], None, None, None, d)
    assert blocks.random_effects.groups == groups
    dense = random_effects.marginal_loglik(lmm_joint, blocks.random_effects.__class__(("u",), ((groups,),)))
    p = {"b0": 0.7, "b1": 0.3, "log_s": 0.1, "log_t": -0.2}
    with jax.enable_x64(True):
        p = {k: jnp.float64(v) for k, v in p.items()}
        got, want = (jax.jit(lambda p, f=f: (f(p, d), jax.hessian(f)(p, d)))(p) for f in (blocks, dense))
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_coupled_random_effects_are_integrated_densely():
    # a latent AR(1) series u (one entry per time, so one "group" per row by shape alone)
    # observed with noise: the rows are coupled, the structure check sees it, and the
    # marginal is the exact Gaussian one
    T, rng = 12, np.random.default_rng(3)
    y = np.cumsum(rng.normal(size=T))

    def joint(p, y):
        u, phi, tau = p["u"], p["phi"], jnp.exp(p["log_tau"])
        latent = norm.logpdf(u[0], 0.0, tau / jnp.sqrt(1 - phi**2)) + norm.logpdf(u[1:], phi * u[:-1], tau).sum()
        return latent + norm.logpdf(y, u, 0.5).sum()

    init = {"phi": 0.5, "log_tau": 0.0, "u": np.zeros(T)}
    marginal, _ = random_effects.outer_problem(joint, init, ["u"], None, None, None, y)
    assert marginal.random_effects.groups is None
    phi, tau = 0.6, 1.3
    lags = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    V = tau**2 / (1 - phi**2) * phi**lags + 0.25 * np.eye(T)
    with jax.enable_x64(True):
        got = marginal({"phi": jnp.float64(phi), "log_tau": jnp.float64(np.log(tau))}, y)
        want = multivariate_normal.logpdf(y, np.zeros(T), V)
    np.testing.assert_allclose(got, want, rtol=1e-12)


# --- against lme4 and glmmTMB --------------------------------------------------------


def sleepstudy():
    s = pd.read_csv(REFERENCE / "sleepstudy.csv")
    subject = pd.factorize(s["Subject"])[0]
    return {"y": s["Reaction"].to_numpy(float), "days": s["Days"].to_numpy(float), "subject": subject}


def sleepstudy_joint(p, d):
    """Reaction ~ Days + (Days | Subject): b[subject] ~ N(0, Σ), Σ from two SDs and a correlation."""
    b = p["b"]
    mu = p["beta"][0] + p["beta"][1] * d["days"] + b[d["subject"], 0] + b[d["subject"], 1] * d["days"]
    sd, rho = p["sd"], p["rho"]
    cov = jnp.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
    return norm.logpdf(d["y"], mu, p["sigma"]).sum() + multivariate_normal.logpdf(b, jnp.zeros(2), cov).sum()


SLEEPSTUDY_INIT = {
    "beta": np.array([250.0, 10.0]),
    "sigma": 20.0,
    "sd": np.array([20.0, 5.0]),
    "rho": 0.0,
    "b": np.zeros((18, 2)),
}
SLEEPSTUDY_CONSTRAINTS = {"sigma": jm.positive, "sd": jm.positive, "rho": jm.interval(-1.0, 1.0)}


def sdcor(res):
    return np.array([*res.params["sd"], res.params["rho"], res.params["sigma"]])


def test_sleepstudy_ml_matches_lme4_and_glmmtmb():
    res = jm.fit(sleepstudy_joint, SLEEPSTUDY_INIT, sleepstudy(), constraints=SLEEPSTUDY_CONSTRAINTS, random=["b"])
    lme4, tmb = REF["sleepstudy_ml"], REF["sleepstudy_ml_tmb"]
    assert res.converged and res.random == ("b",) and res.df == 6
    # the Laplace approximation is exact here: the same marginal log-likelihood, at least as high
    assert res.loglik >= max(lme4["logLik"], tmb["logLik"]) - 1e-10
    np.testing.assert_allclose(res.loglik, lme4["logLik"], rtol=1e-12)
    np.testing.assert_allclose(res.params["beta"], lme4["fixef"], rtol=1e-6)
    # the correlation (0.081, SE 0.27) is compared absolutely: 1e-7 in it moves the
    # log-likelihood by 1e-13, below what either optimizer resolves
    np.testing.assert_allclose(sdcor(res), lme4["vc_sdcor"], rtol=1e-6, atol=1e-6)
    # SEs from the observed information of the marginal (glmmTMB's sdreport computes the same)
    np.testing.assert_allclose(res.se["beta"], tmb["se"], rtol=1e-5)
    # conditional modes (lme4's, at its better-converged estimate; glmmTMB's outer estimates
    # differ by 1e-7 relative, its modes by 1e-4) and their prediction SEs (sdreport:
    # Var(û - u) including the outer parameters' uncertainty)
    np.testing.assert_allclose(res.params["b"].ravel(), lme4["ranef"], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(res.se["b"].ravel(), tmb["ranef_se"], rtol=1e-5)
    assert "integrated out" in res.summary()


@pytest.mark.slow
def test_sleepstudy_reml_integrates_the_fixed_effects_out():
    res = jm.fit(
        sleepstudy_joint, SLEEPSTUDY_INIT, sleepstudy(), constraints=SLEEPSTUDY_CONSTRAINTS, random=["b", "beta"]
    )
    lme4 = REF["sleepstudy_reml"]
    assert res.converged and res.df == 4
    np.testing.assert_allclose(res.loglik, lme4["logLik"], rtol=1e-12)
    np.testing.assert_allclose(sdcor(res), lme4["vc_sdcor"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res.params["beta"], lme4["fixef"], rtol=1e-9)
    # lme4's SEs hold the variance parameters fixed; ours add their uncertainty (J Σ Jᵀ), which
    # for the GLS estimate of beta is second order
    np.testing.assert_allclose(res.se["beta"], lme4["se"], rtol=1e-5)


def cbpp():
    c = pd.read_csv(REFERENCE / "cbpp.csv")
    X = np.column_stack([np.ones(len(c))] + [(c["period"] == k).to_numpy(float) for k in (2, 3, 4)])
    herd = pd.factorize(c["herd"], sort=True)[0]
    d = {"X": X, "k": c["incidence"].to_numpy(float), "n": c["size"].to_numpy(float), "herd": herd}
    # lme4's and glmmTMB's log-likelihoods include the binomial coefficients
    const = sum(math.log(math.comb(int(n), int(k))) for n, k in zip(d["n"], d["k"]))
    return d, const


def cbpp_joint(p, d):
    eta = d["X"] @ p["beta"] + p["u"][d["herd"]]
    return (d["k"] * eta - d["n"] * jnp.logaddexp(0.0, eta)).sum() + norm.logpdf(p["u"], 0.0, p["sd"]).sum()


def test_cbpp_binomial_glmm_laplace():
    d, const = cbpp()
    init = {"beta": np.zeros(4), "sd": 1.0, "u": np.zeros(15)}
    res = jm.fit(cbpp_joint, init, d, constraints={"sd": jm.positive}, random=["u"], nobs=len(d["k"]))
    lme4, tmb = REF["cbpp_laplace"], REF["cbpp_laplace_tmb"]
    assert res.converged and res.df == 5
    loglik = res.loglik + const
    assert loglik >= max(lme4["logLik"], tmb["logLik"]) - 1e-10, (loglik, lme4["logLik"], tmb["logLik"])
    best = tmb if tmb["logLik"] >= lme4["logLik"] else lme4
    np.testing.assert_allclose(res.params["beta"], best["fixef"], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(res.se["beta"], best["se"], rtol=1e-3)
    np.testing.assert_allclose(res.params["sd"], lme4["vc_sdcor"], rtol=1e-3)  # one SD: a scalar in the JSON
    assert np.isfinite(res.bic) and res.aic == pytest.approx(2 * 5 - 2 * res.loglik)


@pytest.mark.slow
def test_cbpp_adaptive_gauss_hermite_matches_lme4_nagq25():
    d, const = cbpp()
    init = {"beta": np.zeros(4), "sd": 1.0, "u": np.zeros(15)}
    res = jm.fit(cbpp_joint, init, d, constraints={"sd": jm.positive}, random=["u"], nagq=25)
    ref = REF["cbpp_agq25"]
    assert res.converged
    # lme4 reports -deviance/2 for nAGQ > 1, the log-likelihood less the saturated binomial
    # model's (sum of log Binomial(k; n, k/n))
    k, n = d["k"], d["n"]
    saturated = sum(math.log(math.comb(int(b), int(a))) for a, b in zip(k, n)) + np.sum(
        np.where(k > 0, k * np.log(np.where(k > 0, k / n, 1.0)), 0.0)
        + np.where(n > k, (n - k) * np.log(np.where(n > k, 1 - k / n, 1.0)), 0.0)
    )
    loglik = res.loglik + const - saturated
    assert loglik >= ref["logLik"] - 1e-8, (loglik, ref["logLik"])
    np.testing.assert_allclose(loglik, ref["logLik"], rtol=1e-9)
    np.testing.assert_allclose(res.params["beta"], ref["fixef"], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(res.se["beta"], ref["se"], rtol=1e-3)
    np.testing.assert_allclose(res.params["sd"], ref["vc_sdcor"], rtol=1e-3)


def test_adaptive_gauss_hermite_is_exact_for_gaussian_groups_and_one_node_is_laplace():
    d, groups = small_lmm()
    init = {"b0": 0.0, "b1": 0.0, "log_s": 0.0, "log_t": 0.0, "u": np.zeros(groups)}
    p = {"b0": 0.7, "b1": 0.3, "log_s": 0.1, "log_t": -0.2}
    values = []
    for nagq in (1, 7):
        marginal, _ = random_effects.outer_problem(lmm_joint, init, ["u"], None, None, None, d, nagq=nagq)
        with jax.enable_x64(True):
            q = {k: jnp.float64(v) for k, v in p.items()}
            values.append(jax.jit(lambda q, m=marginal: (m(q, d), jax.hessian(m)(q, d)))(q))
    flat = [np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(v)]) for v in values]
    np.testing.assert_allclose(flat[1], flat[0], rtol=1e-10, atol=1e-10)


@pytest.mark.slow
def test_grouseticks_poisson_glmm():
    g = pd.read_csv(REFERENCE / "grouseticks.csv")
    years = sorted(g["YEAR"].unique())
    X = np.column_stack(
        [np.ones(len(g))] + [(g["YEAR"] == y).to_numpy(float) for y in years[1:]] + [g["cHEIGHT"].to_numpy(float)]
    )
    brood = pd.factorize(g["BROOD"], sort=True)[0]
    d = {"X": X, "y": g["TICKS"].to_numpy(float), "brood": brood}
    const = -sum(math.lgamma(v + 1) for v in d["y"])

    def joint(p, d):
        eta = d["X"] @ p["beta"] + p["u"][d["brood"]]
        return (d["y"] * eta - jnp.exp(eta)).sum() + norm.logpdf(p["u"], 0.0, p["sd"]).sum()

    init = {"beta": np.zeros(X.shape[1]), "sd": 1.0, "u": np.zeros(brood.max() + 1)}
    res = jm.fit(joint, init, d, constraints={"sd": jm.positive}, random=["u"])
    lme4, tmb = REF["grouseticks"], REF["grouseticks_tmb"]
    assert res.converged
    assert res.loglik + const >= max(lme4["logLik"], tmb["logLik"]) - 1e-10
    best = tmb if tmb["logLik"] >= lme4["logLik"] else lme4
    np.testing.assert_allclose(res.params["beta"], best["fixef"], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(res.se["beta"], best["se"], rtol=1e-3)


def test_a_variance_component_on_its_boundary_is_named():
    # Dyestuff2: the batch SD's maximum likelihood estimate is 0 (lme4: a singular fit)
    dy = pd.read_csv(REFERENCE / "dyestuff2.csv")
    d = {"y": dy["Yield"].to_numpy(float), "batch": pd.factorize(dy["Batch"], sort=True)[0]}

    def joint(p, d):
        mu = p["mu"] + p["u"][d["batch"]]
        return norm.logpdf(d["y"], mu, p["sigma"]).sum() + norm.logpdf(p["u"], 0.0, p["sd"]).sum()

    init = {"mu": 5.0, "sigma": 3.0, "sd": 1.0, "u": np.zeros(6)}
    res = quiet_fit(joint, init, d, constraints={"sd": jm.positive, "sigma": jm.positive}, random=["u"])
    lme4 = REF["dyestuff2_ml"]
    assert lme4["singular"] and lme4["vc_sdcor"][0] == 0
    assert not res.converged and res.status == Status.AT_BOUNDARY, res.status
    assert any(n.startswith("sd -> 0 (positive)") for n in res.notes), res.notes
    np.testing.assert_allclose(res.loglik, lme4["logLik"], rtol=1e-12)
    np.testing.assert_allclose([res.params["mu"], res.params["sigma"]], [lme4["fixef"], lme4["sigma"]], rtol=1e-6)
    assert np.isnan(res.se["sd"]), "no Wald interval for an SD at 0"
    # the other SEs hold sd at 0: those of the model without the random effect, in closed form
    n, sigma = len(d["y"]), res.params["sigma"]
    np.testing.assert_allclose([res.se["mu"], res.se["sigma"]], [sigma / n**0.5, sigma / (2 * n) ** 0.5], rtol=1e-6)


@pytest.mark.slow
def test_a_correlation_of_random_effects_at_one_is_on_the_boundary():
    # a random intercept and slope whose correlation's supremum is at 1: lme4 and glmmTMB
    # report 1.000; the marginal levels off towards it, and the boundary probes, within
    # 1e-14 of 1, cannot evaluate it accurately: a boundary, not an unbounded likelihood
    sb = pd.read_csv(REFERENCE / "slope_boundary.csv")
    d = {"x": sb["x"].to_numpy(float), "y": sb["y"].to_numpy(float), "g": sb["g"].to_numpy()}

    def joint(p, d):
        b = p["b"]
        eta = p["beta"][0] + p["beta"][1] * d["x"] + b[d["g"], 0] + b[d["g"], 1] * d["x"]
        sd, rho = p["sd"], p["rho"]
        cov = jnp.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
        return (d["y"] * eta - jnp.logaddexp(0.0, eta)).sum() + multivariate_normal.logpdf(b, jnp.zeros(2), cov).sum()

    init = {"beta": np.zeros(2), "sd": np.ones(2), "rho": 0.0, "b": np.zeros((300, 2))}
    constraints = {"sd": jm.positive, "rho": jm.interval(-1.0, 1.0)}
    res = quiet_fit(joint, init, d, constraints=constraints, random=["b"])
    lme4, tmb = REF["slope_boundary"], REF["slope_boundary_tmb"]
    assert res.status == Status.AT_BOUNDARY, res.status
    assert any(n.startswith("rho -> 1") for n in res.notes), res.notes
    assert res.params["rho"] > 0.9999 and lme4["vc_sdcor"][2] > 0.9999
    assert res.loglik >= max(lme4["logLik"], tmb["logLik"]) - 1e-10, (res.loglik, lme4["logLik"], tmb["logLik"])
    np.testing.assert_allclose(res.params["beta"], lme4["fixef"], atol=2e-3)
    np.testing.assert_allclose(res.params["sd"], lme4["vc_sdcor"][:2], rtol=2e-3)


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"random": ["w"]}, "random: w not in init"),
        ({"random": []}, "random must be a non-empty list"),
        ({"random": ["u", "u"]}, "each name once"),
        ({"random": ["u"], "constraints": {"u": jm.positive}}, "random: u also named in constraints"),
        ({"random": ["u"], "fixed": {"u": np.zeros(3)}}, "random: u also named in fixed"),
        ({"random": ["u", "v", "mu"]}, "nothing to fit"),
        ({"random": ["u"], "cov_type": "robust"}, "cov_type must be 'observed' with random effects"),
        ({"random": ["u"], "nagq": 0}, "nagq must be an integer from 1 to 25"),
        ({"nagq": 3}, "nagq: quadrature over random effects needs random="),
        ({"random": ["u", "v"], "nagq": 3}, "nagq: adaptive quadrature needs one scalar random effect per"),
    ],
)
def test_bad_random_arguments_are_named(kwargs, match):
    def joint(p, d):
        u = p["u"] + p["v"]
        return norm.logpdf(d, p["mu"] + u, 1.0).sum() + norm.logpdf(u, 0.0, 1.0).sum()

    with pytest.raises(ValueError, match=match):
        jm.fit(joint, {"mu": 0.0, "u": np.zeros(3), "v": np.zeros(3)}, np.ones(3), **kwargs)


def test_random_needs_a_joint_density_not_a_built_in_model():
    with pytest.raises(ValueError, match="random: a built-in model has no random effects"):
        jm.fit(jm.models.poisson(), np.array([1.0, 2.0, 3.0]), random=["lam"])


# --- batches -------------------------------------------------------------------------


@pytest.mark.slow
def test_fit_batch_integrates_each_replicate_like_fit():
    d, groups = small_lmm()
    rng = np.random.default_rng(7)
    ys = np.stack([d["y"], d["y"] + rng.normal(size=d["y"].size), d["y"][::-1]])
    data = {"x": np.broadcast_to(d["x"], ys.shape), "y": ys, "g": np.broadcast_to(d["g"], ys.shape)}
    init = {"b0": 0.0, "b1": 0.0, "log_s": 0.0, "log_t": 0.0, "u": np.zeros(groups)}
    batch = jm.fit_batch(lmm_joint, init, data, random=["u"], progress=False)
    assert batch.converged.all()
    for i in range(len(ys)):
        one = jm.fit(lmm_joint, init, {"x": d["x"], "y": ys[i], "g": d["g"]}, random=["u"])
        np.testing.assert_allclose(batch.loglik[i], one.loglik, rtol=1e-12)
        np.testing.assert_allclose(batch.params["log_t"][i], one.params["log_t"], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(batch.se["b1"][i], one.se["b1"], rtol=1e-7)


@pytest.mark.slow
def test_simulation_study_integrates_each_simulated_replicate_like_fit():
    groups, per = 6, 5
    g = np.repeat(np.arange(groups), per)

    def simulate(key, truth, n):
        k1, k2 = jax.random.split(key)
        u = truth["sd"] * jax.random.normal(k1, (groups,))
        return {"y": truth["mu"] + u[g] + jax.random.normal(k2, (groups * per,)), "g": jnp.asarray(g)}

    def joint(p, d):
        return norm.logpdf(d["y"], p["mu"] + p["u"][d["g"]], 1.0).sum() + norm.logpdf(p["u"], 0.0, p["sd"]).sum()

    truth = {"mu": 1.0, "sd": 0.8}
    init = {"mu": 0.0, "sd": 1.0, "u": np.zeros(groups)}
    options = dict(constraints={"sd": jm.positive}, random=["u"])
    study = jm.simulation_study(
        truth=truth,
        n=groups * per,
        reps=3,
        seed=4,
        simulate=simulate,
        loglik=joint,
        init=init,
        progress=False,
        **options,
    )
    with jax.enable_x64(True):
        data = jax.tree_util.tree_map(np.asarray, simulate(jax.random.fold_in(jax.random.key(4), 2), truth, 0))
    one = quiet_fit(joint, init, data, **options)
    np.testing.assert_allclose(study.fits.params["mu"][2], one.params["mu"], rtol=1e-9)
    np.testing.assert_allclose(study.fits.loglik[2], one.loglik, rtol=1e-12)
