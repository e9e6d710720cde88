"""Mixed-model workloads against R's glmmTMB and lme4, in one run; writes benchmarks/MIXED.md.

    pip install -e ".[bench]" && python benchmarks/mixed.py [--only a|b] [--peer-reps N]

(a) a study of 1,000 random-intercept logistic fits (30 groups of 10 observations each):
    jaxmle ``fit_batch(random=["u"])`` (the fastest of three calls after the compiling one,
    as run.py times its batches) against a glmmTMB loop and a glmer loop (Laplace), each
    timed per fit over ``--peer-reps`` replicates (default 50).
(b) one random intercept-and-slope logistic model (correlated), 10,000 groups of 10
    (20,000 random effects): jaxmle's first ``fit`` in this process, compile included,
    against one glmmTMB and one glmer fit.

The R peers run through ``Rscript`` on the same data (written to a temporary folder), and
their times exclude R's start-up and package loading, as jaxmle's exclude its import.
Without ``Rscript`` (or without glmmTMB or lme4) the peers are skipped with a note.
Agreement: the largest relative difference of the peers' fixed effects, SDs and
log-likelihoods from jaxmle's, on the replicates both fitted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
workload <- args[1]; folder <- args[2]; reps <- as.integer(args[3])
out <- list()
have <- function(p) suppressWarnings(requireNamespace(p, quietly = TRUE))
d <- read.csv(file.path(folder, "data.csv"))
d$g <- factor(d$g)
form <- if (workload == "a") y ~ x + (1 | g) else y ~ x + (x | g)
summarise <- function(fixef, sds, loglik) list(fixef = unname(fixef), sd = unname(sds), logLik = loglik)
for (tool in c("glmmTMB", "lme4")) {
  if (!have(tool)) { out[[tool]] <- list(missing = TRUE); next }
  suppressPackageStartupMessages(library(tool, character.only = TRUE))
  fit_one <- function(dd) {
    if (tool == "glmmTMB") {
      m <- glmmTMB::glmmTMB(form, data = dd, family = binomial)
      vc <- glmmTMB::VarCorr(m)$cond$g
      summarise(glmmTMB::fixef(m)$cond, attr(vc, "stddev"), as.numeric(logLik(m)))
    } else {
      m <- lme4::glmer(form, data = dd, family = binomial)
      vc <- lme4::VarCorr(m)$g
      summarise(lme4::fixef(m), attr(vc, "stddev"), as.numeric(logLik(m)))
    }
  }
  ids <- if (workload == "a") seq_len(reps) - 1L else 0L
  warm <- fit_one(d[d$rep == ids[1], ])  # first-call costs (byte compilation, TMB's DLL) are not a fit's
  t0 <- proc.time()[["elapsed"]]
  fits <- lapply(ids, function(r) fit_one(d[d$rep == r, ]))
  per_fit <- (proc.time()[["elapsed"]] - t0) / length(ids)
  out[[tool]] <- list(per_fit = per_fit, version = as.character(packageVersion(tool)), fits = fits)
}
writeLines(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA), file.path(folder, "out.json"))
"""


def intercept_data(R, groups=30, per=10, seed=11):
    """(x, y, g) of shape (R, groups·per): logit P(y) = -0.5 + x + u[g], u ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    g = np.tile(np.repeat(np.arange(groups), per), (R, 1))
    x = rng.normal(size=g.shape)
    u = rng.normal(size=(R, groups))
    eta = -0.5 + x + np.take_along_axis(u, g, 1)
    return x, (rng.uniform(size=g.shape) < 1 / (1 + np.exp(-eta))).astype(float), g


def slope_data(groups=10_000, per=10, seed=12):
    """(x, y, g): logit P(y) = -0.5 + x + b0[g] + b1[g] x, SDs (1, 0.5), correlation 0.3."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=g.size)
    b = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.15], [0.15, 0.25]], size=groups)
    eta = -0.5 + x + b[g, 0] + b[g, 1] * x
    return x, (rng.uniform(size=g.size) < 1 / (1 + np.exp(-eta))).astype(float), g


