"""Workload: the cost of a mask, masked against unmasked forward + backward.

The ``forward_backward`` batch (``x: (32, 50, 65)``, 128 units, float32, the whole
sequence returned, backward from a fixed ``g``) through LSTM and GRU layers, once without
a mask and once with half the sequences padded over their last third of steps
(``mask[b, t] = False`` for ``b`` even and ``t >= 2T/3``): the fused kernels then do one
``(batch, 1)`` select per padded step in forward and backward, plus the zeroing of the
padded inputs, outputs and local derivatives.

Figure: median seconds per batch, masked / unmasked (target <= 1.25). Both run in the same
timed blocks, in turn, so machine noise hits both alike.
"""

import numpy as np

from .common import Result, Row, Target, compare, fmt_seconds
from .forward_backward import FULL, QUICK, minidl_step

CELLS = ("LSTM", "GRU")
TARGET = Target("<=", 1.25)


def padded_mask(B, T):
    """``(B, T)`` bool: every even row padded over its last third of steps."""
    mask = np.ones((B, T), bool)
    mask[::2, T - T // 3:] = False
    return mask


def run(settings):
    size = QUICK if settings.quick else FULL
    reps = settings.repetitions(full=15, quick=3)
    B, T, F, H = size["batch"], size["steps"], size["features"], size["hidden"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, F)).astype(np.float32)
    g = rng.standard_normal((B, T, H)).astype(np.float32)
    mask = padded_mask(B, T)
    result = Result("masked")
    for kind in CELLS:
        fns = {"unmasked": minidl_step(kind, x, g, H), "masked": minidl_step(kind, x, g, H, mask=mask)}
        seconds = compare(fns, settings, reps, warmup=2, label=f"masked {kind}")
        label = f"masked vs unmasked {kind} ({B}x{T}, in {F}, H {H}, float32, {int((~mask).sum())} steps padded)"
        result.rows.append(Row(label, "time, masked / unmasked", fmt_seconds(seconds["masked"]),
                               f"unmasked {fmt_seconds(seconds['unmasked'])}",
                               seconds["masked"] / seconds["unmasked"], TARGET))
        result.raw[kind] = {f"{k}_seconds": v for k, v in seconds.items()}
    return result
