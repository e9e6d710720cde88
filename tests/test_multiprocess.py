"""Several devices and several processes give the results of one device, to round-off.

The replicate axis is split by a sharded program, which XLA compiles separately from the
one-device program: its fusions may order a sum differently, so an estimate can differ in
its last bits (measured: at most 1.8e-15 on estimates near 3). Statuses and iteration counts
are the same. Each run is a fresh interpreter: the device count and JAX's multi-process
runtime are fixed at start-up. Two processes on 127.0.0.1 with the gloo CPU collectives stand in for two
hosts (``jax.distributed.initialize`` with an explicit coordinator); two CPU devices come
from ``jax_num_cpu_devices``, the setting README.md gives instead of ``XLA_FLAGS``."""

import json
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

STUDY = textwrap.dedent(
    """
    import jaxmle as jm
    study = jm.simulation_study(jm.models.poisson(), {"rate": 3.0}, n=50, reps=300, seed=7, progress=False)
    fits = study.fits
    print("RESULT", json.dumps({
        "devices": jax.device_count(),
        "estimates": fits.estimates.tolist(),
        "se": fits.standard_errors.tolist(),
        "status": fits.status.astype(int).tolist(),
        "n_iter": fits.n_iter.tolist(),
    }))
    """
)


def run_script(prelude: str, timeout: float = 300) -> list[dict]:
    out = subprocess.run([sys.executable, "-c", prelude + STUDY], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(line[len("RESULT ") :]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]


def assert_same_fits(got: dict, want: dict) -> None:
    assert got["status"] == want["status"] and got["n_iter"] == want["n_iter"]
    for key in ("estimates", "se"):  # a few units in the last place (see the docstring)
        np.testing.assert_allclose(got[key], want[key], rtol=4 * np.finfo(float).eps, atol=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def one():
    (result,) = run_script("import json, jax\n")
    return result


@pytest.mark.slow
def test_two_cpu_devices_from_jax_num_cpu_devices_match_one(one):
    (two,) = run_script('import json, jax\njax.config.update("jax_num_cpu_devices", 2)\n')
    assert one["devices"] == 1 and two["devices"] == 2
    assert_same_fits(two, one)
    assert np.isfinite(np.asarray(one["se"])).all()


@pytest.mark.slow
def test_two_processes_match_one(one):
    port = free_port()
    procs = []
    for rank in range(2):
        prelude = textwrap.dedent(
            f"""
            import json, jax
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
            jax.distributed.initialize(coordinator_address="127.0.0.1:{port}", num_processes=2, process_id={rank})
            """
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", prelude + STUDY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    results = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr[-3000:]
            results += [json.loads(line[7:]) for line in stdout.splitlines() if line.startswith("RESULT ")]
    finally:
        for proc in procs:
            proc.kill()
    assert len(results) == 2
    for each in results:  # every process receives all results
        assert each["devices"] == 2
        assert_same_fits(each, one)
