"""Random effects: the Laplace approximation of the marginal likelihood (TMB's method).

With ``fit(..., random=["u"])`` the user's ``loglik(params, data)`` is the joint
log-density f(θ, u) = log p(y | u, θ) + log p(u | θ), and the fit maximizes the marginal

    ℓ(θ) = log ∫ exp f(θ, u) du ≈ f(θ, û) + (q/2) log 2π − ½ log det(−∇²_uu f(θ, û)),

where û(θ) is the mode of f over the q random effects u (exact for a Gaussian f, as in a
linear mixed model). û(θ) is found by a lean Newton iteration (``inner_solve``), started
at u = 0 for every evaluation, and carries the derivative the implicit function theorem gives
it, dû/dθ = −(∇²_uu f)⁻¹ ∇²_uθ f, by a rule JAX differentiates again: the outer gradient
and Hessian, and so the observed information of the marginal, are exact, never
derivatives through the inner iterations. An inner solve that does not reach a verified
maximum (or whose −∇²_uu f is not positive definite) makes the marginal NaN: the outer
solver rejects such a point, and at the estimate it is a status of the fit.

Integrating the fixed effects out as well (``random=["u", "beta"]``, a flat prior on
beta) gives the restricted (REML) likelihood of a linear mixed model, as lme4 defines it.

The outer parameters are everything not in ``random``. The conditional modes û and
their prediction standard errors, Var(û − u) ≈ (−∇²_uu f)⁻¹ + J Σ Jᵀ with J = dû/dθ and Σ
the outer covariance (what TMB's ``sdreport`` reports), join ``params`` and ``se``.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .solvers.linalg import cholesky, cholesky_solve
from .status import Status

#: the inner Newton's iteration cap and decrement tolerance (relative to 1 + |f|)
INNER_MAX_ITER = 100
INNER_TOL = 1e-14
#: the smallest fraction of a Newton step the halving tries
HALVING_FLOOR = 1e-10


@dataclass(frozen=True)
class RandomEffects:
    """Which top-level entries of ``params`` are integrated out, and their shapes."""

    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    def unravel(self, flat):
        """{key: array} from the flat vector of all random effects."""
        out, start = {}, 0
        for key, shape in zip(self.keys, self.shapes):
            n = math.prod(shape)
            out[key] = flat[start : start + n].reshape(shape)
            start += n
        return out


def split(init, random, constraints, fixed, prior, batched: bool = False):
    """(outer init, RandomEffects) from ``init`` and the names in ``random``.

    Raises ValueError naming ``random`` for names that are not top-level entries of a
    dict ``init``, that carry a constraint, a prior or a fixed value, or that leave no
    outer parameter. With ``batched`` the entries of ``init`` carry a replicate axis,
    which the random effects' shapes leave out."""
    if isinstance(random, str):
        random = [random]
    if not isinstance(random, (list, tuple)) or not random or not all(isinstance(k, str) for k in random):
        raise ValueError(f"random must be a non-empty list of parameter names, got {random!r}")
    if len(set(random)) != len(random):
        raise ValueError(f"random: each name once, got {list(random)!r}")
    if not isinstance(init, dict):
        raise ValueError(f"random: init must be a dict of named parameters, got {type(init).__name__}")
    for what, given in (("constraints", constraints), ("fixed", fixed), ("prior", prior)):
        named = set(given) if isinstance(given, dict) else set()
        clash = [k for k in random if k in named]
        if clash:
            raise ValueError(
                f"random: {', '.join(clash)} also named in {what}; random effects are real-valued and their "
                "distribution belongs in loglik (the joint log-density)"
            )
    missing = [k for k in random if k not in init]
    if missing:
        raise ValueError(f"random: {', '.join(missing)} not in init (its entries: {', '.join(map(str, init))})")
    outer = {k: v for k, v in init.items() if k not in random}
    if not outer:
        raise ValueError("random: every parameter is integrated out, so there is nothing to fit")
    shapes = []
    for k in random:
        shape = np.shape(init[k])[1:] if batched else np.shape(init[k])
        if not np.issubdtype(np.asarray(init[k]).dtype, np.floating) and not np.issubdtype(
            np.asarray(init[k]).dtype, np.integer
        ):
            raise ValueError(f"random: {k} must be numeric in init")
        shapes.append(tuple(int(n) for n in shape))
    return outer, RandomEffects(tuple(random), tuple(shapes))


