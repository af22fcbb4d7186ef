"""Dropout: zero random units during training (inverted dropout)."""

import numpy as np

from .._checks import as_real_array, finite_number, fmt_shape, grad_shape
from .._dtype import get_default_dtype
from .._grad_mode import is_grad_enabled
from .._random import get_rng
from .layer import Layer


class Dropout(Layer):
    """Inverted dropout: in training mode each element is kept with probability
    ``1 - p`` and scaled by ``1 / (1 - p)``, else set to zero; in eval mode (and
    when ``p == 0``) the layer is the identity.

    Args:
        p: probability of zeroing an element, ``0 <= p < 1``, default 0.5 (PyTorch's name;
            Keras calls it ``rate``).

    Raises:
        TypeError: ``p`` is not a real number.
        ValueError: ``p`` is not in ``[0, 1)``.

    Shapes: any -> same, e.g. ``(batch, features)`` or ``(batch, time, H)``
    between stacked ``RNN(..., return_sequences=True)`` layers (a fresh mask for
    every element, step and sample).

    Forward and backward, with ``u`` uniform on ``[0, 1)`` drawn per element from
    the generator seeded by ``minidl.set_seed`` (so masks are reproducible)::

        m = (u >= p) / (1 - p)          y = x * m          dL/dx = g * m

    Every training-mode forward draws a new mask; ``backward`` uses the mask of the
    last forward. Because the mask changes between forwards, ``gradcheck`` of a
    training-mode ``Dropout`` (or a model holding one) fails unless the mask is
    fixed: check in ``eval()`` mode, or fix the mask by overriding ``sample_mask``.
    """

    def __init__(self, p=0.5):
        super().__init__()
        self.p = finite_number(p, "p", "Dropout")
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {self.p}")
        self._mask = self._shape = None

    def get_config(self):
        return {"p": self.p}

    def sample_mask(self, shape):
        """The keep mask of one forward; override to fix the mask (e.g. in a test).

        Args:
            shape: tuple, the input's shape.

        Returns:
            Bool array of ``shape``, True where an element is kept (probability ``1 - p``),
            drawn from minidl's global generator.
        """
        return get_rng().random(shape) >= self.p

    def forward(self, x):
        x = as_real_array(x, "input", self, get_default_dtype())
        mask = None
        if self.training and self.p > 0.0:
            keep = np.asarray(self.sample_mask(x.shape))
            if keep.shape != x.shape or keep.dtype != np.bool_:
                raise ValueError(
                    f"{self!r}: sample_mask must return a bool array of shape {fmt_shape(x.shape)}, "
                    f"got {keep.dtype} {fmt_shape(keep.shape)}"
                )
            mask = keep * x.dtype.type(1.0 / (1.0 - self.p))  # m = (u >= p) / (1 - p)
        if is_grad_enabled():
            self._mask, self._shape, self._x_dtype = mask, x.shape, x.dtype
        else:
            self._mask = self._shape = None
        # The identity returns x itself (as PyTorch does): backward reads only its shape.
        return x if mask is None else x * mask

    def backward(self, grad_out):
        if self._shape is None:
            raise self._missing_forward()
        g = grad_shape(grad_out, self._shape, self, self._x_dtype)
        return g if self._mask is None else g * self._mask
