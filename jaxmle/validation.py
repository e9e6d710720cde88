"""Checks of user input, run on the host before anything is compiled.

Every failure raises ``ValueError`` naming the argument and what is wrong.
"""

from __future__ import annotations

import math
import numbers

import jax
import numpy as np

from .constraints import Constraint
from .parameters import ParameterSpace


def as_mapping(argument: str, given) -> dict:
    """``given`` (None for empty) as a dict mapping parameter names to values."""
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise ValueError(f"{argument} must be a dict mapping parameter names to values, got {type(given).__name__}")
    return given


def check_names(argument: str, given: dict | None, keys: set[str]) -> dict:
    given = as_mapping(argument, given)
    unknown = sorted(set(given) - keys)
    if unknown:
        raise ValueError(f"{argument}: {unknown} are not parameters (parameters: {sorted(keys)})")
    return given


def check_constraints(constraints: dict) -> None:
    for name, c in constraints.items():
        if not isinstance(c, Constraint):
            raise ValueError(f"constraints[{name!r}] must be a jaxmle constraint such as jm.positive, got {c!r}")


def check_in_support(argument: str, leaf, value) -> None:
    """``value`` of ``leaf`` has the constraint's shape and lies strictly inside its support."""
    try:
        leaf.constraint.free_size(leaf.shape)  # a simplex or ordered parameter must be a vector
    except ValueError as err:
        raise ValueError(f"{argument}: {leaf.label!r}: {err}") from None
    why = leaf.constraint.violation(value)
    if why is not None:
        raise ValueError(f"{argument}: {leaf.label!r} {why} under its constraint {leaf.constraint!r} (value {value})")


def check_support(argument: str, space: ParameterSpace, values, batched: bool = False) -> None:
    """Every free parameter's value inside its constraint's support (ValueError naming
    ``argument`` otherwise). With ``batched`` every value carries a leading replicate axis;
    element-wise constraints check it whole, vector constraints replicate by replicate."""
    for leaf, value in zip(space.leaves, values, strict=True):
        if leaf.fixed:
            continue
        elementwise = leaf.constraint.same_dimension and leaf.constraint.name != "ordered"
        if batched and not elementwise:
            for i, row in enumerate(np.asarray(value)):
                check_in_support(f"{argument} (replicate {i})", leaf, row)
        else:
            check_in_support(argument, leaf, np.asarray(value))


def check_init(space: ParameterSpace, values: list[np.ndarray]) -> None:
    check_support("init", space, values)


def check_fixed(space: ParameterSpace, fixed: dict, values: list[np.ndarray]) -> list[np.ndarray]:
    """The fixed leaves' values, from ``fixed`` (checked for shape and support)."""
    out = []
    for leaf, init_value in zip(space.leaves, values):
        if not leaf.fixed:
            continue
        try:
            value = np.asarray(fixed[leaf.key], dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"fixed[{leaf.key!r}] must be a number or an array of numbers shaped like init") from None
        if value.shape != init_value.shape:
            raise ValueError(f"fixed[{leaf.key!r}] has shape {value.shape}, but init has {init_value.shape}")
        check_in_support(f"fixed[{leaf.key!r}]", leaf, value)
        out.append(value)
    return out


def check_priors(space: ParameterSpace, prior) -> tuple[tuple, object]:
    """Split ``prior`` into ((key, Prior), ...) and a callable log-prior (or None)."""
    from .priors import Prior

    if prior is None:
        return (), None
    if callable(prior) and not isinstance(prior, dict):
        return (), prior
    keys = {leaf.key for leaf in space.leaves}
    prior = check_names("prior", prior, keys)
    by_key = {leaf.key: leaf for leaf in space.leaves}
    for name, p in prior.items():
        if not isinstance(p, Prior):
            raise ValueError(f"prior[{name!r}] must be a prior from jm.priors, got {p!r}")
        leaf = by_key[name]
        if leaf.fixed:
            raise ValueError(f"prior[{name!r}]: {name!r} is fixed, so a prior on it has no effect")
        _check_prior_support(name, p, leaf.constraint)
    return tuple(sorted(prior.items())), None


def _check_prior_support(name: str, p, c: Constraint) -> None:
    from .priors import Laplace

    if p.on_simplex != (c.name == "simplex"):
        need = "jm.simplex" if p.on_simplex else "a constraint other than jm.simplex"
        raise ValueError(f"prior[{name!r}]: {type(p).__name__} needs {need}, but the parameter has {c!r}")
    if isinstance(p, Laplace) and c.name != "real":
        raise ValueError(
            f"prior[{name!r}]: a Laplace (L1) prior needs an unconstrained parameter (jm.real), but it has {c!r}"
        )
    if c.lower < p.lower or c.upper > p.upper:
        raise ValueError(
            f"prior[{name!r}]: {type(p).__name__} has support [{p.lower:g}, {p.upper:g}] but the parameter's "
            f"constraint {c!r} allows ({c.lower:g}, {c.upper:g}); constrain the parameter to the prior's support"
        )


def check_data(data, where: str = "data") -> None:
    """NaN or inf anywhere in a floating leaf of ``data`` is an error."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(data)[0]:
        arr = np.asarray(leaf)
        if arr.dtype.kind not in "biufc":
            raise ValueError(f"{where + jax.tree_util.keystr(path)} must hold numbers, got dtype {arr.dtype}")
        if np.issubdtype(arr.dtype, np.floating) or np.iscomplexobj(arr):
            bad = ~np.isfinite(arr)
            if bad.any():
                label = where + jax.tree_util.keystr(path)
                raise ValueError(f"{label} contains {int(bad.sum())} NaN or infinite value(s)")


def check_positive_int(argument: str, value, allow_none: bool = True, minimum: int = 1):
    """``value`` as an int >= ``minimum`` (None passes through when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{argument} must be {what}, got {value!r}")
    return int(value)


def positive_number(name: str, value) -> float:
    """``value`` as a float, finite and > 0."""
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def finite_number(name: str, value) -> float:
    """``value`` as a finite float."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_tol(value):
    if value is None:
        return None
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0):
        raise ValueError(f"tol must be a finite number > 0, got {value!r}")
    return float(value)
