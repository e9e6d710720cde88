"""Profile likelihood: intervals, curves and joint regions.

The profile log-likelihood of a parameter θᵢ is ℓ_p(t) = max ℓ(θ) over the other
parameters with θᵢ = t (the log-posterior for a MAP fit). The profile interval at level
1 − α is {t : 2(ℓ̂ − ℓ_p(t)) ≤ χ²₁(1 − α)}; unlike the Wald interval it follows a skewed
likelihood and does not depend on the parameterization.

When the fit is a verified maximum, every endpoint of every parameter is first solved
directly, in one vmapped program: Newton's method on the k equations ℓ(θ) = ℓ̂ − χ²₁/2,
∂ℓ/∂θⱼ = 0 (j ≠ i) of Venzon and Moolgavkar (1988), with a check of each result
(``jaxmle.profile_direct``). An endpoint that the check rejects (and every endpoint of
any other fit) is the root of the signed root deviance r(t) = sqrt(2(ℓ̂ − ℓ_p(t))) −
sqrt(χ²₁(1 − α)), bracketed from the Wald endpoint and then found by the Illinois
(modified regula falsi) method to a relative tolerance of ``RTOL`` on the parameter's own
scale. Every evaluation re-optimizes the other parameters (``Problem.solve`` of the
objective with the profiled coordinate held, by the "auto" method's solver),
warm-started at the previous solution; all endpoints of all parameters advance together
in one vmapped solve.

Profiles are invariant under monotone reparameterization, so the search runs on the
unconstrained coordinate of a constrained parameter and the endpoints are reported on its
own scale. An interval that does not close before the parameter's bound (or infinity) is
reported open there, with a flag. If any evaluation (of either method) finds a higher
value than the fit's, the fit was not the maximum: the profile says so and offers the
better fit.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from . import _precision
from .constraints import Constraint
from .parameters import build_space
from .problem import Problem, compiled_solve, resolve_method
from .profile_direct import compiled_endpoints
from .results import FitResult, wald_z
from .status import Status
from .validation import check_positive_int
from .xla_options import quick_options

__all__ = ["Profile", "Region", "ProfileWarning", "BetterFitFound", "profile", "region", "profile_conf_int"]

#: relative tolerance of an endpoint on the parameter's scale (float64 fits)
RTOL = 1e-9
#: doublings of the Wald half-width tried before an interval is declared open
MAX_DOUBLINGS = 12
MAX_ROOT_ITER = 100


class ProfileWarning(UserWarning):
    """Warned when a profile interval is open at a bound or an endpoint is unreliable."""


class BetterFitFound(RuntimeError):
    """Raised by ``conf_int(method="profile")`` when profiling found a higher likelihood
    than the fit's; ``better_fit`` is the fit refined from that point."""

    def __init__(self, message: str, better_fit: FitResult):
        super().__init__(message)
        self.better_fit = better_fit


def chi2_quantile(level: float, df: int) -> float:
    """χ² quantile for 1 or 2 degrees of freedom (closed forms: z²_{(1+level)/2} and
    −2 log(1 − level)); other degrees of freedom raise ValueError."""
    if df == 1:
        return wald_z(level) ** 2
    if df == 2:
        wald_z(level)  # validates level
        return -2.0 * math.log1p(-level)
    raise ValueError(f"df must be 1 or 2 (the closed forms profiles need), got {df!r}")


# --- the objective with some unconstrained coordinates held -----------------------------
@dataclass(frozen=True)
class _Held:
    """The smooth log-posterior as a function of the free coordinates, with the coordinates
    ``data["held"]`` of u set to ``data["value"]`` (hashable, so compiled code is reused)."""

    problem: Problem

    def __call__(self, params, data):
        u = _insert(params["rest"], data["held"], data["value"], self.problem.space.m)
        free = self.problem.space.u_to_x_leaves(u)
        return self.problem.logpost_smooth(free, data["fixed"], data["data"])


def _insert(rest, held, value, m):
    """The full u from the free coordinates ``rest`` and ``value`` at positions ``held``."""
    j = jnp.arange(m)
    is_held = j[:, None] == held[None, :]
    before = jnp.sum(held[None, :] < j[:, None], axis=1)
    src = jnp.clip(j - before, 0, max(rest.shape[0] - 1, 0))
    from_rest = rest[src] if rest.shape[0] else jnp.zeros(m, value.dtype)
    return jnp.where(jnp.any(is_held, axis=1), value[jnp.argmax(is_held, axis=1)], from_rest)


