"""Soak: 20,000 TBPTT updates on a stream, watching traced memory and resume drift.

``Sequential([RNN(LSTMCell(1, H), return_sequences=True), Dense(H, 1)])`` trained many-to-many
with ``TBPTTTrainer(k1, k2)``, Adam and global-norm clipping, on a batch of streams
(``memory.stream``). Every epoch makes ``steps / k1`` updates; the run makes 20,000.

Two figures:

- **Memory growth.** ``tracemalloc`` runs for the whole soak, one ``fit`` call per epoch
  (so the per-epoch ``History`` of a single long ``fit``, which grows by design, is not
  counted); after every epoch the traced memory in use is written into an array made
  before tracing started. The figure is the largest reading of the second half of the
  run over the largest of the first ten epochs (after a warm-up epoch): a leak of even a
  few bytes per update would show as a ratio that grows with the run. Target <= 1.05.
- **Resume drift.** The same training run once straight through, and once stopped half
  way, saved with ``save_checkpoint``, loaded into a freshly built trainer and finished.
  The figure is the largest absolute difference between the two final weight sets;
  target: exactly 0 (bit-identical).
"""

import os
import tempfile
import tracemalloc

import numpy as np

import minidl as mdl

from .common import Result, Row, Target, fmt_bytes
from .memory import stream

FULL = {"batch": 4, "hidden": 16, "k1": 10, "k2": 20, "steps": 2000, "updates": 20000}
QUICK = {"batch": 2, "hidden": 4, "k1": 5, "k2": 10, "steps": 100, "updates": 200}


def _trainer(size, seed=0):
    mdl.set_seed(seed)
    H = size["hidden"]
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(1, H), return_sequences=True), mdl.Dense(H, 1)])
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=1e-3),
                               clipper=mdl.ClipByGlobalNorm(5.0), k1=size["k1"], k2=size["k2"], seed=seed)
    return model, trainer


def memory_growth(size):
    """(ratio of late to early traced memory, early bytes, late bytes, readings)."""
    x, y = stream(size["batch"], size["steps"])
    epochs = size["updates"] // (size["steps"] // size["k1"])
    model, trainer = _trainer(size)
    trainer.fit(x, y, epochs=1, batch_size=size["batch"], shuffle=False, verbose=0)  # warm-up: optimizer state
    readings = np.zeros(epochs, dtype=np.int64)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        for epoch in range(epochs):
            trainer.fit(x, y, epochs=1, batch_size=size["batch"], shuffle=False, verbose=0)
            readings[epoch] = tracemalloc.get_traced_memory()[0]
    finally:
        if not was_tracing:
            tracemalloc.stop()
    early = int(readings[1:min(11, epochs)].max() if epochs > 1 else readings[0])
    late = int(readings[epochs // 2:].max())
    return late / early, early, late, readings.tolist()


def resume_drift(size):
    """Largest |difference| between straight-through and save/load-resumed final weights."""
    x, y = stream(size["batch"], size["steps"])
    epochs = size["updates"] // (size["steps"] // size["k1"])
    straight, trainer = _trainer(size)
    trainer.fit(x, y, epochs=epochs, batch_size=size["batch"], verbose=0)
    first, trainer = _trainer(size)
    trainer.fit(x, y, epochs=epochs // 2, batch_size=size["batch"], verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "soak.npz")
        trainer.save_checkpoint(path)
        resumed, trainer = _trainer(size, seed=1)  # a different fresh start must not matter
        trainer.load_checkpoint(path)
    trainer.fit(x, y, epochs=epochs - epochs // 2, batch_size=size["batch"], verbose=0)
    a, b = straight.state_dict(), resumed.state_dict()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def run(settings):
    size = QUICK if settings.quick else FULL
    result = Result("soak")
    ratio, early, late, readings = memory_growth(size)
    drift = resume_drift(size)
    label = (f"soak: {size['updates']:,} TBPTT({size['k1']}, {size['k2']}) updates "
             f"(LSTM {size['hidden']}, B={size['batch']}, stream of {size['steps']:,} steps)")
    result.rows.append(Row(label, "traced memory in use, late / early", fmt_bytes(late), fmt_bytes(early),
                           ratio, Target("<=", 1.05)))
    result.rows.append(Row(label, "resumed vs straight run: largest weight difference", f"{drift:.3g}", "0",
                           drift, Target("<=", 0.0)))
    result.raw = {"readings": readings, "drift": drift}
    return result
