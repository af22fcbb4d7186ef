"""RNNCell (tanh, sigmoid, relu): golden values, a scalar reference, torch.nn.RNN, gradient
checks of the fused path and of the readable steps, parameter shapes and initialization."""

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
    record_torch_errors,
    report_torch_errors,
    run_with_random_weights,
    scalar_sequences,
    scalar_sigmoid,
    rnn_gradcheck,
    steps_gradcheck,
    torch_errors,
)
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params

ACTIVATIONS = ["tanh", "sigmoid", "relu"]
SCALAR_ACT = {"tanh": math.tanh, "sigmoid": scalar_sigmoid, "relu": lambda v: max(v, 0.0)}


def scalar_step(cell):
    """One step of ``cell`` by scalar arithmetic on Python lists: ``h_new = act(x K + h U + b)``."""
    K, U, b = cell.kernel.data.tolist(), cell.recurrent_kernel.data.tolist(), cell.bias.data.tolist()
    act = SCALAR_ACT[cell.activation]

    def step(x, state):
        (h,) = state
        return ([act(column(x, K, j) + column(h, U, j) + b[j]) for j in range(cell.hidden_size)],)

    return step


# ---- golden values from constant weights, computed by hand -------------------------------
def golden_rows(activation, H=2):
    """x @ kernel = 0.1 * sum(x_t), h @ recurrent_kernel = 0.2 * H * h: two steps per row."""
    act = SCALAR_ACT[activation]
    rows = []
    for xb in X_GOLDEN.tolist():
        h1 = act(0.1 * sum(xb[0]) + 0.05)
        h2 = act(0.1 * sum(xb[1]) + 0.2 * H * h1 + 0.05)
        rows.append([[h1] * H, [h2] * H])
    return np.array(rows)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_golden_values_constant_weights(float64, activation):
    assert_golden(constant_weights(mdl.RNNCell(3, 2, activation=activation)), golden_rows(activation))


def test_golden_relu_hits_both_regimes():
    # row 1 step 1: a = 0.1 * (-1.3) + 0.05 < 0, so relu gives exactly 0 there
    expected = golden_rows("relu")
    assert expected[1, 0, 0] == 0.0 and expected[1, 1, 0] > 0 and expected[0, 0, 0] > 0


# ---- a scalar reference with random weights ----------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_scalar_reference_random_weights(float64, activation, seed):
    mdl.set_seed(seed)
    cell = mdl.RNNCell(3, 4, activation=activation)
    x, state, y, final = run_with_random_weights(cell, seed)
    expected, expected_final = scalar_sequences(x.tolist(), [s.tolist() for s in state], scalar_step(cell))
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(final[0], expected_final[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_is_one_step(float64, rng, activation):
    cell = mdl.RNNCell(3, 2, activation=activation)
    x, h = rng.standard_normal((4, 3)), rng.uniform(-0.8, 0.8, (4, 2))
    _, expected = scalar_sequences(x[:, None].tolist(), [h.tolist()], scalar_step(cell))
    np.testing.assert_allclose(cell.forward(x, (h,))[0], expected[0], rtol=0, atol=1e-12)


# ---- torch.nn.RNN ---------------------------------------------------------------------------
TORCH_ERRORS = {}


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu"])  # torch has no sigmoid RNN
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("B, T, F, H, seed", TORCH_SIZES)
def test_matches_torch(float64, kind, return_sequences, B, T, F, H, seed):
    torch = pytest.importorskip("torch")
    record_torch_errors(TORCH_ERRORS, kind, torch_errors(torch, kind, return_sequences, B, T, F, H, seed))


def test_report_max_relative_errors(capsys, request):
    """With ``-v`` prints the worst relative error of each compared quantity."""
    report_torch_errors(TORCH_ERRORS, capsys, request)


# ---- gradient checks in float64 -----------------------------------------------------------
def _make(activation):
    return lambda F, H: mdl.RNNCell(F, H, activation=activation)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("B, T, F, H, seed", GRADCHECK_SIZES)
def test_rnn_gradcheck(float64, activation, return_sequences, B, T, F, H, seed):
    assert rnn_gradcheck(_make(activation), return_sequences, B, T, F, H, seed)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_step_backward_gradcheck(float64, activation, return_sequences):
    """The readable step / step_backward on their own, looped by Cell, from a carried state."""
    assert steps_gradcheck(_make(activation), return_sequences)


def test_parameter_shapes_and_default_init():
    mdl.set_seed(0)
    F, H = 5, 16
    assert_default_init(mdl.RNNCell(F, H), {"kernel": (F, H), "recurrent_kernel": (H, H), "bias": (H,)})


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("rnncell_zero_input", lambda: mdl.RNNCell(0, 4), ValueError, r"RNNCell: input_size must be >= 1, got 0"),
    (
            "unknown_activation",
            lambda: mdl.RNNCell(3, 4, activation="gelu"),
            ValueError,
            r"RNNCell: activation must be one of 'tanh', 'sigmoid', 'relu', got 'gelu'",
        ),
    (
            "activation_none",
            lambda: mdl.RNNCell(3, 4, activation=None),
            ValueError,
            r"RNNCell: activation must be one of .*got None",
        ),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
