"""The naive baseline: a per-sample, per-step numpy RNN in the style of the seed article.

One window at a time, one step at a time, column vectors and ``np.dot`` as in the
article, but with a correct backward pass (the article's is wrong: it multiplies the
pre-activation instead of the activation's derivative and never uses ``dadd`` in its
weight gradients). Written for the benchmarks only; it shares no code with minidl.

Model (per window ``x: (T, F)``, column vectors, ``h_0 = 0``)::

    a_t = U @ x_t + W @ h_{t-1} + b         U: (H, F)  W: (H, H)  b: (H, 1)
    h_t = tanh(a_t)
    pred = V @ h_T + c                       V: (O, H)  c: (O, 1)

Loss on a mini-batch of ``B`` windows: ``L = sum_n sum_o (pred_n - y_n)**2 / (B * O)``
(mean squared error). Backward of one window, ``dpred = 2 (pred - y) / (B * O)``::

    dV += dpred @ h_T.T      dc += dpred      dh = V.T @ dpred
    for t = T .. 1:
        da = dh * (1 - h_t**2)               (tanh' written from h_t)
        dU += da @ x_t.T     dW += da @ h_{t-1}.T     db += da      (outer products)
        dh = W.T @ da

The gradients of the batch are accumulated window by window, clipped by their global
L2 norm, and applied with Adam (the ``torch.optim.Adam`` rule).
"""

import math

import numpy as np

PARAM_NAMES = ("U", "W", "b", "V", "c")


class NaiveRNN:
    """Elman RNN (tanh) + linear output, trained one window and one step at a time.

    Args:
        input_size, hidden_size, output_size: ``F``, ``H``, ``O``.
        dtype: float dtype of the weights and computation.
        seed: seed of the weight initialisation (PyTorch's ``U(-1/sqrt(H), 1/sqrt(H))``).
        lr, betas, eps: Adam hyper-parameters.  max_norm: global-norm clip threshold.
    """

    def __init__(self, input_size, hidden_size, output_size=1, dtype=np.float32, seed=0,
                 lr=1e-3, betas=(0.9, 0.999), eps=1e-8, max_norm=5.0):
        rng = np.random.default_rng(seed)
        k = 1.0 / math.sqrt(hidden_size)
        shapes = {"U": (hidden_size, input_size), "W": (hidden_size, hidden_size), "b": (hidden_size, 1),
                  "V": (output_size, hidden_size), "c": (output_size, 1)}
        self.params = {n: rng.uniform(-k, k, s).astype(dtype) for n, s in shapes.items()}
        self.dtype = np.dtype(dtype)
        self.lr, self.betas, self.eps, self.max_norm = lr, betas, eps, max_norm
        self.m = {n: np.zeros_like(p) for n, p in self.params.items()}
        self.v = {n: np.zeros_like(p) for n, p in self.params.items()}
        self.t = 0

    # ---- one window ----------------------------------------------------------------
    def forward(self, x):
        """``x: (T, F)`` -> ``(pred (O, 1), hs)``, ``hs`` the list ``[h_0, ..., h_T]`` of ``(H, 1)``."""
        U, W, b, V, c = (self.params[n] for n in PARAM_NAMES)
        h = np.zeros((W.shape[0], 1), self.dtype)
        hs = [h]
        for t in range(x.shape[0]):
            x_t = x[t].reshape(-1, 1)
            h = np.tanh(np.dot(U, x_t) + np.dot(W, h) + b)
            hs.append(h)
        return np.dot(V, h) + c, hs

    def backward(self, x, hs, dpred, grads):
        """Add the gradients of one window into ``grads`` given ``dpred = dL/dpred: (O, 1)``."""
        W, V = self.params["W"], self.params["V"]
        grads["V"] += np.dot(dpred, hs[-1].T)
        grads["c"] += dpred
        dh = np.dot(V.T, dpred)
        for t in range(x.shape[0], 0, -1):
            da = dh * (1.0 - hs[t] * hs[t])
            grads["U"] += np.dot(da, x[t - 1].reshape(1, -1))
            grads["W"] += np.dot(da, hs[t - 1].T)
            grads["b"] += da
            dh = np.dot(W.T, da)

    # ---- one mini-batch ------------------------------------------------------------
    def loss_and_grads(self, xb, yb):
        """Mean squared error of the batch ``xb: (B, T, F)``, ``yb: (B, O)`` and its gradients."""
        grads = {n: np.zeros_like(p) for n, p in self.params.items()}
        scale = 2.0 / yb.size
        loss = 0.0
        for n in range(len(xb)):
            pred, hs = self.forward(xb[n])
            diff = pred - yb[n].reshape(-1, 1)
            loss += float(np.sum(diff * diff))
            self.backward(xb[n], hs, (diff * scale).astype(self.dtype), grads)
        return loss / yb.size, grads

    def clip(self, grads):
        """Scale ``grads`` in place by ``max_norm / (norm + 1e-6)`` when their global norm exceeds ``max_norm``."""
        norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
        if norm > self.max_norm:
            for g in grads.values():
                g *= self.max_norm / (norm + 1e-6)
        return norm

    def adam_step(self, grads):
        """One Adam update (bias-corrected, as ``torch.optim.Adam``)."""
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        for n, p in self.params.items():
            g = grads[n]
            self.m[n] = b1 * self.m[n] + (1.0 - b1) * g
            self.v[n] = b2 * self.v[n] + (1.0 - b2) * g * g
            p -= (self.lr / c1) * self.m[n] / (np.sqrt(self.v[n]) / math.sqrt(c2) + self.eps)

    def train_batch(self, xb, yb):
        """Forward, backward, clip and update on one mini-batch; returns its loss."""
        loss, grads = self.loss_and_grads(xb, yb)
        self.clip(grads)
        self.adam_step(grads)
        return loss

    def fit_epoch(self, x, y, batch_size=32, rng=None):
        """One shuffled pass over ``x: (N, T, F)``, ``y: (N, O)``; returns the mean batch loss."""
        order = np.arange(len(x)) if rng is None else rng.permutation(len(x))
        losses = [self.train_batch(x[order[s:s + batch_size]], y[order[s:s + batch_size]])
                  for s in range(0, len(x), batch_size)]
        return float(np.mean(losses))
