"""LSTMCell: golden values, a scalar reference, the gate order, torch.nn.LSTM, gradient checks
of the fused path and of the readable steps, parameter shapes and initialization."""

import math

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import (
    GRADCHECK_SIZES,
    TORCH_SIZES,
    X_GOLDEN,
    assert_default_init,
    assert_golden,
    column,
    constant_weights,
    random_state,
    record_torch_errors,
    report_torch_errors,
    run_with_random_weights,
    scalar_sequences,
    scalar_sigmoid as sig,
    rnn_gradcheck,
    steps_gradcheck,
    torch_errors,
)
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, BAD_X2


def scalar_step(cell):
    """One LSTM step by scalar arithmetic on Python lists (blocks i, f, g, o)."""
    K, U, b = cell.kernel.data.tolist(), cell.recurrent_kernel.data.tolist(), cell.bias.data.tolist()
    H = cell.hidden_size

    def step(x, state):
        h, c = state
        z = [column(x, K, j) + column(h, U, j) + b[j] for j in range(4 * H)]
        c = [sig(z[H + j]) * c[j] + sig(z[j]) * math.tanh(z[2 * H + j]) for j in range(H)]
        h = [sig(z[3 * H + j]) * math.tanh(c[j]) for j in range(H)]
        return h, c

    return step


# ---- golden values from constant weights, computed by hand -------------------------------
def golden_rows(H=2):
    """x @ kernel = 0.1 * sum(x_t), h @ recurrent_kernel = 0.2 * H * h: two steps per row."""
    rows = []
    for xb in X_GOLDEN.tolist():
        z1 = 0.1 * sum(xb[0]) + 0.05  # i = f = o = sigmoid(z1), g = tanh(z1); c0 = 0
        c1 = sig(z1) * math.tanh(z1)
        h1 = sig(z1) * math.tanh(c1)
        z2 = 0.1 * sum(xb[1]) + 0.2 * H * h1 + 0.05
        c2 = sig(z2) * c1 + sig(z2) * math.tanh(z2)
        h2 = sig(z2) * math.tanh(c2)
        rows.append([[h1] * H, [h2] * H])
    return np.array(rows)


def test_golden_values_constant_weights(float64):
    assert_golden(constant_weights(mdl.LSTMCell(3, 2)), golden_rows())


# ---- a scalar reference with random weights ----------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_scalar_reference_random_weights(float64, seed):
    """Random (non-symmetric) weights and initial state: checks the layout and the gate
    blocks element by element against plain-Python arithmetic."""
    mdl.set_seed(seed)
    cell = mdl.LSTMCell(3, 4)
    x, state, y, final = run_with_random_weights(cell, seed)
    expected, expected_final = scalar_sequences(x.tolist(), [s.tolist() for s in state], scalar_step(cell))
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)
    for got, want in zip(final, expected_final):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_cell_forward_is_one_step(float64, rng):
    cell = mdl.LSTMCell(3, 2)
    x = rng.standard_normal((4, 3))
    state = random_state(cell, 4, rng)
    h, c = cell.forward(x, state)
    _, final = scalar_sequences(x[:, None].tolist(), [s.tolist() for s in state], scalar_step(cell))
    np.testing.assert_allclose(h, final[0], atol=1e-12)
    np.testing.assert_allclose(c, final[1], atol=1e-12)
    h0, c0 = cell.forward(x)  # zero state by default
    _, final0 = scalar_sequences(x[:, None].tolist(), [np.zeros((4, 2)).tolist()] * 2, scalar_step(cell))
    np.testing.assert_allclose(h0, final0[0], atol=1e-12)
    np.testing.assert_allclose(c0, final0[1], atol=1e-12)


