"""LayerNorm: normalize each sample's features to zero mean and unit variance."""

import numpy as np

from .._checks import as_float_array, check_last_dim, finite_number, grad_shape, positive_int
from .._dtype import get_default_dtype
from .._grad_mode import is_grad_enabled
from ..parameter import Parameter
from .layer import Layer


class LayerNorm(Layer):
    """Layer normalization over the last axis (Ba et al. 2016), as ``torch.nn.LayerNorm(F)``.

    Args:
        normalized_shape: ``F``, the size of the last axis (an int, or a one-element
            tuple/list as PyTorch accepts).
        eps: added to the variance for numerical stability (PyTorch's default 1e-5), a
            finite number > 0. The sum ``var + eps`` is floored at the dtype's smallest
            normal number (float32 ``1.2e-38``, float64 ``2.2e-308``), so an ``eps`` that
            underflows the dtype (``1e-50`` in float32) still gives a finite ``r`` and a
            constant row gives ``y = beta`` instead of NaN; any larger ``eps`` is unchanged.

    Raises:
        TypeError: ``normalized_shape`` is not an int (or a one-element tuple of one), or
            ``eps`` not a real number.
        ValueError: ``normalized_shape`` < 1 or a tuple of another length, or ``eps``
            not finite or not > 0.

    Shapes: ``x: (..., F) -> y: (..., F)``, any leading axes (``(batch, F)`` or
    ``(batch, time, F)``); every row of ``F`` features is normalized on its own.

    Parameters: ``gamma (F,)`` (scale, ones) and ``beta (F,)`` (shift, zeros), the
    Keras names of PyTorch's ``weight`` and ``bias``.

    Forward, per row ``x`` of ``F`` features (biased variance, as PyTorch and Keras)::

        mu = mean(x)       var = mean((x - mu)**2)       r = 1 / sqrt(max(var + eps, tiny))
        xhat = (x - mu) * r
        y = gamma * xhat + beta

    Backward, with ``g = dL/dy`` and ``dxhat = g * gamma``, means over the row::

        dL/dgamma += sum over rows of g * xhat        dL/dbeta += sum over rows of g
        dL/dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    """

    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        self.normalized_shape = positive_int(_last_axis(normalized_shape), "normalized_shape", "LayerNorm")
        self.eps = finite_number(eps, "eps", "LayerNorm", minimum=0.0, min_open=True)
        F, dtype = self.normalized_shape, get_default_dtype()
        self.gamma = Parameter(np.ones(F, dtype), "gamma")
        self.beta = Parameter(np.zeros(F, dtype), "beta")
        self._saved = None

    def get_config(self):
        return {"normalized_shape": self.normalized_shape, "eps": self.eps}

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        x = as_float_array(x, "input", self, self.gamma.data.dtype)
        check_last_dim(x, self.normalized_shape, "input", self)
        xc = x - x.mean(axis=-1, keepdims=True)
        var = np.mean(xc * xc, axis=-1, keepdims=True)
        # eps may underflow the dtype (1e-50 in float32 is 0): the floor keeps r finite, so
        # that a constant row (xc == 0 exactly) gives xhat = 0, not 0 * inf = NaN
        r = 1.0 / np.sqrt(np.maximum(var + self.eps, np.finfo(var.dtype).tiny))
        xhat = xc * r
        self._saved = (xhat, r) if is_grad_enabled() else None
        return xhat * self.gamma.data + self.beta.data

    def backward(self, grad_out):
        if self._saved is None:
            raise self._missing_forward()
        xhat, r = self._saved
        g = grad_shape(grad_out, xhat.shape, self, self.gamma.data.dtype)
        F = self.normalized_shape
        g2, xhat2 = g.reshape(-1, F), xhat.reshape(-1, F)
        self.gamma.grad += np.einsum("nf,nf->f", g2, xhat2)
        self.beta.grad += g2.sum(axis=0)
        dxhat = g * self.gamma.data
        return r * (
            dxhat
            - dxhat.mean(axis=-1, keepdims=True)
            - xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True)
        )


def _last_axis(normalized_shape):
    """``F`` from ``F`` or ``(F,)`` (PyTorch accepts both); a longer tuple is a ``ValueError``."""
    if not isinstance(normalized_shape, (tuple, list)):
        return normalized_shape
    if len(normalized_shape) != 1:
        raise ValueError(
            "LayerNorm: normalized_shape must be an int or a one-element tuple (normalization is over "
            f"the last axis only), got {tuple(normalized_shape)!r}"
        )
    return normalized_shape[0]
