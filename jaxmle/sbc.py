"""sbc(): simulation-based calibration of a Bayesian model and its sampler (Talts, Betancourt,
Simpson, Vehtari and Gelman 2018, "Validating Bayesian inference algorithms with
simulation-based calibration", arXiv:1804.06788).

Draw θ from the prior, simulate data y from θ, and draw θ₁..θ_L from the posterior p(θ | y).
When the draws come from the exact posterior of the model that simulated y, the rank
r = #{l : θ_l < θ} of each scalar element of θ among its L draws is uniform on {0, ..., L}
(θ and the θ_l are then exchangeable draws from the joint). Ranks piled at both ends say
the posterior is too narrow, a hump in the middle too wide, a slope biased. ``sbc`` repeats
this ``reps`` times and tests the rank counts in B bins against the uniform (Pearson's
chi-square, B - 1 degrees of freedom).

The posterior is sampled by the NUTS program of ``jm.sample`` (``sampling.nuts_program``),
vmapped over replicates: one compiled program draws every replicate's θ and simulates its
data, a second runs every replicate's chains and ranks θ among its draws. Replicate i is
keyed by ``jax.random.fold_in(jax.random.key(seed), i)``, so the result does not depend on
``chunk_size``. Draws are thinned (every ``thin``-th of each
chain) towards independent draws, which the uniformity of the ranks assumes; autocorrelated
draws give ranks piled at the ends even for a correct sampler.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaincc

from . import _precision, constraints, diagnostics, sampling, validation
from .fit import check_at_start, prepare
from .priors import Prior
from .results import box_table, import_pandas
from .verdict import join_names

__all__ = ["sbc", "SBCResult"]

#: level of the band of the rank counts drawn by ``SBCResult.plot``
BAND_LEVEL = 0.99
#: p-values below this are reported as a failed calibration in the summary
P_MIN = 0.001


def sbc(
    simulate,
    loglik,
    prior,
    n,
    reps,
    *,
    seed,
    chains: int = 4,
    draws: int = 200,
    warmup: int = 200,
    thin: int = 2,
    constraints=None,
    shapes=None,
    bins=None,
    chunk_size=None,
) -> SBCResult:
    """Simulation-based calibration of the posterior of ``loglik`` under ``prior`` by NUTS.

    ``prior``: a dict ``name -> prior`` from ``jm.priors`` for every parameter (each must be
    proper, to be drawn from); a parameter is a scalar unless ``shapes`` gives its shape (a
    Dirichlet's is that of its ``alpha``). ``simulate(key, params, n)`` returns a dataset of
    ``n`` observations, as in ``simulation_study``; ``loglik(params, data)`` as in ``fit``.
    ``constraints`` default to each prior's support (``jm.positive`` for a Gamma, ...).
    The chains of each replicate start at an independent draw from the prior.

    Each of ``reps`` replicates runs ``chains`` NUTS chains of ``warmup`` + ``draws``
    steps, as ``jm.sample``; every ``thin``-th draw of each chain is kept, L = chains ·
    (draws // thin) in all. ``bins`` (default: about reps/10, from 2 to 20) is the number
    of bins of the uniformity test; ``chunk_size`` replicates run per program (default all,
    up to 1000). Runs in float64.
    """
    _check_callable("simulate", simulate, "simulate(key, params, n)")
    _check_callable("loglik", loglik, "loglik(params, data)")
    n = validation.check_positive_int("n", n, allow_none=False)
    reps = validation.check_positive_int("reps", reps, allow_none=False)
    seed = validation.check_seed(seed)
    chains = validation.check_positive_int("chains", chains, allow_none=False)
    draws = validation.check_positive_int("draws", draws, allow_none=False, minimum=4)
    warmup = validation.check_positive_int("warmup", warmup, allow_none=False)
    thin = validation.check_positive_int("thin", thin, allow_none=False)
    if thin > draws:
        raise ValueError(f"thin={thin} keeps no draw of the {draws} per chain: thin must be at most draws")
    size = chains * (draws // thin)
    bins = _check_bins(bins, reps, size)
    chunk_size = min(validation.check_positive_int("chunk_size", chunk_size) or 1000, reps)
    sampling._blackjax()  # before any work: say at once that the extra is missing
    priors, shapes = _check_prior(prior, shapes)
    merged = {name: _support(p) for name, p in priors}
    merged.update(_check_constraints(constraints, priors))

    with _precision.context(np.float64):
        key = jax.random.key(seed)
        theta = _draw(priors, shapes, key)
        _check_simulate(simulate, theta, n)
        _precision.user_code_ran()
        data = simulate(key, theta, n)
    prep = prepare(
        loglik,
        jax.tree_util.tree_map(np.asarray, theta),
        data,
        constraints=merged,
        prior=dict(priors),
        fixed=None,
        method="auto",
        nobs=None,
        tol=None,
        max_iter=None,
        dtype=np.float64,
    )
    check_at_start(prep, prep.data)
    simulator = _compiled_simulator(simulate, priors, tuple(shapes.items()), n)
    posterior = _compiled_ranks(prep.problem, chains, draws, warmup, thin)
    ranks, rhat, divergences = _run(simulator, posterior, seed, reps, chunk_size)
    return SBCResult(
        ranks=ranks,
        names=prep.problem.space.names,
        L=size,
        bins=bins,
        rhat=rhat,
        divergences=divergences,
        n=n,
        chains=chains,
        draws=draws,
        warmup=warmup,
        thin=thin,
    )


def _check_callable(argument: str, fn, form: str) -> None:
    if not callable(fn):
        raise ValueError(f"{argument} must be a callable {form}, got {type(fn).__name__}")


def _check_bins(bins, reps: int, size: int) -> int:
    """The number of bins: given (2 to L + 1), or about reps/10 clipped to [2, 20]."""
    if bins is None:
        return int(np.clip(reps // 10, 2, min(20, size + 1)))
    bins = validation.check_positive_int("bins", bins, allow_none=False, minimum=2)
    if bins > size + 1:
        raise ValueError(f"bins={bins} is more than the {size + 1} possible ranks (0 to L = {size})")
    return bins


def _check_prior(prior, shapes) -> tuple[tuple, dict]:
    """((name, Prior), ...) sorted by name, and each parameter's shape (ValueError naming
    ``prior`` or ``shapes`` on bad input; every prior is drawn from once, by tracing)."""
    if not isinstance(prior, dict) or not prior:
        raise ValueError(
            "prior: sbc draws the parameters from the prior, so prior must be a dict name -> prior from jm.priors "
            f"for every parameter (a callable log-prior cannot be drawn from), got {type(prior).__name__}"
        )
    for name, p in prior.items():
        if not isinstance(p, Prior):
            raise ValueError(f"prior[{name!r}] must be a prior from jm.priors, got {p!r}")
    shapes = validation.check_names("shapes", shapes, set(prior))
    resolved = {}
    for name, p in sorted(prior.items()):
        args = (tuple(shapes[name]),) if name in shapes else ()
        try:
            resolved[name] = jax.eval_shape(lambda k, p=p, args=args: p.sample(k, *args), jax.random.key(0)).shape
        except (TypeError, ValueError) as err:
            raise ValueError(f"prior[{name!r}]: {err}; sbc needs a proper prior, one it can draw from") from err
    return tuple(sorted(prior.items())), resolved


def _support(p: Prior):
    """The constraint whose support is the prior's."""
    if p.on_simplex:
        return constraints.simplex
    lo, hi = p.lower, p.upper
    if math.isinf(lo) and math.isinf(hi):
        return constraints.real
    if math.isinf(hi):
        return constraints.positive if lo == 0 else constraints.greater_than(lo)
    if math.isinf(lo):
        return constraints.less_than(hi)
    return constraints.unit_interval if (lo, hi) == (0, 1) else constraints.interval(lo, hi)


def _check_constraints(given, priors: tuple) -> dict:
    """``constraints`` whose supports hold their priors' (``fit`` checks the converse), so
    that every draw from a prior is a valid parameter value."""
    given = validation.check_names("constraints", given, {name for name, _ in priors})
    for name, p in priors:
        c = given.get(name)
        if c is not None and (c.lower > p.lower or c.upper < p.upper):
            raise ValueError(
                f"constraints[{name!r}]: {c!r} allows ({c.lower:g}, {c.upper:g}), less than the support "
                f"[{p.lower:g}, {p.upper:g}] of the prior {type(p).__name__}, whose draws would fall outside it"
            )
    return given


def _check_simulate(simulate, theta, n: int) -> None:
    """``simulate`` reads no parameter without a prior; then ``validation.check_simulate``."""
    try:
        jax.eval_shape(lambda k, p: simulate(k, p, n), jax.random.key(0), theta)
    except KeyError as err:
        raise ValueError(
            f"prior: simulate reads the parameter {err.args[0]!r}, which has no prior: sbc draws every "
            "parameter from its prior, so each needs a proper one"
        ) from None
    except Exception:  # named by check_simulate
        pass
    validation.check_simulate(simulate, theta, n)


def _draw(priors: tuple, shapes: dict, key) -> dict:
    """One draw of every parameter from its prior."""
    keys = jax.random.split(key, len(priors))
    return {name: p.sample(k, shapes[name]) for (name, p), k in zip(priors, keys)}


def _keys(key, i):
    """Replicate i's keys: for θ, for its data, for the chains' start, for NUTS."""
    return jax.random.split(jax.random.fold_in(key, i), 4)


@functools.lru_cache(maxsize=16)
def _compiled_simulator(simulate, priors, shapes, n):
    """The jitted ``(key, replicate indices) -> (θ, data, start)``: θ and an independent
    start for the chains from the prior, data from θ."""
    shapes = dict(shapes)

    def replicate(key, i):
        prior_key, data_key, start_key, _ = _keys(key, i)
        theta = _draw(priors, shapes, prior_key)
        _precision.user_code_ran()
        return theta, simulate(data_key, theta, n), _draw(priors, shapes, start_key)

    return jax.jit(jax.vmap(replicate, in_axes=(None, 0)))


@functools.lru_cache(maxsize=16)
def _compiled_ranks(problem, chains, draws, warmup, thin):
    """The jitted ``(key, replicate indices, θ, data, start) -> (ranks, draws, divergent)``:
    per replicate, NUTS (``sampling.nuts_program``) on its data from its start, and the rank
    of each element of θ among the thinned draws. Kept apart from the simulator, so that
    models that differ in their simulator alone share it."""
    run = sampling.nuts_program(problem, chains, draws, warmup)
    space = problem.space

    def replicate(key, i, theta, data, start):
        out = run(_keys(key, i)[3], space.x_leaves_to_u(jax.tree_util.tree_leaves(start)), [], data)
        x = jax.vmap(jax.vmap(space.flat_x))(out.x)  # (chains, draws, k)
        kept = x[:, thin - 1 :: thin].reshape(-1, x.shape[-1])
        return jnp.sum(kept < space.flat_x(jax.tree_util.tree_leaves(theta)), axis=0), x, out.divergent

    return jax.jit(jax.vmap(replicate, in_axes=(None, 0, 0, 0, 0)))


def _run(simulator, posterior, seed: int, reps: int, chunk_size: int):
    """Ranks (reps, k), R-hat (reps, k) and divergences (reps,), ``chunk_size`` replicates
    per call (the last chunk padded, so one program serves them all)."""
    ranks, rhat, divergences = [], [], []
    for start in range(0, reps, chunk_size):
        index = np.minimum(np.arange(start, start + chunk_size), reps - 1)
        with _precision.context(np.float64):
            key, index = jax.random.key(seed), jnp.asarray(index, jnp.uint32)
            out = posterior(key, index, *simulator(key, index))
            r, x, divergent = jax.tree_util.tree_map(np.asarray, out)
        used = min(chunk_size, reps - start)
        ranks.append(r[:used])
        rhat.append([[diagnostics.rhat(x[i, :, :, j]) for j in range(x.shape[-1])] for i in range(used)])
        divergences.append(divergent[:used].sum(axis=(1, 2)))
    return np.concatenate(ranks), np.concatenate(rhat), np.concatenate(divergences)


@dataclass
class SBCResult:
    """The outcome of ``jm.sbc``.

    ``ranks[i, j]`` is the rank of replicate i's prior draw of element ``names[j]`` among
    its L thinned posterior draws, uniform on {0, ..., L} under a calibrated posterior.
    ``p_values[j]`` is Pearson's chi-square test of that uniformity for element j, on the
    counts of ranks in ``bins`` bins (B - 1 degrees of freedom; bin b holds the ranks r
    with floor(r·B/(L+1)) = b). ``rhat`` (reps, k) is each replicate's rank-normalized
    split R-hat (``diagnostics.rhat``), ``divergences`` (reps,) its divergent transitions.
    """

    ranks: np.ndarray
    names: list[str]
    L: int
    bins: int
    rhat: np.ndarray
    divergences: np.ndarray
    n: int
    chains: int
    draws: int
    warmup: int
    thin: int

    @property
    def reps(self) -> int:
        return self.ranks.shape[0]

    @property
    def bin_probabilities(self) -> np.ndarray:
        """Under uniform ranks, the probability of each bin: its share of the L + 1 ranks."""
        return np.bincount(self._bin(np.arange(self.L + 1)), minlength=self.bins) / (self.L + 1)

    def _bin(self, ranks):
        return ranks * self.bins // (self.L + 1)

    @property
    def counts(self) -> np.ndarray:
        """The number of replicates in each bin, (bins, k)."""
        return np.stack([np.bincount(self._bin(r), minlength=self.bins) for r in self.ranks.T], axis=1)

    @property
    def p_values(self) -> np.ndarray:
        """Per element: P(χ²_{B-1} >= Σ_b (O_b - E_b)² / E_b), E_b = reps · bin probability."""
        expected = self.reps * self.bin_probabilities[:, None]
        statistic = np.sum((self.counts - expected) ** 2 / expected, axis=0)
        with _precision.context(np.float64):
            return np.asarray(gammaincc((self.bins - 1) / 2, jnp.asarray(statistic) / 2))

    @property
    def n_divergent(self) -> int:
        """Replicates with at least one divergent transition."""
        return int(np.sum(self.divergences > 0))

    @property
    def n_rhat(self) -> int:
        """Replicates with an R-hat above ``sampling.RHAT_MAX`` (or undefined) for some element."""
        return int(np.sum(np.any(~(self.rhat <= sampling.RHAT_MAX), axis=1)))

    def band(self, level: float = BAND_LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """Per bin, the central ``level`` interval of its count under uniform ranks:
        quantiles of Binomial(reps, bin probability)."""
        k = np.arange(self.reps + 1)
        log_choose = np.array(
            [math.lgamma(self.reps + 1) - math.lgamma(i + 1) - math.lgamma(self.reps - i + 1) for i in k]
        )
        lower, upper = [], []
        for p in self.bin_probabilities:
            cdf = np.cumsum(np.exp(log_choose + k * math.log(p) + (self.reps - k) * math.log1p(-p)))
            lower.append(np.searchsorted(cdf, (1 - level) / 2))
            upper.append(np.searchsorted(cdf, (1 + level) / 2))
        return np.array(lower), np.array(upper)

    @property
    def problems(self) -> list[str]:
        """Calibration and sampling problems in words (empty when none was found)."""
        found = []
        bad = [name for name, p in zip(self.names, self.p_values) if p < P_MIN]
        if bad:
            found.append(
                f"the ranks of {join_names(bad)} are not uniform (p < {P_MIN}): the posterior is miscalibrated "
                "(a wrong likelihood, prior or simulator, or a sampler that fails); see plot()"
            )
        if self.n_divergent:
            found.append(f"{self.n_divergent} replicate(s) with divergent transitions")
        if self.n_rhat:
            found.append(f"{self.n_rhat} replicate(s) with an R-hat above {sampling.RHAT_MAX} (or undefined)")
        return found

    def _statistics(self) -> dict[str, np.ndarray]:
        """Per element: the p-value, the smallest and largest bin count, and the number of
        bins whose count lies outside the 99% band."""
        lower, upper = self.band()
        counts = self.counts
        return {
            "p_value": self.p_values,
            "min_count": counts.min(axis=0),
            "max_count": counts.max(axis=0),
            "outside_band": np.sum((counts < lower[:, None]) | (counts > upper[:, None]), axis=0),
        }

    def to_frame(self):
        """A pandas DataFrame, one row per element, indexed by ``names``: ``p_value``,
        ``min_count``, ``max_count`` and ``outside_band`` (bins outside the 99% band);
        ``frame.attrs`` holds ``reps``, ``L``, ``bins``, ``n_divergent`` and ``n_rhat``.
        Needs pandas (``jaxmle[frame]``)."""
        pd = import_pandas("SBCResult.to_frame")
        frame = pd.DataFrame(self._statistics(), index=pd.Index(self.names, name="name"))
        frame.attrs.update(reps=self.reps, L=self.L, bins=self.bins, n_divergent=self.n_divergent, n_rhat=self.n_rhat)
        return frame

    def summary(self) -> str:
        """A box table of the uniformity test per element (see ``to_frame``) under the
        run's settings, with every calibration and sampling problem found (``problems``)."""
        lower, upper = self.band()
        head = ["name", "p-value", "min count", "max count", f"bins outside {100 * BAND_LEVEL:g}% band"]
        body = [
            [name, f"{p:.3g}", str(low), str(high), str(out)]
            for name, p, low, high, out in zip(self.names, *self._statistics().values())
        ]
        lines = [
            f"jaxmle simulation-based calibration    n = {self.n}    reps = {self.reps}",
            f"NUTS: {self.chains} chains x {self.draws} draws after {self.warmup} warmup, every {self.thin} kept: "
            f"L = {self.L}    ranks in {self.bins} bins (99% band of a bin's count: {lower.min()}-{upper.max()}), "
            "chi-square test of uniformity",
        ]
        lines += [f"warning: {p}" for p in self.problems] or [
            f"no problems found: ranks uniform (p >= {P_MIN}), no divergences, R-hat <= {sampling.RHAT_MAX}"
        ]
        return box_table(lines, head, body)

    def __str__(self) -> str:
        return self.summary()

    def plot(self, path=None):
        """Rank histograms, one panel per element, with the 99% band of each bin's count
        under uniform ranks (matplotlib). Returns the figure; saves it to ``path`` when given."""
        from .plotting import _pyplot

        lower, upper = self.band()
        edges = np.append(np.cumsum(np.r_[0, self.bin_probabilities[:-1]]), 1.0) * (self.L + 1)
        cols = min(3, len(self.names))
        rows = math.ceil(len(self.names) / cols)
        fig = _pyplot().Figure(figsize=(max(4.2 * cols, 5.6), 3.0 * rows + 0.4), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for j, (ax, name) in enumerate(zip(axes, self.names, strict=False)):
            ax.stairs(upper, edges, baseline=lower, fill=True, color="0.85", label=f"{100 * BAND_LEVEL:g}% band")
            ax.stairs(self.counts[:, j], edges, color="#1f77b4", lw=1.6, label="ranks")
            ax.set_title(f"{name}  (p = {self.p_values[j]:.3g})")
            ax.set_xlabel(f"rank among L = {self.L} draws")
            if j == 0:
                ax.legend(fontsize="small", frameon=False)
        for ax in axes[len(self.names) :]:
            ax.set_visible(False)
        fig.suptitle(f"simulation-based calibration: {self.reps} replicates, n = {self.n}")
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig
