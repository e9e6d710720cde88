"""jm.design against patsy's design matrices and statsmodels' formula fits."""

import builtins

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmle as jm

pd = pytest.importorskip("pandas")
pytest.importorskip("formulaic")


def frame(n=400, seed=3):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(1, 3, size=n),
            "group": rng.choice(["north", "east", "south"], size=n),
        }
    )
    eta = -0.3 + 0.8 * df.x1 - 0.5 * np.log(df.x2) + 0.6 * (df.group == "south")
    df["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    return df


@pytest.mark.parametrize("formula", ["y ~ x1 + C(group)", "y ~ x1 * np.log(x2) + C(group)", "y ~ x1 + x2 - 1"])
def test_design_matrix_equals_patsy(formula):
    patsy = pytest.importorskip("patsy")
    df = frame()
    out = jm.design(formula, df)
    y_ref, X_ref = patsy.dmatrices(formula, df, return_type="dataframe")
    np.testing.assert_array_equal(out.data["y"], y_ref.to_numpy().ravel())
    # the same columns, perhaps in another order (patsy sorts terms by degree)
    assert sorted(out.labels["X"]) == sorted(X_ref.columns)
    np.testing.assert_allclose(out.data["X"], X_ref[out.labels["X"]].to_numpy(), rtol=1e-15)
    assert out.labels["y"] == ["y"] and set(out.data) == {"X", "y"}


def test_logistic_fit_through_design_equals_statsmodels_formula():
    smf = pytest.importorskip("statsmodels.formula.api")
    df = frame(n=600, seed=4)
    formula = "y ~ x1 + np.log(x2) + C(group)"
    d = jm.design(formula, df)
    res = jm.fit(jm.models.logistic_regression(), d.data)
    ref = smf.logit(formula, df).fit(method="newton", tol=1e-14, maxiter=100, disp=False)
    by_name = dict(zip(d.labels["X"], res.params["beta"]))
    se_by_name = dict(zip(d.labels["X"], res.se["beta"]))
    for name in ref.params.index:
        np.testing.assert_allclose(by_name[name], ref.params[name], rtol=1e-8)
        np.testing.assert_allclose(se_by_name[name], ref.bse[name], rtol=1e-7)
    np.testing.assert_allclose(res.loglik, ref.llf, rtol=1e-12)


def test_group_indices_missing_rows_and_custom_loglik():
    df = frame(n=60, seed=5)
    df.loc[[2, 7], "x1"] = np.nan  # dropped, as statsmodels and R drop them
    d = jm.design("y ~ x1", df, groups="group")
    kept = df.dropna()
    assert d.data["X"].shape == (58, 2) and d.data["y"].shape == (58,)
    assert d.labels["group"] == ["east", "north", "south"]
    levels = np.array(d.labels["group"])[d.data["group"]]
    np.testing.assert_array_equal(levels, kept["group"].to_numpy())
    assert d.data["group"].dtype == np.int64

    # a custom log-likelihood with a fixed effect per group, through the indices
    def ll(p, data):
        eta = data["X"][:, 1] * p["b"] + p["a"][data["group"]]
        return data["y"] * eta - jnp.logaddexp(0.0, eta)

    res = jm.fit(ll, {"b": 0.0, "a": np.zeros(3)}, d.data)
    smf = pytest.importorskip("statsmodels.formula.api")
    ref = smf.logit("y ~ x1 + C(group) - 1", kept).fit(method="newton", tol=1e-14, disp=False)
    np.testing.assert_allclose(res.params["b"], ref.params["x1"], rtol=1e-7)
    np.testing.assert_allclose(res.params["a"], ref.params.iloc[:3], rtol=1e-7)


def test_one_sided_formula_and_dict_of_columns():
    d = jm.design("~ x + I(x ** 2)", {"x": [1.0, 2.0, 3.0]})
    np.testing.assert_array_equal(d.data["X"], [[1, 1, 1], [1, 2, 4], [1, 3, 9]])
    assert "y" not in d.data and d.labels["X"] == ["Intercept", "x", "I(x ** 2)"]


def test_bad_input_names_the_argument():
    df = frame(n=20)
    with pytest.raises(ValueError, match="formula must be a string"):
        jm.design(["y ~ x1"], df)
    with pytest.raises(ValueError, match="formula 'y ~ nope'"):
        jm.design("y ~ nope", df)
    with pytest.raises(ValueError, match="groups: 'region' is not a column"):
        jm.design("y ~ x1", df, groups="region")
    with pytest.raises(ValueError, match="data must be a pandas DataFrame"):
        jm.design("y ~ x1", np.ones((3, 2)))
    with pytest.raises(ValueError, match="left-hand side"):
        jm.design("y + x2 ~ x1", df)


def test_missing_formulaic_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name == "formulaic":
            raise ImportError("no formulaic")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(ImportError, match=r"jaxmle\[formula\]"):
        jm.design("y ~ x1", frame(n=5))


def test_design_data_fits_a_linear_regression_like_lstsq():
    df = frame(n=80, seed=8)
    df["z"] = 1.0 + 2.0 * df.x1 + np.random.default_rng(1).normal(size=80)
    d = jm.design("z ~ x1 + C(group)", df)
    res = jm.fit(jm.models.linear_regression(), d.data)
    beta = np.linalg.lstsq(d.data["X"], d.data["y"], rcond=None)[0]
    np.testing.assert_allclose(res.params["beta"], beta, rtol=1e-8)
    assert jax.tree_util.tree_structure(d.data) == jax.tree_util.tree_structure({"X": 0, "y": 0})
