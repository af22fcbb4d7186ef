"""``RNNCell``'s fused sequence kernels: ``h_new = act(x @ kernel + h @ recurrent_kernel + bias)``.

Two layouts of the same products, chosen by the input's width (see the package docstring):

* **joined** (``F < JOIN_BELOW * H``, a narrow input such as the sine task's ``F = 1``): the
  input and a constant 1 ride along with the state, ``[h, x, 1] @ [recurrent_kernel; kernel;
  bias]``, one ``(B, H + F + 1) @ (H + F + 1, H)`` product a step and nothing else; backward
  gets all three weight gradients from one ``[h, x, 1]^T @ da`` product.
* **projected** (wider inputs): ``x @ kernel + bias`` of all steps in one product before the
  loop (``project``), the recurrent product added at each step.

Measured (float32, B = 32, T = 50, forward + backward, this machine's OpenBLAS): joined is
20 % faster at F = 1, H = 100 and 15 % at F = 65, H = 128, even at F = 96-110, H = 128, and
25-30 % slower at F >= H = 128 (the projection's one large product beats wider small ones).
"""

import numpy as np

from ..._math import ACTIVATIONS
from .common import _padded_steps, _scratch, _transposed, _zero_padded, accumulate_weights, project

#: the joined layout runs when the input width is below this fraction of the hidden size
JOIN_BELOW = 0.6


def joins_input(cell):
    """Whether ``cell``'s kernels use the joined layout ``[h, x, 1] @ [U; K; b]``."""
    return cell.input_size < JOIN_BELOW * cell.hidden_size


def rnn_forward_sequence(cell, xs, state, keep_history=True, mask=None):
    """``RNNCell.step`` over all of ``xs: (T, B, F)``; returns ``(hs, final_state, cache)``."""
    T, B, F = xs.shape
    H = cell.hidden_size
    act, _ = ACTIVATIONS[cell.activation]
    if joins_input(cell):
        weights = np.concatenate([cell.recurrent_kernel.data, cell.kernel.data, cell.bias.data[None]])
        hx = np.empty((T + 1, B, H + F + 1), weights.dtype)  # hx[t] = [h_t, x_t, 1]: step t's input
        hx[0, :, :H] = state[0]
        hx[:-1, :, H:H + F] = xs
        hx[..., H + F] = 1
        hx[T, :, H:H + F] = 0  # no step reads it; set so that the cache holds no uninitialised memory
        hs = hx[..., :H]  # hs[t]: the state after t steps (a view)
        a = np.empty((B, H), weights.dtype)
    else:
        a = project(cell, xs, cell.kernel.data, cell.bias.data)  # the recurrent part added per step
        weights = cell.recurrent_kernel.data
        hx = hs = np.empty((T + 1, B, H), a.dtype)
        hs[0] = state[0]
    pads = _padded_steps(mask)
    for t in range(T):
        if hx is hs:
            at = a[t]
            at += hs[t] @ weights
        else:
            at = np.matmul(hx[t], weights, out=a)
        act(at, out=hs[t + 1])
        if pads is not None and pads[t] is not None:
            np.copyto(hs[t + 1], hs[t], where=pads[t])  # padded samples keep their state
    cache = {"xs": xs, "hx": hx, "hs": hs, "states": (hs,)} if keep_history else None
    return hs[1:], (hs[T],), cache


def rnn_backward_sequence(cell, dhs, dstate, cache, mask=None):
    """``RNNCell.step_backward`` over the steps of ``cache``, last to first; returns ``(dxs, (dh0,))``."""
    xs, hx, hs = cache["xs"], cache["hx"], cache["hs"]
    T, B, F = xs.shape
    H = cell.hidden_size
    _, act_derivative = ACTIVATIONS[cell.activation]
    U_T = _transposed(cell.recurrent_kernel.data)
    # act'(a) from the outputs, becomes dL/da; contiguous, although hs is a strided view when
    # joined: every later call reads it (taking it over whole [h, x, 1] rows instead and
    # reading strided views was 13 % slower over the backward).
    da = act_derivative(hs[1:], out=_scratch(cell, "da", (T, B, H), hs.dtype))
    pads = _padded_steps(mask)
    if pads is not None:
        _zero_padded(mask, da)
    dh, dh_prev = dstate[0].copy(), np.empty_like(dstate[0])
    for t in range(T - 1, -1, -1):
        if dhs is not None:
            dh += dhs[t]
        dat = da[t]
        dat *= dh
        np.matmul(dat, U_T, out=dh_prev)
        if pads is not None and pads[t] is not None:
            np.copyto(dh_prev, dh, where=pads[t])  # through a padded step unchanged
        dh, dh_prev = dh_prev, dh
    if hx is hs:
        cell.bias.grad += da.sum(axis=(0, 1))
        return accumulate_weights(cell, xs, hs[:-1], da), (dh,)
    da2 = da.reshape(T * B, H)
    d_weights = hx[:-1].reshape(T * B, H + F + 1).T @ da2  # rows: [recurrent_kernel; kernel; bias]
    cell.recurrent_kernel.grad += d_weights[:H]
    cell.kernel.grad += d_weights[H:H + F]
    cell.bias.grad += d_weights[H + F]
    return (da2 @ cell.kernel.data.T).reshape(T, B, F), (dh,)
