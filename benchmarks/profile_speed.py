"""Time of all profile intervals of a fit against the time of the fit itself.

Two simulated models: an NB2 (negative binomial) regression with 10 coefficients and
log α (k = 11, n = 20,190, covariates N(0, 1)) and a multinomial logit with 7 categories
and 6 regressors (k = 36, n = 944). For each: one fit, ``conf_int(method="profile")``
(endpoints solved directly, with the root search for any the direct solve leaves), and
the root search alone for every endpoint (the method before the direct solve), each the
best of several calls after a first (compiling) one; and the largest relative difference
between the two sets of endpoints.

    python benchmarks/profile_speed.py [--reps 3]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, logsumexp

import jaxmle as jm
from jaxmle import profile as jp


def nb2(p, d):
    mu = jnp.exp(d["X"] @ p["beta"])
    r = jnp.exp(-p["log_alpha"])
    y = d["y"]
    return gammaln(y + r) - gammaln(r) - gammaln(y + 1) + r * jnp.log(r / (r + mu)) + y * jnp.log(mu / (r + mu))


def mnlogit(p, d):
    eta = jnp.concatenate([jnp.zeros((d["X"].shape[0], 1)), d["X"] @ p["beta"]], axis=1)
    return jnp.take_along_axis(eta, d["y"][:, None], axis=1)[:, 0] - logsumexp(eta, axis=1)


def nb2_case(rng):
    n = 20_190
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 9))])
    mu = np.exp(X @ np.r_[0.5, rng.normal(0.0, 0.2, 9)])
    alpha = 0.7
    y = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu)).astype(float)
    return nb2, {"beta": np.zeros(10), "log_alpha": 0.0}, {"X": X, "y": y}


def mnlogit_case(rng):
    n, p, J = 944, 6, 7
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    eta = np.column_stack([np.zeros(n), X @ rng.normal(0.0, 0.5, (p, J - 1))])
    prob = np.exp(eta - eta.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    y = (prob.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1)
    return mnlogit, {"beta": np.zeros((p, J - 1))}, {"X": X, "y": y}


def best_of(fn, reps):
    out = fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def root_search_all(res):
    """Every endpoint by the root search alone, on the parameters' scale, (k, 2)."""
    obj = jp._Objective(res)
    lanes = [(c, s) for c in jp._coords(res, res.names) for s in (-1.0, 1.0)]
    x_end, *_ = jp._root_search(obj, lanes, jp.chi2_quantile(0.95, 1), jp.RTOL)
    return x_end.reshape(-1, 2)


def measure(name, loglik, init, data, reps):
    t_fit, res = best_of(lambda: jm.fit(loglik, init, data), 2 * reps)
    t_direct, ci = best_of(lambda: res.conf_int(method="profile"), reps)
    t_search, searched = best_of(lambda: root_search_all(res), max(1, reps - 1))
    direct = np.concatenate([np.reshape(leaf, (-1, 2)) for leaf in jax.tree_util.tree_leaves(ci)])
    diff = np.max(np.abs(direct - searched) / np.abs(searched))
    print(
        f"{name}: fit {t_fit:.3f} s; all profile intervals {t_direct:.2f} s ({t_direct / t_fit:.1f} fits); "
        f"root search alone {t_search:.2f} s ({t_search / t_fit:.0f} fits); "
        f"largest relative difference {diff:.1e}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    measure("NB2, k = 11", *nb2_case(rng), args.reps)
    measure("multinomial logit, k = 36", *mnlogit_case(rng), args.reps)


if __name__ == "__main__":
    main()
