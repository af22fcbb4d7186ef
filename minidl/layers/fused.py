"""Fused sequence kernels: an optimisation of the built-in cells' steps, nothing more.

``RNNCell``, ``LSTMCell`` and ``GRUCell`` are defined by their ``step`` and
``step_backward`` (``rnn_cell.py``, ``lstm.py``, ``gru.py``), written as the
formulas in their docstrings. Run one step at a time (the loop in ``Cell``), most of
the time goes into numpy's per-call overhead and small matrix products. The
functions here compute the same numbers for a whole sequence
``xs: (time, batch, features)`` (time-major) at once, with four tricks:

1. **One matmul for the input projections** of all steps before the loop
   (``project``; one per chunk of ``cell.time_chunk`` steps, the chunks ``RNN`` runs in
   when it keeps no history, so both paths give the same numbers), and **one matmul for each weight gradient** after it
   (``accumulate_weights``): the loop over time keeps only the recurrent product.
2. **One tanh for all gates.** ``sigmoid(a) = (1 + tanh(a / 2)) / 2``: with the
   columns of the sigmoid gates scaled by 1/2 once (in the weights, before the
   loop), a single ``tanh`` over the whole gate block followed by ``* scale + shift``
   gives the three sigmoids and the tanh of an LSTM step (the two sigmoids of a GRU).
   Halving is exact in binary floating point: the folded weights give exactly the
   halved products.
3. **Preallocated, in-place arithmetic.** Per-step values go into time-major
   ``(T, B, ...)`` arrays written with ``out=``; backward's large temporaries are
   scratch arrays kept on the cell between calls (``Workspace``).
4. **Local derivatives before the loop.** Everything backward needs that does not
   depend on the incoming gradient (``o * (1 - tanh(c)^2)``, ``g * i * (1 - i)``,
   ...) is computed for all steps in a few large calls, so that the backward loop
   only multiplies them by ``dh`` and ``dc`` and does the recurrent matmul.

Every loop runs over time only, with the whole batch in each call. A mask
``(time, batch)`` (``RNN`` passes it only when it has one) enters as one
``(batch, 1)`` select per step that has padding: in forward the new state is
replaced by the old one at padded samples (``np.copyto(..., where=pad)``); in
backward the local derivatives of padded samples are zeroed before the loop (so
their weight, bias and input gradients are zero) and the state gradient of a padded
sample is selected past the step unchanged. Without a mask not one operation differs.

The built-in cells use these functions as their ``forward_sequence``,
``backward_sequence`` and ``state_at`` (the sequence interface of ``Cell``): each
takes the cell as its first argument. ``tests/layers/test_fused.py`` checks, in
float64, for every cell and activation, that they give the same outputs, final
state, per-step states and gradients (parameters, input, initial state) as the loop
over ``step`` / ``step_backward``, to 1e-12.

A cache is a dict of the per-step arrays; ``"states"`` holds one ``(T + 1, B, H)``
array per state entry (index ``t``: the state after ``t`` steps).
"""

import numpy as np

from .._math import ACTIVATIONS
from .cell import time_chunk


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


# ---- RNNCell: h_new = act(x @ kernel + h @ recurrent_kernel + bias) --------------------------
def rnn_forward_sequence(cell, xs, state, keep_history=True, mask=None):
    """``RNNCell.step`` over all of ``xs: (T, B, F)``; returns ``(hs, final_state, cache)``."""
    T, B, _ = xs.shape
    act, _ = ACTIVATIONS[cell.activation]
    a = project(cell, xs, cell.kernel.data, cell.bias.data)  # pre-activations, the recurrent part added per step
    U = cell.recurrent_kernel.data
    hs = np.empty((T + 1, B, cell.hidden_size), a.dtype)  # hs[t]: the state after t steps
    hs[0] = state[0]
    pads = _padded_steps(mask)
    for t in range(T):
        at = a[t]
        at += hs[t] @ U
        act(at, out=hs[t + 1])
        if pads is not None and pads[t] is not None:
            np.copyto(hs[t + 1], hs[t], where=pads[t])  # padded samples keep their state
    cache = {"xs": xs, "hs": hs, "states": (hs,)} if keep_history else None
    return hs[1:], (hs[T],), cache


