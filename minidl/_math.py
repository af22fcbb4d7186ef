"""Elementwise functions that stay finite and warning-free for any input.

Each takes an optional ``out=`` array, so that the readable cell steps
(``y = tanh(a)``) and the fused sequence kernels (which write into preallocated
arrays) call the same code. The derivatives are written from the function's
output ``y`` (what a cell keeps), not from its argument.
"""

import numpy as np


def sigmoid(x, out=None):
    """Logistic sigmoid as ``0.5 * (1 + tanh(x / 2))``: one transcendental call, no overflow."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def relu(x, out=None):
    """``max(x, 0)``."""
    return np.maximum(x, 0, out=out)


def tanh_derivative(y, out=None):
    """``tanh'(a) = 1 - y**2`` from ``y = tanh(a)``."""
    out = np.square(y, out=out)  # y * y, faster than multiply when y is a strided view
    return np.subtract(1, out, out=out)


def sigmoid_derivative(y, out=None):
    """``sigmoid'(a) = y * (1 - y)`` from ``y = sigmoid(a)``, computed as ``y - y**2``."""
    out = np.square(y, out=out)
    return np.subtract(y, out, out=out)


def relu_derivative(y, out=None):
    """``relu'(a) = 1 where y > 0, else 0`` from ``y = relu(a)``, in ``y``'s dtype."""
    if out is None:
        out = np.empty_like(y)
    return np.greater(y, 0, out=out, casting="unsafe")


#: name -> (function, its derivative written from the output)
ACTIVATIONS = {
    "tanh": (np.tanh, tanh_derivative),
    "sigmoid": (sigmoid, sigmoid_derivative),
    "relu": (relu, relu_derivative),
}
