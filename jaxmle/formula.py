"""Model formulas through formulaic (the optional extra ``jaxmle[formula]``).

``design("y ~ x1 + C(group)", df)`` builds the design matrix X and the response y with
formulaic's Wilkinson formulas (the grammar of R and patsy: an intercept unless ``- 1`` or
``+ 0``, treatment contrasts for ``C(...)`` with the first level as reference, ``:`` and
``*`` interactions, functions such as ``np.log(x)``), dropping rows with a missing value in
any variable of the formula. The result is the data format of the built-in regressions,
``{"X": (n, d), "y": (n,)}``, ready for ``jm.fit("logistic_regression", data=...)`` or a
custom log-likelihood.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Design", "design"]


class Design(NamedTuple):
    """``data``: ``{"X": (n, d) float64, "y": (n,) float64}`` (no ``"y"`` for a one-sided
    formula ``"~ x1"``), plus an integer index array (n,) per column named in ``groups``,
    coding its levels 0..G-1 in sorted order. ``labels``: keyed like ``data``, the column
    names of X (``"Intercept"``, ``"x1"``, ``"C(group)[T.b]"``), the response's name, and
    each group's levels (so ``labels["group"][data["group"][i]]`` is row i's level). Pass
    ``labels={"beta": labels["X"]}`` to a fit to name the coefficients."""

    data: dict[str, np.ndarray]
    labels: dict[str, list[str]]


def design(formula: str, data: Any, *, groups: str | Sequence[str] = ()) -> Design:
    """The design matrix and response of ``formula`` over the data frame ``data`` (a pandas
    DataFrame or a dict of equal-length columns), with integer indices for the columns
    named in ``groups`` (e.g. for a random intercept per group). Rows with a missing value
    in the formula's variables are dropped from every array alike."""
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula must be a string such as 'y ~ x1 + C(group)', got {formula!r}")
    formulaic = _import_formulaic()
    frame = _as_frame(data)
    groups = _check_groups(groups, frame)
    try:
        matrices = formulaic.model_matrix(formula, frame)
    except Exception as err:  # formulaic's errors name the offending term
        raise ValueError(f"formula {formula!r}: {err}") from err
    lhs, rhs = (matrices.lhs, matrices.rhs) if hasattr(matrices, "rhs") else (None, matrices)
    out = {"X": np.asarray(rhs, dtype=np.float64)}
    labels = {"X": [str(c) for c in rhs.columns]}
    if lhs is not None:
        if lhs.shape[1] != 1:
            raise ValueError(
                f"formula {formula!r}: the left-hand side must be one numeric column, got {list(lhs.columns)}"
            )
        out["y"] = np.asarray(lhs, dtype=np.float64).reshape(-1)
        labels["y"] = [str(lhs.columns[0])]
    for name in groups:
        out[name], labels[name] = _group_index(frame.loc[rhs.index, name], name)
    return Design(out, labels)


def _import_formulaic():
    try:
        import formulaic
    except ImportError as err:
        raise ImportError(
            "jm.design needs formulaic, an optional extra: pip install 'jaxmle[formula]' (or formulaic)"
        ) from err
    return formulaic


def _as_frame(data):
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except ValueError as err:
            raise ValueError(f"data: the columns must have equal lengths ({err})") from err
    raise ValueError(f"data must be a pandas DataFrame or a dict of columns, got {type(data).__name__}")


def _check_groups(groups, frame) -> list[str]:
    names = [groups] if isinstance(groups, str) else list(groups)
    for name in names:
        if not isinstance(name, str) or name not in frame.columns:
            raise ValueError(f"groups: {name!r} is not a column of data (columns: {list(frame.columns)})")
        if name in ("X", "y"):
            raise ValueError(f"groups: a group column cannot be called {name!r} (the names of the design and response)")
    return names


def _group_index(column, name: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes 0..G-1 of ``column``'s levels (sorted) and the levels' names."""
    import pandas as pd

    if column.isna().any():
        raise ValueError(f"groups: column {name!r} has missing values in rows the formula keeps")
    codes, levels = pd.factorize(column, sort=True)
    return codes.astype(np.int64), [str(v) for v in levels]