@functools.lru_cache(maxsize=64)
def _held_problem(problem: Problem, n_held: int) -> Problem:
    """The re-optimization of the other coordinates, by the "auto" method's solver (Newton up
    to ``AUTO_NEWTON_MAX`` coordinates): each profile point needs a converged maximum."""
    m = problem.space.m - n_held
    space, _ = build_space({"rest": np.zeros(m)}, {}, {})
    return Problem(_Held(problem), space, (), None, resolve_method("auto", m, False)[1], None, None)


@functools.lru_cache(maxsize=64)
def _batched_solve(problem: Problem, n_held: int):
    """jit(vmap(solve)) over (warm start, held positions, held values)."""
    m = problem.space.m
    if n_held == m:  # nothing left to optimize: evaluate

        def evaluate(rest, data):
            u = _insert(rest, data["held"], data["value"], m)
            value = problem.logpost_smooth(problem.space.u_to_x_leaves(u), data["fixed"], data["data"])
            return value, rest, jnp.int32(Status.CONVERGED)

        fn = evaluate
    else:
        held_problem = _held_problem(problem, n_held)

        def fn(rest, data):
            raw = held_problem.solve(rest, [], data)
            return raw.logpost, raw.u, raw.status

    axes = {"data": None, "fixed": None, "held": 0, "value": 0}
    return jax.jit(jax.vmap(fn, in_axes=(0, axes)), compiler_options=quick_options())


