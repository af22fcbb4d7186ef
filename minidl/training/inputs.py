"""The data of ``fit`` and ``evaluate``: inputs, targets and masks, checked once, then batched.

``x`` is one array (``(batch, time, features)`` floats, or ``(batch, time)`` integer tokens)
or, for a ``Model`` of several inputs, a tuple of batch-first arrays with the same batch
size. ``y`` is ``(batch, out)`` / ``(batch,)`` class indices (many-to-one), or
``(batch, time, out)`` / ``(batch, time)`` class indices (many-to-many). ``mask`` is None
or a bool ``(batch, time)`` array, True at real steps: with one input, the input's mask
(its time axis is x's; the model gets it, and so does the loss unless the model makes its
own, ``output_mask``); with a tuple of inputs, the targets' mask (its time axis is y's).
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


def check_data(x, y, mask, dtype, names, owner, truncated):
    """``Data`` of ``x``, ``y``, ``mask``, or a clear error naming what is wrong.

    ``names``: what to call x and y in messages (``("x", "y")``); ``truncated``: the
    trainer has ``k1`` or ``k2`` (which needs one input whose time axis is y's).
    """
    xname, yname = names
    several = isinstance(x, tuple)  # a tuple is several inputs; a list is array-like
    xs = tuple(_as_data(v, f"{xname}[{i}]", dtype, owner) for i, v in enumerate(x)) if several \
        else (_as_data(x, xname, dtype, owner),)
    y = _as_data(y, yname, dtype, owner)
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
    _check_targets(y, yname, owner)
    if len(xs[0]) != len(y):
        raise ValueError(f"{owner}: {xname} and {yname} must have the same number of samples, got {len(xs[0])} and {len(y)}")
    if any(v.size == 0 for v in xs) or y.size == 0:
        raise ValueError(f"{owner}: {xname} and {yname} must not be empty, got shapes "
                         f"{', '.join(fmt_shape(v.shape) for v in xs)} and {fmt_shape(y.shape)}")
    if has_time_axis(y) and not several and truncated and y.shape[1] != xs[0].shape[1]:
        raise ValueError(f"{owner}: {yname} has {y.shape[1]} steps but {xname} has {xs[0].shape[1]} "
                         "(truncated many-to-many needs the same)")
    for name, arr in [(xname, v) for v in xs] + [(yname, y)]:
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError(f"{owner}: {name} contains NaN or infinite values")
    steps = y.shape[1] if several else xs[0].shape[1]
    if several and mask is not None and not has_time_axis(y):
        raise ValueError(f"{owner}: with a tuple of inputs the mask is the targets' mask, but {yname} of shape "
                         f"{fmt_shape(y.shape)} has no time axis")
    return Data(xs, y, _check_mask(mask, (len(y), steps), owner))


def _check_single_input(x, name, owner):
    tokens = x.dtype.kind in "iu"
    if x.ndim != (2 if tokens else 3):
        expected = "(batch, time) of integer tokens" if tokens else "(batch, time, features)"
        raise ValueError(f"{owner}: {name} must be {expected}, got shape {fmt_shape(x.shape)}")


def _check_targets(y, name, owner):
    classes = y.dtype.kind in "iu"
    if y.ndim not in ((1, 2) if classes else (2, 3)):
        expected = ("(batch,) or (batch, time) of class indices" if classes else
                    "(batch, out) for many-to-one or (batch, time, out) for many-to-many")
        raise ValueError(f"{owner}: {name} must be {expected}, got shape {fmt_shape(y.shape)}")


def _check_mask(mask, shape, owner):
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise TypeError(f"{owner}: mask must be a bool array (True at real steps), got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{owner}: mask must have shape (batch, time) = {fmt_shape(shape)}, got {fmt_shape(arr.shape)}")
    return arr


def _as_data(arr, name, dtype, owner):
    """``arr`` as an array: integers stay integer (tokens, class indices), the rest becomes ``dtype``."""
    try:
        probe = np.asarray(arr)
    except (ValueError, TypeError):  # ragged nested lists: as_float_array names the problem
        probe = None
    if probe is not None and probe.dtype.kind in "iu":
        return probe
    return as_float_array(arr, name, owner, dtype)


def has_time_axis(y):
    """True for many-to-many targets: ``(batch, time, out)`` floats or ``(batch, time)`` class indices."""
    return y.ndim == (2 if y.dtype.kind in "iu" else 3)


def real_elements(target, mask):
    """The number of target elements the loss averages over: all, or those at real steps."""
    if mask is None:
        return target.size
    return int(np.count_nonzero(mask)) * (target.size // mask.size)
