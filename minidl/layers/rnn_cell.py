"""RNNCell: the Elman cell, ``h_new = act(x @ kernel + h @ recurrent_kernel + bias)``."""

from .._checks import one_of
from .._math import ACTIVATIONS
from ..init import make_weight
from . import fused
from .cell import Cell


class RNNCell(Cell):
    """Elman cell: ``h_new = act(x @ kernel + h @ recurrent_kernel + bias)``.

    Args:
        input_size: int >= 1, the input's feature size ``F``.
        hidden_size: int >= 1, the state's size ``H``.
        activation: ``"tanh"`` (default), ``"sigmoid"`` or ``"relu"``.
        kernel_initializer: initializer of ``kernel`` (see ``Cell``).
        recurrent_initializer: initializer of ``recurrent_kernel`` (see ``Cell``).
        bias_initializer: initializer of ``bias`` (see ``Cell``).

    Raises:
        TypeError: a size is not an int, or an initializer is not a name, a
            ``minidl.init`` initializer or None.
        ValueError: a size is < 1, ``activation`` is not one of the three, or an initializer name is unknown.

    Parameters: ``kernel (F, H)``, ``recurrent_kernel (H, H)``, ``bias (H,)``, each
    from ``U(-1/sqrt(H), 1/sqrt(H))``. State: ``(h,)`` with ``h: (batch, H)``.

    Forward, with ``x: (B, F)``, ``h: (B, H)``::

        a     = x @ kernel + h @ recurrent_kernel + bias
        h_new = act(a)

    Backward, given ``dh_new = dL/dh_new``, with ``act'`` written from the output
    (tanh: ``1 - h_new**2``; sigmoid: ``h_new * (1 - h_new)``; relu: ``h_new > 0``)::

        da = dh_new * act'(a)
        dkernel += x.T @ da;   drecurrent_kernel += h.T @ da;   dbias += sum over batch of da
        dx = da @ kernel.T
        dh = da @ recurrent_kernel.T

    ``step`` and ``step_backward`` are these lines; ``forward_sequence`` /
    ``backward_sequence`` compute the same for a whole sequence faster
    (``minidl.layers.fused``).
    """

    def __init__(self, input_size, hidden_size, activation="tanh", kernel_initializer=None,
                 recurrent_initializer=None, bias_initializer=None):
        super().__init__(input_size, hidden_size, kernel_initializer, recurrent_initializer, bias_initializer)
        self.activation = one_of(activation, tuple(ACTIVATIONS), "activation", "RNNCell")
        F, H = self.input_size, self.hidden_size
        self.kernel = make_weight(self, "kernel", (F, H), self.kernel_initializer)
        self.recurrent_kernel = make_weight(self, "recurrent_kernel", (H, H), self.recurrent_initializer)
        self.bias = make_weight(self, "bias", (H,), self.bias_initializer)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}

    def step(self, x, state):
        (h,) = state
        act, _ = ACTIVATIONS[self.activation]
        a = x @ self.kernel.data + h @ self.recurrent_kernel.data + self.bias.data
        h_new = act(a)
        return (h_new,), (x, h, h_new)

    def step_backward(self, dstate, cache):
        x, h, h_new = cache
        (dh_new,) = dstate
        _, act_derivative = ACTIVATIONS[self.activation]
        da = dh_new * act_derivative(h_new)
        self.kernel.grad += x.T @ da
        self.recurrent_kernel.grad += h.T @ da
        self.bias.grad += da.sum(axis=0)
        dx = da @ self.kernel.data.T
        dh = da @ self.recurrent_kernel.data.T
        return dx, (dh,)

    # The whole sequence at once: the steps above, fused (tested equal in test_fused.py).
    forward_sequence = fused.rnn_forward_sequence
    backward_sequence = fused.rnn_backward_sequence
    state_at = fused.state_at
