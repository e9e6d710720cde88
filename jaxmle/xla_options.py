"""XLA compiler options: for one-off programs, where compiling dominates, and for batches."""

from __future__ import annotations

import functools

import jax
import numpy as np

#: XLA CPU options for one-off fits on small data, where compiling dominates the run time
#: (measured on a logistic fit: compile 0.35 s instead of 1.0 s, run 1.3 ms instead of 1.6 ms)
QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
#: data at or below this many elements counts as small
QUICK_COMPILE_MAX_ELEMENTS = 1_000_000


def quick_options() -> dict | None:
    """``QUICK_COMPILE`` on the CPU, else None."""
    return QUICK_COMPILE if jax.default_backend() == "cpu" else None


#: XLA CPU options for batched solves: without YNNPACK's library fusions XLA emits the
#: small per-replicate reductions itself, 13-30% faster on benchmark workloads B and C
#: and no slower on A (benchmarks/NOTES.md)
BATCH_CPU = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.lru_cache(maxsize=1)
def batch_options() -> dict | None:
    """``BATCH_CPU`` on the CPU, where this XLA knows the option; else None."""
    if jax.default_backend() != "cpu":
        return None
    try:
        jax.jit(lambda v: v + 1, compiler_options=BATCH_CPU).lower(np.zeros(2)).compile()
    except Exception:  # an XLA without YNNPACK fusions rejects the unknown option
        return None
    return BATCH_CPU
