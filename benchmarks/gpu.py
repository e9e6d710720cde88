"""Workloads A, C and a GLMM study on one accelerator: fits per second, agreement with the CPU,
share of peak memory bandwidth and peak device memory, as a Markdown table for RESULTS.md.

    python benchmarks/gpu.py [--quick] [--reps-a 100000] [--reps-c 1000000] [--reps-glmm 10000]
                             [--reference-reps 256] [--budget-s 270] [--chunk-size 100000]

- A: logistic regression, n = 1000, 6 coefficients; C: Gaussian mean and sd, n = 100; GLMM:
  the random-intercept logistic of benchmarks/mixed.py, workload (a) (30 groups of 10,
  Laplace); each in float64 and float32. ``--quick``: 2,000 / 20,000 / 64 replicates (about
  two minutes on a 2-core CPU, nearly all of it compiling).
- fits/s: replicates / wall time of one ``fit_batch`` call, compiled beforehand (on one replicate).
- CPU agreement: the first ``--reference-reps`` replicates of each workload are fitted again in
  float64 by this script in a subprocess with ``JAX_PLATFORMS=cpu``; the column gives the largest
  relative difference of the estimates, SEs and log-likelihoods over the replicates converged in
  both. float32 rows are compared with that float64 fit.
- bandwidth share (floor): bytes of data read once per solver iteration, summed over the fits,
  / time / the devices' peak memory bandwidth: a lower bound on the traffic (an iteration reads
  the data at least once). n/a on the CPU and for device kinds not in ``PEAK_BYTES_PER_S``.
- peak memory: the largest ``memory_stats()["peak_bytes_in_use"]`` of the devices after the row
  (the peak of the process so far); n/a where a device does not report it (the CPU).
- ``--budget-s``: rows not started once the run has taken this long are skipped with a note
  (the default keeps a full run under 5 minutes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import stats

import jaxmle as jm

sys.path.insert(0, str(Path(__file__).parent))
from mixed import intercept_data, intercept_joint  # noqa: E402
from run import gaussian_data, logistic_data, rel_diff  # noqa: E402

PEAK_BYTES_PER_S = {"H100": 3.35e12, "H200": 4.8e12, "A100": 2.0e12, "L4": 3.0e11}
QUICK_REPS = {"A": 2_000, "C": 20_000, "GLMM": 64}
FULL_REPS = {"A": 100_000, "C": 1_000_000, "GLMM": 10_000}


def logistic(p, d):
    eta = d["X"] @ p["beta"]
    return d["y"] * eta - jnp.logaddexp(0.0, eta)


def gaussian(p, d):
    return stats.norm.logpdf(d["x"], p["mu"], p["sigma"])


@dataclass
class Workload:
    label: str
    loglik: Callable
    init: dict
    options: dict
    data: Callable  # replicates -> data, every leaf with a leading replicate axis
    dtypes: tuple


WORKLOADS = {
    "A": Workload(
        "A logistic n=1000 k=6",
        logistic,
        {"beta": np.zeros(6)},
        {},
        lambda R: dict(zip(("X", "y"), logistic_data(R))),
        ("float64", "float32"),
    ),
    "C": Workload(
        "C Gaussian n=100",
        gaussian,
        {"mu": 0.0, "sigma": 1.0},
        {"constraints": {"sigma": jm.positive}},
        lambda R: {"x": gaussian_data(R)},
        ("float64", "float32"),
    ),
    "GLMM": Workload(
        "GLMM random-intercept logistic 30x10",
        intercept_joint,
        {"beta": np.zeros(2), "sd": 1.0, "u": np.zeros(30)},
        {"constraints": {"sd": jm.positive}, "random": ["u"]},
        lambda R: dict(zip(("x", "y", "g"), intercept_data(R))),
        ("float64", "float32"),
    ),
}


def fit(w: Workload, data, dtype, chunk_size=None):
    return jm.fit_batch(w.loglik, w.init, data, dtype=dtype, chunk_size=chunk_size, progress=False, **w.options)


def first(data, n):
    return {key: a[:n] for key, a in data.items()}


def cpu_reference(folder: Path) -> None:
    """Fit the replicates in ``folder/data.npz`` (keys ``workload/leaf``) in float64 and write
    estimates, SEs, log-likelihoods and convergence to ``folder/reference.npz``."""
    share_compiled(folder)
    with np.load(folder / "data.npz") as f:
        arrays = dict(f)
    out = {}
    for name, w in WORKLOADS.items():
        data = {key.split("/")[1]: a for key, a in arrays.items() if key.split("/")[0] == name}
        res = fit(w, data, "float64")
        out |= {f"{name}/est": res.estimates, f"{name}/se": res.standard_errors}
        out |= {f"{name}/loglik": res.loglik, f"{name}/converged": res.converged}
    np.savez(folder / "reference.npz", **out)


def run_reference(folder: Path, data: dict, n: int, timeout: float):
    """The CPU's float64 fits of the first ``n`` replicates of every workload, from a subprocess
    with ``JAX_PLATFORMS=cpu`` (whatever the installed jax) working in ``folder``, or None and why not."""
    np.savez(folder / "data.npz", **{f"{name}/{k}": a[:n] for name, d in data.items() for k, a in d.items()})
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--cpu-reference", str(folder)],
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, f"CPU reference not finished within the budget ({timeout:.0f} s)"
    if done.returncode != 0:
        return None, "CPU reference failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    with np.load(folder / "reference.npz") as f:
        return dict(f), ""


def share_compiled(folder: Path) -> None:
    """JAX's compilation cache in ``folder`` (or where JAX already keeps one), for this script and
    its CPU reference: where both run on the CPU, the reference's programs are the rows' float64 ones."""
    jm.compile_cache(None if jax.config.jax_compilation_cache_dir else folder / "xla")


def peak_bandwidth(devices) -> float:
    """The devices' summed peak memory bandwidth in bytes/s; NaN on the CPU or for an unknown kind."""
    if devices[0].platform == "cpu":
        return float("nan")
    kind = devices[0].device_kind
    return len(devices) * next((value for name, value in PEAK_BYTES_PER_S.items() if name in kind), float("nan"))


