"""The built-in model protocol: what ``jm.fit(model, data)`` needs from a model."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .. import _precision


class Model:
    """A statistical model with a per-observation log-likelihood.

    Subclasses are frozen dataclasses (hashable and compared by value, so compiled code is
    reused across equal instances) and provide:

    - ``name``: a short label; ``constraints``: ``{param: jm.constraint}``;
    - ``loglik(params, data)``: one log-likelihood term per observation;
    - ``init(data)``: sensible starting values for any data;
    - ``simulate(key, params, n)``: data of size ``n`` in the form ``loglik`` takes;
    - ``mle(data)``: the closed-form MLE as a params dict (ValueError where none exists);
    - ``fisher_information(params)``: expected information per observation, k×k, in the
      order of the fit's ``names``; ``asymptotic_cov(params)`` is its (pseudo-)inverse, the
      per-observation covariance of the MLE (the Cramér–Rao bound times n).

    ``loglik`` and ``simulate`` are pure JAX (jit and vmap safe; float64 inside
    ``jax.enable_x64``); ``init``, ``mle``, ``fisher_information`` and ``check_data`` run on
    the host and return NumPy float64.
    """

    name: str = "model"

    @property
    def constraints(self) -> dict:
        return {}

    def loglik(self, params, data):
        raise NotImplementedError

    def init(self, data):
        raise NotImplementedError

    def simulate(self, key, params, n):
        raise NotImplementedError

    def mle(self, data):
        raise ValueError(f"{self.name}: no closed-form MLE exists; fit it with jm.fit(model, data)")

    def check_data(self, data) -> None:
        """Raise ValueError (naming ``data``) when ``data`` is outside the model's support."""

    def fisher_information(self, params) -> np.ndarray:
        with _precision.context(np.float64):
            params = jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float64), params)
            return np.asarray(self._information(params), dtype=np.float64)

    def asymptotic_cov(self, params) -> np.ndarray:
        """Per-observation asymptotic covariance of the MLE: the pseudo-inverse of the
        expected information (the inverse wherever it is non-singular)."""
        return np.linalg.pinv(self.fisher_information(params), hermitian=True)

    def _information(self, params):
        raise NotImplementedError(f"{self.name}: no analytic Fisher information")


@dataclass(frozen=True)
class ModelLoglik:
    """A model's log-likelihood as a hashable callable: equal models give equal functions,
    so compiled fits are reused (a bound method compares by the identity of its object)."""

    model: Model

    def __call__(self, params, data):
        return self.model.loglik(params, data)


def resolve(loglik, init, data, constraints):
    """(loglik, init, data, constraints) with a Model unpacked.

    ``jm.fit(model, data)`` passes the data in the position of ``init``; ``init`` may still
    be given explicitly as ``jm.fit(model, init, data)``. User constraints override the
    model's."""
    if not isinstance(loglik, Model):
        return loglik, init, data, constraints
    model = loglik
    read_as_data = data is None and init is not None
    if read_as_data:
        data, init = init, None
    if data is None:
        raise ValueError(f"data: {model.name} needs data, got None")
    try:
        model.check_data(data)
    except ValueError as err:
        if read_as_data and isinstance(data, dict):
            raise ValueError(
                f"data: none was given, so the second argument was read as the data, and it is not data ({err}); "
                f"to give starting values, call jm.fit({model.name}, init, data)"
            ) from None
        raise
    if init is None:
        init = model.init(data)
    merged = dict(model.constraints)
    merged.update(constraints or {})
    return ModelLoglik(model), init, data, merged