class _Objective:
    """ℓ_p at batches of held values, with warm starts; remembers the best point seen."""

    def __init__(self, res: FitResult):
        if res._prep is None:
            raise ValueError("this FitResult carries no problem to profile (it was not made by jm.fit)")
        prep = res._prep
        if prep.problem.has_l1:
            raise ValueError("profile: a fit with a Laplace (L1) prior has no smooth profile; use conf_int('wald')")
        self.res, self.prep, self.problem = res, prep, prep.problem
        self.u_hat = np.asarray(res._u, dtype=np.float64)
        self.l_hat = float(res.logpost)
        self.best = (self.l_hat, None)

    def __call__(self, held: np.ndarray, value: np.ndarray, rest0: np.ndarray):
        """(ℓ_p, rest, converged) for each row of ``held`` (N, p) and ``value`` (N, p) in u."""
        dtype, count = self.prep.dtype, len(held)
        pad = lambda a: np.concatenate([a, np.repeat(a[-1:], _bucket(count) - count, axis=0)])  # noqa: E731
        with _precision.context(dtype):
            fn = _batched_solve(self.problem, held.shape[1])
            data = {
                "data": self.prep.data,
                "fixed": self.prep.fixed_leaves,
                "held": jnp.asarray(pad(held), jnp.int32),
                "value": jnp.asarray(pad(value), dtype),
            }
            out = fn(jnp.asarray(pad(rest0), dtype), data)
            lp, rest, status = (np.asarray(v)[:count] for v in out)
        lp = np.where(np.isfinite(lp), lp, -np.inf)
        top = int(np.argmax(lp))
        if self.beats(lp[top]):
            u = (
                np.insert(
                    rest[top], [int(h) - i for i, h in enumerate(np.sort(held[top]))], value[top][np.argsort(held[top])]
                )
                if rest.shape[1]
                else value[top][np.argsort(held[top])]
            )
            self.best = (float(lp[top]), u)
        return lp, rest, status == Status.CONVERGED

    def beats(self, lp: float) -> bool:
        """Whether ``lp`` beats the best value seen, and the fit's beyond round-off."""
        return lp > max(self.best[0], self.l_hat + 1e-6 + 1e-10 * abs(self.l_hat))

    def direct(self, held: np.ndarray, x_index: np.ndarray, sign: np.ndarray, q: float, rtol: float):
        """(u, verified) of the endpoints solved directly (``profile_direct``), one per lane:
        u[held] on side ``sign`` where 2(ℓ̂ − ℓ_p) = q; remembers the best point evaluated."""
        dtype = self.prep.dtype
        with _precision.context(dtype):
            out = compiled_endpoints(self.problem)(
                jnp.asarray(self.u_hat, dtype),
                self.prep.fixed_leaves,
                self.prep.data,
                jnp.asarray(held, jnp.int32),
                jnp.asarray(x_index, jnp.int32),
                jnp.asarray(sign, dtype),
                jnp.asarray(self.l_hat - 0.5 * q, dtype),
                jnp.asarray(q, dtype),
                jnp.asarray(rtol, dtype),
            )
            out = jax.tree_util.tree_map(np.asarray, out)
        best = np.where(np.isfinite(out.best), out.best, -np.inf)
        top = int(np.argmax(best))
        if self.beats(best[top]):
            self.best = (float(best[top]), out.best_u[top].astype(np.float64))
        return out.u[np.arange(len(held)), held].astype(np.float64), out.verified

    def rest_hat(self, held_row: np.ndarray) -> np.ndarray:
        return np.delete(self.u_hat, held_row)

    def better_fit(self) -> FitResult | None:
        """The fit refined from the best point found (by the "auto" method), when it beats
        the original."""
        if self.best[1] is None:
            return None
        from .fit import to_result

        name, solver = resolve_method("auto", self.problem.space.m, False)
        problem = dataclasses.replace(self.problem, solver=solver, tol=None, max_iter=None)
        prep = dataclasses.replace(self.prep, problem=problem, method_name=name)
        with _precision.context(prep.dtype):
            raw = compiled_solve(prep.problem)(jnp.asarray(self.best[1], prep.dtype), prep.fixed_leaves, prep.data)
            raw = jax.tree_util.tree_map(np.asarray, raw)
        return to_result(raw, prep, self.res.nobs, cov_type=self.res.cov_type)

    def better_message(self, better: FitResult) -> str:
        found = f"profiling found log-likelihood {self.best[0]:.10g} above the fit's {self.l_hat:.10g}"
        if better.status == Status.CONVERGED and self.res.status != Status.NO_FINITE_MAXIMUM:
            return (
                f"{found}: the fit is not the maximum. The fit refined from that point has {better.loglik:.10g}; "
                "profile that one."
            )
        why = (
            f"the fit itself reports {Status.NO_FINITE_MAXIMUM.name} (the objective keeps rising as parameters run off)"
            if self.res.status == Status.NO_FINITE_MAXIMUM
            else "the fit is not the maximum"
        )
        return (
            f"{found}: {why}, and the fit refined from that point ends with {better.status.name} at "
            f"{better.loglik:.10g}: there is no verified maximum to profile."
        )


def _bucket(count: int) -> int:
    """Batch sizes are padded to powers of two (at least 8), so few shapes are compiled."""
    return max(8, 1 << (count - 1).bit_length())


# --- coordinates -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Coord:
    """One element of an element-wise free parameter: ``index`` is its position in x (the
    user's values, size k; also the row of ``FitResult.cov``) and ``u_index`` its position in
    the solver's u (size m), which differ after a simplex or ordered parameter."""

    name: str
    index: int
    u_index: int
    constraint: Constraint

    def to_x(self, u):
        with jax.enable_x64(True):
            return np.asarray(self.constraint.forward(jnp.asarray(u, jnp.float64)), dtype=np.float64)

    def to_u(self, x):
        with jax.enable_x64(True):
            return np.asarray(self.constraint.inverse(jnp.asarray(x, jnp.float64)), dtype=np.float64)

    def du_dx(self, x):
        with jax.enable_x64(True):
            return float(jax.grad(self.constraint.inverse)(jnp.float64(x)))


def _all_coords(space) -> dict[str, tuple]:
    """name -> (leaf, position in x, position in u, position in the leaf's free elements)
    for every free element."""
    out, x_start, u_start = {}, 0, 0
    for leaf in space.free:
        for j, n in enumerate(leaf.element_names()):
            out[n] = (leaf, x_start + j, u_start + j, j)
        x_start += leaf.size
        u_start += leaf.free_size
    return out


def _is_elementwise(leaf) -> bool:
    return leaf.constraint.elementwise


