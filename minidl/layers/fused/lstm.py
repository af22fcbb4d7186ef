"""``LSTMCell``'s fused sequence kernels (see the package docstring for the tricks)."""

import numpy as np

from .common import _padded_steps, _scratch, _transposed, _zero_padded, accumulate_weights, project

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

