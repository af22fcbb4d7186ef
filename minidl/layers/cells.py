"""Built-in recurrent cells: RNNCell, LSTMCell, GRUCell (Keras weight layout).

Each implements the fast sequence path of ``Cell``: the input projections of all
steps in one matmul before the loop, per-step values in preallocated time-major
arrays, and each weight gradient in one matmul after the loop. Their single-step
methods run the same code on a sequence of length one.
"""

import numpy as np

from .._checks import one_of
from .._math import sigmoid
from ..init import make_weight
from .cell import Cell


def _project(xs, kernel, bias):
    """``xs: (T, B, F) -> (T, B, G)``: one matmul for every step's input projection."""
    T, B, F = xs.shape
    x2 = xs.reshape(T * B, F)
    out = x2 * kernel if F == 1 else x2 @ kernel  # same products; numpy's matmul is slow at K = 1
    out += bias
    return out.reshape(T, B, -1)


def _accumulate_weights(cell, xs, hs_prev, d_in, d_rec=None):
    """Add the weight gradients of a whole sequence in one matmul each.

    ``d_in: (T, B, G)`` gradient of the input projection; ``d_rec`` that of the
    recurrent projection (the same as ``d_in`` unless the cell splits them).
    """
    T, B, F = xs.shape
    G = d_in.shape[-1]
    d_in2 = d_in.reshape(T * B, G)
    d_rec2 = d_in2 if d_rec is None else d_rec.reshape(T * B, G)
    cell.kernel.grad += xs.reshape(T * B, F).T @ d_in2
    cell.recurrent_kernel.grad += hs_prev.reshape(T * B, -1).T @ d_rec2
    return (d_in2 @ cell.kernel.data.T).reshape(T, B, F)


class _BuiltinCell(Cell):
    """Shared plumbing of the built-in cells: the step methods and ``state_at``."""

    def step(self, x, state):
        hs, new_state, cache = self.forward_sequence(x[None], state, True)
        return new_state, cache

    def step_backward(self, dstate, cache):
        dxs, dstate0 = self.backward_sequence(None, dstate, cache)
        return dxs[0], dstate0

    def state_at(self, cache, t):
        return tuple(arr[t] for arr in cache["states"])

    def _scratch(self, name, shape, dtype):
        """A scratch array for backward, kept between calls.

        Fresh multi-megabyte temporaries cost page faults on every call (several
        milliseconds per backward here); these never leave ``backward_sequence``.
        """
        ws = self.__dict__.setdefault("_workspace", {})
        arr = ws.get(name)
        if arr is None or arr.shape != shape or arr.dtype != dtype:
            arr = ws[name] = np.empty(shape, dtype)
        return arr

    def __deepcopy__(self, memo):
        import copy

        clone = copy.copy(self)
        memo[id(self)] = clone
        for k, v in self.__dict__.items():
            if k != "_workspace":
                clone.__dict__[k] = copy.deepcopy(v, memo)
        clone.__dict__.pop("_workspace", None)
        return clone


