"""Bad input: a ValueError (IndexError for indexing) naming the argument, before compiling."""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import stats

import jaxmle as jm
from jaxmle.cli import main
from jaxmle.profile import _Objective
from jaxmle.status import Status


def normal(p, x):
    return stats.norm.logpdf(x, p["mu"], 1.0)


def normal2(p, x):
    return stats.norm.logpdf(x, p["mu"], p["s"])


def traced_once(loglik):
    """``loglik`` that records each trace; the fit must fail before compiling (at most the
    shape check at the start traces it)."""
    calls = []

    def counting(p, x):
        if isinstance(jax.tree_util.tree_leaves(p)[0], jax.core.Tracer):
            calls.append(1)
        return loglik(p, x)

    return counting, calls


@pytest.mark.parametrize(
    "loglik, init, data, match",
    [
        (normal, {"mu": 0.0}, np.zeros(0), r"data is empty"),
        (normal, {"mu": 0.0}, {"x": np.zeros((0, 2)), "y": np.zeros(0)}, r"data is empty"),
        (lambda p, x: normal(p, x)[:0], {"mu": 0.0}, np.ones(3), r"data: loglik returned no per-observation"),
        (lambda p, x: jnp.round(x + p["mu"]).astype(int), {"mu": 0.0}, np.ones(3), r"loglik .* got dtype int"),
        (
            lambda p, x: x + p["mu"] > 0,
            {"mu": 0.0},
            np.ones(3),
            r"loglik .* real floating-point values, got dtype bool",
        ),
        (lambda p, x: {"a": normal(p, x)}, {"mu": 0.0}, np.ones(3), r"loglik must return one array .*got dict"),
        (lambda p, x: None, {"mu": 0.0}, np.ones(3), r"loglik must return one array .*got None"),
        (lambda p, x: (normal(p, x), 1.0), {"mu": 0.0}, np.ones(3), r"loglik must return one array .*got tuple"),
        (lambda p, x: normal(p, x) + 0j, {"mu": 0.0}, np.ones(3), r"loglik .* got dtype complex128"),
        (normal, {"mu": 0.0}, np.ones(3) + 1j, r"data holds complex numbers"),
        (normal, {"mu": 0.0 + 1j}, np.ones(3), r"init: parameter 'mu' must be real numbers, got dtype complex"),
        (normal, {"mu": 0.0}, np.array([1.0, np.nan]), r"data contains 1 NaN"),
        (normal, {"mu": 0.0}, np.array([1.0, np.inf, -np.inf]), r"data: infinite values in data \(2\), and loglik"),
    ],
)
def test_bad_loglik_data_or_init_is_named(loglik, init, data, match):
    counting, calls = traced_once(loglik)
    with pytest.raises(ValueError, match=match):
        jm.fit(counting, init, data)
    assert len(calls) <= 1


def test_empty_replicates_in_a_batch():
    with pytest.raises(ValueError, match="data is empty"):
        jm.fit_batch(normal, {"mu": 0.0}, np.zeros((4, 0)))


# --- simulation studies and the command line ------------------------------------------------


@pytest.mark.parametrize(
    "truth, match",
    [
        ({}, r"truth holds no values"),
        ({"lam": 3.0}, r"truth: no value for the parameter 'rate', which simulate needs \(truth gives lam\)"),
        ({"rate": np.ones(2)}, r"truth: 'rate' has shape \(2,\), but simulate takes a scalar"),
        ({"rate": np.ones(1)}, r"truth: 'rate' has shape \(1,\), but in poisson it has shape \(\)"),
        ({"rate": 3.0, "lam": 1.0}, r"truth: 'lam' not among them \(the parameters of poisson: 'rate'\)"),
        ({"rate": "three"}, r"truth\['rate'\] must be real numbers"),
    ],
)
def test_bad_truth_is_named(truth, match):
    with pytest.raises(ValueError, match=match):
        jm.simulation_study(jm.models.poisson(), truth, 10, 4, seed=0)


def test_missing_parameter_of_a_two_parameter_model():
    with pytest.raises(ValueError, match=r"truth: no value for the parameter 'sigma'"):
        jm.simulation_study(jm.models.gaussian(), {"mu": 0.0}, 10, 4, seed=0)


