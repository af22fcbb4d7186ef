"""LSTMCell: the long short-term memory cell, gate blocks in the order i, f, g, o."""

import numpy as np

from .._checks import flag
from .._math import sigmoid
from ..init import make_weight
from . import fused
from .cell import Cell


class LSTMCell(Cell):
    """Long short-term memory cell, gate blocks in the order ``i, f, g, o``.

    Args:
        input_size: int >= 1, the input's feature size ``F``.
        hidden_size: int >= 1, the state's size ``H``.
        kernel_initializer: initializer of ``kernel`` (see ``Cell``).
        recurrent_initializer: initializer of ``recurrent_kernel`` (see ``Cell``).
        bias_initializer: initializer of ``bias`` (see ``Cell``).
        unit_forget_bias: bool, set the forget gate's bias to 1 after the draw (Keras);
            default False.

    Raises:
        TypeError: a size is not an int, ``unit_forget_bias`` not a bool, or an initializer is not a name, a
            ``minidl.init`` initializer or None.
        ValueError: a size is < 1, or an initializer name is unknown.

    Parameters: ``kernel (F, 4H)``, ``recurrent_kernel (H, 4H)``, ``bias (4H,)``; their
    columns are four blocks of ``H``: input gate, forget gate, candidate, output gate.
    State: ``(h, c)``, each ``(batch, H)``; the output is ``h``.

    Forward, with ``x: (B, F)``, ``h, c: (B, H)``::

        z = x @ kernel + h @ recurrent_kernel + bias          (B, 4H) = [z_i | z_f | z_g | z_o]
        i = sigmoid(z_i);  f = sigmoid(z_f);  g = tanh(z_g);  o = sigmoid(z_o)
        c_new = f * c + i * g
        h_new = o * tanh(c_new)

    Backward, given ``dh_new`` and ``dc_new`` (the gradients with respect to the new
    state), with ``tanh_c = tanh(c_new)``::

        dc   = dc_new + dh_new * o * (1 - tanh_c**2)          all the gradient of c_new
        dz_i = dc * g * i * (1 - i)
        dz_f = dc * c * f * (1 - f)
        dz_g = dc * i * (1 - g**2)
        dz_o = dh_new * tanh_c * o * (1 - o)
        dz   = [dz_i | dz_f | dz_g | dz_o]
        dkernel += x.T @ dz;   drecurrent_kernel += h.T @ dz;   dbias += sum over batch of dz
        dx      = dz @ kernel.T
        dh_prev = dz @ recurrent_kernel.T
        dc_prev = dc * f

    ``step`` and ``step_backward`` are these lines; ``forward_sequence`` /
    ``backward_sequence`` compute the same for a whole sequence faster
    (``minidl.layers.fused``: one tanh for all four gates, among others).
    """

    def __init__(self, input_size, hidden_size, kernel_initializer=None, recurrent_initializer=None,
                 bias_initializer=None, unit_forget_bias=False):
        super().__init__(input_size, hidden_size, kernel_initializer, recurrent_initializer, bias_initializer)
        self.unit_forget_bias = flag(unit_forget_bias, "unit_forget_bias", "LSTMCell")
        F, H = self.input_size, self.hidden_size
        self.kernel = make_weight(self, "kernel", (F, 4 * H), self.kernel_initializer)
        self.recurrent_kernel = make_weight(self, "recurrent_kernel", (H, 4 * H), self.recurrent_initializer, blocks=4)
        self.bias = make_weight(self, "bias", (4 * H,), self.bias_initializer)
        if unit_forget_bias:
            self.bias.data[H:2 * H] = 1.0  # Keras' unit_forget_bias, set after the draw

    def get_config(self):
        config = super().get_config()
        if self.unit_forget_bias:
            config["unit_forget_bias"] = True
        return config

    @property
    def state_size(self):
        return (self.hidden_size, self.hidden_size)

    def step(self, x, state):
        h, c = state
        H = self.hidden_size
        z = x @ self.kernel.data + h @ self.recurrent_kernel.data + self.bias.data
        i = sigmoid(z[:, :H])
        f = sigmoid(z[:, H:2 * H])
        g = np.tanh(z[:, 2 * H:3 * H])
        o = sigmoid(z[:, 3 * H:])
        c_new = f * c + i * g
        tanh_c = np.tanh(c_new)
        h_new = o * tanh_c
        return (h_new, c_new), (x, h, c, i, f, g, o, tanh_c)

    def step_backward(self, dstate, cache):
        x, h, c, i, f, g, o, tanh_c = cache
        dh_new, dc_new = dstate
        dc = dc_new + dh_new * o * (1 - tanh_c**2)
        dz_i = dc * g * i * (1 - i)
        dz_f = dc * c * f * (1 - f)
        dz_g = dc * i * (1 - g**2)
        dz_o = dh_new * tanh_c * o * (1 - o)
        dz = np.concatenate([dz_i, dz_f, dz_g, dz_o], axis=1)
        self.kernel.grad += x.T @ dz
        self.recurrent_kernel.grad += h.T @ dz
        self.bias.grad += dz.sum(axis=0)
        dx = dz @ self.kernel.data.T
        dh_prev = dz @ self.recurrent_kernel.data.T
        dc_prev = dc * f
        return dx, (dh_prev, dc_prev)

    # The whole sequence at once: the steps above, fused (tested equal in test_fused.py).
    forward_sequence = fused.lstm_forward_sequence
    backward_sequence = fused.lstm_backward_sequence
    state_at = fused.state_at
