"""Weight initializers: small callables ``init(shape, dtype=None, rng=None) -> ndarray``.

Every initializer draws from minidl's global generator (``minidl.set_seed`` seeds
it) unless given another ``numpy.random.Generator``, and returns an array of
``dtype`` (default: the default dtype). Values are computed in float64 and then
converted, as the layers' default initialization does.

Layers take them as ``kernel_initializer=``, ``recurrent_initializer=`` and
``bias_initializer=``, either an object (``Orthogonal(gain=2.0)``, or the
lowercase default instances ``orthogonal``, ``glorot_uniform``, ...) or a name
(``"orthogonal"``); ``None`` keeps the layer's default, PyTorch's ``U(-1/sqrt(n),
1/sqrt(n))`` (``n``: a ``Dense``'s in_features, a cell's hidden size). ``get(x)``
resolves a name, an object or a saved config; ``serialize`` gives the
JSON-friendly config layers store in ``get_config``. docs/init-and-interop.md shows them at work.

Fans, for minidl's ``(in, out)`` layout (``x @ kernel``): a 2-D shape ``(a, b)``
has ``fan_in = a``, ``fan_out = b``; a 1-D shape ``(n,)`` has both equal to ``n``;
a shape ``(..., a, b)`` multiplies both by the product of the leading axes.
"""

import math
import numbers

import numpy as np

from ._checks import finite_number, positive_int
from ._dtype import as_float_dtype, get_default_dtype
from ._random import get_rng
from .parameter import Parameter

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "Uniform", "Normal", "GlorotUniform", "GlorotNormal",
    "HeUniform", "HeNormal", "Orthogonal", "GateBlocks", "SumOfUniforms",
    "zeros", "ones", "constant", "uniform", "normal", "glorot_uniform", "glorot_normal",
    "he_uniform", "he_normal", "orthogonal", "sum_of_uniforms",
    "get", "serialize", "names", "compute_fans", "make_weight",
]

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


class Zeros(Initializer):
    """All zeros."""

    name = "zeros"

    def sample(self, shape, rng):
        return np.zeros(shape)


class Ones(Initializer):
    """All ones."""

    name = "ones"

    def sample(self, shape, rng):
        return np.ones(shape)


class Constant(Initializer):
    """Every element equal to ``value``.

    Args:
        value: finite float, the constant; default 0.0.

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: ``value`` is not finite.
    """

    name = "constant"

    def __init__(self, value=0.0):
        self.value = finite_number(value, "value", "Constant")

    def sample(self, shape, rng):
        return np.full(shape, self.value)

    def get_config(self):
        return {"value": self.value}


class Uniform(Initializer):
    """``U(low, high)``; the defaults ``(-0.05, 0.05)`` are Keras' ``RandomUniform``.

    Args:
        low: finite float, the lower end; default -0.05.
        high: finite float >= ``low``, the upper end; default 0.05.

    Raises:
        TypeError: a bound is not a real number.
        ValueError: a bound is not finite, or ``high < low``.
    """

    name = "uniform"

    def __init__(self, low=-0.05, high=0.05):
        self.low = finite_number(low, "low", "Uniform")
        self.high = finite_number(high, "high", "Uniform")
        if self.high < self.low:
            raise ValueError(f"Uniform: high must be >= low, got low={self.low}, high={self.high}")

    def sample(self, shape, rng):
        return rng.uniform(self.low, self.high, shape)

    def get_config(self):
        return {"low": self.low, "high": self.high}


class Normal(Initializer):
    """``N(mean, std^2)``; the defaults ``(0, 0.05)`` are Keras' ``RandomNormal``.

    Args:
        mean: finite float; default 0.0.
        std: finite float >= 0, the standard deviation; default 0.05.

    Raises:
        TypeError: an argument is not a real number.
        ValueError: an argument is not finite, or ``std < 0``.
    """

    name = "normal"

    def __init__(self, mean=0.0, std=0.05):
        self.mean = finite_number(mean, "mean", "Normal")
        self.std = finite_number(std, "std", "Normal", minimum=0.0)

    def sample(self, shape, rng):
        return rng.normal(self.mean, self.std, shape)

    def get_config(self):
        return {"mean": self.mean, "std": self.std}


