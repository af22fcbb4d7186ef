"""Argument and input validation shared by the public classes.

Every helper raises ``TypeError`` or ``ValueError`` with the owner's name, the
expected and the received value, so errors surface at the public boundary and
never from deep inside numpy.
"""

import numbers

import numpy as np


def _is_int(value):
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Integral)


def flag(value, name, owner):
    """Return ``value`` as bool, or raise ``TypeError`` if it is not a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


def non_negative_int(value, name, owner):
    """Return ``value`` as int, or raise if it is not an integer >= 0."""
    if not _is_int(value):
        raise TypeError(f"{owner}: {name} must be an int, got {value!r} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{owner}: {name} must be >= 0, got {value}")
    return int(value)


def seed(value, name, owner, allow_none=False):
    """Return a seed as int (or None when ``allow_none``), or raise unless it is an int >= 0."""
    if value is None and allow_none:
        return None
    what = "a non-negative int" + (" or None" if allow_none else "")
    if not _is_int(value):
        raise TypeError(f"{owner}: {name} must be {what}, got {value!r}")
    if value < 0:
        raise ValueError(f"{owner}: {name} must be {what}, got {value}")
    return int(value)


def positive_int(value, name, owner):
    """Return ``value`` as int, or raise if it is not an integer >= 1."""
    if not _is_int(value):
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


LOSS_VALUE_HINT = "pass loss.backward(), the gradient of the loss, not the loss value"


def grad_shape(grad_out, expected, owner, dtype):
    """Return ``grad_out`` as an array of ``dtype``, or raise unless its shape is ``expected``.

    The one check of every ``backward``: the gradient must have the shape of the
    output of the last forward.
    """
    g = as_float_array(grad_out, "grad_out", owner, dtype)
    if g.shape != tuple(expected):
        hint = f"; {LOSS_VALUE_HINT}" if g.ndim == 0 and len(expected) else ""
        raise ValueError(f"{owner}: expected grad_out of shape {fmt_shape(expected)}, got {fmt_shape(g.shape)}{hint}")
    return g


def state_tuple(state, sizes, owner, dtype, batch=None, name="state"):
    """Return ``state`` as a tuple of ``(batch, n)`` arrays of ``dtype``, one per entry of ``sizes``.

    ``state`` must be a tuple or list of ``len(sizes)`` arrays of the same batch
    size (``batch`` when given); arrays are converted, not copied.
    """
    if not isinstance(state, (tuple, list)) or len(state) != len(sizes):
        got = f"{type(state).__name__} of length {len(state)}" if isinstance(state, (tuple, list)) else type(state).__name__
        raise ValueError(f"{owner}: expected {name} as a tuple of {len(sizes)} arrays, got {got}")
    arrays = []
    for k, (s, n) in enumerate(zip(state, sizes)):
        s = as_float_array(s, f"{name}[{k}]", owner, dtype)
        b = batch if batch is not None else (arrays[0].shape[0] if arrays else None)
        if s.ndim != 2 or s.shape[1] != n or (b is not None and s.shape[0] != b):
            expected = ("batch" if b is None else b, n)
            raise ValueError(f"{owner}: expected {name}[{k}] of shape {fmt_shape(expected)}, got {fmt_shape(s.shape)}")
        arrays.append(s)
    return tuple(arrays)


def batch_input(x, features, owner, dtype, time=False):
    """Return ``x`` as a ``(batch, features)`` array of ``dtype`` (``(batch, time, features)``
    with ``time=True``), or raise naming the expected and the received shape.

    Every axis must be at least 1 long: a cell or an RNN has nothing to compute otherwise.
    """
    x = as_float_array(x, "input", owner, dtype)
    dims = ("batch", "time", features) if time else ("batch", features)
    if x.ndim != len(dims) or x.shape[-1] != features:
        raise ValueError(f"{owner}: expected input {fmt_shape(dims)}, got shape {fmt_shape(x.shape)}")
    if 0 in x.shape:
        what = "one sample and one step" if time else "one sample"
        raise ValueError(f"{owner}: input must have at least {what}, got shape {fmt_shape(x.shape)}")
    return x


def as_real_array(x, name, owner, float_dtype=None):
    """Return ``x`` as a real numeric ndarray, keeping its dtype.

    Float input keeps its float dtype; integer and bool input keeps its dtype too,
    or is converted to ``float_dtype`` when one is given (``as_real_array(x, "input",
    owner, get_default_dtype())``: an elementwise layer that computes in its input's
    float dtype). Strings, objects, complex numbers and ragged lists raise the
    ``TypeError`` of ``as_float_array``.
    """
    try:
        dtype = np.asarray(x).dtype
    except (ValueError, TypeError):  # ragged nested lists: as_float_array names the problem
        dtype = np.dtype(np.float64)
    if dtype.kind not in "biuf":
        dtype = np.dtype(np.float64)  # as_float_array rejects the input with its message
    elif dtype.kind != "f" and float_dtype is not None:
        dtype = np.dtype(float_dtype)
    return as_float_array(x, name, owner, dtype)


def same_keys(mapping, expected, what, owner, optional=()):
    """Raise ``ValueError`` unless ``mapping`` has every key of ``expected`` and no key outside
    ``expected`` and ``optional``, naming the missing and the unexpected ones."""
    missing = sorted(set(expected) - set(mapping))
    extra = sorted(map(str, set(mapping) - set(expected) - set(optional)))
    if missing or extra:
        raise ValueError(f"{owner}: {what} has missing keys {missing} and unexpected keys {extra}")


def time_mask(mask, shape, owner, name="mask"):
    """Return ``mask`` as a bool ``(batch, time)`` array of ``shape`` (None passes through),
    or raise: ``TypeError`` unless its dtype is bool, ``ValueError`` unless its shape is ``shape``."""
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise TypeError(f"{owner}: {name} must be a bool array (True at real steps), got dtype {arr.dtype}; "
                        f"build it with a comparison, e.g. {name} = lengths[:, None] > np.arange(time)")
    if arr.shape != tuple(shape):
        raise ValueError(f"{owner}: expected {name} of shape {fmt_shape(shape)} (batch, time), "
                         f"got {fmt_shape(arr.shape)}")
    return arr


def generator(seed, owner):
    """A ``numpy.random.Generator`` for ``seed``: a new one for an int >= 0, ``seed`` itself for a
    Generator, None for None (the caller then uses minidl's global one, ``_random.get_rng()``)."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if not _is_int(seed) or seed < 0:
        raise TypeError(f"{owner}: seed must be None, a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def returned_tuple(value, where, *names):
    """``value`` as the tuple ``names`` (e.g. ``"new_state", "cache"``) that user code ``where``
    (``"MGU.step"``) must return, or a ``TypeError`` naming what it returned instead."""
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        raise TypeError(f"{where} must return a tuple ({', '.join(names)}), got {_described(value)}")
    return value


def returned_array(value, shape, where, name):
    """``value`` if it is an ndarray of ``shape``, else a ``TypeError`` (not an array) or a
    ``ValueError`` (wrong shape) saying that user code ``where`` returned it as ``name``."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{where} returned {name} as {_described(value)}; expected an array of shape {fmt_shape(shape)}")
    if value.shape != tuple(shape):
        raise ValueError(f"{where} returned {name} of shape {fmt_shape(value.shape)}; expected {fmt_shape(shape)}")
    return value


def returned_arrays(value, shapes, where, name, hint=""):
    """``value`` as a tuple of ndarrays, one of each of ``shapes``, returned by user code ``where``
    as ``name``: a ``TypeError`` unless it is a tuple or list of that many arrays (``hint`` is added
    to the message), a ``ValueError`` naming the first entry of a wrong shape."""
    if not isinstance(value, (tuple, list)) or len(value) != len(shapes):
        raise TypeError(f"{where} returned {name} as {_described(value)}; expected a tuple of {len(shapes)} "
                        f"array(s) shaped {', '.join(map(fmt_shape, shapes))}{hint}")
    return tuple(returned_array(v, s, where, f"{name}[{k}]") for k, (v, s) in enumerate(zip(value, shapes)))


def kept_grads(layer, where):
    """Raise ``ValueError`` unless every parameter's ``grad`` of ``layer`` is still an array of its
    parameter's shape after user code ``where`` added into it."""
    for name, p in layer.named_parameters():
        if not isinstance(p.grad, np.ndarray) or p.grad.shape != p.data.shape:
            raise ValueError(f"{where} left {name}.grad as {_described(p.grad)}; expected an array of shape "
                             f"{fmt_shape(p.data.shape)} like {name}.data: add into it ({name}.grad += ...), "
                             "never replace it")


def _described(value):
    """What a value is, for an error message: ``ndarray of shape (8, 4)``, ``tuple of length 3``, ``float``."""
    if isinstance(value, np.ndarray):
        return f"ndarray of shape {fmt_shape(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of length {len(value)}"
    return type(value).__name__
