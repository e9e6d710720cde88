"""``jaxmle demo``: fit a logistic regression to simulated data and print the summary."""

from __future__ import annotations

import numpy as np


def register(sub) -> None:
    p = sub.add_parser("demo", help="fit a logistic regression to simulated data and print the summary")
    p.add_argument("--n", type=int, default=1000, help="number of observations (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    import jax.numpy as jnp

    import jaxmle as jm

    rng = np.random.default_rng(args.seed)
    X = np.column_stack([np.ones(args.n), rng.normal(size=(args.n, 5))])
    beta = np.array([0.5, 1.0, -1.0, 0.5, 0.0, 0.25])
    y = (rng.uniform(size=args.n) < 1.0 / (1.0 + np.exp(-X @ beta))).astype(float)

    def loglik(params, data):
        eta = data["X"] @ params["beta"]
        return data["y"] * eta - jnp.logaddexp(0.0, eta)

    res = jm.fit(loglik, {"beta": np.zeros(6)}, {"X": X, "y": y})
    print(f"true beta: {beta}")
    print(res.summary())
    return 0 if res.converged else 1