class _Scaled(Initializer):
    """Shared by the fan-scaled initializers: a ``gain`` (multiplies the std)."""

    def __init__(self, gain=1.0):
        self.gain = finite_number(gain, "gain", type(self).__name__, minimum=0.0)

    def get_config(self):
        return {"gain": self.gain}

    def _fans(self, shape):
        fan_in, fan_out = compute_fans(shape)
        if fan_in == 0 or fan_out == 0:
            raise ValueError(f"{type(self).__name__}: cannot compute fans of the empty shape {shape}")
        return fan_in, fan_out


class GlorotUniform(_Scaled):
    """Glorot / Xavier uniform: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``
    (Keras ``GlorotUniform``, PyTorch ``xavier_uniform_``).

    Args:
        gain: finite float >= 0 that multiplies the limit; default 1.0.

    Raises:
        TypeError: ``gain`` is not a real number.
        ValueError: ``gain`` is negative or not finite; when sampling, a shape with a
            zero fan.
    """

    name = "glorot_uniform"

    def sample(self, shape, rng):
        fan_in, fan_out = self._fans(shape)
        limit = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)


class GlorotNormal(_Scaled):
    """Glorot / Xavier normal: ``N(0, std^2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``
    (PyTorch ``xavier_normal_``; Keras draws a truncated normal of the same variance).

    Args:
        gain: finite float >= 0 that multiplies the std; default 1.0.

    Raises:
        TypeError: ``gain`` is not a real number.
        ValueError: ``gain`` is negative or not finite; when sampling, a shape with a
            zero fan.
    """

    name = "glorot_normal"

    def sample(self, shape, rng):
        fan_in, fan_out = self._fans(shape)
        return rng.normal(0.0, self.gain * math.sqrt(2.0 / (fan_in + fan_out)), shape)


class HeUniform(_Scaled):
    """He / Kaiming uniform for ReLU: ``U(-a, a)`` with ``a = gain * sqrt(6 / fan_in)``
    (Keras ``HeUniform``, PyTorch ``kaiming_uniform_(nonlinearity="relu")``).

    Args:
        gain: finite float >= 0 that multiplies the limit; default 1.0.

    Raises:
        TypeError: ``gain`` is not a real number.
        ValueError: ``gain`` is negative or not finite; when sampling, a shape with a
            zero fan.
    """

    name = "he_uniform"

    def sample(self, shape, rng):
        fan_in, _ = self._fans(shape)
        limit = self.gain * math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, shape)


class HeNormal(_Scaled):
    """He / Kaiming normal for ReLU: ``N(0, std^2)`` with ``std = gain * sqrt(2 / fan_in)``
    (PyTorch ``kaiming_normal_``; Keras draws a truncated normal of the same variance).

    Args:
        gain: finite float >= 0 that multiplies the std; default 1.0.

    Raises:
        TypeError: ``gain`` is not a real number.
        ValueError: ``gain`` is negative or not finite; when sampling, a shape with a
            zero fan.
    """

    name = "he_normal"

    def sample(self, shape, rng):
        fan_in, _ = self._fans(shape)
        return rng.normal(0.0, self.gain * math.sqrt(2.0 / fan_in), shape)


