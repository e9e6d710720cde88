"""Host-side checks that data lie in a model's support (ValueError naming ``data``)."""

from __future__ import annotations

import numpy as np


def values(data, where: str = "data", *, integer=False, lower=None, upper=None, positive=False) -> np.ndarray:
    """``data`` as a float64 array after checking it element-wise (any shape, so batched
    data with a leading replicate axis passes too)."""
    try:
        x = np.asarray(data, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where} must be an array of numbers: {err}") from err
    if x.size == 0:
        raise ValueError(f"{where} is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where} contains {int((~np.isfinite(x)).sum())} NaN or infinite value(s)")
    if integer and np.any(x != np.round(x)):
        raise ValueError(f"{where} must hold whole numbers")
    if lower is not None and np.any(x < lower):
        raise ValueError(f"{where} must be >= {lower:g}, found {x.min():g}")
    if upper is not None and np.any(x > upper):
        raise ValueError(f"{where} must be <= {upper:g}, found {x.max():g}")
    if positive and np.any(x <= 0):
        raise ValueError(f"{where} must be > 0, found {x.min():g}")
    return x


def design(data, what: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """(X, y) from a regression's ``{"X": (..., n, d), "y": (..., n)}``."""
    if not isinstance(data, dict) or set(data) != {"X", "y"}:
        raise ValueError(f'{what} must be a dict {{"X": design matrix, "y": responses}}')
    X = values(data["X"], f'{what}["X"]')
    y = np.asarray(data["y"], dtype=float)
    if X.ndim < 2 or y.shape != X.shape[:-1]:
        raise ValueError(f'{what}["X"] must be (n, d) and {what}["y"] (n,), got {X.shape} and {y.shape}')
    return X, y
