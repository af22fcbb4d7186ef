"""Argument and input validation shared by the public classes.

Every helper raises ``TypeError`` or ``ValueError`` with the owner's name, the
expected and the received value, so errors surface at the public boundary and
never from deep inside numpy.
"""

import numbers

import numpy as np


def positive_int(value, name, owner):
    """Return ``value`` as int, or raise if it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{owner}: {name} must be >= 1, got {value}")
    return int(value)


def finite_number(value, name, owner, minimum=None, maximum=None, min_open=False):
    """Return ``value`` as float, or raise if it is not a finite real within bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    try:
        value = float(value)
    except OverflowError:  # an int beyond the float range
        raise ValueError(f"{owner}: {name} must be finite, got a number too large for a float") from None
    if not np.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value}")
    if minimum is not None and (value < minimum or (min_open and value == minimum)):
        bound = f"> {minimum}" if min_open else f">= {minimum}"
        raise ValueError(f"{owner}: {name} must be {bound}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{owner}: {name} must be <= {maximum}, got {value}")
    return value


def one_of(value, choices, name, owner):
    """Raise unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{owner}: {name} must be one of {expected}, got {value!r}")
    return value


def as_float_array(x, name, owner, dtype):
    """Return ``x`` as an ndarray of ``dtype``.

    Real numeric input (ints, bools, other floats) is converted; strings, objects
    and complex numbers raise ``TypeError``.
    """
    if isinstance(x, np.ndarray) and x.dtype == dtype:
        return x
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as err:  # ragged nested lists
        raise TypeError(f"{owner}: {name} must be a numeric array, got {type(x).__name__} ({err})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{owner}: {name} must be a real numeric array, got dtype {arr.dtype}"
            + (f" ({type(x).__name__})" if not isinstance(x, np.ndarray) else "")
        )
    return arr.astype(dtype, copy=False)


def as_int_array(x, name, owner):
    """Return ``x`` as an integer ndarray, or raise ``TypeError``."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{owner}: {name} must be an integer array, got dtype {arr.dtype}")
    return arr


def fmt_shape(shape):
    """Format a shape as Python does, ``(5,)``, with ``...`` and ``None`` for unknown parts."""
    if len(shape) == 1:
        return f"({_fmt_dim(shape[0])},)"
    return "(" + ", ".join(_fmt_dim(s) for s in shape) + ")"


def _fmt_dim(s):
    return "..." if s is Ellipsis else ("None" if s is None else str(s))


def check_last_dim(x, size, name, owner, ndim=None):
    """Raise ``ValueError`` unless x has ``size`` on its last axis (and ``ndim`` axes if given)."""
    if ndim is not None and x.ndim != ndim:
        expected = ("batch", "time", size)[-ndim:] if ndim <= 3 else (...,)
        raise ValueError(
            f"{owner}: expected {name} of rank {ndim} {fmt_shape(expected)}, got shape {fmt_shape(x.shape)}"
        )
    if x.ndim == 0 or x.shape[-1] != size:
        expected = (..., size) if ndim is None else x.shape[:-1] + (size,)
        raise ValueError(f"{owner}: expected {name} {fmt_shape(expected)}, got shape {fmt_shape(x.shape)}")
    if x.size == 0:
        raise ValueError(f"{owner}: {name} is empty (shape {fmt_shape(x.shape)})")
