"""Floors: the least work any numpy design of two benchmark models has to do.

Each is a bare loop with part of the arithmetic of minidl's fast paths and nothing
else: no layer objects, validation, caches, loss, optimizer or trainer. They are
lower bounds for a numpy implementation, and they explain the two targets of
issue 5 that minidl does not meet.

* ``rnn_recurrence(B, T, H)``: the tanh recurrence of the sine model (input size 1,
  input projection given). Forward, per step: one matmul, one add, one tanh.
  Backward: ``tanh'`` for all steps in two calls, then per step one multiply and one
  matmul. No weight gradients, output layer, loss or update. The steps depend on
  each other, so these ``5 T`` calls cannot be batched over time; the rate of this
  loop (windows per second) over the naive loop's is the most that any numpy design
  can gain on the sine task.
* ``lstm_matmuls(B, T, F, H)``: only the matrix products of an LSTM forward +
  backward with input gradient, in two layouts: batch-major per-step arrays
  ``(B, 4H)`` as in minidl, or feature-major ``(4H, B)``, where OpenBLAS runs these
  small per-step products up to 1.5x faster.
* ``lstm_gate_arithmetic(B, T, H)``: only the elementwise work of the same LSTM, in the
  feature-major layout, where each gate block is a contiguous ``(H, B)`` array (about
  twice as fast per call as a column block of ``(B, 4H)``): per step forward one add,
  one ``tanh`` over the gate block and its ``* scale + shift``, the cell update, its
  ``tanh`` and the output (9 calls); the local derivatives of all steps at once (11
  calls); per step backward 6 multiplies and adds. These are the fewest calls we found
  for an LSTM step in numpy (minidl makes the same ones). The two parts together bound
  a numpy LSTM from below: each is timed in its faster layout and with nothing else.
"""

import numpy as np


