"""The data of ``fit`` and ``evaluate``: inputs, targets and masks, checked once, then batched.

``x`` is one array (``(batch, time, features)`` floats, or ``(batch, time)`` integer tokens)
or, for a ``Model`` of several inputs, a tuple of batch-first arrays with the same batch
size. ``y`` is ``(batch, out)`` / ``(batch,)`` class indices (many-to-one), or
``(batch, time, out)`` / ``(batch, time)`` class indices (many-to-many). ``mask`` is None
or a bool ``(batch, time)`` array, True at real steps: with one input, the input's mask
(its time axis is x's; the model gets it, and so does the loss unless the model makes its
own, ``output_mask``); with a tuple of inputs, the targets' mask (its time axis is y's).

Reading integers (``Reading``). Integer features ``(batch, time, features)`` are converted
to the model's dtype (as ``predict`` does); integer ``(batch, time)`` stay tokens. Integer
targets are read as the loss says (``Loss.takes_class_indices``): kept as class indices for
a loss that takes them (``CrossEntropyLoss``; float targets are then refused), converted to
the model's dtype for one that does not (``MSELoss``, ``BCEWithLogitsLoss``, ...), and kept
as class indices, as before, for a loss that does not say. Every error about ``y``'s shape
says which reading was assumed and why.
"""

import numpy as np

from .._checks import as_float_array, fmt_shape


class Data:
    """Checked inputs, targets and mask: ``xs`` (a tuple of arrays), ``y``, ``mask`` (or None)."""

    def __init__(self, xs, y, mask):
        self.xs, self.y, self.mask = xs, y, mask

    def __len__(self):
        return len(self.y)

    def take(self, idx):
        """The samples ``idx`` (a slice or an index array) of every array."""
        return Data(tuple(x[idx] for x in self.xs), self.y[idx], None if self.mask is None else self.mask[idx])

    @property
    def many_to_many(self):
        return has_time_axis(self.y)


class Reading:
    """How ``fit`` reads the targets of ``loss``: ``classes`` is the loss's
    ``takes_class_indices`` (True, False, or None when the loss does not say)."""

    def __init__(self, loss):
        self.loss_name = type(loss).__name__
        takes = getattr(loss, "takes_class_indices", None)
        self.classes = None if takes is None else bool(takes)

    def targets(self, y, name, dtype, owner):
        """``y`` as an array: class indices (integers) or real values in ``dtype``."""
        probe = _probe(y)
        if self.classes and (probe is None or probe.dtype.kind not in "iu"):
            got = "a ragged list" if probe is None else f"dtype {probe.dtype}"
            raise TypeError(f"{owner}: {name} must be integer class indices because the loss is "
                            f"{self.loss_name} (takes_class_indices), got {got}")
        if probe is not None and probe.dtype.kind in "iu" and self.classes is not False:
            return probe
        return as_float_array(y, name, owner, dtype)

    def describe(self, y, name="y"):
        """What ``y`` (as ``targets`` returned it) was read as, and why: for error messages."""
        if y.dtype.kind in "iu":
            why = (f"the loss is {self.loss_name}" if self.classes else
                   f"it holds integers and {self.loss_name} does not set takes_class_indices")
            return f"{name} read as class indices because {why}"
        if self.classes is False:
            return f"{name} read as real-valued targets because the loss is {self.loss_name}"
        return f"{name} read as real-valued targets because it holds floats"


