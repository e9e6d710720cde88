"""Random effects: the Laplace approximation of the marginal likelihood (TMB's method).

With ``fit(..., random=["u"])`` the user's ``loglik(params, data)`` is the joint
log-density f(θ, u) = log p(y | u, θ) + log p(u | θ), and the fit maximizes the marginal

    ℓ(θ) = log ∫ exp f(θ, u) du ≈ f(θ, û) + (q/2) log 2π − ½ log det(−∇²_uu f(θ, û)),

where û(θ) is the mode of f over the q random effects u (exact for a Gaussian f, as in a
linear mixed model). û(θ) is found by a lean Newton iteration (``inner_solve``), started
at u = 0, or, in the trust-region solver's iterations, at the û of the current point (a
warm start: ``marginal.warm``), and carries the derivative the implicit function theorem gives
it, dû/dθ = −(∇²_uu f)⁻¹ ∇²_uθ f, by a rule JAX differentiates again: the outer gradient
and Hessian, and so the observed information of the marginal, are exact, never
derivatives through the inner iterations. An inner solve that does not reach a verified
maximum (or whose −∇²_uu f is not positive definite) makes the marginal NaN: the outer
solver rejects such a point, and at the estimate it is a status of the fit.

When the random effects form conditionally independent groups, −∇²_uu f is block diagonal
and is handled block by block (``inner_hessian``); with one scalar effect per group,
``nagq`` nodes of adaptive Gauss–Hermite quadrature can replace the Laplace approximation
(``quadrature``).

Integrating the fixed effects out as well (``random=["u", "beta"]``, a flat prior on
beta) gives the restricted (REML) likelihood of a linear mixed model, as lme4 defines it.

The outer parameters are everything not in ``random``. The conditional modes û and
their prediction standard errors, Var(û − u) ≈ (−∇²_uu f)⁻¹ + J Σ Jᵀ with J = dû/dθ and Σ
the outer covariance (what TMB's ``sdreport`` reports), join ``params`` and ``se``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import weakref
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _precision, inner_hessian, quadrature
from .status import Status
from .xla_options import quick_options

#: the inner Newton's iteration cap and decrement tolerance (relative to 1 + |f|); in a
#: lower precision at least INNER_TOL_EPS machine epsilons, since the decrement cannot
#: settle below round-off (float32: 3.8e-6; float64 keeps INNER_TOL)
INNER_MAX_ITER = 100
INNER_TOL = 1e-14
INNER_TOL_EPS = 32
#: the smallest fraction of a Newton step the halving tries
HALVING_FLOOR = 1e-10
#: a trial point within this of the current value (relative to 1 + |f|) is no worse: near
#: the mode the change is round-off, and halving a Newton step for it would only spin
INNER_ROUNDOFF = 1e-12


@dataclass(frozen=True)
class RandomEffects:
    """Which top-level entries of ``params`` are integrated out, and their shapes."""

    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    #: G conditionally independent groups along every entry's leading axis, or None
    groups: int | None = None
    #: adaptive Gauss–Hermite nodes per group (1: the Laplace approximation)
    nagq: int = 1

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    @property
    def block_size(self) -> int:
        """k = q / G: the random effects of one group."""
        return self.size // self.groups

    def to_blocks(self, flat, xp=jnp):
        """(G, k) from the flat vector: row g holds row g of every entry, in key order."""
        pieces, start = [], 0
        for shape in self.shapes:
            n = math.prod(shape)
            pieces.append(flat[start : start + n].reshape(self.groups, -1))
            start += n
        return xp.concatenate(pieces, axis=1)

    def from_blocks(self, blocks, xp=jnp):
        """The flat vector from ``to_blocks``' (G, k) layout."""
        pieces, start = [], 0
        for shape in self.shapes:
            width = math.prod(shape) // self.groups
            pieces.append(blocks[:, start : start + width].reshape(-1))
            start += width
        return xp.concatenate(pieces)

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


