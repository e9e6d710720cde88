"""A fitting problem: objective, solver choice and inference, as one pure function.

``Problem`` is hashable (it holds the user's functions and static settings only), so
the compiled ``solve`` is cached per problem and per input shapes: a second fit with new
data of the same shapes reuses the compiled code. ``solve`` is safe under ``jit`` and
``vmap``; it never raises and reports failures through ``status``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _precision, random_effects, solvers
from .inference import Inference, observed_inference
from .parameters import ParameterSpace
from .priors import Laplace
from .short_sums import short_sums_on_cpu
from .solvers.derivatives import value_grad_hessian
from .solvers.linalg import unrolled
from .status import Status
from .xla_options import batch_options, quick_options

MAX_ITER = {"newton": 100, "lbfgs": 2000, "optax": 20000}
#: float64 defaults: Newton's is on the decrement (a squared, objective-scale quantity),
#: the others on the gradient; ``default_tol`` rescales them for float32
TOL = {"newton": 1e-14, "lbfgs": 1e-10, "optax": 1e-8}


def default_tol(kind: str, dtype) -> float:
    """The default tolerance for a solver kind at a precision: float32's is larger by the
    ratio of machine epsilons (Newton), or by its square root (gradient tests)."""
    ratio = float(jnp.finfo(dtype).eps / jnp.finfo(jnp.float64).eps)
    return TOL[kind] * (ratio if kind == "newton" else ratio**0.5)


#: "auto" uses Newton up to this many free coordinates, L-BFGS above
AUTO_NEWTON_MAX = 200
#: method names; "newton" is the trust-region Newton, "line-search" the line-search form
METHODS = ("auto", "newton", "trust-region", "line-search", "lbfgs", "adam")
#: Newton iterations that verify (and finish) a first-order solver's result
VERIFY_MAX_ITER = 20
#: solver statuses that a non-finite gradient at the end does not override
SOLVER_FAILURES_KEPT = (
    Status.NONFINITE_START,
    Status.NONFINITE,
    Status.INVALID_DATA,
    Status.AT_BOUNDARY,
    Status.NO_FINITE_MAXIMUM,
)


class RawFit(NamedTuple):
    """Device output of one fit (every field gains a leading axis under vmap)."""

    u: jax.Array
    x: jax.Array
    loglik: jax.Array
    logpost: jax.Array
    n_iter: jax.Array
    status: jax.Array  # the solver's Status code
    grad_norm: jax.Array  # max |∂ logpost / ∂z| off L1 kinks
    grad_z: jax.Array  # ∂ logpost / ∂z (the L1 terms' slopes included off their kinks)
    information_z: jax.Array  # -∇² smooth logpost in z coordinates
    jacobian: jax.Array | None  # ∂x/∂z, None when it is the identity
    at_kink_z: jax.Array
    #: a Laplace marginal's û at the estimate (NaN where its inner solve failed), else None
    modes: jax.Array | None = None


def has_l1(priors) -> bool:
    """Whether ``((key, Prior), ...)`` holds a Laplace (L1) prior."""
    return any(isinstance(p, Laplace) for _, p in priors)


def resolve_method(method, m: int, has_l1: bool) -> tuple[str, Hashable]:
    """(display name, solver key) for ``method``; raises ValueError for bad values."""
    if isinstance(method, optax.GradientTransformation):
        key = ("optax", method)
        name = "optax"
    elif method in METHODS:
        if method == "auto":
            method = "newton" if m <= AUTO_NEWTON_MAX else "lbfgs"
        method = "newton" if method == "trust-region" else method
        key = ("newton", "line-search") if method == "line-search" else (method, None)
        name = method
    else:
        raise ValueError(
            "method must be 'auto', 'newton' (alias 'trust-region'), 'line-search', 'lbfgs', 'adam' or an "
            f"optax.GradientTransformation, got {method!r}"
        )
    if has_l1 and key[0] != "newton":
        raise ValueError(
            f"method={name!r} cannot handle a Laplace (L1) prior: use method='newton' or 'auto', whose "
            "proximal steps give exact zeros"
        )
    if has_l1:
        name = "proximal newton"
    return name, key


@dataclass(frozen=True)
class Problem:
    loglik: Callable
    space: ParameterSpace
    priors: tuple  # ((key, Prior), ...)
    log_prior: Callable | None
    solver: Hashable  # from resolve_method
    tol: float | None
    max_iter: int | None

    # --- the log-density --------------------------------------------------------------
    def params(self, free_leaves, fixed_leaves):
        return self.space.assemble(free_leaves, fixed_leaves)

    def loglik_terms(self, free_leaves, fixed_leaves, data):
        _precision.user_code_ran(self.loglik)
        return self.loglik(self.params(free_leaves, fixed_leaves), data)

    def log_prior_value(self, free_leaves, fixed_leaves, smooth: bool):
        total = 0.0
        by_key = dict(self.priors)
        for leaf, value in zip(self.space.free, free_leaves):
            prior = by_key.get(leaf.key)
            if prior is not None:
                value = leaf.free_part(value)  # a prior is on the free elements only
                total = total + (prior.log_prob_smooth(value) if smooth else prior.log_prob(value))
        if self.log_prior is not None:
            _precision.user_code_ran(self.log_prior)
            total = total + self.log_prior(self.params(free_leaves, fixed_leaves))
        return total

    def logpost_smooth(self, free_leaves, fixed_leaves, data):
        ll = jnp.sum(self.loglik_terms(free_leaves, fixed_leaves, data))
        return ll + self.log_prior_value(free_leaves, fixed_leaves, smooth=True)

    def logpost_smooth_warm(self, free_leaves, fixed_leaves, data, start):
        """(``logpost_smooth``, û) of a Laplace marginal whose inner solve starts at
        ``start`` (``random_effects``: the marginal's ``warm``)."""
        _precision.user_code_ran(self.loglik)
        value, u_hat = self.loglik.warm(self.params(free_leaves, fixed_leaves), data, start)
        return value + self.log_prior_value(free_leaves, fixed_leaves, smooth=True), u_hat

    @property
    def has_prior(self) -> bool:
        return bool(self.priors) or self.log_prior is not None

    def l1(self, dtype):
        """Per-coordinate L1 weights and centres (in u, which equals x for jm.real)."""
        by_key = dict(self.priors)
        weights, centres = [], []
        for leaf in self.space.free:
            prior = by_key.get(leaf.key)
            is_l1 = isinstance(prior, Laplace)
            weights.append(np.full(leaf.free_size, prior.l1_weight if is_l1 else 0.0))
            centres.append(np.full(leaf.free_size, prior.loc if is_l1 else 0.0))
        cat = lambda xs: jnp.asarray(np.concatenate(xs) if xs else np.zeros(0), dtype)  # noqa: E731
        return cat(weights), cat(centres)

    # --- solving ----------------------------------------------------------------------
    def strategy(self, smooth, total, l1_weight, l1_centre, dtype, eager_start=False, warm=None):
        kind, transform = self.solver
        tol = self.tol if self.tol is not None else default_tol("optax" if kind == "adam" else kind, dtype)
        if kind == "newton":
            if self.has_l1:
                return solvers.proximal_newton(smooth, l1_weight, l1_centre, tol)
            if transform == "line-search":
                return solvers.newton(smooth, tol)
            return solvers.trust_region_newton(smooth, tol, eager_start, warm)
        if kind == "lbfgs":
            return solvers.lbfgs(smooth, tol)
        transform = optax.adam(1e-2) if kind == "adam" else transform
        return solvers.gradient_transformation(total, transform, tol)

    @property
    def has_l1(self) -> bool:
        """Whether a Laplace (L1) prior makes the objective non-smooth."""
        return has_l1(self.priors)

    def verify_tol(self, dtype) -> float:
        """The verdict's decrement tolerance (``verdict.verify_tol``) for this problem."""
        from .verdict import verify_tol

        return verify_tol(dtype, self.tol if self.solver[0] == "newton" else None)

    def default_max_iter(self) -> int:
        kind = self.solver[0]
        return self.max_iter or MAX_ITER["optax" if kind in ("adam", "optax") else kind]

    def verify_with_newton(self, result, smooth, total, ends, u0) -> solvers.SolverResult:
        """Continue a first-order solver's result with Newton for at most
        ``VERIFY_MAX_ITER`` iterations: near a maximum that takes one or two steps (and
        polishes the last digits); elsewhere Newton's own tests name what was reached (a
        run-off, a boundary), so the verdict does not depend on the solver."""
        newton = solvers.run(
            solvers.newton(smooth, default_tol("newton", result.u.dtype)),
            total,
            result.u,
            VERIFY_MAX_ITER,
            ends,
            origin=u0,
        )
        status = jnp.where(result.status == Status.NONFINITE_START, result.status, newton.status)
        return solvers.SolverResult(newton.u, newton.f, result.n_iter + newton.n_iter, status)

    def solve(self, u0, fixed_leaves, data, max_iter=None, eager_start=False) -> RawFit:
        """One fit from ``u0``; ``max_iter`` (may be traced) overrides the problem's cap;
        ``eager_start``: the trust region takes the derivatives at the start before its loop
        (``solvers.trust_region``: faster batches of cheap fits, a larger program)."""
        space = self.space
        l1_weight, l1_centre = self.l1(u0.dtype)

        logpost = logpost_in(self)

        def smooth(u):
            return -logpost(u, fixed_leaves, data)

        def total(u):
            return smooth(u) + jnp.sum(l1_weight * jnp.abs(u - l1_centre))

        warm = None
        if random_effects.is_marginal(self.loglik):  # each inner solve starts at the last û
            logpost_warm = logpost_in(self, warm=True)

            def smooth_warm(u, start):
                value, u_hat = logpost_warm(u, start, fixed_leaves, data)
                return -value, u_hat

            warm = solvers.Warm(smooth_warm, jnp.zeros(self.loglik.random_effects.size, u0.dtype))

        ends = solvers.Ends(*space.finite_ends())
        result = solvers.run(
            self.strategy(smooth, total, l1_weight, l1_centre, u0.dtype, eager_start, warm),
            total,
            u0,
            self.default_max_iter() if max_iter is None else max_iter,
            ends,
        )
        if self.solver[0] != "newton":
            result = self.verify_with_newton(result, smooth, total, ends, u0)

        x_leaves = space.u_to_x_leaves(result.u)
        z = space.x_leaves_to_z(x_leaves)

        at_kink_z = (l1_weight > 0) & (result.u == l1_centre)
        if warm is not None and isinstance(result.state, solvers.TrustState):  # the solver's last derivatives
            g_u, H_u = solvers.derivatives_at_end(result.state)
            logpost_smooth, grad, hessian = _in_z(space, z, result.u, result.f, g_u, H_u)
            modes = jnp.where(result.state.fresh, result.state.start, jnp.nan)
        else:
            logpost_z = logpost_in(self, "z")
            logpost_smooth, grad, hessian = value_grad_hessian(lambda z: logpost_z(z, fixed_leaves, data), z)
            modes = None
        jacobian = None
        if not all(leaf.constraint.same_dimension for leaf in space.free):
            jacobian = jax.jacobian(lambda z: space.flat_x(space.z_to_x_leaves(z)))(z)
        grad = grad - l1_weight * jnp.sign(result.u - l1_centre)
        grad_norm = jnp.max(jnp.where(at_kink_z, 0.0, jnp.abs(grad)), initial=0.0)
        status = jnp.where(
            ~jnp.all(jnp.isfinite(grad)) & ~jnp.isin(result.status, jnp.asarray(SOLVER_FAILURES_KEPT)),
            Status.NONFINITE_GRADIENT,
            result.status,
        ).astype(jnp.int32)
        if self.has_prior:
            loglik = jnp.sum(self.loglik_terms(x_leaves, fixed_leaves, data))
            logpost = loglik + self.log_prior_value(x_leaves, fixed_leaves, smooth=False)
        else:
            # at a limit of the inference coordinates (a simplex at a vertex: z = -inf) the value
            # there is not finite; the solver's value at u is the same log-likelihood
            loglik = logpost = jnp.where(jnp.isfinite(logpost_smooth), logpost_smooth, -result.f)
        return RawFit(
            u=result.u,
            x=space.flat_x(x_leaves),
            loglik=loglik,
            logpost=logpost,
            n_iter=result.n_iter,
            status=status,
            grad_norm=grad_norm,
            grad_z=grad,
            information_z=-hessian,
            jacobian=jacobian,
            at_kink_z=at_kink_z,
            modes=modes,
        )


def _in_z(space: ParameterSpace, z, u, f, g_u, H_u):
    """(value, gradient, Hessian) of the smooth log-posterior in the inference coordinates
    ``z``, from the objective's (its negative's) value ``f``, gradient ``g_u`` and Hessian
    ``H_u`` in ``u`` at the same point, by the chain rule through u(z): the derivatives of
    the objective's second-order Taylor expansion composed with u(z) are exact at ``z``."""

    def taylor(c):
        d = space.x_leaves_to_u(space.z_to_x_leaves(c)) - u
        return -(f + jnp.dot(g_u, d) + 0.5 * jnp.dot(d, H_u @ d))

    _, grad, hessian = value_grad_hessian(taylor, z)
    return -f, grad, hessian


@functools.lru_cache(maxsize=256)
def logpost_in(problem: Problem, coordinates: str = "u", warm: bool = False):
    """The smooth log-posterior as a function of the unconstrained ``u`` or the inference
    coordinates ``z``, called as ``(c, fixed, data)``; with ``warm`` (a Laplace marginal)
    as ``(c, start, fixed, data)``, its inner solve started at ``start``, returning
    (value, û). Jitted so that a solve traces the user's log-likelihood once for all the
    places that evaluate or differentiate it."""
    to_x = problem.space.u_to_x_leaves if coordinates == "u" else problem.space.z_to_x_leaves
    if warm:
        return jax.jit(lambda c, start, fixed, data: problem.logpost_smooth_warm(to_x(c), fixed, data, start))
    return jax.jit(lambda c, fixed, data: problem.logpost_smooth(to_x(c), fixed, data))


@functools.lru_cache(maxsize=128)
def compiled_solve(problem: Problem, batched: bool = False, quick: bool = False) -> Callable[..., Any]:
    """The jitted ``solve``, or with ``batched`` the jitted ``batched_solve``.

    ``quick`` (CPU only) favours compile speed over run speed: right for a single fit to
    small data."""
    if batched:
        return jax.jit(batched_solve(problem), compiler_options=batch_options())
    return jax.jit(problem.solve, compiler_options=quick_options() if quick else None)


def batched_solve(problem: Problem) -> Callable[..., tuple[RawFit, Inference]]:
    """``solve`` vmapped over a leading replicate axis, called as ``(u0, fixed_leaves, data,
    max_iter)``, with every fit's observed inference computed in the same program; on the
    CPU with long sums blocked (``short_sums``; single fits, compiled for compile speed, are
    left alone: a fit to 10^5 observations took 23 ms with it against 13 ms)."""
    # a Laplace marginal's Hessian is costly to compile: keep it at one site of the program
    eager_start = not random_effects.is_marginal(problem.loglik)
    solve = jax.vmap(functools.partial(problem.solve, eager_start=eager_start), in_axes=(0, None, 0, None))

    def solve_and_infer(u0, fixed_leaves, data, max_iter):
        with unrolled():  # XLA fuses small factorizations across lanes
            raw = solve(u0, fixed_leaves, data, max_iter)._replace(modes=None)  # not kept per replicate
        return raw, observed_inference(raw.information_z, raw.jacobian, raw.at_kink_z, xp=jnp, grad_z=raw.grad_z)

    return short_sums_on_cpu(solve_and_infer)


@functools.lru_cache(maxsize=128)
def compiled_loglik(problem: Problem) -> Callable[..., Any]:
    """The jitted log-likelihood terms at given free leaves, for the checks at the start: of
    a Laplace marginal, the joint density's terms where its inner solve starts (u = 0),
    which is the user's function and costs no inner solve to compile."""
    if not random_effects.is_marginal(problem.loglik):
        return jax.jit(problem.loglik_terms, compiler_options=quick_options())
    marginal = problem.loglik

    def joint_terms(free_leaves, fixed_leaves, data):
        _precision.user_code_ran(marginal)
        u = jnp.zeros(marginal.random_effects.size, jnp.result_type(*free_leaves))
        return marginal.joint_terms(problem.params(free_leaves, fixed_leaves), u, data)

    return jax.jit(joint_terms, compiler_options=quick_options())


@functools.lru_cache(maxsize=128)
def compiled_loglik64(problem: Problem, batched: bool) -> Callable[..., Any]:
    """(log-likelihood, log-posterior) at the user's flat values ``x``, jitted; with
    ``batched``, vmapped over a leading replicate axis of ``x`` and ``data``. Called in
    float64, this is how a float32 fit's ``loglik`` is reported (see ``float64_loglik``)."""

    def values(x, fixed_leaves, data):
        leaves = problem.space.x_flat_to_leaves(x)
        loglik = jnp.sum(problem.loglik_terms(leaves, fixed_leaves, data))
        return loglik, loglik + problem.log_prior_value(leaves, fixed_leaves, smooth=False)

    return jax.jit(jax.vmap(values, in_axes=(0, None, 0)) if batched else values)
