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

With ``--nuts``, every conjugate pair is also sampled by NUTS (``jm.sample``, fixed seed, on
the same data as its MAP row) and its posterior mean and variance are judged by a z-score on
the Monte Carlo standard error, |estimate - exact| / MCSE <= 4. For the draws x of one
element, pooled over chains: the mean x̄ has MCSE sd(x) / sqrt(ESS(x)); the variance
estimate mean((x - x̄)²) is the mean of the squared centred draws c, so its MCSE is
sd(c) / sqrt(ESS(c)) (``diagnostics.mcse_mean`` of c; ESS by Geyer's initial monotone
sequence). Without blackjax (the ``bayes`` extra) these rows are shown as skipped.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Callable
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
#: NUTS rows pass when |estimate - exact| / MCSE is at most this
Z_MAX = 4.0
#: the NUTS run of every conjugate pair
NUTS_SIZE = {"chains": 4, "draws": 1000, "warmup": 500}


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


@dataclass
class NutsRow:
    """A NUTS posterior moment against the closed form: z = |nuts - closed_form| / mcse.
    ``skipped`` says why the row did not run (then ``nuts`` and ``mcse`` are None); a
    skipped row is not a failure."""

    entry: str
    quantity: str
    closed_form: float
    nuts: float | None = None
    mcse: float | None = None
    z_max: float = Z_MAX
    seconds: float = 0.0
    skipped: str = ""

    @property
    def z(self) -> float | None:
        return None if self.skipped else abs(self.nuts - self.closed_form) / self.mcse

    @property
    def ok(self) -> bool:
        return bool(self.skipped) or self.z <= self.z_max


def register(sub) -> None:
    p = sub.add_parser("verify", help="check fits against closed-form MLEs, MAPs and Fisher-information SEs")
    p.add_argument("--only", metavar="NAME", help=f"run one entry: {', '.join(ENTRIES)}")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    p.add_argument(
        "--nuts",
        action="store_true",
        help=f"also sample every conjugate pair by NUTS (needs blackjax; about 15 s a pair) and check the "
        f"posterior mean and variance within Monte Carlo error (|z| <= {Z_MAX:g} on the MCSE)",
    )
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
        rows.extend(entries[name](_rng(name)))
        if not args.json:
            sys.stdout.write(render(rows, header=not any(r.entry != name for r in rows[:-1]), only=name))
            sys.stdout.flush()
    nuts_rows = _run_nuts(names, echo=not args.json) if args.nuts else []
    total = time.perf_counter() - start
    failed = [r for r in rows + nuts_rows if not r.ok]
    skipped = [r for r in nuts_rows if r.skipped]
    if args.json:
        out = {
            "passed": not failed,
            "n_rows": len(rows) + len(nuts_rows),
            "n_failed": len(failed),
            "n_skipped": len(skipped),
            "seconds": total,
            "rows": [dict(asdict(r), ok=r.ok) for r in rows],
            "nuts_rows": [dict(asdict(r), z=r.z, ok=r.ok) for r in nuts_rows],
        }
        print(json.dumps(out, indent=1))
    else:
        verdict = "all passed" if not failed else f"{len(failed)} FAILED"
        skips = f", {len(skipped)} skipped" if skipped else ""
        hint = "" if args.nuts else " (NUTS posterior rows: jaxmle verify --nuts)"
        print(f"\n{len(rows) + len(nuts_rows)} checks, {verdict}{skips}, in {total:.1f} s{hint}")
    return 1 if failed else 0


def _rng(name: str) -> np.random.Generator:
    """The entry's data stream: the same data for its closed-form and NUTS rows."""
    return np.random.default_rng([SEED, ENTRIES.index(name)])


def _run_nuts(names: list[str], echo: bool) -> list[NutsRow]:
    """The NUTS rows of the conjugate pairs among ``names``, each pair's printed as it ends
    when ``echo``."""
    pairs = _conjugates()
    rows = []
    for i, name in enumerate(n for n in names if n in pairs):
        new = _nuts_rows(name, pairs[name], _rng(name))
        rows.extend(new)
        if echo:
            sys.stdout.write(render_nuts(new, header=i == 0))
            sys.stdout.flush()
    return rows


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


