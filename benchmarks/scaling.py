"""Workload 4: how training time grows with sequence length, hidden size and batch size.

The sine training of workload 1 (RNN tanh + Dense, many-to-one, Adam, clipping, float32),
one epoch of ``BATCHES`` mini-batches per point, varying one size at a time around
``T=50, H=100, B=32``. Figure: median time per mini-batch, and the slope ``k`` of a
least-squares line through ``log(time)`` against ``log(size)`` (``time ~ size**k``):
1 means linear growth, below 1 means fixed per-batch overhead still dominates. PyTorch
runs the same points when it is importable, for comparison of the shapes.
"""

from .common import Result, Row, compare, fmt_seconds, load_torch, loglog_slope
from .sine import minidl_epoch, sine_windows, torch_epoch

BATCHES = 4
BASE = {"steps": 50, "hidden": 100, "batch": 32}
FULL = {"steps": (25, 50, 100, 200), "hidden": (32, 64, 128, 256), "batch": (8, 32, 128, 512)}
QUICK_BASE = {"steps": 10, "hidden": 8, "batch": 4}
QUICK = {"steps": (5, 10, 20), "hidden": (4, 8, 16), "batch": (2, 4, 8)}
LABELS = {"steps": "sequence length T", "hidden": "hidden size H", "batch": "batch size B"}


def point(impls, settings, steps, hidden, batch, reps):
    """name -> median seconds per mini-batch at one size."""
    x, y = sine_windows(BATCHES * batch, steps)
    fns = {name: make_epoch(x, y, hidden, batch) for name, make_epoch in impls.items()}
    seconds = compare(fns, settings, reps, label=f"scaling T={steps} H={hidden} B={batch}")
    return {name: s / BATCHES for name, s in seconds.items()}


def run(settings):
    base, axes = (QUICK_BASE, QUICK) if settings.quick else (BASE, FULL)
    reps = settings.repetitions(full=5)
    torch = load_torch()
    impls = {"minidl": minidl_epoch}
    if torch is not None:
        impls["torch"] = lambda x, y, h, b: torch_epoch(torch, x, y, h, b)
    result = Result("scaling")
    curves = {}
    for axis, values in axes.items():
        times = {name: [] for name in impls}
        for v in values:
            size = {**base, axis: v}
            for name, s in point(impls, settings, size["steps"], size["hidden"], size["batch"], reps).items():
                times[name].append(s)
        c = curves[axis] = {name: {"sizes": list(values), "seconds": t, "slope": loglog_slope(values, t)}
                            for name, t in times.items()}
        others = ", ".join(f"{k}={v}" for k, v in base.items() if k != axis)
        ref = f"torch slope {c['torch']['slope']:.2f}" if "torch" in c else "torch not available"
        m = c["minidl"]
        result.rows.append(Row(
            f"scaling: {LABELS[axis]} {values[0]}..{values[-1]} ({others})",
            "time per batch ~ size^k",
            f"k = {m['slope']:.2f} ({fmt_seconds(m['seconds'][0])} .. {fmt_seconds(m['seconds'][-1])})",
            ref,
        ))
    result.plot = {"curves": curves, "labels": LABELS}
    result.raw = curves
    return result
