"""MLE, MAP, Laplace and NUTS from one log-likelihood: the MAP is the posterior mode, not the mean.

The same log-likelihood gives the MLE (no prior), the MAP (the mode of the posterior in the
user's parameterization), a Laplace approximation (a Gaussian at the mode of the posterior of
the unconstrained coordinates) and the posterior itself (NUTS). For a skewed posterior the
mode and the mean differ, and only the draws give the mean.
"""

import jax
import numpy as np
from jax.scipy import stats

import jaxmle as jm
from jaxmle import closed_form

SAMPLING = {"chains": 4, "draws": 1000, "warmup": 500, "seed": 0}


def row(label, *values):
    print(f"  {label:<32}" + "".join(f"{v:>10.4f}" for v in values))


def compare(loglik, init, data, constraints, prior):
    """MLE, MAP, Laplace mean and NUTS posterior mean (with its Monte Carlo SE), flat."""
    mle = jm.fit(loglik, init, data, constraints=constraints)
    map_ = jm.fit(loglik, init, data, constraints=constraints, prior=prior)
    laplace = map_.laplace()
    nuts = jm.sample(loglik, init, data, constraints=constraints, prior=prior, **SAMPLING)
    for problem in nuts.problems:
        print("warning:", problem)
    flat = lambda tree: np.concatenate([np.ravel(v) for v in tree.values()])  # noqa: E731
    return mle.names, flat(mle.params), flat(map_.params), flat(laplace.mean), flat(nuts.mean), nuts.mcse_mean


# --- Beta–Bernoulli: 10 successes in 12 trials, Beta(2, 2) prior ------------------------------
x = np.array([1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1])
a, b = 2.0, 2.0
names, mle, map_, laplace, nuts, mcse = compare(
    lambda p, x: stats.bernoulli.logpmf(x, p["p"]),
    {"p": 0.5},
    x,
    {"p": jm.unit_interval},
    {"p": jm.priors.Beta(a, b)},
)
exact = closed_form.beta_bernoulli(x, a, b)
print(f"Beta-Bernoulli, {int(x.sum())} successes in {x.size} trials, prior Beta({a:g}, {b:g}):")
print(f"  posterior Beta({exact.a:g}, {exact.b:g})")
row("MLE s/n", mle[0])
row("MAP (fit with prior)", map_[0])
row("  closed-form posterior mode", exact.mode)
row("Laplace mean (mode of logit p)", laplace[0])
row("NUTS posterior mean", nuts[0])
row("  closed-form posterior mean", exact.mean)
print(f"  NUTS mean - exact mean = {nuts[0] - exact.mean:+.4f} (Monte Carlo SE {mcse[0]:.4f})")
print("  (the Laplace approximation is centred at the mode of the posterior of logit p, which for a")
print("  Beta(a, b) posterior is a/(a+b): the posterior mean of p, unlike the MAP)")

# --- logistic regression: 60 observations, N(0, 2.5²) prior on each coefficient ----------------
rng = np.random.default_rng(3)
X = np.column_stack([np.ones(60), rng.normal(size=(60, 2))])
y = (rng.uniform(size=60) < 1 / (1 + np.exp(-X @ np.array([-0.5, 1.5, -1.0])))).astype(float)


def logistic(p, d):
    eta = d["X"] @ p["beta"]
    return d["y"] * jax.nn.log_sigmoid(eta) + (1 - d["y"]) * jax.nn.log_sigmoid(-eta)


names, mle, map_, laplace, nuts, mcse = compare(
    logistic, {"beta": np.zeros(3)}, {"X": X, "y": y}, None, {"beta": jm.priors.Normal(0.0, 2.5)}
)
print("\nlogistic regression, 60 observations, prior N(0, 2.5²) on each coefficient:")
print(f"  {'':<32}" + "".join(f"{n:>10}" for n in names))
row("MLE", *mle)
row("MAP (fit with prior)", *map_)
row("Laplace mean (= MAP here)", *laplace)
row("NUTS posterior mean", *nuts)
row("  Monte Carlo SE of NUTS mean", *mcse)

print(
    "\nThe MAP is the posterior mode, not the posterior mean: where the posterior is skewed they "
    "differ, and the mean needs the draws (or the closed form)."
)
