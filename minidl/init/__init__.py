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

from .distributions import (
    Constant, GlorotNormal, GlorotUniform, HeNormal, HeUniform, Normal, Ones, Orthogonal,
    SumOfUniforms, Uniform, Zeros, constant, glorot_normal, glorot_uniform, he_normal, he_uniform, normal,
    ones, orthogonal, sum_of_uniforms, uniform, zeros,
)
from .initializer import Initializer, compute_fans
from .registry import GateBlocks, get, make_weight, names, serialize

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "Uniform", "Normal", "GlorotUniform", "GlorotNormal",
    "HeUniform", "HeNormal", "Orthogonal", "GateBlocks", "SumOfUniforms",
    "zeros", "ones", "constant", "uniform", "normal", "glorot_uniform", "glorot_normal",
    "he_uniform", "he_normal", "orthogonal", "sum_of_uniforms",
    "get", "serialize", "names", "compute_fans", "make_weight",
]
