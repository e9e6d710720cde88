"""OLS is the maximum-likelihood estimate of a linear model with Gaussian errors."""

import numpy as np

import jaxmle as jm

rng = np.random.default_rng(0)
X = np.column_stack([np.ones(500), rng.normal(size=(500, 2))])
y = X @ np.array([1.0, 2.0, -0.5]) + rng.normal(scale=1.5, size=500)

res = jm.fit(jm.models.linear_regression(), {"X": X, "y": y})
beta_ols = np.linalg.solve(X.T @ X, X.T @ y)
print("Gaussian MLE beta:", res.params["beta"])
print("OLS (X'X)^-1 X'y: ", beta_ols)
print("max |difference|: ", np.max(np.abs(res.params["beta"] - beta_ols)))
print("sigma MLE", res.params["sigma"], "= sqrt(RSS/n)", np.sqrt(np.mean((y - X @ beta_ols) ** 2)))
