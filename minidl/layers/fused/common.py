"""The pieces every fused kernel shares: scratch arrays, the input projection, the weight
gradients of a whole sequence, masks and ``state_at`` (see the package docstring)."""

import numpy as np

from ..cell import time_chunk

class Workspace:
    """Scratch arrays for backward, kept on the cell between calls.

    Fresh multi-megabyte temporaries cost page faults on every call (several
    milliseconds per backward at the benchmark's sizes); these arrays never leave
    the backward function that fills them. A deep copy of the cell (``gradcheck``
    makes one) starts with an empty workspace instead of copying them.
    """

    def __init__(self):
        self._arrays = {}

    def array(self, name, shape, dtype):
        """An uninitialised array ``name`` of ``shape`` and ``dtype``, reused when it fits."""
        arr = self._arrays.get(name)
        if arr is None or arr.shape != shape or arr.dtype != dtype:
            arr = self._arrays[name] = np.empty(shape, dtype)
        return arr

    def __deepcopy__(self, memo):
        return Workspace()


def _scratch(cell, name, shape, dtype):
    """The cell's scratch array ``name`` (its ``Workspace`` is made on first use)."""
    return vars(cell).setdefault("_workspace", Workspace()).array(name, shape, dtype)


def project(cell, xs, kernel, bias):
    """``xs: (T, B, F) -> (T, B, G)``: ``x_t @ kernel + bias`` of every step, one matmul per
    chunk of ``time_chunk(cell, B)`` steps: the chunks ``RNN`` runs in without history, so that
    a forward with history makes the very same products (BLAS rounds by row count)."""
    T, B, F = xs.shape
    out = np.empty((T, B, kernel.shape[1]), np.result_type(xs, kernel))
    steps = time_chunk(cell, B)
    for t0 in range(0, T, steps):
        x2, out2 = xs[t0:t0 + steps].reshape(-1, F), out[t0:t0 + steps].reshape(-1, kernel.shape[1])
        if F == 1:
            np.multiply(x2, kernel, out=out2)  # same products; numpy's matmul is slow at K = 1
        else:
            np.matmul(x2, kernel, out=out2)
        out2 += bias
    return out


def accumulate_weights(cell, xs, hs_prev, d_in, d_rec=None):
    """Add the kernel gradients of a whole sequence in one matmul each; return ``dxs``.

    ``xs: (T, B, F)`` the inputs, ``hs_prev: (T, B, H)`` the state each step started
    from, ``d_in: (T, B, G)`` the gradient of the input projection ``x_t @ kernel``,
    ``d_rec`` that of the recurrent projection ``h_t @ recurrent_kernel`` (the same as
    ``d_in`` unless the cell splits them, as the GRU does). Returns
    ``dxs = d_in @ kernel.T: (T, B, F)``.
    """
    T, B, F = xs.shape
    G = d_in.shape[-1]
    d_in2 = d_in.reshape(T * B, G)
    d_rec2 = d_in2 if d_rec is None else d_rec.reshape(T * B, G)
    cell.kernel.grad += xs.reshape(T * B, F).T @ d_in2
    cell.recurrent_kernel.grad += hs_prev.reshape(T * B, -1).T @ d_rec2
    return (d_in2 @ cell.kernel.data.T).reshape(T, B, F)


def _transposed(weight):
    """``weight.T`` as a C-ordered copy: BLAS is much faster on it than on the view."""
    return np.ascontiguousarray(weight.T)


def _padded_steps(mask):
    """Per step, the ``(batch, 1)`` bool of the padded samples, or None for a step without
    padding; None for no mask at all."""
    if mask is None:
        return None
    pad = ~mask[..., None]
    return [pad[t] if pad[t].any() else None for t in range(mask.shape[0])]


def _zero_padded(mask, *arrays):
    """Zero the ``(time, batch, ...)`` ``arrays`` at the padded steps of ``mask`` (in place)."""
    pad = ~mask[..., None]
    for arr in arrays:
        np.copyto(arr, 0, where=pad)


def state_at(cell, cache, t):
    """The state after ``t`` steps (views into the cache; ``RNN.state_at`` copies them)."""
    return tuple(arr[t] for arr in cache["states"])
