"""Every solver reaches the same optimum; Newton survives poor starts."""

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats as ss
from jax import lax

import jaxmle as jm


def logistic_problem(seed=0, n=500):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X @ np.array([0.3, 1.0, -0.5, 0.2])))).astype(float)

    def loglik(p, d):
        eta = d["X"] @ p["beta"]
        return d["y"] * eta - jnp.logaddexp(0.0, eta)

    return loglik, {"X": X, "y": y}


@pytest.mark.parametrize(
    "method, rtol",
    [("newton", 1e-10), ("lbfgs", 1e-7), ("adam", 1e-4), (optax.sgd(0.002, momentum=0.9), 1e-4)],
    ids=["newton", "lbfgs", "adam", "optax-sgd"],
)
def test_methods_agree(method, rtol):
    loglik, data = logistic_problem()
    ref = jm.fit(loglik, {"beta": np.zeros(4)}, data, method="newton")
    res = jm.fit(loglik, {"beta": np.zeros(4)}, data, method=method, max_iter=50000)
    assert res.converged, res.status
    np.testing.assert_allclose(res.params["beta"], ref.params["beta"], rtol=rtol, atol=rtol)
    # inference is computed at the optimum the same way whatever the solver
    np.testing.assert_allclose(res.se["beta"], ref.se["beta"], rtol=max(rtol * 100, 1e-6))


def test_weibull_from_a_poor_start_reaches_scipys_fit():
    x = np.random.default_rng(1).weibull(2.5, size=300) * 3.0

    def loglik(p, d):
        k, lam = p["k"], p["lam"]
        return jnp.log(k / lam) + (k - 1) * jnp.log(d / lam) - (d / lam) ** k

    res = jm.fit(loglik, {"k": 0.1, "lam": 100.0}, x, constraints={"k": jm.positive, "lam": jm.positive})
    k, _, lam = ss.weibull_min.fit(x, floc=0)
    assert res.converged
    # scipy's fit is itself accurate to about 1e-5; check jaxmle's gradient is at round-off
    np.testing.assert_allclose([res.params["k"], res.params["lam"]], [k, lam], rtol=1e-4)
    assert res.grad_norm < 1e-8


def test_badly_scaled_nearly_collinear_regression_from_zeros():
    # a Longley-like design: large, nearly collinear columns; OLS by QR as the reference
    rng = np.random.default_rng(2)
    n = 40
    t = np.arange(n, dtype=float)
    trend = 1e3 * (t + 1947)
    X = np.column_stack([np.ones(n), trend, trend + 1e3 * rng.normal(size=n), 1e-3 * rng.normal(size=n)])
    y = X @ np.array([5.0, 1e-3, -1e-3, 2e3]) + rng.normal(size=n)
    Q, R = np.linalg.qr(X)
    beta = np.linalg.solve(R, Q.T @ y)
    res = jm.fit(lambda p, d: jm_norm(d["y"], d["X"] @ p["b"]), {"b": np.zeros(4)}, {"X": X, "y": y})
    assert res.converged and res.condition_number > 1e6
    np.testing.assert_allclose(res.params["b"], beta, rtol=1e-8)


def jm_norm(y, mean):
    return -0.5 * (y - mean) ** 2 - 0.5 * np.log(2 * np.pi)


@pytest.mark.parametrize("eps", [1e-4, 1e-5, 1e-6])
def test_nearly_singular_quadratic_converges_in_a_few_newton_steps(eps):
    # condition numbers 1e8 to 1e12: Newton must stay Newton (no pivot modification)
    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(100), rng.normal(size=100)])
    X = np.column_stack([X, X[:, 1] + eps * rng.normal(size=100)])
    y = X @ np.array([1.0, 2.0, 3.0]) + rng.normal(size=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jm.FitWarning)
        res = jm.fit(lambda p, d: jm_norm(d["y"], d["X"] @ p["b"]), {"b": np.zeros(3)}, {"X": X, "y": y})
    # at eps = 1e-6 the information is singular to working precision (condition ~1e12): the
    # maximum is reached but verified as a flat ridge, which is not `converged`
    assert res.status in (jm.Status.CONVERGED, jm.Status.INFORMATION_NOT_PD) and res.n_iter <= 5
    assert res.converged == (res.status == jm.Status.CONVERGED)
    ols = np.linalg.lstsq(X, y, rcond=None)[0]
    # both solutions carry the forward error of an ill-conditioned solve, about cond * eps
    np.testing.assert_allclose(res.params["b"], ols, rtol=10 * res.condition_number * np.finfo(float).eps)


def pseudo_huber_loglik(p, d):
    return -jnp.sqrt(1.0 + (d - p["mu"]) ** 2)


