"""Checks of user input, run on the host before anything is compiled.

Every failure raises ``ValueError`` naming the argument and what is wrong.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .constraints import Constraint, per_element
from .parameters import ParameterSpace
from .parameters import _label as leaf_label


def as_mapping(argument: str, given) -> dict:
    """``given`` (None for empty) as a dict mapping parameter names to values."""
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise ValueError(f"{argument} must be a dict mapping parameter names to values, got {type(given).__name__}")
    return given


def check_names(argument: str, given: dict | None, keys: set[str]) -> dict:
    given = as_mapping(argument, given)
    for name in given:
        if not isinstance(name, str) and str(name) in keys:
            raise ValueError(
                f"{argument}: parameters are named by strings (the positions of a tuple or list init are "
                f"'0', '1', ...), got the key {name!r}: use {str(name)!r}"
            )
    unknown = sorted(set(given) - keys, key=str)
    if unknown:
        raise ValueError(f"{argument}: {unknown} are not parameters (parameters: {sorted(keys)})")
    return given


def check_constraints(constraints: dict) -> None:
    """Each value a jaxmle constraint, or a dict of element index -> element-wise constraint."""
    for name, c in constraints.items():
        if isinstance(c, dict):
            for index, part in c.items():
                if type(part) is not Constraint:  # element-wise: not simplex, ordered or per-element
                    raise ValueError(
                        f"constraints[{name!r}][{index!r}] must be an element-wise jaxmle constraint such as "
                        f"jm.positive (not simplex or ordered), got {part!r}"
                    )
        elif not isinstance(c, Constraint):
            raise ValueError(
                f"constraints[{name!r}] must be a jaxmle constraint such as jm.positive, or a dict of element "
                f"index -> constraint, got {c!r}"
            )


def with_element_constraints(space: ParameterSpace, constraints: dict) -> ParameterSpace:
    """``space`` with the per-element constraints of ``constraints`` (``{"beta": {1:
    jm.positive}}``) attached to their arrays; ValueError naming a bad index."""
    leaves = list(space.leaves)
    for key, given in constraints.items():
        if not isinstance(given, dict):
            continue
        where = f"constraints[{key!r}]"
        mine = [j for j, leaf in enumerate(leaves) if leaf.key == key]
        leaf = _array_leaf(where, key, [leaves[j] for j in mine])
        parts = {}
        for index, c in given.items():
            parts[_flat_position(where, leaf.shape, index, parts)] = c
        leaves[mine[0]] = dataclasses.replace(leaf, constraint=per_element(leaf.shape, parts))
    return ParameterSpace(space.treedef, tuple(leaves))


def check_in_support(argument: str, leaf, value, closed: bool = False) -> None:
    """``value`` of ``leaf`` has the constraint's shape and lies strictly inside its support
    (with ``closed``: inside its closure, e.g. a variance fixed at 0 for a boundary test)."""
    try:
        leaf.constraint.free_size(leaf.shape)  # a simplex or ordered parameter must be a vector
    except ValueError as err:
        raise ValueError(f"{argument}: {leaf.label!r}: {err}") from None
    why = leaf.constraint.violation(value, closed)
    if why is not None:
        raise ValueError(f"{argument}: {leaf.label!r} {why} under its constraint {leaf.constraint!r} (value {value})")


def check_support(argument: str, space: ParameterSpace, values, batched: bool = False) -> None:
    """Every free parameter's value inside its constraint's support (ValueError naming
    ``argument`` otherwise). With ``batched`` every value carries a leading replicate axis;
    element-wise constraints check it whole, vector constraints replicate by replicate."""
    for leaf, value in zip(space.leaves, values, strict=True):
        if leaf.fixed:
            continue
        value = np.asarray(value)
        elementwise = leaf.constraint.elementwise
        if batched and not elementwise:
            for i, row in enumerate(value):
                check_in_support(f"{argument} (replicate {i})", leaf, row)
        elif batched and leaf.constraint.violation(value) is not None:
            i = first_bad_replicate(leaf, value)
            check_in_support(f"{argument} (replicate {i})", leaf, value[i])
        else:
            check_in_support(argument, leaf, value)


def first_bad_replicate(leaf, value: np.ndarray) -> int:
    """The first row of ``value`` outside the (element-wise) constraint's support, by
    bisection on prefixes (a few checks, however many replicates)."""
    clean, dirty = 0, len(value)  # value[:clean] passes, value[:dirty] does not
    while dirty - clean > 1:
        mid = (clean + dirty) // 2
        if leaf.constraint.violation(value[:mid]) is None:
            clean = mid
        else:
            dirty = mid
    return dirty - 1


def check_init(space: ParameterSpace, values: list[np.ndarray]) -> None:
    check_support("init", space, values)


def check_fixed(space: ParameterSpace, fixed: dict, values: list[np.ndarray]) -> tuple[ParameterSpace, list]:
    """The space with the elements that ``fixed`` holds, and the whole fixed leaves' values
    (checked for shape and support).

    ``fixed[name]`` is a value shaped like ``init[name]`` (the whole parameter held), or a
    dict from element index (an int for a vector, a tuple of ints for an array) to value:
    those elements held, the others free; holding every element holds the whole parameter."""
    by_key = {}
    for leaf in space.leaves:
        by_key.setdefault(leaf.key, []).append(leaf)
    held, whole = {}, {}
    for key, given in fixed.items():
        if isinstance(given, np.ma.MaskedArray):  # np.asarray would drop the mask and hold every element
            raise ValueError(
                f"fixed[{key!r}]: a masked array is not a form of fixed; hold elements with a dict "
                "{index: value}, e.g. dict(zip(map(tuple, np.argwhere(mask)), values[mask]))"
            )
        if isinstance(given, dict):
            pairs, value = _held_elements(key, by_key[key], given)
            if value is None:
                held[key] = pairs
            else:  # every element held
                whole[key] = value
    space = space.with_held(held)
    out = []
    for leaf, init_value in zip(space.leaves, values):
        if not leaf.fixed:
            continue
        if leaf.key in whole:
            out.append(whole[leaf.key])
            continue
        try:
            value = np.asarray(fixed[leaf.key], dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"fixed[{leaf.key!r}] must be a number or an array of numbers shaped like init") from None
        if value.shape != init_value.shape:
            raise ValueError(f"fixed[{leaf.key!r}] has shape {value.shape}, but init has {init_value.shape}")
        check_in_support(f"fixed[{leaf.key!r}]", leaf, value, closed=True)  # never through the bijector
        out.append(value)
    return space, out


def _held_elements(key: str, leaves: list, given: dict) -> tuple[tuple[tuple[int, float], ...], np.ndarray | None]:
    """``fixed[key]`` given as {index: value}: the (flat index, value) pairs held, by index,
    and the whole value when every element is held (else None)."""
    where = f"fixed[{key!r}]"
    leaf = _array_leaf(where, key, leaves)
    if leaf.constraint.elementwise and type(leaf.constraint) is not Constraint:
        raise ValueError(
            f"{where}: {key!r} has constraints element by element; holding elements of it as well is not "
            "supported: fix the element with its constraint left out, or fix the whole array"
        )
    if type(leaf.constraint) is not Constraint:
        raise ValueError(
            f"{where}: the elements of {key!r} under {leaf.constraint!r} are not free separately (holding one "
            f"constrains the others); fix {key!r} whole or reparameterize"
        )
    if not given:
        raise ValueError(f"{where} is an empty dict: name the elements to hold, e.g. {{0: 1.0}}")
    pairs = {}
    for index, value in given.items():
        flat = _flat_position(where, leaf.shape, index, pairs)
        try:
            pairs[flat] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}[{index!r}] must be a number, got {type(value).__name__}") from None
        why = leaf.constraint.violation(np.asarray(pairs[flat]), closed=True)
        if why is not None:
            raise ValueError(f"{where}[{index!r}] {why} under the constraint {leaf.constraint!r} (value {value})")
    if len(pairs) == leaf.size:
        return (), np.asarray([pairs[i] for i in range(leaf.size)]).reshape(leaf.shape)
    return tuple(sorted(pairs.items())), None


def _array_leaf(where: str, key: str, leaves: list):
    """The one non-scalar leaf of parameter ``key`` whose elements ``where`` names by index."""
    if len(leaves) != 1 or leaves[0].shape == ():
        what = f"{len(leaves)} arrays" if len(leaves) != 1 else "a scalar"
        raise ValueError(f"{where}: element indices need a vector or array parameter, but {key!r} is {what}")
    return leaves[0]


def _flat_position(where: str, shape: tuple[int, ...], index, taken) -> int:
    """``index`` (see ``_element_index``) as a flat position in ``shape``, not among ``taken``."""
    position = _element_index(where, shape, index)
    flat = int(np.ravel_multi_index(position, shape))
    if flat in taken:
        raise ValueError(f"{where}: element {position if len(position) > 1 else position[0]} is given twice")
    return flat


def _element_index(where: str, shape: tuple[int, ...], index) -> tuple[int, ...]:
    """``index`` (an int for a vector, a tuple of ints for an array) as a position in ``shape``."""
    position = (index,) if len(shape) == 1 and not isinstance(index, tuple) else index
    ok = isinstance(position, tuple) and all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in position
    )
    if not ok or len(position) != len(shape):
        form = "an int" if len(shape) == 1 else f"a tuple of {len(shape)} ints"
        raise ValueError(f"{where}: element indices must be {form} for shape {shape}, got {index!r}")
    if not all(0 <= i < n for i, n in zip(position, shape)):
        raise ValueError(f"{where}: element index {index!r} is out of range for shape {shape}")
    return tuple(int(i) for i in position)


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


def check_data(data, where: str = "data", values: bool = True) -> None:
    """Every leaf of ``data`` holds real numbers, and ``data`` is not empty; with ``values``,
    no leaf holds a NaN.

    Infinite values pass here: censored observations are often encoded as ±inf. They are
    allowed where the log-likelihood handles them, that is, where it is finite at the
    starting values (``fit`` checks that next, see ``not_finite_at_start``)."""
    flat = jax.tree_util.tree_flatten_with_path(data)[0]
    for path, leaf in flat:
        label, arr = where + jax.tree_util.keystr(path), np.asarray(leaf)
        if arr.dtype.kind == "c":
            raise ValueError(
                f"{label} holds complex numbers (dtype {arr.dtype}); a log-likelihood needs real data: pass the "
                "real and imaginary parts as separate arrays"
            )
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{label} must hold numbers, got dtype {arr.dtype}")
        if values and arr.dtype.kind == "f" and np.isnan(arr).any():
            raise ValueError(f"{label} contains {int(np.isnan(arr).sum())} NaN value(s)")
    if flat and all(np.size(leaf) == 0 for _, leaf in flat):
        raise ValueError(f"{where} is empty: there are no observations to fit")


def infinite_values(data, where: str = "data") -> list[str]:
    """``"data['t'] (3)"`` for each floating leaf of ``data`` holding ±inf."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(data)[0]:
        arr = np.asarray(leaf)
        count = int(np.isinf(arr).sum()) if arr.dtype.kind == "f" else 0
        if count:
            out.append(f"{where + jax.tree_util.keystr(path)} ({count})")
    return out


