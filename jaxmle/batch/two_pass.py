"""The two-pass solve: Newton's lanes stop at a short budget and the unfinished ones continue,
so that a few hard fits do not hold a whole group of lanes."""

from __future__ import annotations

import jax
import numpy as np

from ..fit import Prepared
from ..inference import Inference
from ..problem import RawFit
from ..status import Status
from .backend import solve_groups
from .replicates import take

#: Newton's first pass stops lanes at the iteration count this share of a pilot group needed;
#: the unfinished lanes continue in a second pass (methods that keep state between
#: iterations run in one pass)
FIRST_PASS_QUANTILE = 0.95
TWO_PASS_SOLVERS = ("newton",)


def solve_two_pass(prep: Prepared, u0: np.ndarray, data, group: int) -> tuple[RawFit, Inference]:
    """Solve every lane; with Newton's method, stop lanes at a short iteration budget and
    restart the unfinished ones from their last point.

    Under vmap a loop runs until its slowest lane stops, so a group of lanes costs the
    iterations of its slowest fit. The first group (the pilot) runs with the full budget;
    the other groups stop at the iteration count that ``FIRST_PASS_QUANTILE`` of the
    pilot's fits needed, and the second pass runs only the lanes still at work, packed into
    as few groups as they fill. A Newton restart takes the derivatives at the last point
    afresh (not an iteration) and run-off detection starts afresh, so it ends where one long
    pass would; L-BFGS's curvature pairs and optax's moments would be lost, so those methods
    run in a single pass, as ``fit`` does."""
    problem = prep.problem
    budget = problem.default_max_iter()
    if problem.solver[0] not in TWO_PASS_SOLVERS or len(u0) <= group:
        return solve_groups(problem, u0, prep, data, group, budget)
    pilot = solve_groups(problem, u0[:group], prep, take(data, slice(0, group)), group, budget)
    first = first_pass_budget(pilot[0].n_iter, budget)
    others = solve_groups(problem, u0[group:], prep, take(data, slice(group, len(u0))), group, first)
    raw, inf = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, b]), pilot, others)
    todo = group + np.flatnonzero(others[0].status == Status.MAX_ITER)
    if first == budget or len(todo) == 0:
        return raw, inf
    lanes = -(-len(todo) // group) * group
    pick = np.concatenate([todo, np.full(lanes - len(todo), todo[0])])
    rest = solve_groups(problem, raw.u[pick], prep, take(data, pick), group, budget - first)
    n_iter = raw.n_iter[todo] + rest[0].n_iter[: len(todo)]

    def continued(mine, theirs):
        mine = mine.copy()
        mine[todo] = theirs[: len(todo)]
        return mine

    raw, inf = jax.tree_util.tree_map(continued, (raw, inf), rest)
    raw.n_iter[todo] = n_iter
    return raw, inf


def first_pass_budget(pilot_iterations: np.ndarray, budget: int) -> int:
    """The iterations that ``FIRST_PASS_QUANTILE`` of the pilot's fits needed (at least 1)."""
    needed = int(np.quantile(pilot_iterations, FIRST_PASS_QUANTILE, method="higher"))
    return min(max(needed, 1), budget)