def rnn_backward_sequence(cell, dhs, dstate, cache, mask=None):
    """``RNNCell.step_backward`` over the steps of ``cache``, last to first; returns ``(dxs, (dh0,))``."""
    xs, hs = cache["xs"], cache["hs"]
    T = xs.shape[0]
    _, act_derivative = ACTIVATIONS[cell.activation]
    U_T = _transposed(cell.recurrent_kernel.data)
    da = act_derivative(hs[1:], out=_scratch(cell, "da", hs[1:].shape, hs.dtype))  # act'(a), becomes dL/da
    pads = _padded_steps(mask)
    if pads is not None:
        _zero_padded(mask, da)
    dh = dstate[0]
    for t in range(T - 1, -1, -1):
        if dhs is not None:
            dh = dh + dhs[t]
        dat = da[t]
        dat *= dh
        dh_prev = dat @ U_T
        if pads is not None and pads[t] is not None:
            np.copyto(dh_prev, dh, where=pads[t])  # through a padded step unchanged
        dh = dh_prev
    cell.bias.grad += da.sum(axis=(0, 1))
    dxs = accumulate_weights(cell, xs, hs[:-1], da)
    return dxs, (dh,)


# ---- LSTMCell ---------------------------------------------------------------------------------
def _lstm_gate_affine(H, dtype):
    """``(scale, shift)`` per gate column such that ``tanh(scale * z) * scale + shift`` is the gate.

    On the sigmoid blocks i, f, o: ``scale = shift = 1/2`` (``sigmoid(z) = tanh(z/2)/2 + 1/2``);
    on the candidate g: ``scale = 1, shift = 0`` (``tanh(z)``).
    """
    scale = np.full(4 * H, 0.5, dtype)
    scale[2 * H:3 * H] = 1.0
    shift = np.full(4 * H, 0.5, dtype)
    shift[2 * H:3 * H] = 0.0
    return scale, shift


def lstm_forward_sequence(cell, xs, state, keep_history=True, mask=None):
    """``LSTMCell.step`` over all of ``xs: (T, B, F)``; returns ``(hs, (h_T, c_T), cache)``."""
    T, B, _ = xs.shape
    H = cell.hidden_size
    dtype = cell.kernel.data.dtype
    scale, shift = _lstm_gate_affine(H, dtype)
    # Scaling the weights once lets one tanh per step give all four activations.
    gates = project(cell, xs, cell.kernel.data * scale, cell.bias.data * scale)  # becomes [i, f, g, o] per step
    U = cell.recurrent_kernel.data * scale
    hs = np.empty((T + 1, B, H), dtype)  # hs[t], cs[t]: the state after t steps
    cs = np.empty((T + 1, B, H), dtype)
    tanh_cs = np.empty((T if keep_history else 1, B, H), dtype)  # tanh(c_new) of each step
    rec = np.empty((B, 4 * H), dtype)
    ig = np.empty((B, H), dtype)
    hs[0], cs[0] = state
    pads = _padded_steps(mask)
    for t in range(T):
        zt = gates[t]
        np.matmul(hs[t], U, out=rec)
        zt += rec
        np.tanh(zt, out=zt)
        zt *= scale
        zt += shift
        i, f, g, o = zt[:, :H], zt[:, H:2 * H], zt[:, 2 * H:3 * H], zt[:, 3 * H:]
        c = cs[t + 1]
        np.multiply(f, cs[t], out=c)
        np.multiply(i, g, out=ig)
        c += ig
        tanh_c = tanh_cs[t if keep_history else 0]
        np.tanh(c, out=tanh_c)
        np.multiply(o, tanh_c, out=hs[t + 1])
        if pads is not None and pads[t] is not None:  # padded samples keep their state
            np.copyto(hs[t + 1], hs[t], where=pads[t])
            np.copyto(c, cs[t], where=pads[t])
    cache = ({"xs": xs, "hs": hs, "cs": cs, "gates": gates, "tanh_cs": tanh_cs, "states": (hs, cs)}
             if keep_history else None)
    return hs[1:], (hs[T], cs[T]), cache


