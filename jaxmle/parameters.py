"""The map between the user's parameter pytree and the solver's flat vectors.

Three flat vectors describe the free (not fixed) parameters:

- ``u``: unconstrained coordinates, what the solver moves (size m);
- ``z``: inference coordinates (size m): the user's own values for every constraint that
  keeps the dimension, the free log-ratios for a simplex;
- ``x``: the user's values (size k >= m), in JAX's flattening order, labelled by ``names``.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=int))

    @property
    def free_size(self) -> int:
        return self.constraint.free_size(self.shape)

    def element_names(self) -> list[str]:
        if self.shape == ():
            return [self.label]
        return [self.label + "[" + ",".join(map(str, idx)) + "]" for idx in np.ndindex(*self.shape)]


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
    def m(self) -> int:
        """Number of free unconstrained coordinates (the degrees of freedom)."""
        return sum(leaf.free_size for leaf in self.free)

    @property
    def k(self) -> int:
        """Number of free elements in the user's parameterization."""
        return sum(leaf.size for leaf in self.free)

    def finite_ends(self) -> tuple[np.ndarray, np.ndarray]:
        """Per unconstrained coordinate u: whether u -> -inf / u -> +inf reaches a finite
        limit of its constraint (see ``Constraint.finite_ends``)."""
        lower, upper = zip(*[leaf.constraint.finite_ends(leaf.shape) for leaf in self.free])
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
        out, start = [], 0
        for size in sizes:
            out.append(vec[start : start + size])
            start += size
        return out

    def _shape_u(self, leaf, piece):
        return piece if not leaf.constraint.same_dimension else piece.reshape(leaf.shape)

    def u_to_x_leaves(self, u):
        """Free leaves in user space, from the unconstrained vector."""
        pieces = self._split(u, [leaf.free_size for leaf in self.free])
        return [leaf.constraint.forward(self._shape_u(leaf, p)) for leaf, p in zip(self.free, pieces)]

    def z_to_x_leaves(self, z):
        pieces = self._split(z, [leaf.free_size for leaf in self.free])
        return [
            p.reshape(leaf.shape) if leaf.constraint.same_dimension else leaf.constraint.forward(p)
            for leaf, p in zip(self.free, pieces)
        ]

    def x_leaves_to_u(self, x_leaves):
        return _concat([leaf.constraint.inverse(x).reshape(-1) for leaf, x in zip(self.free, x_leaves)])

    def x_leaves_to_z(self, x_leaves):
        return _concat(
            [
                x.reshape(-1) if leaf.constraint.same_dimension else leaf.constraint.inverse(x)
                for leaf, x in zip(self.free, x_leaves)
            ]
        )

    def flat_x(self, x_leaves):
        return _concat([x.reshape(-1) for x in x_leaves])

    def x_flat_to_leaves(self, x):
        pieces = self._split(x, [leaf.size for leaf in self.free])
        return [p.reshape(leaf.shape) for leaf, p in zip(self.free, pieces)]

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
                constraint=constraints.get(key, real),
                fixed=key in fixed,
            )
        )
        values.append(arr.astype(float))
    return ParameterSpace(treedef, tuple(leaves)), values