class RNNCell(_BuiltinCell):
    """Elman cell: ``h' = act(x @ kernel + h @ recurrent_kernel + bias)``.

    Args:
        input_size, hidden_size: feature sizes ``F`` and ``H``.
        activation: ``"tanh"`` (default), ``"sigmoid"`` or ``"relu"``.

    Parameters: ``kernel (F, H)``, ``recurrent_kernel (H, H)``, ``bias (H,)``, each
    from ``U(-1/sqrt(H), 1/sqrt(H))``. State: ``(h,)`` with ``h: (batch, H)``.

    Backward of one step, with ``a`` the pre-activation and ``g = dL/dh'``::

        da = g * act'(a)     (act' written from h': 1-h'^2, h'(1-h'), h'>0)
        dkernel += x.T @ da  drecurrent_kernel += h.T @ da  dbias += sum(da)
        dx = da @ kernel.T   dh = da @ recurrent_kernel.T
    """

    _ACTIVATIONS = ("tanh", "sigmoid", "relu")

    def __init__(self, input_size, hidden_size, activation="tanh", kernel_initializer=None,
                 recurrent_initializer=None, bias_initializer=None):
        super().__init__(input_size, hidden_size, kernel_initializer, recurrent_initializer, bias_initializer)
        self.activation = one_of(activation, self._ACTIVATIONS, "activation", "RNNCell")
        H = self.hidden_size
        self.kernel = make_weight(self, "kernel", (self.input_size, H), self.kernel_initializer)
        self.recurrent_kernel = make_weight(self, "recurrent_kernel", (H, H), self.recurrent_initializer)
        self.bias = make_weight(self, "bias", (H,), self.bias_initializer)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}

    def _act(self, a, out):
        if self.activation == "tanh":
            return np.tanh(a, out=out)
        if self.activation == "sigmoid":
            return sigmoid(a, out=out)
        return np.maximum(a, 0, out=out)

    def _act_derivative(self, h, out):
        """``act'(a)`` written from the output ``h = act(a)``, for all steps at once."""
        if self.activation == "relu":
            return np.greater(h, 0, out=out, casting="unsafe")
        if self.activation == "tanh":
            np.multiply(h, h, out=out)
        else:
            np.multiply(h, h, out=out)
            np.subtract(h, out, out=out)
            return out
        return np.subtract(1, out, out=out)

    def forward_sequence(self, xs, state, keep_history=True):
        T, B, _ = xs.shape
        a = _project(xs, self.kernel.data, self.bias.data)
        U = self.recurrent_kernel.data
        hs = np.empty((T + 1, B, self.hidden_size), a.dtype)
        hs[0] = state[0]
        for t in range(T):
            at = a[t]
            at += hs[t] @ U
            self._act(at, hs[t + 1])
        cache = {"xs": xs, "hs": hs, "states": (hs,)} if keep_history else None
        return hs[1:], (hs[T],), cache

    def backward_sequence(self, dhs, dstate, cache):
        xs, hs = cache["xs"], cache["hs"]
        T = xs.shape[0]
        U_T = np.ascontiguousarray(self.recurrent_kernel.data.T)  # BLAS is much faster on it than on the view
        da = self._act_derivative(hs[1:], self._scratch("da", hs[1:].shape, hs.dtype))  # becomes dL/da
        dh = dstate[0]
        for t in range(T - 1, -1, -1):
            if dhs is not None:
                dh = dh + dhs[t]
            dat = da[t]
            dat *= dh
            dh = dat @ U_T
        self.bias.grad += da.sum(axis=(0, 1))
        dxs = _accumulate_weights(self, xs, hs[:-1], da)
        return dxs, (dh,)


