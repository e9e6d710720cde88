"""Every script in examples/ runs and prints what it claims."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXPECT = {
    "cross_entropy_is_nll.py": "-n * mean cross-entropy",
    "gaussian_variance_bias.py": "(n-1)/n sigma²",
    "laplace_smoothing.py": "(s+1)/(n+2)",
    "mle_map_bayes.py": "the posterior mode, not the posterior mean",
    "mle_minimizes_kl.py": "argmin KL",
    "ols_is_gaussian_mle.py": "OLS",
    "ridge_and_lasso_are_map.py": "exact zeros",
    "zero_inflated_poisson.py": "CONVERGED",
}
#: examples that run longer than the default run allows (two NUTS compiles: about 40 s on 2 cores)
SLOW = {"mle_map_bayes.py"}


def test_every_example_is_listed():
    assert {p.name for p in (ROOT / "examples").glob("*.py")} == set(EXPECT)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(EXPECT)])
def test_example_runs(name):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name)], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert EXPECT[name] in proc.stdout
