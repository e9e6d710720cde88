"""Long sums computed in blocks: the same values as the plain program, through every kind of
equation a log-likelihood or the solver holds, and no less accurate than XLA's own tree."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.extend.core import ClosedJaxpr

import jaxmle as jm
from jaxmle import _precision
from jaxmle.fit import prepare
from jaxmle.problem import batched_solve
from jaxmle.short_sums import BLOCK, DIRECT, with_short_sums


def loglik(theta, x):
    """Sums at the top level, in a jit, in a custom-JVP function, in a scan and in a cond."""
    mu, log_sigma = theta[0], theta[1]
    z = (x - mu) / jnp.exp(log_sigma)
    value = jnp.sum(-0.5 * z**2) - x.shape[0] * log_sigma
    value += jax.jit(lambda v: jnp.sum(jnp.logaddexp(0.0, v)))(z) / 10
    value += lax.scan(lambda acc, row: (acc + jnp.sum(jnp.tanh(row * z)), None), 0.0, jnp.stack([x, x / 2]))[0]
    value += lax.cond(mu > 0, lambda: jnp.sum(jnp.sin(z)), lambda: jnp.sum(jnp.cos(z)))
    return value


def value_grad_hessian(theta, x):
    """Three Newton steps in a while loop (as the solver takes them), then the derivatives."""

    def step(carry):
        i, t = carry
        return i + 1, t - jnp.linalg.solve(jax.hessian(loglik)(t, x), jax.grad(loglik)(t, x))

    theta = lax.while_loop(lambda c: c[0] < 3, step, (0, theta))[1]
    return theta, loglik(theta, x), jax.grad(loglik)(theta, x), jax.hessian(loglik)(theta, x)


@pytest.mark.parametrize("n", [DIRECT, DIRECT + 1, 100, 1001])
@pytest.mark.parametrize("mu", [-0.5, 0.5])
def test_same_values_as_the_plain_program(n, mu):
    with jax.enable_x64(True):
        x = np.random.default_rng(n).normal(1.0, 2.0, size=n)
        theta = np.array([mu, 0.3])
        plain = jax.jit(value_grad_hessian)(theta, x)
        blocked = jax.jit(with_short_sums(value_grad_hessian))(theta, x)
        for a, b in zip(plain, blocked):
            np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-13 * float(np.max(np.abs(a))))


def test_batched_sums_and_pytrees():
    """Under vmap the observations' axis is not the first; outputs keep their pytree."""
    with jax.enable_x64(True):
        x = np.random.default_rng(1).normal(size=(7, 250))

        def fn(p, data):
            return {"total": jnp.sum(data["x"] * p), "count": jnp.sum(data["x"] > 0)}

        plain = jax.jit(jax.vmap(fn))(np.arange(7.0), {"x": x})
        blocked = jax.jit(with_short_sums(jax.vmap(fn)))(np.arange(7.0), {"x": x})
        assert blocked["count"].dtype == plain["count"].dtype
        np.testing.assert_array_equal(blocked["count"], plain["count"])
        np.testing.assert_allclose(blocked["total"], plain["total"], rtol=1e-14, atol=1e-12)


def test_every_long_sum_is_blocked():
    """Reading the rewritten program: each sum over more than DIRECT terms became block sums
    behind a barrier, including those inside the loop, the scan and the cond, and those that
    autodiff wrote."""

    def long_sums(jaxpr):
        found = []
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "reduce_sum":
                shape = eqn.invars[0].aval.shape
                found += [shape[a] for a in eqn.params["axes"] if shape[a] > DIRECT]
            for value in eqn.params.values():
                for item in value if isinstance(value, tuple) else (value,):
                    if isinstance(item, ClosedJaxpr):
                        found += long_sums(item.jaxpr)
        return found

    with jax.enable_x64(True):
        theta, x = np.array([0.5, 0.3]), np.zeros(100)
        plain = jax.make_jaxpr(value_grad_hessian)(theta, x)
        blocked = jax.make_jaxpr(with_short_sums(value_grad_hessian))(theta, x)
    assert len(long_sums(plain.jaxpr)) >= 10
    assert long_sums(blocked.jaxpr) == []
    assert str(blocked).count("optimization_barrier") >= 10


def test_no_less_accurate_than_a_tree():
    """A million terms of 0.1: a running sum is off by 1.3e-11 relative; a tree by ~1e-16."""
    with jax.enable_x64(True):
        x = np.full(10**6, 0.1)
        exact = math.fsum(x)
        blocked = float(jax.jit(with_short_sums(jnp.sum))(x))
        running = float(np.cumsum(x)[-1])
    assert abs(running - exact) / exact > 1e-12  # the failure this guards against
    assert abs(blocked - exact) / exact < 1e-15 * BLOCK


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the sums are blocked on the CPU backend only")
def test_fit_batch_programs_block_their_sums_on_the_cpu():
    """The batched program (solver loops and inference) is the rewritten one on the CPU."""
    x = np.random.default_rng(0).normal(size=(8, 100))
    loglik = lambda p, d: jax.scipy.stats.norm.logpdf(d, p["mu"], p["sigma"])  # noqa: E731
    options = dict(prior=None, fixed=None, method="auto", nobs=None, tol=None, max_iter=None, dtype=None)
    prep = prepare(loglik, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive}, batched=True, **options)
    u0 = np.broadcast_to(prep.u0, (8, *prep.u0.shape))
    with _precision.context(prep.dtype):
        program = jax.make_jaxpr(batched_solve(prep.problem))(u0, prep.fixed_leaves, x, np.int32(5))
    assert str(program).count("optimization_barrier") >= 10
