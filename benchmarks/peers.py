"""The peers of the benchmark suite: each fits one replicate and returns (estimates, SEs).

SEs are each tool's own: analytic for statsmodels Logit, numerical Hessians for
GenericLikelihoodModel and iminuit's HESSE, BFGS's inverse-Hessian approximation for
scipy BFGS, the analytic Hessian at the optimum for Newton-CG; scipy's weibull_min.fit
gives no SE (NaN). Each peer has a "default" configuration and, where the defaults do not
reach 1e-6 agreement, a "tight" one; the harness reports which was used.
"""

from __future__ import annotations

import numpy as np

# --- workload A: logistic regression ---------------------------------------------------


def logistic_nll(beta, X, y):
    eta = X @ beta
    return float(np.sum(np.logaddexp(0.0, eta) - y * eta))


def logistic_grad(beta, X, y):
    return X.T @ (1.0 / (1.0 + np.exp(-(X @ beta))) - y)


def logistic_hess(beta, X, y):
    p = 1.0 / (1.0 + np.exp(-(X @ beta)))
    return (X * (p * (1 - p))[:, None]).T @ X


def irls_vectorized(X, y, tol=1e-12, max_iter=50):
    """Hand-vectorised NumPy IRLS over a leading replicate axis: X (R, n, k), y (R, n).
    Weighted cross-products by batched matmul (BLAS), Newton steps by batched solves."""
    R, n, k = X.shape
    beta = np.zeros((R, k))
    Xt = np.swapaxes(X, 1, 2)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-np.einsum("rnk,rk->rn", X, beta)))
        H = np.matmul(Xt * (p * (1 - p))[:, None, :], X)
        g = np.einsum("rnk,rn->rk", X, y - p)
        step = np.linalg.solve(H, g[..., None])[..., 0]
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    p = 1.0 / (1.0 + np.exp(-np.einsum("rnk,rk->rn", X, beta)))
    H = np.matmul(Xt * (p * (1 - p))[:, None, :], X)
    se = np.sqrt(np.diagonal(np.linalg.inv(H), axis1=-2, axis2=-1))
    return beta, se


def sm_logit(X, y, tight=False):
    import statsmodels.api as sm

    kw = dict(method="newton", tol=1e-12, maxiter=100) if tight else {}
    r = sm.Logit(y, X).fit(disp=False, **kw)
    return np.asarray(r.params), np.asarray(r.bse)


def sm_generic_logit(X, y, tight=False):
    from statsmodels.base.model import GenericLikelihoodModel

    class Logistic(GenericLikelihoodModel):
        def loglikeobs(self, params):
            eta = self.exog @ params
            return self.endog * eta - np.logaddexp(0.0, eta)

    kw = dict(method="bfgs", gtol=1e-10, maxiter=2000) if tight else {}
    r = Logistic(y, X).fit(start_params=np.zeros(X.shape[1]), disp=False, **kw)
    return np.asarray(r.params), np.asarray(r.bse)


def scipy_bfgs_logit(X, y, tight=False):
    from scipy.optimize import minimize

    opts = {"gtol": 1e-10} if tight else {}
    r = minimize(logistic_nll, np.zeros(X.shape[1]), args=(X, y), jac=logistic_grad, method="BFGS", options=opts)
    return r.x, np.sqrt(np.diag(r.hess_inv))


def scipy_newton_cg_logit(X, y, tight=False):
    from scipy.optimize import minimize

    opts = {"xtol": 1e-12} if tight else {}
    r = minimize(logistic_nll, np.zeros(X.shape[1]), args=(X, y), jac=logistic_grad, method="Newton-CG", options=opts)
    return r.x, np.sqrt(np.diag(np.linalg.inv(logistic_hess(r.x, X, y))))


def iminuit_logit(X, y, tight=False):
    from iminuit import Minuit

    m = Minuit(lambda b: logistic_nll(b, X, y), np.zeros(X.shape[1]), grad=lambda b: logistic_grad(b, X, y))
    return migrad_hesse(m, tight)


def migrad_hesse(m, tight):
    """MIGRAD then HESSE on a negative log-likelihood (errordef 0.5); tight: EDM tolerance
    1e-10 and strategy 2."""
    from iminuit import Minuit

    m.errordef = Minuit.LIKELIHOOD
    if tight:
        m.tol = 1e-10
        m.strategy = 2
    m.migrad()
    m.hesse()
    return np.asarray(m.values), np.asarray(m.errors)


# --- workload B: Weibull (shape k, scale lam) ------------------------------------------


def weibull_nll(theta, x):
    k, lam = theta
    if k <= 0 or lam <= 0:
        return np.inf
    z = x / lam
    return float(-np.sum(np.log(k / lam) + (k - 1) * np.log(z) - z**k))


def scipy_weibull_fit(x, tight=False):
    from scipy import stats

    kw = {"method": "MLE"}
    if tight:
        from scipy.optimize import fmin

        kw["optimizer"] = lambda func, x0, args=(), disp=0: fmin(
            func, x0, args=args, disp=disp, xtol=1e-12, ftol=1e-14, maxiter=10000
        )
    k, _, lam = stats.weibull_min.fit(x, floc=0, **kw)
    return np.array([k, lam]), np.full(2, np.nan)


def iminuit_weibull(x, tight=False):
    from iminuit import Minuit

    m = Minuit(lambda k, lam: weibull_nll((k, lam), x), k=1.0, lam=float(np.mean(x)))
    m.limits["k"] = (1e-6, None)
    m.limits["lam"] = (1e-9, None)
    return migrad_hesse(m, tight)


def sm_generic_weibull(x, tight=False):
    from statsmodels.base.model import GenericLikelihoodModel

    class Weibull(GenericLikelihoodModel):
        def loglikeobs(self, params):
            k, lam = params
            z = self.endog / lam
            return np.log(k / lam) + (k - 1) * np.log(z) - z**k

    kw = dict(method="bfgs", gtol=1e-10, maxiter=2000) if tight else {}
    model = Weibull(x, np.ones_like(x))
    r = model.fit(start_params=np.array([1.0, float(np.mean(x))]), disp=False, **kw)
    return np.asarray(r.params), np.asarray(r.bse)