def not_finite_at_start(terms: np.ndarray, data) -> str:
    """Why a log-likelihood that is not finite at the start is refused, naming any infinite
    data (allowed only where the log-likelihood is finite at the start)."""
    bad = "" if terms.ndim == 0 else f" ({int((~np.isfinite(terms)).sum())} of {terms.size} terms)"
    text = f"loglik is not finite at the starting values (init){bad}"
    infinite = infinite_values(data)
    if infinite:
        text = (
            f"data: infinite values in {', '.join(infinite)}, and {text}; infinite data (e.g. censored "
            "observations) are allowed only where loglik is finite at the starting values"
        )
    return text


def loglik_output(fn, *args) -> jax.ShapeDtypeStruct:
    """The shape and dtype of the log-likelihood ``fn(*args)`` at the starting values, by
    ``jax.eval_shape`` (traced, not compiled): one array of real floating values, a scalar
    or a non-empty vector of per-observation terms."""
    try:
        out = jax.eval_shape(fn, *args)
    except Exception as err:  # the user's function failed: name it
        raise ValueError(f"loglik failed at the starting values: {type(err).__name__}: {err}") from err
    if not isinstance(out, jax.ShapeDtypeStruct):
        got = "None" if out is None else type(out).__name__
        raise ValueError(f"loglik must return one array (a scalar or a vector of per-observation terms), got {got}")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        why = "complex values have no maximum" if out.dtype.kind == "c" else "it has no gradient"
        raise ValueError(f"loglik must return real floating-point values, got dtype {out.dtype} ({why})")
    if out.ndim > 1:
        raise ValueError(f"loglik must return a scalar or a 1-D vector of per-observation terms, got shape {out.shape}")
    if out.shape == (0,):
        raise ValueError("data: loglik returned no per-observation terms (an empty vector): there is nothing to fit")
    return out


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