def outer_problem(loglik, init, random, constraints, fixed, prior, data, batched: bool = False, nagq=1):
    """(the Laplace marginal of the joint ``loglik``, the outer ``init``): what ``fit``,
    ``fit_batch`` and ``simulation_study`` fit with ``random=``. ``data`` is one
    replicate's data, on which the inner Hessian's structure is found
    (``inner_hessian.structure_check``); ``nagq`` as ``check_nagq`` passed it. Raises
    ValueError naming ``random`` for a built-in model (no joint density to integrate) and
    for the cases of ``split``, naming ``nagq`` where the groups do not allow quadrature."""
    check_joint(loglik)
    outer_init, re = split(init, random, constraints, fixed, prior, batched)
    with _precision.context(np.float64):
        first = {k: np.asarray(v, np.float64)[0] if batched else v for k, v in outer_init.items()}
        outer = {k: jnp.asarray(v, np.float64) for k, v in first.items()}
        groups = _structure_check(loglik, re)(outer, _precision.to_device(data, np.float64))
    re = dataclasses.replace(re, groups=groups)
    if nagq > 1 and (groups is None or re.block_size != 1):
        raise ValueError(
            f"nagq: adaptive quadrature needs one scalar random effect per conditionally independent group "
            f"(entries of shape (G,) or (G, 1) whose groups no term of loglik couples); {', '.join(re.keys)} "
            + ("are not grouped that way" if groups is None else f"have {re.block_size} per group")
            + ": use nagq=1 (the Laplace approximation)"
        )
    return marginal_loglik(loglik, dataclasses.replace(re, nagq=int(nagq))), outer_init


def check_joint(loglik) -> None:
    """ValueError naming ``random`` for a built-in model: it has no joint density to integrate."""
    from .models import Model

    if isinstance(loglik, Model):
        raise ValueError("random: a built-in model has no random effects; write the joint log-density as loglik")


#: lme4's limit on nAGQ, kept for the same reason: more nodes add cost, not accuracy
NAGQ_MAX = 25


def check_nagq(nagq, random) -> int:
    """``nagq`` as an int in 1..NAGQ_MAX (and 1 without ``random``), else ValueError naming it."""
    if isinstance(nagq, bool) or not isinstance(nagq, (int, np.integer)) or not 1 <= nagq <= NAGQ_MAX:
        raise ValueError(f"nagq must be an integer from 1 to {NAGQ_MAX} (1: the Laplace approximation), got {nagq!r}")
    if random is None and nagq != 1:
        raise ValueError(f"nagq: quadrature over random effects needs random=, got nagq={nagq!r}")
    return int(nagq)


def marginal_loglik(loglik, re: RandomEffects):
    """The Laplace marginal ``marginal(outer_params, data)`` of the joint ``loglik``
    (the same function object for the same ``loglik`` and random effects, so that
    compiled programs are reused)."""
    cache = _MARGINALS.setdefault(loglik, {})
    if re not in cache:
        cache[re] = _make_marginal(loglik, re)
        _MADE.add(cache[re])
    return cache[re]


def _structure_check(loglik, re: RandomEffects):
    """``inner_hessian.structure_check`` of the joint ``loglik``, made once per model."""
    cache = _CHECKS.setdefault(loglik, {})
    if re not in cache:
        cache[re] = inner_hessian.structure_check(_joint(loglik, re), re)
    return cache[re]


_MARGINALS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CHECKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MADE: weakref.WeakSet = weakref.WeakSet()


def lane_weight(fn) -> int:
    """How many lanes' worth of data one replicate of ``fn`` counts for when a batch groups
    its lanes: 1 + q for a Laplace marginal over q random effects (each evaluation runs an
    inner Newton iteration, so wide groups gain nothing from vectorizing, and small groups
    let the batch's two-pass handling confine a slow fit to its own group), else 1."""
    return 1 + fn.random_effects.size if is_marginal(fn) else 1


def is_marginal(fn) -> bool:
    """Whether ``fn`` is a Laplace marginal made by ``marginal_loglik``."""
    try:
        return fn in _MADE
    except TypeError:  # not weakly referenceable
        return False


def _joint(loglik, re: RandomEffects, summed: bool = True):
    """f(outer, u, data): the joint log-density (with ``summed=False`` its terms as ``loglik`` returns them)."""

    def joint(outer, u, data):
        terms = loglik({**outer, **re.unravel(u)}, data)
        return jnp.sum(terms) if summed else terms

    return joint


