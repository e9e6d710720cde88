"""The identifiability diagnosis names the combination the data do not identify."""

import warnings

import jax
import numpy as np

import jaxmle as jm


def design(seed=18, n=50, eps=0.0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    X = np.column_stack([X, X[:, 1] + X[:, 2] + eps * rng.normal(size=n)])  # b[3] column = b[1] + b[2] columns
    y = X[:, :3] @ [1.0, 0.5, -0.5] + rng.normal(size=n)
    return {"X": X, "y": y}


def loglik(p, d):
    return jax.scipy.stats.norm.logpdf(d["y"], d["X"] @ p["b"], 1.0)


def test_collinear_design_is_named():
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        res = jm.fit(loglik, {"b": np.zeros(4)}, design())
    assert res.status == jm.Status.INFORMATION_NOT_PD
    assert not res.positive_definite
    text = "b[3] - b[1] - b[2] is not identified"
    assert any(text in note for note in res.notes)
    assert text in res.message and text in res.summary()
    assert "condition" in res.summary()
    # the intercept is identified and keeps its SE; the collinear coefficients do not
    assert np.isfinite(res.se["b"][0]) and np.all(np.isnan(res.se["b"][1:]))


def test_nearly_collinear_design_is_named_with_its_condition_number():
    res = jm.fit(loglik, {"b": np.zeros(4)}, design(eps=1e-4))
    assert res.status == jm.Status.CONVERGED
    assert res.positive_definite and res.condition_number > 1e8
    assert any("b[3] - b[1] - b[2] is barely identified" in n for n in res.notes)
    assert f"{res.condition_number:.3g}" in res.summary()
