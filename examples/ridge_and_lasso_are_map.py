"""Ridge is the MAP under a Gaussian prior; the lasso is the MAP under a Laplace prior."""

import numpy as np

import jaxmle as jm
from jaxmle import closed_form

rng = np.random.default_rng(1)
X = np.linalg.qr(rng.normal(size=(200, 5)))[0]  # orthonormal columns: the lasso has a closed form
y = X @ np.array([3.0, 0.0, 0.2, -2.0, 0.0]) + 0.3 * rng.normal(size=200)
sigma, model = 0.3, jm.models.linear_regression()

# ridge: N(0, s²) prior on each coefficient <=> penalty λ‖β‖² with λ = σ²/s²
s = 1.0
ridge = jm.fit(model, {"X": X, "y": y}, fixed={"sigma": sigma}, prior={"beta": jm.priors.Normal(0.0, s)})
print("ridge MAP      :", ridge.params["beta"])
print("ridge formula  :", closed_form.ridge(X, y, sigma**2 / s**2))

# lasso: Laplace(0, b) prior <=> penalty λ‖β‖₁ with λ = σ²/b; the MAP has exact zeros
b = 0.3
lasso = jm.fit(model, {"X": X, "y": y}, fixed={"sigma": sigma}, prior={"beta": jm.priors.Laplace(0.0, b)})
print("lasso MAP      :", lasso.params["beta"])
print("soft threshold :", closed_form.lasso_orthonormal(X, y, sigma**2 / b))
print("exact zeros    :", int(np.sum(lasso.params["beta"] == 0.0)))
