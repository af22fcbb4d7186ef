"""The default floating dtype of newly built layers."""

import numpy as np

_SUPPORTED = (np.dtype(np.float32), np.dtype(np.float64))
_default = np.dtype(np.float32)


def set_default_dtype(dtype):
    """Set the dtype of parameters of layers built from now on (float32 or float64).

    Layers built earlier keep their dtype (convert them with ``Layer.astype``).

    Args:
        dtype: ``np.float32`` (the default at start-up) or ``np.float64``, or anything
            ``numpy.dtype`` reads as one of them (``"float64"``).

    Raises:
        TypeError: ``dtype`` is not a dtype, or is neither float32 nor float64.
    """
    global _default
    _default = as_float_dtype(dtype, "dtype")


def get_default_dtype():
    """Return the dtype (``numpy.dtype``) that new layers use for their parameters."""
    return _default


def as_float_dtype(dtype, name="dtype"):
    """Return ``dtype`` as a supported ``numpy.dtype``; None means the default."""
    if dtype is None:
        return _default
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: expected float32 or float64, got {dtype!r}") from None
    if dt not in _SUPPORTED:
        raise TypeError(f"{name}: expected float32 or float64, got {dt}")
    return dt
