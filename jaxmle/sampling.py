"""sample(): the posterior by NUTS (blackjax), from the same log-likelihood and prior as fit.

The sampler moves the unconstrained coordinates u of the free parameters (the same bijectors
as ``fit``) and targets the posterior density in u,

    log p(u | data) = loglik(x(u)) + log prior(x(u)) + log |det dx/du|,

so that the draws, mapped back to x(u), are draws from the posterior of the user's
parameters under a prior stated in the user's parameterization. (A MAP has no Jacobian
term; a posterior density in u needs it.) A simplex's density is that of its k-1 free
probabilities.

All chains run in one compiled program: each chain's Stan-style window adaptation (step
size and diagonal mass matrix) and its draws, vmapped over chains. The chains start at the
posterior mode (``fit``; at ``init`` where it verifies no maximum, as when the mode is at a
limit of a constraint), each moved by an independent uniform(-1/2, 1/2) offset in every
unconstrained coordinate.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _precision, diagnostics, validation
from .fit import FitWarning, fit
from .problem import Problem
from .results import FitResult, box_table, import_pandas
from .verdict import join_names

__all__ = ["sample", "SampleResult", "Chains", "nuts_program", "RHAT_MAX", "ESS_PER_CHAIN_MIN"]

#: R-hat above this says the chains disagree (Vehtari et al. 2021)
RHAT_MAX = 1.01
#: bulk or tail ESS below this many per chain is too few for reliable R-hat and MCSE
#: (Vehtari et al. 2021 ask for ESS > 400 with 4 chains)
ESS_PER_CHAIN_MIN = 100
#: NUTS doubles its trajectory at most this many times (blackjax's default)
MAX_DOUBLINGS = 10


def _blackjax():
    try:
        import blackjax
    except ImportError as err:
        raise ImportError("jm.sample needs blackjax: pip install 'jaxmle[bayes]'") from err
    return blackjax


def _arviz_base():
    try:
        import arviz_base
    except ImportError as err:
        raise ImportError("SampleResult.to_arviz needs arviz-base: pip install 'jaxmle[arviz]'") from err
    return arviz_base


def sample(
    loglik,
    init,
    data=None,
    *,
    constraints=None,
    prior=None,
    fixed=None,
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    seed=None,
) -> SampleResult:
    """Draw from the posterior ∝ exp(sum(loglik(params, data))) · prior(params) by NUTS.

    Arguments as in ``jm.fit``; without a prior the posterior is under a flat prior in the
    user's parameterization (proper only where the likelihood makes it so). ``chains``
    chains each run ``warmup`` adaptation steps (Stan's window adaptation of the step size
    and a diagonal mass matrix, discarded) and then keep ``draws`` draws. ``seed`` (an
    int, required) makes the run reproducible. Runs in float64.

    Returns a ``SampleResult``: draws in the user's parameterization with leading (chain,
    draw) axes, their mean, sd and quantiles, rank-normalized split R-hat, bulk and tail ESS,
    and the number of divergent transitions.
    """
    chains = validation.check_positive_int("chains", chains, allow_none=False)
    draws = validation.check_positive_int("draws", draws, allow_none=False, minimum=4)
    warmup = validation.check_positive_int("warmup", warmup, allow_none=False)
    if seed is None:
        raise ValueError("seed: sample needs a seed (an int), e.g. seed=0, so that the draws can be reproduced")
    seed = validation.check_positive_int("seed", seed, allow_none=False, minimum=0)
    _blackjax()  # before any work: say at once that the extra is missing
    with warnings.catch_warnings():  # a mode that is not verified is still a start
        warnings.simplefilter("ignore", FitWarning)
        mode = fit(loglik, init, data, constraints=constraints, prior=prior, fixed=fixed)
    prep = mode._prep  # the validated problem, data and fixed values
    start = mode._u if mode.converged else prep.u0  # a mode at a limit is no place to start
    run = _compiled_run(prep.problem, chains, draws, warmup)
    with _precision.context(prep.dtype):
        out = run(jax.random.key(seed), jnp.asarray(start, prep.dtype), prep.fixed_leaves, prep.data)
        out = jax.tree_util.tree_map(np.asarray, out)
    space = prep.problem.space
    fixed_np = [np.broadcast_to(np.asarray(v), (chains, draws) + np.shape(v)) for v in prep.fixed_leaves]
    return SampleResult(
        draws=space.assemble(out.x, fixed_np),
        names=space.names,
        divergent=out.divergent,
        acceptance_rate=out.acceptance_rate.mean(axis=1),
        step_size=out.step_size,
        max_depth_hits=int(np.sum(out.tree_depth >= MAX_DOUBLINGS)),
        warmup=warmup,
        mode=mode,
        _flat=np.concatenate([leaf.free_part(v) for leaf, v in zip(space.free, out.x)], axis=2),
        _per_draw={"acceptance_rate": out.acceptance_rate, "tree_depth": out.tree_depth},
    )


class Chains(NamedTuple):
    """What NUTS returns for every chain: the free leaves in the user's parameterization,
    the divergence flags, acceptance rates and tree depths (trajectory doublings), each with
    leading (chain, draw) axes, and each chain's adapted step size."""

    x: list
    divergent: jax.Array
    acceptance_rate: jax.Array
    tree_depth: jax.Array
    step_size: jax.Array


