"""Workloads A and C on a GPU, float64 and float32: fits per second and memory-bandwidth share.

    python benchmarks/gpu.py [--reps-a 100000] [--reps-c 1000000]

Bandwidth share = (bytes of data read once per solver iteration, summed over the fits)
/ time / the device's peak memory bandwidth: a lower bound on the traffic (a Newton
iteration reads the data at least once), so the share is a floor too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from run import gaussian_data, logistic_data  # noqa: E402

PEAK_BYTES_PER_S = {"H100": 3.35e12, "H200": 4.8e12, "A100": 2.0e12, "L4": 3.0e11}


def peak_bandwidth(device) -> float:
    kind = getattr(device, "device_kind", "")
    for name, value in PEAK_BYTES_PER_S.items():
        if name in kind:
            return value
    return float("nan")


def measure(label, loglik, init, data, constraints, dtype, chunk_size):
    import jax

    import jaxmle as jm

    kw = dict(constraints=constraints, dtype=dtype, chunk_size=chunk_size, progress=False)
    jm.fit_batch(loglik, init, jax.tree_util.tree_map(lambda a: a[:chunk_size], data), **kw)  # compile
    t = time.perf_counter()
    res = jm.fit_batch(loglik, init, data, **kw)
    elapsed = time.perf_counter() - t
    R = len(np.asarray(res.converged))
    itemsize = np.dtype(dtype).itemsize
    per_fit_bytes = sum(np.asarray(a)[0].size for a in jax.tree_util.tree_leaves(data)) * itemsize
    traffic = per_fit_bytes * float(np.sum(np.asarray(res.n_iter)))
    share = traffic / elapsed / peak_bandwidth(jax.devices()[0])
    print(
        f"| {label} | {dtype} | {R} | {elapsed:.2f} s | {R / elapsed:,.0f} | {share:.1%} | "
        f"{int(np.sum(np.asarray(res.converged)))}/{R} |"
    )


def main(argv=None):
    import jax
    import jax.numpy as jnp
    from jax.scipy import stats

    import jaxmle as jm

    p = argparse.ArgumentParser()
    p.add_argument("--reps-a", type=int, default=100_000)
    p.add_argument("--reps-c", type=int, default=1_000_000)
    p.add_argument("--chunk-size", type=int, default=100_000)
    args = p.parse_args(argv)
    print(f"devices: {jax.devices()}")
    print("| workload | dtype | fits | time | fits/s | bandwidth share (floor) | converged |")
    print("|---|---|---|---|---|---|---|")
    X, y = logistic_data(args.reps_a)

    def logistic(p, d):
        eta = d["X"] @ p["beta"]
        return d["y"] * eta - jnp.logaddexp(0.0, eta)

    x = gaussian_data(args.reps_c)
    for dtype in ("float64", "float32"):
        measure(
            "A logistic n=1000 k=6",
            logistic,
            {"beta": np.zeros(6)},
            {"X": X, "y": y},
            None,
            dtype,
            min(args.chunk_size, args.reps_a),
        )
        measure(
            "C Gaussian n=100",
            lambda p, d: stats.norm.logpdf(d, p["mu"], p["sigma"]),
            {"mu": 0.0, "sigma": 1.0},
            x,
            {"sigma": jm.positive},
            dtype,
            min(args.chunk_size, args.reps_c),
        )


if __name__ == "__main__":
    main()
