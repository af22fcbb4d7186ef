"""GRUCell: golden values, a scalar reference, the gate order and the two bias rows,
torch.nn.GRU (and that its gate order needs converting), gradient checks of the fused
path and of the readable steps, parameter shapes and initialization."""

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
    relative_error,
    report_torch_errors,
    run_with_random_weights,
    scalar_sequences,
    scalar_sigmoid as sig,
    rnn_gradcheck,
    steps_gradcheck,
    torch_errors,
    torch_pair,
)
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, BAD_X2


def scalar_step(cell):
    """One GRU step by scalar arithmetic on Python lists (blocks z, r, n; bias rows 0 and 1)."""
    K, U, b = cell.kernel.data.tolist(), cell.recurrent_kernel.data.tolist(), cell.bias.data.tolist()
    H = cell.hidden_size

    def step(x, state):
        (h,) = state
        xp = [column(x, K, j) + b[0][j] for j in range(3 * H)]
        hp = [column(h, U, j) + b[1][j] for j in range(3 * H)]
        new = []
        for j in range(H):
            z = sig(xp[j] + hp[j])
            r = sig(xp[H + j] + hp[H + j])
            n = math.tanh(xp[2 * H + j] + r * hp[2 * H + j])
            new.append((1 - z) * n + z * h[j])
        return (new,)

    return step


# ---- golden values from constant weights, computed by hand -------------------------------
def golden_rows(H=2):
    """Input part 0.1 * sum(x) + 0.05, recurrent part 0.2 * H * h + 0.05, for each of z, r, n."""
    rows = []
    for xb in X_GOLDEN.tolist():
        sx1, sx2 = sum(xb[0]), sum(xb[1])
        zr1 = sig((0.1 * sx1 + 0.05) + 0.05)
        n1 = math.tanh((0.1 * sx1 + 0.05) + zr1 * 0.05)
        h1 = (1 - zr1) * n1
        hp = 0.2 * H * h1 + 0.05
        zr2 = sig(0.1 * sx2 + 0.05 + hp)
        n2 = math.tanh(0.1 * sx2 + 0.05 + zr2 * hp)
        h2 = (1 - zr2) * n2 + zr2 * h1
        rows.append([[h1] * H, [h2] * H])
    return np.array(rows)


def test_golden_values_constant_weights(float64):
    assert_golden(constant_weights(mdl.GRUCell(3, 2)), golden_rows())


# ---- a scalar reference with random weights ----------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_scalar_reference_random_weights(float64, seed):
    mdl.set_seed(seed)
    cell = mdl.GRUCell(3, 4)
    x, state, y, final = run_with_random_weights(cell, seed)
    expected, expected_final = scalar_sequences(x.tolist(), [s.tolist() for s in state], scalar_step(cell))
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(final[0], expected_final[0], rtol=0, atol=1e-12)


def test_forward_is_one_step(float64, rng):
    cell = mdl.GRUCell(3, 2)
    x, h = rng.standard_normal((4, 3)), rng.uniform(-0.8, 0.8, (4, 2))
    _, expected = scalar_sequences(x[:, None].tolist(), [h.tolist()], scalar_step(cell))
    np.testing.assert_allclose(cell.forward(x, (h,))[0], expected[0], rtol=0, atol=1e-12)


