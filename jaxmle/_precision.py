"""float64 by default, without touching JAX's global configuration.

Every jaxmle entry point runs its JAX work inside ``context(dtype)``: for float64 that is
``jax.enable_x64(True)``, a scoped (thread-local) switch that is undone on exit, so the
caller's configuration is left exactly as it was. Compiled code is cached per precision.
"""

from __future__ import annotations

import contextlib

import jax
import numpy as np


def resolve(dtype) -> np.dtype:
    """The floating dtype for a fit: float64 unless float32 is asked for."""
    dt = np.dtype("float64" if dtype is None else dtype)
    if dt not in (np.dtype("float32"), np.dtype("float64")):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def context(dtype):
    dt = np.dtype(dtype)
    return jax.enable_x64(True) if dt == np.float64 else contextlib.nullcontext()
