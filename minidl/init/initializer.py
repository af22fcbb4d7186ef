"""The ``Initializer`` base class, the fans of a shape, and the registry of initializer classes and names."""

import math
import numbers

import numpy as np

from .._dtype import as_float_dtype, get_default_dtype
from .._random import get_rng

_CLASSES = {}  # class name -> Initializer subclass (for configs)
_NAMES = {}  # lowercase name -> Initializer subclass built with its defaults


def _shape(shape, owner):
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{owner}: shape must be a tuple of ints, got {shape!r}") from None
    if not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise ValueError(f"{owner}: shape must be a tuple of non-negative ints, got {shape!r}")
    return tuple(int(d) for d in dims)


def compute_fans(shape):
    """``(fan_in, fan_out)`` of a weight of ``shape`` in the ``(in, out)`` layout (see the module docstring).

    Args:
        shape: tuple of ints >= 0 (or one int). ``()`` gives ``(1, 1)``, ``(n,)`` gives
            ``(n, n)``, ``(..., in, out)`` gives ``(in * r, out * r)`` with ``r`` the
            product of the leading dimensions.

    Returns:
        ``(fan_in, fan_out)``, two ints.

    Raises:
        TypeError: ``shape`` is not a tuple of ints.
        ValueError: a dimension is negative or not an int.
    """
    shape = _shape(shape, "compute_fans")
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: subclasses implement ``sample(shape, rng) -> float64 array`` and
    ``get_config()`` (their constructor arguments); registered by class name so a
    saved config can be rebuilt."""

    name = None  # the lowercase name ``get`` knows it by (None: class name only)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls
        if cls.name is not None:
            _NAMES[cls.name] = cls

    def __call__(self, shape, dtype=None, rng=None):
        """Draw a weight: ``sample(shape, rng)`` converted to ``dtype``.

        Args:
            shape: tuple of ints >= 0 (or one int).
            dtype: ``np.float32`` or ``np.float64``, or None for the default dtype.
            rng: a ``numpy.random.Generator``, or None for minidl's global generator.

        Returns:
            An array of ``shape`` and ``dtype``.

        Raises:
            TypeError: ``shape`` is not a tuple of ints, ``dtype`` not float32/float64, or
                ``rng`` not a Generator or None.
            ValueError: a negative dimension, or what ``sample`` refuses for ``shape``.
        """
        owner = type(self).__name__
        shape = _shape(shape, owner)
        dtype = get_default_dtype() if dtype is None else as_float_dtype(dtype, f"{owner}: dtype")
        if rng is None:
            rng = get_rng()
        elif not isinstance(rng, np.random.Generator):
            raise TypeError(f"{owner}: rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
        return np.asarray(self.sample(shape, rng), dtype=np.float64).astype(dtype)

    def sample(self, shape, rng):
        """The values of a weight of ``shape``; a subclass implements it.

        Args:
            shape: tuple of ints, already checked.
            rng: the ``numpy.random.Generator`` to draw from (draw from nothing else, so
                that ``minidl.set_seed`` makes the weights reproducible).

        Returns:
            A float array of ``shape`` (converted to the weight's dtype by ``__call__``).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement sample(shape, rng)")

    def get_config(self):
        """The constructor arguments as JSON-able values (what ``serialize`` saves)."""
        return {}

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = None  # compared by value, like a dict

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
