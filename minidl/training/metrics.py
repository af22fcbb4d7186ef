"""Metrics: numbers about predictions that ``fit`` and ``evaluate`` report beside the loss.

A metric is a name (``"accuracy"``, ``"mae"``) or a callable
``metric(pred, target, mask) -> float``: the mean over the real targets of one batch,
where ``mask`` is None (every target real) or a bool array covering the leading axes of
``target`` (``(batch, time)``), True at real steps. The trainer folds the loss's
``ignore_index`` (``CrossEntropyLoss``) into that mask, so a metric never sees an ignored
target as real. Over an epoch, the batches' values are averaged weighted by their number of
real targets.
"""

import numpy as np

from .._checks import fmt_shape


def accuracy(pred, target, mask=None):
    """The fraction of real targets whose class index equals the argmax of ``pred`` on its last axis.

    pred: scores ``(..., C)`` (logits or probabilities); target: integer class indices of shape
    ``pred.shape[:-1]``. An all-masked batch gives 0.0.
    """
    target = np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"accuracy: target must be integer class indices, got dtype {target.dtype}")
    if target.shape != pred.shape[:-1]:
        raise ValueError(
            f"accuracy: target must have pred's shape without the class axis, {fmt_shape(pred.shape[:-1])}, "
            f"got {fmt_shape(target.shape)}"
        )
    hits = np.argmax(pred, axis=-1) == target
    return _masked_mean(hits, mask)


def mae(pred, target, mask=None):
    """The mean absolute error ``|pred - target|`` over the real elements (an all-masked batch: 0.0)."""
    if np.shape(pred) != np.shape(target):
        raise ValueError(f"mae: pred and target must have the same shape, got {fmt_shape(np.shape(pred))} "
                         f"and {fmt_shape(np.shape(target))}")
    return _masked_mean(np.abs(np.asarray(pred, np.float64) - target), mask)


def _masked_mean(values, mask):
    if mask is None:
        return float(np.mean(values)) if values.size else 0.0
    spread = np.broadcast_to(mask.reshape(mask.shape + (1,) * (values.ndim - mask.ndim)), values.shape)
    count = np.count_nonzero(spread)
    return float(np.sum(values, where=spread) / count) if count else 0.0


BUILT_IN = {"accuracy": accuracy, "mae": mae}


def resolve(metrics, owner):
    """``metrics`` (names or callables) as a list of ``(name, function)``, or a clear error."""
    if isinstance(metrics, (str, bytes)) or callable(metrics):
        raise TypeError(f"{owner}: metrics must be a list or tuple of names or callables, got {metrics!r}; "
                        f"write metrics=({metrics!r},)")
    try:
        items = list(metrics)
    except TypeError:
        raise TypeError(f"{owner}: metrics must be a list or tuple of names or callables, got {metrics!r}") from None
    out = []
    for i, m in enumerate(items):
        if isinstance(m, str):
            if m not in BUILT_IN:
                raise ValueError(f"{owner}: metrics[{i}] must be one of {', '.join(map(repr, BUILT_IN))} or a "
                                 f"callable metric(pred, target, mask), got {m!r}")
            out.append((m, BUILT_IN[m]))
        elif callable(m):
            out.append((getattr(m, "__name__", f"metric_{i}"), m))
        else:
            raise TypeError(f"{owner}: metrics[{i}] must be a name or a callable, got {type(m).__name__}")
    names = [name for name, _ in out]
    if len(set(names)) != len(names) or "loss" in names:
        raise ValueError(f"{owner}: metric names must be distinct and not 'loss', got {names}")
    return out


def real_targets(target, mask, ignore_index):
    """The mask of the real targets: ``mask`` (None: all real) and, for integer class targets,
    ``target != ignore_index``. Returns None when every target is real."""
    if ignore_index is not None and np.asarray(target).dtype.kind in "iu":
        kept = np.asarray(target) != ignore_index
        if not kept.all():
            mask = kept if mask is None else (mask.reshape(mask.shape + (1,) * (kept.ndim - mask.ndim)) & kept)
    return mask


class Tally:
    """Running means of the loss and of each metric over the batches (or chunks) of an epoch.

    The loss is weighted by its number of elements, as before; each metric by its number of
    real targets (the positions of the mask, every target position without one).
    """

    def __init__(self, metrics, ignore_index=None):
        self.metrics, self.ignore_index = metrics, ignore_index
        self.loss_sum, self.loss_count = 0.0, 0
        self.sums = {name: 0.0 for name, _ in metrics}
        self.counts = {name: 0 for name, _ in metrics}

    def add(self, loss, elements, pred=None, target=None, mask=None):
        """Add one chunk's mean ``loss`` over ``elements``, and its metrics on ``(pred, target)``."""
        self.loss_sum += loss * elements
        self.loss_count += elements
        if not self.metrics:
            return
        mask = real_targets(target, mask, self.ignore_index)
        positions = int(np.count_nonzero(mask)) if mask is not None else int(np.prod(np.shape(target)[:_axes(target)]))
        for name, fn in self.metrics:
            value = float(fn(pred, target, mask))
            self.sums[name] += value * positions
            self.counts[name] += positions

    @property
    def loss(self):
        """The mean loss so far; NaN before any update (every target so far masked)."""
        return self.loss_sum / self.loss_count if self.loss_count else float("nan")

    def logs(self, prefix=""):
        """``{prefix + "loss": ..., prefix + name: ...}``: the means so far (a metric with no real target: 0.0)."""
        out = {prefix + "loss": self.loss}
        for name, _ in self.metrics:
            out[prefix + name] = self.sums[name] / self.counts[name] if self.counts[name] else 0.0
        return out


def _axes(target):
    """The number of leading axes that index target positions: all of an integer target's
    (class indices), all but the last of a float target's (the values of one position)."""
    target = np.asarray(target)
    return target.ndim if target.dtype.kind in "iu" else max(target.ndim - 1, 1)
