"""float64 by default, without touching JAX's global configuration or the caller's code.

Every jaxmle entry point runs its JAX work inside ``context(dtype)``. For float64 that is
``jax.enable_x64(True)``, a scoped (thread-local) switch undone on exit, plus one guard.

The guard: JAX (jaxlib 0.9.2 and later) caches the conversion of each NumPy array to a
JAX value, keyed by the array object alone and not by the precision in force. A NumPy
array that a log-likelihood closes over is converted once inside the fit (to float64)
and the cached float64 value is then handed to the caller's own float32 code after the
fit, which crashes ("expected f32[500,3] but got f64[500,3]"); the reverse order feeds a
float32 copy into a float64 fit. A cache entry lives only as long as its converted value,
and what keeps those values alive is JAX's tracing caches (traced programs hold their
constants); compiled executables do not. So the outermost float64 context clears JAX's
tracing caches on exit when the user's code (log-likelihood, prior, simulator) ran inside
it (``user_code_ran``), and on entry when anything was traced outside it since the last
clearing (the caller's float32 programs): neither side ever sees the other's conversions.
Compiled executables stay cached, so a repeated fit with same-shaped data neither
retraces nor recompiles nor clears anything. Nothing is cleared when x64 is already
enabled globally (then every conversion is float64 anyway).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import warnings

import jax
import numpy as np

_depth = 0
_lock = threading.Lock()
#: whether JAX traced anything outside a float64 context since the caches were last
#: cleared (unknown at first), and whether the user's code ran inside one
_traced_outside = True
_user_code_ran = False
TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"


def resolve(dtype) -> np.dtype:
    """The floating dtype for a fit: float64 unless float32 is asked for."""
    dt = np.dtype("float64" if dtype is None else dtype)
    if dt not in (np.dtype("float32"), np.dtype("float64")):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


@contextlib.contextmanager
def context(dtype):
    """Run JAX work at ``dtype``'s precision, leaving no trace in the caller's JAX state."""
    if np.dtype(dtype) != np.float64 or jax.config.jax_enable_x64:
        yield
        return
    with _outermost_guard(), jax.enable_x64(True):
        yield


@contextlib.contextmanager
def _outermost_guard():
    """When the first float64 context (in any thread) opens, clear JAX's tracing caches if
    the caller traced anything since they were last cleared; when the last one closes,
    if the user's code ran inside."""
    global _depth, _traced_outside, _user_code_ran
    with _lock:
        _depth += 1
        if _depth == 1:
            _listen_for_traces()
            if _traced_outside:
                clear_tracing_caches()
            _traced_outside = _user_code_ran = False
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _user_code_ran:
                clear_tracing_caches()
            if _depth == 0:
                _traced_outside = _user_code_ran = False


def user_code_ran() -> None:
    """Record that the user's function runs (is traced or called) now: inside a float64
    context its NumPy constants are converted to float64, which the context's exit must
    not leave behind."""
    global _user_code_ran
    _user_code_ran = True


def _on_event(event: str, duration: float, **kwargs) -> None:
    global _traced_outside
    if event == TRACE_EVENT and _depth == 0:
        _traced_outside = True


def _listen_for_traces() -> None:
    """Register ``_on_event`` once (again if the user cleared JAX's listeners)."""
    from jax._src import monitoring

    listening = getattr(monitoring, "get_event_duration_listeners", lambda: monitoring._event_duration_secs_listeners)
    if _on_event not in listening():
        monitoring.register_event_duration_secs_listener(_on_event)


def clear_tracing_caches() -> None:
    """Drop JAX's Python-side tracing and lowering caches (not the compiled executables
    behind each jitted function's fast path), then the reference cycles that held them."""
    from jax._src import util

    clear = getattr(util, "clear_all_caches", None)
    if clear is None:  # a JAX without the staging-cache registry: clear everything
        jax.clear_caches()
    else:
        clear()
    gc.collect()


class PrecisionWarning(UserWarning):
    """Warned when a float64 fit captures constants made in lower precision."""


def warn_low_precision_constants(name: str, shapes: list[tuple[int, ...]]) -> None:
    """Warn (``PrecisionWarning``) that ``name`` captured float32 arrays of these shapes."""
    if shapes:
        listed = ", ".join(str(s) for s in shapes[:5]) + (f" and {len(shapes) - 5} more" if len(shapes) > 5 else "")
        warnings.warn(
            f"{name} captures {len(shapes)} float32 array(s) of shape {listed} in a float64 fit: "
            "they carry float32 rounding (about 1e-7 relative) into every result; make them with NumPy, "
            "or pass them in data",
            PrecisionWarning,
            stacklevel=4,
        )


def low_precision_constants(closed_jaxpr, dtype) -> list[tuple[int, ...]]:
    """The shapes of the floating constants narrower than ``dtype`` that a traced program
    captured (arrays it closes over, in nested programs too): values made in float32
    before a float64 fit, which would carry float32 rounding into it."""
    width = np.dtype(dtype).itemsize
    shapes, seen = [], set()

    def visit(closed):
        if id(closed) in seen:
            return
        seen.add(id(closed))
        for const in getattr(closed, "consts", ()):
            kind = np.dtype(getattr(const, "dtype", np.float64))
            if np.issubdtype(kind, np.floating) and kind.itemsize < width:
                shapes.append(tuple(np.shape(const)))
        jaxpr = getattr(closed, "jaxpr", closed)
        for eqn in getattr(jaxpr, "eqns", ()):
            for param in eqn.params.values():
                for sub in param if isinstance(param, (list, tuple)) else (param,):
                    if hasattr(sub, "eqns") or hasattr(sub, "consts"):
                        visit(sub)

    visit(closed_jaxpr)
    return shapes
