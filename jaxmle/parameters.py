"""The map between the user's parameter pytree and the solver's flat vectors.

Three flat vectors describe the free (not fixed) parameters:

- ``u``: unconstrained coordinates, what the solver moves (size m);
- ``z``: inference coordinates (size m): the user's own values for every constraint that
  keeps the dimension, the free log-ratios for a simplex;
- ``x``: the user's values (size k >= m), in JAX's flattening order, labelled by ``names``.

A leaf may hold some of its elements at given values (``fit(fixed={"beta": {2: 0.0}})``):
its free elements alone enter the flat vectors, and ``Leaf.free_part`` / ``Leaf.full`` are
the one map between the whole leaf and them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace

import jax
import jax.numpy as jnp
import numpy as np

from .constraints import Constraint, real


@dataclass(frozen=True)
class Leaf:
    """One array of the parameter pytree."""

    key: str  # the top-level name used by constraints, prior and fixed
    label: str  # e.g. "beta" or "['a']['b']"
    shape: tuple[int, ...]
    constraint: Constraint
    fixed: bool
    #: names of a vector's elements (``fit(labels=...)``, or a pandas Series' index); they
    #: only name things, so they are left out of equality and hashing (compiled code is shared)
    labels: tuple[str, ...] | None = field(default=None, compare=False)
    #: (flat index, value) of each element held fixed (``validation.check_fixed``), by index;
    #: the values are part of the key of compiled code
    held: tuple[tuple[int, float], ...] = ()

    @property
    def size(self) -> int:
        """Number of the leaf's elements in the flat user vector x: all but the held ones."""
        return int(np.prod(self.shape, dtype=int)) - len(self.held)

    @property
    def free_shape(self) -> tuple[int, ...]:
        """The shape the constraint maps: the leaf's, or the vector of its free elements."""
        return (self.size,) if self.held else self.shape

    @property
    def free_size(self) -> int:
        return self.constraint.free_size(self.free_shape)

    def _free_index(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.size + len(self.held)), [i for i, _ in self.held])

    def free_part(self, value):
        """The free elements of ``value`` (shaped like the leaf after any leading axes) as
        its last axis, in flat (C) order."""
        flat = value.reshape(value.shape[: value.ndim - len(self.shape)] + (-1,))
        return flat[..., self._free_index()] if self.held else flat

    def full(self, x, fill: float | None = None):
        """The leaf from its free elements ``x`` (the last axis, after any leading axes), the
        held elements set to their values, or to ``fill`` where given (e.g. 0 for an SE)."""
        lead = x.shape[:-1]
        if not self.held:
            return x.reshape(lead + self.shape)
        xp = np if isinstance(x, np.ndarray) else jnp
        values = [v if fill is None else fill for _, v in self.held]
        held = xp.broadcast_to(xp.asarray(values, x.dtype), lead + (len(values),))
        # the elements in flat order are a permutation of [free..., held...]
        order = np.argsort(np.concatenate([self._free_index(), [i for i, _ in self.held]]))
        return xp.concatenate([x, held], axis=-1)[..., order].reshape(lead + self.shape)

    def element_names(self) -> list[str]:
        """``label`` for a scalar, ``label[i,j]`` for an array's elements, ``label[name]``
        for the elements of a labelled vector; the free elements only (held ones keep
        their indices out of the list)."""
        if self.shape == ():
            return [self.label]
        if self.labels is not None:
            names = [f"{self.label}[{name}]" for name in self.labels]
        else:
            names = [self.label + "[" + ",".join(map(str, idx)) + "]" for idx in np.ndindex(*self.shape)]
        return [names[i] for i in self._free_index()] if self.held else names


