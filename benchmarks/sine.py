"""Workload 1: training throughput on the article's task (windows of a sine wave -> next value).

The same model three ways, float32, Adam(lr=1e-3), global-norm clip at 5, batches of 32,
MSE on the value after each window (many-to-one):

* minidl: ``Sequential([RNN(RNNCell(1, H)), Dense(H, 1)])`` through ``TBPTTTrainer.fit``
  (one epoch per call, ``verbose=0``);
* PyTorch: ``nn.RNN(1, H, batch_first=True)`` + ``nn.Linear(H, 1)``, the usual loop
  (zero_grad, backward, ``clip_grad_norm_``, step, ``loss.item()``);
* the article's code: ``benchmarks.article``, the seed article's own training loop (per
  record, per step, truncation 5, its loss passes over the training and validation windows
  each epoch), timed on a subset with the article's 2:1 split; the ">= 100x" target is
  against it;
* naive: ``benchmarks.naive.NaiveRNN``, one window and one step at a time with a correct
  backward pass (a tuned per-sample loop). It is slow, so it is timed on a subset of the
  windows and its rate (windows per second) compared.
* floor: ``benchmarks.floors.rnn_recurrence``, the bare recurrence of one batch with
  nothing else; its rate over the naive loop's is the most any numpy design can reach.

Figure: windows per second (epoch size / median epoch time). The training functions are
also used by the scaling workload.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np

import minidl as mdl

from .common import (NOISY, OutsideLoad, Result, Row, Target, compare, median, timed_block,
                     torch_training_epoch, with_torch)
from . import article
from .floors import rnn_recurrence
from .naive import NaiveRNN

FULL = {"windows": 2048, "steps": 50, "hidden": 100, "batch": 32, "naive_windows": 128, "article_windows": 40}
QUICK = {"windows": 128, "steps": 20, "hidden": 16, "batch": 32, "naive_windows": 16, "article_windows": 4}
MAX_NORM = 5.0
SINE_VS_TORCH = 3.0  # issue 14: at least 3x PyTorch's windows/s (round 1: 2.5x)


def sine_windows(n, steps, dtype=np.float32):
    """``x: (n, steps, 1)`` windows of ``sin(0), sin(1), ...`` and ``y: (n, 1)`` the value after each."""
    series = np.sin(np.arange(n + steps, dtype=np.float64))
    idx = np.arange(n)[:, None] + np.arange(steps)[None, :]
    return series[idx][..., None].astype(dtype), series[steps:steps + n, None].astype(dtype)


def minidl_epoch(x, y, hidden, batch, seed=0, cell="rnn"):
    """A function running one training epoch of minidl on ``(x, y)`` (the model persists across calls)."""
    mdl.set_seed(seed)
    features = x.shape[2]
    make = {"rnn": mdl.RNNCell, "lstm": mdl.LSTMCell, "gru": mdl.GRUCell}[cell]
    model = mdl.Sequential([mdl.RNN(make(features, hidden)), mdl.Dense(hidden, y.shape[1])])
    model.astype(x.dtype)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=1e-3),
                               clipper=mdl.ClipByGlobalNorm(MAX_NORM), seed=seed)
    losses = []

    def epoch():
        history = trainer.fit(x, y, epochs=1, batch_size=batch, verbose=0)
        losses.append(history.history["loss"][-1])

    epoch.losses, epoch.trainer = losses, trainer
    return epoch


def torch_epoch(torch, x, y, hidden, batch, seed=0):
    """The PyTorch equivalent of ``minidl_epoch`` (same model, optimizer, clipping, shuffling)."""
    nn = torch.nn
    torch.manual_seed(seed)
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[x.dtype]
    rnn = nn.RNN(x.shape[2], hidden, batch_first=True).to(dtype)
    head = nn.Linear(hidden, y.shape[1]).to(dtype)
    params = list(rnn.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3)
    loss_fn = nn.MSELoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def loss_of(idx):
        _, h_n = rnn(xt[idx])
        return loss_fn(head(h_n[-1]), yt[idx])

    return torch_training_epoch(torch, len(xt), batch, seed, params, optimizer, MAX_NORM, loss_of)


def plain_fit_rate(n, steps, hidden, batch, epochs):
    """Windows per second of ``epochs`` calls of ``fit(epochs=1)`` timed one after another after one
    warm-up epoch: the loop a user's script runs, with no pause, collection or other library between."""
    x, y = sine_windows(n, steps)
    epoch = minidl_epoch(x, y, hidden, batch)
    epoch()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return n / median(times)