def check_data(x, y, mask, dtype, names, owner, truncated, reading):
    """``Data`` of ``x``, ``y``, ``mask``, or a clear error naming what is wrong.

    ``names``: what to call x and y in messages (``("x", "y")``); ``truncated``: the
    trainer has ``k1`` or ``k2`` (which needs one input whose time axis is y's);
    ``reading``: the ``Reading`` of the loss's targets.
    """
    xname, yname = names
    several = isinstance(x, tuple)  # a tuple is several inputs; a list is array-like
    xs = tuple(_as_input(v, f"{xname}[{i}]", dtype, owner) for i, v in enumerate(x)) if several \
        else (_as_input(x, xname, dtype, owner),)
    y = reading.targets(y, yname, dtype, owner)
    if several:
        if not xs:
            raise ValueError(f"{owner}: {xname} is an empty tuple; expected one array per model input")
        if truncated:
            raise ValueError(f"{owner}: truncated BPTT (k1, k2) needs a single time-aligned input; {xname} is a "
                             f"tuple of {len(xs)} arrays: use k1=None, k2=None")
        for i, v in enumerate(xs):
            if v.ndim == 0 or len(v) != len(y):
                raise ValueError(f"{owner}: every input needs the batch size of {yname} ({len(y)}), got "
                                 f"{xname}[{i}] of shape {fmt_shape(v.shape)}")
    else:
        _check_single_input(xs[0], xname, owner)
    _check_targets(y, yname, owner, reading)
    if len(xs[0]) != len(y):
        raise ValueError(f"{owner}: {xname} and {yname} must have the same number of samples, got {len(xs[0])} and {len(y)}")
    if any(v.size == 0 for v in xs) or y.size == 0:
        raise ValueError(f"{owner}: {xname} and {yname} must not be empty, got shapes "
                         f"{', '.join(fmt_shape(v.shape) for v in xs)} and {fmt_shape(y.shape)}")
    if has_time_axis(y) and not several and truncated and y.shape[1] != xs[0].shape[1]:
        raise ValueError(f"{owner}: {yname} has {y.shape[1]} steps but {xname} has {xs[0].shape[1]} "
                         f"(truncated many-to-many needs the same); {reading.describe(y, yname)}")
    for name, arr in [(xname, v) for v in xs] + [(yname, y)]:
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError(f"{owner}: {name} contains NaN or infinite values")
    steps = y.shape[1] if several else xs[0].shape[1]
    if several and mask is not None and not has_time_axis(y):
        raise ValueError(f"{owner}: with a tuple of inputs the mask is the targets' mask, but {yname} of shape "
                         f"{fmt_shape(y.shape)} has no time axis")
    return Data(xs, y, _check_mask(mask, (len(y), steps), owner))


def validation_set(validation_data, check):
    """``fit``'s ``validation_data``, ``(x_val, y_val)`` or ``(x_val, y_val, mask_val)``, made
    ``Data`` by ``check(x, y, mask, names, owner)``; None stays None."""
    if validation_data is None:
        return None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise TypeError("fit: validation_data must be a tuple (x_val, y_val) or (x_val, y_val, mask_val)")
    vx, vy, vmask = (*validation_data, None)[:3]
    return check(vx, vy, vmask, ("validation x", "validation y"), "fit")


def check_truncation(data, k1, k2):
    """Refuse many-to-many training with ``k2`` set but ``k1`` left to the whole sequence."""
    T = data.xs[0].shape[1]
    if data.many_to_many and k1 is None and k2 is not None and k2 < T:
        raise ValueError(f"fit: many-to-many training with k2={k2} needs k1 <= k2, but k1 defaults to the whole "
                         f"sequence ({T} steps); pass k1")


def _check_single_input(x, name, owner):
    tokens = x.dtype.kind in "iu"
    if x.ndim != (2 if tokens else 3):
        expected = "(batch, time) of integer tokens" if tokens else "(batch, time, features)"
        raise ValueError(f"{owner}: {name} must be {expected}, got shape {fmt_shape(x.shape)}")


def _check_targets(y, name, owner, reading):
    classes = y.dtype.kind in "iu"
    if y.ndim not in ((1, 2) if classes else (2, 3)):
        expected = ("(batch,) or (batch, time) of class indices" if classes else
                    "(batch, out) for many-to-one or (batch, time, out) for many-to-many")
        raise ValueError(f"{owner}: {name} must be {expected}, got shape {fmt_shape(y.shape)}; "
                         f"{reading.describe(y, name)}")


def _check_mask(mask, shape, owner):
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise TypeError(f"{owner}: mask must be a bool array (True at real steps), got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{owner}: mask must have shape (batch, time) = {fmt_shape(shape)}, got {fmt_shape(arr.shape)}")
    return arr


def _as_input(arr, name, dtype, owner):
    """An input as an array: integer ``(batch, time)`` tokens stay integer; the rest (integer
    features ``(batch, time, features)`` included) becomes ``dtype``, as ``predict`` reads them."""
    probe = _probe(arr)
    if probe is not None and probe.dtype.kind in "iu" and probe.ndim != 3:
        return probe
    return as_float_array(arr, name, owner, dtype)


def _probe(arr):
    """``np.asarray(arr)``, or None for ragged nested lists (as_float_array names the problem)."""
    try:
        return np.asarray(arr)
    except (ValueError, TypeError):
        return None


def has_time_axis(y):
    """True for many-to-many targets: ``(batch, time, out)`` floats or ``(batch, time)`` class indices."""
    return y.ndim == (2 if y.dtype.kind in "iu" else 3)


def real_elements(target, mask):
    """The number of target elements the loss averages over: all, or those at real steps."""
    if mask is None:
        return target.size
    return int(np.count_nonzero(mask)) * (target.size // mask.size)
