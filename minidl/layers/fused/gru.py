"""``GRUCell``'s fused sequence kernels (see the package docstring for the tricks)."""

import numpy as np

from .common import _padded_steps, _scratch, _transposed, _zero_padded, accumulate_weights, project

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
