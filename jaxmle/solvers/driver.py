"""The one iteration driver: a single ``lax.while_loop`` with a per-fit status.

A strategy supplies ``init(u) -> (f, inner)`` and ``step(u, f, inner, active) -> Step``
(``init`` may return f = None and leave the value at the start to its first step, a
refresh, which then reports a start that is not finite: one evaluation of the objective
fewer in the program); the driver owns everything else: the iteration cap, non-finite
detection and the run-off detector, so every solver reports failures the same way and
stops within ``max_iter``.
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
probes the objective along the ray at distances growing tenfold, up to 1000 times the
current scale; it confirms a run-off only when the objective improves at the first probe
and never gets worse from one probe to the next, and then returns the farthest probe. A
finite optimum that is merely far away (a scale of 5e4 approached from 1) shows as a
probe that is worse than the one before it, and the solver carries on towards it.

Boundaries: a coordinate whose constraint has a finite limit at one end of the real line
(``Ends``: ``u -> -inf`` is ``sigma -> 0``, ``u -> +inf`` is ``p -> 1``) and that lies
beyond ``BOUNDARY_U`` towards that end (``CONVERGED_BOUNDARY_U`` once the solver's own
test holds) is probed ``BOUNDARY_STEPS`` further out. When the
objective is no worse there, the supremum lies on the boundary (AT_BOUNDARY), or, when
the gain does not shrink from one probe to the next, the likelihood grows without bound
towards it (NO_FINITE_MAXIMUM, as for sigma -> 0 in an exact fit). A run-off confirmed
along a ray that only moves such coordinates towards their limits is classified the
same way, from its own probes.

A fit that ends with LINE_SEARCH_FAILED (no step improves) is probed the same way along
the whole way it travelled from its start: with more coefficients than observations a
separated logistic regression ends on a plateau where the log-likelihood is within
round-off of its supremum 0 and every Newton model is flat, yet the log-likelihood still
grows along the ray from the start. All probes of an iteration are evaluated in one loop,
so that the program holds the objective at one probe site.

A strategy whose state the caller reuses at the end (the trust region's derivatives, for
the inference of a Laplace marginal, whose Hessian is costly to compile twice) gives
``refresh_at_end``: every fit that stops then takes one more trip, a refresh at the point
it returns, so that the final state holds the derivatives there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ..status import Status

RUNAWAY_ITERATIONS = 3
PROBE_SCALES = (1.0, 10.0, 100.0, 1000.0)
#: |u| beyond which a coordinate counts as near a finite limit (e^-15 ≈ 3e-7 of its scale)
BOUNDARY_U = 15.0
#: a point that passed the solver's own test is probed from this far already: a variance
#: component whose supremum is at 0 passes it near sd = 1e-6 (u = -14), since its gradient
#: and curvature both vanish like sd²
CONVERGED_BOUNDARY_U = 8.0
BOUNDARY_STEPS = (8.0, 16.0)


class Ends(NamedTuple):
    """Per unconstrained coordinate: whether u -> -inf (``lower``) and u -> +inf
    (``upper``) lead to a finite limit of the constrained value."""

    lower: Any
    upper: Any


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
    #: ``inner -> inner`` marked so that the next step only refreshes at the current point;
    #: None: no refresh at the end (see the module's docstring)
    refresh_at_end: Callable | None = None


class SolverResult(NamedTuple):
    u: jax.Array
    f: jax.Array
    n_iter: jax.Array
    status: jax.Array
    state: Any = None  # the strategy's state at its last evaluated point


class _State(NamedTuple):
    u: jax.Array
    f: jax.Array
    it: jax.Array
    status: jax.Array
    done: jax.Array
    last_step: jax.Array
    runaway: jax.Array
    inner: Any
    closing: jax.Array  # bool: stopped, the refresh at the end still to take


def run(
    strategy: Strategy, objective: Callable, u0, max_iter: int, ends: Ends | None = None, origin=None
) -> SolverResult:
    """Minimize ``objective`` from ``u0`` with ``strategy``; never raises. ``ends`` (by
    default: no finite limits) lets the driver recognize estimates on a boundary;
    ``origin`` (default ``u0``) is where the fit started, for the probe after a failed
    step."""
    if ends is None:
        none = jnp.zeros(u0.shape, bool)
        ends = Ends(none, none)
    f0, inner0 = strategy.init(u0)
    if f0 is None:  # taken by the first step
        f0, start_ok = jnp.full((), jnp.nan, u0.dtype), jnp.bool_(True)
    else:
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
        closing=jnp.bool_(False),
    )
    origin = u0 if origin is None else origin

    def cond(s):
        return (~s.done & (s.it < max_iter)) | s.closing

    def body(s):
        r = strategy.step(s.u, s.f, s.inner, ~s.done | s.closing)
        step = r.u - s.u
        finite = jnp.isfinite(r.f) & jnp.all(jnp.isfinite(r.u))
        steady = r.full_step & _steady(step, s.last_step, r.u, s.u)
        runaway = jnp.where(r.refreshed, s.runaway, jnp.where(steady, s.runaway + 1, 0))
        threshold = jnp.where(r.converged, CONVERGED_BOUNDARY_U, BOUNDARY_U)
        outward = _outward(r.u, ends, threshold)
        # no step could improve: a flat, far-out point (separation in more coefficients than
        # observations) looks the same as a stall; probe along the whole way travelled
        stuck = finite & ~s.done & (r.failed == Status.LINE_SEARCH_FAILED)
        along = ~s.done & ((runaway >= RUNAWAY_ITERATIONS) | stuck)
        ray = jnp.where(stuck, r.u - origin, step)
        near = finite & ~s.done & jnp.any(outward != 0)
        ran_off, far_u, far_f, ran_off_status, at_boundary, unbounded = at_most_once(
            along | near,
            lambda *args: _probe_verdict(objective, *args, ends),
            (False, r.u, r.f, jnp.int32(Status.NO_FINITE_MAXIMUM), False, False),
            r.u,
            ray,
            r.f,
            along,
            near,
            outward,
        )
        no_maximum = (ran_off & (ran_off_status == Status.NO_FINITE_MAXIMUM)) | unbounded
        boundary = (ran_off & (ran_off_status == Status.AT_BOUNDARY)) | (at_boundary & ~unbounded)
        nonfinite = jnp.where(r.refreshed & (s.it == 0), Status.NONFINITE_START, Status.NONFINITE)
        status = jnp.select(
            [~finite, no_maximum, boundary, r.failed != Status.CONVERGED, r.converged],
            [nonfinite, Status.NO_FINITE_MAXIMUM, Status.AT_BOUNDARY, r.failed, Status.CONVERGED],
            Status.MAX_ITER,
        ).astype(jnp.int32)
        done = ~finite | no_maximum | boundary | (r.failed != Status.CONVERGED) | r.converged
        keep = ~finite  # leave the last finite point in place
        inner = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), s.inner, r.inner)
        closing = jnp.bool_(False)
        if strategy.refresh_at_end is not None:
            closing = done
            inner = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), strategy.refresh_at_end(inner), inner)
        stepped = _State(
            u=jnp.where(keep, s.u, jnp.where(ran_off, far_u, r.u)),  # a run-off ends at its farthest probe
            f=jnp.where(keep, s.f, jnp.where(ran_off, far_f, r.f)),
            it=s.it + jnp.where(r.refreshed, 0, 1),
            status=status,
            done=done,
            last_step=jnp.where(r.refreshed, s.last_step, step),
            runaway=runaway,
            inner=inner,
            closing=closing,
        )
        if strategy.refresh_at_end is None:
            return stepped
        # the refresh at the end: only the state (and a finite value there) is taken
        refreshed = s._replace(f=jnp.where(jnp.isfinite(r.f), r.f, s.f), inner=r.inner, closing=jnp.bool_(False))
        return jax.tree_util.tree_map(lambda a, b: jnp.where(s.closing, a, b), refreshed, stepped)

    final = lax.while_loop(cond, body, state)
    return SolverResult(final.u, final.f, final.it, final.status, final.inner)


def _steady(step, last_step, u_new, u_old):
    norm, last = jnp.linalg.norm(step), jnp.linalg.norm(last_step)
    cos = jnp.dot(step, last_step) / jnp.maximum(norm * last, jnp.finfo(step.dtype).tiny)
    return (cos > 0.9) & (norm >= 0.5 * last) & (jnp.linalg.norm(u_new) > jnp.linalg.norm(u_old))


def _run_off(f, direction, points, values, active, ends: Ends):
    """(confirmed, far_u, far_f, status) for a run-off along the ray ``_ray(u, step)`` =
    (``direction``, ``points``) from a point of value ``f``, given the objective ``values``
    at the ``points``: the farthest probe, the objective there, and what the run-off means.

    Confirmed when ``active`` and the objective, probed far along the ray, is lower than
    ``f`` at the first probe and never higher at a farther one (within round-off): it
    improves all the way out, so there is no finite optimum on that ray. The status is
    AT_BOUNDARY when every coordinate the ray moves heads for a finite limit of its
    constraint and the gain from the first to the second probe is smaller than the gain
    up to the first (the objective levels off at the limit), else NO_FINITE_MAXIMUM."""
    roundoff = _roundoff(values)
    improving = jnp.all(values[1:] <= values[:-1] + roundoff[:-1])
    confirmed = active & jnp.all(jnp.isfinite(values)) & (values[0] < f) & improving & jnp.any(direction != 0)
    moves = jnp.abs(direction) > 0.1 * jnp.max(jnp.abs(direction), initial=0.0)
    limited = ((direction < 0) & ends.lower) | ((direction > 0) & ends.upper)
    toward_limits = jnp.all(~moves | limited)
    grows = (values[0] - values[1]) >= 0.5 * (f - values[0])
    status = jnp.where(toward_limits & ~grows, Status.AT_BOUNDARY, Status.NO_FINITE_MAXIMUM).astype(jnp.int32)
    return confirmed, points[-1], values[-1], status


def _ray(u, step):
    """(unit direction, probe points): ``u`` plus the direction of ``step`` times
    ``PROBE_SCALES`` of the current scale 1 + |u|."""
    direction = step / jnp.maximum(jnp.linalg.norm(step), jnp.finfo(step.dtype).tiny)
    distances = (1.0 + jnp.linalg.norm(u)) * jnp.asarray(PROBE_SCALES, u.dtype)
    return direction, u + distances[:, None] * direction


def _outward_points(u, outward):
    """The boundary probes: ``u`` plus ``BOUNDARY_STEPS`` along ``outward``."""
    direction = outward / jnp.maximum(jnp.linalg.norm(outward), 1.0)
    return u + jnp.asarray(BOUNDARY_STEPS, u.dtype)[:, None] * direction


def _probe_verdict(objective, u, ray, f, along, near, outward, ends: Ends):
    """The run-off verdict along ``ray`` (where ``along``), then, where no run-off was
    confirmed, the boundary verdict along ``outward`` (where ``near``), from one loop of
    probes."""
    n_ray = len(PROBE_SCALES)
    direction, ray_points = _ray(u, ray)
    points = jnp.concatenate([ray_points, _outward_points(u, outward)])
    first = jnp.where(along, 0, n_ray)
    values = probe(objective, points, first, jnp.where(along, n_ray, 0) + jnp.where(near, len(BOUNDARY_STEPS), 0))
    ran_off, far_u, far_f, status = _run_off(f, direction, ray_points, values[:n_ray], along, ends)
    at_boundary, unbounded = _boundary(f, values[n_ray:], near & ~ran_off)
    return ran_off, far_u, far_f, status, at_boundary, unbounded


def _outward(u, ends: Ends, threshold):
    """Per coordinate: -1 or +1 towards a finite limit that ``u`` lies beyond ``threshold``
    of, else 0."""
    return jnp.where(ends.lower & (u <= -threshold), -1.0, jnp.where(ends.upper & (u >= threshold), 1.0, 0.0))


def _boundary(f, values, active):
    """(at_boundary, unbounded) from the objective ``values`` at the boundary probes
    (``_outward_points``): further out, the objective is no worse (the supremum is on the
    boundary), and its gain is clearly above round-off (√eps of the objective's scale) and does not
    shrink from one probe to the next (unbounded). Where the objective has levelled off,
    the second probe, nearer the limit, may be where it can no longer be evaluated
    accurately (a Laplace marginal at a correlation within 1e-14 of 1): a tiny gain followed
    by a large one is not read as growth."""
    gain = f - values[0]
    at_boundary = active & jnp.isfinite(values[0]) & (gain >= -_roundoff(f))
    significant = gain > jnp.sqrt(jnp.finfo(f.dtype).eps) * (1.0 + jnp.abs(f))
    unbounded = at_boundary & significant & (values[0] - values[1] >= 0.5 * gain)
    return at_boundary, unbounded


def _roundoff(f):
    return 16 * jnp.finfo(f.dtype).eps * (1.0 + jnp.abs(f))


def at_most_once(pred, compute, otherwise, *operands):
    """``compute(*operands)`` where ``pred``, else ``otherwise`` (a pytree of the same
    structure as the result).

    A loop of one trip or none: under ``vmap``, where a ``cond`` would evaluate ``compute``
    for every fit, it runs only when some fit needs it, so that checks and fallbacks
    cost nothing in the iterations where no fit needs them. ``compute`` must take every
    value that changes from one solver iteration to the next as an operand: they reach it
    through the loop's carried flag, since XLA hoists work that reads only values from
    outside a loop out of it, where it would run every time."""

    def body(c):
        tied = jax.tree_util.tree_map(lambda a: jnp.where(c[0], a, jnp.zeros_like(a)), operands)
        return jnp.bool_(False), compute(*tied)

    return lax.while_loop(lambda c: c[0], body, (pred, otherwise))[1]


def probe(objective, points, first, count):
    """The objective at rows ``first`` to ``first + count - 1`` of ``points`` (NaN at the others).

    The probes run in a loop of ``count`` trips, so under ``vmap`` (where a ``cond`` would
    evaluate both branches for every fit) they cost nothing until some fit needs them. (Rows
    picked by sorting a mask made workload C 35% slower although no probe ran there, likely
    because XLA moves a loop's invariant work out of it, into every iteration of the solver.)"""

    def body(carry):
        i, values = carry
        j = first + i
        return i + 1, values.at[j].set(objective(points[j]))

    init = (0, jnp.full(points.shape[:1], jnp.nan, points.dtype))
    return lax.while_loop(lambda c: c[0] < count, body, init)[1]