def _coords(res: FitResult, names) -> list[_Coord]:
    space = res._space
    by_name = _all_coords(space)
    out = []
    for name in names:
        if name not in by_name:
            raise ValueError(f"name: {name!r} is not a free parameter of this fit (free parameters: {space.names})")
        leaf, index, u_index, element = by_name[name]
        if not _is_elementwise(leaf):
            raise ValueError(
                f"name: {name!r} is an element of a {leaf.constraint!r} parameter, whose elements are not "
                "separate coordinates; profile a derived quantity by refitting instead"
            )
        out.append(_Coord(name, index, u_index, leaf.constraint.element(element)))
    return out


# --- endpoints ---------------------------------------------------------------------------
@dataclass
class _Endpoints:
    lower: np.ndarray
    upper: np.ndarray
    open_lower: np.ndarray
    open_upper: np.ndarray
    reliable: np.ndarray  # (n, 2): the solves at the endpoint converged and the root was found
    u_reach: np.ndarray  # (n, 2): the outermost u evaluated on each side


def _endpoints(obj: _Objective, coords: list[_Coord], q: float) -> _Endpoints:
    """Both endpoints of {t : 2(ℓ̂ − ℓ_p(t)) ≤ q} for every coordinate, all lanes at once:
    solved directly when the fit is a verified maximum, by the root search for the lanes
    that the direct solve leaves (and for every lane of any other fit)."""
    n = len(coords)
    lanes = [(c, s) for c in coords for s in (-1.0, 1.0)]
    L = len(lanes)
    rtol = max(RTOL, 1e3 * float(np.finfo(obj.prep.dtype).eps))  # float32 fits: about 1e-4
    x_end, u_reach = np.full(L, np.nan), np.full(L, np.nan)
    is_open, reliable = np.zeros(L, bool), np.ones(L, bool)
    search = np.ones(L, bool)
    if obj.res.status == Status.CONVERGED:
        held = np.array([c.u_index for c, _ in lanes])
        x_index = np.array([c.index for c, _ in lanes])
        sign = np.array([s for _, s in lanes])
        u_end, verified = obj.direct(held, x_index, sign, q, rtol)
        x_end[verified] = [c.to_x(u) for (c, _), u, ok in zip(lanes, u_end, verified, strict=True) if ok]
        u_reach[verified] = u_end[verified]
        search = ~verified
    if search.any():
        rows = np.flatnonzero(search)
        found = _root_search(obj, [lanes[j] for j in rows], q, rtol)
        x_end[rows], is_open[rows], reliable[rows], u_reach[rows] = found
    x_end, is_open, reliable = x_end.reshape(n, 2), is_open.reshape(n, 2), reliable.reshape(n, 2)
    return _Endpoints(x_end[:, 0], x_end[:, 1], is_open[:, 0], is_open[:, 1], reliable, u_reach.reshape(n, 2))


