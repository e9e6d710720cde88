"""Suite-wide hygiene. Deliberately no precision setting: tests must see jaxmle's own
float64 handling, as users do."""

import jax
import pytest


@pytest.fixture(autouse=True, scope="module")
def drop_compiled_programs():
    """Drop JAX's compiled programs after each test module. XLA's CPU backend maps memory
    for every executable it keeps; the whole suite in one process compiles enough programs
    to reach the kernel's limit on memory mappings (65,530), where the next compilation
    aborts the process."""
    yield
    jax.clear_caches()
