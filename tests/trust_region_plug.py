"""Run ``jm.fit`` with the trust-region strategy for method "newton" (and "auto").

Until ``Problem.strategy`` selects ``trust_region_newton`` itself, tests and benchmarks
swap it in for the duration of a ``with`` block; the compiled solves are cleared on
entry and exit so that no program built with the other strategy is reused."""

from __future__ import annotations

import contextlib

from jaxmle import problem
from jaxmle.solvers.trust_region import trust_region_newton


@contextlib.contextmanager
def trust_region_for_newton():
    original = problem.Problem.strategy

    def strategy(self, smooth, total, l1_weight, l1_centre, dtype):
        if self.solver[0] != "newton" or self.has_l1:
            return original(self, smooth, total, l1_weight, l1_centre, dtype)
        tol = self.tol if self.tol is not None else problem.default_tol("newton", dtype)
        return trust_region_newton(smooth, tol)

    problem.compiled_solve.cache_clear()
    problem.Problem.strategy = strategy
    try:
        yield
    finally:
        problem.Problem.strategy = original
        problem.compiled_solve.cache_clear()
