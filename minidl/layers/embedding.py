"""Embedding: a lookup table from integer indices (tokens) to vectors."""

import numpy as np

from .._checks import flag, fmt_shape, grad_shape, positive_int
from .._dtype import get_default_dtype
from .._grad_mode import is_grad_enabled
from .._random import get_rng
from ..parameter import Parameter
from .layer import Layer


class Embedding(Layer):
    """Maps each integer index to a learned vector: ``y[..., :] = embeddings[x[...], :]``.

    Args:
        num_embeddings: int >= 1, size of the vocabulary; indices must lie in ``[0, num_embeddings - 1]``.
        embedding_dim: int >= 1, length of each vector.
        mask_zero: bool (default False): token 0 is padding: ``compute_mask`` gives ``tokens != 0`` (True at
            real steps) for the layers after it (``RNN``, ``Bidirectional``, masked
            losses). Row 0 is still an ordinary, trainable row.

    Raises:
        TypeError: a size is not an int, or ``mask_zero`` not a bool.
        ValueError: a size is < 1; at ``forward``, an index outside
            ``[0, num_embeddings - 1]`` (named with its position). ``forward`` raises
            ``TypeError`` for an input that is not an integer array.

    Shapes: ``x: (...)`` integers, any shape (usually ``(batch, time)``) ->
    ``y: (..., embedding_dim)`` in the parameters' dtype.

    Parameter: ``embeddings (num_embeddings, embedding_dim)``, drawn from ``N(0, 1)``
    as in PyTorch (generator seeded by ``minidl.set_seed``, default dtype).

    Backward, with ``g = dL/dy`` flattened to ``(N, embedding_dim)`` and the
    indices to ``(N,)``: every row of ``g`` is added into the row it was read from,
    so a row used ``k`` times receives the sum of its ``k`` gradients::

        dL/dembeddings[v] += sum over n with x[n] == v of g[n]

    The input holds indices, not values: there is no gradient with respect to it
    and ``backward`` returns ``None`` (so ``Embedding`` goes first in a model).
    """

    def __init__(self, num_embeddings, embedding_dim, mask_zero=False):
        super().__init__()
        self.num_embeddings = positive_int(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim", "Embedding")
        self.mask_zero = flag(mask_zero, "mask_zero", "Embedding")
        shape = (self.num_embeddings, self.embedding_dim)
        # Drawn in float64 then cast, as add_weight does: the same seed gives the same
        # table (up to rounding) whatever the default dtype.
        self.embeddings = Parameter(get_rng().standard_normal(shape).astype(get_default_dtype()), "embeddings")
        self._index = None

    def get_config(self):
        config = {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim}
        if self.mask_zero:
            config["mask_zero"] = True
        return config

    def compute_mask(self, x, mask):
        """With ``mask_zero``: ``tokens != 0`` (the shape of the indices; True at real steps);
        otherwise the incoming mask unchanged."""
        if not self.mask_zero:
            return mask
        return self._check_indices(x) != 0

    def expected_input_shape(self):
        return (None, None)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.embedding_dim,)

    def forward(self, x):
        index = self._check_indices(x)
        y = self.embeddings.data[index]
        self._index = index if is_grad_enabled() else None
        return y

    def backward(self, grad_out):
        """Add into ``embeddings.grad``; returns None (no gradient w.r.t. indices)."""
        index = self._index
        if index is None:
            raise self._missing_forward()
        g = grad_shape(grad_out, index.shape + (self.embedding_dim,), self, self.embeddings.data.dtype)
        _scatter_add_rows(self.embeddings.grad, index.reshape(-1), g.reshape(-1, self.embedding_dim))
        return None

    def _check_indices(self, x):
        owner = self
        arr = np.asarray(x)
        if arr.dtype.kind not in "iu":
            what = "booleans" if arr.dtype.kind == "b" else f"dtype {arr.dtype}"
            raise TypeError(
                f"{owner}: input must be an integer array of indices in [0, {self.num_embeddings - 1}], got {what}"
                + ("; convert token ids with x.astype(int)" if arr.dtype.kind == "f" else "")
            )
        if arr.size:
            low, high = arr.min(), arr.max()
            if low < 0 or high >= self.num_embeddings:
                bad = low if low < 0 else high
                where = tuple(int(i) for i in np.argwhere(arr == bad)[0])
                raise ValueError(
                    f"{owner}: indices must be in [0, {self.num_embeddings - 1}], "
                    f"got {int(bad)} at position {where} of the input of shape {fmt_shape(arr.shape)}"
                )
        return arr.astype(np.intp)  # a copy: a later change to the caller's array cannot alter backward


def _scatter_add_rows(out, index, rows):
    """``out[index[n]] += rows[n]`` for every n, repeated indices summed.

    Sorting the indices and summing each run with ``np.add.reduceat`` is 2-4x
    faster than ``np.add.at`` for typical token batches (many repeats); without
    repeats a plain fancy-index add is exact.
    """
    if index.size == 0:
        return
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
    if starts.size == index.size:
        out[index] += rows
    else:
        out[sorted_index[starts]] += np.add.reduceat(rows[order], starts, axis=0)
