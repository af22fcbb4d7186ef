"""GRUCell: the gated recurrent unit, gate blocks in the order z, r, n, two bias rows."""

import numpy as np

from .._math import sigmoid
from ..init import make_weight
from . import fused
from .cell import Cell


class GRUCell(Cell):
    """Gated recurrent unit, gate blocks in the order ``z, r, n`` (PyTorch / Keras
    ``reset_after=True`` formulation, two biases).

    Args:
        input_size: int >= 1, the input's feature size ``F``.
        hidden_size: int >= 1, the state's size ``H``.
        kernel_initializer: initializer of ``kernel`` (see ``Cell``).
        recurrent_initializer: initializer of ``recurrent_kernel`` (see ``Cell``).
        bias_initializer: initializer of ``bias`` (see ``Cell``).

    Raises:
        TypeError: a size is not an int, or an initializer is not a name, a
            ``minidl.init`` initializer or None.
        ValueError: a size is < 1, or an initializer name is unknown.

    Parameters: ``kernel (F, 3H)``, ``recurrent_kernel (H, 3H)``, ``bias (2, 3H)``
    (row 0 input bias, row 1 recurrent bias); their columns are three blocks of ``H``:
    update gate, reset gate, candidate. State: ``(h,)`` with ``h: (batch, H)``.

    Forward, with ``x: (B, F)``, ``h: (B, H)``::

        [xz | xr | xn] = x @ kernel + bias[0]                 input projection
        [hz | hr | hn] = h @ recurrent_kernel + bias[1]       recurrent projection
        z = sigmoid(xz + hz)
        r = sigmoid(xr + hr)
        n = tanh(xn + r * hn)
        h_new = (1 - z) * n + z * h

    Backward, given ``dh_new``, with ``da_z, da_r, da_n`` the gradients with respect
    to the arguments of the two sigmoids and the tanh::

        da_z = dh_new * (h - n) * z * (1 - z)
        da_n = dh_new * (1 - z) * (1 - n**2)
        da_r = da_n * hn * r * (1 - r)
        d_x_proj = [da_z | da_r | da_n]                       gradient of the input projection
        d_h_proj = [da_z | da_r | da_n * r]                   gradient of the recurrent projection
        dkernel += x.T @ d_x_proj;   drecurrent_kernel += h.T @ d_h_proj
        dbias[0] += sum over batch of d_x_proj;   dbias[1] += sum over batch of d_h_proj
        dx      = d_x_proj @ kernel.T
        dh_prev = dh_new * z + d_h_proj @ recurrent_kernel.T

    ``step`` and ``step_backward`` are these lines; ``forward_sequence`` /
    ``backward_sequence`` compute the same for a whole sequence faster
    (``minidl.layers.fused``).
    """

    def __init__(self, input_size, hidden_size, kernel_initializer=None, recurrent_initializer=None,
                 bias_initializer=None):
        super().__init__(input_size, hidden_size, kernel_initializer, recurrent_initializer, bias_initializer)
        F, H = self.input_size, self.hidden_size
        self.kernel = make_weight(self, "kernel", (F, 3 * H), self.kernel_initializer)
        self.recurrent_kernel = make_weight(self, "recurrent_kernel", (H, 3 * H), self.recurrent_initializer, blocks=3)
        self.bias = make_weight(self, "bias", (2, 3 * H), self.bias_initializer)

    def step(self, x, state):
        (h,) = state
        H = self.hidden_size
        x_proj = x @ self.kernel.data + self.bias.data[0]
        h_proj = h @ self.recurrent_kernel.data + self.bias.data[1]
        xz, xr, xn = x_proj[:, :H], x_proj[:, H:2 * H], x_proj[:, 2 * H:]
        hz, hr, hn = h_proj[:, :H], h_proj[:, H:2 * H], h_proj[:, 2 * H:]
        z = sigmoid(xz + hz)
        r = sigmoid(xr + hr)
        n = np.tanh(xn + r * hn)
        h_new = (1 - z) * n + z * h
        return (h_new,), (x, h, z, r, n, hn)

    def step_backward(self, dstate, cache):
        x, h, z, r, n, hn = cache
        (dh_new,) = dstate
        da_z = dh_new * (h - n) * z * (1 - z)
        da_n = dh_new * (1 - z) * (1 - n**2)
        da_r = da_n * hn * r * (1 - r)
        d_x_proj = np.concatenate([da_z, da_r, da_n], axis=1)
        d_h_proj = np.concatenate([da_z, da_r, da_n * r], axis=1)
        self.kernel.grad += x.T @ d_x_proj
        self.recurrent_kernel.grad += h.T @ d_h_proj
        self.bias.grad[0] += d_x_proj.sum(axis=0)
        self.bias.grad[1] += d_h_proj.sum(axis=0)
        dx = d_x_proj @ self.kernel.data.T
        dh_prev = dh_new * z + d_h_proj @ self.recurrent_kernel.data.T
        return dx, (dh_prev,)

    # The whole sequence at once: the steps above, fused (tested equal in test_fused.py).
    forward_sequence = fused.gru_forward_sequence
    backward_sequence = fused.gru_backward_sequence
    state_at = fused.state_at