class Orthogonal(_Scaled):
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al., 2014).

    The shape ``(..., n)`` is taken as a matrix of ``rows = prod(shape[:-1])`` and
    ``cols = n``. A ``(max, min)`` standard-normal matrix is factored ``A = QR``; the
    columns of ``Q`` are multiplied by ``sign(diag(R))`` so that the result is
    distributed uniformly (Haar) rather than biased by the factorization's sign
    convention. With ``rows >= cols`` the columns are orthonormal (``W.T @ W = I``),
    otherwise the rows (``W @ W.T = I``). As Keras' and PyTorch's ``Orthogonal``.

    Used as a cell's ``recurrent_initializer`` it is applied to each gate's
    ``(H, H)`` block separately (see ``GateBlocks``).

    Args:
        gain: finite float >= 0 that multiplies the matrix; default 1.0.

    Raises:
        TypeError: ``gain`` is not a real number.
        ValueError: ``gain`` is negative or not finite; when sampling, a shape of
            fewer than 2 dimensions.
    """

    name = "orthogonal"

    def sample(self, shape, rng):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: needs a shape of at least 2 dimensions, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        if rows == 0 or cols == 0:
            return np.zeros(shape)
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        signs = np.sign(np.diag(r))
        signs[signs == 0] = 1.0
        q *= signs
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)


class GateBlocks(Initializer):
    """Apply ``initializer`` to each of ``blocks`` equal column blocks of a weight.

    ``GateBlocks(orthogonal, 4)((H, 4H))`` is four independent orthogonal ``(H, H)``
    blocks side by side, drawn in column order (for an LSTM: i, f, g, o). The
    built-in cells wrap their ``recurrent_initializer`` in it, so that every gate's
    own recurrence gets the initializer's properties (and fan-scaled initializers
    see ``fan_out = H``).

    Args:
        initializer: the initializer of each block: a name, an ``Initializer`` or its
            config dict (see ``get``).
        blocks: int >= 1, the number of equal column blocks.

    Raises:
        TypeError: ``initializer`` is of another kind, or ``blocks`` is not an int.
        ValueError: ``initializer`` is an unknown name, or ``blocks < 1``; when sampling,
            a last axis that does not split into ``blocks`` equal blocks.
    """

    def __init__(self, initializer, blocks):
        self.initializer = get(initializer, "GateBlocks", "initializer")
        self.blocks = positive_int(blocks, "blocks", "GateBlocks")

    def sample(self, shape, rng):
        if not shape or shape[-1] % self.blocks:
            raise ValueError(f"GateBlocks: the last axis of {shape} does not split into {self.blocks} equal blocks")
        width = shape[-1] // self.blocks
        parts = [self.initializer.sample(shape[:-1] + (width,), rng) for _ in range(self.blocks)]
        return np.concatenate(parts, axis=-1)

    def get_config(self):
        return {"initializer": serialize(self.initializer), "blocks": self.blocks}


class SumOfUniforms(Initializer):
    """The sum of ``terms`` independent ``U(-bound, bound)``; ``terms=2`` with a cell's ``bound =
    k = 1/sqrt(H)`` is PyTorch's effective RNN/LSTM bias ``b_ih + b_hh`` (minidl has one): variance
    ``2k**2/3`` (one uniform's is ``k**2/3``) on ``[-2k, 2k]``, a triangle. ``bound=None`` is the
    layer's default bound (``1/sqrt(hidden_size)``; ``Dense``: ``1/sqrt(in_features)``), which
    the layer supplies (``bias_initializer="sum_of_uniforms"``). Not for ``GRUCell``: its
    ``(2, 3H)`` bias already holds PyTorch's two biases as rows.

    Args:
        bound: finite float >= 0, the half-width of each uniform, or None (the default)
            for the layer's bound.
        terms: int >= 1, the number of uniforms summed; default 2.

    Raises:
        TypeError: ``bound`` is not a real number or None, or ``terms`` is not an int.
        ValueError: ``bound`` is negative or not finite, or ``terms < 1``; when sampling
            outside a layer, ``bound=None``.
    """

    name = "sum_of_uniforms"

    def __init__(self, bound=None, terms=2):
        self.bound = None if bound is None else finite_number(bound, "bound", "SumOfUniforms", minimum=0.0)
        self.terms = positive_int(terms, "terms", "SumOfUniforms")

    def sample(self, shape, rng):
        if self.bound is None:  # the layer's bound: make_weight supplies it
            raise ValueError("SumOfUniforms: bound=None is the bound of the layer that builds the weight; give bound=")
        return sum(rng.uniform(-self.bound, self.bound, shape) for _ in range(self.terms))

    def get_config(self):
        return {"bound": self.bound, "terms": self.terms}


# Default instances under their names: ``mdl.init.orthogonal((4, 4))`` or
# ``kernel_initializer=mdl.init.glorot_uniform``.
zeros = Zeros()
ones = Ones()
constant = Constant()
uniform = Uniform()
normal = Normal()
glorot_uniform = GlorotUniform()
glorot_normal = GlorotNormal()
he_uniform = HeUniform()
he_normal = HeNormal()
orthogonal = Orthogonal()
sum_of_uniforms = SumOfUniforms()


def names():
    """The names ``get`` accepts, sorted."""
    return sorted(_NAMES)


def get(identifier, owner="minidl.init.get", argument="initializer"):
    """An ``Initializer`` from a name, an ``Initializer`` or a config dict.

    Args:
        identifier: ``"glorot_uniform"`` (any of ``names()``), an ``Initializer``
            (returned as is), ``{"class_name": ..., "config": {...}}`` as ``serialize``
            returns, or None (returned as None: the layer's default).
        owner: str, the caller named in error messages; default ``"minidl.init.get"``.
        argument: str, the argument named in error messages; default ``"initializer"``.

    Returns:
        The ``Initializer``, or None.

    Raises:
        ValueError: an unknown name (the message lists the names) or a malformed config dict.
        TypeError: ``identifier`` is of another kind (a plain function included).
    """
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier)
        if cls is None:
            raise ValueError(f"{owner}: unknown {argument} {identifier!r}; expected one of {', '.join(names())}")
        return cls()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        config = identifier.get("config", {})
        if cls is None or not isinstance(config, dict) or set(identifier) - {"class_name", "config"}:
            raise ValueError(
                f"{owner}: {argument} config must be {{'class_name': <an Initializer class>, 'config': dict}}, "
                f"got {identifier!r}"
            )
        return cls(**config)
    raise TypeError(
        f"{owner}: {argument} must be None, a name ({', '.join(names())}), a minidl.init.Initializer "
        f"or its config dict, got {type(identifier).__name__}"
        + (" (wrap a function in an Initializer subclass so that the model can be saved)" if callable(identifier) else "")
    )


def serialize(initializer):
    """JSON-friendly form of an initializer.

    Args:
        initializer: anything ``get`` accepts (a name, an ``Initializer``, a config dict
            or None).

    Returns:
        Its name when it has one and default arguments, else
        ``{"class_name": ..., "config": ...}``; None stays None.

    Raises:
        TypeError, ValueError: as ``get`` for what it does not accept.
    """
    init = get(initializer, "minidl.init.serialize")
    if init is None:
        return None
    if init.name is not None and _NAMES.get(init.name) is type(init):
        try:
            if init == type(init)():
                return init.name
        except TypeError:  # a user's named class without default arguments
            pass
    return {"class_name": type(init).__name__, "config": init.get_config()}


def make_weight(layer, name, shape, initializer, blocks=1, **add_weight_kwargs):
    """The ``Parameter`` ``name`` of ``layer``, as the layers' constructors build it.

    With ``initializer`` None this is ``layer.add_weight(name, shape, **add_weight_kwargs)``
    (the PyTorch default, drawn exactly as before initializers existed); otherwise
    ``initializer`` draws it, per column block when ``blocks > 1`` (``GateBlocks``),
    from the global generator in the default dtype (a bound-less ``SumOfUniforms`` with the layer's bound).

    Args:
        layer: the ``Layer`` that owns the weight (its ``add_weight`` and, for a
            bound-less ``SumOfUniforms``, its ``hidden_size``).
        name: str, the parameter's name.
        shape: tuple of ints, the weight's shape.
        initializer: an ``Initializer`` or None (the layer's default).
        blocks: int >= 1, the number of column blocks drawn separately; default 1.

    Returns:
        The new ``Parameter``.
    """
    if initializer is None:
        return layer.add_weight(name, shape, **add_weight_kwargs)
    if isinstance(initializer, SumOfUniforms) and initializer.bound is None:
        bound = add_weight_kwargs.get("bound")  # a Dense's; a cell's is 1/sqrt(hidden_size)
        initializer = SumOfUniforms(1.0 / math.sqrt(layer.hidden_size) if bound is None else bound, initializer.terms)
    if blocks > 1:
        initializer = GateBlocks(initializer, blocks)
    return Parameter(initializer(shape, get_default_dtype(), get_rng()), name)
