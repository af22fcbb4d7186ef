"""Workload 2: forward + backward of one batch through a recurrent layer, minidl against PyTorch.

A batch ``x: (32, 50, 65)`` through RNN (tanh), LSTM and GRU layers of 128 units returning
the whole sequence, then backward from a fixed output gradient ``g: (32, 50, 128)`` (what
``(out * g).sum().backward()`` gives): gradients of every parameter and of the input.
Each repetition also zeroes the parameter gradients first, on both sides.

* minidl: ``RNN(cell, return_sequences=True)``: ``zero_grad``, ``forward(x)``, ``backward(g)``.
* PyTorch: ``nn.RNN / nn.LSTM / nn.GRU(batch_first=True)`` on an input that requires grad:
  ``zero_grad(set_to_none=True)``, forward, ``out.backward(g)``.

Figure: median seconds per batch, and the ratio minidl / torch (below 1: minidl faster).
The target (<= 1.0) applies to float32; float64 is reported for information.

For the LSTM in float32 a numpy floor is timed in the same blocks: its matrix products
alone in the faster of two layouts (``benchmarks.floors.lstm_matmuls``) plus its gate
arithmetic alone (``benchmarks.floors.lstm_gate_arithmetic``), a lower bound for any
numpy LSTM.
"""

import numpy as np

import minidl as mdl

from .common import Result, Row, Target, compare, fmt_seconds, load_torch, torch_error
from .floors import lstm_gate_arithmetic, lstm_matmuls

FULL = {"batch": 32, "steps": 50, "features": 65, "hidden": 128}
QUICK = {"batch": 4, "steps": 8, "features": 5, "hidden": 8}
CELLS = ("RNN", "LSTM", "GRU")
DTYPES = (np.float32, np.float64)


def minidl_step(kind, x, g, hidden, seed=0, mask=None):
    """One ``zero_grad``, ``forward(x)`` (with ``mask`` when given), ``backward(g)``."""
    mdl.set_seed(seed)
    cell = {"RNN": mdl.RNNCell, "LSTM": mdl.LSTMCell, "GRU": mdl.GRUCell}[kind](x.shape[2], hidden)
    layer = mdl.RNN(cell, return_sequences=True).astype(x.dtype)
    masked = {} if mask is None else {"mask": mask}

    def step():
        layer.zero_grad()
        layer.forward(x, **masked)
        layer.backward(g)

    return step


def torch_step(torch, kind, x, g, hidden, seed=0):
    torch.manual_seed(seed)
    dtype = torch.float32 if x.dtype == np.float32 else torch.float64
    layer = getattr(torch.nn, kind)(x.shape[2], hidden, batch_first=True).to(dtype)
    xt = torch.from_numpy(x).requires_grad_(True)
    gt = torch.from_numpy(g)

    def step():
        layer.zero_grad(set_to_none=True)
        xt.grad = None
        out, _ = layer(xt)
        out.backward(gt)

    return step


def run(settings):
    size = QUICK if settings.quick else FULL
    reps = settings.repetitions(full=15, quick=3)
    B, T, F, H = size["batch"], size["steps"], size["features"], size["hidden"]
    torch = load_torch()
    if torch is None:
        print(f"note: forward_backward: PyTorch reference skipped ({torch_error()})")
    result = Result("forward_backward")
    rng = np.random.default_rng(0)
    x64, g64 = rng.standard_normal((B, T, F)), rng.standard_normal((B, T, H))
    bars = []
    for kind in CELLS:
        for dtype in DTYPES:
            x, g = x64.astype(dtype), g64.astype(dtype)
            name = np.dtype(dtype).name
            fns = {"minidl": minidl_step(kind, x, g, H)}
            if torch is not None:
                fns["torch"] = torch_step(torch, kind, x, g, H)
            floor = kind == "LSTM" and dtype is np.float32
            if floor:
                fns.update({f"floor matmuls {k}": f for k, f in lstm_matmuls(B, T, F, H, dtype).items()})
                fns["floor gates"] = lstm_gate_arithmetic(B, T, H, dtype)
            seconds = compare(fns, settings, reps, warmup=2, label=f"{kind} {name}")
            t_minidl, t_torch = seconds["minidl"], seconds.get("torch")
            # issue 14: RNN and GRU at most PyTorch's time, the LSTM within its numpy floor (1.35-1.40x)
            target = (Target("<=", 1.4 if kind == "LSTM" else 1.0)) if dtype is np.float32 else None
            label = f"forward+backward {kind} ({B}x{T}, in {F}, H {H}, {name})"
            if t_torch is None:
                row = Row(label, "time per batch", fmt_seconds(t_minidl), "torch not available", None, target,
                          note="skipped")
            else:
                row = Row(label, "time per batch", fmt_seconds(t_minidl), f"torch {fmt_seconds(t_torch)}",
                          t_minidl / t_torch, target)
            result.rows.append(row)
            result.raw[f"{kind}-{name}"] = {f"{k}_seconds": v for k, v in seconds.items()}
            if floor:
                result.rows.append(_floor_row(seconds, t_torch, f"LSTM numpy floor ({B}x{T}, in {F}, H {H}, {name})"))
            bars.append((f"{kind}\n{name}", t_minidl, t_torch))
    result.plot = {"bars": bars}
    return result


def _floor_row(seconds, t_torch, label):
    """The row of the LSTM's floor: matmuls in the faster layout plus gate arithmetic, against torch."""
    layouts = {k.split(" ", 2)[2]: v for k, v in seconds.items() if k.startswith("floor matmuls ")}
    best = min(layouts, key=layouts.get)
    gates = seconds["floor gates"]
    floor = layouts[best] + gates
    figure = f"{fmt_seconds(floor)} = {fmt_seconds(layouts[best])} + {fmt_seconds(gates)}"
    note = ("floor = matrix products alone in the faster layout + gate arithmetic alone (feature-major); matmuls "
            + ", ".join(f"{k} {fmt_seconds(v)}" for k, v in layouts.items()))
    if t_torch is None:
        return Row(label, "time per batch", figure, "torch not available", None, None, note="skipped")
    return Row(label, "time per batch", figure, f"torch {fmt_seconds(t_torch)}", floor / t_torch, None, note=note)
