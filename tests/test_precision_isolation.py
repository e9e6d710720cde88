"""A fit never breaks the caller's own JAX code, whatever ran before or after it.

Each flow runs in a fresh interpreter on the JAX the install brings (x64 off unless the
flow turns it on), since a test process that enabled x64 would hide the failures."""

import subprocess
import sys
import textwrap

import pytest

PRELUDE = textwrap.dedent(
    """
    import warnings
    import numpy as np, jax, jax.numpy as jnp
    import jaxmle as jm
    warnings.simplefilter("error", jm.PrecisionWarning)
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(500), rng.normal(size=(500, 2))])
    y = (rng.uniform(size=500) < 0.5).astype(float)
    def loglik(p, y):
        eta = X @ p["beta"]                      # closes over a NumPy array
        return y * jax.nn.log_sigmoid(eta) + (1 - y) * jax.nn.log_sigmoid(-eta)
    """
)

FLOWS = {
    # the reported crash: an eager product with the captured array after the fit
    "eager_after_fit": """
        res = jm.fit(loglik, {"beta": np.zeros(3)}, y)
        prob = jax.nn.sigmoid(X @ jnp.asarray(res.params["beta"]))
        assert prob.dtype == jnp.float32 and jnp.asarray(X).dtype == jnp.float32
        assert res.converged
    """,
    "jit_and_vmap_after_fit": """
        res = jm.fit(loglik, {"beta": np.zeros(3)}, y, method="lbfgs")
        f = jax.jit(lambda b: jax.nn.sigmoid(X @ b))
        assert f(jnp.asarray(res.params["beta"])).dtype == jnp.float32
        g = jax.vmap(lambda b: X @ b)(jnp.ones((4, 3)))
        assert g.shape == (4, 500) and g.dtype == jnp.float32
    """,
    # the user's jitted log-likelihood is traced inside the fit, then used by the user
    "user_jitted_loglik": """
        jitted = jax.jit(loglik)
        res = jm.fit(jitted, {"beta": np.zeros(3)}, y)
        assert jitted({"beta": jnp.zeros(3)}, y).dtype == jnp.float32
        assert (X @ jnp.ones(3)).dtype == jnp.float32
    """,
    # the user's float32 code ran first: the fit must still see float64 values
    "user_code_before_fit": """
        Z = np.full((2000, 1), 1.0 + 1e-12)
        pre = jax.jit(lambda b: Z @ b)
        assert pre(jnp.ones(1)).dtype == jnp.float32
        res = jm.fit(lambda p, d: -0.5 * (d - Z @ jnp.reshape(p["m"], (1,))) ** 2, {"m": 0.0}, np.full(2000, 3.0))
        assert abs(res.params["m"] - 3.0 / (1.0 + 1e-12)) < 1e-14, res.params["m"] - 3.0
        assert pre(jnp.ones(1)).dtype == jnp.float32 and (Z @ jnp.ones(1)).dtype == jnp.float32
    """,
    "batch_and_study_then_user_code": """
        data = np.stack([y, y[::-1]])
        fits = jm.fit_batch(loglik, {"beta": np.zeros(3)}, data)
        assert fits.converged.all()
        assert (X @ jnp.ones(3)).dtype == jnp.float32
        grid = np.linspace(0.1, 1.0, 20)
        study = jm.simulation_study(
            loglik=lambda p, d: jax.scipy.stats.norm.logpdf(d, p["mu"] * grid.mean(), 1.0),
            simulate=lambda key, p, n: p["mu"] * grid.mean() + jax.random.normal(key, (n,)),
            truth={"mu": 1.0}, init={"mu": 0.0}, n=30, reps=8, seed=0)
        assert (grid @ jnp.ones(20)).dtype == jnp.float32
    """,
    # x64 switched on globally by the user: left on, and everything float64
    "x64_enabled_globally": """
        jax.config.update("jax_enable_x64", True)
        res = jm.fit(loglik, {"beta": np.zeros(3)}, y)
        assert jax.config.jax_enable_x64
        assert (X @ jnp.asarray(res.params["beta"])).dtype == jnp.float64
    """,
    "float32_fit_then_float64_fit": """
        r32 = jm.fit(loglik, {"beta": np.zeros(3)}, y, dtype="float32")
        r64 = jm.fit(loglik, {"beta": np.zeros(3)}, y)
        assert r32.params["beta"].dtype == np.float32 and r64.params["beta"].dtype == np.float64
        assert np.allclose(r32.params["beta"], r64.params["beta"], atol=1e-4)
        assert (X @ jnp.ones(3)).dtype == jnp.float32
    """,
}


def run_fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code) + "\nprint('ok')\n"],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_user_code_runs_after_a_fit(flow):
    out = run_fresh(FLOWS[flow])
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


def test_float32_constants_in_a_float64_fit_are_named():
    out = run_fresh(
        """
        warnings.simplefilter("default", jm.PrecisionWarning)
        X32 = jnp.asarray(X)                    # made before the fit: float32
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            jm.fit(lambda p, y: -0.5 * (y - X32 @ p["beta"]) ** 2, {"beta": np.zeros(3)}, y)
        texts = [str(w.message) for w in caught if issubclass(w.category, jm.PrecisionWarning)]
        assert len(texts) == 1 and "(500, 3)" in texts[0], texts
        """
    )
    assert out.returncode == 0, out.stderr[-3000:]
