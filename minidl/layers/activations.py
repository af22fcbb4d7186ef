"""Elementwise activation layers: Tanh, Sigmoid, ReLU."""

import numpy as np

from .._checks import as_float_array
from .._dtype import get_default_dtype
from .._grad_mode import is_grad_enabled
from .._math import sigmoid
from .layer import Layer


class _Activation(Layer):
    """Elementwise ``y = f(x)``; ``backward`` returns ``g * f'(x)`` from what forward kept."""

    def forward(self, x):
        if not (isinstance(x, np.ndarray) and x.dtype.kind == "f"):
            x = as_float_array(x, "input", self, get_default_dtype())
        y = self._f(x)
        self._saved = self._keep(x, y) if is_grad_enabled() else None
        return y

    def backward(self, grad_out):
        saved = getattr(self, "_saved", None)
        if saved is None:
            raise self._missing_forward()
        g = grad_out
        if not (isinstance(g, np.ndarray) and g.dtype.kind == "f"):
            g = as_float_array(g, "grad_out", self, get_default_dtype())
        if g.shape != saved.shape:
            raise ValueError(f"{self!r}: expected grad_out of shape {saved.shape}, got {g.shape}")
        return self._df(saved, g)


class Tanh(_Activation):
    """``y = tanh(x)``; backward ``dx = g * (1 - y**2)``. Shapes: any -> same."""

    def _f(self, x):
        return np.tanh(x)

    def _keep(self, x, y):
        return y

    def _df(self, y, g):
        return g * (1.0 - y * y)


class Sigmoid(_Activation):
    """``y = 1 / (1 + exp(-x))``; backward ``dx = g * y * (1 - y)``. Shapes: any -> same."""

    def _f(self, x):
        return sigmoid(x)

    def _keep(self, x, y):
        return y

    def _df(self, y, g):
        return g * y * (1.0 - y)


class ReLU(_Activation):
    """``y = max(x, 0)``; backward ``dx = g * (x > 0)``. Shapes: any -> same."""

    def _f(self, x):
        return np.maximum(x, 0.0, dtype=x.dtype)

    def _keep(self, x, y):
        return x > 0

    def _df(self, mask, g):
        return g * mask
