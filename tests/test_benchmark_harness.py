"""The benchmark harness runs end to end at tiny sizes and its peers agree with jaxmle."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_smoke_run(tmp_path):
    pytest.importorskip("statsmodels")
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--only", "A", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith("| A |")]
    assert any("jaxmle fit_batch" in r for r in rows) and any("NumPy IRLS" in r for r in rows)
    # the IRLS and statsmodels agree with jaxmle's estimates far below the 1e-6 goal
    for tool in ("NumPy IRLS", "statsmodels Logit"):
        row = next(r for r in rows if tool in r)
        agreement = float(row.split("|")[9])
        assert agreement < 1e-8, row
