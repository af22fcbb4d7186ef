"""Concatenate: join several inputs along one axis (a layer of several inputs)."""

import numbers

import numpy as np

from .._checks import as_real_array, fmt_shape, grad_shape
from .._dtype import get_default_dtype
from .._grad_mode import is_grad_enabled
from .layer import Layer


class Concatenate(Layer):
    """Joins its inputs along ``axis``, as ``keras.layers.Concatenate`` and ``torch.cat``:
    ``y = concatenate([x_1, ..., x_k], axis)``.

    Args:
        axis: the axis to join along (int; negative counts from the end; default -1,
            the features). The batch axis (0) cannot be joined.

    Raises:
        TypeError: ``axis`` is not an int.

    Shapes: ``forward(x_1, ..., x_k)`` with ``k >= 1`` arrays that agree on every axis
    but ``axis``; ``y`` has the sum of their sizes there, e.g. ``(batch, 3)`` and
    ``(batch, 5)`` -> ``(batch, 8)``.

    Backward: ``g`` cut at the inputs' sizes along ``axis``: with ``o_i`` the offset of
    ``x_i`` (the sum of the sizes before it), ``dL/dx_i = g[..., o_i : o_i + n_i, ...]``;
    ``backward`` returns the tuple ``(dL/dx_1, ..., dL/dx_k)``, one per input, each a
    new array. No parameters; float inputs keep their dtype (the output has their
    common one), integer inputs are computed in the default one.
    """

    def __init__(self, axis=-1):
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"Concatenate: axis must be an int, got {axis!r}")
        self.axis = int(axis)
        self._sizes = None

    def get_config(self):
        return {"axis": self.axis}

    def compute_output_shape(self, input_shape):
        """``input_shape``: a tuple of the inputs' shapes (None for unknown sizes)."""
        shapes = [tuple(s) for s in input_shape]
        axis = self.axis % len(shapes[0])
        sizes = [s[axis] for s in shapes]
        joined = None if None in sizes else sum(sizes)
        return shapes[0][:axis] + (joined,) + shapes[0][axis + 1 :]

    def forward(self, *xs):
        if not xs:
            raise ValueError(f"{self}: forward needs at least one input, got none")
        xs = [as_real_array(x, f"input[{k}]", self, get_default_dtype()) for k, x in enumerate(xs)]
        ndim = xs[0].ndim
        if ndim < 2 or not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(
                f"{self}: cannot join input[0] of shape {fmt_shape(xs[0].shape)} along axis {self.axis} "
                "(an axis other than the batch axis 0 is needed)"
            )
        axis = self.axis % ndim
        for k, x in enumerate(xs[1:], start=1):
            if x.ndim != ndim or x.shape[:axis] + x.shape[axis + 1 :] != xs[0].shape[:axis] + xs[0].shape[axis + 1 :]:
                expected = xs[0].shape[:axis] + (None,) + xs[0].shape[axis + 1 :]
                raise ValueError(
                    f"{self}: expected input[{k}] of shape {fmt_shape(expected)} (that of input[0] but on axis {axis}), "
                    f"got {fmt_shape(x.shape)}"
                )
        y = np.concatenate(xs, axis=axis)
        if is_grad_enabled():
            self._sizes, self._dtypes, self._out_shape = [x.shape[axis] for x in xs], [x.dtype for x in xs], y.shape
        else:
            self._sizes = None
        return y

    def backward(self, grad_out):
        if self._sizes is None:
            raise self._missing_forward()
        g = grad_shape(grad_out, self._out_shape, self, np.result_type(*self._dtypes))
        cuts = np.cumsum(self._sizes)[:-1]
        parts = np.split(g, cuts, axis=self.axis % g.ndim)
        return tuple(np.array(part, dtype=dt) for part, dt in zip(parts, self._dtypes))
