"""benchmarks/gpu.py runs end to end on the CPU at tiny sizes: every row, CPU agreement, n/a for
the device-only columns."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROWS = [(w, dtype) for w in ("A", "C", "GLMM") for dtype in ("float64", "float32")]


@pytest.mark.slow
def test_gpu_script_quick_on_cpu():
    sizes = ["--reps-a", "64", "--reps-c", "256", "--reps-glmm", "8", "--reference-reps", "8", "--budget-s", "250"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--quick", *sizes],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "default backend is the CPU" in proc.stdout
    table = [line.split("|")[1:-1] for line in proc.stdout.splitlines() if line.startswith("| ")][1:]
    assert [(c[0].split()[0], c[1].strip()) for c in table] == ROWS
    for workload, dtype, fits, _, _, bandwidth, memory, agreement, converged in (map(str.strip, c) for c in table):
        assert (bandwidth, memory) == ("n/a", "n/a"), workload
        assert converged == f"{fits}/{fits}", workload
        if dtype == "float64":  # the same CPU programs in two processes
            assert max(float(d) for d in agreement.split("/")) < 1e-6, (workload, agreement)
