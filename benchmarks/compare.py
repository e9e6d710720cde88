"""jaxmle alone on workloads A, B and C, for comparing two source trees or several methods.

    python benchmarks/compare.py [--tree DIR] [--method METHOD ...] [--repeat N]

Times ``fit_batch`` on run.py's own data (A: 1,000 logistic fits; B: 10,000 Weibull fits
started where the peers start; C: 100,000 Gaussian fits from (0, 1) and from the truth)
and prints µs per fit (the best of ``--repeat`` calls after a warm-up call), mean
iterations and the number converged. Several methods are timed in one process, their
calls interleaved, so that the drift of a shared machine hits them alike. ``--tree``
imports jaxmle from another checkout (e.g. an exported earlier commit), so that a solver
change can be held to the 10% rule in one session.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]), help="source tree of jaxmle")
    parser.add_argument("--method", action="append", help="fit method, repeatable (default: jaxmle's)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per workload and method")
    args = parser.parse_args(argv)
    sys.path[:0] = [args.tree, str(Path(__file__).resolve().parent)]
    import jax.numpy as jnp
    from jax.scipy import stats
    from run import gaussian_data, logistic_data, weibull_data

    import jaxmle as jm

    methods = args.method or [None]

    def logistic(p, d):
        eta = d["X"] @ p["beta"]
        return d["y"] * eta - jnp.logaddexp(0.0, eta)

    def weibull(p, d):
        z = d / p["lam"]
        return jnp.log(p["k"] / p["lam"]) + (p["k"] - 1) * jnp.log(z) - z ** p["k"]

    def gaussian(p, d):
        return stats.norm.logpdf(d, p["mu"], p["sigma"])

    X, y = logistic_data(1000)
    w = weibull_data(10_000)
    weibull_start = {"k": np.ones(len(w)), "lam": w.mean(axis=1)}
    positive = {"k": jm.positive, "lam": jm.positive}
    x = gaussian_data(100_000)
    workloads = {
        "A": (1000, lambda **kw: jm.fit_batch(logistic, {"beta": np.zeros(6)}, {"X": X, "y": y}, **kw)),
        "B": (
            len(w),
            lambda **kw: jm.fit_batch(weibull, weibull_start, w, constraints=positive, batched_init=True, **kw),
        ),
    }
    for name, init in [("C (0, 1)", {"mu": 0.0, "sigma": 1.0}), ("C truth", {"mu": 3.0, "sigma": 2.0})]:
        workloads[name] = (
            len(x),
            lambda init=init, **kw: jm.fit_batch(gaussian, init, x, constraints={"sigma": jm.positive}, **kw),
        )

    out = {str(m or "default"): {} for m in methods}
    for name, (count, call) in workloads.items():
        best, last = {}, {}
        for m in methods:
            kw = {"progress": False} | ({} if m is None else {"method": m})
            last[m] = call(**kw)  # warm-up (compiles)
            best[m] = np.inf
        for _ in range(args.repeat):
            for m in methods:
                kw = {"progress": False} | ({} if m is None else {"method": m})
                t = time.perf_counter()
                last[m] = call(**kw)
                best[m] = min(best[m], time.perf_counter() - t)
        for m in methods:
            res = last[m]
            out[str(m or "default")][name] = [
                round(best[m] / count * 1e6, 2),
                round(float(np.mean(res.n_iter)), 2),
                int(res.converged.sum()),
            ]
    print(json.dumps({"tree": Path(args.tree).name, "us_iter_converged": out}))


if __name__ == "__main__":
    main()