@pytest.mark.parametrize("seed", [10**22, -1, 2**32, 1.5, True])
def test_seed_out_of_range(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 2\*\*32 - 1"):
        jm.simulation_study(jm.models.poisson(), {"rate": 3.0}, 10, 4, seed=seed)


def test_simulate_must_return_n_observations():
    def simulate(key, p, n):
        return p["mu"] + jax.random.normal(key, (n + 1,))

    with pytest.raises(ValueError, match=r"simulate must return n = 10 observations .*got data \(11,\)"):
        jm.simulation_study(truth={"mu": 0.0}, n=10, reps=4, seed=0, simulate=simulate, loglik=normal)


@pytest.mark.parametrize(
    "args, match",
    [
        (["--truth", "lam=3"], "truth: no value for the parameter 'rate'"),
        (["--truth", "rate=3", "--seed", "12345678901234567890123"], "seed must be an integer from 0"),
    ],
)
def test_cli_bad_study_arguments_exit_2_with_one_line(args, match, capsys):
    code = main(["simulate", "poisson", "--n", "10", "--reps", "4", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and match in err and "Traceback" not in err


@pytest.mark.slow
def test_study_mcse_undefined_is_not_printed_as_zero():
    study = jm.simulation_study(jm.models.poisson(), {"rate": 3.0}, 10, 3, seed=0)
    assert study.used == 3 and study.coverage["rate"] == 1.0  # every interval covers: p(1 - p) = 0
    assert np.isnan(study.mcse["coverage"]["rate"])
    text = study.summary()
    assert "(0)" not in text and "1 (n/a)" in text and "n/a: no Monte Carlo SE" in text
    np.testing.assert_allclose(study.mcse["bias"]["rate"], study.sd["rate"] / np.sqrt(3), rtol=1e-12)


# --- batches --------------------------------------------------------------------------------

X64 = np.random.default_rng(0).normal(size=(64, 20))


def test_batched_init_with_too_few_rows_is_named():
    with pytest.raises(ValueError, match=r"init: every leaf has a leading axis of length 63, but data has 64"):
        jm.fit_batch(normal, {"mu": np.zeros(63)}, X64)
    with pytest.raises(ValueError, match=r"init: every leaf has a leading axis of length 63, but data has 64"):
        jm.fit_batch(normal2, {"mu": np.zeros((63, 1)), "s": np.ones((63, 1))}, X64)
    with pytest.raises(ValueError, match=r"init: batched_init=True needs a leading axis of length 64 .*\(63,\)"):
        jm.fit_batch(normal, {"mu": np.zeros(63)}, X64, batched_init=True)


@pytest.mark.parametrize("name, index, bad", [("s", 5, np.nan), ("mu", 40, np.inf), ("s", 63, -1.0)])
def test_one_bad_replicate_in_a_batched_init_is_named(name, index, bad):
    init = {"mu": np.zeros(64), "s": np.ones(64)}
    init[name][index] = bad
    with pytest.raises(ValueError, match=rf"init \(replicate {index}\): '{name}' ") as err:
        jm.fit_batch(normal2, init, X64, constraints={"s": jm.positive}, batched_init=True)
    assert "1. 1." not in str(err.value).replace(" ", "") and len(str(err.value)) < 200  # not the whole array


def test_batch_index_out_of_range():
    res = jm.fit_batch(normal, {"mu": 0.0}, X64[:4])
    assert res[-4].params["mu"] == res.params["mu"][0]
    for i in (4, -5, 10**12):
        with pytest.raises(IndexError, match=rf"replicate index {i} is out of range: the batch has 4 fits"):
            res[i]


# --- results, models, constraints and profiles ----------------------------------------------


def test_model_with_init_and_no_data():
    with pytest.raises(ValueError, match=r"data: none was given, so the second argument was read as the data"):
        jm.fit(jm.models.poisson(), {"rate": 1.0}, None)
    with pytest.raises(ValueError, match=r"data: none was given"):
        jm.fit(jm.models.linear_regression(), {"beta": np.zeros(2), "sigma": 1.0}, None)


def test_delta_se_is_nan_where_the_value_is_not():
    res = jm.fit(normal, {"mu": 0.0}, np.arange(5.0))
    value, se = res.delta(lambda p: jnp.stack([jnp.log(p["mu"] - 10.0), 2.0 * p["mu"]]))
    assert np.isnan(value[0]) and np.isnan(se[0])
    np.testing.assert_allclose([value[1], se[1]], [4.0, 2.0 / np.sqrt(5.0)], rtol=1e-12)


def test_bic_without_observations():
    res = jm.fit(normal, {"mu": 0.0}, np.arange(5.0))
    empty = dataclasses.replace(res, nobs=0)
    with pytest.raises(ValueError, match=r"bic is undefined without observations \(nobs = 0\)"):
        _ = empty.bic
    assert "BIC: n/a (no observations)" in empty.summary()
    batch = dataclasses.replace(jm.fit_batch(normal, {"mu": 0.0}, X64[:2]), nobs=0)
    with pytest.raises(ValueError, match=r"nobs = 0"):
        _ = batch.bic


def test_int_constraint_key_on_a_tuple_init():
    def loglik(p, x):
        return stats.norm.logpdf(x, p[0], p[1])

    with pytest.raises(ValueError, match=r"constraints: parameters are named by strings .*got the key 1: use '1'"):
        jm.fit(loglik, (0.0, 1.0), np.arange(5.0), constraints={1: jm.positive})
    res = jm.fit(loglik, (0.0, 1.0), np.arange(5.0), constraints={"1": jm.positive})
    np.testing.assert_allclose(res.params[1], np.std(np.arange(5.0)), rtol=1e-8)


def test_profile_of_a_fit_without_a_finite_maximum():
    x = np.random.default_rng(0).normal(size=30)
    data = {"x": x, "y": (x > 0).astype(float)}  # separated: the slope runs off to infinity

    def logistic(p, d):
        eta = p["a"] + p["b"] * d["x"]
        return d["y"] * jax.nn.log_sigmoid(eta) + (1 - d["y"]) * jax.nn.log_sigmoid(-eta)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = jm.fit(logistic, {"a": 0.0, "b": 0.0}, data)
    assert res.status == Status.NO_FINITE_MAXIMUM
    objective = _Objective(res)
    objective.best = (0.0, res._u)  # what profiling such a fit finds: a higher value further out
    for status in (Status.CONVERGED, Status.INFORMATION_NOT_PD, Status.NO_FINITE_MAXIMUM):
        text = objective.better_message(dataclasses.replace(res, status=status, loglik=0.0))
        assert "reports NO_FINITE_MAXIMUM" in text and "no verified maximum to profile" in text
        assert "profile that one" not in text
    fine = _Objective(dataclasses.replace(res, status=Status.CONVERGED))
    fine.best = objective.best
    assert "profile that one" in fine.better_message(dataclasses.replace(res, status=Status.CONVERGED))


# --- infinite data: allowed where the log-likelihood handles them ----------------------------


def censored_exponential(p, d):
    """Right-censored exponential, scipy's encoding: the interval [lo, hi] with hi = inf."""
    censored = jnp.isinf(d["hi"])
    return jnp.where(censored, 0.0, jnp.log(p["rate"])) - p["rate"] * d["lo"]


def censored_data(rng, size):
    t = rng.exponential(2.0, size=size)
    c = rng.exponential(4.0, size=size)
    return {"lo": np.minimum(t, c), "hi": np.where(t <= c, np.minimum(t, c), np.inf)}


def test_censored_data_encoded_with_inf():
    d = censored_data(np.random.default_rng(1), 200)
    res = jm.fit(censored_exponential, {"rate": 1.0}, d, constraints={"rate": jm.positive})
    events = np.isfinite(d["hi"]).sum()
    assert res.converged and 0 < events < 200
    np.testing.assert_allclose(res.params["rate"], events / d["lo"].sum(), rtol=1e-10)  # closed-form MLE
    np.testing.assert_allclose(res.se["rate"], np.sqrt(events) / d["lo"].sum(), rtol=1e-8)


def test_batch_infinite_and_nan_data_follow_the_rule_of_fit():
    rng = np.random.default_rng(2)
    reps = [censored_data(rng, 50) for _ in range(4)]
    d = {k: np.stack([r[k] for r in reps]) for k in ("lo", "hi")}
    d["lo"][1, 3] = np.nan  # NaN: invalid data
    res = jm.fit_batch(censored_exponential, {"rate": 1.0}, d, constraints={"rate": jm.positive})
    assert res.status[1] == Status.INVALID_DATA
    for i in (0, 2, 3):
        events = np.isfinite(d["hi"][i]).sum()
        assert res.status[i] == Status.CONVERGED
        np.testing.assert_allclose(res.params["rate"][i], events / d["lo"][i].sum(), rtol=1e-10)
    x = np.random.default_rng(3).normal(size=(3, 10))
    x[2, 0] = np.inf  # a log-likelihood that does not handle inf: not finite at the start
    res = jm.fit_batch(normal, {"mu": 0.0}, x)
    assert list(res.status) == [Status.CONVERGED, Status.CONVERGED, Status.NONFINITE_START]
