"""Parameter: a trainable array and its gradient."""

import numpy as np


class Parameter:
    """A trainable array.

    Args:
        data: array-like of a float dtype, any shape; held as a C-contiguous array
            (copied only when it is not one already).
        name: str, the attribute name within its layer; default ``""``.

    Raises:
        TypeError: ``data`` is not of a float dtype.

    Attributes:
        data: ndarray, the value; updated in place so every holder sees the same memory.
        grad: ndarray of the same shape and dtype; ``backward`` adds into it.
        name: str, the attribute name within its layer (``"kernel"``).
    """

    __slots__ = ("data", "grad", "name")

    def __init__(self, data, name=""):
        data = np.asarray(data)
        if data.dtype.kind != "f":
            raise TypeError(f"Parameter {name!r}: expected a float array, got dtype {data.dtype}")
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)
        self.name = name

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    def zero_grad(self):
        """Set ``grad`` to zero in place (the same array)."""
        self.grad[...] = 0

    def astype(self, dtype):
        """Convert ``data`` and ``grad`` to ``dtype`` in place.

        New arrays, held by this same Parameter, so a layer and an optimizer holding it
        follow. ``Layer.astype`` converts every parameter of a layer this way.

        Args:
            dtype: the new float dtype (``np.float32`` or ``np.float64``).

        Returns:
            ``self``.
        """
        self.data = self.data.astype(dtype)
        self.grad = self.grad.astype(dtype)
        return self

    def __repr__(self):
        return f"Parameter(name={self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"
