"""Elementwise functions that stay finite and warning-free for any input."""

import numpy as np


def sigmoid(x, out=None):
    """Logistic sigmoid as ``0.5 * (1 + tanh(x / 2))``: one transcendental call, no overflow."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out