@dataclass(frozen=True)
class ParameterSpace:
    """Static description of the parameters: hashable, so it keys compiled code."""

    treedef: jax.tree_util.PyTreeDef
    leaves: tuple[Leaf, ...]

    @property
    def free(self) -> tuple[Leaf, ...]:
        return tuple(leaf for leaf in self.leaves if not leaf.fixed)

    @property
    def names(self) -> list[str]:
        return [n for leaf in self.free for n in leaf.element_names()]

    @property
    def labels(self) -> dict[str, tuple[str, ...]]:
        """The element labels in use, by parameter name (the form of ``fit(labels=...)``)."""
        return {leaf.key: leaf.labels for leaf in self.leaves if leaf.labels is not None}

    @property
    def m(self) -> int:
        """Number of free unconstrained coordinates (the degrees of freedom)."""
        return sum(leaf.free_size for leaf in self.free)

    @property
    def k(self) -> int:
        """Number of free elements in the user's parameterization."""
        return sum(leaf.size for leaf in self.free)

    def with_held(self, held: dict[str, tuple[tuple[int, float], ...]]) -> ParameterSpace:
        """The same space with the elements in ``held`` (by parameter name, from
        ``validation.check_fixed``) held fixed, the rest of those leaves free."""
        leaves = tuple(
            replace(leaf, fixed=False, held=held[leaf.key]) if leaf.key in held else leaf for leaf in self.leaves
        )
        return ParameterSpace(self.treedef, leaves)

    def with_labels(self, labels: dict[str, tuple[str, ...]]) -> ParameterSpace:
        """The same space with the elements of the vectors keyed in ``labels`` named by them
        (checked by ``validation.check_labels``)."""
        leaves = tuple(replace(leaf, labels=labels[leaf.key]) if leaf.key in labels else leaf for leaf in self.leaves)
        return ParameterSpace(self.treedef, leaves)

    def finite_ends(self) -> tuple[np.ndarray, np.ndarray]:
        """Per unconstrained coordinate u: whether u -> -inf / u -> +inf reaches a finite
        limit of its constraint (see ``Constraint.finite_ends``)."""
        lower, upper = zip(*[leaf.constraint.finite_ends(leaf.free_shape) for leaf in self.free])
        return np.concatenate(lower), np.concatenate(upper)

    def coordinate_names(self) -> list[str]:
        """A label per unconstrained (and inference) coordinate: the element's name where
        the constraint keeps the dimension, else the leaf's label with the coordinate's
        index (a simplex's log-ratios)."""
        names = []
        for leaf in self.free:
            if leaf.constraint.same_dimension:
                names += leaf.element_names()
            else:
                names += [f"{leaf.label}[{i}]" for i in range(leaf.free_size)]
        return names

    # --- splitting flat vectors into per-leaf pieces -------------------------------
    def _split(self, vec, sizes):
        """Consecutive pieces of the last axis of ``vec``."""
        out, start = [], 0
        for size in sizes:
            out.append(vec[..., start : start + size])
            start += size
        return out

    def _shape_u(self, leaf, piece):
        return piece if not leaf.constraint.same_dimension else piece.reshape(leaf.free_shape)

    def u_to_x_leaves(self, u):
        """Free leaves in user space, from the unconstrained vector."""
        pieces = self._split(u, [leaf.free_size for leaf in self.free])
        return [leaf.full(leaf.constraint.forward(p)) for leaf, p in zip(self.free, pieces)]

    def log_abs_det_jacobian(self, u):
        """log |det dx/du| of ``u_to_x_leaves`` (for a simplex, of its free probabilities)."""
        pieces = self._split(u, [leaf.free_size for leaf in self.free])
        return sum(leaf.constraint.log_abs_det_jacobian(self._shape_u(leaf, p)) for leaf, p in zip(self.free, pieces))

    def z_to_x_leaves(self, z):
        pieces = self._split(z, [leaf.free_size for leaf in self.free])
        return [
            leaf.full(p if leaf.constraint.same_dimension else leaf.constraint.forward(p))
            for leaf, p in zip(self.free, pieces)
        ]

    def x_leaves_to_u(self, x_leaves):
        return _concat([leaf.constraint.inverse(leaf.free_part(x)).reshape(-1) for leaf, x in zip(self.free, x_leaves)])

    def x_leaves_to_z(self, x_leaves):
        return _concat(
            [
                leaf.free_part(x) if leaf.constraint.same_dimension else leaf.constraint.inverse(leaf.free_part(x))
                for leaf, x in zip(self.free, x_leaves)
            ]
        )

    def flat_x(self, x_leaves):
        return _concat([leaf.free_part(x) for leaf, x in zip(self.free, x_leaves)])

    def x_flat_to_leaves(self, x, fill: float | None = None):
        """Free leaves from flat user values ``x`` (the last axis, after any leading axes);
        held elements get their values, or ``fill`` (see ``Leaf.full``)."""
        pieces = self._split(x, [leaf.size for leaf in self.free])
        return [leaf.full(p, fill) for leaf, p in zip(self.free, pieces)]

    def assemble(self, free_leaves, fixed_leaves):
        """The user's pytree from free and fixed leaves (each in leaf order)."""
        free_it, fixed_it = iter(free_leaves), iter(fixed_leaves)
        leaves = [next(fixed_it) if leaf.fixed else next(free_it) for leaf in self.leaves]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


def _concat(pieces):
    return jnp.concatenate(pieces) if pieces else jnp.zeros((0,))


def _top_key(path) -> str:
    first = path[0]
    for attr in ("key", "name", "idx"):
        if hasattr(first, attr):
            return str(getattr(first, attr))
    return str(first)


def _label(path) -> str:
    if len(path) == 1:
        return _top_key(path)
    return _top_key(path) + jax.tree_util.keystr(path[1:])


def build_space(init, constraints: dict, fixed: dict):
    """Flatten ``init`` and attach constraints; returns the space and the init leaves.

    Names in ``constraints`` and ``fixed`` refer to top-level keys of ``init`` (its dict
    keys, or field names / positions of other containers).
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(init)
    if not flat:
        raise ValueError("init: the parameter pytree has no leaves")
    leaves, values = [], []
    for path, value in flat:
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"init: parameter {_label(path)!r} must be real numbers, got dtype {arr.dtype}")
        key = _top_key(path) if path else "params"
        leaves.append(
            Leaf(
                key=key,
                label=_label(path) if path else "params",
                shape=tuple(arr.shape),
                # (element by element constraints, given as dicts: validation.with_element_constraints)
                constraint=c if isinstance(c := constraints.get(key, real), Constraint) else real,
                fixed=key in fixed,
                labels=series_labels(value),
            )
        )
        values.append(arr.astype(float))
    return ParameterSpace(treedef, tuple(leaves)), values


def series_labels(value) -> tuple[str, ...] | None:
    """The index of a pandas Series given as a vector's starting values, as element labels,
    where it is unambiguous: distinct, non-empty strings (a default integer index gives none)."""
    pandas = sys.modules.get("pandas")  # a Series can exist only once pandas is imported
    if pandas is None or not isinstance(value, pandas.Series):
        return None
    index = list(value.index)
    if not all(isinstance(name, str) and name for name in index) or len(set(index)) != len(index):
        return None
    return tuple(index)