def rnn_recurrence(batch, steps, hidden, dtype=np.float32, seed=0):
    """A callable running the bare tanh recurrence forward and backward once.

    It returns ``(hs, dh0)``: the states ``h_0..h_T`` from ``h_0 = 0`` and input
    projections ``run.projection: (T, B, H)`` with recurrent kernel ``run.recurrent_kernel``,
    and the gradient at ``h_0`` of ``sum(h_T)``.
    """
    rng = np.random.default_rng(seed)
    U = (rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype(dtype)
    U_T = np.ascontiguousarray(U.T)
    a = rng.standard_normal((steps, batch, hidden)).astype(dtype)
    pre = np.empty_like(a)
    hs = np.zeros((steps + 1, batch, hidden), dtype)
    da = np.empty_like(a)
    dh0 = np.ones((batch, hidden), dtype)

    def run():
        np.copyto(pre, a)  # stands for the input projection, which minidl computes in one call
        for t in range(steps):
            at = pre[t]
            at += hs[t] @ U
            np.tanh(at, out=hs[t + 1])
        np.multiply(hs[1:], hs[1:], out=da)
        np.subtract(1, da, out=da)
        dh = dh0
        for t in range(steps - 1, -1, -1):
            dat = da[t]
            dat *= dh
            dh = dat @ U_T
        return hs, dh

    run.projection, run.recurrent_kernel = a, U
    return run


def lstm_matmuls(batch, steps, features, hidden, dtype=np.float32, seed=0):
    """Callables (by layout name) running only the matrix products of an LSTM forward + backward."""
    rng = np.random.default_rng(seed)
    B, T, F, H, G = batch, steps, features, hidden, 4 * hidden
    draw = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    x, kernel, recurrent = draw(T * B, F), draw(F, G), draw(H, G)
    hs, dz = draw(T * B, H), draw(T * B, G)
    rec, dh = np.empty((B, G), dtype), np.empty((B, H), dtype)
    recurrent_T, kernel_T = np.ascontiguousarray(recurrent.T), np.ascontiguousarray(kernel.T)
    h_fm, dz_fm = draw(H, B), draw(T, G, B)
    x_fm, hs_fm, dz_flat = draw(T, F, B), draw(H, T * B), draw(G, T * B)
    x_flat = draw(F, T * B)
    rec_fm, dh_fm, z_fm = np.empty((G, B), dtype), np.empty((H, B), dtype), np.empty((T, G, B), dtype)

    # Each returns its last three products: the kernel, recurrent-kernel and input gradients.
    def batch_major():
        x @ kernel  # input projection of all steps
        for t in range(T):
            np.matmul(hs[t * B:(t + 1) * B], recurrent, out=rec)
        for t in range(T):
            np.matmul(dz[t * B:(t + 1) * B], recurrent_T, out=dh)
        return x.T @ dz, hs.T @ dz, dz @ kernel_T

    def feature_major():  # per-step arrays (4H, B); the gradients come out transposed
        np.matmul(kernel_T, x_fm, out=z_fm)
        for t in range(T):
            np.matmul(recurrent_T, h_fm, out=rec_fm)
        for t in range(T):
            np.matmul(recurrent, dz_fm[t], out=dh_fm)
        return dz_flat @ x_flat.T, dz_flat @ hs_fm.T, kernel @ dz_flat

    return {"batch-major": batch_major, "feature-major": feature_major}


def lstm_gate_arithmetic(batch, steps, hidden, dtype=np.float32, seed=0):
    """A callable running only the elementwise work of an LSTM forward + backward (feature-major).

    It returns the bias gradient. ``run.pre_activations: (T, 4H, B)``, ``run.recurrent:
    (4H, B)`` (added at every step, standing for the recurrent product) and
    ``run.output_grad: (T, H, B)`` are its inputs; each run overwrites the pre-activations
    with the gate activations, which keeps them bounded for the next run.
    """
    rng = np.random.default_rng(seed)
    B, T, H, G = batch, steps, hidden, 4 * hidden
    z = rng.uniform(-1, 1, (T, G, B)).astype(dtype)  # gate pre-activations; stay bounded when reused
    rec = rng.uniform(-1, 1, (G, B)).astype(dtype)
    dhs = rng.uniform(-1, 1, (T, H, B)).astype(dtype)
    scale = np.full((G, 1), 0.5, dtype)
    scale[2 * H:3 * H] = 1.0
    shift = np.where(scale == 0.5, 0.5, 0.0).astype(dtype)
    hs, cs = np.zeros((T + 1, H, B), dtype), np.zeros((T + 1, H, B), dtype)
    tc, a = np.empty((T, H, B), dtype), np.empty((T, H, B), dtype)
    q, dz = np.empty((T, G, B), dtype), np.empty((T, G, B), dtype)
    ig, tmp = np.empty((H, B), dtype), np.empty((H, B), dtype)
    q4, dz4 = q.reshape(T, 4, H, B), dz.reshape(T, 4, H, B)

    def run():
        for t in range(T):
            zt = z[t]
            zt += rec
            np.tanh(zt, out=zt)
            zt *= scale
            zt += shift
            i, f, g, o = zt[:H], zt[H:2 * H], zt[2 * H:3 * H], zt[3 * H:]
            np.multiply(f, cs[t], out=cs[t + 1])
            np.multiply(i, g, out=ig)
            cs[t + 1] += ig
            np.tanh(cs[t + 1], out=tc[t])
            np.multiply(o, tc[t], out=hs[t + 1])
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        np.subtract(1, z, out=q)
        np.multiply(q, z, out=q)
        q[:, :H] *= g
        q[:, H:2 * H] *= cs[:-1]
        q[:, 3 * H:] *= tc
        q_g = q[:, 2 * H:3 * H]
        np.multiply(g, g, out=q_g)
        np.subtract(1, q_g, out=q_g)
        q_g *= i
        np.multiply(tc, tc, out=a)
        np.subtract(1, a, out=a)
        np.multiply(a, o, out=a)
        dh, dc = np.zeros((H, B), dtype), np.zeros((H, B), dtype)
        for t in range(T - 1, -1, -1):
            dh += dhs[t]
            np.multiply(dh, a[t], out=tmp)
            dc += tmp
            np.multiply(dc, q4[t, :3], out=dz4[t, :3])
            np.multiply(dh, q4[t, 3], out=dz4[t, 3])
            dc *= f[t]
        return dz.sum(axis=(0, 2))  # the bias gradient

    run.pre_activations, run.recurrent, run.output_grad = z, rec, dhs
    return run
