"""Laplace approximation of the posterior: a Gaussian on the unconstrained scale.

With u the unconstrained coordinates and x = x(u) the user's parameters, the posterior
density of u is p(u | y) ∝ exp(ℓ(x(u)) + log π(x(u))) |det ∂x/∂u|. Its Laplace
approximation is N(û, H⁻¹): û the mode of that density (found by the "auto" method's
solver, started at the MAP estimate) and H = −∇² log p(u | y) at û. Draws of u mapped through x(u) respect
every constraint. For unconstrained parameters with a Normal likelihood of known variance
and a Normal prior the posterior is Gaussian and the approximation is exact. Without a
prior, π is flat in the user's parameterization.

The Jacobian term moves the mode: for a constrained parameter ``mode`` (x at û) differs
from the MAP estimate, which maximizes the posterior density of x itself.

In the user's parameterization the approximation is the law of x(u), u ~ N(û, H⁻¹). Its
``mean`` and ``cov`` are the linearized (delta-method) moments x(û) and J H⁻¹ Jᵀ with
J = ∂x/∂u at û: exact for unconstrained parameters, first-order otherwise (the moments of
draws from ``sample`` converge to the exact ones).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _precision
from .constraints import Constraint
from .inference import observed_inference
from .parameters import ParameterSpace, build_space
from .problem import Problem, compiled_solve, resolve_method
from .status import Status
from .validation import check_positive_int

__all__ = ["LaplaceApproximation", "laplace", "log_abs_det_jacobian"]


def log_abs_det_jacobian(space: ParameterSpace, u):
    """log |det ∂x/∂u| summed over the free leaves (a simplex counts its first k−1 entries)."""
    total = 0.0
    start = 0
    for leaf in space.free:
        piece = u[start : start + leaf.free_size]
        start += leaf.free_size
        c = leaf.constraint
        if type(c) is Constraint:  # element-wise
            if c.lower == -np.inf and c.upper == np.inf:
                continue
            total = total + jnp.sum(jnp.log(jnp.abs(jax.vmap(jax.grad(c.forward))(piece))))
        else:
            size = leaf.free_size
            jac = jax.jacfwd(lambda p, c=c, size=size: c.forward(p)[:size])(piece)
            total = total + jnp.linalg.slogdet(jac)[1]
    return total


@dataclass(frozen=True)
class _PosteriorOfU:
    """log p(u | y) up to a constant, as a log-likelihood of ``params["u"]`` (hashable)."""

    problem: Problem

    def __call__(self, params, data):
        space = self.problem.space
        u = params["u"]
        return self.problem.logpost_smooth(space.u_to_x_leaves(u), data["fixed"], data["data"]) + (
            log_abs_det_jacobian(space, u)
        )


@functools.lru_cache(maxsize=64)
def _posterior_problem(problem: Problem) -> Problem:
    m = problem.space.m
    space, _ = build_space({"u": np.zeros(m)}, {}, {})
    return Problem(_PosteriorOfU(problem), space, (), None, resolve_method("auto", m, False)[1], None, None)


@dataclass
class LaplaceApproximation:
    """The Laplace approximation: u ~ N(``loc_u``, ``cov_u``) on the solver's unconstrained
    coordinates u (size m, free leaves in order; a k-simplex has k−1 of them), pushed
    through x(u) into the user's parameterization.

    ``mode`` is x(``loc_u``), a pytree like ``params``. ``mean`` (the same pytree) and
    ``cov`` (k×k over ``names``, like ``FitResult.cov``) are the linearized moments in the
    user's parameterization: mean = x(``loc_u``) and cov = J ``cov_u`` Jᵀ, J = ∂x/∂u there;
    exact where x(u) is affine (unconstrained parameters), first-order otherwise.
    ``sample(key, n)`` draws x(u) exactly."""

    loc_u: np.ndarray
    cov_u: np.ndarray
    mode: Any
    cov: np.ndarray
    names: list[str]
    _space: ParameterSpace = field(repr=False)
    _fixed_leaves: list = field(repr=False)
    _dtype: Any = field(repr=False)

    @property
    def mean(self):
        """The linearized mean x(``loc_u``), equal to ``mode`` (see the class)."""
        return self.mode

    def sample(self, key, n: int):
        """``n`` draws of the parameters as a pytree like ``params`` with a leading axis n."""
        n = check_positive_int("n", n, allow_none=False)
        try:
            key = jnp.asarray(key)
        except TypeError as err:
            raise ValueError(f"key must be a jax.random key, got {type(key).__name__}") from err
        with _precision.context(self._dtype):
            chol = jnp.linalg.cholesky(jnp.asarray(self.cov_u, self._dtype))
            z = jax.random.normal(key, (n, len(self.loc_u)), self._dtype)
            u = jnp.asarray(self.loc_u, self._dtype) + z @ chol.T
            free = jax.vmap(self._space.u_to_x_leaves)(u)
        fixed = [np.broadcast_to(np.asarray(v), (n,) + np.shape(v)) for v in self._fixed_leaves]
        return self._space.assemble([np.asarray(v) for v in free], fixed)

    def sample_flat(self, key, n: int) -> np.ndarray:
        """Draws of the free parameters as an (n, k) array in the order of ``names``."""
        n = check_positive_int("n", n, allow_none=False)
        draws = self.sample(key, n)
        flat = [
            leaf.free_part(np.asarray(v))
            for v, leaf in zip(jax.tree_util.tree_leaves(draws), self._space.leaves, strict=False)
            if not leaf.fixed
        ]
        return np.concatenate(flat, axis=1)

    def plot(self, key=None, n: int = 4000, axes=None):
        """Histograms of draws of each parameter with the approximate marginal density."""
        from .plotting import plot_laplace

        return plot_laplace(self, key=key, n=n, axes=axes)


def laplace(res) -> LaplaceApproximation:
    """The Laplace approximation of the posterior of the fit ``res`` (see the module)."""
    prep = res._prep
    if prep is None:
        raise ValueError("this FitResult carries no problem (it was not made by jm.fit)")
    if prep.problem.has_l1:
        raise ValueError(
            "laplace: a Laplace (L1) prior has a kink at its centre, where no Gaussian approximation is defined"
        )
    problem = _posterior_problem(prep.problem)
    with _precision.context(prep.dtype):
        data = {"data": prep.data, "fixed": prep.fixed_leaves}
        raw = compiled_solve(problem)(jnp.asarray(res._u, prep.dtype), [], data)
        raw = jax.tree_util.tree_map(np.asarray, raw)
    if int(raw.status) != Status.CONVERGED:
        raise ValueError(f"laplace: the mode of the posterior of u was not found: {Status(int(raw.status)).message}")
    inf = observed_inference(raw.information_z, None, np.zeros(len(raw.u), bool))
    if not bool(inf.positive_definite):
        raise ValueError(
            "laplace: the posterior's curvature at its mode is not positive definite, so there is no "
            "Gaussian approximation"
        )
    space = prep.problem.space
    fixed = [np.asarray(v) for v in prep.fixed_leaves]
    loc_u, cov_u = np.asarray(raw.u), np.asarray(inf.cov)
    with _precision.context(prep.dtype):
        u = jnp.asarray(loc_u)
        mode = space.assemble([np.asarray(v) for v in space.u_to_x_leaves(u)], fixed)
        jac = np.asarray(jax.jacfwd(lambda v: space.flat_x(space.u_to_x_leaves(v)))(u), dtype=np.float64)
    cov = jac @ cov_u @ jac.T
    return LaplaceApproximation(loc_u, cov_u, mode, cov, space.names, space, fixed, prep.dtype)
