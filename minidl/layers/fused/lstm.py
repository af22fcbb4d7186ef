"""``LSTMCell``'s fused sequence kernels, feature-major (see the package docstring for the tricks).

``LSTMCell.step`` works on ``(batch, features)`` rows. Here every per-step array is held
**feature-major**, ``(features, batch)``: a step's gate block ``z: (4H, B)`` is contiguous and
so is each of its gates ``i, f, g, o = z[:H], z[H:2H], z[2H:3H], z[3H:]`` (row slices), where
the column slices of a ``(B, 4H)`` block are strided. The same products, transposed::

    z_t = kernel^T x_t^T + recurrent_kernel^T h_t + bias        (4H, B)
    dh_prev = recurrent_kernel dz_t                              (H, B)

What leaves the kernels is batch-major again: ``hs``, the final state and the cache's
``"states"`` are transposed views ``(T + 1, B, H)`` of the ``(T + 1, H, B)`` arrays.

Backward runs in blocks of steps, last block first, each block's gate factors about
``BLOCK_BYTES`` (``block_steps``): the local derivatives of a block are computed right before
the loop reaches it, so that they are still in cache when it reads them (at the benchmark's
sizes, 8 steps a block: 0.7 ms, against 1.1 ms for the whole sequence at once). A small
layer's whole sequence is one block (blocks of 8 steps made a batch-1, 32-unit backward 25 %
slower: the per-block calls, not the data, were the time). Each step's projections are one product whatever ``T``, so a forward
in ``time_chunk`` chunks (``RNN`` without history) makes the very same products.
"""

import numpy as np

from .common import _scratch

#: bytes of gate factors per block of backward (8 steps at B = 32, H = 128, float32; measured there:
#: 4-8 steps fastest, 16 no better than the whole sequence)
BLOCK_BYTES = 2**19


