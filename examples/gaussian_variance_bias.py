"""The Gaussian variance MLE divides by n, so E[σ̂²] = (n-1)/n σ²: biased low for small n."""

import numpy as np

import jaxmle as jm

n, sigma2 = 5, 4.0
rng = np.random.default_rng(2)
x = rng.normal(0.0, np.sqrt(sigma2), size=n)
res = jm.fit(jm.models.gaussian(), x)
print(f"one sample: MLE sigma² = {res.params['sigma'] ** 2:.6f}, sum((x - mean)²)/n = {np.var(x):.6f}")

samples = rng.normal(0.0, np.sqrt(sigma2), size=(200_000, n))
mle = samples.var(axis=1)  # the MLE on each replicate (divisor n)
print(f"mean of the MLE over 200,000 samples of n={n}: {mle.mean():.4f}")
print(f"(n-1)/n sigma² = {(n - 1) / n * sigma2:.4f}   sigma² = {sigma2}")
print(f"n/(n-1) corrects it: {mle.mean() * n / (n - 1):.4f}")
