"""Workload 3: peak memory of TBPTT(50, 100) on one long stream, short against long.

``Sequential([RNN(LSTMCell(1, 64), return_sequences=True), Dense(64, 1)])`` trained many-to-many
with ``TBPTTTrainer(k1=50, k2=100)``, Adam and global-norm clipping, on a batch of 8 streams
``x: (8, T, 1)`` (next-value targets), one epoch of ``fit``. Every update backpropagates
through at most ``k2`` steps, so the working memory should not depend on ``T``: the only
parts that grow with ``T`` are the data themselves (allocated before measuring) and
whatever the trainer derives from them (validation temporaries, say).

Measured with ``tracemalloc``, which sees numpy's array buffers (numpy reports its
allocations to it) and every Python object: the peak of traced memory during ``fit``,
counted from the start of the call. A short warm-up fit on the same trainer first
creates the optimizer state, so the figure is the training loop's own working memory.
Figure: the two peaks and their ratio peak(long) / peak(short), target <= 1.5.

Two more rows measure inference without history, the peak of one many-to-one forward of
``RNN(LSTMCell(1, 32))`` (+ ``Dense(32, 1)`` for ``predict``) in float64 on ``x: (2, T, 1)``
at T = 1,000 and 100,000 (the input, 1.5 MiB at 100,000 steps, is allocated before
measuring): under ``no_grad``, and through ``Sequential.predict``. RNN runs such a forward
in chunks of ``time_chunk`` steps, so the peaks do not grow with T (projecting every step's
input at once took 29.5 MiB at 10,000 steps and 294.5 MiB at 100,000). Target <= 1.5.
"""

import time
import tracemalloc

import numpy as np

import minidl as mdl

from .common import Result, Row, Target, fmt_bytes

FULL = {"batch": 8, "hidden": 64, "k1": 50, "k2": 100, "short": 1000, "long": 20000}
QUICK = {"batch": 2, "hidden": 8, "k1": 10, "k2": 20, "short": 100, "long": 400}
NO_GRAD_STEPS = {"full": (1_000, 100_000), "quick": (200, 2_000)}


def stream(batch, steps, dtype=np.float32):
    """``x, y: (batch, steps, 1)``: noisy sines with different phases, ``y`` the next value of ``x``."""
    rng = np.random.default_rng(0)
    t = np.arange(steps + 1)[None, :] * 0.1 + rng.uniform(0, 2 * np.pi, (batch, 1))
    s = np.sin(t) + 0.05 * rng.standard_normal(t.shape)
    return s[:, :-1, None].astype(dtype), s[:, 1:, None].astype(dtype)


def traced_peak(run):
    """(peak traced bytes beyond those in use before, seconds) of ``run()``."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        return tracemalloc.get_traced_memory()[1] - base, seconds
    finally:
        if not was_tracing:
            tracemalloc.stop()


def peak_of_no_grad_forward(steps, seed=0, predict=False):
    """(peak traced bytes, seconds) of one many-to-one LSTM 32 forward under ``no_grad``, batch 2
    (``predict``: of ``Sequential([RNN, Dense(32, 1)]).predict`` instead)."""
    mdl.set_seed(seed)
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(1, 32)), mdl.Dense(32, 1)]).astype(np.float64)
    x = np.random.default_rng(seed).standard_normal((2, steps, 1))

    def forward():
        if predict:
            model.predict(x)
        else:
            with mdl.no_grad():
                model.layers[0].forward(x)
    return traced_peak(forward)


def peak_of_fit(size, steps, seed=0):
    """(peak traced bytes, seconds) of one epoch of ``fit`` on a stream of ``steps`` steps."""
    mdl.set_seed(seed)
    H = size["hidden"]
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(1, H), return_sequences=True), mdl.Dense(H, 1)])
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=1e-3),
                               clipper=mdl.ClipByGlobalNorm(5.0), k1=size["k1"], k2=size["k2"], seed=seed)
    wx, wy = stream(size["batch"], 2 * size["k2"])
    trainer.fit(wx, wy, epochs=1, batch_size=size["batch"], shuffle=False, verbose=0)
    x, y = stream(size["batch"], steps)
    return traced_peak(lambda: trainer.fit(x, y, epochs=1, batch_size=size["batch"], shuffle=False, verbose=0))


def run(settings):
    size = QUICK if settings.quick else FULL
    result = Result("memory")
    peaks = {}
    for steps in (size["short"], size["long"]):
        peak, seconds = peak_of_fit(size, steps)
        peaks[steps] = peak
        result.raw[str(steps)] = {"peak_bytes": peak, "seconds_under_tracemalloc": seconds}
    short, long = size["short"], size["long"]
    ratio = peaks[long] / peaks[short]
    label = (f"TBPTT({size['k1']}, {size['k2']}) memory (LSTM {size['hidden']}, B={size['batch']}, "
             f"{short:,} vs {long:,} steps)")
    data_bytes = 2 * size["batch"] * long * 4
    result.rows.append(Row(label, "peak traced memory of fit", f"{long:,} steps: {fmt_bytes(peaks[long])}",
                           f"{short:,} steps: {fmt_bytes(peaks[short])}", ratio, Target("<=", 1.5),
                           note=f"x+y of {long:,} steps hold {fmt_bytes(data_bytes)} (outside the peak)"))
    a, b = NO_GRAD_STEPS["quick" if settings.quick else "full"]
    for kind, predict in (("no_grad", False), ("predict", True)):
        inference = {}
        for steps in (a, b):
            peak, seconds = peak_of_no_grad_forward(steps, predict=predict)
            inference[steps] = peak
            result.raw[f"{kind}_{steps}"] = {"peak_bytes": peak, "seconds_under_tracemalloc": seconds}
        what = "a forward under no_grad" if kind == "no_grad" else "Sequential.predict"
        result.rows.append(Row(f"inference memory (LSTM 32, B=2, float64, {a:,} vs {b:,} steps)",
                               f"peak traced memory of {what}", f"{b:,} steps: {fmt_bytes(inference[b])}",
                               f"{a:,} steps: {fmt_bytes(inference[a])}", inference[b] / inference[a],
                               Target("<=", 1.5)))
    result.plot = {"peaks": peaks}
    return result