def lstm_backward_sequence(cell, dhs, dstate, cache, mask=None):
    """``LSTMCell.step_backward`` over the steps of ``cache``; returns ``(dxs, (dh0, dc0))``."""
    xs, hs, cs, gates, tanh_cs = cache["xs"], cache["hs"], cache["cs"], cache["gates"], cache["tanh_cs"]
    T, B, _ = xs.shape
    H = cell.hidden_size
    i, f, g, o = gates[..., :H], gates[..., H:2 * H], gates[..., 2 * H:3 * H], gates[..., 3 * H:]
    # The local derivatives of all steps at once (large arrays, few calls), so that the
    # loop below only multiplies by the incoming dh and dc:
    #   dz_i, dz_f, dz_g = dc * gate_factor[i, f, g],   dz_o = dh * gate_factor[o],
    #   dc = dc_new + dh * dc_from_dh.
    gate_factor = _scratch(cell, "gate_factor", gates.shape, gates.dtype)
    dc_from_dh = _scratch(cell, "dc_from_dh", tanh_cs.shape, tanh_cs.dtype)
    np.subtract(1, gates, out=gate_factor)
    gate_factor *= gates  # s(1-s) on every block (contiguous, so one call); g's is replaced below
    gate_factor[..., :H] *= g  # g * i(1-i)
    gate_factor[..., H:2 * H] *= cs[:-1]  # c * f(1-f)
    gate_factor[..., 3 * H:] *= tanh_cs  # tanh(c_new) * o(1-o)
    factor_g = gate_factor[..., 2 * H:3 * H]
    np.multiply(g, g, out=factor_g)
    np.subtract(1, factor_g, out=factor_g)
    factor_g *= i  # i * (1-g^2)
    np.multiply(tanh_cs, tanh_cs, out=dc_from_dh)
    np.subtract(1, dc_from_dh, out=dc_from_dh)
    dc_from_dh *= o  # o * (1 - tanh(c_new)^2)
    pads = _padded_steps(mask)
    if pads is not None:  # padded samples: no local gradient at all
        _zero_padded(mask, gate_factor, dc_from_dh)
    U_T = _transposed(cell.recurrent_kernel.data)
    dz = _scratch(cell, "dz", gates.shape, gates.dtype)  # dL/dz of every step, blocks i, f, g, o
    # The same arrays with the gate blocks as an axis (T, B, 4, H): i, f, g in one call.
    factor_blocks, dz_blocks = gate_factor.reshape(T, B, 4, H), dz.reshape(T, B, 4, H)
    dh, dc = (s.copy() for s in dstate)
    tmp = np.empty_like(dc)
    for t in range(T - 1, -1, -1):
        if dhs is not None:
            dh += dhs[t]
        np.multiply(dh, dc_from_dh[t], out=tmp)
        dc += tmp
        np.multiply(dc[:, None], factor_blocks[t, :, :3], out=dz_blocks[t, :, :3])  # dz_i, dz_f, dz_g
        np.multiply(dh, factor_blocks[t, :, 3], out=dz_blocks[t, :, 3])  # dz_o
        if pads is None or pads[t] is None:
            dc *= f[t]  # dc_prev
            np.matmul(dz[t], U_T, out=dh)  # dh_prev
        else:  # padded samples pass dh and dc through unchanged
            real = ~pads[t]
            np.multiply(dc, f[t], out=dc, where=real)
            np.matmul(dz[t], U_T, out=tmp)
            np.copyto(dh, tmp, where=real)
    cell.bias.grad += dz.sum(axis=(0, 1))
    dxs = accumulate_weights(cell, xs, hs[:-1], dz)
    return dxs, (dh, dc)


# ---- GRUCell ----------------------------------------------------------------------------------
def gru_forward_sequence(cell, xs, state, keep_history=True, mask=None):
    """``GRUCell.step`` over all of ``xs: (T, B, F)``; returns ``(hs, (h_T,), cache)``."""
    T, B, _ = xs.shape
    H = cell.hidden_size
    dtype = cell.kernel.data.dtype
    b_in, b_rec = cell.bias.data
    # z and r take sigmoid(a) = (1 + tanh(a/2)) / 2: their columns are pre-scaled by 1/2,
    # and their recurrent bias joins the input projection (only hn needs it apart).
    scale = np.ones(3 * H, dtype)
    scale[:2 * H] = 0.5
    bias = b_in.copy()
    bias[:2 * H] += b_rec[:2 * H]
    gates = project(cell, xs, cell.kernel.data * scale, bias * scale)  # becomes [z, r, n] per step
    U = cell.recurrent_kernel.data * scale
    b_hn = b_rec[2 * H:]
    hs = np.empty((T + 1, B, H), dtype)  # hs[t]: the state after t steps
    hn_all = np.empty((T if keep_history else 1, B, H), dtype)  # hn = h @ U_n + b_hn of each step
    h_proj = np.empty((B, 3 * H), dtype)
    tmp = np.empty((B, H), dtype)
    hs[0] = state[0]
    pads = _padded_steps(mask)
    for t in range(T):
        np.matmul(hs[t], U, out=h_proj)
        gt = gates[t]
        zr = gt[:, :2 * H]
        zr += h_proj[:, :2 * H]
        np.tanh(zr, out=zr)
        zr *= 0.5
        zr += 0.5
        hn = hn_all[t if keep_history else 0]
        np.add(h_proj[:, 2 * H:], b_hn, out=hn)
        z, r, n = gt[:, :H], gt[:, H:2 * H], gt[:, 2 * H:]
        np.multiply(r, hn, out=tmp)
        n += tmp
        np.tanh(n, out=n)
        h = hs[t + 1]
        np.subtract(hs[t], n, out=h)  # h_new = (h - n) * z + n = (1 - z) * n + z * h
        h *= z
        h += n
        if pads is not None and pads[t] is not None:
            np.copyto(h, hs[t], where=pads[t])  # padded samples keep their state
    cache = {"xs": xs, "hs": hs, "gates": gates, "hn": hn_all, "states": (hs,)} if keep_history else None
    return hs[1:], (hs[T],), cache


