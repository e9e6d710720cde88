"""`jaxmle verify` end to end: every row passes, the options work, a miss exits non-zero."""

import json
import sys

import pytest

from jaxmle import cli
from jaxmle.commands import verify


@pytest.mark.slow
def test_verify_passes_every_row(capsys):
    assert cli.main(["verify", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] and out["n_failed"] == 0
    entries = {r["entry"] for r in out["rows"]}
    assert entries == set(verify.ENTRIES)
    quantities = {(r["entry"], r["quantity"]) for r in out["rows"]}
    assert ("lasso", "beta[1]") in quantities and ("logistic_regression", "IRLS beta[0]") in quantities
    lasso_zeros = [r for r in out["rows"] if r["entry"] == "lasso" and r["closed_form"] == 0.0]
    assert lasso_zeros and all(r["jaxmle"] == 0.0 for r in lasso_zeros)  # exact zeros, not 1e-9
    for r in out["rows"]:
        assert r["ok"] and r["rel_error"] <= r["tol"]
        assert r["tol"] == 1e-8 or r["entry"] == "weibull"


def test_table_and_only(capsys):
    assert cli.main(["verify", "--only", "poisson"]) == 0
    text = capsys.readouterr().out
    assert "closed form" in text and "se(rate)" in text and "2 checks, all passed" in text


def test_unknown_entry(capsys):
    assert cli.main(["verify", "--only", "nope"]) == 2
    assert "unknown entry" in capsys.readouterr().err


def test_a_miss_exits_nonzero(monkeypatch, capsys):
    monkeypatch.setattr(verify, "_rel", lambda value, reference: 1.0)
    assert cli.main(["verify", "--only", "exponential"]) == 1
    assert "MISS" in capsys.readouterr().out


@pytest.mark.parametrize("beta", [[0.5, 1.0], [-1.0, 0.2, 0.3]])
def test_irls_reference_matches_statsmodels(beta):
    import numpy as np
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    X = np.column_stack([np.ones(300), rng.normal(size=(300, len(beta) - 1))])
    y = (rng.uniform(size=300) < 1 / (1 + np.exp(-X @ beta))).astype(float)
    ref = sm.Logit(y, X).fit(disp=0, tol=1e-12).params
    got = verify.irls(X, y, verify._sigmoid, lambda e: verify._sigmoid(e) * (1 - verify._sigmoid(e)))
    np.testing.assert_allclose(got, ref, rtol=1e-7)


def test_nuts_rows_skipped_without_blackjax(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "blackjax", None)  # `import blackjax` raises ImportError
    assert cli.main(["verify", "--only", "gamma_poisson", "--nuts", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] and out["n_failed"] == 0 and out["n_skipped"] == 2
    rows = out["nuts_rows"]
    assert [r["quantity"] for r in rows] == ["mean(rate)", "var(rate)"]
    assert all(r["ok"] and r["nuts"] is None and "pip install 'jaxmle[bayes]'" in r["skipped"] for r in rows)
    assert cli.main(["verify", "--only", "gamma_poisson", "--nuts"]) == 0
    text = capsys.readouterr().out
    assert text.count("skipped: jm.sample needs blackjax") == 2 and "3 checks, all passed, 2 skipped" in text


def test_nuts_row_judged_by_z_on_mcse():
    row = verify.NutsRow("e", "mean(p)", closed_form=1.0, nuts=1.5, mcse=0.1)
    assert row.z == pytest.approx(5.0) and not row.ok
    assert verify.NutsRow("e", "mean(p)", closed_form=1.0, nuts=1.3, mcse=0.1).ok


def test_moment_mcse_of_independent_normal_draws():
    """For independent N(0, s²) draws (N in all): MCSE(mean) = s/√N, MCSE(var) = √2 s²/√N."""
    import numpy as np

    s, x = 2.0, 2.0 * np.random.default_rng(7).normal(size=(4, 5000))
    moments = verify._moments(x)
    assert moments["mean"][1] == pytest.approx(s / np.sqrt(x.size), rel=0.05)
    assert moments["var"][0] == pytest.approx(s**2, rel=0.05)
    assert moments["var"][1] == pytest.approx(np.sqrt(2) * s**2 / np.sqrt(x.size), rel=0.05)


@pytest.mark.slow
def test_nuts_rows_pass_for_every_conjugate_pair():
    rows = verify._run_nuts(list(verify.ENTRIES), echo=False)
    assert {r.entry for r in rows} == set(verify._conjugates())
    assert len(rows) == 22  # a mean and a variance of every element: 1 + 4 + 1 + 1 + 1 + 1 + 2 elements
    assert ("normal_inverse_gamma", "var(var)") in {(r.entry, r.quantity) for r in rows}
    for r in rows:
        assert not r.skipped and r.mcse > 0 and r.z <= verify.Z_MAX, r