#: simulation seeds: what ``jax.random.key`` distinguishes at either precision
MAX_SEED = 2**32 - 1


def check_seed(seed) -> int:
    """``seed`` as an int in [0, ``MAX_SEED``]."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer from 0 to 2**32 - 1 = {MAX_SEED}, got {seed!r}")
    return int(seed)


def unbatched_init_hint(init, reps: int) -> str | None:
    """Why ``init`` may be a batched init with the wrong number of rows: every leaf has the
    same leading axis, of a length other than ``reps`` (None otherwise)."""
    leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(init)]
    lengths = {v.shape[0] if v.ndim else None for v in leaves}
    if len(lengths) != 1 or None in lengths or reps in lengths:
        return None
    rows = lengths.pop()
    return (
        f"init: every leaf has a leading axis of length {rows}, but data has {reps} replicates: a batched init "
        f"needs one row per replicate ({reps}); as one start for every replicate, it fails"
    )


def parameter_values(argument: str, tree, dtype):
    """The leaves of a parameter pytree as ``dtype`` arrays (ValueError naming ``argument``
    and the leaf where one is not real numbers, or when there is none)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    if not flat:
        raise ValueError(f"{argument} holds no values: give one for every parameter")
    out = []
    for path, value in flat:
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{argument}{jax.tree_util.keystr(path)} must be real numbers, got dtype {arr.dtype}")
        out.append(arr.astype(dtype))
    return jax.tree_util.tree_unflatten(treedef, out)


