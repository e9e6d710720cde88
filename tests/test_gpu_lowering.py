"""Every program jaxmle compiles also lowers for CUDA, checked on a machine without a GPU.

A fresh interpreter replaces ``jax.jit`` before jaxmle is imported, so that each jitted
program records the arguments of its first call; ``jax.export`` then lowers it for the
``cuda`` platform with those arguments (lowering needs no GPU). The workflows below touch
every kind of program: single fits with each solver, MAP and the Laplace approximation,
profiles, the observed, robust and expected covariances, multi-start, batches in float64
and float32, simulation studies, and random effects (Laplace, block-diagonal, quadrature).
A CPU-only change that breaks the GPU path (an operation without a CUDA lowering) fails
here (a slow check: CI runs it with the other slow checks)."""

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json
    import jax
    from jax import export

    real_jit = jax.jit
    lowered = []

    class Recorded:
        def __init__(self, fn, kw):
            self.jitted = real_jit(fn, **kw)
            # XLA:CPU tuning options do not apply to a CUDA lowering
            self.portable = real_jit(fn, **{k: v for k, v in kw.items() if k != "compiler_options"})
            inner = getattr(fn, "func", fn)  # a functools.partial names its function
            self.name = f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', type(inner).__name__)}"
            self.done = False

        def __call__(self, *args, **kwargs):
            if any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves((args, kwargs))):
                return self.portable(*args, **kwargs)  # inside another trace (eval_shape)
            if not self.done:
                self.done = True
                try:
                    text = export.export(self.portable, platforms=["cuda"])(*args, **kwargs).mlir_module()
                    lowered.append((self.name, "ok", len(text)))
                except Exception as err:  # the failure is the finding
                    lowered.append((self.name, "failed", f"{type(err).__name__}: {str(err)[:400]}"))
            return self.jitted(*args, **kwargs)

        def __getattr__(self, attr):
            return getattr(self.jitted, attr)

    def recording_jit(fn=None, **kw):
        if fn is None:
            return lambda f: Recorded(f, kw)
        return Recorded(fn, kw)

    jax.jit = recording_jit

    import numpy as np
    import jax.numpy as jnp
    from jax.scipy import stats
    import jaxmle as jm

    rng = np.random.default_rng(1)
    y = rng.normal(1.0, 2.0, 200)

    def gaussian(p, d):
        return stats.norm.logpdf(d, p["mu"], p["sigma"])

    start = {"mu": 0.0, "sigma": 1.0}
    positive = {"sigma": jm.positive}
    res = jm.fit(gaussian, start, y, constraints=positive)
    res.conf_int(method="profile")
    res.delta(lambda p: p["mu"] / p["sigma"])
    jm.fit(gaussian, start, y, constraints=positive, cov_type="robust")
    jm.fit(gaussian, start, y, constraints=positive, method="lbfgs")
    jm.fit(gaussian, start, y, constraints=positive, method="adam", max_iter=50)
    jm.fit(gaussian, start, y, constraints=positive, method="line-search")
    jm.fit(gaussian, start, y, constraints=positive, starts=4, seed=1)
    jm.fit(jm.models.poisson(), rng.poisson(3.0, 100), cov_type="expected")
    map_fit = jm.fit(gaussian, start, y, constraints=positive, prior={"mu": jm.priors.Normal(0.0, 10.0)})
    map_fit.laplace()
    X = np.column_stack([np.ones(100), rng.normal(size=100)])
    yb = (rng.uniform(size=100) < 0.4).astype(float)
    jm.fit(
        lambda p, d: d * (X @ p["beta"]) - jnp.logaddexp(0.0, X @ p["beta"]),
        {"beta": np.zeros(2)},
        yb,
        prior={"beta": jm.priors.Laplace(0.0, 1.0)},
    )

    data = rng.normal(1.0, 2.0, (64, 30))
    jm.fit_batch(gaussian, start, data, constraints=positive, progress=False)
    jm.fit_batch(gaussian, start, data, constraints=positive, progress=False, dtype=jnp.float32)
    jm.simulation_study(
        truth={"mu": 1.0, "sigma": 2.0},
        n=30,
        reps=32,
        seed=0,
        simulate=lambda key, truth, n: truth["mu"] + truth["sigma"] * jax.random.normal(key, (n,)),
        loglik=gaussian,
        constraints=positive,
        progress=False,
    )

    groups, per = 12, 6
    g = np.repeat(np.arange(groups), per)
    u_true = rng.normal(0.0, 0.8, groups)
    yy = (rng.uniform(size=groups * per) < 1 / (1 + np.exp(-(-0.3 + u_true[g])))).astype(float)

    def glmm(p, d):
        eta = p["b0"] + p["u"][d["g"]]
        lik = jnp.sum(d["y"] * eta - jnp.logaddexp(0.0, eta))
        return lik + jnp.sum(stats.norm.logpdf(p["u"], 0.0, p["sd"]))

    re_start = {"b0": 0.0, "sd": 1.0, "u": np.zeros(groups)}
    re_data = {"y": yy, "g": g}
    jm.fit(glmm, re_start, re_data, constraints={"sd": jm.positive}, random=["u"])
    jm.fit(glmm, re_start, re_data, constraints={"sd": jm.positive}, random=["u"], nagq=5)
    print("LOWERED", json.dumps(lowered))
    """
)


@pytest.mark.slow
def test_every_program_lowers_for_cuda():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    line = next(line for line in out.stdout.splitlines() if line.startswith("LOWERED "))
    lowered = json.loads(line[len("LOWERED ") :])
    failed = [entry for entry in lowered if entry[1] != "ok"]
    assert not failed, failed
    names = {entry[0] for entry in lowered}
    # the programs of each kind were reached (a rename here should fail loudly, not pass)
    fragments = [
        "Problem.solve",
        "short_sums",
        "profile",
        "simulator",
        "_structure_products",
        "scores",
        "_neg_hessian_and_jacobian",
    ]
    for fragment in fragments:
        assert any(fragment in name for name in names), (fragment, sorted(names))
    assert len(lowered) >= 20, sorted(names)
