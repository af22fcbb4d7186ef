"""Losses: a scalar objective of a prediction and a target, and its gradient.

A loss is used in two calls per training step::

    value = loss(pred, target)     # forward: a Python float, keeps what backward needs
    grad_pred = loss.backward()    # d value / d pred for that last forward, shape of pred

New losses subclass ``Loss`` and implement ``_forward(pred, target) -> float``
(keeping what ``_backward`` needs on ``self``) and ``_backward() -> grad_pred``.
Input conversion and validation live in ``Loss._prepare`` / ``_check_target``;
a loss whose target is not a float array of pred's shape (class indices for a
cross-entropy, say) overrides ``_check_target``.
"""

import numpy as np

from ._checks import as_float_array, finite_number, fmt_shape
from ._dtype import get_default_dtype

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Loss:
    """Base class of losses.

    ``forward(pred, target) -> float`` (also ``loss(pred, target)``) and
    ``backward() -> grad_pred``, the gradient of the last forward's value with
    respect to ``pred`` (same shape and dtype as the converted ``pred``).

    Computation runs in pred's dtype when pred is a float32/float64 array, else in
    the default dtype; the target is converted to that dtype. Non-numeric input is
    a ``TypeError``; ``backward`` before any ``forward`` is a ``RuntimeError``.
    """

    def __init__(self):
        self._ready = False

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def forward(self, pred, target):
        """Return the loss of ``pred`` against ``target`` as a Python float."""
        # A forward that fails validation leaves no stale cache for backward.
        self._ready = False
        pred, target = self._prepare(pred, target)
        # An overflowing loss is reported as inf; underflow (exp of a very negative
        # logit, a tiny gradient) rounds to 0, which is the right answer, not an error.
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            value = float(self._forward(pred, target))
        self._ready = True
        return value

    def backward(self):
        """Gradient of the last forward's value with respect to its ``pred``."""
        if not self._ready:
            raise RuntimeError(f"{type(self).__name__}: backward() called before forward()")
        with np.errstate(under="ignore"):
            return self._backward()

    # ---- hooks for subclasses --------------------------------------------------
    def _forward(self, pred, target):
        raise NotImplementedError(f"{type(self).__name__} does not implement _forward")

    def _backward(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement _backward")

    def _prepare(self, pred, target):
        """Convert ``pred`` to its own float dtype (default dtype if not float32/64), then the target."""
        owner = type(self).__name__
        dtype = getattr(pred, "dtype", None)
        dtype = np.dtype(dtype) if dtype is not None and np.dtype(dtype) in _FLOAT_DTYPES else get_default_dtype()
        pred = as_float_array(pred, "pred", owner, dtype)
        if pred.size == 0:
            raise ValueError(f"{owner}: pred is empty (shape {fmt_shape(pred.shape)})")
        return pred, self._check_target(target, pred)

    def _check_target(self, target, pred):
        """Default: a real array of exactly pred's shape (no broadcasting), in pred's dtype."""
        owner = type(self).__name__
        target = as_float_array(target, "target", owner, pred.dtype)
        if target.shape != pred.shape:
            raise ValueError(
                f"{owner}: pred and target must have the same shape, "
                f"got pred {fmt_shape(pred.shape)} and target {fmt_shape(target.shape)}"
            )
        return target

    def get_config(self):
        """Constructor arguments as JSON-friendly values."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MSELoss(Loss):
    """Mean squared error over all elements.

    pred, target: any shape, equal (e.g. ``(batch, time, out)``).
    ``L = mean((pred - target)**2) = sum((pred - target)**2) / N`` with ``N = pred.size``;
    ``dL/dpred = 2 * (pred - target) / N``.
    """

    def _forward(self, pred, target):
        self._diff = np.subtract(pred, target)
        return np.mean(np.square(self._diff))

    def _backward(self):
        return self._diff * (2.0 / self._diff.size)


def _reduction(value, owner):
    if not isinstance(value, str) or value not in ("mean", "sum"):
        raise ValueError(f"{owner}: reduction must be 'mean' or 'sum', got {value!r}")
    return value


class _ElementwiseLoss(Loss):
    """A loss that is the mean (or sum) of a per-element term of pred and target.

    Subclasses implement ``_terms(pred, target) -> per-element values`` (keeping
    what ``_term_grad`` needs) and ``_term_grad() -> d term / d pred``.
    """

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = _reduction(reduction, type(self).__name__)

    def _forward(self, pred, target):
        terms = self._terms(pred, target)
        self._scale = 1.0 / terms.size if self.reduction == "mean" else 1.0
        return np.sum(terms) * self._scale

    def _backward(self):
        grad = self._term_grad()
        grad *= self._scale
        return grad

    def get_config(self):
        return {"reduction": self.reduction}


class L1Loss(_ElementwiseLoss):
    """Mean absolute error, as ``torch.nn.L1Loss``.

    pred, target: any shape, equal. ``L = mean(|pred - target|)`` (or the sum with
    ``reduction="sum"``); ``dL/dpred = sign(pred - target) / N`` with ``sign(0) = 0``
    (the subgradient torch uses).
    """

    def _terms(self, pred, target):
        self._diff = np.subtract(pred, target)
        return np.abs(self._diff)

    def _term_grad(self):
        return np.sign(self._diff)


class HuberLoss(_ElementwiseLoss):
    """Huber loss, as ``torch.nn.HuberLoss``: quadratic near zero, linear beyond ``delta``.

    pred, target: any shape, equal; ``d = pred - target``::

        term = 0.5 * d**2                    if |d| <= delta
             = delta * (|d| - 0.5 * delta)   otherwise
        d term / d pred = clip(d, -delta, delta)

    ``L`` is the mean of the terms (or their sum with ``reduction="sum"``).
    ``delta``: finite float > 0 (default 1.0).
    """

    def __init__(self, delta=1.0, reduction="mean"):
        super().__init__(reduction)
        self.delta = finite_number(delta, "delta", "HuberLoss", minimum=0.0, min_open=True)

    def _terms(self, pred, target):
        self._diff = np.subtract(pred, target)
        a = np.abs(self._diff)
        return np.where(a <= self.delta, 0.5 * self._diff * self._diff, self.delta * (a - 0.5 * self.delta))

    def _term_grad(self):
        return np.clip(self._diff, -self.delta, self.delta)

    def get_config(self):
        return {"delta": self.delta, "reduction": self.reduction}


class BCEWithLogitsLoss(_ElementwiseLoss):
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
    """

    def __init__(self, pos_weight=None, reduction="mean"):
        super().__init__(reduction)
        if pos_weight is not None:
            pos_weight = as_float_array(pos_weight, "pos_weight", "BCEWithLogitsLoss", np.float64)
            if not (np.isfinite(pos_weight).all() and (pos_weight >= 0).all()):
                raise ValueError(f"BCEWithLogitsLoss: pos_weight must be finite and >= 0, got {pos_weight!r}")
        self.pos_weight = pos_weight

    def _check_target(self, target, pred):
        target = super()._check_target(target, pred)
        if not ((target >= 0) & (target <= 1)).all():
            bad = target[~((target >= 0) & (target <= 1))][0]
            raise ValueError(f"BCEWithLogitsLoss: target must hold probabilities in [0, 1], got {bad}")
        if self.pos_weight is not None:
            try:
                shape = np.broadcast_shapes(self.pos_weight.shape, pred.shape)
            except ValueError:
                shape = None
            if shape != pred.shape:
                raise ValueError(
                    f"BCEWithLogitsLoss: pos_weight of shape {fmt_shape(self.pos_weight.shape)} does not "
                    f"broadcast to pred {fmt_shape(pred.shape)}"
                )
        return target

    def _terms(self, x, y):
        e = np.exp(-np.abs(x))  # in (0, 1]; 0 after underflow for large |x|, which is exact enough
        softplus_neg = np.maximum(-x, 0.0) + np.log1p(e)
        # sigmoid(x) from the same e: 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0
        self._sig = np.where(x >= 0, 1.0, e) / (1.0 + e)
        self._y = y
        if self.pos_weight is None:
            self._w = self._pw = None
            return (1.0 - y) * x + softplus_neg
        self._pw = self.pos_weight.astype(x.dtype)
        self._w = 1.0 + (self._pw - 1.0) * y
        return (1.0 - y) * x + self._w * softplus_neg

    def _term_grad(self):
        if self._w is None:
            return self._sig - self._y
        return self._w * self._sig - self._pw * self._y

    def get_config(self):
        pw = None if self.pos_weight is None else self.pos_weight.tolist()
        return {"pos_weight": pw, "reduction": self.reduction}


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy of logits against class indices, as ``torch.nn.CrossEntropyLoss``.

    pred: logits ``(..., C)`` with the classes on the LAST axis, e.g. ``(batch, C)`` or
    ``(batch, time, C)`` (torch puts C on axis 1: ``(N, C)`` or ``(N, C, d1, ...)``; for
    torch, move our last axis to axis 1). target: integer class indices of shape
    ``pred.shape[:-1]``, each in ``[0, C)`` or equal to ``ignore_index``.

    With ``log p = x - logsumexp(x)`` over the class axis (computed after subtracting
    the row maximum, so no ``exp`` overflows) and ``n`` the number of targets that are
    not ``ignore_index``::

        L = -sum over non-ignored positions of log p[target] / n    # reduction="mean"
        dL/dx = (softmax(x) - onehot(target)) / n                   # 0 at ignored positions

    With ``reduction="sum"`` the ``/ n`` is left out. If every target is ignored the
    loss is 0.0 and the gradient zero (torch's mean is NaN there, 0 / 0, with the same
    zero gradient).

    Args:
        ignore_index: int, a target value that contributes nothing (default -100).
        reduction: ``"mean"`` (default) or ``"sum"``.

    Float targets (class probabilities, one-hot rows) are a ``TypeError``; a class
    index outside ``[0, C)`` is a ``ValueError`` naming it and its position. Not
    supported: torch's ``weight`` and ``label_smoothing``.
    """

    def __init__(self, ignore_index=-100, reduction="mean"):
        super().__init__()
        if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"CrossEntropyLoss: ignore_index must be an int, got {ignore_index!r}")
        self.ignore_index = int(ignore_index)
        self.reduction = _reduction(reduction, "CrossEntropyLoss")

    def _check_target(self, target, pred):
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
        n_classes = pred.shape[-1]
        bad = (target != self.ignore_index) & ((target < 0) | (target >= n_classes))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{owner}: target holds class index {int(target[where])} at position {where}, "
                f"outside [0, {n_classes}) for pred with {n_classes} classes (ignore_index={self.ignore_index})"
            )
        return target

    def _forward(self, pred, target):
        valid = target != self.ignore_index
        index = np.where(valid, target, 0)[..., None]
        shifted = pred - np.max(pred, axis=-1, keepdims=True)
        exp = np.exp(shifted)  # <= 1: never overflows
        sum_exp = np.sum(exp, axis=-1, keepdims=True)
        nll = np.log(sum_exp) - np.take_along_axis(shifted, index, axis=-1)  # -log p[target], (..., 1)
        self._count = int(np.count_nonzero(valid))
        self._probs, self._index, self._valid = exp / sum_exp, index, valid
        total = np.sum(nll[..., 0], where=valid)
        if self.reduction == "sum":
            return total
        return total / self._count if self._count else 0.0

    def _backward(self):
        grad = self._probs.copy()
        if self._count == 0:
            grad[...] = 0.0
            return grad
        np.put_along_axis(grad, self._index, np.take_along_axis(grad, self._index, axis=-1) - 1.0, axis=-1)
        grad *= self._valid[..., None]
        if self.reduction == "mean":
            grad /= self._count
        return grad

    def get_config(self):
        return {"ignore_index": self.ignore_index, "reduction": self.reduction}