def check_like(argument: str, given, template, what: str) -> None:
    """``given`` has the parameters of ``template`` (``what`` names its source), each of its
    shape."""
    want, have = _shapes(template), _shapes(given)
    missing, extra = [k for k in want if k not in have], [k for k in have if k not in want]
    if missing or extra:
        parts = [f"no value for {', '.join(map(repr, missing))}"] if missing else []
        parts += [f"{', '.join(map(repr, extra))} not among them"] if extra else []
        raise ValueError(f"{argument}: {'; '.join(parts)} (the parameters of {what}: {', '.join(map(repr, want))})")
    for name, shape in have.items():
        if shape != want[name]:
            raise ValueError(f"{argument}: {name!r} has shape {shape}, but in {what} it has shape {want[name]}")
    if jax.tree_util.tree_structure(given) != jax.tree_util.tree_structure(template):
        raise ValueError(f"{argument} must have the structure of the parameters of {what}")


def _shapes(tree) -> dict:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_leaf_name(path): np.shape(v) for path, v in flat}


def _leaf_name(path) -> str:
    return leaf_label(path) if path else "params"


def check_simulate(simulate, truth, n: int) -> None:
    """``simulate(key, truth, n)`` runs at ``truth`` and returns ``n`` observations (every
    leaf with an axis has a leading one of length ``n``); traced by ``jax.eval_shape``,
    nothing is compiled. ValueError naming ``truth`` or ``simulate`` otherwise."""
    out = _simulated_shape(simulate, truth, n)
    shapes = {jax.tree_util.keystr(p): v.shape for p, v in jax.tree_util.tree_flatten_with_path(out)[0]}
    if not any(shapes.values()) or any(s and s[0] != n for s in shapes.values()):
        got = ", ".join(f"data{k} {s}" for k, s in shapes.items()) or "no arrays"
        raise ValueError(f"simulate must return n = {n} observations (a leading axis of length {n}), got {got}")