def _root_search(obj: _Objective, lanes: list[tuple[_Coord, float]], q: float, rtol: float):
    """(endpoint on the parameter's scale, open, reliable, outermost u evaluated) for each
    lane (coordinate, side): the Illinois root of the signed root deviance, bracketed by
    doubling steps from the Wald endpoint."""
    res = obj.res
    L = len(lanes)
    held = np.array([[c.u_index] for c, _ in lanes])
    u_hat = np.array([obj.u_hat[c.u_index] for c, _ in lanes])
    sign = np.array([s for _, s in lanes])
    se = np.array([np.sqrt(res.cov[c.index, c.index]) * abs(c.du_dx(res._x[c.index])) for c, _ in lanes])
    step = np.where(np.isfinite(se) & (se > 0), math.sqrt(q) * se, 1.0)
    rest = np.stack([obj.rest_hat(h) for h in held])
    root_q = math.sqrt(q)

    def f_of(lp):  # signed root deviance minus its target: < 0 inside, > 0 outside
        with np.errstate(invalid="ignore"):
            return np.sqrt(np.maximum(2.0 * (obj.l_hat - lp), 0.0)) - root_q

    # bracket: walk outwards from the estimate by doubling steps
    a, fa = u_hat.copy(), np.full(L, -root_q)
    b, fb = np.full(L, np.nan), np.full(L, np.nan)
    trial = u_hat + sign * step
    bracketed = np.zeros(L, bool)
    is_open = np.zeros(L, bool)
    reach = u_hat.copy()
    for k in range(MAX_DOUBLINGS + 1):
        active = ~bracketed & ~is_open
        if not active.any():
            break
        lp, new_rest, _ = obj(held, trial[:, None], rest)
        f = f_of(lp)
        x_trial = np.array([c.to_x(t) for (c, _), t in zip(lanes, trial, strict=False)])
        bounds = np.array([(c.constraint.lower, c.constraint.upper) for c, _ in lanes])
        at_bound = ~np.isfinite(x_trial) | np.any(x_trial[:, None] == bounds, axis=1)
        reach = np.where(active, trial, reach)
        inside = active & (f <= 0)
        outside = active & (f > 0)
        b, fb = np.where(outside, trial, b), np.where(outside, f, fb)
        bracketed |= outside
        a, fa = np.where(inside, trial, a), np.where(inside, f, fa)
        rest = np.where((inside & np.isfinite(lp))[:, None], new_rest, rest)
        is_open |= inside & (at_bound | (k == MAX_DOUBLINGS))
        trial = np.where(inside, u_hat + sign * step * 2.0 ** (k + 1), trial)

    # Illinois on the bracket [a, b]
    found = ~bracketed
    c_u = a.copy()
    side = np.zeros(L)  # which end was kept last time: -1 a, +1 b
    reliable = np.ones(L, bool)
    for _ in range(MAX_ROOT_ITER):
        if found.all():
            break
        secant = a - fa * (b - a) / (fb - fa)
        use_secant = np.isfinite(fb) & np.isfinite(secant) & ((secant - a) * (secant - b) < 0)
        c_u = np.where(found, c_u, np.where(use_secant, secant, 0.5 * (a + b)))
        lp, new_rest, ok = obj(held, c_u[:, None], rest)
        fc = f_of(lp)
        live = ~found
        rest = np.where((live & np.isfinite(lp))[:, None], new_rest, rest)
        go_a = live & (fc <= 0)  # c replaces the inside end
        go_b = live & (fc > 0)
        fb = np.where(go_a & (side == -1), 0.5 * fb, fb)
        fa = np.where(go_b & (side == 1), 0.5 * fa, fa)
        a, fa = np.where(go_a, c_u, a), np.where(go_a, fc, fa)
        b, fb = np.where(go_b, c_u, b), np.where(go_b, fc, fb)
        side = np.where(go_a, -1, np.where(go_b, 1, side))
        xa = np.array([c.to_x(v) for (c, _), v in zip(lanes, a, strict=False)])
        xb = np.array([c.to_x(v) for (c, _), v in zip(lanes, b, strict=False)])
        close = np.abs(xb - xa) <= rtol * np.maximum(np.abs(xa), 1e-300) + 1e-300
        done = live & (close | (np.abs(fc) < 1e-13))
        reliable = np.where(done, ok, reliable)
        found |= done
    reliable &= found
    x_end = np.array([c.to_x(v) for (c, _), v in zip(lanes, c_u, strict=False)])
    bound = np.array([c.constraint.lower if s < 0 else c.constraint.upper for c, s in lanes])
    x_end = np.where(is_open, bound, x_end)
    u_reach = np.where(is_open, reach, np.where(bracketed, b, c_u))
    return x_end, is_open, reliable | is_open, u_reach


# --- public results --------------------------------------------------------------------
@dataclass
class Profile:
    """The profile log-likelihood of one parameter.

    ``grid`` and ``loglik`` (ℓ_p on the grid; the log-posterior for a MAP fit) trace the
    curve; ``interval`` is (lower, upper) at ``level``; ``open`` says which ends did not
    close before the parameter's bound (the end is then that bound); ``better_fit`` is a
    fit with a higher likelihood found while profiling, or None."""

    name: str
    estimate: float
    level: float
    grid: np.ndarray
    loglik: np.ndarray
    loglik_max: float
    interval: tuple[float, float]
    open: tuple[bool, bool]
    reliable: tuple[bool, bool]
    wald: tuple[float, float]
    better_fit: FitResult | None = None
    notes: list[str] = field(default_factory=list)
    of_posterior: bool = False  # a MAP fit: the profile is of the log-posterior

    @property
    def threshold(self) -> float:
        """ℓ̂ − χ²₁(level)/2: the profile crosses it at the interval's ends."""
        return self.loglik_max - 0.5 * chi2_quantile(self.level, 1)

    def plot(self, ax=None):
        from .plotting import plot_profile

        return plot_profile(self, ax=ax)


