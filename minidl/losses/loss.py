"""Loss: the base class of losses, its contract and the tools for writing one.

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

Writing a loss: docs/custom-loss.md. The built-in losses (``regression.py``,
``classification.py``) are written with the same tools.
"""

import functools

import numpy as np

from .._checks import as_float_array, fmt_shape
from .._dtype import get_default_dtype

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
    #: How the trainer reads integer targets for this loss: True, class indices (kept as
    #: integers; float targets are refused); False, real values (integers converted to the
    #: model's dtype); None (not declared), integer targets stay class indices.
    takes_class_indices = None
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
        """Return the loss of ``pred`` against ``target`` (real entries of ``mask``) as a float.

        Args:
            pred: the model's output, e.g. ``(batch, time, out)``.
            target: what ``pred`` should be: of pred's shape, or class indices for a
                classification loss.
            mask: bool over the leading axes of ``pred`` (``(batch, time)``), True at
                real entries, or None (all real).

        Returns:
            The loss, a Python float.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward(pred, target, mask=None)")

    def backward(self):
        """Gradient of the last forward's value with respect to its ``pred``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    # ---- tools for writing a loss ------------------------------------------------------
    def prepare(self, pred, target, mask=None):
        """``(pred, target, mask)`` converted and checked, for a target of pred's shape.

        Args:
            pred: the prediction, converted by ``as_pred``.
            target: a real array of exactly pred's shape, converted by ``as_target`` to
                pred's dtype.
            mask: bool over pred's leading axes, or None, converted by ``as_mask``.

        Returns:
            ``(pred, target, mask)`` as arrays (mask None or with unit axes appended).

        Raises:
            TypeError: a non-numeric pred or target, or a mask that is not bool.
            ValueError: an empty pred, a target of another shape, or a mask that is
                not over pred's leading axes.
        """
        pred = self.as_pred(pred)
        return pred, self.as_target(target, pred), self.as_mask(mask, pred.shape)

    def as_pred(self, pred):
        """``pred`` as a non-empty float array: float32/float64 kept, else the default dtype.

        Args:
            pred: array-like of real numbers, any shape.

        Returns:
            ``pred`` as a float32 or float64 ndarray.

        Raises:
            TypeError: ``pred`` is not a numeric array.
            ValueError: ``pred`` is empty.
        """
        owner = type(self).__name__
        dtype = getattr(pred, "dtype", None)
        dtype = np.dtype(dtype) if dtype is not None and np.dtype(dtype) in _FLOAT_DTYPES else get_default_dtype()
        pred = as_float_array(pred, "pred", owner, dtype)
        if pred.size == 0:
            raise ValueError(f"{owner}: pred is empty (shape {fmt_shape(pred.shape)})")
        return pred

    def as_target(self, target, pred):
        """``target`` as a real array of exactly pred's shape (no broadcasting), in pred's dtype.

        Args:
            target: array-like of real numbers.
            pred: the array ``as_pred`` returned.

        Returns:
            ``target`` as an ndarray of pred's shape and dtype.

        Raises:
            TypeError: ``target`` is not a numeric array.
            ValueError: ``target``'s shape is not pred's.
        """
        owner = type(self).__name__
        target = as_float_array(target, "target", owner, pred.dtype)
        if target.shape != pred.shape:
            raise ValueError(
                f"{owner}: pred and target must have the same shape, "
                f"got pred {fmt_shape(pred.shape)} and target {fmt_shape(target.shape)}"
            )
        return target

    def as_mask(self, mask, shape, of="pred"):
        """``mask`` as a bool array (a copy) that broadcasts against ``shape``; None stays None.

        ``mask.shape`` must be ``shape[:mask.ndim]``, e.g. ``(batch, time)`` for
        ``shape = (batch, time, out)``; it is returned with unit axes appended,
        ``(batch, time, 1)``, so that ``np.where(mask, terms, 0)`` works.

        Args:
            mask: bool array-like, True at real entries, or None.
            shape: tuple, the shape the mask covers the leading axes of.
            of: str, what ``shape`` is, named in the error; default ``"pred"``.

        Returns:
            None for None, else a bool ndarray of ``len(shape)`` axes (unit axes appended).

        Raises:
            TypeError: ``mask`` is not bool.
            ValueError: ``mask``'s shape is not ``shape[:mask.ndim]``.
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
        return _spread(arr, len(shape)).copy()  # a copy: the caller may reuse its buffer before backward

    def reduce(self, terms, mask=None):
        """The loss from its elementwise ``terms``: ``sum(terms over real entries) / count``.

        With ``self.reduction == "sum"`` the sum alone; ``count`` is the number of real
        entries of ``terms``. Every entry masked: 0.0.

        Args:
            terms: array of the elementwise loss terms (e.g. pred's shape).
            mask: bool over the leading axes of ``terms`` (as ``as_mask`` returns), or
                None: all real.

        Returns:
            The loss, a scalar of the terms' dtype (0.0 when every entry is masked).

        Raises:
            ValueError: ``self.reduction`` is neither ``"mean"`` nor ``"sum"``.
        """
        summed = self._sums()
        if mask is None:
            total = np.sum(terms)
            return total if summed else total / terms.size
        real = _spread(mask, terms.ndim)
        total = np.sum(terms, where=real)
        if summed:
            return total
        count = _count(real, terms)
        return total / count if count else 0.0

    def reduce_grad(self, term_grad, mask=None):
        """The chain rule through ``reduce``: ``dL/dpred = dL/dterm * term_grad``.

        ``dL/dterm`` is ``1 / count`` at real entries (``1`` with ``reduction="sum"``)
        and the result is exactly 0 at masked ones.

        Args:
            term_grad: ``d term / d pred``, elementwise (the terms' shape).
            mask: the mask given to ``reduce``, or None.

        Returns:
            ``dL/dpred``, a new array of the terms' shape.

        Raises:
            ValueError: ``self.reduction`` is neither ``"mean"`` nor ``"sum"``.
        """
        summed = self._sums()
        if mask is None:
            return term_grad.copy() if summed else term_grad / term_grad.size
        real = _spread(mask, term_grad.ndim)
        if not summed:
            count = _count(real, term_grad)
            if count == 0:
                return np.zeros_like(term_grad)
            term_grad = term_grad / count
        return np.where(real, term_grad, 0.0)

    def _sums(self):
        """True for ``reduction="sum"``, False for ``"mean"``; anything else is a ``ValueError``."""
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"{type(self).__name__}: reduction must be one of 'mean', 'sum', got {self.reduction!r}")
        return self.reduction == "sum"

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
