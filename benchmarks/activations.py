"""Workload: the forms of sigmoid and tanh, timed and checked for accuracy.

On a ``(32, 512)`` array (the gate block of the LSTM in ``forward_backward``), float32 and
float64, each written with ``out=`` buffers so that no form pays for allocations:

* sigmoid, minidl's form ``0.5 * (1 + tanh(x / 2))`` (``minidl._math.sigmoid``, four
  calls, one transcendental) against the textbook ``1 / (1 + exp(-x))`` (four calls);
* tanh, ``np.tanh`` against ``2 / (1 + exp(-2x)) - 1`` (five calls);
* the LSTM gate block, minidl's one ``tanh`` over the whole block then ``* scale + shift``
  (the sigmoid columns pre-scaled by 1/2) against ``sigmoid`` on the three sigmoid
  blocks and ``tanh`` on the fourth.

Accuracy: the largest absolute error against a reference in ``np.longdouble``, on 200,001
points in [-100, 100] (exp overflows float32 beyond 88) and 2,001 in [-1e-3, 1e-3], in units of the dtype's machine epsilon,
and whether a form raises overflow warnings. Figure: nanoseconds per element (median of
blocks), ratio minidl / alternative.
"""

import numpy as np

from minidl._math import sigmoid

from .common import Result, Row, compare

SHAPE = (32, 512)


def sigmoid_exp(x, out):
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def tanh_exp(x, out):
    np.multiply(x, -2.0, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.divide(2.0, out, out=out)
    out -= 1.0
    return out


def gates_one_tanh(z, out, scale, shift):
    np.tanh(np.multiply(z, scale, out=out), out=out)  # in minidl the scale is folded into the weights
    out *= scale
    out += shift
    return out


def gates_per_block(z, out, H):
    for k in (0, 1, 3):
        sigmoid_exp(z[:, k * H:(k + 1) * H], out[:, k * H:(k + 1) * H])
    np.tanh(z[:, 2 * H:3 * H], out=out[:, 2 * H:3 * H])
    return out


FORMS = {
    "sigmoid": ("0.5 * (1 + tanh(x / 2))", lambda x, out: sigmoid(x, out=out),
                "1 / (1 + exp(-x))", sigmoid_exp,
                lambda x: 1 / (1 + np.exp(-x))),
    "tanh": ("np.tanh", lambda x, out: np.tanh(x, out=out),
             "2 / (1 + exp(-2x)) - 1", tanh_exp,
             np.tanh),
}


def accuracy(fn, reference, dtype):
    """(largest absolute error in units of eps, overflow warning raised?) of ``fn`` in ``dtype``."""
    x = np.concatenate([np.linspace(-100, 100, 200_001), np.linspace(-1e-3, 1e-3, 2_001)]).astype(dtype)
    ref = reference(x.astype(np.longdouble))
    warned = False
    with np.errstate(over="raise"):
        try:
            y = fn(x, np.empty_like(x))
        except FloatingPointError:
            warned = True
    if warned:
        with np.errstate(over="ignore"):
            y = fn(x, np.empty_like(x))
    err = float(np.max(np.abs(y.astype(np.longdouble) - ref)))
    return err / float(np.finfo(dtype).eps), warned


def run(settings):
    reps = settings.repetitions(full=2000, quick=3)
    result = Result("activations")
    rng = np.random.default_rng(0)
    z64 = rng.standard_normal(SHAPE) * 3
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        z = z64.astype(dtype)
        out = np.empty_like(z)
        for fname, (mine, f_mine, theirs, f_theirs, reference) in FORMS.items():
            with np.errstate(over="ignore"):
                seconds = compare({"minidl": lambda: f_mine(z, out), "alt": lambda: f_theirs(z, out)},
                                  settings, reps, label=f"{fname} {name}")
            acc_mine, acc_theirs = accuracy(f_mine, reference, dtype), accuracy(f_theirs, reference, dtype)
            result.rows.append(_row(f"{fname} {name} {SHAPE}", mine, theirs, seconds, z.size, acc_mine, acc_theirs))
            result.raw[f"{fname}-{name}"] = {**seconds, "error_eps": acc_mine[0], "alt_error_eps": acc_theirs[0]}
        H = SHAPE[1] // 4
        scale = np.full(SHAPE[1], 0.5, dtype)
        scale[2 * H:3 * H] = 1.0
        shift = np.where(scale == 0.5, 0.5, 0.0).astype(dtype)
        with np.errstate(over="ignore"):
            seconds = compare({"minidl": lambda: gates_one_tanh(z, out, scale, shift),
                               "alt": lambda: gates_per_block(z, out, H)}, settings, reps, label=f"gates {name}")
        result.rows.append(_row(f"LSTM gate block {name} {SHAPE}", "one tanh, then * scale + shift",
                                "3 exp-form sigmoids + 1 tanh", seconds, z.size))
        result.raw[f"gates-{name}"] = seconds
    return result


def _row(label, mine, theirs, seconds, size, acc_mine=None, acc_theirs=None):
    ns = {k: v / size * 1e9 for k, v in seconds.items()}
    note = ""
    if acc_mine is not None:
        def describe(acc):
            return f"max error {acc[0]:.2f} eps" + (", overflow warnings" if acc[1] else "")
        note = f"{mine}: {describe(acc_mine)}; {theirs}: {describe(acc_theirs)}"
    return Row(label, "ns per element", f"{ns['minidl']:.2f} ns ({mine})", f"{ns['alt']:.2f} ns ({theirs})",
               seconds["minidl"] / seconds["alt"], None, note=note)