def gru_backward_sequence(cell, dhs, dstate, cache, mask=None):
    """``GRUCell.step_backward`` over the steps of ``cache``; returns ``(dxs, (dh0,))``."""
    xs, hs, gates, hn_all = cache["xs"], cache["hs"], cache["gates"], cache["hn"]
    T = xs.shape[0]
    H = cell.hidden_size
    z, r, n = gates[..., :H], gates[..., H:2 * H], gates[..., 2 * H:]
    # The local derivatives of all steps at once; the loop only multiplies by dh_new:
    #   da_z = dh_new * factor[z],  da_n = dh_new * factor[n],  da_r = da_n * factor[r]
    factor = _scratch(cell, "factor", gates.shape, gates.dtype)
    tmp = _scratch(cell, "tmp", hn_all.shape, gates.dtype)
    np.subtract(1, z, out=tmp)
    tmp *= z
    np.subtract(hs[:-1], n, out=factor[..., :H])
    factor[..., :H] *= tmp  # (h - n) * z(1-z)
    np.subtract(1, r, out=tmp)
    tmp *= r
    np.multiply(hn_all, tmp, out=factor[..., H:2 * H])  # hn * r(1-r)
    np.multiply(n, n, out=tmp)
    np.subtract(1, tmp, out=tmp)
    np.subtract(1, z, out=factor[..., 2 * H:])
    factor[..., 2 * H:] *= tmp  # (1-z) * (1-n^2)
    pads = _padded_steps(mask)
    if pads is not None:  # padded samples: no local gradient at all
        _zero_padded(mask, factor)
    U_T = _transposed(cell.recurrent_kernel.data)
    d_x_proj = _scratch(cell, "d_x_proj", gates.shape, gates.dtype)  # [da_z, da_r, da_n]
    d_h_proj = _scratch(cell, "d_h_proj", gates.shape, gates.dtype)  # [da_z, da_r, da_n * r]
    (dh,) = dstate
    for t in range(T - 1, -1, -1):
        if dhs is not None:
            dh = dh + dhs[t]
        ft, d_ht, da_n = factor[t], d_h_proj[t], d_x_proj[t, :, 2 * H:]
        np.multiply(dh, ft[:, :H], out=d_ht[:, :H])  # da_z
        np.multiply(dh, ft[:, 2 * H:], out=da_n)
        np.multiply(da_n, ft[:, H:2 * H], out=d_ht[:, H:2 * H])  # da_r
        np.multiply(da_n, r[t], out=d_ht[:, 2 * H:])  # d(hn) = da_n * r
        dh_prev = dh * z[t]
        dh_prev += d_ht @ U_T  # dh_prev = dh_new * z + d_h_proj @ recurrent_kernel.T
        if pads is not None and pads[t] is not None:
            np.copyto(dh_prev, dh, where=pads[t])  # through a padded step unchanged
        dh = dh_prev
    d_x_proj[..., :2 * H] = d_h_proj[..., :2 * H]
    cell.bias.grad[0] += d_x_proj.sum(axis=(0, 1))
    cell.bias.grad[1] += d_h_proj.sum(axis=(0, 1))
    dxs = accumulate_weights(cell, xs, hs[:-1], d_x_proj, d_h_proj)
    return dxs, (dh,)
