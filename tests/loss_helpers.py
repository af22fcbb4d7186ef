"""Shared helper of the loss tests: central differences of a loss with respect to its prediction."""

import numpy as np


def numeric_grad(loss, pred, target, eps=1e-6):
    """Central differences of ``loss(pred, target)`` with respect to pred (float64)."""
    out = np.empty_like(pred)
    for idx in np.ndindex(pred.shape):
        plus, minus = pred.copy(), pred.copy()
        plus[idx] += eps
        minus[idx] -= eps
        out[idx] = (loss(plus, target) - loss(minus, target)) / (2 * eps)
    return out
