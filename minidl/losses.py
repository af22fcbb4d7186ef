"""Losses: a scalar objective of a prediction and a target, and its gradient.

A loss is used in two calls per training step::

    value = loss(pred, target, mask=None)   # loss.forward(...): a float; keeps what backward needs
    grad_pred = loss.backward()             # d value / d pred for that last forward, pred's shape

Masks. ``mask`` is None (every position is real) or a bool array over the leading
axes of ``pred``, usually ``(batch, time)`` for pred ``(batch, time, out)``, True
where a step is real and False where it is padding; it broadcasts over the remaining
axes. The loss is then the mean of the elementwise terms over the real entries only,
their sum divided by their count (``mask.sum() * out`` for MSE on ``(batch, time,
out)``), which is PyTorch's ``reduction="mean"`` over the selected elements;
``reduction="sum"`` sums them. ``backward()`` is exactly zero at masked entries,
whatever pred and target hold there (padding is not validated). A batch with no real
entry has the loss 0.0 and a zero gradient.

Writing a loss (docs/custom-loss.md): subclass ``Loss`` and implement
``forward(pred, target, mask=None) -> float`` and ``backward() -> grad_pred``, using
the tools of the base class: ``prepare`` (convert and check the three inputs),
``reduce`` (the masked mean of elementwise terms) and ``reduce_grad`` (its chain rule).
The built-in losses below are written that way.
"""

import functools

import numpy as np