def _simulated_shape(simulate, truth, n: int):
    run = lambda t: jax.eval_shape(lambda key, p: simulate(key, p, n), jax.random.key(0), t)  # noqa: E731
    try:
        return run(truth)
    except KeyError as err:
        name = err.args[0] if err.args else None
        if isinstance(truth, dict) and name not in truth:
            given = ", ".join(map(str, truth))
            raise ValueError(
                f"truth: no value for the parameter {name!r}, which simulate needs (truth gives {given})"
            ) from None
        raise ValueError(f"simulate failed at truth: KeyError: {err}") from err
    except Exception as err:
        label = _scalar_in_place(run, truth)
        if label is not None:
            shape = _shapes(truth)[label]
            raise ValueError(
                f"truth: {label!r} has shape {shape}, but simulate takes a scalar there ({type(err).__name__}: {err})"
            ) from err
        raise ValueError(f"simulate failed at truth: {type(err).__name__}: {err}") from err


def _scalar_in_place(run, truth) -> str | None:
    """The label of the first array leaf of ``truth`` that, replaced by a scalar, lets
    ``run(truth)`` succeed (None if there is none)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(truth)
    for i, (path, value) in enumerate(flat):
        if np.ndim(value) == 0:
            continue
        trial = [np.ravel(v)[0] if j == i else v for j, (_, v) in enumerate(flat)]
        try:
            run(jax.tree_util.tree_unflatten(treedef, trial))
        except Exception:
            continue
        return _leaf_name(path)
    return None


def check_labels(space: ParameterSpace, labels) -> dict[str, tuple[str, ...]]:
    """``labels`` (None for none): a dict from the name of a vector parameter to one distinct,
    non-empty string per element, returned with tuples of labels (ValueError naming
    ``labels`` otherwise)."""
    labels = check_names("labels", labels, {leaf.key for leaf in space.leaves})
    out = {}
    for key, names in labels.items():
        leaves = [leaf for leaf in space.leaves if leaf.key == key]
        if len(leaves) != 1 or len(leaves[0].shape) != 1:
            shape = leaves[0].shape
            what = f"{len(leaves)} arrays" if len(leaves) != 1 else "a scalar" if shape == () else f"of shape {shape}"
            raise ValueError(f"labels[{key!r}]: labels name the elements of one vector, but {key!r} is {what}")
        if isinstance(names, (str, bytes, dict)) or not hasattr(names, "__iter__"):
            raise ValueError(f"labels[{key!r}] must be a list of strings, got {type(names).__name__}")
        names = tuple(names)
        if len(names) != leaves[0].shape[0]:
            raise ValueError(f"labels[{key!r}] has {len(names)} labels, but {key!r} has {leaves[0].shape[0]} elements")
        bad = [name for name in names if not isinstance(name, str) or not name]
        if bad:
            raise ValueError(f"labels[{key!r}] must hold non-empty strings, got {bad[0]!r}")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"labels[{key!r}] repeats {repeated}: each element needs its own label")
        out[key] = names
    return out
