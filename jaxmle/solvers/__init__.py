"""Solvers: one iteration driver (``driver.run``) and the strategies plugged into it."""

from .driver import Ends, SolverResult, Step, Strategy, run
from .first_order import gradient_transformation, lbfgs
from .newton import newton, proximal_newton
from .trust_region import TrustState, Warm, derivatives_at_end, trust_region_newton

__all__ = [
    "Ends",
    "SolverResult",
    "Step",
    "Strategy",
    "run",
    "newton",
    "proximal_newton",
    "trust_region_newton",
    "TrustState",
    "derivatives_at_end",
    "Warm",
    "lbfgs",
    "gradient_transformation",
]
