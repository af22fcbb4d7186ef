"""Losses: a scalar objective of a prediction and a target, and its gradient.

A loss is used in two calls per training step::

    value = loss(pred, target)     # forward: a Python float, keeps what backward needs
    grad_pred = loss.backward()    # d value / d pred for that last forward, shape of pred

New losses subclass ``Loss`` and implement ``_forward(pred, target) -> float``
(keeping what ``_backward`` needs on ``self``) and ``_backward() -> grad_pred``.
Input conversion and validation live in ``Loss._prepare`` / ``_check_target``;
a loss whose target is not a float array of pred's shape (class indices for a
cross-entropy, say) overrides ``_check_target``.
"""

import numpy as np

from ._checks import as_float_array, fmt_shape
from ._dtype import get_default_dtype

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Loss:
    """Base class of losses.

    ``forward(pred, target) -> float`` (also ``loss(pred, target)``) and
    ``backward() -> grad_pred``, the gradient of the last forward's value with
    respect to ``pred`` (same shape and dtype as the converted ``pred``).

    Computation runs in pred's dtype when pred is a float32/float64 array, else in
    the default dtype; the target is converted to that dtype. Non-numeric input is
    a ``TypeError``; ``backward`` before any ``forward`` is a ``RuntimeError``.
    """

    def __init__(self):
        self._ready = False

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def forward(self, pred, target):
        """Return the loss of ``pred`` against ``target`` as a Python float."""
        # A forward that fails validation leaves no stale cache for backward.
        self._ready = False
        pred, target = self._prepare(pred, target)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing loss is reported as inf
            value = float(self._forward(pred, target))
        self._ready = True
        return value

    def backward(self):
        """Gradient of the last forward's value with respect to its ``pred``."""
        if not self._ready:
            raise RuntimeError(f"{type(self).__name__}: backward() called before forward()")
        return self._backward()

    # ---- hooks for subclasses --------------------------------------------------
    def _forward(self, pred, target):
        raise NotImplementedError(f"{type(self).__name__} does not implement _forward")

    def _backward(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement _backward")

    def _prepare(self, pred, target):
        """Convert ``pred`` to its own float dtype (default dtype if not float32/64), then the target."""
        owner = type(self).__name__
        dtype = getattr(pred, "dtype", None)
        dtype = np.dtype(dtype) if dtype is not None and np.dtype(dtype) in _FLOAT_DTYPES else get_default_dtype()
        pred = as_float_array(pred, "pred", owner, dtype)
        if pred.size == 0:
            raise ValueError(f"{owner}: pred is empty (shape {fmt_shape(pred.shape)})")
        return pred, self._check_target(target, pred)

    def _check_target(self, target, pred):
        """Default: a real array of exactly pred's shape (no broadcasting), in pred's dtype."""
        owner = type(self).__name__
        target = as_float_array(target, "target", owner, pred.dtype)
        if target.shape != pred.shape:
            raise ValueError(
                f"{owner}: pred and target must have the same shape, "
                f"got pred {fmt_shape(pred.shape)} and target {fmt_shape(target.shape)}"
            )
        return target

    def get_config(self):
        """Constructor arguments as JSON-friendly values."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MSELoss(Loss):
    """Mean squared error over all elements.

    pred, target: any shape, equal (e.g. ``(batch, time, out)``).
    ``L = mean((pred - target)**2) = sum((pred - target)**2) / N`` with ``N = pred.size``;
    ``dL/dpred = 2 * (pred - target) / N``.
    """

    def _forward(self, pred, target):
        self._diff = np.subtract(pred, target)
        return np.mean(np.square(self._diff))

    def _backward(self):
        return self._diff * (2.0 / self._diff.size)