from ._checks import as_float_array, finite_number, fmt_shape, one_of
from ._dtype import get_default_dtype

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Loss:
    """Base class of losses.

    A subclass implements ``forward(pred, target, mask=None) -> float`` (keeping what
    backward needs on ``self``) and ``backward() -> grad_pred``, the gradient of the
    last forward's value with respect to ``pred`` (a new array of pred's shape and
    dtype each call). ``loss(pred, target, mask)`` calls ``forward``.

    The base class runs every subclass's ``forward`` and ``backward`` inside one guard
    (added when the subclass is defined, by ``__init_subclass__``), so that each loss
    gets, without writing it: the value as a Python float; an overflow reported as
    ``inf`` and an underflow rounded to 0 without numpy warnings; and a
    ``RuntimeError`` from ``backward`` before any ``forward`` or after a forward that
    raised (no stale gradient).

    Tools for ``forward`` and ``backward``:

    - ``prepare(pred, target, mask)``: the three inputs converted and checked
      (``as_pred``, ``as_target``, ``as_mask`` one by one for other targets).
    - ``reduce(terms, mask)``: the loss from elementwise terms, their mean over the
      real entries (or their sum when ``self.reduction == "sum"``).
    - ``reduce_grad(term_grad, mask)``: the chain rule through ``reduce``.

    Computation runs in pred's dtype when pred is a float32/float64 array, else in
    the default dtype; the target is converted to that dtype.
    """

    #: How ``reduce`` combines the terms: ``"mean"`` over the real entries, or ``"sum"``.
    reduction = "mean"
    _ready = False  # a forward succeeded since the last failure: backward may run

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "forward" in vars(cls):
            cls.forward = _guarded_forward(cls.forward)
        if "backward" in vars(cls):
            cls.backward = _guarded_backward(cls.backward)

    def __call__(self, pred, target, mask=None):
        if mask is None:  # also serves a loss whose forward takes no mask
            return self.forward(pred, target)
        return self.forward(pred, target, mask)

    def forward(self, pred, target, mask=None):
        """Return the loss of ``pred`` against ``target`` (real entries of ``mask``) as a float."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward(pred, target, mask=None)")

    def backward(self):
        """Gradient of the last forward's value with respect to its ``pred``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    # ---- tools for writing a loss ------------------------------------------------------
    def prepare(self, pred, target, mask=None):
        """``(pred, target, mask)`` converted and checked, for a target of pred's shape.

        ``pred`` as ``as_pred``, ``target`` as ``as_target`` (a real array of exactly
        pred's shape, in pred's dtype), ``mask`` as ``as_mask`` over pred's shape.
        """
        pred = self.as_pred(pred)
        return pred, self.as_target(target, pred), self.as_mask(mask, pred.shape)

    def as_pred(self, pred):
        """``pred`` as a non-empty float array: float32/float64 kept, else the default dtype."""
        owner = type(self).__name__
        dtype = getattr(pred, "dtype", None)
        dtype = np.dtype(dtype) if dtype is not None and np.dtype(dtype) in _FLOAT_DTYPES else get_default_dtype()
        pred = as_float_array(pred, "pred", owner, dtype)
        if pred.size == 0:
            raise ValueError(f"{owner}: pred is empty (shape {fmt_shape(pred.shape)})")
        return pred

    def as_target(self, target, pred):
        """``target`` as a real array of exactly pred's shape (no broadcasting), in pred's dtype."""
        owner = type(self).__name__
        target = as_float_array(target, "target", owner, pred.dtype)
        if target.shape != pred.shape:
            raise ValueError(
                f"{owner}: pred and target must have the same shape, "
                f"got pred {fmt_shape(pred.shape)} and target {fmt_shape(target.shape)}"
            )
        return target

    def as_mask(self, mask, shape, of="pred"):
        """``mask`` as a bool array (a copy) over the leading axes of ``shape``; None stays None.

        ``mask.shape`` must be ``shape[:mask.ndim]``, e.g. ``(batch, time)`` for
        ``shape = (batch, time, out)``; ``of`` names what ``shape`` is, for the error.
        """
        if mask is None:
            return None
        owner = type(self).__name__
        try:
            arr = np.asarray(mask)
        except (ValueError, TypeError):  # ragged nested lists
            arr = np.asarray(mask, dtype=object)
        if arr.dtype != np.bool_:
            raise TypeError(f"{owner}: mask must be a bool array (True at real steps), got dtype {arr.dtype}")
        if arr.ndim > len(shape) or arr.shape != tuple(shape[: arr.ndim]):
            raise ValueError(
                f"{owner}: mask must have the leading axes of {of} {fmt_shape(shape)}, e.g. "
                f"{fmt_shape(shape[:2])} for (batch, time), got shape {fmt_shape(arr.shape)}"
            )
        return arr.copy()  # the caller may reuse its buffer before backward

    def reduce(self, terms, mask=None):
        """The loss from its elementwise ``terms``: ``sum(terms over real entries) / count``.

        With ``self.reduction == "sum"`` the sum alone. ``mask`` (None: all real) covers
        the leading axes of ``terms``; ``count`` is the number of real entries of
        ``terms``. Every entry masked: 0.0.
        """
        if mask is None:
            total = np.sum(terms)
            return total if self.reduction == "sum" else total / terms.size
        real = _spread(mask, terms.ndim)
        total = np.sum(terms, where=real)
        if self.reduction == "sum":
            return total
        count = _count(real, terms)
        return total / count if count else 0.0

    def reduce_grad(self, term_grad, mask=None):
        """The chain rule through ``reduce``: ``dL/dpred = dL/dterm * term_grad``.

        ``term_grad`` is ``d term / d pred``, elementwise (the terms' shape). ``dL/dterm``
        is ``1 / count`` at real entries (``1`` with ``reduction="sum"``) and the
        result is exactly 0 at masked ones. Returns a new array.
        """
        if mask is None:
            return term_grad.copy() if self.reduction == "sum" else term_grad / term_grad.size
        real = _spread(mask, term_grad.ndim)
        if self.reduction == "mean":
            count = _count(real, term_grad)
            if count == 0:
                return np.zeros_like(term_grad)
            term_grad = term_grad / count
        return np.where(real, term_grad, 0.0)

    # ---- configuration -----------------------------------------------------------------
    def get_config(self):
        """Constructor arguments as JSON-friendly values."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _guarded_forward(forward):
    """A subclass's ``forward`` inside the guard of ``Loss`` (see its docstring)."""

    @functools.wraps(forward)
    def guarded(self, *args, **kwargs):
        self._ready = False
        try:
            # An overflowing loss is reported as inf; underflow (exp of a very negative
            # logit, a tiny gradient) rounds to 0, which is the right answer, not an error.
            with np.errstate(over="ignore", invalid="ignore", under="ignore"):
                value = float(forward(self, *args, **kwargs))
        except BaseException:
            self._ready = False  # also when a nested super().forward had succeeded
            raise
        self._ready = True
        return value

    return guarded


def _guarded_backward(backward):
    """A subclass's ``backward`` inside the guard of ``Loss``."""

    @functools.wraps(backward)
    def guarded(self):
        if not self._ready:
            raise RuntimeError(f"{type(self).__name__}: backward() called before forward()")
        with np.errstate(under="ignore"):
            return backward(self)

    return guarded


def _spread(mask, ndim):
    """A mask over leading axes, with unit axes appended so that it broadcasts over ``ndim`` axes."""
    return mask.reshape(mask.shape + (1,) * (ndim - mask.ndim))


