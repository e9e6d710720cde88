"""Laplace smoothing (add-one) from a Beta(1, 1) prior: the posterior mean is (s+1)/(n+2)."""

import numpy as np

import jaxmle as jm
from jaxmle import closed_form

x = np.array([1.0, 1.0, 1.0, 0.0, 1.0])  # 4 successes in 5 trials
s, n = x.sum(), x.size
post = closed_form.beta_bernoulli(x, 1.0, 1.0)
print(f"MLE s/n = {s / n:.4f}")
print(
    f"Beta(1, 1) posterior: Beta({post.a:g}, {post.b:g}), mean {post.mean:.4f} = (s+1)/(n+2) = {(s + 1) / (n + 2):.4f}"
)
# the same number is the MAP under Beta(2, 2): add-one smoothing as a posterior mode
res = jm.fit(jm.models.bernoulli(), x, prior={"p": jm.priors.Beta(2.0, 2.0)})
print(f"MAP under Beta(2, 2), fitted: {res.params['p']:.4f}")
counts = np.array([3.0, 0.0, 7.0])
print("add-one smoothed category probabilities:", closed_form.dirichlet_multinomial(counts, np.ones(3)).mean)
