"""Flatten and Reshape: change the shape of each sample, keeping the batch axis."""

import math
import numbers

from .._checks import as_real_array, fmt_shape, grad_shape
from .._dtype import get_default_dtype
from .._grad_mode import is_grad_enabled
from .layer import Layer


class _Reshaping(Layer):
    """Shared forward/backward: ``y = x.reshape(batch, *target)``, ``dx = g.reshape(x.shape)``.

    Integer input (indices on their way to an ``Embedding``) keeps its dtype, and a
    ``None`` gradient (what ``Embedding.backward`` returns) passes through as ``None``.
    """

    def _target(self, sample_shape):
        raise NotImplementedError

    def forward(self, x):
        x = as_real_array(x, "input", self)  # dtype kept: indices stay integers
        if x.ndim == 0:
            raise ValueError(f"{self}: input must have a batch axis, got a scalar (shape ())")
        y = x.reshape((x.shape[0],) + self._target(x.shape[1:]))
        self._in_shape, self._out_shape = (x.shape, y.shape) if is_grad_enabled() else (None, None)
        self._integer_input = x.dtype.kind in "biu"
        # the gradient of a float input in its dtype; of integers (fed to a Dense, say) in the default one
        self._grad_dtype = get_default_dtype() if self._integer_input else x.dtype
        return y

    def backward(self, grad_out):
        if getattr(self, "_in_shape", None) is None:
            raise self._missing_forward()
        if grad_out is None and self._integer_input:
            return None  # indices (e.g. reshaped before an Embedding) have no gradient
        return grad_shape(grad_out, self._out_shape, self, self._grad_dtype).reshape(self._in_shape)


class Flatten(_Reshaping):
    """Flattens each sample: ``x: (batch, d1, ..., dk) -> (batch, d1 * ... * dk)``
    (``(batch,) -> (batch, 1)``), as ``keras.layers.Flatten``.

    Backward: ``dL/dx = g.reshape(x.shape)``. No parameters; the dtype is kept.
    """

    def _target(self, sample_shape):
        return (math.prod(sample_shape),)

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape[1:])
        return (input_shape[0], None if any(s is None for s in rest) else math.prod(rest))


class Reshape(_Reshaping):
    """Reshapes each sample to ``shape``: ``x: (batch, ...) -> (batch, *shape)``, as
    ``keras.layers.Reshape`` (the batch axis is not part of ``shape``; one entry
    may be -1, inferred from the size of a sample).

    Args:
        shape: tuple of ints >= 1, at most one -1.

    Raises:
        TypeError: ``shape`` is not a tuple or list.
        ValueError: an entry is neither an int >= 1 nor -1, or there are two -1s; at
            ``forward``, a sample whose size does not fit ``shape``.

    Backward: ``dL/dx = g.reshape(x.shape)``. No parameters; the dtype is kept.
    """

    def __init__(self, shape):
        super().__init__()
        if not isinstance(shape, (tuple, list)):
            raise TypeError(f"Reshape: shape must be a tuple of ints (without the batch axis), got {shape!r}")
        for k, s in enumerate(shape):
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not (s >= 1 or s == -1):
                raise ValueError(f"Reshape: shape[{k}] must be an int >= 1 or -1, got {s!r} (shape {tuple(shape)!r})")
        if sum(1 for s in shape if s == -1) > 1:
            raise ValueError(f"Reshape: shape may contain at most one -1, got {tuple(shape)!r}")
        self.shape = tuple(int(s) for s in shape)

    def get_config(self):
        return {"shape": list(self.shape)}

    def _target(self, sample_shape):
        size = math.prod(sample_shape)
        known = math.prod(s for s in self.shape if s != -1)
        if (-1 in self.shape and size % known) or (-1 not in self.shape and size != known):
            raise ValueError(
                f"{self!r}: cannot reshape a sample of shape {fmt_shape(sample_shape)} ({size} elements) "
                f"to {fmt_shape(self.shape)}"
            )
        return tuple(size // known if s == -1 else s for s in self.shape)

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape[1:])
        if -1 in self.shape and any(s is None for s in rest):
            target = tuple(None if s == -1 else s for s in self.shape)
        elif -1 in self.shape:
            target = self._target(rest)
        else:
            target = self.shape
        return (input_shape[0],) + target