def nuts_program(problem: Problem, chains: int, draws: int, warmup: int):
    """The sampler as a pure function ``(key, u_centre, fixed_leaves, data) -> Chains``, not
    yet jitted: ``sample`` jits it, ``jm.sbc`` vmaps it over replicates first. Every chain
    starts at ``u_centre`` moved by its own uniform(-1/2, 1/2) offset per coordinate."""
    blackjax = _blackjax()
    space = problem.space

    def run(key, u_centre, fixed_leaves, data):
        def logdensity(u):
            x = space.u_to_x_leaves(u)
            ll = jnp.sum(problem.loglik_terms(x, fixed_leaves, data))
            return ll + problem.log_prior_value(x, fixed_leaves, smooth=False) + space.log_abs_det_jacobian(u)

        def one_chain(key, u0):
            adapt_key, draw_key = jax.random.split(key)
            # the warmup's per-step record is not kept (by default blackjax keeps every state)
            adaptation = blackjax.window_adaptation(
                blackjax.nuts, logdensity, adaptation_info_fn=blackjax.adaptation.base.get_filter_adapt_info_fn()
            )
            (state, tuned), _ = adaptation.run(adapt_key, u0, num_steps=warmup)
            kernel = blackjax.nuts(logdensity, **tuned, max_num_doublings=MAX_DOUBLINGS).step

            def step(state, key):
                state, info = kernel(key, state)
                x = space.u_to_x_leaves(state.position)
                return state, (x, info.is_divergent, info.acceptance_rate, info.num_trajectory_expansions)

            _, out = jax.lax.scan(step, state, jax.random.split(draw_key, draws))
            return Chains(*out, tuned["step_size"])

        start_key, chain_key = jax.random.split(key)
        offsets = jax.random.uniform(start_key, (chains, u_centre.shape[0]), u_centre.dtype, -0.5, 0.5)
        return jax.vmap(one_chain)(jax.random.split(chain_key, chains), u_centre + offsets)

    return run


@functools.lru_cache(maxsize=32)
def _compiled_run(problem: Problem, chains: int, draws: int, warmup: int):
    """``nuts_program``, jitted: every chain in one program."""
    return jax.jit(nuts_program(problem, chains, draws, warmup))


