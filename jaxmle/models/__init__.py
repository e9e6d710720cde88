"""Built-in models: log-likelihood, simulator, closed-form MLE and Fisher information."""

from .base import Model, resolve

__all__ = ["Model", "resolve"]
