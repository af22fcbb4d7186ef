"""User-written ``Model`` subclasses shared by the model, gradcheck and model-file tests, and
small layers of the mask protocol (``takes_mask``, ``compute_mask``) for the Sequential tests.

Defined once here: every Layer class is registered under its name, and ``save`` refuses
a class whose name another class took, so each test module must not define its own copy.
"""

import numpy as np

import minidl as mdl


class TwoSequenceModel(mdl.Model):
    """Two sequences through two RNNs, the last outputs joined, a Dense head:
    ``forward(a: (B, Ta, features_a), b: (B, Tb, features_b)) -> (B, out)``."""

    def __init__(self, features_a, features_b, hidden=4, out=2):
        super().__init__()
        self.features_a, self.features_b, self.hidden, self.out = features_a, features_b, hidden, out
        self.left = mdl.RNN(mdl.LSTMCell(features_a, hidden))
        self.right = mdl.RNN(mdl.GRUCell(features_b, hidden))
        self.join = mdl.Concatenate()
        self.head = mdl.Dense(2 * hidden, out)

    def get_config(self):
        return {"features_a": self.features_a, "features_b": self.features_b, "hidden": self.hidden, "out": self.out}

    def forward(self, a, b):
        return self.head(self.join(self.left(a), self.right(b)))

    def backward(self, grad_out):
        ga, gb = self.join.backward(self.head.backward(grad_out))
        return self.left.backward(ga), self.right.backward(gb)


class TokensAndFeatures(mdl.Model):
    """An integer input and a float input: ``forward(tokens: (B, T) int, x: (B, T, F)) -> (B, T, out)``;
    the tokens' embeddings joined with ``x`` on the features, an RNN over time, a Dense head.
    ``backward`` returns ``(None, dx)``: token ids have no gradient."""

    def __init__(self, vocab=5, dim=3, features=2, hidden=4, out=2):
        super().__init__()
        self.vocab, self.dim, self.features, self.hidden, self.out = vocab, dim, features, hidden, out
        self.embed = mdl.Embedding(vocab, dim)
        self.join = mdl.Concatenate(axis=-1)
        self.rnn = mdl.RNN(mdl.RNNCell(dim + features, hidden), return_sequences=True)
        self.head = mdl.Dense(hidden, out)

    def get_config(self):
        return {"vocab": self.vocab, "dim": self.dim, "features": self.features, "hidden": self.hidden, "out": self.out}

    def forward(self, tokens, x):
        return self.head(self.rnn(self.join(self.embed(tokens), x)))

    def backward(self, grad_out):
        g_embedded, gx = self.join.backward(self.rnn.backward(self.head.backward(grad_out)))
        return self.embed.backward(g_embedded), gx


class TwoHeads(mdl.Model):
    """One input, two outputs: ``forward(x: (B, T, F)) -> (last: (B, 1), steps: (B, T, 2))``, a
    Dense on the last step and another on every step of one RNN. ``backward((g_last, g_steps))``
    returns the input's gradient (one input: the array itself)."""

    def __init__(self, features=2, hidden=3):
        super().__init__()
        self.features, self.hidden = features, hidden
        self.rnn = mdl.RNN(mdl.GRUCell(features, hidden), return_sequences=True)
        self.last = mdl.Dense(hidden, 1)
        self.steps = mdl.Dense(hidden, 2)

    def get_config(self):
        return {"features": self.features, "hidden": self.hidden}

    def forward(self, x):
        h = self.rnn(x)
        return self.last(h[:, -1]), self.steps(h)

    def backward(self, grad_out):
        g_last, g_steps = grad_out
        gh = self.steps.backward(g_steps)
        gh[:, -1] += self.last.backward(g_last)
        return self.rnn.backward(gh)


# ---- layers of the mask protocol ----------------------------------------------------------------
class MaskRecorder(mdl.Layer):
    """Identity layer that takes a mask (``takes_mask``) and records what it received."""

    takes_mask = True

    def __init__(self):
        super().__init__()
        self.masks = []

    def forward(self, x, mask=None):
        self.masks.append(None if mask is None else mask.copy())
        return x

    def backward(self, grad_out):
        return grad_out


class ZeroMasker(mdl.Layer):
    """Identity layer that makes a mask: a step is real where some feature is nonzero."""

    def forward(self, x):
        return x

    def backward(self, grad_out):
        return grad_out

    def compute_mask(self, x, mask):
        return np.any(x != 0, axis=-1)


class LastStep(mdl.Layer):
    """``(B, T, F) -> (B, F)``: the time axis is dropped, and with it the mask."""

    def forward(self, x):
        self._shape = x.shape
        return x[:, -1]

    def backward(self, grad_out):
        g = np.zeros(self._shape)
        g[:, -1] = grad_out
        return g

    def compute_mask(self, x, mask):
        return None


def two_sequences(rng, batch=3, dtype=np.float64):
    """Inputs of ``TwoSequenceModel(2, 3)``: ``a (batch, 5, 2)`` and ``b (batch, 4, 3)``."""
    return rng.standard_normal((batch, 5, 2)).astype(dtype), rng.standard_normal((batch, 4, 3)).astype(dtype)