def pseudo_huber_location(x):
    """The maximizer of sum(-sqrt(1 + (x - mu)^2)): the root of its (monotone) score."""
    from scipy.optimize import brentq

    return brentq(lambda mu: np.sum((x - mu) / np.sqrt(1 + (x - mu) ** 2)), x.min(), x.max(), xtol=1e-15)


def test_rejected_newton_steps_backtrack_to_the_optimum():
    # far from the centre Newton's step on sqrt(1 + r^2) overshoots by a factor of about r^2:
    # the full step is rejected and the line search (then fresh derivatives) must take over
    x = np.random.default_rng(4).standard_cauchy(50)
    res = jm.fit(pseudo_huber_loglik, {"mu": 40.0}, x)
    assert res.converged, res.status
    np.testing.assert_allclose(res.params["mu"], pseudo_huber_location(x), rtol=0, atol=1e-12)
    assert res.grad_norm < 1e-10


def test_batched_lanes_that_backtrack_match_single_fits():
    # under vmap, fits that take full steps, fits that backtrack and fits that have stopped
    # share each iteration; each must end where it ends alone
    rng = np.random.default_rng(5)
    x = rng.standard_cauchy((6, 50))
    starts = np.array([0.0, 40.0, -25.0, 1.0, 300.0, 0.5])
    batch = jm.fit_batch(pseudo_huber_loglik, {"mu": starts}, x, batched_init=True, progress=False)
    assert np.all(batch.converged)
    for i in range(len(x)):
        single = jm.fit(pseudo_huber_loglik, {"mu": starts[i]}, x[i])
        assert batch.n_iter[i] == single.n_iter  # fits past fit_batch's first pass included
        np.testing.assert_allclose(batch.params["mu"][i], single.params["mu"], rtol=0, atol=1e-13)
        np.testing.assert_allclose(batch.params["mu"][i], pseudo_huber_location(x[i]), rtol=0, atol=1e-12)


def _computations(hlo: str) -> dict[str, str]:
    """Compiled HLO text -> {computation name: its text}; the entry computation under "ENTRY"."""
    found = {}
    for block in re.split(r"\n(?=\S)", hlo):
        header = re.match(r"(ENTRY )?%?([\w.\-]+) ", block)
        if header:
            found["ENTRY" if header.group(1) else header.group(2)] = block
    return found


def _reachable(computations: dict, start: str, skip: str = "") -> set[str]:
    """The computations that ``start`` runs, directly or not, other than through ``skip``."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name == skip or name not in computations:
            continue
        seen.add(name)
        todo += re.findall(r"(?:calls|body|condition|to_apply)=%?([\w.\-]+)", computations[name])
    return seen


def test_work_of_at_most_once_stays_in_its_loop():
    """A check gated by ``at_most_once`` in a solver's loop must not be hoisted by XLA into
    the loop's body, where it would run at every iteration: the marker operation (a cube
    root) is reached from the outer loop's body only through the gate's own loop."""
    from jaxmle.solvers.driver import at_most_once

    def solver_like(x):
        def body(c):
            i, v = c
            w = at_most_once(v > 1e30, lambda a: jnp.cbrt(a) * jnp.cbrt(a + 1.0), v, v)
            return i + 1, w + 1.0

        return lax.while_loop(lambda c: c[0] < 10, body, (0, x))[1]

    computations = _computations(jax.jit(jax.vmap(solver_like)).lower(jnp.ones(64)).compile().as_text())
    (outer,) = re.findall(r" while\(.*?body=%?([\w.\-]+)", computations["ENTRY"])
    (gate,) = re.findall(r" while\(.*?body=%?([\w.\-]+)", computations[outer])
    marked = {name for name, text in computations.items() if re.search(r"\bcbrt\(", text)}
    assert marked, "the marker was compiled away"
    assert marked <= _reachable(computations, gate)
    assert not marked & _reachable(computations, outer, skip=gate)


def test_small_factorizations_are_straight_line_code_only_where_asked():
    """A single fit's program keeps its factorization loops (it compiles faster); a batched
    solve traces them in ``unrolled()``, as straight-line code that XLA fuses across lanes."""
    from jaxmle.solvers.linalg import cholesky, cholesky_solve, unrolled

    A, b = jnp.array([[4.0, 1.0], [1.0, 3.0]]), jnp.array([1.0, -2.0])  # a 2-parameter model's system

    def solve(A, b):
        return cholesky_solve(cholesky(A).L, b)

    def unroll_counts():  # a new function each time: a traced function's program is cached
        return set(re.findall(r"unroll=(\d+)", str(jax.make_jaxpr(lambda A, b: solve(A, b))(A, b))))

    rolled = unroll_counts()
    with unrolled():
        straight = unroll_counts()
        x = solve(A, b)
    assert rolled == {"1"} and straight == {"2"}  # loops of one step per trip, or both steps unrolled
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-6)
    np.testing.assert_allclose(solve(A, b), x, rtol=1e-6)
