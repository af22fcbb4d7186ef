"""Masking: marks the time steps whose features all equal a padding value."""

import numpy as np

from .._checks import as_real_array, finite_number, fmt_shape, grad_shape
from .._grad_mode import is_grad_enabled
from .layer import Layer


class Masking(Layer):
    """Passes ``x: (batch, time, features)`` through unchanged and makes its mask
    (``compute_mask``): a step is padding when every feature equals ``mask_value``::

        y = x                      mask = any(x != mask_value, axis=-1)    (batch, time) bool

    Args:
        mask_value: the padding value (a finite number; default 0.0).

    Raises:
        TypeError: ``mask_value`` is not a real number.
        ValueError: ``mask_value`` is not finite.

    The mask replaces the incoming one (as Keras' ``Masking``). Layers after it that
    take a mask (``RNN``, ``Bidirectional``) skip the padded steps, so their values
    never matter further on. Backward: ``dL/dx = g`` (a copy). No parameters; the
    dtype is kept.
    """

    def __init__(self, mask_value=0.0):
        super().__init__()
        self.mask_value = finite_number(mask_value, "mask_value", "Masking")
        self._shape = None

    def get_config(self):
        return {"mask_value": self.mask_value}

    def compute_mask(self, x, mask):
        """``any(x != mask_value, axis=-1)``: ``(batch, time)`` bool, True at real steps."""
        return np.any(self._checked(x) != self.mask_value, axis=-1)

    def forward(self, x):
        x = self._checked(x)
        self._shape = (x.shape, x.dtype) if is_grad_enabled() else None
        return x.copy()

    def backward(self, grad_out):
        if self._shape is None:
            raise self._missing_forward()
        shape, dtype = self._shape
        return grad_shape(grad_out, shape, self, dtype).copy()

    def _checked(self, x):
        x = as_real_array(x, "input", self, np.float64)
        if x.ndim != 3:
            raise ValueError(f"{self}: expected input (batch, time, features), got shape {fmt_shape(x.shape)}")
        return x
