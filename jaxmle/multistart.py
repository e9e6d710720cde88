"""Multi-start: one fit from K starting points in one vmapped solve, the best verified
maximum returned, and every distinct local maximum listed.

``fit(..., starts=K, seed=s)`` draws K - 1 random starts around ``init`` in the solver's
unconstrained space (``init`` itself is the first): u_k = u_0 + (1 + |u_0|) ε_k with
ε_k standard normal, so a positive parameter is spread over about a factor e and a real
one by about its own size, or 1 around 0. ``starts=`` a pytree shaped like ``init`` with a
leading axis gives the starts themselves. All starts run as one ``fit_batch`` over the
same data; the best CONVERGED start (highest log-posterior) is then refitted singly, so
the result has everything a single fit has, plus ``optima``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from .status import Status

#: two converged starts are the same maximum when every user-scale coordinate agrees
#: to this relative tolerance
SAME_MAXIMUM_RTOL = 1e-6


@dataclass(frozen=True)
class Optimum:
    """A distinct local maximum reached from ``count`` of the starts."""

    loglik: float
    logpost: float
    params: Any
    status: Status
    count: int


def start_inits(prep, init, starts, seed) -> tuple[Any, int]:
    """(the batched init pytree, K) from ``starts``: an int K >= 1, or a pytree shaped
    like ``init`` with a leading axis."""
    space = prep.problem.space
    if isinstance(starts, (int, np.integer)) and not isinstance(starts, bool):
        if starts < 1:
            raise ValueError(f"starts must be an integer >= 1 or a pytree of starting points, got {starts}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        rng = np.random.default_rng(int(seed))
        u0 = np.asarray(prep.u0, np.float64)
        u = np.concatenate([u0[None], u0 + (1.0 + np.abs(u0)) * rng.normal(size=(int(starts) - 1, u0.size))])
        return batched_params_of_u(prep, u), int(starts)
    leaves = jax.tree_util.tree_leaves(starts)
    if jax.tree_util.tree_structure(starts) != jax.tree_util.tree_structure(init) or not leaves:
        raise ValueError("starts: give an integer K, or a pytree shaped like init with a leading axis of starts")
    counts = {np.shape(v)[0] if np.ndim(v) else None for v in leaves}
    if len(counts) != 1 or None in counts:
        raise ValueError("starts: every leaf needs the same leading axis (one row per starting point)")
    for v, leaf in zip(leaves, space.leaves, strict=True):
        if tuple(np.shape(v)[1:]) != leaf.shape:
            raise ValueError(f"starts: {leaf.label} has shape {np.shape(v)[1:]} per start, init has {leaf.shape}")
    return starts, counts.pop()


def batched_params_of_u(prep, u: np.ndarray):
    """The init pytree, with a leading axis, of unconstrained points ``u`` (K, m)."""
    from . import _precision
    from .batch.outputs import batched_params

    space = prep.problem.space
    with _precision.context(prep.dtype):
        flat = np.asarray(jax.vmap(lambda v: space.flat_x(space.u_to_x_leaves(v)))(jax.numpy.asarray(u, prep.dtype)))
    return batched_params(space, flat, [np.asarray(v) for v in prep.fixed_leaves], len(u))


def distinct_optima(batch) -> list[Optimum]:
    """The distinct maxima among the converged fits of ``batch``, best first."""
    order = np.argsort(-np.where(batch.converged, batch.logpost, -np.inf), kind="stable")
    found: list[tuple[np.ndarray, list[int]]] = []
    for i in order:
        if not batch.converged[i]:
            break
        x = batch.estimates[i]
        for centre, members in found:
            if np.all(np.abs(x - centre) <= SAME_MAXIMUM_RTOL * (1.0 + np.abs(centre))):
                members.append(int(i))
                break
        else:
            found.append((x, [int(i)]))
    pick = lambda tree, i: jax.tree_util.tree_map(lambda a: np.asarray(a[i]), tree)  # noqa: E731
    return [
        Optimum(
            loglik=float(batch.loglik[m[0]]),
            logpost=float(batch.logpost[m[0]]),
            params=pick(batch.params, m[0]),
            status=Status(int(batch.status[m[0]])),
            count=len(m),
        )
        for _, m in found
    ]


def best_start(batch) -> int:
    """The start to refit: the best converged one, else the highest finite log-posterior."""
    score = np.where(np.isfinite(batch.logpost), batch.logpost, -np.inf)
    if batch.converged.any():
        score = np.where(batch.converged, score, -np.inf)
    return int(np.argmax(score))