def _count(real, terms):
    """The number of real entries of ``terms`` (``real`` broadcast over its trailing axes)."""
    return int(np.count_nonzero(real)) * (terms.size // real.size)


def _reduction(value, owner):
    return one_of(value, ("mean", "sum"), "reduction", owner)


class MSELoss(Loss):
    """Mean squared error over all (real) elements.

    pred, target: any shape, equal (e.g. ``(batch, time, out)``); ``N`` the number of real elements::

        L = sum((pred - target)**2) / N        dL/dpred = 2 * (pred - target) / N
    """

    def forward(self, pred, target, mask=None):
        pred, target, self._mask = self.prepare(pred, target, mask)
        self._diff = pred - target
        return self.reduce(np.square(self._diff), self._mask)

    def backward(self):
        return 2.0 * self.reduce_grad(self._diff, self._mask)  # scaled first: no overflow of 2 * diff


class L1Loss(Loss):
    """Mean absolute error, as ``torch.nn.L1Loss``.

    pred, target: any shape, equal. ``L = mean(|pred - target|)`` (or the sum with
    ``reduction="sum"``); ``dL/dpred = sign(pred - target) / N`` with ``sign(0) = 0``
    (the subgradient torch uses).
    """

    def __init__(self, reduction="mean"):
        self.reduction = _reduction(reduction, "L1Loss")

    def forward(self, pred, target, mask=None):
        pred, target, self._mask = self.prepare(pred, target, mask)
        self._diff = pred - target
        return self.reduce(np.abs(self._diff), self._mask)

    def backward(self):
        return self.reduce_grad(np.sign(self._diff), self._mask)

    def get_config(self):
        return {"reduction": self.reduction}


class HuberLoss(Loss):
    """Huber loss, as ``torch.nn.HuberLoss``: quadratic near zero, linear beyond ``delta``.

    pred, target: any shape, equal; ``d = pred - target``::

        term = 0.5 * d**2                    if |d| <= delta
             = delta * (|d| - 0.5 * delta)   otherwise
        d term / d pred = clip(d, -delta, delta)

    ``L`` is the mean of the terms (or their sum with ``reduction="sum"``).
    ``delta``: finite float > 0 (default 1.0).
    """

    def __init__(self, delta=1.0, reduction="mean"):
        self.delta = finite_number(delta, "delta", "HuberLoss", minimum=0.0, min_open=True)
        self.reduction = _reduction(reduction, "HuberLoss")

    def forward(self, pred, target, mask=None):
        pred, target, self._mask = self.prepare(pred, target, mask)
        d = self._diff = pred - target
        a = np.abs(d)
        return self.reduce(np.where(a <= self.delta, 0.5 * d * d, self.delta * (a - 0.5 * self.delta)), self._mask)

    def backward(self):
        return self.reduce_grad(np.clip(self._diff, -self.delta, self.delta), self._mask)

    def get_config(self):
        return {"delta": self.delta, "reduction": self.reduction}


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
    """

    def __init__(self, pos_weight=None, reduction="mean"):
        if pos_weight is not None:
            pos_weight = as_float_array(pos_weight, "pos_weight", "BCEWithLogitsLoss", np.float64)
            if not (np.isfinite(pos_weight).all() and (pos_weight >= 0).all()):
                raise ValueError(f"BCEWithLogitsLoss: pos_weight must be finite and >= 0, got {pos_weight!r}")
        self.pos_weight = pos_weight
        self.reduction = _reduction(reduction, "BCEWithLogitsLoss")

    def forward(self, pred, target, mask=None):
        x, y, self._mask = self.prepare(pred, target, mask)
        outside = ~((y >= 0) & (y <= 1))
        if self._mask is not None:
            outside &= _spread(self._mask, y.ndim)
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

    Float targets (class probabilities, one-hot rows) are a ``TypeError``; a class
    index outside ``[0, C)`` at a real position is a ``ValueError`` naming it and its
    position. Not supported: torch's ``weight`` and ``label_smoothing``.
    """

    def __init__(self, ignore_index=-100, reduction="mean"):
        if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"CrossEntropyLoss: ignore_index must be an int, got {ignore_index!r}")
        self.ignore_index = int(ignore_index)
        self.reduction = _reduction(reduction, "CrossEntropyLoss")

    def forward(self, pred, target, mask=None):
        x = self.as_pred(pred)
        target = _class_indices(target, x)
        mask = self.as_mask(mask, target.shape, of="target")
        real = target != self.ignore_index
        if mask is not None:
            real &= _spread(mask, real.ndim)
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
        return dnll_dx * dL_dnll[..., None]

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