# ---- gate order and bias rows -----------------------------------------------------------------
@pytest.mark.parametrize(
    "bias, effect",
    [
        ({(0, "z"): 30.0, (0, "n"): 1.0}, lambda h: abs(h - 1.0) < 1e-6),  # update gate open: keep h0
        ({(0, "z"): -30.0, (0, "n"): 1.0}, lambda h: abs(h - math.tanh(1)) < 1e-6),  # take n
        ({(0, "r"): -30.0, (1, "n"): 2.0}, lambda h: abs(h - 0.5) < 1e-6),  # reset kills hn
        ({(0, "r"): 30.0, (1, "n"): 2.0}, lambda h: abs(h - 0.5 - 0.5 * math.tanh(2)) < 1e-6),
        # bias row 0 is outside r * (.), row 1 inside it
        ({(0, "r"): -30.0, (0, "n"): 2.0}, lambda h: abs(h - 0.5 - 0.5 * math.tanh(2)) < 1e-6),
        ({(1, "z"): 30.0}, lambda h: abs(h - 1.0) < 1e-6),  # recurrent z bias also gates
    ],
)
def test_gru_gate_order_and_bias_rows(float64, bias, effect):
    H = 3
    cell = mdl.GRUCell(2, H)
    for p in cell.parameters():
        p.data[...] = 0.0
    b = {(row, name): 0.0 for row in (0, 1) for name in "zrn"}
    for (row, name), value in bias.items():
        k = "zrn".index(name)
        cell.bias.data[row, k * H:(k + 1) * H] = value
        b[(row, name)] = value
    z = sig(b[0, "z"] + b[1, "z"])
    r = sig(b[0, "r"] + b[1, "r"])
    n = math.tanh(b[0, "n"] + r * b[1, "n"])
    h1 = (1 - z) * n + z * 1.0
    assert effect(h1)
    x = np.array([[[0.3, -0.2]]])
    rnn = mdl.RNN(cell)
    rnn.set_state((np.ones((1, H)),))
    np.testing.assert_allclose(rnn.forward(x), [[h1] * H], rtol=0, atol=1e-12)
    (h_step,) = cell.forward(x[:, 0], (np.ones((1, H)),))  # the readable step
    np.testing.assert_allclose(h_step, [[h1] * H], rtol=0, atol=1e-12)


# ---- torch.nn.GRU ---------------------------------------------------------------------------
TORCH_ERRORS = {}


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("B, T, F, H, seed", TORCH_SIZES)
def test_matches_torch(float64, return_sequences, B, T, F, H, seed):
    torch = pytest.importorskip("torch")
    record_torch_errors(TORCH_ERRORS, "gru", torch_errors(torch, "gru", return_sequences, B, T, F, H, seed))


def test_gru_layout_conversion_matters(float64):
    """Without the r,z,n -> z,r,n permutation the GRU does not match torch (the check can fail)."""
    torch = pytest.importorskip("torch")
    ref, cell = torch_pair(torch, "gru", 2, 3, 0)
    t = {n: p.detach().numpy() for n, p in ref.named_parameters()}
    cell.kernel.data[...] = t["weight_ih_l0"].T
    cell.recurrent_kernel.data[...] = t["weight_hh_l0"].T
    cell.bias.data[...] = np.stack([t["bias_ih_l0"], t["bias_hh_l0"]])
    x = np.random.default_rng(0).standard_normal((2, 3, 2))
    y = mdl.RNN(cell).forward(x)
    yt = ref(torch.tensor(x))[0][:, -1].detach().numpy()
    assert relative_error(y, yt) > 1e-3


def test_report_max_relative_errors(capsys, request):
    """With ``-v`` prints the worst relative error of each compared quantity."""
    report_torch_errors(TORCH_ERRORS, capsys, request)


# ---- gradient checks in float64 -----------------------------------------------------------
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("B, T, F, H, seed", GRADCHECK_SIZES)
def test_rnn_gradcheck(float64, return_sequences, B, T, F, H, seed):
    assert rnn_gradcheck(mdl.GRUCell, return_sequences, B, T, F, H, seed)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_step_backward_gradcheck(float64, return_sequences):
    """The readable step / step_backward on their own, looped by Cell, from a carried state."""
    assert steps_gradcheck(mdl.GRUCell, return_sequences)


def test_parameter_shapes_and_default_init():
    mdl.set_seed(0)
    F, H = 5, 16
    assert_default_init(mdl.GRUCell(F, H), {"kernel": (F, 3 * H), "recurrent_kernel": (H, 3 * H), "bias": (2, 3 * H)})


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("gru_negative_hidden", lambda: mdl.GRUCell(3, -2), ValueError, r"GRUCell: hidden_size must be >= 1, got -2"),
    (
            "gru_bool_size",
            lambda: mdl.GRUCell(True, 2),
            TypeError,
            r"GRUCell: input_size must be an int, got True \(bool\)",
        ),
    (
            "gru_state_shape",
            lambda: mdl.GRUCell(3, 4).forward(BAD_X2, (np.zeros((2, 5)),)),
            ValueError,
            r"GRUCell\(.*expected state\[0\] of shape \(2, 4\), got \(2, 5\)",
        ),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
