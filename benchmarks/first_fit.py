"""First fits in fresh processes: whole-process time of a one-off script without JAX's
persistent compilation cache, with it cold (empty) and warm, against statsmodels.

    python benchmarks/first_fit.py [--repeat 3] [--fits logit,gauss,batch,random]

Every process is a new interpreter (import, simulate, fit, print); all modes run in the same
call, interleaved, and the best wall time (and the CPU time of that process) is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time

#: the one-off script: a logistic regression, a Gaussian, a batch of 100 Gaussians and a
#: random-intercept model, each the first fit of its kind in the process
JAXMLE_SCRIPT = textwrap.dedent(
    """
    import time; t0 = time.perf_counter()
    import json, logging, sys
    import numpy as np, jax, jax.numpy as jnp, jaxmle as jm

    hits = {"hit": 0, "miss": 0}
    class Count(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            hits["hit"] += msg.startswith("Persistent compilation cache hit")
            hits["miss"] += msg.startswith("PERSISTENT COMPILATION CACHE MISS")
    log = logging.getLogger("jax._src.compiler"); log.setLevel(logging.DEBUG); log.addHandler(Count())
    log.propagate = False
    if sys.argv[1] != "off":
        jm.compile_cache(sys.argv[1])
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(1000), rng.normal(size=(1000, 5))])
    y = (rng.uniform(size=1000) < 1 / (1 + np.exp(-X @ np.array([0.5, 1, -1, 0.5, 0, 0.25])))).astype(float)
    def logit(p, d):
        eta = d["X"] @ p["beta"]
        return d["y"] * eta - jnp.logaddexp(0.0, eta)
    def normal(p, d):
        return jax.scipy.stats.norm.logpdf(d, p["mu"], p["sigma"])
    def lmm(p, d):
        fixed = jax.scipy.stats.norm.logpdf(d["y"], p["mu"] + p["u"][d["g"]], p["s"]).sum()
        return fixed + jax.scipy.stats.norm.logpdf(p["u"], 0.0, p["tau"]).sum()
    pos = jm.positive
    g = np.repeat(np.arange(20), 10)
    fits = {
        "logit": lambda: jm.fit(logit, {"beta": np.zeros(6)}, {"X": X, "y": y}),
        "gauss": lambda: jm.fit(normal, {"mu": 0.0, "sigma": 1.0}, rng.normal(2, 1.5, 200), constraints={"sigma": pos}),
        "batch": lambda: jm.fit_batch(
            normal, {"mu": 0.0, "sigma": 1.0}, rng.normal(2, 1.5, (100, 50)), constraints={"sigma": pos}
        ),
        "random": lambda: jm.fit(
            lmm, {"mu": 0.0, "s": 1.0, "tau": 1.0, "u": np.zeros(20)},
            {"y": 1 + rng.normal(0, 0.7, 20)[g] + rng.normal(0, 0.5, 200), "g": g},
            constraints={"s": pos, "tau": pos}, random=["u"],
        ),
    }
    times, estimates = {}, {}
    for name in sys.argv[2].split(","):
        t = time.perf_counter(); res = fits[name](); times[name] = time.perf_counter() - t
        print(res.summary() if name != "batch" else res.params)
        leaves = jax.tree.leaves((res.params, res.se))
        estimates[name] = b"".join(np.asarray(v).tobytes() for v in leaves).hex()
    print("RESULT", json.dumps({"times": times, "estimates": estimates, **hits, "total": time.perf_counter() - t0}))
    """
)

FITS = ("logit", "gauss", "batch", "random")

STATSMODELS_SCRIPT = textwrap.dedent(
    """
    import numpy as np, statsmodels.api as sm
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(1000), rng.normal(size=(1000, 5))])
    y = (rng.uniform(size=1000) < 1 / (1 + np.exp(-X @ np.array([0.5, 1, -1, 0.5, 0, 0.25])))).astype(float)
    print(sm.Logit(y, X).fit(disp=False).summary())
    """
)


def run_process(script: str, *args: str) -> tuple[float, float, dict]:
    """Wall and CPU seconds of one fresh interpreter running ``script``, and its RESULT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = json.loads(out.stdout.split("RESULT", 1)[1]) if "RESULT" in out.stdout else {}
    return wall, cpu, result


def measure(repeat: int, fits: str) -> dict[str, list]:
    """Every mode ``repeat`` times, interleaved; a fresh empty cache for each cold run."""
    runs: dict[str, list] = {"no cache": [], "cold cache": [], "warm cache": [], "statsmodels": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as cache:
            runs["no cache"].append(run_process(JAXMLE_SCRIPT, "off", fits))
            runs["cold cache"].append(run_process(JAXMLE_SCRIPT, cache, fits))
            runs["warm cache"].append(run_process(JAXMLE_SCRIPT, cache, fits))
        runs["statsmodels"].append(run_process(STATSMODELS_SCRIPT))
    return runs


def report(runs: dict[str, list], fits: str) -> None:
    names = fits.split(",")
    print(f"| process | wall (best) | CPU of that process | {' | '.join(names)} | cache hits / misses |")
    print("|---|---|---|" + "---|" * len(names) + "---|")
    for mode, results in runs.items():
        wall, cpu, res = min(results, key=lambda r: r[0])
        firsts = " | ".join(f"{res['times'][n]:.2f} s" if res else "" for n in names)
        counts = f"{res['hit']} / {res['miss']}" if res and mode != "no cache" else ""
        print(f"| {mode} | {wall:.2f} s | {cpu:.2f} s | {firsts} | {counts} |")
    jaxmle = [r[2]["estimates"] for mode in ("no cache", "cold cache", "warm cache") for r in runs[mode]]
    print("estimates bit-identical across modes and runs:", all(e == jaxmle[0] for e in jaxmle))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="processes per mode (default 3)")
    p.add_argument("--fits", default=",".join(FITS), help="the first fits to run, in order (default: all)")
    args = p.parse_args(argv)
    if not set(args.fits.split(",")) <= set(FITS):
        p.error(f"--fits: choose from {','.join(FITS)}")
    report(measure(args.repeat, args.fits), args.fits)


if __name__ == "__main__":
    main()
