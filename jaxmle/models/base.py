"""The built-in model protocol: what ``jm.fit(model, data)`` needs from a model."""

from __future__ import annotations

from typing import Any


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
      order of the fit's ``names``.
    """

    name: str = "model"
    constraints: Any = None

    def loglik(self, params, data):
        raise NotImplementedError

    def init(self, data):
        raise NotImplementedError

    def simulate(self, key, params, n):
        raise NotImplementedError

    def mle(self, data):
        raise ValueError(f"{self.name}: no closed-form MLE; use jm.fit")

    def fisher_information(self, params):
        raise NotImplementedError


def resolve(loglik, init, data, constraints):
    """(loglik, init, data, constraints) with a Model unpacked.

    ``jm.fit(model, data)`` passes the data in the position of ``init``; ``init`` may still
    be given explicitly as ``jm.fit(model, init, data)``. User constraints override the
    model's."""
    if not isinstance(loglik, Model):
        return loglik, init, data, constraints
    model = loglik
    if data is None:
        data, init = init, None
    if init is None:
        init = model.init(data)
    merged = dict(model.constraints or {})
    merged.update(constraints or {})
    return model.loglik, init, data, merged