def outer_problem(loglik, init, random, constraints, fixed, prior, batched: bool = False):
    """(the Laplace marginal of the joint ``loglik``, the outer ``init``): what ``fit``,
    ``fit_batch`` and ``simulation_study`` fit with ``random=``. Raises ValueError naming
    ``random`` for a built-in model (no joint density to integrate) and for the cases of
    ``split``."""
    from .models import Model

    if isinstance(loglik, Model):
        raise ValueError("random: a built-in model has no random effects; write the joint log-density as loglik")
    outer_init, re = split(init, random, constraints, fixed, prior, batched)
    return marginal_loglik(loglik, re), outer_init


def marginal_loglik(loglik, re: RandomEffects):
    """The Laplace marginal ``marginal(outer_params, data)`` of the joint ``loglik``
    (the same function object for the same ``loglik`` and random effects, so that
    compiled programs are reused)."""
    cache = _MARGINALS.setdefault(loglik, {})
    if re not in cache:
        cache[re] = _make_marginal(loglik, re)
        _MADE.add(cache[re])
    return cache[re]


_MARGINALS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MADE: weakref.WeakSet = weakref.WeakSet()


def is_marginal(fn) -> bool:
    """Whether ``fn`` is a Laplace marginal made by ``marginal_loglik``."""
    try:
        return fn in _MADE
    except TypeError:  # not weakly referenceable
        return False


def _joint(loglik, re: RandomEffects):
    def joint(outer, u, data):
        return jnp.sum(loglik({**outer, **re.unravel(u)}, data))

    return joint


def inner_solve(joint, outer, data, q, dtype):
    """The mode û of ``joint`` over u, by Newton's method from u = 0 with step halving:
    (û, CONVERGED or why not).

    Deliberately lean (one Cholesky per step, values only in the halving), since the
    marginal's program holds a copy of it wherever the outer solver evaluates the marginal.
    Converged when the Newton decrement gᵀH⁻¹g falls below ``INNER_TOL·(1 + |f|)`` at a
    positive definite −∇²_uu f; the Newton step computed there is taken too."""

    def f(u):
        return joint(outer, u, data)

    def newton_step(u):
        value, g = jax.value_and_grad(f)(u)
        factor = cholesky(-jax.hessian(f)(u), certificate=False)
        step = cholesky_solve(factor.L, g)
        return value, step, jnp.dot(g, step), factor.ok

    def cond(c):
        return (c.status == Status.MAX_ITER) & (c.it < INNER_MAX_ITER)

    def body(c):
        value, step, decrement, pd = newton_step(c.u)
        done = pd & (decrement <= INNER_TOL * (1.0 + jnp.abs(value)))

        def halve(h):
            return h[0] * 0.5, f(c.u + h[0] * 0.5 * step)

        def worse(h):
            return ~(h[1] >= value) & (h[0] > HALVING_FLOOR)

        alpha, _ = jax.lax.while_loop(worse, halve, (jnp.ones((), dtype) * 2.0, -jnp.inf * jnp.ones((), dtype)))
        failed = ~pd | ~jnp.isfinite(value) | ~(alpha > HALVING_FLOOR)
        status = jnp.select([done, failed], [Status.CONVERGED, Status.LINE_SEARCH_FAILED], Status.MAX_ITER)
        u = jnp.where(done, c.u + step, jnp.where(failed, c.u, c.u + alpha * step))
        return _Inner(u, status.astype(jnp.int32), c.it + 1)

    start = _Inner(jnp.zeros(q, dtype), jnp.int32(Status.MAX_ITER), jnp.int32(0))
    final = jax.lax.while_loop(cond, body, start)
    return final.u, final.status


class _Inner(NamedTuple):
    u: jax.Array
    status: jax.Array
    it: jax.Array


