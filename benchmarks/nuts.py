"""jaxmle's NUTS (``jm.sample``, blackjax) against numpyro's NUTS, same model, same run.

    pip install -e ".[bench,bayes]" && python benchmarks/nuts.py [--n 200] [--k 5] [--chains 4]
        [--warmup 1000] [--draws 1000] [--repeat 20]

The model: logistic regression, y_i ~ Bernoulli(sigmoid(x_iᵀβ)), an intercept and
standard-normal covariates (5 coefficients by default), β_j ~ Normal(0, 2.5) independently.
All samplers run in float64 with their chains vectorized in one program, Stan's window
adaptation of the step size and a diagonal mass matrix, target acceptance 0.8 and at most
10 doublings. numpyro runs three ways: its NUTS kernel jitted once by hand ("numpyro kernel",
what ``MCMC`` with ``chain_method="vectorized"`` runs) with the data compiled into the program,
the same with the data as the program's arguments ("numpyro kernel, args": like ``jm.sample``,
whose compiled sampler serves any data of the same shapes), and ``MCMC.run`` itself, which
compiles its sampling loop again on every call ("numpyro MCMC").

Printed per sampler: the wall time of the first call (compile included; for jaxmle also
the MAP fit that starts the chains) and the median of ``--repeat`` further calls with other
seeds, interleaved across the samplers (the "second call"); per coefficient the bulk ESS
averaged over those calls, that ESS per second of the second call, and the z-score of the
last call's posterior means, (mean_jaxmle - mean_peer) / sqrt(MCSE_jaxmle² + MCSE_peer²),
with MCSE = sd / sqrt(ESS of the draws). ESS and MCSE of all come from
``jaxmle.diagnostics``, computed outside the timed calls for every sampler (``jm.sample``
computes its result's diagnostics when they are first read).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

PRIOR_SCALE = 2.5
BETA = (0.5, -1.0, 0.75, 0.0, 0.25)


def simulate(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An intercept and k-1 standard-normal covariates; y from the logistic model at BETA
    (zeros past its length)."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
    beta = np.array(BETA + (0.0,) * k)[:k]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X @ beta))).astype(float)
    return X, y


def jaxmle_sampler(X, y, chains, warmup, draws):
    """``seed -> (chain, draw, k) draws`` by ``jm.sample``."""
    import jaxmle as jm

    data = {"X": X, "y": y}
    prior = {"beta": jm.priors.Normal(0.0, PRIOR_SCALE)}

    def run(seed):
        res = jm.sample(
            jm.models.logistic_regression(), data, prior=prior, chains=chains, warmup=warmup, draws=draws, seed=seed
        )
        return np.asarray(res.draws["beta"]), res.n_divergent

    return run


def _numpyro_model(X, y):
    import numpyro
    import numpyro.distributions as dist

    beta = numpyro.sample("beta", dist.Normal(0.0, PRIOR_SCALE).expand([X.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Bernoulli(logits=X @ beta), obs=y)


def numpyro_mcmc(X, y, chains, warmup, draws):
    """``seed -> (chain, draw, k) draws`` by numpyro's ``MCMC(NUTS)``, chains vectorized: the
    usual interface, which traces and compiles its sampling loop again on every ``run``."""
    import jax
    from numpyro.infer import MCMC, NUTS

    mcmc = MCMC(
        NUTS(_numpyro_model),
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        chain_method="vectorized",
        progress_bar=False,
        jit_model_args=True,
    )

    def run(seed):
        mcmc.run(jax.random.key(seed), X, y, extra_fields=("diverging",))
        beta = np.asarray(mcmc.get_samples(group_by_chain=True)["beta"])
        return beta, int(np.sum(mcmc.get_extra_fields()["diverging"]))

    return run


def numpyro_kernel(X, y, chains, warmup, draws, data_as_arguments=False):
    """``seed -> (chain, draw, k) draws`` by numpyro's NUTS kernel (``hmc(algo="NUTS")``, the
    kernel under ``MCMC``, adaptation included) in one jitted program vmapped over chains, as
    ``MCMC`` with ``chain_method="vectorized"`` runs it, compiled once. Chains start where
    ``MCMC`` starts them by default: uniform(-2, 2) in every coordinate. The data are
    constants compiled into the program, or with ``data_as_arguments`` its arguments (as in
    ``jm.sample``, whose compiled sampler serves any data of the same shapes)."""
    import jax
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import initialize_model, potential_energy

    constant = initialize_model(jax.random.key(0), _numpyro_model, model_args=(X, y)).potential_fn

    def one_chain(key, X, y):
        potential = (lambda z: potential_energy(_numpyro_model, (X, y), {}, z)) if data_as_arguments else constant
        init_kernel, sample_kernel = hmc(potential, algo="NUTS")
        start_key, key = jax.random.split(key)
        beta0 = jax.random.uniform(start_key, (X.shape[1],), minval=-2.0, maxval=2.0)
        state = init_kernel({"beta": beta0}, num_warmup=warmup, rng_key=key)
        state, _ = jax.lax.scan(lambda s, _: (sample_kernel(s), None), state, length=warmup)

        def step(s, _):
            s = sample_kernel(s)
            return s, (s.z["beta"], s.diverging)

        return jax.lax.scan(step, state, length=draws)[1]

    chains_of = jax.vmap(one_chain, in_axes=(0, None, None))
    program = jax.jit(lambda key, X, y: chains_of(jax.random.split(key, chains), X, y))

    def run(seed):
        beta, divergent = program(jax.random.key(seed), X, y)
        return np.asarray(beta), int(np.sum(divergent))

    return run


def timed(run, seed):
    t = time.perf_counter()
    beta, divergent = run(seed)
    return beta, divergent, time.perf_counter() - t


def measure(runs: dict, repeat: int) -> dict:
    """Per sampler: the first call (compile included), then ``repeat`` further calls with
    their own seeds, interleaved across the samplers so that the machine's drift reaches
    all alike. "second" is the median time of those calls, "ess" the bulk ESS per
    coefficient averaged over them (one chain set's ESS varies by ±15% with the seed), and
    the last call's draws give the means and MCSE."""
    from jaxmle import diagnostics

    first = {name: timed(run, 1)[2] for name, run in runs.items()}
    calls = {name: [] for name in runs}
    for seed in range(2, repeat + 2):
        for name, run in runs.items():
            calls[name].append(timed(run, seed))
    results = {}
    for name, made in calls.items():
        per_call = [[beta[:, :, j] for j in range(beta.shape[2])] for beta, _, _ in made]
        ess = np.mean([[diagnostics.ess_bulk(c) for c in columns] for columns in per_call], axis=0)
        second = float(np.median([seconds for _, _, seconds in made]))
        beta, divergent, _ = made[-1]
        results[name] = {
            "first": first[name],
            "second": second,
            "divergent": divergent,
            "mean": beta.mean(axis=(0, 1)),
            "mcse": np.array([diagnostics.mcse_mean(c) for c in per_call[-1]]),
            "ess": ess,
            "ess_per_s": ess / second,
        }
    return results


def report(results: dict) -> str:
    """Two tables: times, divergences and the smallest ESS/s per sampler; then per
    coefficient each sampler's mean and ESS/s, and for each sampler after the first the
    z-score of its mean against the first's and the ratio of the first's ESS/s to its."""
    (ref_name, ref), *others = results.items()
    lines = [
        f"{'sampler':<16}{'first call s':>14}{'second call s':>15}{'divergent':>11}{'min ESS bulk':>14}"
        f"{'min ESS/s':>11}",
    ]
    for name, r in results.items():
        lines.append(
            f"{name:<16}{r['first']:>14.2f}{r['second']:>15.2f}{r['divergent']:>11d}{r['ess'].min():>14.0f}"
            f"{r['ess_per_s'].min():>11.0f}"
        )
    for name, r in others:
        z = (ref["mean"] - r["mean"]) / np.sqrt(ref["mcse"] ** 2 + r["mcse"] ** 2)
        lines += [
            "",
            f"{'coef':<9}{ref_name + ' mean':>14}{name + ' mean':>22}{'z':>7}{ref_name + ' ESS/s':>14}"
            f"{name + ' ESS/s':>24}{'ratio':>8}",
        ]
        for j in range(len(z)):
            lines.append(
                f"{f'beta[{j}]':<9}{ref['mean'][j]:>14.4f}{r['mean'][j]:>22.4f}{z[j]:>7.2f}"
                f"{ref['ess_per_s'][j]:>14.0f}{r['ess_per_s'][j]:>24.0f}{ref['ess_per_s'][j] / r['ess_per_s'][j]:>8.2f}"
            )
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="observations")
    p.add_argument("--k", type=int, default=5, help="coefficients, the intercept included")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=20, help="timed calls after the first, interleaved across samplers")
    args = p.parse_args(argv)
    import numpyro

    numpyro.enable_x64()  # both in float64 (jaxmle's own default)
    X, y = simulate(args.n, args.k)
    size = (args.chains, args.warmup, args.draws)
    runs = {
        "jaxmle": jaxmle_sampler(X, y, *size),
        "numpyro kernel": numpyro_kernel(X, y, *size),
        "numpyro kernel, args": numpyro_kernel(X, y, *size, data_as_arguments=True),
        "numpyro MCMC": numpyro_mcmc(X, y, *size),
    }
    results = measure(runs, args.repeat)
    print(
        f"logistic regression, n = {args.n}, {args.k} coefficients, Normal(0, {PRIOR_SCALE}) prior; "
        f"{args.chains} chains x ({args.warmup} warmup + {args.draws} draws)\n"
    )
    print(report(results))


if __name__ == "__main__":
    main()
