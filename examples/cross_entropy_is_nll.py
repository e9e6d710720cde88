"""Cross-entropy is the negative log-likelihood: a logistic fit's log-likelihood is -n times
the mean binary cross-entropy of its predicted probabilities."""

import numpy as np

import jaxmle as jm

rng = np.random.default_rng(3)
X = np.column_stack([np.ones(1000), rng.normal(size=(1000, 2))])
y = (rng.uniform(size=1000) < 1 / (1 + np.exp(-X @ np.array([-0.5, 1.0, 2.0])))).astype(float)

res = jm.fit(jm.models.logistic_regression(), {"X": X, "y": y})
p = 1 / (1 + np.exp(-X @ res.params["beta"]))
bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
print(f"log-likelihood of the fit : {res.loglik:.10f}")
print(f"-n * mean cross-entropy   : {-len(y) * bce:.10f}")