@dataclass
class Region:
    """A joint confidence region of two parameters at ``level``: the profile deviance
    2(ℓ̂ − ℓ_p(a, b)) on the grid ``grid_a`` × ``grid_b`` (rows follow ``grid_a``), whose
    χ²₂(level) contour bounds the region, and the Wald ellipse from ``cov``."""

    names: tuple[str, str]
    estimate: np.ndarray
    cov: np.ndarray
    level: float
    grid_a: np.ndarray
    grid_b: np.ndarray
    deviance: np.ndarray
    better_fit: FitResult | None = None

    @property
    def threshold(self) -> float:
        return chi2_quantile(self.level, 2)

    def plot(self, ax=None):
        from .plotting import plot_region

        return plot_region(self, ax=ax)


def _check_level(level) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")
    return level


def _check_n(n) -> int:
    return check_positive_int("n", n, allow_none=False, minimum=3)


def _warn_ends(names, ends: _Endpoints, level):
    for i, name in enumerate(names):
        for j, which in enumerate(("lower", "upper")):
            if [ends.open_lower, ends.open_upper][j][i]:
                bound = [ends.lower, ends.upper][j][i]
                warnings.warn(
                    f"the {level:g} profile interval of {name} is open at its {which} end: the profile "
                    f"stays above the threshold all the way to {bound:g}",
                    ProfileWarning,
                    stacklevel=3,
                )
            elif not ends.reliable[i, j]:
                warnings.warn(
                    f"the {which} profile endpoint of {name} is unreliable: the re-optimization or the "
                    "root search did not converge there",
                    ProfileWarning,
                    stacklevel=3,
                )


def profile_conf_int(res: FitResult, level: float = 0.95):
    """Profile intervals of every free parameter, as a pytree like ``params`` whose leaves
    carry a trailing axis of 2. Raises ``BetterFitFound`` if profiling beat the fit.

    Elements of a simplex or ordered parameter are not separate coordinates (holding one
    fixed moves the others), so they get NaN intervals, with a ``ProfileWarning`` naming them."""
    level = _check_level(level)
    obj = _Objective(res)
    space = res._space
    by_name = _all_coords(space)
    names = [n for n in res.names if _is_elementwise(by_name[n][0])]
    skipped = [n for n in res.names if not _is_elementwise(by_name[n][0])]
    lower_x, upper_x = np.full(space.k, np.nan), np.full(space.k, np.nan)
    if names:
        coords = _coords(res, names)
        ends = _endpoints(obj, coords, chi2_quantile(level, 1))
        better = obj.better_fit()
        if better is not None:
            raise BetterFitFound(obj.better_message(better) + " It is attached as .better_fit.", better)
        _warn_ends(names, ends, level)
        index = [c.index for c in coords]
        lower_x[index], upper_x[index] = ends.lower, ends.upper
    if skipped:
        warnings.warn(
            f"no profile interval (NaN) for {', '.join(skipped)}: elements of a simplex or ordered parameter "
            "are not separate coordinates; profile a derived quantity by refitting instead",
            ProfileWarning,
            stacklevel=3,
        )
    lower = space.x_flat_to_leaves(lower_x)
    upper = space.x_flat_to_leaves(upper_x)
    free = [np.stack([np.asarray(lo), np.asarray(hi)], axis=-1) for lo, hi in zip(lower, upper, strict=False)]
    fixed = [np.stack([np.asarray(v), np.asarray(v)], axis=-1) for v in res._fixed_leaves]
    return space.assemble(free, fixed)


def _axis(coord: _Coord, x_hat: float, ends: _Endpoints, i: int, margin: float, n: int) -> np.ndarray:
    """``n`` points on the parameter's own scale spanning interval ``i`` of ``ends`` with a
    relative ``margin``, strictly inside the parameter's bounds (an open end reaches to
    within 0.1% of the bound, or as far as the search went)."""
    lo_b, hi_b = coord.constraint.lower, coord.constraint.upper
    lo = coord.to_x(ends.u_reach[i, 0]) if ends.open_lower[i] else ends.lower[i]
    hi = coord.to_x(ends.u_reach[i, 1]) if ends.open_upper[i] else ends.upper[i]
    lo, hi = lo - margin * (x_hat - lo), hi + margin * (hi - x_hat)
    if math.isfinite(lo_b):
        lo = max(lo, lo_b + 1e-3 * (x_hat - lo_b))
    if math.isfinite(hi_b):
        hi = min(hi, hi_b - 1e-3 * (hi_b - x_hat))
    return np.linspace(lo, hi, n)


