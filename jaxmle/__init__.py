"""jaxmle: maximum likelihood, MAP and Laplace inference for any JAX log-density."""

from . import closed_form, models, priors
from ._precision import PrecisionWarning
from .batch import fit_batch
from .batch_results import BatchFitResult
from .compile_cache import compile_cache
from .constraints import (
    Constraint,
    greater_than,
    interval,
    less_than,
    ordered,
    positive,
    real,
    simplex,
    unit_interval,
)
from .fit import FitError, FitWarning, fit
from .formula import Design, design
from .lrtest import LRTest, lr_test
from .merge import load_study
from .profile import BetterFitFound, ProfileWarning
from .results import FitResult
from .sampling import SampleResult, sample
from .sbc import SBCResult, sbc
from .shards import StudyProgress, study_progress
from .status import Status
from .study import StudyResult, simulation_study
from .wald import WaldTest

__version__ = "0.1.0"

__all__ = [
    "fit",
    "fit_batch",
    "compile_cache",
    "simulation_study",
    "load_study",
    "study_progress",
    "StudyProgress",
    "sample",
    "SampleResult",
    "sbc",
    "SBCResult",
    "FitResult",
    "BatchFitResult",
    "StudyResult",
    "FitError",
    "FitWarning",
    "PrecisionWarning",
    "Status",
    "lr_test",
    "LRTest",
    "design",
    "Design",
    "WaldTest",
    "ProfileWarning",
    "BetterFitFound",
    "priors",
    "models",
    "closed_form",
    "Constraint",
    "real",
    "positive",
    "unit_interval",
    "interval",
    "greater_than",
    "less_than",
    "simplex",
    "ordered",
]