def peak_memory(devices) -> str:
    """The largest peak of bytes in use on any device, or n/a where a device keeps no count."""
    peaks = [(d.memory_stats() or {}).get("peak_bytes_in_use") for d in devices]
    return "n/a" if None in peaks else f"{max(peaks) / 2**30:.2f} GiB"


def agreement(res, ref, name: str) -> str:
    """Largest relative differences from the CPU fit (estimates / SEs / log-likelihoods) over the
    replicates converged in both."""
    if ref is None:
        return "n/a"
    n = len(ref[f"{name}/converged"])
    both = np.asarray(res.converged[:n]) & ref[f"{name}/converged"]
    mine = {"est": res.estimates, "se": res.standard_errors, "loglik": res.loglik}
    diffs = [rel_diff(a[:n][both], ref[f"{name}/{key}"][both]) for key, a in mine.items()]
    return " / ".join(f"{d:.1e}" for d in diffs)


def measure(name: str, data, dtype: str, chunk_size: int, ref) -> str:
    """One table row: the timed fit of every replicate after a compiling fit of one."""
    w = WORKLOADS[name]
    fit(w, first(data, 1), dtype, chunk_size)  # compiles: every chunk runs the same program
    t = time.perf_counter()
    res = fit(w, data, dtype, chunk_size)
    elapsed = time.perf_counter() - t
    R = len(res.converged)
    per_fit_bytes = sum(
        a[0].size * (np.dtype(dtype).itemsize if np.issubdtype(a.dtype, np.floating) else a.itemsize)
        for a in data.values()
    )
    share = per_fit_bytes * float(np.sum(res.n_iter)) / elapsed / peak_bandwidth(jax.devices())
    return (
        f"| {w.label} | {dtype} | {R:,} | {elapsed:.2f} s | {R / elapsed:,.0f} | "
        f"{'n/a' if np.isnan(share) else f'{share:.1%}'} | {peak_memory(jax.devices())} | "
        f"{agreement(res, ref, name)} | {int(np.sum(res.converged)):,}/{R:,} |"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small replicate counts: " + str(QUICK_REPS))
    p.add_argument("--reps-a", type=int, help=f"workload A's replicates (default {FULL_REPS['A']:,})")
    p.add_argument("--reps-c", type=int, help=f"workload C's replicates (default {FULL_REPS['C']:,})")
    p.add_argument("--reps-glmm", type=int, help=f"the GLMM's replicates (default {FULL_REPS['GLMM']:,})")
    p.add_argument("--reference-reps", type=int, default=256, help="replicates fitted on the CPU too")
    p.add_argument("--budget-s", type=float, default=270.0, help="rows not started by then are skipped")
    p.add_argument("--chunk-size", type=int, default=100_000)
    p.add_argument("--cpu-reference", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.cpu_reference is not None:
        return cpu_reference(args.cpu_reference)
    start = time.perf_counter()
    counts = QUICK_REPS if args.quick else FULL_REPS
    reps = {name: given or counts[name] for name, given in zip(WORKLOADS, (args.reps_a, args.reps_c, args.reps_glmm))}
    kinds = sorted({f"{d.platform} {d.device_kind}" for d in jax.devices()})
    command = " ".join(["python benchmarks/gpu.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"jax {jax.__version__}; devices: {jax.device_count()} x {', '.join(kinds)}; command: `{command}`")
    if jax.default_backend() == "cpu":
        print("\ndefault backend is the CPU: the rows are CPU fits, compared with a second CPU process")
    data = {name: w.data(reps[name]) for name, w in WORKLOADS.items()}
    print(
        "\n| workload | dtype | fits | time | fits/s | bandwidth share (floor) | peak device memory | "
        "CPU agreement (est / SE / loglik) | converged |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    skipped = 0
    with tempfile.TemporaryDirectory() as tmp:
        share_compiled(Path(tmp))
        left = max(1.0, args.budget_s - (time.perf_counter() - start))
        ref, why = run_reference(Path(tmp), data, args.reference_reps, left)
        for name, w in WORKLOADS.items():
            for dtype in w.dtypes:
                if time.perf_counter() - start > args.budget_s:
                    skipped += 1
                    print(f"| {w.label} | {dtype} | {reps[name]:,} | skipped | | | | | |")
                    continue
                print(measure(name, data[name], dtype, min(args.chunk_size, reps[name]), ref), flush=True)
    n = {name: min(args.reference_reps, r) for name, r in reps.items()}
    print(
        f"\nCPU agreement: largest relative difference from float64 fits on the CPU (JAX_PLATFORMS=cpu, "
        f"a subprocess) of the first {n['A']:,} / {n['C']:,} / {n['GLMM']:,} replicates of A / C / GLMM, "
        "over those converged in both; float32 rows are compared with the float64 CPU fit."
    )
    if why:
        print(why)
    if skipped:
        print(f"{skipped} row(s) skipped: the budget of {args.budget_s:.0f} s (--budget-s) was spent")
    print(f"Whole run: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
