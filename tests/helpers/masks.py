"""Masks for variable-length sequences: building them, padding with chosen values, and a
fixed-mask wrapper so that ``gradcheck`` (which calls ``forward(x)``) checks a masked layer."""

import numpy as np

import minidl as mdl


def right_padded_mask(lengths, T):
    """``(batch, T)`` bool, True at the first ``lengths[b]`` steps of row ``b``."""
    return np.asarray(lengths)[:, None] > np.arange(T)


def scattered_mask(rng, B, T):
    """A mask with padding anywhere, including a row with no real step and a step that is
    padded in every row (both edge cases of the carry)."""
    mask = rng.random((B, T)) < 0.6
    mask[0] = True  # one full row
    mask[-1] = False  # one row without any real step
    mask[:, T // 2] = False  # one step padded everywhere
    return mask


def pad_with(x, mask, value):
    """A copy of ``x: (batch, time, ...)`` with ``value`` at every padded step."""
    out = np.array(x, dtype=float)
    out[~mask] = value
    return out


class Masked(mdl.Layer):
    """``layer`` run with a fixed ``mask`` (and optionally fixed initial states): ``gradcheck``
    checks ``forward(x)``. ``backward`` also gets a fixed gradient for the final state."""

    def __init__(self, layer, mask, initial_state=None, grad_final_state=None):
        super().__init__()
        self.layer, self.mask = layer, mask
        self.initial_state, self.grad_final_state = initial_state, grad_final_state

    def forward(self, x):
        return self.layer.forward(x, mask=self.mask, initial_state=self.initial_state)

    def backward(self, grad_out):
        if self.grad_final_state is None:
            return self.layer.backward(grad_out)
        return self.layer.backward(grad_out, grad_final_state=self.grad_final_state)