class LSTMCell(_BuiltinCell):
    """Long short-term memory cell, gate blocks in the order ``i, f, g, o``.

    Parameters: ``kernel (F, 4H)``, ``recurrent_kernel (H, 4H)``, ``bias (4H,)``.
    State: ``(h, c)``, each ``(batch, H)``. Forward::

        z = x @ kernel + h @ recurrent_kernel + bias        (blocks i, f, g, o)
        i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_g)
        c' = f * c + i * g;   h' = o * tanh(c')

    Backward, given ``dh'`` and ``dc'``::

        dc = dc' + dh' * o * (1 - tanh(c')^2)
        dz_i = dc*g*i(1-i)  dz_f = dc*c*f(1-f)  dz_g = dc*i*(1-g^2)  dz_o = dh'*tanh(c')*o(1-o)
        dc_prev = dc * f;   dh_prev = dz @ recurrent_kernel.T;   dx = dz @ kernel.T
        dkernel += x.T @ dz;  drecurrent_kernel += h.T @ dz;  dbias += sum(dz)

    The three sigmoids and the tanh of a step are one ``tanh`` call over the whole
    gate block (``sigmoid(z) = (1 + tanh(z/2)) / 2``).
    """

    def __init__(self, input_size, hidden_size, kernel_initializer=None, recurrent_initializer=None,
                 bias_initializer=None, unit_forget_bias=False):
        super().__init__(input_size, hidden_size, kernel_initializer, recurrent_initializer, bias_initializer)
        if not isinstance(unit_forget_bias, bool):
            raise TypeError(f"LSTMCell: unit_forget_bias must be a bool, got {unit_forget_bias!r}")
        self.unit_forget_bias = unit_forget_bias
        H = self.hidden_size
        self.kernel = make_weight(self, "kernel", (self.input_size, 4 * H), self.kernel_initializer)
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

    def _affine(self, dtype):
        """(scale, shift) with ``act(z) = tanh(scale * z) * scale' + shift`` per gate column.

        ``scale`` is 1/2 on the sigmoid blocks (i, f, o) and 1 on g; after the tanh,
        the sigmoid blocks are mapped by ``t * 0.5 + 0.5`` and g is left alone.
        """
        H = self.hidden_size
        scale = np.full(4 * H, 0.5, dtype)
        scale[2 * H:3 * H] = 1.0
        shift = np.full(4 * H, 0.5, dtype)
        shift[2 * H:3 * H] = 0.0
        return scale, shift

    def forward_sequence(self, xs, state, keep_history=True):
        T, B, _ = xs.shape
        H = self.hidden_size
        dtype = self.kernel.data.dtype
        scale, shift = self._affine(dtype)
        # Scaling the weights once lets one tanh per step give all four activations.
        z = _project(xs, self.kernel.data * scale, self.bias.data * scale)  # becomes the gate activations
        U = self.recurrent_kernel.data * scale
        hs = np.empty((T + 1, B, H), dtype)
        cs = np.empty((T + 1, B, H), dtype)
        tc = np.empty((T if keep_history else 1, B, H), dtype)
        rec = np.empty((B, 4 * H), dtype)
        ig = np.empty((B, H), dtype)
        hs[0], cs[0] = state
        for t in range(T):
            zt = z[t]
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
            tct = tc[t if keep_history else 0]
            np.tanh(c, out=tct)
            np.multiply(o, tct, out=hs[t + 1])
        cache = {"xs": xs, "hs": hs, "cs": cs, "gates": z, "tc": tc, "states": (hs, cs)} if keep_history else None
        return hs[1:], (hs[T], cs[T]), cache

    def backward_sequence(self, dhs, dstate, cache):
        xs, hs, cs, gates, tc = cache["xs"], cache["hs"], cache["cs"], cache["gates"], cache["tc"]
        T, B, _ = xs.shape
        H = self.hidden_size
        # Local derivatives of all steps at once (large arrays, few calls); the loop
        # below then only multiplies by the incoming dh and dc.
        i, f, g, o = gates[..., :H], gates[..., H:2 * H], gates[..., 2 * H:3 * H], gates[..., 3 * H:]
        q = self._scratch("q", gates.shape, gates.dtype)  # dz = [dc, dc, dc, dh] * q
        a = self._scratch("a", tc.shape, tc.dtype)  # dc += dh * a
        np.subtract(1, gates, out=q)
        q *= gates  # s(1-s) on every block (contiguous, so one call); g's is replaced below
        q[..., :H] *= g  # g * i(1-i)
        q[..., H:2 * H] *= cs[:-1]  # c * f(1-f)
        q[..., 3 * H:] *= tc  # tanh(c') * o(1-o)
        q_g = q[..., 2 * H:3 * H]
        np.multiply(g, g, out=q_g)
        np.subtract(1, q_g, out=q_g)
        q_g *= i  # i * (1-g^2)
        np.multiply(tc, tc, out=a)
        np.subtract(1, a, out=a)
        a *= o  # o * (1 - tanh(c')^2)
        U_T = np.ascontiguousarray(self.recurrent_kernel.data.T)  # BLAS is much faster on it than on the view
        dz = self._scratch("dz", gates.shape, gates.dtype)
        q4, dz4 = q.reshape(T, B, 4, H), dz.reshape(T, B, 4, H)  # blocks as an axis: i, f, g in one call
        dh, dc = (s.copy() for s in dstate)
        tmp = np.empty_like(dc)
        for t in range(T - 1, -1, -1):
            if dhs is not None:
                dh += dhs[t]
            np.multiply(dh, a[t], out=tmp)
            dc += tmp
            np.multiply(dc[:, None], q4[t, :, :3], out=dz4[t, :, :3])  # dz_i, dz_f, dz_g
            np.multiply(dh, q4[t, :, 3], out=dz4[t, :, 3])  # dz_o
            dc *= f[t]
            np.matmul(dz[t], U_T, out=dh)
        self.bias.grad += dz.sum(axis=(0, 1))
        dxs = _accumulate_weights(self, xs, hs[:-1], dz)
        return dxs, (dh, dc)


