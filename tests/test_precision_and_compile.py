"""float64 without configuring JAX, no global side effects, and no recompilation."""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import stats

import jaxmle as jm

FRESH = textwrap.dedent(
    """
    import numpy as np, jax
    from jax.scipy import stats
    import jaxmle as jm
    assert not jax.config.jax_enable_x64, "importing jaxmle must not enable x64 globally"
    x = np.random.default_rng(0).normal(1.0 + 1e-9, 1.0, size=1000)
    res = jm.fit(lambda p, d: stats.norm.logpdf(d, p["mu"], p["sigma"]), {"mu": 0.0, "sigma": 1.0}, x,
                 constraints={"sigma": jm.positive})
    assert res.params["mu"].dtype == np.float64 and res.cov.dtype == np.float64
    assert abs(res.params["mu"] / x.mean() - 1) < 1e-13, res.params["mu"] - x.mean()
    assert abs(res.se["sigma"] / (x.std() / np.sqrt(2000)) - 1) < 1e-11
    assert not jax.config.jax_enable_x64, "fit must not leave x64 enabled"
    assert jax.numpy.ones(1).dtype == np.float32
    r32 = jm.fit(lambda p, d: stats.norm.logpdf(d, p["mu"], p["sigma"]), {"mu": 0.0, "sigma": 1.0}, x,
                 constraints={"sigma": jm.positive}, dtype="float32")
    assert r32.params["mu"].dtype == np.float32
    assert abs(r32.params["mu"] / x.mean() - 1) < 1e-5
    print("ok")
    """
)


def test_float64_by_default_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_same_shapes_do_not_retrace():
    traces = []

    def loglik(p, d):
        if isinstance(p["beta"], jax.core.Tracer):
            traces.append(1)
        eta = d["X"] @ p["beta"]
        return d["y"] * eta - jnp.logaddexp(0.0, eta)

    rng = np.random.default_rng(0)

    def data():
        X = np.column_stack([np.ones(300), rng.normal(size=(300, 2))])
        return {"X": X, "y": (rng.uniform(size=300) < 0.5).astype(float)}

    jm.fit(loglik, {"beta": np.zeros(3)}, data())
    first = len(traces)
    assert first > 0
    res = jm.fit(loglik, {"beta": np.zeros(3)}, data())
    assert len(traces) == first, "a second fit with same-shaped data must reuse the compiled code"
    assert res.converged


def test_float32_results_are_reported_as_float32_but_close():
    x = np.random.default_rng(1).poisson(5.0, size=200)
    r = jm.fit(
        lambda p, d: stats.poisson.logpmf(d, p["rate"]),
        {"rate": 1.0},
        x,
        constraints={"rate": jm.positive},
        dtype=jnp.float32,
    )
    assert r.params["rate"].dtype == np.float32
    np.testing.assert_allclose(r.params["rate"], x.mean(), rtol=1e-5)


def test_float32_fits_report_the_float64_loglik_at_their_estimate():
    # summed in float32, 10^6 terms carry an error of order 100; the reported log-likelihood
    # is one float64 evaluation at the (float32) estimate, so it is exact to float64 rounding
    x = np.random.default_rng(2).normal(3.0, 2.0, size=1_000_000)

    def exact(mu, sigma):
        return float(np.sum(-0.5 * ((x - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)))

    loglik = lambda p, d: stats.norm.logpdf(d, p["mu"], p["sigma"])  # noqa: E731
    r = jm.fit(loglik, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive}, dtype=jnp.float32)
    mu, sigma = float(r.params["mu"]), float(r.params["sigma"])
    assert abs(r.loglik - exact(mu, sigma)) < 1e-9 * abs(r.loglik)
    assert abs(r.aic - (-2 * exact(mu, sigma) + 4)) < 1e-8 * abs(r.aic)
    b = jm.fit_batch(
        loglik,
        {"mu": 0.0, "sigma": 1.0},
        np.stack([x[:1000], x[1000:2000]]),
        constraints={"sigma": jm.positive},
        dtype=jnp.float32,
    )
    for i in range(2):
        part = x[1000 * i : 1000 * (i + 1)]
        m, s = float(b.params["mu"][i]), float(b.params["sigma"][i])
        ref = float(np.sum(-0.5 * ((part - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)))
        assert abs(b.loglik[i] - ref) < 1e-10 * abs(ref)
