"""The seed article's training loop, as its algorithm runs, for one reference figure: its speed.

The article's RNN trains one record at a time with Python loops over records, time steps and
truncation steps, column vectors and ``np.dot``. This module redoes that work, operation for
operation and in the same shapes, so that ``make bench`` can say how much faster minidl
trains the same task than the code that started the project. Its gradients are the
article's (wrong: see docs/sine-example.md, "What the article gets wrong"); only the cost is
the point here, and nothing in minidl uses this module.

One epoch, as the article runs it, for ``T = 50``, ``hidden = 100``, truncation 5:

1. the loss of every training record, then of every validation record: a forward pass over
   the ``T`` steps of each, where step ``t`` feeds ``U @ e_t`` (``U: (hidden, T)``, ``e_t`` the
   window with every value but the ``t``-th set to zero), ``W @ s``, a sigmoid and ``V @ s``;
2. one pass over the training records, each a forward pass keeping every step's state, then
   for every step ``t`` its output-weight gradient and up to 5 truncation steps back (each
   with ``W @ s_prev``, ``W.T @ d``, ``U @ e_t`` and ``U.T @ d``), the gradients clipped to
   ``[-10, 10]`` and an SGD update after each record.
"""

import time

import numpy as np

TRUNCATE = 5
CLIP = 10.0


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class ArticleRNN:
    """The article's network: ``U (hidden, T)``, ``W (hidden, hidden)``, ``V (1, hidden)``, drawn
    from ``U(0, 1)`` as the article does (seeded here, for a repeatable cost)."""

    def __init__(self, T=50, hidden=100, seed=0):
        rng = np.random.default_rng(seed)
        self.T, self.hidden = T, hidden
        self.U = rng.uniform(0, 1, (hidden, T))
        self.W = rng.uniform(0, 1, (hidden, hidden))
        self.V = rng.uniform(0, 1, (1, hidden))

    def _step(self, x, t, prev_s):
        e_t = np.zeros_like(x)
        e_t[t] = x[t]
        add = self.W @ prev_s + self.U @ e_t
        s = _sigmoid(add)
        return add, s, self.V @ s

    def loss(self, X, Y):
        """Half the squared error summed over records (the article's loss pass)."""
        total = 0.0
        for x, y in zip(X, Y):
            s = np.zeros((self.hidden, 1))
            for t in range(self.T):
                _, s, out = self._step(x, t, s)
            total += float(np.sum((y - out) ** 2)) / 2
        return total

    def train_record(self, x, y, lr):
        """One record's forward pass, the article's truncated backward pass and an SGD step."""
        layers, s = [], np.zeros((self.hidden, 1))
        for t in range(self.T):
            add, s_new, out = self._step(x, t, s)
            layers.append((s, s_new, add))
            s = s_new
        dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        d_out = out - y
        for t in range(self.T):
            prev_s, s_t, add = layers[t]
            dV += d_out @ s_t.T
            dsv = self.V.T @ d_out
            d_add = add * (1 - add) * dsv
            d_prev = self.W.T @ d_add
            dU_t, dW_t = np.zeros_like(self.U), np.zeros_like(self.W)
            for _ in range(t - 1, max(-1, t - TRUNCATE - 1), -1):
                d_add = add * (1 - add) * (dsv + d_prev)
                dW_t += self.W @ prev_s
                d_prev = self.W.T @ d_add
                e_t = np.zeros_like(x)
                e_t[t] = x[t]
                dU_t += self.U @ e_t
                self.U.T @ d_add                  # the article computes dx too, and drops it
            dU += dU_t
            dW += dW_t
        for weight, grad in ((self.U, dU), (self.V, dV), (self.W, dW)):
            np.clip(grad, -CLIP, CLIP, out=grad)
            weight -= lr * grad


def training_epoch(X, Y, X_val, Y_val, hidden=100, lr=1e-4, seed=0):
    """A function running one epoch of the article's training (its loss passes over both splits,
    then its training pass), on one network that persists across calls.

    ``X: (N, T, 1)``, ``Y: (N, 1)`` the training windows, ``X_val``, ``Y_val`` the validation
    windows (the article's split is 2 to 1).
    """
    net = ArticleRNN(T=X.shape[1], hidden=hidden, seed=seed)

    def epoch():
        net.loss(X, Y)
        net.loss(X_val, Y_val)
        for x, y in zip(X, Y):
            net.train_record(x, y, lr)

    return epoch


def windows_per_second(X, Y, X_val, Y_val, hidden=100, epochs=1, lr=1e-4, seed=0):
    """Training windows per second of ``epochs`` of the article's epochs: ``len(X) * epochs / seconds``."""
    epoch = training_epoch(X, Y, X_val, Y_val, hidden, lr, seed)
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return len(X) * epochs / (time.perf_counter() - start)