def intercept_joint(p, d):
    import jax.numpy as jnp
    from jax.scipy.stats import norm

    eta = p["beta"][0] + p["beta"][1] * d["x"] + p["u"][d["g"]]
    return (d["y"] * eta - jnp.logaddexp(0.0, eta)).sum() + norm.logpdf(p["u"], 0.0, p["sd"]).sum()


def slope_joint(p, d):
    import jax.numpy as jnp
    from jax.scipy.stats import multivariate_normal

    b = p["b"]
    eta = p["beta"][0] + p["beta"][1] * d["x"] + b[d["g"], 0] + b[d["g"], 1] * d["x"]
    sd, rho = p["sd"], p["rho"]
    cov = jnp.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
    return (d["y"] * eta - jnp.logaddexp(0.0, eta)).sum() + multivariate_normal.logpdf(b, jnp.zeros(2), cov).sum()


def run_r(workload, x, y, g, reps):
    """The R peers' output (per-fit seconds and estimates per tool), or a reason for none."""
    if shutil.which("Rscript") is None:
        return None, "Rscript not found: R peers skipped"
    with tempfile.TemporaryDirectory() as folder:
        rep = np.repeat(np.arange(x.shape[0]), x.shape[1]) if x.ndim == 2 else np.zeros(x.size, int)
        table = np.column_stack([rep, np.ravel(x), np.ravel(y), np.ravel(g)])
        np.savetxt(Path(folder) / "data.csv", table, delimiter=",", header="rep,x,y,g", comments="", fmt="%.17g")
        (Path(folder) / "peers.R").write_text(R_SCRIPT)
        done = subprocess.run(
            ["Rscript", str(Path(folder) / "peers.R"), workload, folder, str(reps)], capture_output=True, text=True
        )
        if done.returncode != 0:
            return None, "Rscript failed: " + done.stderr.strip().splitlines()[-1]
        return json.loads((Path(folder) / "out.json").read_text()), ""


def agreement(jax_fits, r_fits):
    """Largest relative differences (fixed effects, SDs, log-likelihood) over the fits both made."""
    worst = np.zeros(3)
    for mine, theirs in zip(jax_fits, r_fits):
        for i, key in enumerate(("fixef", "sd", "logLik")):
            a, b = np.atleast_1d(mine[key]), np.atleast_1d(np.asarray(theirs[key], float))
            worst[i] = max(worst[i], float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))))
    return worst


#: timed calls of jaxmle's batch after the compiling one; the fastest counts, as in run.py
JAXMLE_CALLS = 3


def workload_a(reps, peer_reps):
    import jaxmle as jm

    x, y, g = intercept_data(reps)
    data = {"x": x, "y": y, "g": g}
    init = {"beta": np.zeros(2), "sd": 1.0, "u": np.zeros(30)}
    options = dict(constraints={"sd": jm.positive}, random=["u"], progress=False)
    t = time.perf_counter()
    jm.fit_batch(intercept_joint, init, data, **options)
    first = time.perf_counter() - t
    times = []
    for _ in range(JAXMLE_CALLS):
        t = time.perf_counter()
        batch = jm.fit_batch(intercept_joint, init, data, **options)
        times.append(time.perf_counter() - t)
    per_fit = min(times) / reps
    mine = [
        {"fixef": batch.params["beta"][i], "sd": batch.params["sd"][i], "logLik": batch.loglik[i]} for i in range(reps)
    ]
    note = f"compile+first call {first:.1f} s; {int(batch.converged.sum())}/{reps} converged"
    rows = [("a", "jaxmle fit_batch", reps, per_fit, None, None, note)]
    peers, why = run_r("a", x[:peer_reps], y[:peer_reps], g[:peer_reps], peer_reps)
    return rows + peer_rows("a", peers, why, mine, per_fit, {"glmmTMB": 100, "lme4": 30})


