"""jm.compile_cache: JAX's persistent compilation cache, opt-in, switchable, results unchanged."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import pytest
from jax.experimental.compilation_cache import compilation_cache

import jaxmle as jm

SETTINGS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
    "jax_enable_compilation_cache",
)

#: a first fit in a fresh process; prints its estimates' bytes and the cache hits and misses
SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    import numpy as np, jax, jaxmle as jm
    counts = {"hit": 0, "miss": 0}
    class Count(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            counts["hit"] += msg.startswith("Persistent compilation cache hit")
            counts["miss"] += msg.startswith("PERSISTENT COMPILATION CACHE MISS")
    log = logging.getLogger("jax._src.compiler"); log.setLevel(logging.DEBUG); log.addHandler(Count())
    if sys.argv[1] != "off":
        jm.compile_cache(sys.argv[1], min_compile_time=0)  # store all, however fast this machine
    ll = lambda p, d: jax.scipy.stats.norm.logpdf(d, p["mu"], p["sigma"])
    x = np.random.default_rng(0).normal(2.0, 1.5, size=(30, 40) if sys.argv[2] == "batch" else 200)
    fit = jm.fit_batch if sys.argv[2] == "batch" else jm.fit
    res = fit(ll, {"mu": 0.0, "sigma": 1.0}, x, constraints={"sigma": jm.positive})
    leaves = jax.tree.leaves((res.params, res.se, res.information))
    counts["estimates"] = b"".join(np.asarray(v).tobytes() for v in leaves).hex()
    print("RESULT", json.dumps(counts))
    """
)


@pytest.fixture
def restore_jax_cache():
    """Start with no cache directory; leave JAX's cache settings as they were, for the tests
    that follow in this process."""
    saved = {name: getattr(jax.config, name) for name in SETTINGS}
    jax.config.update("jax_compilation_cache_dir", None)
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


def first_fit(cache: str, kind: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, cache, kind], capture_output=True, text=True, check=True, env=env, timeout=300
    )
    return json.loads(out.stdout.split("RESULT", 1)[1])


def check_bit_identical(tmp_path, kind):
    cache = str(tmp_path / "cache")
    off, cold, warm = first_fit("off", kind), first_fit(cache, kind), first_fit(cache, kind)
    assert cold["miss"] > 0 and os.listdir(cache)
    assert warm["hit"] > 0 and warm["miss"] == 0
    assert off["estimates"] == cold["estimates"] == warm["estimates"]


def test_fit_is_bit_identical_with_and_without_the_cache_across_processes(tmp_path):
    check_bit_identical(tmp_path, "fit")


@pytest.mark.slow
def test_fit_batch_is_bit_identical_with_and_without_the_cache_across_processes(tmp_path):
    check_bit_identical(tmp_path, "batch")


def fresh_program_writes(directory) -> bool:
    """Whether compiling a program never seen before adds an entry to ``directory``."""
    before = set(os.listdir(directory))
    jax.jit(lambda v: jnp.sin(v) * 1.2345).lower(jnp.zeros(3)).compile()
    return set(os.listdir(directory)) != before


def test_switch_on_then_off(tmp_path, restore_jax_cache):
    directory = jm.compile_cache(tmp_path, min_compile_time=0)
    assert directory == str(tmp_path) and fresh_program_writes(tmp_path)
    assert jm.compile_cache(enable=False) is None
    assert not jax.config.jax_enable_compilation_cache
    assert not fresh_program_writes(tmp_path)


def test_default_directory_and_a_directory_given_to_jax_are_kept(tmp_path, monkeypatch, restore_jax_cache):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert jm.compile_cache() == str(tmp_path / "jaxmle" / "xla")
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "mine"))
    assert jm.compile_cache() == str(tmp_path / "mine")
    with pytest.raises(ValueError, match="path .*already at"):
        jm.compile_cache(tmp_path / "other")
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"path": "FILE"}, ValueError, "path .* is a file"),
        ({"path": 3}, TypeError, "path must be"),
        ({"min_compile_time": -1}, ValueError, "min_compile_time"),
        ({"enable": "no"}, TypeError, "enable"),
    ],
)
def test_bad_input_raises_before_anything_changes(tmp_path, restore_jax_cache, kwargs, error, match):
    (tmp_path / "FILE").write_text("")
    kwargs = {k: tmp_path / v if v == "FILE" else v for k, v in kwargs.items()}
    before = {name: getattr(jax.config, name) for name in SETTINGS}
    with pytest.raises(error, match=match):
        jm.compile_cache(**kwargs)
    assert {name: getattr(jax.config, name) for name in SETTINGS} == before
