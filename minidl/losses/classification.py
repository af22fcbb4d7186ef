"""Classification losses on logits: BCEWithLogitsLoss (probabilities), CrossEntropyLoss
(class indices). Both are ``reduce`` of a per-position term and ``reduce_grad`` of its
derivative (see ``loss.py``), written so that no ``exp`` overflows.
"""

import numpy as np

from .._checks import as_float_array, fmt_shape, one_of
from .loss import Loss


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits, as ``torch.nn.BCEWithLogitsLoss``.

    pred: logits ``x``, any shape; target: probabilities ``y`` in [0, 1], pred's shape.
    With ``w = 1 + (pos_weight - 1) * y`` (``w = 1`` without pos_weight) and
    ``softplus(-x) = log(1 + exp(-x)) = max(-x, 0) + log1p(exp(-|x|))``::

        term = (1 - y) * x + w * softplus(-x)    # = max(x, 0) - x*y + log1p(exp(-|x|)) when w = 1
        d term / dx = w * sigmoid(x) - pos_weight * y    # = sigmoid(x) - y when w = 1

    Written this way nothing overflows: ``exp`` only sees ``-|x|`` (finite and exact
    for |x| up to the largest float). ``L`` is the mean of the terms (or their sum).

    Args:
        pos_weight: None, or non-negative finite weights of the positive class,
            broadcastable to pred (usually one per class, shape ``(C,)`` for pred
            ``(..., C)``).
        reduction: ``"mean"`` (default) or ``"sum"``.

    Raises:
        TypeError: ``pos_weight`` is not a numeric array.
        ValueError: ``pos_weight`` is not finite and >= 0, or ``reduction`` is not
            ``"mean"`` or ``"sum"``; at ``forward``, a target outside ``[0, 1]`` at a
            real position.
    """

    takes_class_indices = False  # probabilities: integer 0/1 targets are converted to floats

    def __init__(self, pos_weight=None, reduction="mean"):
        if pos_weight is not None:
            pos_weight = as_float_array(pos_weight, "pos_weight", "BCEWithLogitsLoss", np.float64)
            if not (np.isfinite(pos_weight).all() and (pos_weight >= 0).all()):
                raise ValueError(f"BCEWithLogitsLoss: pos_weight must be finite and >= 0, got {pos_weight!r}")
        self.pos_weight = pos_weight
        self.reduction = one_of(reduction, ("mean", "sum"), "reduction", "BCEWithLogitsLoss")

    def forward(self, pred, target, mask=None):
        x, y, self._mask = self.prepare(pred, target, mask)
        outside = ~((y >= 0) & (y <= 1))
        if self._mask is not None:
            outside &= self._mask
        if outside.any():
            raise ValueError(f"BCEWithLogitsLoss: target must hold probabilities in [0, 1], got {y[outside][0]}")
        pw = 1.0 if self.pos_weight is None else self._pos_weight_for(x)
        e = np.exp(-np.abs(x))  # in (0, 1]; 0 after underflow for large |x|, which is exact enough
        softplus_neg = np.maximum(-x, 0.0) + np.log1p(e)
        # sigmoid(x) from the same e: 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0
        self._sigmoid = np.where(x >= 0, 1.0, e) / (1.0 + e)
        self._w, self._pw_y = 1.0 + (pw - 1.0) * y, pw * y
        return self.reduce((1.0 - y) * x + self._w * softplus_neg, self._mask)

    def backward(self):
        return self.reduce_grad(self._w * self._sigmoid - self._pw_y, self._mask)

    def _pos_weight_for(self, x):
        """pos_weight in x's dtype, or a ValueError unless it broadcasts to x's shape."""
        try:
            shape = np.broadcast_shapes(self.pos_weight.shape, x.shape)
        except ValueError:
            shape = None
        if shape != x.shape:
            raise ValueError(
                f"BCEWithLogitsLoss: pos_weight of shape {fmt_shape(self.pos_weight.shape)} does not "
                f"broadcast to pred {fmt_shape(x.shape)}"
            )
        return self.pos_weight.astype(x.dtype)

    def get_config(self):
        pw = None if self.pos_weight is None else self.pos_weight.tolist()
        return {"pos_weight": pw, "reduction": self.reduction}


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy of logits against class indices, as ``torch.nn.CrossEntropyLoss``.

    pred: logits ``(..., C)`` with the classes on the LAST axis, e.g. ``(batch, C)`` or
    ``(batch, time, C)`` (torch puts C on axis 1: ``(N, C)`` or ``(N, C, d1, ...)``; for
    torch, move our last axis to axis 1). target: integer class indices of shape
    ``pred.shape[:-1]``, each in ``[0, C)`` or equal to ``ignore_index``. mask: over the
    leading axes of the target (``(batch, time)``); a masked position counts as ignored.

    With ``log p = x - logsumexp(x)`` over the class axis (computed after subtracting
    the row maximum, so no ``exp`` overflows) and ``n`` the number of real positions
    (not masked, target not ``ignore_index``)::

        L = -sum over real positions of log p[target] / n    # reduction="mean"
        dL/dx = (softmax(x) - onehot(target)) / n            # 0 at the other positions

    With ``reduction="sum"`` the ``/ n`` is left out. If no position is real the loss
    is 0.0 and the gradient zero (torch's mean is NaN there, 0 / 0, with the same
    zero gradient).

    Args:
        ignore_index: int, a target value that contributes nothing (default -100).
        reduction: ``"mean"`` (default) or ``"sum"``.

    Raises:
        TypeError: ``ignore_index`` is not an int; at ``forward``, float targets (class
            probabilities, one-hot rows).
        ValueError: ``reduction`` is not ``"mean"`` or ``"sum"``; at ``forward``, a
            class index outside ``[0, C)`` at a real position (named with its position).

    Not supported: torch's ``weight`` and ``label_smoothing``.
    """

    takes_class_indices = True

    def __init__(self, ignore_index=-100, reduction="mean"):
        if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"CrossEntropyLoss: ignore_index must be an int, got {ignore_index!r}")
        self.ignore_index = int(ignore_index)
        self.reduction = one_of(reduction, ("mean", "sum"), "reduction", "CrossEntropyLoss")

    def forward(self, pred, target, mask=None):
        x = self.as_pred(pred)
        target = _class_indices(target, x)
        mask = self.as_mask(mask, target.shape, of="target")
        real = target != self.ignore_index
        if mask is not None:
            real &= mask
        _check_classes(target, real, x.shape[-1], self.ignore_index)
        index = np.where(real, target, 0)[..., None]
        shifted = x - np.max(x, axis=-1, keepdims=True)
        exp = np.exp(shifted)  # <= 1: never overflows
        sum_exp = np.sum(exp, axis=-1, keepdims=True)
        nll = (np.log(sum_exp) - np.take_along_axis(shifted, index, axis=-1))[..., 0]  # -log p[target]
        self._softmax, self._index, self._real = exp / sum_exp, index, real
        return self.reduce(nll, real)

    def backward(self):
        dL_dnll = self.reduce_grad(np.ones(self._real.shape, self._softmax.dtype), self._real)  # 1/n at real positions
        dnll_dx = self._softmax.copy()  # softmax(x) - onehot(target)
        np.put_along_axis(dnll_dx, self._index, np.take_along_axis(dnll_dx, self._index, axis=-1) - 1.0, axis=-1)
        # 0 elsewhere, exactly: padding may hold anything, NaN included
        return np.where(self._real[..., None], dnll_dx * dL_dnll[..., None], 0.0)

    def get_config(self):
        return {"ignore_index": self.ignore_index, "reduction": self.reduction}


def _class_indices(target, pred):
    """``target`` as integer class indices of shape ``pred.shape[:-1]``, or a clear error."""
    owner = "CrossEntropyLoss"
    if pred.ndim == 0:
        raise ValueError(f"{owner}: pred must have a class axis (..., C), got a scalar")
    target = np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{owner}: target must be integer class indices, got dtype {target.dtype} "
            "(class probabilities and one-hot targets are not supported)"
        )
    if target.shape != pred.shape[:-1]:
        raise ValueError(
            f"{owner}: target must have pred's shape without the class axis, "
            f"{fmt_shape(pred.shape[:-1])} for pred {fmt_shape(pred.shape)}, got {fmt_shape(target.shape)}"
        )
    return target


def _check_classes(target, real, n_classes, ignore_index):
    """Raise ``ValueError`` at the first real position whose class index is outside ``[0, n_classes)``."""
    bad = real & ((target < 0) | (target >= n_classes))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"CrossEntropyLoss: target holds class index {int(target[where])} at position {where}, "
            f"outside [0, {n_classes}) for pred with {n_classes} classes (ignore_index={ignore_index})"
        )
