"""Adaptive Gauss–Hermite quadrature of a marginal over one scalar random effect per group.

For G conditionally independent groups with one scalar random effect each, the joint
log-density is f(u) = c + Σ_g f_g(u_g), and the marginal is

    log ∫ exp f(u) du = f(û) + Σ_g log ∫ exp(f_g(u_g) − f_g(û_g)) du_g.

Each group's integral is taken on the normal that the Laplace approximation fits there (mean
û_g, SD σ_g = (−∂²f/∂u_g²)^-1/2), with the nodes z_i and weights w_i of Gauss–Hermite
quadrature for the standard normal:

    ∫ exp(f_g(u) − f_g(û_g)) du ≈ σ_g √(2π) Σ_i w_i exp(D_g(z_i) + z_i²/2),
    D_g(z) = f(û + σ_g z e_g) − f(û)

(the same as lme4's nAGQ). One node is the Laplace approximation; the rule is exact when
exp(D_g(z) + z²/2) is a polynomial in z of degree below 2·nodes, e.g. a constant for a
Gaussian f_g. D_g is found by moving one group at a time: G·nodes evaluations of f per
evaluation of the marginal, so the cost grows with the number of groups times the data size.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def normal_rule(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of Gauss–Hermite quadrature for the standard normal density."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    return z, w / np.sqrt(2.0 * np.pi)


def adaptive_gauss_hermite(f, u, neg_h, nodes: int):
    """Σ_g log ∫ exp(f_g(u_g) − f_g(û_g)) du_g at the mode ``u`` of ``f`` (one scalar per
    group, flat), with −∂²f/∂u_g² in ``neg_h`` of shape (G, 1, 1); NaN where a curvature is
    not positive."""
    curvature = neg_h[:, 0, 0]
    sigma = jnp.where(curvature > 0, 1.0 / jnp.sqrt(jnp.where(curvature > 0, curvature, 1.0)), jnp.nan)
    z, w = (jnp.asarray(a, u.dtype) for a in normal_rule(nodes))
    at_mode = f(u)
    groups = jnp.arange(u.shape[0])

    def moved(zi):  # (G,): D_g(zi) for every group
        return jax.vmap(lambda g: f(u.at[g].add(sigma[g] * zi)))(groups) - at_mode

    D = jax.vmap(moved)(z)  # (nodes, G)
    per_group = jax.nn.logsumexp(D + (0.5 * z**2 + jnp.log(w))[:, None], axis=0)
    return jnp.sum(jnp.log(sigma) + 0.5 * jnp.log(2.0 * jnp.pi) + per_group)
