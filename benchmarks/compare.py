"""jaxmle alone on workloads A, B and C, for comparing source trees or methods in one process.

    python benchmarks/compare.py [--tree DIR ...] [--method METHOD ...] [--repeat N] [--only A ...]

Times ``fit_batch`` on run.py's own data (A: 1,000 logistic fits; B: 10,000 Weibull fits
started where the peers start; C: 100,000 Gaussian fits from (0, 1) and from the truth)
and prints, per tree and method, µs per fit (the best wall time and the median CPU time of
``--repeat`` calls after a warm-up call), mean iterations and the number converged.

Every tree (``--tree``, repeatable; default: this checkout) is imported in the same
process under its own package name (jaxmle's modules import each other relatively), and
the calls of all trees and methods are interleaved, so that the drift of a shared machine
hits them alike: separate processes on a 2-core machine differed by up to 30% between runs
of the same tree. The CPU time (all threads of the process) is steadier than the wall time.
The first tree is the reference of the ratios printed. The tree imported first times a few
per cent faster whichever it is (measured: about 4% on workload C), so judge a difference
of that size from runs in both orders.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", help="source tree of jaxmle, repeatable (default: this one)")
    parser.add_argument("--method", action="append", help="fit method, repeatable (default: jaxmle's)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per workload, tree and method")
    parser.add_argument("--only", action="append", choices=["A", "B", "C"], help="workloads to run (default: all)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from run import gaussian_data, logistic_data, weibull_data

    packages = load_trees(args.tree or [str(HERE.parent)])
    methods = args.method or [None]
    variants = [(tree, m) for tree in packages for m in methods]
    workloads = make_workloads(logistic_data, weibull_data, gaussian_data, args.only or ["A", "B", "C"])

    out = {}
    for name, (count, call) in workloads.items():
        wall = {v: np.inf for v in variants}
        cpu = {v: [] for v in variants}
        last = {v: call(packages[v[0]], v[1]) for v in variants}  # warm-up (compiles)
        for _ in range(args.repeat):
            for v in variants:
                t, c = time.perf_counter(), time.process_time()
                last[v] = call(packages[v[0]], v[1])
                wall[v] = min(wall[v], time.perf_counter() - t)
                cpu[v].append(time.process_time() - c)
        ref = variants[0]
        for v in variants:
            res = last[v]
            out.setdefault(f"{v[0]} {v[1] or 'default'}", {})[name] = {
                "best_wall_us": round(wall[v] / count * 1e6, 2),
                "median_cpu_us": round(float(np.median(cpu[v])) / count * 1e6, 2),
                "cpu_ratio": round(float(np.median(cpu[v]) / np.median(cpu[ref])), 3),
                "iterations": round(float(np.mean(res.n_iter)), 2),
                "converged": int(res.converged.sum()),
            }
    print(json.dumps(out, indent=1))


def load_trees(trees: list[str]) -> dict:
    """Each tree's ``jaxmle`` package, copied to a temporary folder as ``jaxmle_<i>`` and
    imported, by a label (the tree's folder name, made unique)."""
    folder = Path(tempfile.mkdtemp(prefix="jaxmle-trees-"))
    sys.path.insert(0, str(folder))
    packages = {}
    for i, tree in enumerate(trees):
        source = Path(tree) / "jaxmle"
        if not (source / "__init__.py").is_file():
            raise SystemExit(f"--tree {tree}: no jaxmle package there")
        shutil.copytree(source, folder / f"jaxmle_{i}")
        label = Path(tree).resolve().name or f"tree{i}"
        packages[label if label not in packages else f"{label}#{i}"] = importlib.import_module(f"jaxmle_{i}")
    return packages


def make_workloads(logistic_data, weibull_data, gaussian_data, only: list[str]) -> dict:
    """name -> (fits per call, call(package, method) -> BatchFitResult)."""
    import jax.numpy as jnp
    from jax.scipy import stats

    def logistic(p, d):
        eta = d["X"] @ p["beta"]
        return d["y"] * eta - jnp.logaddexp(0.0, eta)

    def weibull(p, d):
        z = d / p["lam"]
        return jnp.log(p["k"] / p["lam"]) + (p["k"] - 1) * jnp.log(z) - z ** p["k"]

    def gaussian(p, d):
        return stats.norm.logpdf(d, p["mu"], p["sigma"])

    def options(method):
        return {"progress": False} | ({} if method is None else {"method": method})

    workloads = {}
    if "A" in only:
        X, y = logistic_data(1000)
        workloads["A"] = (
            1000,
            lambda jm, m: jm.fit_batch(logistic, {"beta": np.zeros(6)}, {"X": X, "y": y}, **options(m)),
        )
    if "B" in only:
        w = weibull_data(10_000)
        start = {"k": np.ones(len(w)), "lam": w.mean(axis=1)}
        workloads["B"] = (
            len(w),
            lambda jm, m: jm.fit_batch(
                weibull,
                start,
                w,
                constraints={"k": jm.positive, "lam": jm.positive},
                batched_init=True,
                **options(m),
            ),
        )
    if "C" in only:
        x = gaussian_data(100_000)
        for name, init in [("C (0, 1)", {"mu": 0.0, "sigma": 1.0}), ("C truth", {"mu": 3.0, "sigma": 2.0})]:
            workloads[name] = (
                len(x),
                lambda jm, m, init=init: jm.fit_batch(
                    gaussian, init, x, constraints={"sigma": jm.positive}, **options(m)
                ),
            )
    return workloads


if __name__ == "__main__":
    main()
