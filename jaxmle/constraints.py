"""Constraints: bijectors between a parameter's support and unconstrained space.

Each constraint maps an unconstrained vector ``u`` (what the optimizer moves) to the
user's value ``x`` (what the log-likelihood sees) with ``forward``, and back with
``inverse``. Element-wise constraints keep the dimension; ``simplex`` maps k-1 free
coordinates to k probabilities (additive log-ratio with the last as reference).

Inference (observed information, covariance) is computed in the user's own coordinates
for every constraint that keeps the dimension, so an SE of ``sigma`` is on the scale of
``sigma``; for the simplex it is computed on the k-1 free coordinates and mapped to the k
probabilities by the Jacobian (a rank k-1 covariance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Constraint",
    "real",
    "positive",
    "unit_interval",
    "interval",
    "greater_than",
    "less_than",
    "simplex",
    "ordered",
]


@dataclass(frozen=True)
class Constraint:
    """A support and its bijector. ``lower``/``upper`` bound every element."""

    name: str
    lower: float = -math.inf
    upper: float = math.inf

    #: whether the unconstrained vector has the same size as the value
    same_dimension: bool = True
    #: whether every element is a coordinate of its own (False for simplex and ordered)
    elementwise = True

    def element(self, index: int) -> Constraint:
        """The constraint of element ``index`` (flat) of a parameter under this constraint."""
        return self

    def free_size(self, shape: tuple[int, ...]) -> int:
        """Number of unconstrained coordinates for a value of ``shape``."""
        return int(np.prod(shape, dtype=int))

    def forward(self, u):
        """Unconstrained ``u`` (same shape as the value) to the constrained value."""
        lo, hi = self.lower, self.upper
        if math.isinf(lo) and math.isinf(hi):
            return u
        if math.isinf(hi):
            return lo + jnp.exp(u)
        if math.isinf(lo):
            return hi - jnp.exp(u)
        return lo + (hi - lo) * jax.nn.sigmoid(u)

    def inverse(self, x):
        """Constrained value ``x`` to unconstrained coordinates (same shape)."""
        lo, hi = self.lower, self.upper
        if math.isinf(lo) and math.isinf(hi):
            return x
        if math.isinf(hi):
            return jnp.log(x - lo)
        if math.isinf(lo):
            return jnp.log(hi - x)
        t = (x - lo) / (hi - lo)
        return jnp.log(t) - jnp.log1p(-t)

    def log_abs_det_jacobian(self, u):
        """log |det dx/du| of ``forward`` at ``u``: the term that makes a density in x a
        density in u (sampling on the unconstrained scale needs it; a MAP does not)."""
        lo, hi = self.lower, self.upper
        if math.isinf(lo) and math.isinf(hi):
            return jnp.zeros((), u.dtype)
        if math.isinf(lo) or math.isinf(hi):
            return jnp.sum(u)
        return jnp.sum(math.log(hi - lo) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u))

    def finite_ends(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Per unconstrained coordinate: whether u -> -inf, and whether u -> +inf, takes
        the value to a finite limit (a boundary of the support)."""
        size = self.free_size(shape)
        bounded = not (math.isinf(self.lower) and math.isinf(self.upper))
        both = math.isfinite(self.lower) and math.isfinite(self.upper)
        return np.full(size, bounded), np.full(size, both)

    def violation(self, x: np.ndarray, closed: bool = False) -> str | None:
        """Why ``x`` is not strictly inside the support (with ``closed``: not inside its
        closure, limits allowed), or None when it is."""
        if not np.all(np.isfinite(x)):
            return "is not finite"
        below = x < self.lower if closed else x <= self.lower
        above = x > self.upper if closed else x >= self.upper
        if np.any(below) and not math.isinf(self.lower):
            return f"must be {'>=' if closed else '>'} {self.lower:g}"
        if np.any(above) and not math.isinf(self.upper):
            return f"must be {'<=' if closed else '<'} {self.upper:g}"
        return None

    def limit_side(self, x: np.ndarray) -> np.ndarray:
        """Per element of ``x``: -1 where it equals the finite lower limit, +1 where it
        equals the finite upper limit, 0 elsewhere (the inequality constraints active at x)."""
        x = np.asarray(x, dtype=float)
        at_lower = math.isfinite(self.lower) & (x == self.lower)
        at_upper = math.isfinite(self.upper) & (x == self.upper)
        return at_upper.astype(int) - at_lower.astype(int)

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, repr=False)
class _PerElement(Constraint):
    """Element-wise constraints that differ between the elements of one array
    (``fit(constraints={"beta": {1: jm.positive}})``): ``parts`` holds (flat index,
    constraint) for each constrained element of an array of ``shape``; the others are real.
    Values may carry leading axes (replicates) or come flattened."""

    shape: tuple[int, ...] = ()
    parts: tuple[tuple[int, Constraint], ...] = ()

    def element(self, index):
        return dict(self.parts).get(index, real)

    def _groups(self):
        """(constraint, flat indices) for each distinct constraint among the parts."""
        by = {}
        for i, c in self.parts:
            by.setdefault(c, []).append(i)
        return [(c, np.asarray(index)) for c, index in by.items()]

    def _flat(self, v):
        return v.reshape(v.shape[: max(0, v.ndim - len(self.shape))] + (-1,))

    def _map(self, v, method: str):
        flat = self._flat(v)
        for c, index in self._groups():
            flat = flat.at[..., index].set(getattr(c, method)(flat[..., index]))
        return flat.reshape(v.shape)

    def forward(self, u):
        return self._map(jnp.asarray(u), "forward")

    def inverse(self, x):
        return self._map(jnp.asarray(x), "inverse")

    def log_abs_det_jacobian(self, u):
        flat = self._flat(u)
        return sum((c.log_abs_det_jacobian(flat[index]) for c, index in self._groups()), jnp.zeros((), u.dtype))

    def finite_ends(self, shape):
        lower, upper = np.zeros(self.free_size(shape), bool), np.zeros(self.free_size(shape), bool)
        for c, index in self._groups():
            lower[index], upper[index] = c.finite_ends((len(index),))
        return lower, upper

    def violation(self, x, closed=False):
        flat = self._flat(np.asarray(x))
        if not np.all(np.isfinite(flat)):
            return "is not finite"
        for i, c in self.parts:
            why = c.violation(flat[..., i], closed)
            if why is not None:
                return f"element {_position(self.shape, i)} {why}"
        return None

    def limit_side(self, x):
        flat = np.asarray(x, dtype=float).reshape(-1)
        return np.asarray([int(self.element(i).limit_side(v)) for i, v in enumerate(flat)])


