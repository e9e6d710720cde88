"""``jaxmle verify``: check jaxmle's fits against the closed-form catalog.

For every entry it simulates data from a fixed seed, fits by autodiff (the MLE, or the MAP
under a conjugate prior) and prints one row per check: entry, quantity, closed form,
jaxmle, relative error |jaxmle - reference| / |reference| (absolute where the reference is
exactly 0, as for lasso zeros), tolerance and fit time. Tolerances, in float64:

- estimates: 1e-8 relative against the closed form, or against a converged IRLS written
  here in NumPy for the logistic and Poisson regressions (which have none);
- SEs: the fit's SE (from the observed information) against sqrt(diag(I(θ̂)⁻¹) / n), the
  inverse expected information at the estimate. For every entry here but the Weibull the
  two informations coincide at the MLE (exponential families; the gamma's observed
  information does not depend on the data; regressions use the information conditional on
  their design), so the tolerance is 1e-8. The Weibull's observed information equals the
  expected only in expectation and differs by O(n^-1/2): its tolerance is 5/√n.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np

N = 2000
SEED = 20240611
TOL = 1e-8
#: the catalog, in the order of the table
ENTRIES = (
    "bernoulli", "binomial", "categorical", "poisson", "geometric", "exponential", "gaussian", "lognormal",
    "gamma", "weibull", "ols", "logistic_regression", "poisson_regression", "ridge", "lasso",
    "beta_bernoulli", "dirichlet_multinomial", "gamma_poisson", "gamma_exponential", "normal_normal",
    "inverse_gamma_normal", "normal_inverse_gamma",
)  # fmt: skip


@dataclass
class Row:
    entry: str
    quantity: str
    closed_form: float
    jaxmle: float
    rel_error: float
    tol: float
    seconds: float
    converged: bool

    @property
    def ok(self) -> bool:
        return bool(self.converged and self.rel_error <= self.tol)


def register(sub) -> None:
    p = sub.add_parser("verify", help="check fits against closed-form MLEs, MAPs and Fisher-information SEs")
    p.add_argument("--only", metavar="NAME", help=f"run one entry: {', '.join(ENTRIES)}")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    entries = _entries()
    names = list(ENTRIES)
    if args.only is not None:
        if args.only not in ENTRIES:
            print(f"jaxmle verify: --only: unknown entry {args.only!r}; entries: {', '.join(ENTRIES)}", file=sys.stderr)
            return 2
        names = [args.only]
    start = time.perf_counter()
    rows = []
    for name in names:
        rows.extend(entries[name](np.random.default_rng([SEED, ENTRIES.index(name)])))
        if not args.json:
            sys.stdout.write(render(rows, header=not any(r.entry != name for r in rows[:-1]), only=name))
            sys.stdout.flush()
    total = time.perf_counter() - start
    failed = [r for r in rows if not r.ok]
    if args.json:
        out = {
            "passed": not failed,
            "n_rows": len(rows),
            "n_failed": len(failed),
            "seconds": total,
            "rows": [dict(asdict(r), ok=r.ok) for r in rows],
        }
        print(json.dumps(out, indent=1))
    else:
        verdict = "all passed" if not failed else f"{len(failed)} FAILED"
        print(f"\n{len(rows)} checks, {verdict}, in {total:.1f} s")
    return 1 if failed else 0


COLUMNS = (
    f"{'entry':<22}{'quantity':<16}{'closed form':>20}{'jaxmle':>20}{'rel. error':>12}{'tol':>9}  {'':4}{'time':>7}"
)


def render(rows: list[Row], header: bool, only: str) -> str:
    lines = [COLUMNS, "-" * len(COLUMNS)] if header else []
    for r in rows:
        if r.entry != only:
            continue
        flag = "ok" if r.ok else ("MISS" if r.converged else "FAIL")
        lines.append(
            f"{r.entry:<22}{r.quantity:<16}{r.closed_form:>20.12g}{r.jaxmle:>20.12g}{r.rel_error:>12.2e}"
            f"{r.tol:>9.0e}  {flag:<4}{r.seconds:>6.2f}s"
        )
    return "\n".join(lines) + "\n"


# --- helpers ---------------------------------------------------------------------------
def _rel(value: float, reference: float) -> float:
    if reference == 0:
        return abs(value)
    return abs(value - reference) / abs(reference)


def _flat(params: dict) -> list[tuple[str, float]]:
    out = []
    for name in sorted(params):
        v = np.asarray(params[name], dtype=float)
        if v.ndim == 0:
            out.append((name, float(v)))
        else:
            out.extend((f"{name}[{i}]", float(x)) for i, x in enumerate(v.ravel()))
    return out


def _fit(*args, **kwargs):
    import jaxmle as jm

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jm.FitWarning)
        res = jm.fit(*args, **kwargs)
    return res, time.perf_counter() - t


def _rows(entry, reference: dict, fitted: dict, res, seconds, tol=TOL, prefix="") -> list[Row]:
    ref, got = dict(_flat(reference)), dict(_flat({k: fitted[k] for k in reference}))
    return [
        Row(entry, prefix + q, ref[q], got[q], _rel(got[q], ref[q]), tol, seconds, bool(res.converged)) for q in ref
    ]


def _se_rows(entry, model, res, nobs, X=None, tol=TOL) -> list[Row]:
    """The fit's SEs against sqrt(diag(I(θ̂)⁻¹) / n), in the fit's name order."""
    cov = model.asymptotic_cov(res.params) if X is None else model.asymptotic_cov(res.params, X)
    expected = np.sqrt(np.diag(cov) / nobs)
    fitted = np.array([v for _, v in _flat(res.se)])
    return [
        Row(entry, f"se({name})", float(e), float(f), _rel(float(f), float(e)), tol, 0.0, bool(res.converged))
        for name, e, f in zip(res.names, expected, fitted, strict=True)
    ]


def _design(rng, n, d):
    """An intercept column and d-1 standard-normal covariates (the models' design)."""
    return np.column_stack([np.ones(n), rng.normal(size=(n, d - 1))])


def _regression_data(beta, draw_y):
    def draw(rng, n):
        X = _design(rng, n, len(beta))
        return {"X": X, "y": draw_y(rng, X @ np.asarray(beta))}

    return draw


def _mle_entry(model, draw, n=N, se_tol=TOL, closed=True):
    def check(rng):
        data = draw(rng, n)
        res, seconds = _fit(model, data)
        se_rows = _se_rows(model.name, model, res, n, tol=se_tol)
        if not closed:  # no closed-form MLE: only the SEs are checked
            for r in se_rows:
                r.seconds = seconds
            return se_rows
        return _rows(model.name, model.mle(data), res.params, res, seconds) + se_rows

    return check


def irls(X, y, mean, weight, tol=1e-15, max_iter=100) -> np.ndarray:
    """Canonical-link GLM MLE by iteratively reweighted least squares (Newton), in NumPy:
    β ← β + (XᵀWX)⁻¹Xᵀ(y - μ) until the step is below ``tol`` relative."""
    beta = np.zeros(X.shape[1])
    for _ in range(max_iter):
        eta = X @ beta
        step = np.linalg.solve((X.T * weight(eta)) @ X, X.T @ (y - mean(eta)))
        beta = beta + step
        if np.max(np.abs(step)) <= tol * (1 + np.max(np.abs(beta))):
            return beta
    raise RuntimeError("IRLS did not converge")


def _glm_entry(model, draw, mean, weight):
    def check(rng):
        data = draw(rng, N)
        res, seconds = _fit(model, data)
        reference = {"beta": irls(data["X"], data["y"], mean, weight)}
        return _rows(model.name, reference, res.params, res, seconds, prefix="IRLS ") + _se_rows(
            model.name, model, res, N, X=data["X"]
        )

    return check


def _sigmoid(eta):
    return 1 / (1 + np.exp(-eta))


_LINEAR = _regression_data([1.0, 0.5, -0.3], lambda rng, eta: eta + 1.5 * rng.normal(size=eta.shape))


def _ols(rng):
    import jaxmle as jm

    model = jm.models.linear_regression()
    data = _LINEAR(rng, N)
    res, seconds = _fit(model, data)
    return _rows("ols", model.mle(data), res.params, res, seconds) + _se_rows("ols", model, res, N, X=data["X"])


def _orthonormal_data(rng, beta, sigma=1.0, n=200):
    X = np.linalg.qr(rng.normal(size=(n, len(beta))))[0]
    return {"X": X, "y": X @ np.asarray(beta) + sigma * rng.normal(size=n)}


def _ridge(rng):
    import jaxmle as jm
    from jaxmle import closed_form

    model = jm.models.linear_regression()
    data = _LINEAR(rng, 200)
    sigma, s = 1.5, 0.2  # prior N(0, s²) on every coefficient: λ = σ²/s²
    res, seconds = _fit(model, data, fixed={"sigma": sigma}, prior={"beta": jm.priors.Normal(0.0, s)})
    reference = {"beta": closed_form.ridge(data["X"], data["y"], sigma**2 / s**2)}
    return _rows("ridge", reference, res.params, res, seconds)


def _lasso(rng):
    import jaxmle as jm
    from jaxmle import closed_form

    data = _orthonormal_data(rng, [3.0, 0.0, 0.2, -2.0, 0.0])
    lam = 1.0  # Laplace(0, b) prior with σ = 1: λ = σ²/b
    res, seconds = _fit(
        jm.models.linear_regression(), data, fixed={"sigma": 1.0}, prior={"beta": jm.priors.Laplace(0.0, 1.0 / lam)}
    )
    reference = {"beta": closed_form.lasso_orthonormal(data["X"], data["y"], lam)}
    return _rows("lasso", reference, res.params, res, seconds)


def _map_entry(name, model, draw, prior, posterior, n=N, fixed=None):
    def check(rng):
        data = draw(rng, n)
        res, seconds = _fit(model, data, prior=prior, fixed=fixed)
        return _rows(name, posterior(data), res.params, res, seconds, prefix="MAP ")

    return check


def _normal_var_loglik(params, data):
    """N(mu, var) with the mean known (in the data) and the variance as the parameter."""
    import jax.numpy as jnp

    return -0.5 * (jnp.log(2 * jnp.pi * params["var"]) + (data["x"] - data["mu"]) ** 2 / params["var"])


def _normal_mean_var_loglik(params, data):
    import jax.numpy as jnp

    return -0.5 * (jnp.log(2 * jnp.pi * params["var"]) + (data - params["mu"]) ** 2 / params["var"])


@dataclass(frozen=True)
class NormalInverseGammaPrior:
    """log density of μ | v ~ N(mu0, v/kappa0), v ~ InverseGamma(a0, b0)."""

    mu0: float
    kappa0: float
    a0: float
    b0: float

    def __call__(self, params):
        import jax.numpy as jnp

        from jaxmle.priors import InverseGamma

        mu, v = params["mu"], params["var"]
        log_ig = InverseGamma(self.a0, self.b0).log_prob(v)
        return log_ig - 0.5 * (jnp.log(2 * jnp.pi * v / self.kappa0) + self.kappa0 * (mu - self.mu0) ** 2 / v)


def _inverse_gamma_normal(rng):
    import jaxmle as jm
    from jaxmle import closed_form

    mu, a, b = 1.0, 3.0, 2.0
    x = mu + 1.7 * rng.normal(size=N)
    res, seconds = _fit(
        _normal_var_loglik, {"var": 1.0}, {"x": x, "mu": mu},
        constraints={"var": jm.positive}, prior={"var": jm.priors.InverseGamma(a, b)},
    )  # fmt: skip
    reference = {"var": closed_form.inverse_gamma_normal(x, mu, a, b).mode}
    return _rows("inverse_gamma_normal", reference, res.params, res, seconds, prefix="MAP ")


def _normal_inverse_gamma(rng):
    import jaxmle as jm
    from jaxmle import closed_form

    hyper = dict(mu0=0.5, kappa0=4.0, a0=3.0, b0=2.0)
    x = 1.2 + 0.8 * rng.normal(size=200)
    res, seconds = _fit(
        _normal_mean_var_loglik, {"mu": 0.0, "var": 1.0}, x,
        constraints={"var": jm.positive}, prior=NormalInverseGammaPrior(**hyper),
    )  # fmt: skip
    reference = closed_form.normal_inverse_gamma(x, **hyper).mode
    return _rows("normal_inverse_gamma", reference, res.params, res, seconds, prefix="MAP ")


def _entries() -> dict:
    import jaxmle as jm
    from jaxmle import closed_form as cf
    from jaxmle.priors import Beta, Dirichlet, Gamma, Normal

    m = jm.models
    alpha = (1.5, 2.0, 3.0, 1.2)
    four = np.array([0.1, 0.2, 0.3, 0.4])
    bernoulli = lambda rng, n: (rng.uniform(size=n) < 0.3).astype(float)
    categorical = lambda rng, n: rng.choice(4, size=n, p=four).astype(float)
    poisson = lambda rng, n: rng.poisson(3.5, n).astype(float)
    exponential = lambda rng, n: rng.exponential(0.5, n)
    gaussian = lambda rng, n: rng.normal(1.0, 2.0, n)
    return {
        "bernoulli": _mle_entry(m.bernoulli(), bernoulli),
        "binomial": _mle_entry(m.binomial(10), lambda rng, n: rng.binomial(10, 0.35, n).astype(float)),
        "categorical": _mle_entry(m.categorical(4), categorical),
        "poisson": _mle_entry(m.poisson(), poisson),
        "geometric": _mle_entry(m.geometric(), lambda rng, n: rng.geometric(0.25, n) - 1.0),
        "exponential": _mle_entry(m.exponential(), exponential),
        "gaussian": _mle_entry(m.gaussian(), gaussian),
        "lognormal": _mle_entry(m.lognormal(), lambda rng, n: rng.lognormal(0.5, 0.75, n)),
        "gamma": _mle_entry(m.gamma(), lambda rng, n: rng.gamma(2.5, 1 / 1.5, n), closed=False),
        "weibull": _mle_entry(m.weibull(), lambda rng, n: 2.0 * rng.weibull(1.5, n), se_tol=5 / math.sqrt(N),
                              closed=False),
        "ols": _ols,
        "logistic_regression": _glm_entry(m.logistic_regression(), _regression_data(
            [0.5, 1.0, -0.75], lambda rng, eta: (rng.uniform(size=eta.shape) < _sigmoid(eta)).astype(float)), _sigmoid,
                                          lambda e: _sigmoid(e) * (1 - _sigmoid(e))),  # fmt: skip
        "poisson_regression": _glm_entry(m.poisson_regression(), _regression_data(
            [0.5, 0.3, -0.2], lambda rng, eta: rng.poisson(np.exp(eta)).astype(float)), np.exp, np.exp),
        "ridge": _ridge,
        "lasso": _lasso,
        "beta_bernoulli": _map_entry(
            "beta_bernoulli", m.bernoulli(), bernoulli, {"p": Beta(2.0, 3.0)},
            lambda x: {"p": cf.beta_bernoulli(x, 2.0, 3.0).mode}, n=50,
        ),
        "dirichlet_multinomial": _map_entry(
            "dirichlet_multinomial", m.categorical(4), categorical,
            {"p": Dirichlet(alpha)},
            lambda x: {"p": cf.dirichlet_multinomial(np.bincount(x.astype(int), minlength=4), alpha).mode}, n=50,
        ),
        "gamma_poisson": _map_entry(
            "gamma_poisson", m.poisson(), poisson, {"rate": Gamma(2.0, 0.5)},
            lambda x: {"rate": cf.gamma_poisson(x, 2.0, 0.5).mode}, n=30,
        ),
        "gamma_exponential": _map_entry(
            "gamma_exponential", m.exponential(), exponential, {"rate": Gamma(3.0, 1.0)},
            lambda x: {"rate": cf.gamma_exponential(x, 3.0, 1.0).mode}, n=30,
        ),
        "normal_normal": _map_entry(
            "normal_normal", m.gaussian(), gaussian, {"mu": Normal(0.0, 0.5)},
            lambda x: {"mu": cf.normal_normal(x, 2.0, 0.0, 0.5).mode}, n=40, fixed={"sigma": 2.0},
        ),
        "inverse_gamma_normal": _inverse_gamma_normal,
        "normal_inverse_gamma": _normal_inverse_gamma,
    }  # fmt: skip
