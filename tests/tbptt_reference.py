"""An independent reference of TBPTT(k1, k2) for the trainer tests.

Written from the formulas of the cells (docs/layers.md) and the TBPTT(k1, k2) semantics
documented in docs/tbptt.md, with plain per-step numpy and no minidl code:
the forward of each cell is re-implemented here, and the gradient of each window's
loss is taken by central differences of that forward (float64), so neither minidl's
backward passes nor its trainer take part.
"""

import numpy as np


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def cell_step(kind, p, x, state):
    """One step of a cell as documented (gate order i, f, g, o and z, r, n); ``p`` holds kernel, recurrent_kernel, bias."""
    W, U, b = p["kernel"], p["recurrent_kernel"], p["bias"]
    if kind == "rnn":
        (h,) = state
        return (np.tanh(x @ W + h @ U + b),)
    if kind == "lstm":
        h, c = state
        H = h.shape[1]
        z = x @ W + h @ U + b
        i, f, g, o = _sig(z[:, :H]), _sig(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), _sig(z[:, 3 * H:])
        c2 = f * c + i * g
        return (o * np.tanh(c2), c2)
    if kind == "gru":
        (h,) = state
        H = h.shape[1]
        xp = x @ W + b[0]
        hp = h @ U + b[1]
        z = _sig(xp[:, :H] + hp[:, :H])
        r = _sig(xp[:, H:2 * H] + hp[:, H:2 * H])
        n = np.tanh(xp[:, 2 * H:] + r * hp[:, 2 * H:])
        return ((1 - z) * n + z * h,)
    raise ValueError(kind)


class RefModel:
    """Stacked cells (all returning sequences except maybe the last) and a Dense on top.

    ``spec``: list of (kind, hidden_size); ``params``: dict name -> array using
    minidl's state-dict names ("0.cell.kernel", ..., "<n>.kernel", "<n>.bias").
    """

    def __init__(self, spec, params, last_sequences):
        self.spec, self.params, self.last_sequences = spec, params, last_sequences

    def zero_state(self, B):
        return [tuple(np.zeros((B, H)) for _ in range(2 if kind == "lstm" else 1)) for kind, H in self.spec]

    def forward(self, x, states, mask=None):
        """x: (B, t, F) from ``states``; returns outputs and the states after every step.

        ``mask`` (B, t) bool, True at real steps: at a masked step each layer carries its
        state unchanged and hands on zeros (docs/masks.md).
        """
        T = x.shape[1]
        real = np.ones((x.shape[0], T), bool) if mask is None else mask
        seq = [x[:, t] for t in range(T)]
        per_step = [[None] * (T + 1) for _ in self.spec]
        for li, (kind, _) in enumerate(self.spec):
            p = {k: self.params[f"{li}.cell.{k}"] for k in ("kernel", "recurrent_kernel", "bias")}
            st = states[li]
            per_step[li][0] = st
            out = []
            for t in range(T):
                m = real[:, t:t + 1]
                st = tuple(np.where(m, new, old) for new, old in zip(cell_step(kind, p, seq[t], st), st))
                per_step[li][t + 1] = st
                out.append(np.where(m, st[0], 0.0))
            seq = out
        n = len(self.spec)
        W, b = self.params[f"{n}.kernel"], self.params[f"{n}.bias"]
        if self.last_sequences:
            y = np.stack([h @ W + b for h in seq], axis=1)
        else:
            y = per_step[-1][T][0] @ W + b  # the state after the last real step
        return y, [[per_step[li][t] for li in range(n)] for t in range(T + 1)]


def numeric_grads(model, loss_fn, eps=1e-6):
    grads = {}
    for name, arr in model.params.items():
        g = np.zeros_like(arr)
        flat, gflat = arr.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            plus = loss_fn()
            flat[i] = old - eps
            minus = loss_fn()
            flat[i] = old
            gflat[i] = (plus - minus) / (2 * eps)
        grads[name] = g
    return grads


def mse(a, b, mask=None):
    """Mean squared error over the real steps (``mask`` covers the leading axes)."""
    if mask is None:
        return float(np.mean((a - b) ** 2))
    terms = ((a - b) ** 2)[mask]
    return float(terms.sum() / terms.size)


def reference_tbptt(model, x, y, k1, k2, lr, mask=None):
    """One epoch, one batch (the whole of x), SGD(lr), no clipping, as docs/tbptt.md defines it;
    with ``mask``, a window whose targets are all masked makes no update (docs/masks.md)."""
    B, T, _ = x.shape
    cut = (lambda a, b: None) if mask is None else (lambda a, b: mask[:, a:b])
    if y.ndim == 2:  # many-to-one: k1 plays no part
        s = 0 if k2 is None else max(0, T - k2)
        _, states = model.forward(x[:, :s], model.zero_state(B), cut(0, s)) if s else (None, [model.zero_state(B)])
        start = states[-1]
        grads = numeric_grads(model, lambda: mse(model.forward(x[:, s:], start, cut(s, T))[0], y))
        for name, g in grads.items():
            model.params[name] -= lr * g
        return model.params
    k1 = k1 or T
    k2 = k2 or k1
    stored = {0: model.zero_state(B)}
    p = 0
    while p < T:
        e = min(p + k1, T)
        s = max(0, e - k2)
        start = stored[s]
        _, states = model.forward(x[:, s:e], start, cut(s, e))
        for t in range(s + 1, e + 1):  # the most recent forward through a step wins
            stored[t] = states[t - s]
        if mask is None or mask[:, p:e].any():
            grads = numeric_grads(model, lambda: mse(model.forward(x[:, s:e], start, cut(s, e))[0][:, p - s:],
                                                     y[:, p:e], cut(p, e)))
            for name, g in grads.items():
                model.params[name] -= lr * g
        p = e
    return model.params
