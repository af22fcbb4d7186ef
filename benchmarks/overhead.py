"""Workload: the trainer's own overhead in a sine update, beside forward, backward, clip and the optimizer.

The ``sine`` training (``RNN(RNNCell(1, H)) + Dense(H, 1)``, T=50, H=100, batch 32, Adam,
``ClipByGlobalNorm``, float32) through ``TBPTTTrainer.fit``, one epoch per call, with a
timer around each part the trainer calls (``sectional_timers``):

* forward: ``model.forward`` and ``loss.forward``;
* backward: ``loss.backward`` and ``model.backward``;
* clip: the clipper (its global norm and scaling);
* optimizer: ``optimizer.step`` (Adam's arithmetic).

The overhead is the epoch's time minus those four: everything else ``fit`` does (checking
the data, gathering each shuffled mini-batch, ``zero_grad``, the update guard's copy of the
weights and its finiteness checks, the loss tally, callbacks, progress). The timers' own
cost (two ``perf_counter`` calls per part, about 1 us an update) falls in the overhead, so
the figure is an upper bound. Target: at most 10 % of an update.
"""

import time

from .common import Result, Row, Target, fmt_seconds, timed_block
from .sine import FULL, QUICK, minidl_epoch, sine_windows

PARTS = ("forward", "backward", "clip", "optimizer")
TARGET = Target("<=", 0.10)


def _timed(fn, totals, part):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[part] += time.perf_counter() - start
    return wrapper


def sectional_timers(trainer):
    """Wrap the parts of ``trainer``'s updates in timers; returns the dict of seconds per part.

    The wrappers are instance attributes (``model.forward``, ``loss.backward``, ...), which the
    trainer looks up at each call, so ``fit`` runs unchanged around them.
    """
    totals = dict.fromkeys(PARTS, 0.0)
    model, loss, optimizer = trainer.model, trainer.loss, trainer.optimizer
    model.forward = _timed(model.forward, totals, "forward")
    loss.forward = _timed(loss.forward, totals, "forward")
    loss.backward = _timed(loss.backward, totals, "backward")
    model.backward = _timed(model.backward, totals, "backward")
    trainer.clipper = _timed(trainer.clipper, totals, "clip")
    optimizer.step = _timed(optimizer.step, totals, "optimizer")
    return totals


def split_epoch(epoch, totals, reps):
    """Run ``epoch`` ``reps`` times; returns ``(epoch seconds, {part: seconds}, overhead seconds)``
    of the run with the median epoch time."""
    runs = []
    for _ in range(reps):
        for part in totals:
            totals[part] = 0.0
        start = time.perf_counter()
        epoch()
        seconds = time.perf_counter() - start
        runs.append((seconds, dict(totals)))
    seconds, parts = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    return seconds, parts, seconds - sum(parts.values())


def run(settings):
    size = QUICK if settings.quick else FULL
    n, steps, hidden, batch = size["windows"], size["steps"], size["hidden"], size["batch"]
    x, y = sine_windows(n, steps)
    epoch = minidl_epoch(x, y, hidden, batch)
    totals = sectional_timers(epoch.trainer)
    found = {}

    def block():
        found["split"] = split_epoch(epoch, totals, settings.repetitions(full=5))

    # one timed block (with its warm-up, settle and retries) whose last run's split is kept
    timed_block(block, settings, reps=1, label="trainer overhead")
    seconds, parts, overhead = found["split"]
    updates = -(-n // batch)
    share = overhead / seconds
    per_update = {part: s / updates for part, s in parts.items()}
    label = f"trainer overhead, sine update (T={steps}, H={hidden}, B={batch}, float32)"
    split = ", ".join(f"{part} {fmt_seconds(s)}" for part, s in per_update.items())
    result = Result("overhead")
    result.rows.append(Row(label, "share of an update outside fwd/bwd/clip/optimizer",
                           f"{fmt_seconds(overhead / updates)} per update",
                           f"update {fmt_seconds(seconds / updates)} ({split})", share, TARGET))
    result.raw = {"epoch_seconds": seconds, "updates": updates, "overhead_seconds": overhead, "share": share,
                  "parts_seconds": parts, "windows_per_s": n / seconds, "median_of": settings.repetitions(full=5)}
    return result


def profile_line(raw):
    """The overhead as one line of text, for the profile summary."""
    per = raw["updates"]
    parts = ", ".join(f"{part} {fmt_seconds(s / per)}" for part, s in raw["parts_seconds"].items())
    return (f"trainer overhead: {fmt_seconds(raw['overhead_seconds'] / per)} of a "
            f"{fmt_seconds(raw['epoch_seconds'] / per)} sine update ({raw['share']:.1%}; target <= 10 %); "
            f"timed parts per update: {parts}")