class GRUCell(_BuiltinCell):
    """Gated recurrent unit, gate blocks in the order ``z, r, n`` (PyTorch / Keras
    ``reset_after=True`` formulation, two biases).

    Parameters: ``kernel (F, 3H)``, ``recurrent_kernel (H, 3H)``, ``bias (2, 3H)``
    (row 0 input bias, row 1 recurrent bias). State: ``(h,)``. Forward::

        xz, xr, xn = x @ kernel + bias[0];   hz, hr, hn = h @ recurrent_kernel + bias[1]
        z = sigmoid(xz + hz);  r = sigmoid(xr + hr);  n = tanh(xn + r * hn)
        h' = (1 - z) * n + z * h

    Backward, given ``dh'``::

        dz = dh' * (h - n) * z(1-z);   da_n = dh' * (1 - z) * (1 - n^2)
        dr = da_n * hn * r(1-r)
        input-projection grad  d_in  = [dz, dr, da_n]
        recurrent-proj. grad   d_rec = [dz, dr, da_n * r]
        dh = dh' * z + d_rec @ recurrent_kernel.T;   dx = d_in @ kernel.T
        dkernel += x.T @ d_in;  drecurrent_kernel += h.T @ d_rec
        dbias[0] += sum(d_in);  dbias[1] += sum(d_rec)
    """

    def __init__(self, input_size, hidden_size, kernel_initializer=None, recurrent_initializer=None,
                 bias_initializer=None):
        super().__init__(input_size, hidden_size, kernel_initializer, recurrent_initializer, bias_initializer)
        H = self.hidden_size
        self.kernel = make_weight(self, "kernel", (self.input_size, 3 * H), self.kernel_initializer)
        self.recurrent_kernel = make_weight(self, "recurrent_kernel", (H, 3 * H), self.recurrent_initializer, blocks=3)
        self.bias = make_weight(self, "bias", (2, 3 * H), self.bias_initializer)

    def forward_sequence(self, xs, state, keep_history=True):
        T, B, _ = xs.shape
        H = self.hidden_size
        dtype = self.kernel.data.dtype
        b_in, b_rec = self.bias.data
        # z and r take sigmoid(a) = (1 + tanh(a/2)) / 2: their columns are pre-scaled by 1/2,
        # and their recurrent bias joins the input projection (only hn needs it apart).
        scale = np.ones(3 * H, dtype)
        scale[:2 * H] = 0.5
        bias = b_in.copy()
        bias[:2 * H] += b_rec[:2 * H]
        xp = _project(xs, self.kernel.data * scale, bias * scale)  # becomes [z, r, n]
        U = self.recurrent_kernel.data * scale
        b_hn = b_rec[2 * H:]
        hs = np.empty((T + 1, B, H), dtype)
        hn_all = np.empty((T if keep_history else 1, B, H), dtype)
        hp = np.empty((B, 3 * H), dtype)
        tmp = np.empty((B, H), dtype)
        hs[0] = state[0]
        for t in range(T):
            np.matmul(hs[t], U, out=hp)
            gt = xp[t]
            zr = gt[:, :2 * H]
            zr += hp[:, :2 * H]
            np.tanh(zr, out=zr)
            zr *= 0.5
            zr += 0.5
            hn = hn_all[t if keep_history else 0]
            np.add(hp[:, 2 * H:], b_hn, out=hn)
            z, r, n = gt[:, :H], gt[:, H:2 * H], gt[:, 2 * H:]
            np.multiply(r, hn, out=tmp)
            n += tmp
            np.tanh(n, out=n)
            h = hs[t + 1]
            np.subtract(hs[t], n, out=h)
            h *= z
            h += n
        cache = {"xs": xs, "hs": hs, "gates": xp, "hn": hn_all, "states": (hs,)} if keep_history else None
        return hs[1:], (hs[T],), cache

    def backward_sequence(self, dhs, dstate, cache):
        xs, hs, gates, hn_all = cache["xs"], cache["hs"], cache["gates"], cache["hn"]
        T = xs.shape[0]
        H = self.hidden_size
        z, r, n = gates[..., :H], gates[..., H:2 * H], gates[..., 2 * H:]
        # Local derivatives of all steps at once; the loop only multiplies by dh':
        # dz = dh' * p_z,  da_n = dh' * p_n,  dr = da_n * p_r
        p = self._scratch("p", gates.shape, gates.dtype)
        tmp = self._scratch("tmp", hn_all.shape, gates.dtype)
        np.subtract(1, z, out=tmp)
        tmp *= z
        np.subtract(hs[:-1], n, out=p[..., :H])
        p[..., :H] *= tmp  # (h - n) * z(1-z)
        np.subtract(1, r, out=tmp)
        tmp *= r
        np.multiply(hn_all, tmp, out=p[..., H:2 * H])  # hn * r(1-r)
        np.multiply(n, n, out=tmp)
        np.subtract(1, tmp, out=tmp)
        np.subtract(1, z, out=p[..., 2 * H:])
        p[..., 2 * H:] *= tmp  # (1-z) * (1-n^2)
        U_T = np.ascontiguousarray(self.recurrent_kernel.data.T)  # BLAS is much faster on it than on the view
        d_in = self._scratch("d_in", gates.shape, gates.dtype)
        d_rec = self._scratch("d_rec", gates.shape, gates.dtype)
        (dh,) = dstate
        for t in range(T - 1, -1, -1):
            if dhs is not None:
                dh = dh + dhs[t]
            pt, dr, dn = p[t], d_rec[t], d_in[t, :, 2 * H:]
            np.multiply(dh, pt[:, :H], out=dr[:, :H])
            np.multiply(dh, pt[:, 2 * H:], out=dn)
            np.multiply(dn, pt[:, H:2 * H], out=dr[:, H:2 * H])
            np.multiply(dn, r[t], out=dr[:, 2 * H:])
            dh = dh * z[t]
            dh += dr @ U_T
        d_in[..., :2 * H] = d_rec[..., :2 * H]
        self.bias.grad[0] += d_in.sum(axis=(0, 1))
        self.bias.grad[1] += d_rec.sum(axis=(0, 1))
        dxs = _accumulate_weights(self, xs, hs[:-1], d_in, d_rec)
        return dxs, (dh,)