def _position(shape: tuple[int, ...], i: int):
    """Flat index ``i`` of an array of ``shape`` as the index a user writes: an int for a
    vector, a tuple for an array."""
    position = np.unravel_index(i, shape)
    return int(position[0]) if len(shape) == 1 else tuple(int(p) for p in position)


def per_element(shape: tuple[int, ...], parts: dict[int, Constraint]) -> Constraint:
    """The constraint of an array of ``shape`` whose elements (flat index -> element-wise
    constraint in ``parts``) are constrained separately, the others real."""
    parts = tuple(sorted((i, c) for i, c in parts.items() if c != real))
    if not parts:
        return real
    text = ", ".join(f"{_position(shape, i)}: {c!r}" for i, c in parts)
    return _PerElement(f"elements({text})", shape=shape, parts=parts)


@dataclass(frozen=True, repr=False)
class _Simplex(Constraint):
    """Probability vectors: k positive entries summing to one."""

    elementwise = False

    def free_size(self, shape):
        _check_vector(shape, "simplex")
        return shape[0] - 1

    def forward(self, u):
        return jax.nn.softmax(jnp.concatenate([u, jnp.zeros((1,), u.dtype)]))

    def inverse(self, x):
        logx = jnp.log(x)
        return logx[:-1] - logx[-1]

    def log_abs_det_jacobian(self, u):
        """Of the k-1 free probabilities: det(diag(p) - p pᵀ) = p_1 ⋯ p_k."""
        return jnp.sum(jax.nn.log_softmax(jnp.concatenate([u, jnp.zeros((1,), u.dtype)])))

    def finite_ends(self, shape):
        size = self.free_size(shape)  # a log-ratio at either end sends a probability to 0 or 1
        return np.ones(size, bool), np.ones(size, bool)

    def violation(self, x, closed=False):
        x = np.asarray(x)
        if x.ndim != 1 or x.shape[0] < 2:
            return "must be a vector of at least 2 probabilities"
        if not np.all(np.isfinite(x)) or np.any(x < 0 if closed else x <= 0):
            return f"must have every entry {'>=' if closed else '>'} 0"
        if abs(x.sum() - 1.0) > 1e-6:
            return f"must sum to 1 (sums to {x.sum():.6g})"
        return None

    def limit_side(self, x):
        """-1 for each zero probability; a probability of one is implied by the others at 0."""
        return -(np.asarray(x, dtype=float) == 0.0).astype(int)


