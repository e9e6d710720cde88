"""Solvers: one iteration driver (``driver.run``) and the strategies plugged into it."""

from .driver import SolverResult, Step, Strategy, run
from .first_order import gradient_transformation, lbfgs
from .newton import newton, proximal_newton

__all__ = [
    "SolverResult",
    "Step",
    "Strategy",
    "run",
    "newton",
    "proximal_newton",
    "lbfgs",
    "gradient_transformation",
]
