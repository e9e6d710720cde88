"""``jaxmle simulate`` without --truth, and its help text."""

import jax
import numpy as np
import pytest

import jaxmle as jm
from jaxmle import cli

FACTORIES = sorted(n for n in jm.models.__all__ if n.islower() and n not in ("resolve", "default_truth"))


@pytest.mark.slow
def test_every_factory_has_a_default_truth_its_simulator_and_loglik_take():
    assert sorted(jm.models.DEFAULT_TRUTHS) == FACTORIES
    for name in FACTORIES:
        model = getattr(jm.models, name)(**{"binomial": {"trials": 5}, "categorical": {"k": 3}}.get(name, {}))
        truth = jm.models.default_truth(model)
        data = model.simulate(jax.random.key(0), truth, 20)
        model.check_data(jax.tree_util.tree_map(np.asarray, data))
        assert set(truth) == set(model.init(data)), name  # every parameter has a true value
        assert np.all(np.isfinite(np.asarray(model.loglik(truth, data)))), name
    k4 = jm.models.default_truth(jm.models.categorical(4))
    np.testing.assert_array_equal(k4["p"], [0.25] * 4)


@pytest.mark.slow
def test_simulate_without_truth_uses_the_default(capsys):
    assert cli.main(["simulate", "poisson", "--n", "400", "--reps", "300", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "default truth rate=3" in out
    row = next(line for line in out.splitlines() if line.startswith("│ rate"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[1] == "3"
    # the bias of the mean of 400 Poisson(3) counts, over 300 replicates: |bias| < 4 SE of it
    bias = float(cells[2].split()[0])
    assert abs(bias) < 4 * np.sqrt(3 / 400 / 300)


def test_help_prints_a_single_percent_sign_and_the_default_truths(capsys):
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    text = capsys.readouterr().out
    assert "95% Wald" in text and "%%" not in text
    assert "logistic_regression  beta=-0.5,1,-1" in text and "poisson              rate=3" in text
