"""labels= and pandas Series names for vector elements: names, summary, frames, profiles and
plots use them; bad labels are refused naming the argument before any compiling."""

import jax
import numpy as np
import pytest
import scipy.stats as ss
from jax.scipy import stats

import jaxmle as jm
from jaxmle.parameters import build_space

pd = pytest.importorskip("pandas")

RNG = np.random.default_rng(5)
N = 30
X = np.column_stack([np.ones(N), RNG.normal(size=N)])
DATA = {"X": X, "y": X @ np.array([0.5, 1.5]) + RNG.normal(size=N)}
INIT = {"beta": np.zeros(2), "sigma": 1.0}
LABELS = {"beta": ["Intercept", "x1"]}


def regression(p, d):
    return stats.norm.logpdf(d["y"], d["X"] @ p["beta"], p["sigma"])


def traced(loglik):
    """``loglik`` that records each trace: a refused fit must record none."""
    calls = []

    def counting(p, d):
        if isinstance(jax.tree_util.tree_leaves(p)[0], jax.core.Tracer):
            calls.append(1)
        return loglik(p, d)

    return counting, calls


@pytest.fixture(scope="module")
def res():
    return jm.fit(regression, INIT, DATA, constraints={"sigma": jm.positive}, labels=LABELS)


def test_labels_name_the_elements_everywhere(res):
    assert res.names == ["beta[Intercept]", "beta[x1]", "sigma"]
    text = res.summary()
    assert "beta[Intercept]" in text and "beta[x1]" in text and "beta[0]" not in text
    assert list(res.to_frame().index) == res.names
    # the Gaussian linear model's profile interval for a coefficient, with sigma profiled out:
    # n log(RSS(b) / RSS) <= chi2_1(0.95), RSS(b) = RSS + (b - b_hat)^2 / [(X'X)^-1]_jj
    beta = np.linalg.lstsq(X, DATA["y"], rcond=None)[0]
    rss = np.sum((DATA["y"] - X @ beta) ** 2)
    half = np.sqrt(rss * (np.exp(ss.chi2.ppf(0.95, 1) / N) - 1.0) * np.linalg.inv(X.T @ X)[1, 1])
    prof = res.profile("beta[x1]")
    np.testing.assert_allclose(prof.interval, [beta[1] - half, beta[1] + half], rtol=1e-6)
    import matplotlib

    matplotlib.use("Agg")
    ax = prof.plot().axes[0]
    assert ax.get_xlabel() == "beta[x1]"
    with pytest.raises(ValueError, match=r"'beta\[1\]' is not a free parameter .*beta\[x1\]"):
        res.profile("beta[1]")


def test_labels_change_no_number_and_share_compiled_code(res):
    plain = jm.fit(regression, INIT, DATA, constraints={"sigma": jm.positive})
    assert plain.names == ["beta[0]", "beta[1]", "sigma"]
    np.testing.assert_array_equal(plain.params["beta"], res.params["beta"])
    np.testing.assert_array_equal(plain.cov, res.cov)
    labelled = build_space(INIT, {}, {})[0].with_labels({"beta": ("a", "b")})
    unlabelled = build_space(INIT, {}, {})[0]
    assert labelled == unlabelled and hash(labelled) == hash(unlabelled)  # same key for compiled code
    assert labelled.names == ["beta[a]", "beta[b]", "sigma"]


@pytest.mark.slow
def test_a_series_init_names_the_elements_and_labels_survive_multistart():
    init = {"beta": pd.Series([0.0, 0.0], index=["const", "slope"]), "sigma": 1.0}
    res = jm.fit(regression, init, DATA, constraints={"sigma": jm.positive}, starts=2)
    assert res.names == ["beta[const]", "beta[slope]", "sigma"]
    beta = np.linalg.lstsq(X, DATA["y"], rcond=None)[0]
    np.testing.assert_allclose(res.to_frame().loc[["beta[const]", "beta[slope]"], "estimate"], beta, rtol=1e-8)
    # explicit labels win; a default integer index gives no labels
    space = build_space(init, {}, {})[0]
    assert space.with_labels({"beta": ("a", "b")}).names[:2] == ["beta[a]", "beta[b]"]
    assert build_space({"beta": pd.Series([0.0, 0.0])}, {}, {})[0].names == ["beta[0]", "beta[1]"]


def test_batch_labels_reach_every_replicate():
    reps = 3
    data = {"X": np.broadcast_to(X, (reps, N, 2)), "y": np.stack([DATA["y"]] * reps)}
    batch = jm.fit_batch(regression, INIT, data, constraints={"sigma": jm.positive}, labels=LABELS, progress=False)
    assert batch.names == batch[2].names == ["beta[Intercept]", "beta[x1]", "sigma"]
    beta = np.linalg.lstsq(X, DATA["y"], rcond=None)[0]
    frame = batch.to_frame()
    np.testing.assert_allclose(frame[frame["name"] == "beta[x1]"]["estimate"], [beta[1]] * reps, rtol=1e-8)


@pytest.mark.parametrize(
    "labels, match",
    [
        (["Intercept", "x1"], r"labels must be a dict mapping parameter names"),
        ({"gamma": ["a", "b"]}, r"labels: \['gamma'\] are not parameters"),
        ({"beta": ["Intercept"]}, r"labels\['beta'\] has 1 labels, but 'beta' has 2 elements"),
        ({"beta": ["a", "b", "c"]}, r"labels\['beta'\] has 3 labels, but 'beta' has 2 elements"),
        ({"beta": ["a", 1]}, r"labels\['beta'\] must hold non-empty strings, got 1"),
        ({"beta": ["a", ""]}, r"labels\['beta'\] must hold non-empty strings, got ''"),
        ({"beta": ["a", "a"]}, r"labels\['beta'\] repeats \['a'\]"),
        ({"beta": "ab"}, r"labels\['beta'\] must be a list of strings, got str"),
        ({"beta": 3}, r"labels\['beta'\] must be a list of strings, got int"),
        ({"sigma": ["s"]}, r"labels\['sigma'\]: labels name the elements of one vector, but 'sigma' is a scalar"),
    ],
)
def test_bad_labels_are_refused_before_compiling(labels, match):
    loglik, calls = traced(regression)
    with pytest.raises(ValueError, match=match):
        jm.fit(loglik, INIT, DATA, constraints={"sigma": jm.positive}, labels=labels)
    assert calls == []


def test_bad_labels_in_a_matrix_or_a_batch():
    with pytest.raises(ValueError, match=r"labels\['W'\]: .* but 'W' is of shape \(2, 2\)"):
        jm.fit(lambda p, d: -(p["W"] ** 2).sum(), {"W": np.zeros((2, 2))}, labels={"W": ["a", "b"]})
    loglik, calls = traced(regression)
    data = {"X": np.broadcast_to(X, (2, N, 2)), "y": np.stack([DATA["y"]] * 2)}
    with pytest.raises(ValueError, match=r"labels\['beta'\] repeats"):
        jm.fit_batch(loglik, INIT, data, constraints={"sigma": jm.positive}, labels={"beta": ["a", "a"]})
    assert calls == []