NUTS_COLUMNS = (
    f"{'entry':<22}{'NUTS posterior':<16}{'closed form':>20}{'NUTS':>20}{'MCSE':>12}{'|z|':>7}{'max':>5}  {'':4}"
    f"{'time':>7}"
)


def render_nuts(rows: list[NutsRow], header: bool) -> str:
    """The rows, under the NUTS header when ``header``."""
    lines = ["", NUTS_COLUMNS, "-" * len(NUTS_COLUMNS)] if header else []
    for r in rows:
        start = f"{r.entry:<22}{r.quantity:<16}{r.closed_form:>20.12g}"
        if r.skipped:
            lines.append(f"{start}  skipped: {r.skipped}")
            continue
        flag = "ok" if r.ok else "MISS"
        lines.append(f"{start}{r.nuts:>20.12g}{r.mcse:>12.2e}{r.z:>7.2f}{r.z_max:>5g}  {flag:<4}{r.seconds:>6.2f}s")
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


@dataclass(frozen=True)
class Conjugate:
    """A conjugate pair of the catalog: a likelihood (a built-in model, or a log-likelihood
    with its ``init``), its prior, a data draw ``draw(rng)`` and the exact posterior
    ``posterior(data)`` (a ``jm.closed_form`` posterior). ``param`` names the parameter of a
    one-parameter posterior; a posterior over several gives dicts already."""

    loglik: object
    draw: Callable
    prior: object
    posterior: Callable
    param: str | None = None
    init: dict | None = None
    constraints: dict | None = None
    fixed: dict | None = None

    def args(self, data) -> tuple:
        """The positional arguments of ``jm.fit`` and ``jm.sample``."""
        return (self.loglik, data) if self.init is None else (self.loglik, self.init, data)

    def options(self) -> dict:
        return {"prior": self.prior, "constraints": self.constraints, "fixed": self.fixed}

    def values(self, moment) -> dict:
        """A posterior's ``mean``, ``mode`` or ``var`` as a dict over parameter names."""
        return moment if self.param is None else {self.param: moment}


def _map_entry(name, pair: Conjugate):
    def check(rng):
        data = pair.draw(rng)
        res, seconds = _fit(*pair.args(data), **pair.options())
        return _rows(name, pair.values(pair.posterior(data).mode), res.params, res, seconds, prefix="MAP ")

    return check


def _columns(draws: dict, names) -> dict[str, np.ndarray]:
    """The (chain, draw) draws of every element of the parameters ``names``, labelled as in
    ``_flat``."""
    out = {}
    for name in sorted(names):
        v = np.asarray(draws[name], dtype=float)
        if v.ndim == 2:
            out[name] = v
        else:
            flat = v.reshape(v.shape[:2] + (-1,))
            out.update({f"{name}[{i}]": flat[:, :, i] for i in range(flat.shape[2])})
    return out


def _moments(x: np.ndarray) -> dict[str, tuple[float, float]]:
    """(estimate, MCSE) of the posterior mean and variance from the (chain, draw) draws x:
    x̄ with sd(x)/sqrt(ESS(x)), and mean(c) for c = (x - x̄)² with sd(c)/sqrt(ESS(c))."""
    from jaxmle import diagnostics

    centred = (x - x.mean()) ** 2
    return {
        "mean": (float(x.mean()), diagnostics.mcse_mean(x)),
        "var": (float(centred.mean()), diagnostics.mcse_mean(centred)),
    }


def _nuts_rows(name, pair: Conjugate, rng) -> list[NutsRow]:
    """The NUTS posterior mean and variance of every element against the closed form, or
    the same rows skipped with the reason when blackjax is missing."""
    import jaxmle as jm
    from jaxmle import sampling

    data = pair.draw(rng)
    exact = pair.posterior(data)
    reference = {m: dict(_flat(pair.values(getattr(exact, m)))) for m in ("mean", "var")}
    try:
        sampling._blackjax()
    except ImportError as err:
        return [NutsRow(name, f"{m}({q})", ref, skipped=str(err)) for m in reference for q, ref in reference[m].items()]
    t = time.perf_counter()
    res = jm.sample(*pair.args(data), **pair.options(), seed=SEED, **NUTS_SIZE)
    seconds = time.perf_counter() - t
    moments = {q: _moments(x) for q, x in _columns(res.draws, pair.values(exact.mean)).items()}
    return [
        NutsRow(name, f"{m}({q})", ref, *moments[q][m], seconds=seconds)
        for m in reference
        for q, ref in reference[m].items()
    ]


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


