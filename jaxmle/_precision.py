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
it (``user_code_ran``), unless its traced program is known to hold no NumPy constants.
The reverse order (the caller's float32 program still holding its conversion of an array
the log-likelihood captures) shows in the log-likelihood's traced program as a float32
NumPy constant in a float64 fit; ``fit`` then clears the caches and traces again
(``fit.check_traced_loglik``). Compiled executables stay cached, so a repeated fit with
same-shaped data neither retraces nor recompiles nor clears anything. Nothing is cleared
when x64 is already enabled globally (then every conversion is float64 anyway).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import warnings
import weakref

import jax
import jax.numpy as jnp
import numpy as np

_depth = 0
_lock = threading.Lock()
#: whether the user's code ran inside the current outermost float64 context
_user_code_ran = False


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
    """When the last float64 context (in any thread) closes, clear JAX's tracing caches
    if the user's code ran inside."""
    global _depth, _user_code_ran
    with _lock:
        _depth += 1
        if _depth == 1:
            _user_code_ran = False
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _user_code_ran:
                _user_code_ran = False
                clear_tracing_caches()


def user_code_ran(fn=None) -> None:
    """Record that the user's function ``fn`` runs (is traced or called) now: inside a
    float64 context the NumPy arrays it closes over are converted to float64, which the
    context's exit must not leave behind. Nothing to record for a function known to
    close over none (``captures_no_numpy``)."""
    global _user_code_ran
    try:
        if fn is not None and fn in _NUMPY_FREE:
            return
    except TypeError:  # not weakly referenceable: assume it may capture arrays
        pass
    _user_code_ran = True


def captures_no_numpy(fn) -> None:
    """Remember that ``fn``'s traced program holds no NumPy constants (see
    ``captured_constants``), so that running it needs no clearing."""
    try:
        _NUMPY_FREE.add(fn)
    except TypeError:
        pass


#: the user's functions whose traced programs hold no NumPy constants
_NUMPY_FREE: weakref.WeakSet = weakref.WeakSet()


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


def captured_constants(closed_jaxpr) -> list:
    """The arrays a traced program captured: its constants and the non-scalar literals of
    its equations, in nested programs too."""
    found, seen = [], set()

    def visit(closed):
        if id(closed) in seen:
            return
        seen.add(id(closed))
        found.extend(getattr(closed, "consts", ()))
        jaxpr = getattr(closed, "jaxpr", closed)
        for eqn in getattr(jaxpr, "eqns", ()):
            found.extend(v.val for v in eqn.invars if np.ndim(getattr(v, "val", None)) > 0)
            for param in eqn.params.values():
                for sub in param if isinstance(param, (list, tuple)) else (param,):
                    if hasattr(sub, "eqns") or hasattr(sub, "consts"):
                        visit(sub)

    visit(closed_jaxpr)
    return found


def captures_numpy(constants) -> bool:
    """Whether any captured constant came from a NumPy array (JAX keeps those as NumPy
    arrays in the program, and caches their conversion by the array)."""
    return any(isinstance(c, np.ndarray) for c in constants)


def low_precision(constants, dtype) -> list:
    """The captured floating constants narrower than ``dtype``: values made in float32
    before a float64 fit, which would carry float32 rounding into it."""
    width = np.dtype(dtype).itemsize
    narrow = []
    for const in constants:
        kind = np.dtype(getattr(const, "dtype", np.float64))
        if np.issubdtype(kind, np.floating) and kind.itemsize < width:
            narrow.append(const)
    return narrow


def to_device(data, dtype):
    """Floating leaves of ``data`` to ``dtype``; others as they are."""

    def convert(leaf):
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.floating):
            return jnp.asarray(arr, dtype)
        return jnp.asarray(arr)

    return jax.tree_util.tree_map(convert, data)