def _make_marginal(loglik, re: RandomEffects):
    joint = _joint(loglik, re)
    q = re.size

    @jax.custom_jvp
    def mode(outer, data):
        dtype = jnp.result_type(*jax.tree_util.tree_leaves(outer))
        u, status = inner_solve(joint, outer, data, q, dtype)
        return jnp.where(status == Status.CONVERGED, u, jnp.nan)

    @mode.defjvp
    def mode_jvp(primals, tangents):
        """dû = −(∇²_uu f)⁻¹ ∇²_uθ f dθ (implicit function theorem), linear in dθ."""
        outer, data = primals
        d_outer, _ = tangents
        u = mode(outer, data)
        L = cholesky(-jax.hessian(joint, argnums=1)(outer, u, data), certificate=False).L
        mixed = jax.jvp(lambda o: jax.grad(joint, argnums=1)(o, u, data), (outer,), (d_outer,))[1]
        return u, cholesky_solve(L, mixed)

    def marginal(outer, data):
        u = mode(outer, data)
        factor = cholesky(-jax.hessian(joint, argnums=1)(outer, u, data), certificate=False)
        log_det = jnp.where(factor.ok, 2.0 * jnp.sum(jnp.log(jnp.diag(factor.L))), jnp.nan)
        return joint(outer, u, data) + 0.5 * q * jnp.log(2.0 * jnp.pi) - 0.5 * log_det

    marginal.__name__ = marginal.__qualname__ = (
        f"{getattr(loglik, '__name__', 'loglik')} (Laplace over {', '.join(re.keys)})"
    )
    marginal.mode = mode
    marginal.joint = joint
    marginal.random_effects = re
    return marginal


@dataclass
class Prediction:
    """The random effects at the outer estimate: conditional modes and prediction SEs."""

    modes: dict  # key -> array
    se: dict  # key -> array: sqrt of diag((−∇²_uu f)⁻¹ + J Σ Jᵀ)
    status: Status  # the inner solve's status at the estimate
    notes: list


def predict(marginal, space, x, fixed_leaves, data, cov, dtype) -> Prediction:
    """Conditional modes and prediction SEs at the outer estimate ``x`` (the free
    parameters, flat, in the user's parameterization), whose covariance is ``cov``."""
    re = marginal.random_effects
    free = space.x_flat_to_leaves(jnp.asarray(x, dtype))
    u, status, neg_hessian, J = (np.asarray(a) for a in _at_estimate(marginal, space, free, fixed_leaves, data))
    status = Status(int(status))
    eig_min = float(np.linalg.eigvalsh(neg_hessian).min())
    if status != Status.CONVERGED or not eig_min > 0:
        note = (
            f"the inner problem over {', '.join(re.keys)} has no verified maximum at the estimate "
            f"({status.name}): the Laplace approximation is not defined there"
        )
        nan = {k: np.full(s, np.nan) for k, s in zip(re.keys, re.shapes)}
        return Prediction(re.unravel(u), nan, status, [note])
    se = np.sqrt(np.diag(np.linalg.inv(neg_hessian) + J @ cov @ J.T))  # NaN where cov is
    return Prediction(re.unravel(u), re.unravel(se), status, [])


@partial(jax.jit, static_argnums=(0, 1))
def _at_estimate(marginal, space, free, fixed_leaves, data):
    """(û, inner status, −∇²_uu f at û, dû/dx over the free parameters), compiled once
    per model."""
    joint, q = marginal.joint, marginal.random_effects.size
    outer = space.assemble(free, fixed_leaves)
    dtype = jnp.result_type(*free)
    u, status = inner_solve(joint, outer, data, q, dtype)
    neg_hessian = -jax.hessian(joint, argnums=1)(outer, u, data)
    J = jax.jacfwd(lambda fr: marginal.mode(space.assemble(fr, fixed_leaves), data))(free)
    return u, status, neg_hessian, jnp.concatenate([j.reshape(q, -1) for j in J], axis=1)


__all__ = ["RandomEffects", "split", "marginal_loglik", "predict", "Prediction"]
