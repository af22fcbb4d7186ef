"""RepeatVector: repeat each sample along a new time axis (the bridge of a Keras-style encoder-decoder)."""

import numpy as np

from .._checks import as_real_array, fmt_shape, grad_shape, positive_int
from .._dtype import get_default_dtype
from .._grad_mode import is_grad_enabled
from .layer import Layer


class RepeatVector(Layer):
    """Repeats each sample ``n`` times along a new time axis, as ``keras.layers.RepeatVector``:
    ``y[:, t, :] = x`` for ``t = 0, ..., n-1``.

    Args:
        n: number of repetitions (int >= 1), the time length of the output.

    Raises:
        TypeError: ``n`` is not an int.
        ValueError: ``n < 1``.

    Shapes: ``x: (batch, features) -> y: (batch, n, features)``. Typical use: the last
    output of an encoder ``RNN`` repeated as the input of every decoder step,
    ``Sequential([RNN(...), RepeatVector(n), RNN(..., return_sequences=True), Dense(...)])``.

    Backward: every copy of ``x`` receives its gradient, ``dL/dx = sum_t g[:, t, :]``.
    No parameters; float input keeps its dtype, integer input is computed in the
    default one. The input has no time axis, so the output has no mask
    (``compute_mask`` gives None).
    """

    def __init__(self, n):
        super().__init__()
        self.n = positive_int(n, "n", "RepeatVector")
        self._in_shape = None

    def get_config(self):
        return {"n": self.n}

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n) + tuple(input_shape[1:])

    def compute_mask(self, x, mask):
        return None

    def forward(self, x):
        x = as_real_array(x, "input", self, get_default_dtype())
        if x.ndim != 2:
            raise ValueError(f"{self}: expected input of rank 2 (batch, features), got shape {fmt_shape(x.shape)}")
        y = np.repeat(x[:, None, :], self.n, axis=1)  # a new array: no memory shared with x
        self._in_shape, self._dtype = (x.shape, x.dtype) if is_grad_enabled() else (None, None)
        return y

    def backward(self, grad_out):
        if self._in_shape is None:
            raise self._missing_forward()
        batch, features = self._in_shape
        g = grad_shape(grad_out, (batch, self.n, features), self, self._dtype)
        return g.sum(axis=1)