def _conjugates() -> dict[str, Conjugate]:
    """The conjugate pairs of the catalog, in the order of ``ENTRIES``."""
    import jaxmle as jm
    from jaxmle import closed_form as cf
    from jaxmle.priors import Beta, Dirichlet, Gamma, InverseGamma, Normal

    m = jm.models
    alpha = (1.5, 2.0, 3.0, 1.2)
    nig = dict(mu0=0.5, kappa0=4.0, a0=3.0, b0=2.0)
    return {
        "beta_bernoulli": Conjugate(
            m.bernoulli(), lambda rng: _bernoulli(rng, 50), {"p": Beta(2.0, 3.0)},
            lambda x: cf.beta_bernoulli(x, 2.0, 3.0), "p",
        ),
        "dirichlet_multinomial": Conjugate(
            m.categorical(4), lambda rng: _categorical(rng, 50), {"p": Dirichlet(alpha)},
            lambda x: cf.dirichlet_multinomial(np.bincount(x.astype(int), minlength=4), alpha), "p",
        ),
        "gamma_poisson": Conjugate(
            m.poisson(), lambda rng: _poisson(rng, 30), {"rate": Gamma(2.0, 0.5)},
            lambda x: cf.gamma_poisson(x, 2.0, 0.5), "rate",
        ),
        "gamma_exponential": Conjugate(
            m.exponential(), lambda rng: _exponential(rng, 30), {"rate": Gamma(3.0, 1.0)},
            lambda x: cf.gamma_exponential(x, 3.0, 1.0), "rate",
        ),
        "normal_normal": Conjugate(
            m.gaussian(), lambda rng: _gaussian(rng, 40), {"mu": Normal(0.0, 0.5)},
            lambda x: cf.normal_normal(x, 2.0, 0.0, 0.5), "mu", fixed={"sigma": 2.0},
        ),
        "inverse_gamma_normal": Conjugate(
            _normal_var_loglik, lambda rng: {"x": 1.0 + 1.7 * rng.normal(size=N), "mu": 1.0},
            {"var": InverseGamma(3.0, 2.0)}, lambda d: cf.inverse_gamma_normal(d["x"], d["mu"], 3.0, 2.0), "var",
            init={"var": 1.0}, constraints={"var": jm.positive},
        ),
        "normal_inverse_gamma": Conjugate(
            _normal_mean_var_loglik, lambda rng: 1.2 + 0.8 * rng.normal(size=200), NormalInverseGammaPrior(**nig),
            lambda x: cf.normal_inverse_gamma(x, **nig), init={"mu": 0.0, "var": 1.0},
            constraints={"var": jm.positive},
        ),
    }  # fmt: skip


def _bernoulli(rng, n):
    return (rng.uniform(size=n) < 0.3).astype(float)


def _categorical(rng, n):
    return rng.choice(4, size=n, p=[0.1, 0.2, 0.3, 0.4]).astype(float)


def _poisson(rng, n):
    return rng.poisson(3.5, n).astype(float)


def _exponential(rng, n):
    return rng.exponential(0.5, n)


def _gaussian(rng, n):
    return rng.normal(1.0, 2.0, n)


def _entries() -> dict:
    import jaxmle as jm

    m = jm.models
    return {
        "bernoulli": _mle_entry(m.bernoulli(), _bernoulli),
        "binomial": _mle_entry(m.binomial(10), lambda rng, n: rng.binomial(10, 0.35, n).astype(float)),
        "categorical": _mle_entry(m.categorical(4), _categorical),
        "poisson": _mle_entry(m.poisson(), _poisson),
        "geometric": _mle_entry(m.geometric(), lambda rng, n: rng.geometric(0.25, n) - 1.0),
        "exponential": _mle_entry(m.exponential(), _exponential),
        "gaussian": _mle_entry(m.gaussian(), _gaussian),
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
        **{name: _map_entry(name, pair) for name, pair in _conjugates().items()},
    }  # fmt: skip
