"""Shared pieces of the benchmarks: timing, table rows and targets, the optional torch, machine info."""

import gc
import math
import os
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

TORCH_THREADS = 2
NOISY = 0.25  # cores used by other processes above which a timed block counts as disturbed
MIN_WINDOW = 0.2  # seconds: shortest block whose outside load is judged
RETRY_PAUSE = 2.0  # seconds to wait before measuring a disturbed block again
RETRY_BUDGET = 180.0  # seconds a whole run may spend on measuring disturbed blocks again


@dataclass
class Settings:
    """What the command line chose: ``quick`` sizes, repetitions (None: each workload's default).

    ``rounds``: how many times the timed blocks of a comparison are repeated in turn
    (A B A B ...), so that a burst of outside load does not fall on one side only.
    ``settle``: seconds of sleep before each timed block. After numpy's BLAS calls,
    OpenBLAS worker threads keep spinning for a while, and on two cores they slow down
    PyTorch's OpenMP threads started right after them (and the reverse); the pause
    lets them go idle so each side is measured on its own.
    ``retries``/``noise``: see ``timed_block``.
    """

    quick: bool = False
    reps: int | None = None
    noise: list = field(default_factory=list)
    retry_seconds: float = 0.0

    @property
    def retries(self):
        """How many times a block measured while the machine was busy is measured again."""
        return 0 if self.quick else 3

    @property
    def rounds(self):
        return 1 if self.quick else 2

    @property
    def settle(self):
        return 0.0 if self.quick else 0.25

    def repetitions(self, full, quick=2):
        """The number of timed repetitions per block (each block starts with a warm-up)."""
        if self.reps is not None:
            return self.reps
        return quick if self.quick else full


@dataclass
class Target:
    """A pass/fail rule on a ratio: ``ratio >= value`` (``op=">="``) or ``ratio <= value``."""

    op: str
    value: float

    def check(self, ratio):
        if ratio is None or not math.isfinite(ratio):
            return None
        return ratio >= self.value if self.op == ">=" else ratio <= self.value

    def __str__(self):
        return f"{self.op} {self.value:g}x" if self.op == ">=" else f"{self.op} {self.value:g}"


@dataclass
class Row:
    """One line of the results table. ``ratio`` is minidl's figure over the reference's."""

    workload: str
    case: str
    minidl: str
    reference: str = "-"
    ratio: float | None = None
    target: Target | None = None
    note: str = ""

    @property
    def passed(self):
        return None if self.target is None else self.target.check(self.ratio)


@dataclass
class Result:
    """What one workload returns: table rows, data for its plot panel(s), raw numbers for JSON."""

    name: str
    rows: list = field(default_factory=list)
    plot: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)


class OutsideLoad:
    """How much CPU other processes used while a block of work ran (Linux ``/proc/stat``).

    ``with OutsideLoad() as load: ...`` then ``load.cores``: the average number of cores
    busy outside this process (machine-wide busy time, hypervisor steal included, minus
    this process's CPU time, over the wall time); None where ``/proc/stat`` is unreadable
    or the block was shorter than ``MIN_WINDOW`` (the counters tick every 10 ms: too
    coarse for shorter blocks). On a two-core machine shared with other jobs this tells
    whether a figure was measured on a quiet machine.
    """

    def __init__(self):
        self.cores = None

    @staticmethod
    def _busy_seconds():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own_seconds():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def __enter__(self):
        self._start = (time.perf_counter(), self._busy_seconds(), self._own_seconds())
        return self

    def __exit__(self, *exc):
        wall0, busy0, own0 = self._start
        busy1 = self._busy_seconds()
        wall = time.perf_counter() - wall0
        if busy0 is not None and busy1 is not None and wall >= MIN_WINDOW:
            self.cores = max(0.0, ((busy1 - busy0) - (self._own_seconds() - own0)) / wall)
        return False


def measure(fn, reps, warmup=1, settle=0.0, collect=True):
    """Run ``fn`` ``warmup`` times untimed, then ``reps`` times; returns the list of seconds.

    Sleeps ``settle`` seconds first (see ``Settings.settle``). With ``collect``, a full
    garbage collection (~0.1 s once PyTorch is loaded) runs before the timed runs, so that
    cycles left by earlier work are not collected inside them.
    """
    if settle:
        time.sleep(settle)
    for _ in range(warmup):
        fn()
    if collect:
        gc.collect()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def timed_block(fn, settings, reps, warmup=1, label=""):
    """``measure`` one block, re-measured when other processes were busy meanwhile.

    The block (including its settle pause) runs inside ``OutsideLoad``; when other
    processes used more than ``NOISY`` cores, it waits and runs again, up to
    ``settings.retries`` times and while the run has spent less than ``RETRY_BUDGET``
    seconds on retries (so a busy machine cannot stretch a run without bound). Retried
    blocks and blocks still disturbed are logged in ``settings.noise``.
    """
    attempt = 0
    while True:
        start = time.perf_counter()
        with OutsideLoad() as load:
            times = measure(fn, reps, warmup, settings.settle, collect=not settings.quick)
        if attempt:
            settings.retry_seconds += time.perf_counter() - start
        clean = load.cores is None or load.cores <= NOISY
        if clean or attempt >= settings.retries or settings.retry_seconds >= RETRY_BUDGET:
            break
        time.sleep(RETRY_PAUSE)
        settings.retry_seconds += RETRY_PAUSE
        attempt += 1
    if attempt or not clean:
        settings.noise.append({"block": label, "retries": attempt, "outside_cores": load.cores, "clean": clean})
    return times


