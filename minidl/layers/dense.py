"""Dense: a fully connected layer on the last axis."""

import numpy as np

from .. import init as _init
from .._checks import as_float_array, check_last_dim, flag, grad_shape, positive_int
from .._grad_mode import is_grad_enabled
from .layer import Layer


class Dense(Layer):
    """Fully connected layer: ``y = x @ kernel + bias`` on the last axis.

    Args:
        in_features: int >= 1, size of the last input axis.
        out_features: int >= 1, size of the last output axis.
        bias: bool, whether to add a bias; default True.
        kernel_initializer: a name, a ``minidl.init`` initializer, or None for the
            default ``U(-1/sqrt(in), 1/sqrt(in))``.
        bias_initializer: as ``kernel_initializer``, for the bias.

    Raises:
        TypeError: a size is not an int, ``bias`` is not a bool, or an initializer is
            of the wrong kind.
        ValueError: a size is < 1, or an initializer name is unknown.

    Shapes: ``x: (..., in_features) -> y: (..., out_features)``, any leading axes.

    Parameters: ``kernel (in_features, out_features)``, ``bias (out_features,)``,
    both drawn from ``U(-1/sqrt(in), 1/sqrt(in))`` as in PyTorch.

    Backward, with ``g = dL/dy`` flattened to ``(N, out)`` and ``x`` to ``(N, in)``::

        dL/dkernel += x.T @ g        dL/dbias += g.sum(0)        dL/dx = g @ kernel.T
    """

    def __init__(self, in_features, out_features, bias=True, kernel_initializer=None, bias_initializer=None):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features", "Dense")
        self.out_features = positive_int(out_features, "out_features", "Dense")
        use_bias = flag(bias, "bias", "Dense")
        self.kernel_initializer = _init.get(kernel_initializer, "Dense", "kernel_initializer")
        self.bias_initializer = _init.get(bias_initializer, "Dense", "bias_initializer")
        bound = 1.0 / np.sqrt(self.in_features)  # the default U(-bound, bound) of PyTorch
        shape = (self.in_features, self.out_features)
        self.kernel = _init.make_weight(self, "kernel", shape, self.kernel_initializer, bound=bound)
        self.bias = None
        if use_bias:
            self.bias = _init.make_weight(self, "bias", (self.out_features,), self.bias_initializer, bound=bound)
        self._x = None

    def get_config(self):
        config = {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None}
        for key in ("kernel_initializer", "bias_initializer"):
            if getattr(self, key) is not None:
                config[key] = _init.serialize(getattr(self, key))
        return config

    def expected_input_shape(self):
        return (None, self.in_features)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_features,)

    def forward(self, x):
        x = as_float_array(x, "input", self, self.kernel.data.dtype)
        check_last_dim(x, self.in_features, "input", self)
        y = x @ self.kernel.data
        if self.bias is not None:
            y += self.bias.data
        self._x = x if is_grad_enabled() else None
        return y

    def backward(self, grad_out):
        if self._x is None:
            raise self._missing_forward()
        x = self._x
        g = grad_shape(grad_out, x.shape[:-1] + (self.out_features,), self, self.kernel.data.dtype)
        g2 = g.reshape(-1, self.out_features)
        self.kernel.grad += x.reshape(-1, self.in_features).T @ g2
        if self.bias is not None:
            self.bias.grad += g2.sum(axis=0)
        return g @ self.kernel.data.T