@dataclass(frozen=True, repr=False)
class _Ordered(Constraint):
    """Strictly increasing vectors: x[0] free, then positive increments."""

    elementwise = False

    def free_size(self, shape):
        _check_vector(shape, "ordered")
        return shape[0]

    def forward(self, u):
        return jnp.cumsum(jnp.concatenate([u[:1], jnp.exp(u[1:])]))

    def inverse(self, x):
        return jnp.concatenate([x[:1], jnp.log(jnp.diff(x))])

    def log_abs_det_jacobian(self, u):
        """Triangular: the increments' derivatives exp(u[1:])."""
        return jnp.sum(u[1:])

    def finite_ends(self, shape):
        lower = np.ones(self.free_size(shape), bool)  # log-increments -> -inf: ties
        lower[:1] = False
        return lower, np.zeros_like(lower)

    def violation(self, x, closed=False):
        x = np.asarray(x)
        if x.ndim != 1:
            return "must be a vector"
        if not np.all(np.isfinite(x)):
            return "is not finite"
        if np.any(np.diff(x) < 0 if closed else np.diff(x) <= 0):
            return "must be increasing" if closed else "must be strictly increasing"
        return None


def _check_vector(shape, what):
    if len(shape) != 1:
        raise ValueError(f"a {what} constraint needs a 1-D parameter, got shape {shape}")


real = Constraint("real")
positive = Constraint("positive", lower=0.0)
unit_interval = Constraint("unit_interval", lower=0.0, upper=1.0)
simplex = _Simplex("simplex", lower=0.0, upper=1.0, same_dimension=False)
ordered = _Ordered("ordered")


def interval(lo: float, hi: float) -> Constraint:
    """The open interval (lo, hi), through a scaled logistic sigmoid."""
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"interval(lo, hi) needs finite lo < hi, got ({lo}, {hi})")
    return Constraint(f"interval({lo:g}, {hi:g})", lower=lo, upper=hi)


def greater_than(lo: float) -> Constraint:
    """(lo, inf), through lo + exp(u)."""
    lo = float(lo)
    if not math.isfinite(lo):
        raise ValueError(f"greater_than(lo) needs a finite lo, got {lo}")
    return Constraint(f"greater_than({lo:g})", lower=lo)


def less_than(hi: float) -> Constraint:
    """(-inf, hi), through hi - exp(u)."""
    hi = float(hi)
    if not math.isfinite(hi):
        raise ValueError(f"less_than(hi) needs a finite hi, got {hi}")
    return Constraint(f"less_than({hi:g})", upper=hi)
