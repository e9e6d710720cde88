"""Closed forms against scipy, statsmodels and numerical integration of the posterior."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import integrate, optimize, stats

from jaxmle import closed_form as cf

rng = np.random.default_rng(7)


def _argmax(f, lo, hi):
    return optimize.minimize_scalar(lambda t: -f(t), bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}).x


def test_mles_against_scipy():
    x = rng.normal(1.5, 2.0, 300)
    loc, scale = stats.norm.fit(x)
    assert cf.gaussian_mle(x)["mu"] == pytest.approx(loc, rel=1e-12)
    assert cf.gaussian_mle(x)["sigma"] == pytest.approx(scale, rel=1e-12)
    pos = np.exp(x / 3)
    s, _, sc = stats.lognorm.fit(pos, floc=0)
    assert cf.lognormal_mle(pos)["sigma"] == pytest.approx(s, rel=1e-6)
    assert cf.lognormal_mle(pos)["mu"] == pytest.approx(np.log(sc), rel=1e-6)
    _, sc = stats.expon.fit(pos, floc=0)
    assert cf.exponential_mle(pos)["rate"] == pytest.approx(1 / sc, rel=1e-12)


@pytest.mark.parametrize(
    "name, data, logpmf",
    [
        ("bernoulli_mle", (rng.uniform(size=200) < 0.3).astype(float), lambda x, p: stats.bernoulli.logpmf(x, p)),
        ("poisson_mle", rng.poisson(2.5, 200).astype(float), lambda x, r: stats.poisson.logpmf(x, r)),
        ("geometric_mle", rng.geometric(0.3, 200) - 1.0, lambda x, p: stats.geom.logpmf(x, p, loc=-1)),
    ],
)
def test_discrete_mles_maximize_scipy_likelihood(name, data, logpmf):
    key = "rate" if name == "poisson_mle" else "p"
    hi = 20.0 if key == "rate" else 1 - 1e-9
    best = _argmax(lambda t: logpmf(data, t).sum(), 1e-9, hi)
    assert getattr(cf, name)(data)[key] == pytest.approx(best, rel=1e-6)


def test_binomial_and_categorical_mles():
    x = rng.binomial(7, 0.4, 300).astype(float)
    best = _argmax(lambda p: stats.binom.logpmf(x, 7, p).sum(), 1e-9, 1 - 1e-9)
    assert cf.binomial_mle(x, 7)["p"] == pytest.approx(best, rel=1e-6)
    labels = rng.choice(3, size=500, p=[0.2, 0.5, 0.3])
    p = cf.categorical_mle(labels, 3)["p"]
    np.testing.assert_allclose(p, [np.mean(labels == j) for j in range(3)], rtol=1e-15)


def test_ols_against_statsmodels():
    X = np.column_stack([np.ones(100), rng.normal(size=(100, 2))])
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=100)
    ref = sm.OLS(y, X).fit()
    got = cf.ols(X, y)
    np.testing.assert_allclose(got["beta"], ref.params, rtol=1e-10)
    assert got["sigma"] == pytest.approx(np.sqrt(ref.ssr / 100), rel=1e-12)
    with pytest.raises(ValueError, match="rank"):
        cf.ols(np.column_stack([X, X[:, 1]]), y)


def test_ridge_is_augmented_least_squares():
    X = rng.normal(size=(50, 4))
    y = rng.normal(size=50)
    lam = 3.0
    Xa = np.vstack([X, np.sqrt(lam) * np.eye(4)])
    ya = np.concatenate([y, np.zeros(4)])
    np.testing.assert_allclose(cf.ridge(X, y, lam), np.linalg.lstsq(Xa, ya, rcond=None)[0], rtol=1e-10)


def test_lasso_satisfies_kkt():
    X = np.linalg.qr(rng.normal(size=(80, 5)))[0]
    y = X @ [2.0, 0.0, 0.3, -1.0, 0.05] + 0.5 * rng.normal(size=80)
    lam = 0.4
    b = cf.lasso_orthonormal(X, y, lam)
    g = X.T @ (y - X @ b)  # KKT: g_j = λ sign(b_j) where b_j != 0, |g_j| <= λ where b_j == 0
    nz = b != 0
    np.testing.assert_allclose(g[nz], lam * np.sign(b[nz]), atol=1e-12)
    assert np.all(np.abs(g[~nz]) <= lam) and (~nz).sum() >= 1
    with pytest.raises(ValueError, match="orthonormal"):
        cf.lasso_orthonormal(rng.normal(size=(80, 5)), y, lam)


def _grid_moments(logpost, lo, hi, n=200001):
    t = np.linspace(lo, hi, n)
    lp = logpost(t)
    w = np.exp(lp - lp.max())
    z = integrate.trapezoid(w, t)
    mean = integrate.trapezoid(t * w, t) / z
    var = integrate.trapezoid((t - mean) ** 2 * w, t) / z
    return mean, var


def _check_1d(post, logpost, lo, hi, mode_key=None):
    mean, var = _grid_moments(logpost, lo, hi)
    assert post.mean == pytest.approx(mean, rel=1e-6)
    assert post.var == pytest.approx(var, rel=1e-5)
    assert post.mode == pytest.approx(_argmax(logpost, lo, hi), rel=1e-6)


def test_beta_bernoulli_by_integration_and_rule_of_succession():
    x = (rng.uniform(size=30) < 0.3).astype(float)
    post = cf.beta_bernoulli(x, 2.0, 3.0)
    _check_1d(post, lambda p: stats.bernoulli.logpmf(x[:, None], p).sum(0) + stats.beta.logpdf(p, 2, 3), 1e-9, 1 - 1e-9)
    s, n = x.sum(), x.size
    assert cf.beta_bernoulli(x).mean == pytest.approx((s + 1) / (n + 2), rel=1e-15)
    with pytest.raises(ValueError, match="mode"):
        _ = cf.BetaPosterior(0.5, 2.0).mode


def test_gamma_poisson_and_gamma_exponential_by_integration():
    x = rng.poisson(3.0, 20).astype(float)
    post = cf.gamma_poisson(x, 2.0, 0.5)
    lp = lambda r: stats.poisson.logpmf(x[:, None], r).sum(0) + stats.gamma.logpdf(r, 2.0, scale=2.0)  # noqa: E731
    _check_1d(post, lp, 1e-9, 15)
    t = rng.exponential(0.5, 25)
    post = cf.gamma_exponential(t, 3.0, 1.0)
    lp = lambda r: stats.expon.logpdf(t[:, None], scale=1 / r).sum(0) + stats.gamma.logpdf(r, 3.0)  # noqa: E731
    _check_1d(post, lp, 1e-9, 15)


def test_normal_normal_and_inverse_gamma_normal_by_integration():
    x = rng.normal(1.0, 2.0, 15)
    post = cf.normal_normal(x, 2.0, 0.0, 0.5)
    lp = lambda m: stats.norm.logpdf(x[:, None], m, 2.0).sum(0) + stats.norm.logpdf(m, 0.0, 0.5)  # noqa: E731
    _check_1d(post, lp, -5, 5)
    post = cf.inverse_gamma_normal(x, 1.0, 3.0, 2.0)
    lp = lambda v: stats.norm.logpdf(x[:, None], 1.0, np.sqrt(v)).sum(0) + stats.invgamma.logpdf(v, 3.0, scale=2.0)  # noqa: E731
    _check_1d(post, lp, 1e-6, 40)


def test_normal_inverse_gamma_by_2d_integration():
    x = rng.normal(1.2, 0.8, 12)
    post = cf.normal_inverse_gamma(x, 0.5, 4.0, 3.0, 2.0)
    mu = np.linspace(-2, 4, 1201)[:, None]
    v = np.linspace(1e-4, 6, 1200)[None, :]

    def logpost(m, s2):
        prior = stats.norm.logpdf(m, 0.5, np.sqrt(s2 / 4.0)) + stats.invgamma.logpdf(s2, 3.0, scale=2.0)
        return prior + sum(stats.norm.logpdf(xi, m, np.sqrt(s2)) for xi in x)

    lp = logpost(mu, v)
    w = np.exp(lp - lp.max())
    z = integrate.trapezoid(integrate.trapezoid(w, v[0], axis=1), mu[:, 0])
    e = lambda f: integrate.trapezoid(integrate.trapezoid(f * w, v[0], axis=1), mu[:, 0]) / z  # noqa: E731
    assert post.mean["mu"] == pytest.approx(e(mu), rel=1e-5)
    assert post.mean["var"] == pytest.approx(e(v), rel=1e-4)
    assert post.var["mu"] == pytest.approx(e((mu - e(mu)) ** 2), rel=1e-4)
    best = optimize.minimize(lambda q: -logpost(q[0], q[1]), [1.0, 0.5], method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 5000}).x  # fmt: skip
    assert post.mode["mu"] == pytest.approx(best[0], rel=1e-6)
    assert post.mode["var"] == pytest.approx(best[1], rel=1e-6)


def test_dirichlet_multinomial():
    counts = np.array([3.0, 10.0, 0.0, 7.0])
    alpha = np.array([1.5, 2.0, 3.0, 1.2])
    post = cf.dirichlet_multinomial(counts, alpha)
    ref = stats.dirichlet(alpha + counts)
    np.testing.assert_allclose(post.mean, ref.mean(), rtol=1e-14)
    np.testing.assert_allclose(post.var, ref.var(), rtol=1e-14)

    def neg(u):  # log posterior over softmax coordinates
        p = np.exp(np.append(u, 0.0))
        p /= p.sum()
        return -(stats.multinomial.logpmf(counts, counts.sum(), p) + stats.dirichlet.logpdf(p, alpha))

    u = optimize.minimize(neg, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x
    p = np.exp(np.append(u, 0.0))
    np.testing.assert_allclose(post.mode, p / p.sum(), rtol=1e-5)
    ones = cf.dirichlet_multinomial(counts, np.ones(4))
    np.testing.assert_allclose(ones.mean, (counts + 1) / (counts.sum() + 4), rtol=1e-15)  # add-one smoothing


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cf.bernoulli_mle([0, 2]), "0/1"),
        (lambda: cf.poisson_mle([1.5]), "whole"),
        (lambda: cf.exponential_mle([1.0, -1.0]), "x must be > 0"),
        (lambda: cf.gamma_poisson([1], -1.0, 1.0), "shape"),
        (lambda: cf.normal_normal([1.0], 1.0, 0.0, 0.0), "tau0"),
        (lambda: cf.dirichlet_multinomial([1, 2], [1, 1, 1]), "same length"),
        (lambda: cf.ridge(np.ones((3, 2)), np.ones(4), 1.0), "X must be"),
        (lambda: cf.gaussian_mle([np.nan]), "NaN"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