def inner_solve(joint, outer, data, re: RandomEffects, dtype, start=None):
    """The mode û of ``joint`` over u, by Newton's method with step halving from ``start``
    (the last û of the outer solver: a warm start), or from u = 0 where ``start`` is None
    or not finite: (û, CONVERGED or why not).

    Deliberately lean (one Cholesky per step, values only in the halving), since the
    marginal's program holds a copy of it wherever the outer solver evaluates the marginal.
    Converged when the Newton decrement gᵀH⁻¹g falls below ``tol·(1 + |f|)`` (``tol``:
    ``INNER_TOL``, or ``INNER_TOL_EPS`` epsilons of ``dtype`` if more) at a
    positive definite −∇²_uu f; the Newton step computed there is taken too."""
    tol = max(INNER_TOL, INNER_TOL_EPS * float(jnp.finfo(dtype).eps))

    def f(u):
        return joint(outer, u, data)

    def newton_step(u):
        value, g = jax.value_and_grad(f)(u)
        fac = inner_hessian.factor(inner_hessian.neg_hessian(f, u, re))
        step = inner_hessian.factor_solve(fac, g, re)
        return value, step, jnp.dot(g, step), fac.ok

    def cond(c):
        return (c.status == Status.MAX_ITER) & (c.it < INNER_MAX_ITER)

    def body(c):
        value, step, decrement, pd = newton_step(c.u)
        done = pd & (decrement <= tol * (1.0 + jnp.abs(value)))

        def halve(h):
            return h[0] * 0.5, f(c.u + h[0] * 0.5 * step)

        def worse(h):  # within round-off of ``value`` counts as no worse; no halving from a failed point
            no_worse = h[1] >= value - INNER_ROUNDOFF * (1.0 + jnp.abs(value))
            return ~done & pd & jnp.isfinite(value) & ~no_worse & (h[0] > HALVING_FLOOR)

        alpha, _ = jax.lax.while_loop(worse, halve, (jnp.ones((), dtype) * 2.0, -jnp.inf * jnp.ones((), dtype)))
        failed = ~pd | ~jnp.isfinite(value) | ~(alpha > HALVING_FLOOR)
        status = jnp.select([done, failed], [Status.CONVERGED, Status.LINE_SEARCH_FAILED], Status.MAX_ITER)
        u = jnp.where(done, c.u + step, jnp.where(failed, c.u, c.u + alpha * step))
        return _Inner(u, status.astype(jnp.int32), c.it + 1)

    u0 = jnp.zeros(re.size, dtype)
    if start is not None:
        u0 = jnp.where(jnp.all(jnp.isfinite(start)), start.astype(dtype), u0)
    final = jax.lax.while_loop(cond, body, _Inner(u0, jnp.int32(Status.MAX_ITER), jnp.int32(0)))
    return final.u, final.status


class _Inner(NamedTuple):
    u: jax.Array
    status: jax.Array
    it: jax.Array


def _make_marginal(loglik, re: RandomEffects):
    joint = _joint(loglik, re)
    q = re.size

    def solved(outer, data, start=None):
        """û at ``outer`` (NaN unless the inner solve converged), the inner solve started
        at ``start`` (see ``inner_solve``); never differentiated."""
        outer, start = jax.lax.stop_gradient((outer, start))
        dtype = jnp.result_type(*jax.tree_util.tree_leaves(outer))
        u, status = inner_solve(joint, outer, data, re, dtype, start)
        return jnp.where(status == Status.CONVERGED, u, jnp.nan)

    @jax.custom_jvp
    def at_mode(outer, data, u_hat):
        """û(outer), given its value ``u_hat``: the identity, carrying dû/dθ."""
        return u_hat

    @at_mode.defjvp
    def at_mode_jvp(primals, tangents):
        """dû = −(∇²_uu f)⁻¹ ∇²_uθ f dθ (implicit function theorem), linear in dθ. The
        value is passed in, so that derivatives of any order hold one inner solve."""
        outer, data, u_hat = primals
        d_outer = tangents[0]
        u = at_mode(outer, data, u_hat)
        neg_h = inner_hessian.neg_hessian(partial(joint, outer, data=data), u, re)
        mixed = jax.jvp(lambda o: jax.grad(joint, argnums=1)(o, u, data), (outer,), (d_outer,))[1]
        return u, inner_hessian.solve(neg_h, mixed, re)

    def warm(outer, data, start):
        """(the marginal at ``outer``, û there): the inner solve started at ``start``, the
        û of a nearby point (an outer solver's last), which saves most of its steps. û is
        returned without derivatives, to start the next evaluation."""
        u_hat = solved(outer, data, start)
        u = at_mode(outer, data, u_hat)
        f = partial(joint, outer, data=data)
        neg_h = inner_hessian.neg_hessian(f, u, re)
        if re.nagq > 1:
            value = f(u) + quadrature.adaptive_gauss_hermite(f, u, neg_h, re.nagq)
        else:
            value = f(u) + 0.5 * q * jnp.log(2.0 * jnp.pi) - 0.5 * inner_hessian.spd_log_det(neg_h)
        return value, jax.lax.stop_gradient(u_hat)

    def marginal(outer, data):
        return warm(outer, data, None)[0]

    method = "Laplace" if re.nagq == 1 else f"{re.nagq}-node adaptive Gauss-Hermite"
    marginal.__name__ = marginal.__qualname__ = (
        f"{getattr(loglik, '__name__', 'loglik')} ({method} over {', '.join(re.keys)})"
    )
    marginal.at_mode = at_mode
    marginal.warm = warm
    marginal.joint = joint
    marginal.joint_terms = _joint(loglik, re, summed=False)
    marginal.random_effects = re
    return marginal


