"""Long sums as sums of short blocks, so that XLA CPU fuses them with what feeds them.

XLA CPU rewrites every sum over an axis longer than 32 into a windowed partial sum
(``reduce-window``) followed by a sum of the partials: a tree, for accuracy. The windowed
sum does not fuse with the arithmetic that produces its input, so each such sum writes its
whole input to memory and reads it back. A log-likelihood's value, gradient and Hessian
hold several such sums per evaluation (the user's sum over observations and, from
autodiff, one per parameter broadcast over the observations).

``with_short_sums(fn)`` traces ``fn`` and replays it with every such sum over one long
axis split in two: sums over consecutive blocks of ``BLOCK`` terms, which XLA fuses with
the producer, then the sum of the block sums (which XLA treats as before). An optimization
barrier between the two keeps XLA from merging them back into one long sum. On the
benchmark's Gaussian fits (n = 100) one value-gradient-Hessian pass went from 0.48 to 0.28
µs per fit (benchmarks/NOTES.md).

Accuracy: each term of a sum of n reaches the total through at most BLOCK + 32 +
n / (32 BLOCK) roundings (one more for the n mod BLOCK terms left over), against 32 + n / 32
for XLA's own tree. The error bound, that count times the unit roundoff times the sum of
the magnitudes, is about the same up to a few hundred terms and smaller beyond; a running
sum would reach n.

Meant for the CPU backend; other backends emit their own reductions.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax import lax
from jax.extend.core import ClosedJaxpr, Literal
from jax.extend.core import primitives as prims

#: axes up to this length are summed directly by XLA CPU (its tree-reduction window)
DIRECT = 32
#: terms per block (4, 8, 16 and 32 measured; 4 was fastest or within noise of the fastest)
BLOCK = 4


def with_short_sums(fn: Callable) -> Callable:
    """``fn`` (a function of arrays and pytrees of arrays, as ``jax.jit`` takes) with every
    sum over an axis longer than ``DIRECT`` computed in blocks of ``BLOCK``, inside loops,
    conditionals and nested jits too. Same outputs up to rounding."""

    def wrapped(*args):
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
        out = _replay(closed, jax.tree_util.tree_leaves(args))
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), out)

    return wrapped


def short_sums_on_cpu(fn: Callable) -> Callable:
    """``with_short_sums(fn)`` when JAX runs on the CPU; ``fn`` itself elsewhere."""
    return with_short_sums(fn) if jax.default_backend() == "cpu" else fn


def _blocked_sum(x, params):
    """``reduce_sum`` of ``x`` with ``params``, split into block sums where an axis is long."""
    axes = params["axes"]
    if len(axes) != 1 or x.shape[axes[0]] <= DIRECT:
        return prims.reduce_sum_p.bind(x, **params)
    (axis,) = axes
    n = x.shape[axis]
    rest = n % BLOCK
    head = lax.slice_in_dim(x, 0, n - rest, axis=axis)
    blocks = head.reshape(x.shape[:axis] + ((n - rest) // BLOCK, BLOCK) + x.shape[axis + 1 :])
    block_sums = lax.optimization_barrier(prims.reduce_sum_p.bind(blocks, **{**params, "axes": (axis + 1,)}))
    total = prims.reduce_sum_p.bind(block_sums, **params)
    if rest:
        total = total + prims.reduce_sum_p.bind(lax.slice_in_dim(x, n - rest, n, axis=axis), **params)
    return total


def _replay(closed: ClosedJaxpr, args) -> list:
    """Evaluate ``closed`` on ``args``, binding each equation again with its sums blocked.

    Nested jits and custom-derivative calls are inlined (the result is not differentiated
    again); loops and conditionals are bound with their bodies rewritten the same way."""
    env = {}

    def read(v):
        return v.val if isinstance(v, Literal) else env[v]

    env.update(zip(closed.jaxpr.constvars, closed.consts))
    env.update(zip(closed.jaxpr.invars, args))
    for eqn in closed.jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        prim = eqn.primitive
        with eqn.ctx.manager:
            if prim is prims.reduce_sum_p:
                out = [_blocked_sum(invals[0], eqn.params)]
            elif prim is prims.jit_p:
                out = _replay(eqn.params["jaxpr"], invals)
            elif prim in (prims.custom_jvp_call_p, prims.custom_vjp_call_p):
                out = _replay(eqn.params["call_jaxpr"], invals)
            else:
                out = _bind(prim, invals, {k: _rewrite_param(v) for k, v in eqn.params.items()})
        env.update(zip(eqn.outvars, out))
    return [read(v) for v in closed.jaxpr.outvars]


def _bind(prim, invals, params) -> list:
    """``prim`` bound to ``invals`` as ``jax.core.eval_jaxpr`` binds it; its outputs as a list.
    (``get_bind_params`` returns the parameters, or in older JAX releases a pair (functions,
    parameters).)"""
    bind_params = prim.get_bind_params(params)
    subfuns, bind_params = bind_params if isinstance(bind_params, tuple) else ((), bind_params)
    out = prim.bind(*subfuns, *invals, **bind_params)
    return out if prim.multiple_results else [out]


def _rewrite_param(value):
    """A parameter holding closed jaxprs (a body, or a tuple or named tuple of them, as loops,
    conditionals and linear solves hold) with those rewritten; any other left as it is."""
    if isinstance(value, ClosedJaxpr):
        return _rewrite(value)
    if isinstance(value, tuple) and any(isinstance(v, ClosedJaxpr) for v in value):
        items = [_rewrite(v) if isinstance(v, ClosedJaxpr) else v for v in value]
        return value._make(items) if hasattr(value, "_make") else tuple(items)
    return value


def _rewrite(closed: ClosedJaxpr) -> ClosedJaxpr:
    avals = [jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type) for a in closed.in_avals]
    return jax.make_jaxpr(lambda *args: _replay(closed, args))(*avals)
