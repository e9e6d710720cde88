"""jm.sbc (simulation-based calibration) on a conjugate model, where the ranks must be
uniform, and on a model whose likelihood misstates the data's variance, where they must
not; its uniformity test and band against scipy; the priors' draws against their moments."""

import math

import jax
import numpy as np
import pytest
from jax.scipy import stats

import jaxmle as jm
from jaxmle.sbc import SBCResult

pytest.importorskip("blackjax")

#: small runs: one compile of the posterior program serves both the calibrated and the
#: miscalibrated model (they differ in the simulator alone)
RUN = {"chains": 2, "draws": 100, "warmup": 100, "thin": 2}
N, REPS = 20, 100
PRIOR = {"mu": jm.priors.Normal(0.0, 1.0)}


def simulate(key, params, n):
    return params["mu"] + jax.random.normal(key, (n,))


def simulate_wide(key, params, n):
    """Data with 4 times the variance that ``loglik`` states: its posterior is too narrow."""
    return params["mu"] + 2.0 * jax.random.normal(key, (n,))


def loglik(params, y):
    return stats.norm.logpdf(y, params["mu"], 1.0)


@pytest.mark.slow
def test_a_calibrated_posterior_gives_uniform_ranks():
    """Normal mean, known sigma, normal prior: NUTS draws from the exact posterior."""
    res = jm.sbc(simulate, loglik, PRIOR, N, REPS, seed=0, **RUN)
    assert res.names == ["mu"] and res.ranks.shape == (REPS, 1) and res.L == 2 * 50
    assert res.ranks.min() >= 0 and res.ranks.max() <= res.L
    assert res.counts.sum() == REPS and res.bins == 10
    assert res.p_values[0] > 1e-3
    assert res.n_divergent == 0
    assert "are not uniform" not in res.summary()
    assert not jax.config.jax_enable_x64  # float64 inside, the user's precision left alone


def test_a_misstated_variance_is_detected():
    res = jm.sbc(simulate_wide, loglik, PRIOR, N, REPS, seed=0, **RUN)
    assert res.p_values[0] < 1e-3
    counts = res.counts[:, 0]
    assert counts[0] + counts[-1] > 0.4 * REPS  # too narrow: ranks piled at both ends
    assert "the ranks of mu are not uniform" in " ".join(res.summary().split())


@pytest.mark.slow
def test_a_positive_parameter_and_chunks():
    """Poisson rate under a Gamma prior (sampled on the log scale, by default its support);
    the ranks do not depend on the chunk size."""
    prior = {"rate": jm.priors.Gamma(3.0, 1.0)}
    sim = lambda key, p, n: jax.random.poisson(key, p["rate"], (n,))  # noqa: E731
    ll = lambda p, y: stats.poisson.logpmf(y, p["rate"])  # noqa: E731
    res = jm.sbc(sim, ll, prior, 10, 200, seed=3, **RUN)
    assert res.p_values[0] > 1e-3
    chunked = jm.sbc(sim, ll, prior, 10, 200, seed=3, chunk_size=64, **RUN)
    np.testing.assert_array_equal(chunked.ranks, res.ranks)


# --- the uniformity test and the band, against scipy ---------------------------------------
def fake_result(ranks, L, bins):
    ranks = np.asarray(ranks)
    reps, k = ranks.shape
    return SBCResult(ranks, [f"x{j}" for j in range(k)], L, bins, np.ones((reps, k)), np.zeros(reps, int),
                     n=10, chains=2, draws=50, warmup=50, thin=1)  # fmt: skip