@dataclass
class Prediction:
    """The random effects at the outer estimate: conditional modes and prediction SEs."""

    modes: dict  # key -> array
    se: dict  # key -> array: sqrt of diag((−∇²_uu f)⁻¹ + J Σ Jᵀ)
    status: Status  # the inner solve's status at the estimate
    notes: list


def predict(marginal, space, x, fixed_leaves, data, cov, dtype, modes=None) -> Prediction:
    """Conditional modes and prediction SEs at the outer estimate ``x`` (the free
    parameters, flat, in the user's parameterization), whose covariance is ``cov``.
    ``modes``: û at ``x`` where the fit found it (an inner solve verified it); else, or
    where it is not finite, the inner problem is solved again here, which names why it
    fails."""
    re = marginal.random_effects
    free = space.x_flat_to_leaves(jnp.asarray(x, dtype))
    if modes is not None and np.all(np.isfinite(modes)):
        at_mode = _compiled(_neg_hessian_and_jacobian)
        neg_hessian, J = (np.asarray(a) for a in at_mode(marginal, space, free, fixed_leaves, data, modes))
        u, status = np.asarray(modes), Status.CONVERGED
    else:
        at_estimate = _compiled(_at_estimate)
        u, status, neg_hessian, J = (np.asarray(a) for a in at_estimate(marginal, space, free, fixed_leaves, data))
        status = Status(int(status))
    eig_min = inner_hessian.smallest_eigenvalue(neg_hessian)
    if status != Status.CONVERGED or not eig_min > 0:
        note = (
            f"the inner problem over {', '.join(re.keys)} has no verified maximum at the estimate "
            f"({status.name}): the Laplace approximation is not defined there"
        )
        nan = {k: np.full(s, np.nan) for k, s in zip(re.keys, re.shapes)}
        return Prediction(re.unravel(u), nan, status, [note])
    outer_part = np.einsum("ip,pq,iq->i", J, cov, J)  # NaN where cov is
    se = np.sqrt(inner_hessian.inverse_diagonal(neg_hessian, re) + outer_part)
    return Prediction(re.unravel(u), re.unravel(se), status, [])


def _neg_hessian_and_jacobian(marginal, space, free, fixed_leaves, data, u):
    """(−∇²_uu f at the mode ``u``, dû/dx over the free parameters)."""
    joint, re = marginal.joint, marginal.random_effects
    outer = space.assemble(free, fixed_leaves)
    neg_hessian = inner_hessian.neg_hessian(partial(joint, outer, data=data), u, re)
    J = jax.jacfwd(lambda fr: marginal.at_mode(space.assemble(fr, fixed_leaves), data, u))(free)
    return neg_hessian, jnp.concatenate([j.reshape(re.size, -1) for j in J], axis=1)


def _at_estimate(marginal, space, free, fixed_leaves, data):
    """(û by an inner solve from u = 0, its status, and ``_neg_hessian_and_jacobian``
    there)."""
    outer = space.assemble(free, fixed_leaves)
    u, status = inner_solve(marginal.joint, outer, data, marginal.random_effects, jnp.result_type(*free))
    return (u, status, *_neg_hessian_and_jacobian(marginal, space, free, fixed_leaves, data, u))


@functools.cache
def _compiled(fn):
    """``fn(marginal, space, ...)`` jitted (once per model) for compile speed: it runs once per fit."""
    return jax.jit(fn, static_argnums=(0, 1), compiler_options=quick_options())


__all__ = ["RandomEffects", "split", "marginal_loglik", "predict", "Prediction"]
