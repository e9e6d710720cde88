"""Batched logistic regression: jaxmle.fit_batch against a hand-vectorised NumPy IRLS.

1,000 replicates of n = 1000 observations and 6 coefficients, both measured in this run, from
zeros, to a Newton step below 1e-12 (the IRLS of benchmarks/peers.py), with standard errors. Also times a batch in
which 1% of the replicates are perfectly separable against the clean batch.

    python benchmarks/bench_batch_logistic.py [--reps 1000] [--n 1000] [--repeat 3]

Set XLA_FLAGS=--xla_cpu_use_fusion_emitters=false to measure XLA's older CPU fusion path.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from peers import irls_vectorized  # noqa: E402
from run import best_of, logistic_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--p", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp

    import jaxmle as jm

    X, y = logistic_data(args.reps, args.n, args.p)
    y_sep = y.copy()
    for i in range(0, args.reps, 100):  # 1% perfectly separable replicates
        y_sep[i] = (X[i, :, 1] > 0).astype(float)

    def loglik(params, data):
        eta = data["X"] @ params["beta"]
        return data["y"] * eta - jnp.logaddexp(0.0, eta)

    init = {"beta": np.zeros(args.p)}

    def run(yy):
        return jm.fit_batch(loglik, init, {"X": X, "y": yy}, progress=False)

    t = time.perf_counter()
    run(y)
    first = time.perf_counter() - t
    t_jax, res = best_of(lambda: run(y), args.repeat)
    t_np, (beta_np, se_np) = best_of(lambda: irls_vectorized(X, y), args.repeat)
    run(y_sep)
    t_sep, res_sep = best_of(lambda: run(y_sep), args.repeat)

    agree = np.max(np.abs(res.params["beta"] - beta_np))
    print(f"device: {jax.devices()[0].platform} x{jax.device_count()}   XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}")
    print(f"{args.reps} logistic fits, n = {args.n}, {args.p} coefficients (best of {args.repeat})")
    print(f"  numpy IRLS           {t_np:8.3f} s")
    print(f"  jaxmle.fit_batch     {t_jax:8.3f} s   (first call with compiling: {first:.3f} s)")
    print(f"  ratio jaxmle / numpy {t_jax / t_np:8.2f}     (goal: at most 1.2)")
    print(f"  max |beta difference| {agree:.2e}, max |SE difference| {np.max(np.abs(res.se['beta'] - se_np)):.2e}")
    print(f"  1% separable batch   {t_sep:8.3f} s   ratio to clean {t_sep / t_jax:.2f}   (goal: at most 1.5)")
    print(f"  statuses (separable batch): { {s.name: c for s, c in res_sep.status_counts().items()} }")


if __name__ == "__main__":
    main()