def profile(res: FitResult, name: str, level: float = 0.95, n: int = 41) -> Profile:
    """The profile of ``name``: its interval at ``level`` and ℓ_p on ``n`` grid points that
    span the interval with a margin (within the parameter's bounds)."""
    level, n = _check_level(level), _check_n(n)
    (coord,) = _coords(res, [name])
    obj = _Objective(res)
    ends = _endpoints(obj, [coord], chi2_quantile(level, 1))
    x_hat = float(res._x[coord.index])
    grid = np.sort(np.append(_axis(coord, x_hat, ends, 0, 0.3, n), x_hat))
    held = np.full((len(grid), 1), coord.u_index)
    rest = np.tile(obj.rest_hat(held[0]), (len(grid), 1))
    lp, _, _ = obj(held, coord.to_u(grid)[:, None], rest)
    keep = np.isfinite(grid)
    better = obj.better_fit()
    notes = []
    se = float(np.sqrt(res.cov[coord.index, coord.index]))
    zq = wald_z(level)
    interval = (float(ends.lower[0]), float(ends.upper[0]))
    if better is not None:
        notes.append(obj.better_message(better))
        warnings.warn(notes[-1] + " It is attached as .better_fit.", ProfileWarning, stacklevel=3)
        interval = (math.nan, math.nan)
    else:
        _warn_ends([name], ends, level)
    return Profile(
        name=name,
        estimate=x_hat,
        level=level,
        grid=grid[keep],
        loglik=lp[keep],
        loglik_max=obj.l_hat,
        interval=interval,
        open=(bool(ends.open_lower[0]), bool(ends.open_upper[0])),
        reliable=(bool(ends.reliable[0, 0]), bool(ends.reliable[0, 1])),
        wald=(x_hat - zq * se, x_hat + zq * se),
        better_fit=better,
        notes=notes,
        of_posterior=res.has_prior,
    )


def region(res: FitResult, a: str, b: str, level: float = 0.95, n: int = 41) -> Region:
    """The joint region of ``a`` and ``b``: the profile deviance on an n × n grid.

    The grid spans each parameter's profile interval at the χ²₂(level) threshold, which is
    exactly the region's extent along that axis (the maximum over the other parameter of
    ℓ_p(a, b) is ℓ_p(a)), with a margin."""
    level, n = _check_level(level), _check_n(n)
    if a == b:
        raise ValueError(f"a and b must be two different parameters, got {a!r} twice")
    coords = _coords(res, [a, b])
    obj = _Objective(res)
    q2 = chi2_quantile(level, 2)
    ends = _endpoints(obj, coords, q2)
    axes = [_axis(c, float(res._x[c.index]), ends, i, 0.15, n) for i, c in enumerate(coords)]
    ua, ub = np.meshgrid(coords[0].to_u(axes[0]), coords[1].to_u(axes[1]), indexing="ij")
    values = np.stack([ua.ravel(), ub.ravel()], axis=1)
    held = np.tile([coords[0].u_index, coords[1].u_index], (len(values), 1))
    rest = np.tile(obj.rest_hat(held[0]), (len(values), 1))
    lp, _, _ = obj(held, values, rest)
    deviance = (2.0 * (obj.l_hat - lp)).reshape(n, n)
    better = obj.better_fit()
    if better is not None:
        warnings.warn(obj.better_message(better) + " It is attached as .better_fit.", ProfileWarning, stacklevel=3)
    idx = [coords[0].index, coords[1].index]
    return Region(
        names=(a, b),
        estimate=np.asarray(res._x)[idx],
        cov=np.asarray(res.cov)[np.ix_(idx, idx)],
        level=level,
        grid_a=axes[0],
        grid_b=axes[1],
        deviance=deviance,
        better_fit=better,
    )
