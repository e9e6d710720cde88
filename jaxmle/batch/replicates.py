"""The replicates' inputs: the replicate axis, invalid replicates, rows of a pytree, starting points."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import _precision
from ..fit import Prepared


def replicate_count(host) -> int:
    leaves = jax.tree_util.tree_leaves(host)
    if not leaves:
        raise ValueError("data: fit_batch needs data whose leaves carry a leading replicate axis")
    lengths = {a.shape[0] if a.ndim else None for a in leaves}
    if None in lengths or len(lengths) != 1:
        shapes = [a.shape for a in leaves]
        raise ValueError(f"data: every leaf needs the same leading replicate axis, got shapes {shapes}")
    reps = lengths.pop()
    if reps == 0:
        raise ValueError("data: the replicate axis is empty")
    return reps


def invalid_replicates(host, check=None) -> np.ndarray:
    """Replicates with a NaN in any floating leaf of the data, or (given ``check``, a model's
    ``check_data``) whose data ``check`` refuses with a ValueError. Infinite values are left
    to the fit, as in ``fit``: a replicate whose log-likelihood is not finite at its start
    ends with NONFINITE_START."""
    bad = np.zeros(jax.tree_util.tree_leaves(host)[0].shape[0], bool)
    for a in jax.tree_util.tree_leaves(host):
        if np.issubdtype(a.dtype, np.floating):
            bad |= np.isnan(a).reshape(a.shape[0], -1).any(axis=1)
    if check is not None:
        bad[refused(host, np.flatnonzero(~bad), check)] = True
    return bad


def refused(host, index: np.ndarray, check) -> np.ndarray:
    """The replicates among ``index`` whose data ``check`` refuses.

    A model's checks are element-wise and accept a leading replicate axis, so a block that
    passes as a whole is valid throughout; a block that fails is halved until the refused
    replicates are found (each checked on its own)."""
    if len(index) == 0:
        return index
    try:
        check(take(host, index) if len(index) > 1 else take(host, int(index[0])))
        return index[:0]
    except ValueError:
        if len(index) == 1:
            return index
    half = len(index) // 2
    return np.concatenate([refused(host, index[:half], check), refused(host, index[half:], check)])


def replace_invalid(chunk, invalid=None):
    """``(chunk, invalid)``: the invalid replicates (by default the non-finite ones) replaced
    by the first valid one (or zeros)."""
    invalid = invalid_replicates(chunk) if invalid is None else np.asarray(invalid)
    if not invalid.any():
        return chunk, invalid
    good = np.flatnonzero(~invalid)

    def fix(a):
        a = a.copy()
        a[invalid] = a[good[0]] if len(good) else 0
        return a

    return jax.tree_util.tree_map(fix, chunk), invalid


def take(tree, index):
    """Rows ``index`` of every leaf: a view when they are consecutive, else a copy."""
    rows = np.asarray(index)
    if rows.ndim == 1 and len(rows) > 1 and rows.dtype.kind in "iu" and np.all(np.diff(rows) == 1):
        index = slice(int(rows[0]), int(rows[-1]) + 1)
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[index], tree)


def init_has_batch_axis(init, reps: int, batched_init) -> bool:
    leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(init)]
    leading = bool(leaves) and all(v.ndim >= 1 and v.shape[0] == reps for v in leaves)
    if batched_init is None:
        if leading and all(v.ndim == 1 for v in leaves):
            raise ValueError(
                f"init: every leaf is a vector of length {reps}, the number of replicates, so it is unclear whether "
                "init carries a replicate axis: pass batched_init=True or batched_init=False"
            )
        return leading
    if batched_init and not leading:
        shapes = ", ".join(str(v.shape) for v in leaves)
        raise ValueError(
            f"init: batched_init=True needs a leading axis of length {reps} (one row per replicate) on every leaf, "
            f"got shapes {shapes}"
        )
    return bool(batched_init)


def batched_u0(prep: Prepared, init_batch) -> np.ndarray:
    """``(reps, m)`` unconstrained starting points from a batched init pytree."""
    space = prep.problem.space
    leaves = jax.tree_util.tree_leaves(init_batch)
    free = [v for v, leaf in zip(leaves, space.leaves, strict=True) if not leaf.fixed]
    with _precision.context(prep.dtype):
        return np.asarray(_u_of_x(space)([jnp.asarray(v, prep.dtype) for v in free]))


@functools.lru_cache(maxsize=64)
def _u_of_x(space):
    return jax.jit(jax.vmap(space.x_leaves_to_u))


def model_inits(init_fn, chunk, dtype):
    """A model's ``init`` for each replicate, traced once and run replicate by replicate
    (``lax.map``, so a replicate's start does not depend on the chunk it sits in); a
    non-traceable ``init`` runs in Python."""
    with _precision.context(dtype):
        try:
            return jax.tree_util.tree_map(np.asarray, _mapped(init_fn)(_precision.to_device(chunk, dtype)))
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError, ValueError):
            reps = jax.tree_util.tree_leaves(chunk)[0].shape[0]
            rows = [init_fn(take(chunk, i)) for i in range(reps)]
            return jax.tree_util.tree_map(lambda *v: np.stack([np.asarray(x) for x in v]), *rows)


@functools.lru_cache(maxsize=32)
def _mapped(fn):
    return jax.jit(lambda batch: jax.lax.map(fn, batch))