def compare(fns, settings, reps, warmup=1, label=""):
    """Time each of ``fns`` (name -> callable) in blocks, ``settings.rounds`` rounds in turn.

    Returns name -> median seconds over all the timed runs of that name.
    """
    times = {name: [] for name in fns}
    for _ in range(settings.rounds):
        for name, fn in fns.items():
            times[name] += timed_block(fn, settings, reps, warmup, f"{label} {name}".strip())
    return {name: median(t) for name, t in times.items()}


def median(values):
    return float(statistics.median(values))


def loglog_slope(xs, ys):
    """Least-squares slope of ``log(y)`` against ``log(x)``: the exponent ``k`` in ``y ~ x**k``."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    return float(np.polyfit(lx, ly, 1)[0])


_torch = None
_torch_error = None


def load_torch():
    """PyTorch with ``TORCH_THREADS`` intra-op threads, or None (the reason is in ``torch_error()``).

    Imported on first call only, so that minidl and the benchmarks never need it.
    """
    global _torch, _torch_error
    if _torch is None and _torch_error is None:
        try:
            import torch
        except Exception as exc:  # ImportError, or a broken install (missing shared library)
            _torch_error = f"{type(exc).__name__}: {exc}"
        else:
            torch.set_num_threads(TORCH_THREADS)
            _torch = torch
    return _torch


def torch_error():
    return _torch_error


def fmt_seconds(s):
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def fmt_bytes(n):
    for unit, size in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def fmt_ratio(r):
    if r is None or not math.isfinite(r):
        return "-"
    return f"{r:.3g}x" if r < 1000 else f"{r:,.0f}x"


def load_example(name):
    """The module ``examples/<name>.py`` of this repository (the examples are scripts, not a package)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"benchmarks_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_throughput(result, label, fns, n, settings, reps, kinds=("", "")):
    """Time the epochs ``fns`` (``"minidl"``, and ``"torch"`` when PyTorch is there) on ``n``
    examples and add the row "training examples/s vs torch" to ``result``.

    ``kinds``: words after each side's figure (``"(masks)"``, ``"(packed)"``). Without the
    torch side the row says why it is skipped, as every torch row does.
    """
    seconds = compare(fns, settings, reps, label=result.name)
    rates = {name: n / s for name, s in seconds.items()}
    for name, fn in fns.items():
        result.raw[name] = {"epoch_seconds": seconds[name], "examples_per_s": rates[name], "losses": fn.losses}
    mine = f"{rates['minidl']:,.0f} examples/s {kinds[0]}".strip()
    if "torch" not in rates:
        result.rows.append(Row(label, "training examples/s vs torch", mine, "torch not available", note="skipped"))
    else:
        theirs = f"torch {rates['torch']:,.0f} examples/s {kinds[1]}".strip()
        result.rows.append(Row(label, "training examples/s vs torch", mine, theirs, rates["minidl"] / rates["torch"]))
    return rates


def torch_training_epoch(torch, n, batch, seed, params, optimizer, max_norm, loss_of):
    """PyTorch's usual training loop as an epoch function: each call shuffles ``range(n)`` and, per
    mini-batch ``idx``, takes ``loss = loss_of(idx)``, then zero_grad, backward,
    ``clip_grad_norm_(params, max_norm)``, step and ``loss.item()``. The epoch's mean loss is
    appended to ``epoch.losses``; ``epoch.params`` holds the parameters."""
    rng = np.random.default_rng(seed)
    losses = []

    def epoch():
        order = torch.from_numpy(rng.permutation(n))
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            loss = loss_of(idx)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, max_norm)
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / n)

    epoch.losses, epoch.params = losses, params
    return epoch


def with_torch(fns, workload, make):
    """``fns`` with ``fns["torch"] = make(torch)`` when PyTorch is importable; else prints why
    ``workload``'s PyTorch reference is skipped and returns ``fns`` as it is."""
    torch = load_torch()
    if torch is None:
        print(f"note: {workload}: PyTorch reference skipped ({torch_error()})")
    else:
        fns["torch"] = make(torch)
    return fns