def user_process_rate(size, epochs):
    """``plain_fit_rate`` in a fresh Python process that never imports PyTorch (``sys.modules["torch"]
    = None``), as a user's training script; None if that process fails."""
    args = json.dumps([size["windows"], size["steps"], size["hidden"], size["batch"], epochs])
    code = ("import sys, json; sys.modules['torch'] = None; from benchmarks.sine import plain_fit_rate; "
            f"print(json.dumps(plain_fit_rate(*json.loads({args!r}))))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        print(f"note: sine: the user-process measurement failed: {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return float(proc.stdout.strip().splitlines()[-1])


def run(settings):
    size = QUICK if settings.quick else FULL
    reps = settings.repetitions(full=5)
    n, steps, hidden, batch = size["windows"], size["steps"], size["hidden"], size["batch"]
    x, y = sine_windows(n, steps)
    label = f"sine training (T={steps}, H={hidden}, B={batch}, float32)"
    result = Result("sine")

    fns = with_torch({"minidl": minidl_epoch(x, y, hidden, batch)}, "sine",
                     lambda torch: torch_epoch(torch, x, y, hidden, batch))
    seconds = compare(fns, settings, reps, label="sine")
    rates = {name: n / s for name, s in seconds.items()}
    for name, fn in fns.items():
        result.raw[name] = {"epoch_seconds": seconds[name], "windows_per_s": rates[name], "losses": fn.losses}
    mine = f"{rates['minidl']:,.0f} /s"
    if "torch" not in fns:
        result.rows.append(Row(label, "windows/s vs torch", mine, "torch not available", None, Target(">=", SINE_VS_TORCH),
                               note="skipped"))
    else:
        result.rows.append(Row(label, "windows/s vs torch", mine, f"torch {rates['torch']:,.0f} /s",
                               rates["minidl"] / rates["torch"], Target(">=", SINE_VS_TORCH)))

    user = None
    for _ in range(settings.rounds):
        with OutsideLoad() as load:
            user = user_process_rate(size, reps)
        if user is None or load.cores is None or load.cores <= NOISY:
            break
    result.raw["user_process"] = {"windows_per_s": user, "outside_cores": load.cores}
    if user is not None:
        result.rows.append(Row(label, "bench's minidl figure vs a user's fit loop", mine,
                               f"user process {user:,.0f} /s", rates["minidl"] / user, None,
                               note=f"user process: {reps} calls of fit(epochs=1) in a fresh process without "
                                    "PyTorch, timed back to back (benchmarks.sine.plain_fit_rate); a ratio "
                                    "well below 1 means the harness, not minidl, slows the sine figure down"))

    m = size["naive_windows"]
    naive = NaiveRNN(x.shape[2], hidden, y.shape[1], dtype=np.float32, max_norm=MAX_NORM)
    order = np.random.default_rng(0)
    t_naive = median(timed_block(lambda: naive.fit_epoch(x[:m], y[:m], batch, order), settings,
                                 settings.repetitions(full=3), label="sine naive"))
    rates["naive"] = m / t_naive
    result.raw["naive"] = {"subset_windows": m, "subset_seconds": t_naive, "windows_per_s": rates["naive"]}
    result.rows.append(Row(label, "windows/s vs naive", mine, f"naive {rates['naive']:,.0f} /s ({m} of {n} windows)",
                           rates["minidl"] / rates["naive"], None))

    a = size["article_windows"]
    train, val = slice(0, a), slice(a, a + a // 2)
    t_article = median(timed_block(article.training_epoch(x[train], y[train], x[val], y[val], hidden), settings,
                                   settings.repetitions(full=3), label="sine article"))
    rates["article"] = a / t_article
    result.raw["article"] = {"subset_windows": a, "validation_windows": a // 2, "subset_seconds": t_article,
                             "windows_per_s": rates["article"]}
    result.rows.append(Row(label, "windows/s vs the article's code", mine,
                           f"article {rates['article']:,.0f} /s ({a} + {a // 2} windows)",
                           rates["minidl"] / rates["article"], Target(">=", 100),
                           note="the article's code: benchmarks/article.py, its training loop as its algorithm runs "
                                "(per record and step, truncation 5, loss passes over both splits each epoch)"))

    t_floor = median(timed_block(rnn_recurrence(batch, steps, hidden), settings,
                                 settings.repetitions(full=200, quick=3), label="sine floor"))
    rates["floor"] = batch / t_floor
    result.raw["floor"] = {"batch_seconds": t_floor, "windows_per_s": rates["floor"]}
    result.rows.append(Row(label, "numpy floor vs naive", f"floor {rates['floor']:,.0f} /s",
                           f"naive {rates['naive']:,.0f} /s", rates["floor"] / rates["naive"], None,
                           note="floor = the bare tanh recurrence alone (forward + backward, 5 numpy calls a step; "
                                "no loss, output layer, weight gradients or update): the most any numpy design "
                                "can reach over the naive loop"))
    result.plot = {"rates": rates}
    return result
