"""jm.sample (NUTS through blackjax) against conjugate posteriors with closed forms, the
bijectors' log-Jacobians against autodiff, and the convergence diagnostics against their
known values on simulated chains."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

import jaxmle as jm
from jaxmle import closed_form, diagnostics
from jaxmle.parameters import build_space

pytest.importorskip("blackjax")

CHAINS, DRAWS, WARMUP = 4, 1000, 500
#: Monte Carlo standard errors allowed between a posterior moment and its closed form
Z = 4.0


# --- log-Jacobians -------------------------------------------------------------------------
ELEMENTWISE = [
    jm.real,
    jm.positive,
    jm.unit_interval,
    jm.interval(-2.0, 3.0),
    jm.greater_than(1.0),
    jm.less_than(2.0),
]


@pytest.mark.parametrize("constraint", ELEMENTWISE + [jm.ordered], ids=repr)
def test_log_jacobian_matches_autodiff(constraint):
    u = np.array([-1.3, 0.2, 2.1])
    with jax.enable_x64(True):
        u = jnp.asarray(u)
        _, expected = jnp.linalg.slogdet(jax.jacobian(constraint.forward)(u))
        assert float(constraint.log_abs_det_jacobian(u)) == pytest.approx(float(expected), rel=1e-12, abs=1e-12)


def test_simplex_log_jacobian_is_that_of_the_free_probabilities():
    with jax.enable_x64(True):
        u = jnp.asarray([0.4, -1.1, 0.7])
        _, expected = jnp.linalg.slogdet(jax.jacobian(lambda v: jm.simplex.forward(v)[:-1])(u))
        assert float(jm.simplex.log_abs_det_jacobian(u)) == pytest.approx(float(expected), rel=1e-12)


def test_space_log_jacobian_sums_the_free_leaves():
    init = {"w": np.full(3, 1 / 3), "s": np.ones(2), "c": 0.5, "m": 0.0}
    constraints = {"w": jm.simplex, "s": jm.positive, "c": jm.unit_interval}
    space, _ = build_space(init, constraints, {"m": 0.0})
    with jax.enable_x64(True):
        u = jnp.asarray([0.3, -0.5, 1.2, -0.4, 0.9])

        def free_x(v):  # leaves in key order; a simplex's last probability is implied by the others
            c, s, w = space.u_to_x_leaves(v)
            return jnp.concatenate([c[None], s, w[:-1]])

        _, expected = jnp.linalg.slogdet(jax.jacobian(free_x)(u))
        assert float(space.log_abs_det_jacobian(u)) == pytest.approx(float(expected), rel=1e-12)


# --- diagnostics on chains with known answers ---------------------------------------------
def ar1(phi, chains, n, seed):
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(chains, n)) * np.sqrt(1 - phi**2)
    x = np.empty((chains, n))
    x[:, 0] = rng.normal(size=chains)
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def test_iid_draws_have_rhat_one_and_ess_n():
    x = np.random.default_rng(0).normal(size=(4, 1000))
    assert abs(diagnostics.rhat(x) - 1) < 0.01
    assert diagnostics.ess_bulk(x) == pytest.approx(4000, rel=0.15)
    assert diagnostics.ess_mean(x) == pytest.approx(4000, rel=0.15)
    assert diagnostics.ess_tail(x) == pytest.approx(4000, rel=0.25)
    assert diagnostics.mcse_mean(x) == pytest.approx(np.std(x) / np.sqrt(4000), rel=0.1)


def reference_rhat(x):
    """Vehtari et al. (2021), eqs. 1-4 with rank normalization (their section 4.1), through
    scipy: max of the split R-hat of z-scored ranks of x and of |x - median(x)|."""
    from scipy.stats import norm, rankdata

    def split_rhat(y):
        n = y.shape[1]
        w = y.var(axis=1, ddof=1).mean()
        b = n * y.mean(axis=1).var(ddof=1)
        return np.sqrt(((n - 1) / n * w + b / n) / w)

    def z(y):
        return norm.ppf((rankdata(y, method="average").reshape(y.shape) - 0.375) / (y.size + 0.25))

    half = x.shape[1] // 2
    s = np.concatenate([x[:, :half], x[:, -half:]])
    return max(split_rhat(z(s)), split_rhat(z(np.abs(s - np.median(s)))))


def test_a_chain_stuck_elsewhere_gives_large_rhat():
    x = np.random.default_rng(1).normal(size=(4, 1000))
    x[3] += 3.0
    assert diagnostics.rhat(x) > 1.3
    assert diagnostics.rhat(x) == pytest.approx(reference_rhat(x), rel=1e-10)


def test_a_chain_with_another_scale_is_caught_by_the_folded_rhat():
    x = np.random.default_rng(2).normal(size=(4, 1000))
    x[3] *= 3.0  # same centre: the location R-hat alone stays near one
    assert diagnostics.rhat(x) > 1.1
    assert diagnostics.rhat(x) == pytest.approx(reference_rhat(x), rel=1e-10)


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_ar1_chains_have_ess_n_times_1_minus_phi_over_1_plus_phi(phi):
    x = ar1(phi, 4, 10_000, seed=3)
    expected = x.size * (1 - phi) / (1 + phi)
    assert diagnostics.ess_mean(x) == pytest.approx(expected, rel=0.15)
    assert diagnostics.ess_bulk(x) == pytest.approx(expected, rel=0.15)
    assert abs(diagnostics.rhat(x) - 1) < 0.01


# --- posteriors against their closed forms ------------------------------------------------
BERNOULLI = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0])
NORMAL = np.random.default_rng(4).normal(1.5, 2.0, size=15)
POISSON = np.array([3, 1, 4, 1, 5, 0, 2, 6, 2, 3])
COUNTS = np.array([4, 1, 6])


def conjugate_loglik(params, data):
    """Four independent models in one (one compile): Bernoulli(p), N(mu, sigma²) with sigma
    fixed, Poisson(rate), multinomial(w). With independent priors the posterior factorizes,
    so each marginal is its own conjugate posterior."""
    return (
        jnp.sum(stats.bernoulli.logpmf(data["bernoulli"], params["p"]))
        + jnp.sum(stats.norm.logpdf(data["normal"], params["mu"], params["sigma"]))
        + jnp.sum(stats.poisson.logpmf(data["poisson"], params["rate"]))
        + jnp.sum(data["counts"] * jnp.log(params["w"]))
    )


@pytest.fixture(scope="module")
def posterior():
    return jm.sample(
        conjugate_loglik,
        {"p": 0.5, "mu": 0.0, "sigma": 2.0, "rate": 1.0, "w": np.full(3, 1 / 3)},
        {"bernoulli": BERNOULLI, "normal": NORMAL, "poisson": POISSON, "counts": COUNTS},
        constraints={"p": jm.unit_interval, "rate": jm.positive, "w": jm.simplex},
        prior={
            "p": jm.priors.Beta(2.0, 3.0),
            "mu": jm.priors.Normal(1.0, 3.0),
            "rate": jm.priors.Gamma(2.0, 0.5),
            "w": jm.priors.Dirichlet((1.5, 2.0, 1.0)),
        },
        fixed={"sigma": 2.0},
        chains=CHAINS,
        draws=DRAWS,
        warmup=WARMUP,
        seed=11,
    )


EXACT = {
    "p": closed_form.beta_bernoulli(BERNOULLI, 2.0, 3.0),
    "mu": closed_form.normal_normal(NORMAL, 2.0, 1.0, 3.0),
    "rate": closed_form.gamma_poisson(POISSON, 2.0, 0.5),
    "w": closed_form.dirichlet_multinomial(COUNTS, [1.5, 2.0, 1.0]),
}
#: the draws' shape after the (chain, draw) axes
SHAPES = {"p": (), "mu": (), "rate": (), "w": (3,)}


@pytest.mark.parametrize("name", EXACT)
def test_posterior_mean_and_variance_match_the_closed_form(posterior, name):
    draws, exact = posterior.draws[name], EXACT[name]
    assert draws.shape == (CHAINS, DRAWS) + SHAPES[name] and draws.dtype == np.float64
    draws = draws.reshape(CHAINS, DRAWS, -1)
    for j, (mean, var) in enumerate(zip(np.atleast_1d(exact.mean), np.atleast_1d(exact.var))):
        x = draws[:, :, j]
        assert abs(x.mean() - mean) < Z * diagnostics.mcse_mean(x)
        # the variance is the mean of (x - mean)², whose MCSE comes from its own ESS
        squares = (x - x.mean()) ** 2
        mcse_var = squares.std(ddof=1) / np.sqrt(diagnostics.ess_mean(squares))
        assert abs(squares.mean() - var) < Z * mcse_var


def test_the_chains_converged(posterior):
    assert posterior.names == ["mu", "p", "rate", "w[0]", "w[1]", "w[2]"]
    assert np.all(posterior.rhat < 1.01)
    assert np.all(posterior.ess_bulk > 100 * CHAINS) and np.all(posterior.ess_tail > 100 * CHAINS)
    assert posterior.n_divergent == 0
    assert posterior.problems == []
    assert "no sampling problems found" in posterior.summary()


def test_summaries_agree_with_the_draws(posterior):
    frame = posterior.to_frame()
    assert list(frame.index) == posterior.names
    for name in ("mu", "p", "rate", "w"):
        draws = posterior.draws[name].reshape((CHAINS * DRAWS,) + SHAPES[name])
        np.testing.assert_allclose(posterior.mean[name], draws.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(posterior.sd[name], draws.std(axis=0, ddof=1), rtol=1e-12)
        q = np.moveaxis(np.quantile(draws, [0.1, 0.9], axis=0), 0, -1)
        np.testing.assert_allclose(posterior.quantiles([0.1, 0.9])[name], q, rtol=1e-12)
    w = posterior.draws["w"].reshape(-1, 3)
    np.testing.assert_allclose(frame.loc["w[1]", ["sd", "95%"]], [w[:, 1].std(ddof=1), np.quantile(w[:, 1], 0.95)])
    assert frame.loc["rate", "rhat"] == posterior.rhat[2]
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)


def test_fixed_parameters_are_repeated_in_the_draws(posterior):
    assert posterior.draws["sigma"].shape == (CHAINS, DRAWS) and np.all(posterior.draws["sigma"] == 2.0)
    assert posterior.sd["sigma"] == 0.0


def test_the_chains_start_at_the_posterior_mode(posterior):
    assert posterior.mode.converged
    assert posterior.mode.params["p"] == pytest.approx(EXACT["p"].mode, rel=1e-8)


def test_a_mode_at_the_limit_starts_the_chains_at_init():
    """20 failures under a uniform prior: the mode is p = 0, on the limit, but the posterior
    Beta(1, 21) is proper; the chains start from init and still find it."""
    zeros = np.zeros(20)
    result = jm.sample(
        lambda p, x: stats.bernoulli.logpmf(x, p["p"]),
        {"p": 0.5},
        zeros,
        constraints={"p": jm.unit_interval},
        prior={"p": jm.priors.Beta(1.0, 1.0)},
        chains=CHAINS,
        draws=DRAWS,
        warmup=WARMUP,
        seed=5,
    )
    assert not result.mode.converged
    exact, draws = closed_form.beta_bernoulli(zeros, 1.0, 1.0), result.draws["p"]
    assert abs(draws.mean() - exact.mean) < Z * diagnostics.mcse_mean(draws)
    assert result.problems == []


def test_sampling_leaves_the_user_precision_alone(posterior):
    assert not jax.config.jax_enable_x64


def test_summary_states_sampling_problems(posterior):
    stuck = posterior._flat.copy()
    stuck[0, :, 1] += 0.5  # one chain sampling p elsewhere
    divergent = np.zeros_like(posterior.divergent)
    divergent[1, :3] = True
    fields = dict(vars(posterior), divergent=divergent, _flat=stuck, max_depth_hits=2)
    bad = type(posterior)(**{k: v for k, v in fields.items() if k not in ("rhat", "ess_bulk", "ess_tail", "mcse_mean")})
    assert bad.rhat[1] > 1.01 and np.all(np.delete(bad.rhat, 1) == posterior.rhat[np.arange(6) != 1])
    assert [p.split(":")[0] for p in bad.problems] == [
        "3 divergent transition(s) after warmup",
        "R-hat above 1.01 for p",
        "bulk or tail ESS below 400 (100 per chain) for p",  # the chains' disagreement counts against it
        "2 transition(s) hit the maximum tree depth (10 doublings)",
    ]
    lines = bad.summary().splitlines()
    assert len({len(line) for line in lines}) == 1  # an intact box
    text = " ".join(line.strip("│ ") for line in lines)
    assert all(f"warning: {p}" in text for p in bad.problems)
    assert "no sampling problems found" not in text


# --- bad input -----------------------------------------------------------------------------
def loglik(p, x):
    return stats.norm.logpdf(x, p["mu"], 1.0)


@pytest.mark.parametrize(
    "options, argument",
    [
        ({"chains": 0, "seed": 0}, "chains"),
        ({"draws": -5, "seed": 0}, "draws"),
        ({"warmup": 1.5, "seed": 0}, "warmup"),
        ({}, "seed"),
        ({"seed": "x"}, "seed"),
        ({"seed": 0, "prior": {"nu": jm.priors.Normal()}}, "prior"),
        ({"seed": 0, "constraints": {"nu": jm.positive}}, "constraints"),
    ],
)
def test_bad_input_names_the_argument(options, argument):
    with pytest.raises(ValueError, match=argument):
        jm.sample(loglik, {"mu": 0.0}, NORMAL, **options)


def test_without_blackjax_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "blackjax", None)
    with pytest.raises(ImportError, match=r"jaxmle\[bayes\]"):
        jm.sample(loglik, {"mu": 0.0}, NORMAL, seed=0)


# --- ArviZ ---------------------------------------------------------------------------------
def test_to_arviz_holds_the_draws_and_the_sample_stats(posterior):
    pytest.importorskip("arviz_base")
    tree = posterior.to_arviz()
    draws = tree.posterior
    assert set(draws.data_vars) == {"p", "mu", "rate", "w"}  # sigma is fixed: not sampled
    assert draws["w"].dims == ("chain", "draw", "w_dim_0") and draws["w"].shape == (CHAINS, DRAWS, 3)
    assert draws["mu"].dims == ("chain", "draw")
    for name in ("p", "mu", "rate", "w"):
        np.testing.assert_allclose(draws[name].mean(("chain", "draw")).values, posterior.mean[name], rtol=1e-12)
    stats_ = tree.sample_stats
    assert stats_["diverging"].dtype == bool and int(stats_["diverging"].sum()) == posterior.n_divergent
    np.testing.assert_allclose(stats_["acceptance_rate"].mean("draw").values, posterior.acceptance_rate, rtol=1e-12)
    np.testing.assert_array_equal(stats_["step_size"].values[:, 0], posterior.step_size)
    assert stats_["tree_depth"].shape == (CHAINS, DRAWS) and int(stats_["tree_depth"].min()) >= 1


def test_to_arviz_names_labelled_elements(posterior):
    pytest.importorskip("arviz_base")
    from dataclasses import replace

    labelled = replace(posterior.mode, _space=posterior.mode._space.with_labels({"w": ("a", "b", "c")}))
    fields = {k: v for k, v in vars(posterior).items() if k not in ("rhat", "ess_bulk", "ess_tail", "mcse_mean")}
    w = type(posterior)(**dict(fields, mode=labelled)).to_arviz().posterior["w"]
    assert w.dims == ("chain", "draw", "w_dim") and list(w["w_dim"].values) == ["a", "b", "c"]
    np.testing.assert_allclose(w.sel(w_dim="b").values, posterior.draws["w"][:, :, 1])


def test_without_arviz_base_the_error_names_the_extra(posterior, monkeypatch):
    monkeypatch.setitem(sys.modules, "arviz_base", None)
    with pytest.raises(ImportError, match=r"jaxmle\[arviz\]"):
        posterior.to_arviz()
