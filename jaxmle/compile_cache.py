"""Opt-in use of JAX's persistent compilation cache: a repeated script loads the programs an
earlier process compiled instead of compiling them again. Nothing is written unless asked."""

from __future__ import annotations

import os
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

#: seconds a program must take to compile to be stored. JAX's default (1 s) stores none of
#: a single fit's programs on the CPU (0.2-0.6 s each); faster ones cost more to store than
#: to compile
MIN_COMPILE_TIME = 0.1


def compile_cache(path=None, *, enable: bool = True, min_compile_time: float = MIN_COMPILE_TIME) -> str | None:
    """Turn JAX's persistent compilation cache on (or, with ``enable=False``, off) for this
    process, and return the cache directory (None when off).

    ``path``: where to store the programs. Default: the directory already given to JAX
    (``JAX_COMPILATION_CACHE_DIR`` or ``jax_compilation_cache_dir``), which is never changed,
    else ``$XDG_CACHE_HOME/jaxmle/xla`` (``~/.cache/jaxmle/xla``). Results are unchanged: a
    cache hit loads the very executable that compiling would produce."""
    if not isinstance(enable, bool):
        raise TypeError(f"enable must be True or False, got {enable!r}")
    if not enable:
        return _switch_off()
    if not (isinstance(min_compile_time, (int, float)) and min_compile_time >= 0):
        raise ValueError(f"min_compile_time must be a number of seconds >= 0, got {min_compile_time!r}")
    directory = _directory(path)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time))
    jax.config.update("jax_enable_compilation_cache", True)
    _jax_cache.reset_cache()  # JAX settles its cache at the first compile; take effect now
    return directory


def _switch_off() -> None:
    jax.config.update("jax_enable_compilation_cache", False)
    _jax_cache.reset_cache()


def _directory(path) -> str:
    """The cache directory to use, checked and created; one JAX already has is kept as is."""
    current = jax.config.jax_compilation_cache_dir
    if path is None and current:
        return current
    if path is None:
        directory = _default_directory()
    elif isinstance(path, (str, os.PathLike)):
        directory = Path(path).expanduser()
    else:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"path {str(directory)!r} is a file, not a directory")
    if current and Path(current).expanduser().resolve() != directory.resolve():
        raise ValueError(
            f"path {str(directory)!r}: JAX's compilation cache is already at {current!r} "
            "(jax_compilation_cache_dir), which jaxmle leaves as it is; call compile_cache() without path"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"path {str(directory)!r} cannot be created: {err}") from None
    return str(directory)


def _default_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxmle" / "xla"
