"""The one iteration driver: a single ``lax.while_loop`` with a per-fit status.

A strategy supplies ``init(u) -> (f, inner)`` and ``step(u, f, inner, active) -> Step``;
the driver owns everything else: the iteration cap, non-finite detection and the run-off
detector, so every solver reports failures the same way and stops within ``max_iter``.
A step may only refresh the strategy's state at the current point (Newton's derivatives
after a backtracked step): that is not counted as an iteration, and a strategy refreshes
at most once between two steps.
Under ``vmap`` the loop runs until its slowest fit stops, and the steps of fits that have
stopped are still computed (and discarded): ``active`` is False for them, so that a
strategy's own loops (line searches) make no trips there.

Run-off detection (no finite maximum): Newton near a finite optimum contracts its steps
quadratically. Full steps that keep their direction and length while the parameters
grow are the signature of an objective that improves without bound along a ray
(separation, a boundary estimate). When that signature lasts three iterations the driver
probes the objective far along the ray; a strictly better value there confirms it. The
probe guards against a finite optimum that is merely far away (then the far point is
worse).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ..status import Status

RUNAWAY_ITERATIONS = 3
PROBE_SCALES = (1.0, 100.0)


class Step(NamedTuple):
    u: jax.Array
    f: jax.Array
    inner: Any
    converged: jax.Array  # bool: the criterion held at the point returned, or one step before it
    failed: jax.Array  # int32: a Status code, or CONVERGED (0) for "no failure"
    full_step: jax.Array  # bool: an unmodified, undamped Newton step was taken
    refreshed: jax.Array  # bool: no step, only the derivatives taken at u (not an iteration)


class Strategy(NamedTuple):
    init: Callable
    step: Callable


class SolverResult(NamedTuple):
    u: jax.Array
    f: jax.Array
    n_iter: jax.Array
    status: jax.Array


class _State(NamedTuple):
    u: jax.Array
    f: jax.Array
    it: jax.Array
    status: jax.Array
    done: jax.Array
    last_step: jax.Array
    runaway: jax.Array
    inner: Any


def run(strategy: Strategy, objective: Callable, u0, max_iter: int) -> SolverResult:
    """Minimize ``objective`` from ``u0`` with ``strategy``; never raises."""
    f0, inner0 = strategy.init(u0)
    start_ok = jnp.isfinite(f0)
    state = _State(
        u=u0,
        f=f0,
        it=jnp.int32(0),
        status=jnp.where(start_ok, Status.MAX_ITER, Status.NONFINITE_START).astype(jnp.int32),
        done=~start_ok,
        last_step=jnp.zeros_like(u0),
        runaway=jnp.int32(0),
        inner=inner0,
    )

    def cond(s):
        return ~s.done & (s.it < max_iter)

    def body(s):
        r = strategy.step(s.u, s.f, s.inner, ~s.done)
        step = r.u - s.u
        finite = jnp.isfinite(r.f) & jnp.all(jnp.isfinite(r.u))
        steady = r.full_step & _steady(step, s.last_step, r.u, s.u)
        runaway = jnp.where(r.refreshed, s.runaway, jnp.where(steady, s.runaway + 1, 0))
        ran_off = _probe_confirms(objective, r.u, step, r.f, runaway >= RUNAWAY_ITERATIONS)
        status = jnp.select(
            [~finite, ran_off, r.failed != Status.CONVERGED, r.converged],
            [Status.NONFINITE, Status.NO_FINITE_MAXIMUM, r.failed, Status.CONVERGED],
            Status.MAX_ITER,
        ).astype(jnp.int32)
        done = ~finite | ran_off | (r.failed != Status.CONVERGED) | r.converged
        keep = ~finite  # leave the last finite point in place
        return _State(
            u=jnp.where(keep, s.u, r.u),
            f=jnp.where(keep, s.f, r.f),
            it=s.it + jnp.where(r.refreshed, 0, 1),
            status=status,
            done=done,
            last_step=jnp.where(r.refreshed, s.last_step, step),
            runaway=runaway,
            inner=jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), s.inner, r.inner),
        )

    final = lax.while_loop(cond, body, state)
    return SolverResult(final.u, final.f, final.it, final.status)


def _steady(step, last_step, u_new, u_old):
    norm, last = jnp.linalg.norm(step), jnp.linalg.norm(last_step)
    cos = jnp.dot(step, last_step) / jnp.maximum(norm * last, jnp.finfo(step.dtype).tiny)
    return (cos > 0.9) & (norm >= 0.5 * last) & (jnp.linalg.norm(u_new) > jnp.linalg.norm(u_old))


def _probe_confirms(objective, u, step, f, active):
    """True when ``active`` and the objective is strictly lower far along ``step`` from ``u``.

    The probes run in a loop whose trip count is zero for inactive fits, so under ``vmap``
    (where a ``cond`` would evaluate both branches for every fit) they cost nothing until
    some fit shows the run-off signature."""
    direction = step / jnp.maximum(jnp.linalg.norm(step), jnp.finfo(step.dtype).tiny)
    reach = 1.0 + jnp.linalg.norm(u)
    scales = jnp.asarray(PROBE_SCALES, u.dtype)
    trips = jnp.where(active, len(PROBE_SCALES), 0)

    def probe(carry):
        i, values = carry
        return i + 1, values.at[i].set(objective(u + scales[i] * reach * direction))

    _, values = lax.while_loop(lambda c: c[0] < trips, probe, (0, jnp.full(len(PROBE_SCALES), jnp.nan, u.dtype)))
    near_lower = jnp.isfinite(values[0]) & (values[0] < f)
    none_higher = jnp.all(jnp.where(jnp.isnan(values), True, values < f))
    return active & near_lower & none_higher