@dataclass
class SampleResult:
    """Posterior draws from ``jm.sample``, with their summaries and convergence diagnostics.

    ``draws`` is a pytree shaped like ``init`` whose leaves carry two leading axes, (chain,
    draw), in the user's parameterization (fixed parameters repeated). ``names`` labels the
    k free elements; ``rhat``, ``ess_bulk``, ``ess_tail`` and ``mcse_mean`` are arrays over
    them (see ``jaxmle.diagnostics`` for what they mean). ``divergent`` flags the divergent
    transitions (chain, draw): the integrator met curvature too strong for its step size,
    and the draws may miss that region of the posterior. ``acceptance_rate`` (mean over
    draws) and ``step_size`` are per chain; ``max_depth_hits`` counts the transitions cut at
    the maximum tree depth; ``mode`` is the fit whose estimate started the chains.
    """

    draws: object
    names: list[str]
    divergent: np.ndarray
    acceptance_rate: np.ndarray
    step_size: np.ndarray
    max_depth_hits: int
    warmup: int
    mode: FitResult
    _flat: np.ndarray = field(repr=False)
    #: per (chain, draw): ``acceptance_rate`` and ``tree_depth`` (trajectory doublings)
    _per_draw: dict = field(repr=False, default_factory=dict)

    # the diagnostics are computed when first read, then kept: ``sample`` returns as soon
    # as the draws are in (as a sampler's own call does), and its summary reads them all
    def _per_column(self, statistic) -> np.ndarray:
        return np.array([statistic(self._flat[:, :, j]) for j in range(self._flat.shape[2])])

    @functools.cached_property
    def rhat(self) -> np.ndarray:
        return self._per_column(diagnostics.rhat)

    @functools.cached_property
    def ess_bulk(self) -> np.ndarray:
        return self._per_column(diagnostics.ess_bulk)

    @functools.cached_property
    def ess_tail(self) -> np.ndarray:
        return self._per_column(diagnostics.ess_tail)

    @functools.cached_property
    def mcse_mean(self) -> np.ndarray:
        return self._per_column(diagnostics.mcse_mean)

    @property
    def chains(self) -> int:
        return self._flat.shape[0]

    @property
    def n_draws(self) -> int:
        return self._flat.shape[1]

    @property
    def n_divergent(self) -> int:
        return int(np.sum(self.divergent))

    def _over_draws(self, fn):
        return jax.tree_util.tree_map(lambda v: fn(np.asarray(v).reshape((-1,) + np.shape(v)[2:])), self.draws)

    @property
    def mean(self):
        """Posterior means, a pytree shaped like ``init``."""
        return self._over_draws(lambda v: v.mean(axis=0))

    @property
    def sd(self):
        """Posterior standard deviations, a pytree shaped like ``init``."""
        return self._over_draws(lambda v: v.std(axis=0, ddof=1))

    def quantiles(self, probs=(0.05, 0.5, 0.95)):
        """Posterior quantiles: a pytree shaped like ``init`` whose leaves carry a trailing
        axis over ``probs``."""
        probs = np.asarray(probs, dtype=float)
        if probs.ndim != 1 or not np.all((probs >= 0) & (probs <= 1)):
            raise ValueError(f"probs must be a 1-D sequence of numbers in [0, 1], got {probs}")
        return self._over_draws(lambda v: np.moveaxis(np.quantile(v, probs, axis=0), 0, -1))

    @property
    def problems(self) -> list[str]:
        """Sampling problems in words (empty when none was found)."""
        found = []
        if self.n_divergent:
            found.append(
                f"{self.n_divergent} divergent transition(s) after warmup: the draws may miss part of the "
                "posterior; reparameterize, or give a longer warmup"
            )
        stuck = [n for n, r in zip(self.names, self.rhat) if np.isnan(r)]
        if stuck:
            found.append(f"the draws of {join_names(stuck)} do not move: no R-hat or ESS is defined")
        bad = [n for n, r in zip(self.names, self.rhat) if r > RHAT_MAX]
        if bad:
            found.append(f"R-hat above {RHAT_MAX} for {join_names(bad)}: the chains disagree")
        low = ESS_PER_CHAIN_MIN * self.chains
        few = [n for n, b, t in zip(self.names, self.ess_bulk, self.ess_tail) if min(b, t) < low]
        if few:
            found.append(
                f"bulk or tail ESS below {low} ({ESS_PER_CHAIN_MIN} per chain) for {join_names(few)}: "
                "too few effective draws for reliable means, intervals and R-hat; draw more"
            )
        if self.max_depth_hits:
            found.append(
                f"{self.max_depth_hits} transition(s) hit the maximum tree depth ({MAX_DOUBLINGS} doublings): "
                "the sampler is inefficient here"
            )
        return found

    def _statistics(self) -> dict[str, np.ndarray]:
        """The table's columns, each over ``names``."""
        flat = self._flat.reshape(-1, self._flat.shape[2])
        q = np.quantile(flat, [0.05, 0.5, 0.95], axis=0)
        return {
            "mean": flat.mean(axis=0),
            "sd": flat.std(axis=0, ddof=1),
            "5%": q[0],
            "50%": q[1],
            "95%": q[2],
            "mcse_mean": self.mcse_mean,
            "rhat": self.rhat,
            "ess_bulk": self.ess_bulk,
            "ess_tail": self.ess_tail,
        }

    def to_frame(self):
        """A pandas DataFrame, one row per free element, indexed by ``names``: ``mean``,
        ``sd``, the ``5%``, ``50%`` and ``95%`` quantiles, ``mcse_mean``, ``rhat``,
        ``ess_bulk`` and ``ess_tail``. Needs pandas (``jaxmle[frame]``)."""
        pd = import_pandas("SampleResult.to_frame")
        return pd.DataFrame(self._statistics(), index=pd.Index(self.names, name="name"))

    def to_arviz(self):
        """The draws as arviz-base's ``DataTree`` (needs ``jaxmle[arviz]``).

        Group ``posterior``: one variable per free parameter (named as in ``names``, without
        the element index), in the user's parameterization, with dims (chain, draw, ...);
        the elements of a labelled vector are on a dim ``<name>_dim`` whose coordinates are
        its labels. Group ``sample_stats``, each over (chain, draw): ``diverging``,
        ``acceptance_rate``, ``step_size`` (fixed after warmup) and ``tree_depth``
        (trajectory doublings)."""
        arviz_base = _arviz_base()
        posterior, dims, coords = {}, {}, {}
        for leaf, values in zip(self.mode._space.leaves, jax.tree_util.tree_leaves(self.draws)):
            if leaf.fixed:
                continue
            posterior[leaf.label] = np.asarray(values)
            if leaf.labels is not None:
                dims[leaf.label] = [f"{leaf.label}_dim"]
                coords[f"{leaf.label}_dim"] = list(leaf.labels)
        step_size = np.broadcast_to(self.step_size[:, None], self.divergent.shape)
        stats = {"diverging": self.divergent, "step_size": step_size, **self._per_draw}
        return arviz_base.from_dict(
            {"posterior": posterior, "sample_stats": stats},
            dims=dims,
            coords=coords,
            attrs={"/": {"inference_library": "blackjax", "num_warmup": self.warmup}},
        )

    def summary(self) -> str:
        """A box table of the posterior (mean, SD, 5/50/95% quantiles, MCSE of the mean,
        R-hat, bulk and tail ESS) under the run's flags, with every sampling problem found
        stated plainly (``problems``)."""
        stats = self._statistics()
        head = ["name", "mean", "SD", "5%", "50%", "95%", "MCSE", "R-hat", "ESS bulk", "ESS tail"]
        body = [[name] + [_cell(key, v[i]) for key, v in stats.items()] for i, name in enumerate(self.names)]
        lines = [
            f"jaxmle NUTS posterior    chains: {self.chains}    draws: {self.n_draws} per chain, after "
            f"{self.warmup} warmup",
            f"divergent transitions: {self.n_divergent}    step size: {_span(self.step_size)}    "
            f"acceptance: {_span(self.acceptance_rate)}",
        ]
        lines += [f"warning: {p}" for p in self.problems] or [
            f"no sampling problems found: no divergences, R-hat <= {RHAT_MAX}, "
            f"bulk and tail ESS >= {ESS_PER_CHAIN_MIN} per chain"
        ]
        return box_table(lines, head, body)

    def __str__(self) -> str:
        return self.summary()


#: the summary's number formats: four significant digits, two for the MCSE, whole effective draws
_FORMATS = {"mcse_mean": ".2g", "rhat": ".3f", "ess_bulk": ".0f", "ess_tail": ".0f"}


def _cell(key: str, value: float) -> str:
    return "nan" if not np.isfinite(value) else format(value, _FORMATS.get(key, ".4g"))


def _span(values: np.ndarray) -> str:
    """The range of a per-chain value, e.g. '0.81-0.93'."""
    low, high = float(np.min(values)), float(np.max(values))
    return f"{low:.3g}" if f"{low:.3g}" == f"{high:.3g}" else f"{low:.3g}-{high:.3g}"