def workload_b():
    import jaxmle as jm

    x, y, g = slope_data()
    groups = g.max() + 1
    init = {"beta": np.zeros(2), "sd": np.ones(2), "rho": 0.0, "b": np.zeros((groups, 2))}
    constraints = {"sd": jm.positive, "rho": jm.interval(-1.0, 1.0)}
    t = time.perf_counter()
    res = jm.fit(slope_joint, init, {"x": x, "y": y, "g": g}, constraints=constraints, random=["b"])
    first = time.perf_counter() - t
    t = time.perf_counter()
    jm.fit(slope_joint, init, {"x": x, "y": y, "g": g}, constraints=constraints, random=["b"])
    second = time.perf_counter() - t
    mine = [{"fixef": res.params["beta"], "sd": res.params["sd"], "logLik": res.loglik}]
    note = f"{res.status.name}; second fit, same shapes: {second:.1f} s; {2 * groups} random effects"
    rows = [("b", "jaxmle fit (compile included)", 1, first, None, None, note)]
    peers, why = run_r("b", x, y, g, 1)
    return rows + peer_rows("b", peers, why, mine, first, {"glmmTMB": 1, "lme4": 1})


def peer_rows(workload, peers, why, mine, jax_per_fit, goals):
    if peers is None:
        return [(workload, "R peers", 0, np.nan, None, None, why)]
    rows = []
    for tool, goal in goals.items():
        got = peers.get(tool, {})
        if got.get("missing"):
            rows.append((workload, tool, 0, np.nan, None, None, f"R package {tool} not installed"))
            continue
        ratio = got["per_fit"] / jax_per_fit
        worst = agreement(mine, got["fits"])
        text = f"{tool} {got['version']}; agreement fixef {worst[0]:.1e}, SD {worst[1]:.1e}, logLik {worst[2]:.1e}"
        rows.append((workload, tool, len(got["fits"]), got["per_fit"], ratio, goal, text))
    return rows


def fmt_time(s):
    if not np.isfinite(s):
        return ""
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def write(rows, path, command, elapsed):
    import jax

    lines = [
        "# Mixed-model benchmark results",
        "",
        f"Date: {datetime.date.today()}. Machine: {platform.processor() or platform.machine()}, "
        f"{jax.device_count()} {jax.default_backend()} device(s); Python {platform.python_version()}, "
        f"JAX {jax.__version__}. Command: `{command}` ({elapsed:.0f} s in all).",
        "",
        "Ratio = the peer's time per fit / jaxmle's (above 1: jaxmle is faster). (a): jaxmle timed "
        "steady-state over all replicates (the fastest of three calls after the compiling one), the R peers "
        "in a loop over the first replicates. (b): one fit each, jaxmle's compile included.",
        "",
        "| workload | tool | fits timed | time per fit | ratio | goal: ratio at least | met | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for workload, tool, n, per_fit, ratio, goal, note in rows:
        met = "" if ratio is None else ("yes" if ratio >= goal else "no")
        ratio_text = "" if ratio is None else f"{ratio:.1f}"
        goal_text = "" if goal is None else f"{goal}"
        cells = [workload, tool, str(n), fmt_time(per_fit), ratio_text, goal_text, met, note]
        lines.append("| " + " | ".join(cells) + " |")
    Path(path).write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["a", "b"], action="append")
    parser.add_argument("--reps", type=int, default=1000, help="replicates of workload (a)")
    parser.add_argument("--peer-reps", type=int, default=50, help="replicates the R loops fit in (a)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "MIXED.md"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = []
    if not args.only or "a" in args.only:
        rows += workload_a(args.reps, args.peer_reps)
    if not args.only or "b" in args.only:
        rows += workload_b()
    command = "python benchmarks/mixed.py" + "".join(f" --only {w}" for w in args.only or [])
    write(rows, args.out, command, time.perf_counter() - start)
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
