"""jaxmle alone on workloads A, B and C, for comparing two source trees or two methods.

    python benchmarks/compare.py [--tree DIR] [--method METHOD]

Times ``fit_batch`` on run.py's own data (A: 1,000 logistic fits; B: 10,000 Weibull fits
started where the peers start; C: 100,000 Gaussian fits from (0, 1) and from the truth),
best of 3 after a warm-up call, and prints µs per fit, mean iterations and the number
converged. ``--tree`` imports jaxmle from another checkout (e.g. an exported earlier
commit), so that a solver change can be held to the 10% rule in one session.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]), help="source tree of jaxmle")
    parser.add_argument("--method", default=None, help="fit method (default: jaxmle's)")
    args = parser.parse_args(argv)
    sys.path[:0] = [args.tree, str(Path(__file__).resolve().parent)]
    import jax.numpy as jnp
    from jax.scipy import stats
    from run import best_of, gaussian_data, logistic_data, weibull_data

    import jaxmle as jm

    kw = {} if args.method is None else {"method": args.method}

    def timed(name, count, call):
        call()
        t, res = best_of(call, 3)
        out[name] = [round(t / count * 1e6, 2), round(float(np.mean(res.n_iter)), 2), int(res.converged.sum())]

    def logistic(p, d):
        eta = d["X"] @ p["beta"]
        return d["y"] * eta - jnp.logaddexp(0.0, eta)

    def weibull(p, d):
        z = d / p["lam"]
        return jnp.log(p["k"] / p["lam"]) + (p["k"] - 1) * jnp.log(z) - z ** p["k"]

    def gaussian(p, d):
        return stats.norm.logpdf(d, p["mu"], p["sigma"])

    out = {}
    X, y = logistic_data(1000)
    timed("A", 1000, lambda: jm.fit_batch(logistic, {"beta": np.zeros(6)}, {"X": X, "y": y}, progress=False, **kw))
    w = weibull_data(10_000)
    start = {"k": np.ones(len(w)), "lam": w.mean(axis=1)}
    positive = {"k": jm.positive, "lam": jm.positive}
    timed(
        "B",
        len(w),
        lambda: jm.fit_batch(weibull, start, w, constraints=positive, batched_init=True, progress=False, **kw),
    )
    x = gaussian_data(100_000)
    for name, init in [("C (0, 1)", {"mu": 0.0, "sigma": 1.0}), ("C truth", {"mu": 3.0, "sigma": 2.0})]:
        timed(
            name,
            len(x),
            lambda init=init: jm.fit_batch(gaussian, init, x, constraints={"sigma": jm.positive}, progress=False, **kw),
        )
    print(json.dumps({"tree": Path(args.tree).name, "method": args.method or "default", "us_iter_converged": out}))


if __name__ == "__main__":
    main()
