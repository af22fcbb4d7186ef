"""The built-in initializers: constants, uniform and normal draws, Glorot, He, orthogonal,
and PyTorch's two-bias sum of uniforms; with their lowercase default instances."""

import math

import numpy as np

from .._checks import finite_number, positive_int
from .initializer import Initializer, compute_fans

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
