"""Elementwise activation layers: Tanh, Sigmoid, ReLU."""

import numpy as np

from .._checks import as_real_array, grad_shape
from .._dtype import get_default_dtype
from .._grad_mode import is_grad_enabled
from .._math import sigmoid
from .layer import Layer


class _Activation(Layer):
    """Elementwise ``y = f(x)`` and ``dL/dx = g * f'(x)``.

    A subclass gives ``function(x) -> y`` and ``slope(x, y) -> f'(x)``. Forward keeps
    the slope, a new array, never the output itself: a caller that edits the output
    in place (``y *= 0``) cannot change the gradient. Float input keeps its dtype;
    integer and bool input is computed in the default dtype.
    """

    _slope = None  # f'(x) of the last forward (None: no forward, or one under no_grad)

    def forward(self, x):
        x = as_real_array(x, "input", self, get_default_dtype())
        y = self.function(x)
        self._slope, self._y_dtype = (self.slope(x, y), y.dtype) if is_grad_enabled() else (None, None)
        return y

    def backward(self, grad_out):
        if self._slope is None:
            raise self._missing_forward()
        return grad_shape(grad_out, self._slope.shape, self, self._y_dtype) * self._slope


class Tanh(_Activation):
    """``y = tanh(x)``; backward ``dx = g * (1 - y**2)``. Shapes: any -> same."""

    def function(self, x):
        return np.tanh(x)

    def slope(self, x, y):
        return 1.0 - y * y


class Sigmoid(_Activation):
    """``y = 1 / (1 + exp(-x))``; backward ``dx = g * y * (1 - y)``. Shapes: any -> same."""

    def function(self, x):
        return sigmoid(x)

    def slope(self, x, y):
        return y * (1.0 - y)


class ReLU(_Activation):
    """``y = max(x, 0)``; backward ``dx = g * (x > 0)``. Shapes: any -> same."""

    def function(self, x):
        return np.maximum(x, 0.0, dtype=x.dtype)

    def slope(self, x, y):
        return x > 0