def block_steps(T, B, H, dtype):
    """Steps per block of backward's local derivatives: about ``BLOCK_BYTES`` of ``(4H, B)`` factors."""
    return max(1, min(T, BLOCK_BYTES // (4 * H * B * np.dtype(dtype).itemsize)))


def _padded_columns(mask):
    """Per step, the indices of its padded samples (columns of a ``(H, B)`` array), or None for
    a step without padding; None for no mask. Copies by index are exact and, on these short
    rows, far faster than ``np.copyto(..., where=)`` broadcast along the batch."""
    if mask is None:
        return None
    return [np.flatnonzero(~m) if not m.all() else None for m in mask]


def _gate_affine(H, B, dtype):
    """``(scale, shift)``, each ``(4H, B)``, such that ``tanh(scale * z) * scale + shift`` is the gate.

    On the sigmoid blocks i, f, o: ``scale = shift = 1/2`` (``sigmoid(z) = tanh(z/2)/2 + 1/2``);
    on the candidate g: ``scale = 1, shift = 0`` (``tanh(z)``). Full arrays, not ``(4H, 1)``
    columns: numpy's broadcast along the short batch axis is slower than the extra memory.
    """
    scale = np.full((4 * H, B), 0.5, dtype)
    scale[2 * H:3 * H] = 1.0
    shift = np.full((4 * H, B), 0.5, dtype)
    shift[2 * H:3 * H] = 0.0
    return scale, shift


def lstm_forward_sequence(cell, xs, state, keep_history=True, mask=None):
    """``LSTMCell.step`` over all of ``xs: (T, B, F)``; returns ``(hs, (h_T, c_T), cache)``."""
    T, B, F = xs.shape
    H = cell.hidden_size
    dtype = cell.kernel.data.dtype
    scale, shift = _gate_affine(H, B, dtype)
    column = scale[:, :1]
    # Scaling the weights once lets one tanh per step give all four activations.
    # The bias joins the input projection as a column against a constant row of ones.
    kernel_T = np.concatenate([cell.kernel.data.T, cell.bias.data[:, None]], axis=1) * column  # (4H, F + 1)
    recurrent_T = np.ascontiguousarray(cell.recurrent_kernel.data.T) * column
    x_1 = np.empty((T, F + 1, B), dtype)  # [x_t^T; 1] of each step
    x_1[:, :F] = xs.transpose(0, 2, 1)
    x_1[:, F] = 1
    gates = np.matmul(kernel_T, x_1)  # (T, 4H, B), becomes [i; f; g; o] per step
    hs = np.empty((T + 1, H, B), dtype)  # hs[t], cs[t]: the state after t steps
    cs = np.empty((T + 1, H, B), dtype)
    tanh_cs = np.empty((T if keep_history else 1, H, B), dtype)  # tanh(c_new) of each step
    rec = np.empty((4 * H, B), dtype)
    ig = np.empty((H, B), dtype)
    hs[0], cs[0] = state[0].T, state[1].T
    pads = _padded_columns(mask)
    for t in range(T):
        zt = gates[t]
        np.matmul(recurrent_T, hs[t], out=rec)
        zt += rec
        np.tanh(zt, out=zt)
        zt *= scale
        zt += shift
        i, f, g, o = zt[:H], zt[H:2 * H], zt[2 * H:3 * H], zt[3 * H:]
        c = cs[t + 1]
        np.multiply(f, cs[t], out=c)
        np.multiply(i, g, out=ig)
        c += ig
        tanh_c = tanh_cs[t if keep_history else 0]
        np.tanh(c, out=tanh_c)
        np.multiply(o, tanh_c, out=hs[t + 1])
        if pads is not None and pads[t] is not None:  # padded samples keep their state
            hs[t + 1][:, pads[t]] = hs[t][:, pads[t]]
            c[:, pads[t]] = cs[t][:, pads[t]]
    states = (hs.transpose(0, 2, 1), cs.transpose(0, 2, 1))  # (T + 1, B, H) views
    cache = ({"xs": xs, "hs": hs, "cs": cs, "gates": gates, "tanh_cs": tanh_cs, "states": states}
             if keep_history else None)
    return states[0][1:], (states[0][T], states[1][T]), cache


def _local_derivatives(gates, c_prev, tanh_c, gate_factor, dc_from_dh):
    """The local derivatives of a block of steps, everything backward needs that does not
    depend on the incoming gradient, into ``gate_factor: (k, 4H, B)`` and ``dc_from_dh: (k, H, B)``::

        dz_i, dz_f, dz_g = dc * gate_factor[i, f, g],   dz_o = dh * gate_factor[o],
        dc = dc_new + dh * dc_from_dh.
    """
    H = c_prev.shape[1]
    i, g, o = gates[:, :H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    np.subtract(1, gates, out=gate_factor)
    gate_factor *= gates  # s(1-s) on every block (contiguous, so one call); g's is replaced below
    gate_factor[:, :H] *= g  # g * i(1-i)
    gate_factor[:, H:2 * H] *= c_prev  # c * f(1-f)
    gate_factor[:, 3 * H:] *= tanh_c  # tanh(c_new) * o(1-o)
    factor_g = gate_factor[:, 2 * H:3 * H]
    np.square(g, out=factor_g)
    np.subtract(1, factor_g, out=factor_g)
    factor_g *= i  # i * (1-g^2)
    np.square(tanh_c, out=dc_from_dh)
    np.subtract(1, dc_from_dh, out=dc_from_dh)
    dc_from_dh *= o  # o * (1 - tanh(c_new)^2)


def lstm_backward_sequence(cell, dhs, dstate, cache, mask=None):
    """``LSTMCell.step_backward`` over the steps of ``cache``; returns ``(dxs, (dh0, dc0))``."""
    xs, hs, cs, gates, tanh_cs = cache["xs"], cache["hs"], cache["cs"], cache["gates"], cache["tanh_cs"]
    T, B, F = xs.shape
    H = cell.hidden_size
    f = gates[:, H:2 * H]
    k = block_steps(T, B, H, gates.dtype)
    gate_factor = _scratch(cell, "gate_factor", (k, 4 * H, B), gates.dtype)
    dc_from_dh = _scratch(cell, "dc_from_dh", (k, H, B), gates.dtype)
    dz = _scratch(cell, "dz", gates.shape, gates.dtype)  # dL/dz of every step, (T, 4H, B)
    U = cell.recurrent_kernel.data  # dh_prev = U @ dz_t: (H, 4H) @ (4H, B)
    dhs = None if dhs is None else np.ascontiguousarray(dhs.transpose(0, 2, 1))  # (T, H, B)
    pads = _padded_columns(mask)
    dh, dc = (np.array(s.T, order="C") for s in dstate)
    tmp = np.empty_like(dc)
    for start in range(((T - 1) // k) * k, -1, -k):  # blocks of k steps, the last one first
        block = slice(start, min(start + k, T))
        n = block.stop - start
        factor, from_dh = gate_factor[:n], dc_from_dh[:n]
        _local_derivatives(gates[block], cs[block], tanh_cs[block], factor, from_dh)
        for s, padded in enumerate(pads[block] if pads is not None else ()):
            if padded is not None:  # padded samples: no local gradient at all
                factor[s][:, padded] = 0
                from_dh[s][:, padded] = 0
        # The gate blocks as an axis (n, 4, H, B): i, f, g in one call.
        factor_blocks, dz_blocks = factor.reshape(n, 4, H, B), dz[block].reshape(n, 4, H, B)
        for s in range(n - 1, -1, -1):
            t = start + s
            if dhs is not None:
                dh += dhs[t]
            np.multiply(dh, from_dh[s], out=tmp)
            dc += tmp
            np.multiply(dc, factor_blocks[s, :3], out=dz_blocks[s, :3])  # dz_i, dz_f, dz_g
            np.multiply(dh, factor_blocks[s, 3], out=dz_blocks[s, 3])  # dz_o
            padded = None if pads is None else pads[t]
            if padded is not None:  # padded samples pass dh and dc through unchanged
                dh_kept, dc_kept = dh[:, padded], dc[:, padded]
            dc *= f[t]  # dc_prev
            np.matmul(U, dz[t], out=dh)  # dh_prev
            if padded is not None:
                dh[:, padded], dc[:, padded] = dh_kept, dc_kept
    # The weight gradients of all steps in one product: [h_prev; x; 1] dz^T.
    dz_all = np.ascontiguousarray(dz.transpose(1, 0, 2)).reshape(4 * H, T * B)
    h_x_1 = np.empty((H + F + 1, T, B), dz.dtype)
    h_x_1[:H] = hs[:-1].transpose(1, 0, 2)
    h_x_1[H:H + F] = xs.transpose(2, 0, 1)
    h_x_1[H + F] = 1
    d_weights = h_x_1.reshape(H + F + 1, T * B) @ dz_all.T  # rows: [recurrent_kernel; kernel; bias]
    cell.recurrent_kernel.grad += d_weights[:H]
    cell.kernel.grad += d_weights[H:H + F]
    cell.bias.grad += d_weights[H + F]
    dxs = (cell.kernel.data @ dz_all).reshape(F, T, B).transpose(1, 2, 0)  # (T, B, F), a view
    return dxs, (dh.T, dc.T)