# ---- gate order ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pre, effect",
    [
        ({"f": -30.0}, lambda h, c: abs(c) < 1e-6),  # forget gate shut: c0 = 1 is dropped
        ({"f": 30.0}, lambda h, c: abs(c - 1.0) < 1e-6),  # forget gate open: c0 kept (g = 0)
        ({"i": -30.0, "g": 1.0}, lambda h, c: abs(c - 0.5) < 1e-6),  # input gate shut: no g
        ({"i": 30.0, "g": 1.0}, lambda h, c: abs(c - 0.5 - math.tanh(1)) < 1e-6),
        ({"g": 30.0}, lambda h, c: abs(c - 1.0) < 1e-6),  # 0.5 * c0 + 0.5 * 1
        ({"o": -30.0}, lambda h, c: abs(h) < 1e-6 and c == 0.5),  # output gate shut
        ({"o": 30.0}, lambda h, c: abs(h - math.tanh(0.5)) < 1e-6),
    ],
)
def test_lstm_gate_order(float64, pre, effect):
    H = 2
    cell = mdl.LSTMCell(1, H)
    for p in cell.parameters():
        p.data[...] = 0.0
    blocks = "ifgo"
    for name, value in pre.items():
        k = blocks.index(name)
        cell.bias.data[k * H:(k + 1) * H] = value
    z = {name: pre.get(name, 0.0) for name in blocks}
    c1 = sig(z["f"]) * 1.0 + sig(z["i"]) * math.tanh(z["g"])
    h1 = sig(z["o"]) * math.tanh(c1)
    assert effect(h1, c1)
    rnn = mdl.RNN(cell)
    rnn.set_state((np.zeros((1, H)), np.ones((1, H))))
    h = rnn.forward(np.array([[[0.7]]]))
    h_final, c_final = rnn.state_at(1)
    np.testing.assert_allclose(h, [[h1] * H], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c_final, [[c1] * H], rtol=0, atol=1e-12)
    h_step, c_step = cell.forward(np.array([[0.7]]), (np.zeros((1, H)), np.ones((1, H))))  # the readable step
    np.testing.assert_allclose(h_step, [[h1] * H], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c_step, [[c1] * H], rtol=0, atol=1e-12)


# ---- torch.nn.LSTM --------------------------------------------------------------------------
TORCH_ERRORS = {}


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("B, T, F, H, seed", TORCH_SIZES)
def test_matches_torch(float64, return_sequences, B, T, F, H, seed):
    torch = pytest.importorskip("torch")
    record_torch_errors(TORCH_ERRORS, "lstm", torch_errors(torch, "lstm", return_sequences, B, T, F, H, seed))


def test_report_max_relative_errors(capsys, request):
    """With ``-v`` prints the worst relative error of each compared quantity."""
    report_torch_errors(TORCH_ERRORS, capsys, request)


# ---- gradient checks in float64 -----------------------------------------------------------
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("B, T, F, H, seed", GRADCHECK_SIZES)
def test_rnn_gradcheck(float64, return_sequences, B, T, F, H, seed):
    assert rnn_gradcheck(mdl.LSTMCell, return_sequences, B, T, F, H, seed)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_step_backward_gradcheck(float64, return_sequences):
    """The readable step / step_backward on their own, looped by Cell, from a carried state."""
    assert steps_gradcheck(mdl.LSTMCell, return_sequences)


def test_parameter_shapes_and_default_init():
    mdl.set_seed(0)
    F, H = 5, 16
    assert_default_init(mdl.LSTMCell(F, H), {"kernel": (F, 4 * H), "recurrent_kernel": (H, 4 * H), "bias": (4 * H,)})


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("lstm_float_hidden", lambda: mdl.LSTMCell(3, 2.5), TypeError, r"LSTMCell: hidden_size must be an int, got 2\.5"),
    (
            "lstm_state_count",
            lambda: mdl.LSTMCell(3, 4).forward(BAD_X2, (np.zeros((2, 4)),)),
            ValueError,
            r"LSTMCell\(.*expected state as a tuple of 2 arrays, got tuple of length 1",
        ),
    ("lstm_zero_hidden", lambda: mdl.LSTMCell(3, 0),
         ValueError, r"^LSTMCell: hidden_size must be >= 1, got 0"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