def test_p_values_and_band_match_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    L, bins, reps = 23, 5, 300  # 24 ranks in 5 bins: unequal bin probabilities
    ranks = np.random.default_rng(0).integers(0, L + 1, size=(reps, 2))
    ranks[:40, 1] = 0  # a pile at rank 0
    res = fake_result(ranks, L, bins)
    probs = np.bincount(np.arange(L + 1) * bins // (L + 1)) / (L + 1)
    np.testing.assert_allclose(res.bin_probabilities, probs)
    for j in range(2):
        counts = np.bincount(ranks[:, j] * bins // (L + 1), minlength=bins)
        expected = scipy_stats.chisquare(counts, reps * probs).pvalue
        assert res.p_values[j] == pytest.approx(expected, rel=1e-9)
    assert res.p_values[1] < 1e-3 < res.p_values[0]
    lower, upper = res.band()
    np.testing.assert_array_equal(lower, scipy_stats.binom.ppf(0.005, reps, probs))
    np.testing.assert_array_equal(upper, scipy_stats.binom.ppf(0.995, reps, probs))


def test_summary_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    res = fake_result(np.random.default_rng(1).integers(0, 100, size=(200, 2)), 99, 10)
    res.divergences[:3] = 1
    res.rhat[5, 1] = 1.05
    text = " ".join(res.summary().split())
    assert "3 replicate(s) with divergent transitions" in text
    assert "1 replicate(s) with an R-hat above 1.01" in text
    assert len({len(line) for line in res.summary().splitlines()}) == 1  # an intact box
    frame = res.to_frame()
    assert list(frame.index) == ["x0", "x1"] and frame.attrs["n_divergent"] == 3 and frame.attrs["n_rhat"] == 1
    np.testing.assert_array_equal(frame["max_count"], res.counts.max(axis=0))
    fig = res.plot(tmp_path / "ranks.png")
    assert (tmp_path / "ranks.png").stat().st_size > 0 and len(fig.axes) == 2


# --- the priors' draws ------------------------------------------------------------------------
PRIOR_MOMENTS = [
    (jm.priors.Normal(1.0, 2.0), 1.0, 4.0),
    (jm.priors.Laplace(-1.0, 0.5), -1.0, 0.5),
    (jm.priors.StudentT(6.0, 2.0, 1.5), 2.0, 1.5**2 * 6 / 4),
    (jm.priors.Beta(2.0, 3.0), 0.4, 6 / (25 * 6)),
    (jm.priors.Gamma(3.0, 2.0), 1.5, 0.75),
    (jm.priors.InverseGamma(6.0, 2.0), 0.4, 4 / (25 * 4)),
    (jm.priors.HalfNormal(2.0), 2 * math.sqrt(2 / math.pi), 4 * (1 - 2 / math.pi)),
    (jm.priors.Exponential(4.0), 0.25, 1 / 16),
]


@pytest.mark.parametrize("prior, mean, var", PRIOR_MOMENTS, ids=lambda v: type(v).__name__)
def test_prior_draws_have_the_prior_moments(prior, mean, var):
    with jax.enable_x64(True):
        x = np.asarray(prior.sample(jax.random.key(0), (40_000,)))
    assert x.dtype == np.float64
    assert abs(x.mean() - mean) < 4 * math.sqrt(var / x.size)
    assert x.var() == pytest.approx(var, rel=0.1)
    assert np.all((x >= prior.lower) & (x <= prior.upper))


def test_dirichlet_draws_have_the_dirichlet_mean():
    alpha = np.array([1.5, 2.0, 1.0])
    x = np.asarray(jm.priors.Dirichlet(tuple(alpha)).sample(jax.random.key(1), (20_000, 3)))
    np.testing.assert_allclose(x.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(x.mean(axis=0), alpha / alpha.sum(), atol=0.01)


# --- bad input --------------------------------------------------------------------------------
class Flat(jm.priors.Prior):
    """An improper flat prior: it has a log-density (0) but cannot be drawn from."""

    def log_prob(self, x):
        return 0.0 * x.sum()


@pytest.mark.parametrize(
    "change, argument",
    [
        ({"reps": 0}, "reps"),
        ({"n": -1}, "n"),
        ({"simulate": "not a function"}, "simulate"),
        ({"loglik": None}, "loglik"),
        ({"prior": lambda p: 0.0}, "prior"),  # a log-prior cannot be drawn from
        ({"prior": {"mu": Flat()}}, "prior"),
        ({"prior": {"mu": 1.0}}, "prior"),
        ({"prior": {"nu": jm.priors.Normal()}}, "prior"),  # simulate needs mu, which has none
        ({"seed": None}, "seed"),
        ({"thin": 500}, "thin"),
        ({"bins": 1}, "bins"),
        ({"shapes": {"nu": (2,)}}, "shapes"),
        ({"constraints": {"nu": jm.positive}}, "constraints"),
        ({"constraints": {"mu": jm.positive}}, "constraints"),  # prior draws below 0 would be invalid
    ],
)
def test_bad_input_names_the_argument(change, argument):
    args = dict(simulate=simulate, loglik=loglik, prior=PRIOR, n=N, reps=REPS, seed=0) | RUN | change
    with pytest.raises(ValueError, match=rf"^{argument}\b|\b{argument}\["):
        jm.sbc(**args)
