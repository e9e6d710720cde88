"""What identifies a run of fits, so that a checkpoint is resumed only by the same computation.

Functions are fingerprinted by what they compute, not by their source: each is traced once
(no compiling) at the shapes it runs at, and the digest covers the text of the traced program
(its jaxpr) and the bytes of every constant in it. Whatever a function reads while it is
traced (module globals, closures, an object's attributes) is baked into that program, so
changing any of it changes the digest. A program that calls back into Python cannot be
checked this way and is refused.
"""

from __future__ import annotations

import hashlib
import json
import re

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import numpy as np

from . import _precision

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def run_fingerprint(prep, reps: int, kind: str, label: str) -> dict:
    """What identifies a run of ``prep`` (data digests are added by the caller): the traced
    log-likelihood and log-prior with their gradients at the data's shapes, in the fit's
    precision, every parameter's constraint, the priors and the solver settings."""
    problem = prep.problem
    with _precision.context(prep.dtype):
        free = problem.space.u_to_x_leaves(jnp.asarray(prep.u0, prep.dtype))
        loglik = lambda free, fixed, data: jnp.sum(problem.loglik_terms(free, fixed, data))
        log_prior = lambda free, fixed: problem.log_prior(problem.params(free, fixed))
        loglik_digest = program_digest("loglik", jax.value_and_grad(loglik), free, prep.fixed_leaves, prep.data)
        prior_digest = (
            None
            if problem.log_prior is None
            else program_digest("prior", jax.value_and_grad(log_prior), free, prep.fixed_leaves)
        )
    return {
        "kind": kind,
        "model": label,
        "loglik": loglik_digest,
        "reps": reps,
        "names": problem.space.names,
        "constraints": [repr(leaf.constraint) for leaf in problem.space.leaves],
        "method": prep.method_name,
        "tol": problem.tol,
        "max_iter": problem.max_iter,
        "dtype": str(prep.dtype),
        "prior": repr(problem.priors),
        "log_prior": prior_digest,
        "fixed": tree_digest(
            [np.asarray(v) for v in prep.fixed_leaves]
            + [np.asarray(leaf.held) for leaf in problem.space.leaves if leaf.held]
        ),
    }


def program_digest(name: str, fn, *args) -> str:
    """A digest of the program ``fn(*args)`` runs (traced at the arguments' shapes and dtypes,
    not their values): its jaxpr text and the bytes of its constants and literals, in every
    nested program. Raises ValueError naming ``name`` if it calls back into Python (debug
    printing aside), whose effect on the results no digest can see."""
    _precision.user_code_ran()
    closed = jax.make_jaxpr(fn)(*args)
    h = hashlib.blake2b(_ADDRESS.sub("", str(closed.jaxpr)).encode(), digest_size=16)
    callbacks = set()
    for jaxpr, consts in _programs(closed.jaxpr, closed.consts):
        h.update(tree_digest([_plain(c) for c in consts]).encode())
        for eqn in jaxpr.eqns:
            kind = eqn.primitive.name
            if kind.endswith("callback") and not kind.startswith("debug"):
                callbacks.add(kind)
            h.update(tree_digest([v.val for v in eqn.invars if isinstance(v, jex.Literal)]).encode())
    if callbacks:
        raise ValueError(
            f"checkpoint: {name} calls back into Python ({', '.join(sorted(callbacks))}), so a stored result cannot "
            "be verified to come from the same computation; run without a checkpoint"
        )
    return h.hexdigest()


def _programs(jaxpr, consts=()):
    """``(jaxpr, consts)`` for ``jaxpr`` and every program nested in its equations' parameters."""
    yield jaxpr, consts
    for eqn in jaxpr.eqns:
        for value in eqn.params.values():
            for inner in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(inner, jex.ClosedJaxpr):
                    yield from _programs(inner.jaxpr, inner.consts)
                elif isinstance(inner, jex.Jaxpr):
                    yield from _programs(inner)


def _plain(value):
    """A constant as plain numbers (a PRNG key as its key data)."""
    if jnp.issubdtype(jnp.result_type(value), jax.dtypes.prng_key):
        return jax.random.key_data(value)
    return value


def tree_digest(tree) -> str:
    """A digest of every leaf's shape, dtype and bytes."""
    h = hashlib.blake2b(digest_size=16)
    for leaf in jax.tree_util.tree_leaves(tree):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(json.dumps([a.shape, str(a.dtype)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()
