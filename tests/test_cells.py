"""RNNCell, LSTMCell, GRUCell: golden values, scalar references, gate order, the step
interface against the fast sequence path, and gradient checks (through RNN) in float64."""

import math

import numpy as np
import pytest

import minidl as mdl


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


_ACTS = {"tanh": math.tanh, "sigmoid": _sig, "relu": lambda v: max(v, 0.0)}


def _make_cell(kind, F, H):
    if kind.startswith("rnn_"):
        return mdl.RNNCell(F, H, activation=kind[4:])
    return {"lstm": mdl.LSTMCell, "gru": mdl.GRUCell}[kind](F, H)


CELLS = ["rnn_tanh", "rnn_sigmoid", "rnn_relu", "lstm", "gru"]


# ---- scalar reference implementations (plain Python, no numpy matmuls) ----------------
def _col(vec, mat, j):
    return sum(vec[k] * mat[k][j] for k in range(len(vec)))


def _reference(kind, cell, x, state):
    """Outputs (B, T, H) and final state by scalar arithmetic on Python lists."""
    K, U, b = (cell.kernel.data.tolist(), cell.recurrent_kernel.data.tolist(), cell.bias.data.tolist())
    H = cell.hidden_size
    out, final_h, final_c = [], [], []
    for bi in range(len(x)):
        h = list(state[0][bi])
        c = list(state[1][bi]) if kind == "lstm" else None
        seq = []
        for xt in x[bi]:
            if kind.startswith("rnn_"):
                act = _ACTS[kind[4:]]
                h = [act(_col(xt, K, j) + _col(h, U, j) + b[j]) for j in range(H)]
            elif kind == "lstm":
                z = [_col(xt, K, j) + _col(h, U, j) + b[j] for j in range(4 * H)]
                c = [_sig(z[H + j]) * c[j] + _sig(z[j]) * math.tanh(z[2 * H + j]) for j in range(H)]
                h = [_sig(z[3 * H + j]) * math.tanh(c[j]) for j in range(H)]
            else:
                xp = [_col(xt, K, j) + b[0][j] for j in range(3 * H)]
                hp = [_col(h, U, j) + b[1][j] for j in range(3 * H)]
                new = []
                for j in range(H):
                    z = _sig(xp[j] + hp[j])
                    r = _sig(xp[H + j] + hp[H + j])
                    n = math.tanh(xp[2 * H + j] + r * hp[2 * H + j])
                    new.append((1 - z) * n + z * h[j])
                h = new
            seq.append(h)
        out.append(seq)
        final_h.append(h)
        final_c.append(c)
    final = (np.array(final_h), np.array(final_c)) if kind == "lstm" else (np.array(final_h),)
    return np.array(out), final


def _random_state(cell, B, rng):
    return tuple(rng.uniform(-0.8, 0.8, (B, n)) for n in cell.state_size)


# ---- golden values from constant weights, computed by hand -------------------------------
X_GOLDEN = np.array([[[0.5, -0.2, 0.1], [1.0, 0.3, -0.4]], [[-1.0, -0.5, 0.2], [0.3, 0.4, -0.1]]])


def _constant(cell):
    cell.kernel.data[...] = 0.1
    cell.recurrent_kernel.data[...] = 0.2
    cell.bias.data[...] = 0.05
    return cell


def _golden_rows(kind, H=2):
    """Every unit of a constant-weight cell is the same scalar: x @ kernel = 0.1 * sum(x_t),
    h @ recurrent_kernel = 0.2 * H * h. Two steps per batch row, written out."""
    rows = []
    for xb in X_GOLDEN.tolist():
        sx1, sx2 = sum(xb[0]), sum(xb[1])
        if kind.startswith("rnn_"):
            act = _ACTS[kind[4:]]
            h1 = act(0.1 * sx1 + 0.05)
            h2 = act(0.1 * sx2 + 0.2 * H * h1 + 0.05)
        elif kind == "lstm":
            z1 = 0.1 * sx1 + 0.05  # i = f = o = sigmoid(z1), g = tanh(z1); c0 = 0
            c1 = _sig(z1) * math.tanh(z1)
            h1 = _sig(z1) * math.tanh(c1)
            z2 = 0.1 * sx2 + 0.2 * H * h1 + 0.05
            c2 = _sig(z2) * c1 + _sig(z2) * math.tanh(z2)
            h2 = _sig(z2) * math.tanh(c2)
        else:  # gru: input part 0.1*sum(x)+0.05, recurrent part 0.2*H*h+0.05, for each of z, r, n
            zr1 = _sig((0.1 * sx1 + 0.05) + 0.05)
            n1 = math.tanh((0.1 * sx1 + 0.05) + zr1 * 0.05)
            h1 = (1 - zr1) * n1
            hp = 0.2 * H * h1 + 0.05
            zr2 = _sig(0.1 * sx2 + 0.05 + hp)
            n2 = math.tanh(0.1 * sx2 + 0.05 + zr2 * hp)
            h2 = (1 - zr2) * n2 + zr2 * h1
        rows.append([[h1] * H, [h2] * H])
    return np.array(rows)


@pytest.mark.parametrize("kind", CELLS)
def test_golden_values_constant_weights(float64, kind):
    rnn = mdl.RNN(_constant(_make_cell(kind, 3, 2)), return_sequences=True)
    expected = _golden_rows(kind)
    np.testing.assert_allclose(rnn.forward(X_GOLDEN), expected, rtol=0, atol=1e-12)
    rnn_last = mdl.RNN(rnn.cell)
    np.testing.assert_allclose(rnn_last.forward(X_GOLDEN), expected[:, -1], rtol=0, atol=1e-12)


def test_golden_relu_hits_both_regimes():
    # row 1 step 1: a = 0.1 * (-1.3) + 0.05 < 0, so relu gives exactly 0 there
    expected = _golden_rows("rnn_relu")
    assert expected[1, 0, 0] == 0.0 and expected[1, 1, 0] > 0 and expected[0, 0, 0] > 0


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_scalar_reference_random_weights(float64, kind, seed):
    """Random (non-symmetric) weights and initial state: checks the layouts and the
    gate blocks element by element against plain-Python arithmetic."""
    rng = np.random.default_rng(seed)
    mdl.set_seed(seed)
    cell = _make_cell(kind, 3, 4)
    for p in cell.parameters():
        p.data[...] = rng.uniform(-1, 1, p.shape)
    x = rng.standard_normal((2, 4, 3))
    state = _random_state(cell, 2, rng)
    rnn = mdl.RNN(cell, return_sequences=True)
    rnn.set_state(state)
    expected, final = _reference(kind, cell, x.tolist(), [s.tolist() for s in state])
    np.testing.assert_allclose(rnn.forward(x), expected, rtol=0, atol=1e-12)
    for got, want in zip(rnn.state_at(4), final):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


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
    c1 = _sig(z["f"]) * 1.0 + _sig(z["i"]) * math.tanh(z["g"])
    h1 = _sig(z["o"]) * math.tanh(c1)
    assert effect(h1, c1)
    rnn = mdl.RNN(cell)
    rnn.set_state((np.zeros((1, H)), np.ones((1, H))))
    h = rnn.forward(np.array([[[0.7]]]))
    h_final, c_final = rnn.state_at(1)
    np.testing.assert_allclose(h, [[h1] * H], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c_final, [[c1] * H], rtol=0, atol=1e-12)


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
    z = _sig(b[0, "z"] + b[1, "z"])
    r = _sig(b[0, "r"] + b[1, "r"])
    n = math.tanh(b[0, "n"] + r * b[1, "n"])
    h1 = (1 - z) * n + z * 1.0
    assert effect(h1)
    rnn = mdl.RNN(cell)
    rnn.set_state((np.ones((1, H)),))
    np.testing.assert_allclose(rnn.forward(np.array([[[0.3, -0.2]]])), [[h1] * H], rtol=0, atol=1e-12)


# ---- the step interface equals the fast sequence path ------------------------------------
@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("with_dhs", [True, False])
def test_step_loop_equals_fast_path(float64, kind, with_dhs):
    rng = np.random.default_rng(3)
    mdl.set_seed(3)
    T, B, F, H = 5, 3, 2, 4
    cell = _make_cell(kind, F, H)
    xs = rng.standard_normal((T, B, F))
    state = _random_state(cell, B, rng)
    dhs = rng.standard_normal((T, B, H)) if with_dhs else None
    dfinal = tuple(rng.standard_normal((B, n)) for n in cell.state_size)

    results = []
    for forward, backward, state_at in (
        (cell.forward_sequence, cell.backward_sequence, cell.state_at),
        (
            lambda *a: mdl.Cell.forward_sequence(cell, *a),
            lambda *a: mdl.Cell.backward_sequence(cell, *a),
            lambda *a: mdl.Cell.state_at(cell, *a),
        ),
    ):
        cell.zero_grad()
        hs, final, cache = forward(xs, state)
        states = [state_at(cache, t) for t in range(T + 1)]
        dxs, dstate0 = backward(dhs, dfinal, cache)
        results.append((np.array(hs), final, states, dxs, dstate0, [p.grad.copy() for p in cell.parameters()]))
    (hs1, f1, st1, dx1, ds1, g1), (hs2, f2, st2, dx2, ds2, g2) = results
    np.testing.assert_allclose(hs1, hs2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx1, dx2, rtol=0, atol=1e-12)
    for a, b in zip(f1 + ds1, f2 + ds2):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    for sa, sb in zip(st1, st2):
        for a, b in zip(sa, sb):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    for a, b in zip(st1[0], state):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(g1, g2):
        assert np.any(a != 0)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_cell_forward_is_one_step(float64, rng):
    cell = mdl.LSTMCell(3, 2)
    x = rng.standard_normal((4, 3))
    state = _random_state(cell, 4, rng)
    h, c = cell.forward(x, state)
    _, final = _reference("lstm", cell, x[:, None].tolist(), [s.tolist() for s in state])
    np.testing.assert_allclose(h, final[0], atol=1e-12)
    np.testing.assert_allclose(c, final[1], atol=1e-12)
    h0, c0 = cell.forward(x)  # zero state by default
    _, final0 = _reference("lstm", cell, x[:, None].tolist(), [np.zeros((4, 2)).tolist()] * 2)
    np.testing.assert_allclose(h0, final0[0], atol=1e-12)


# ---- gradient checks in float64 ---------------------------------------------------------
@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("B, T, F, H, seed", [(2, 3, 2, 3, 0), (3, 5, 4, 5, 1), (2, 6, 3, 4, 2)])
def test_rnn_gradcheck(float64, kind, return_sequences, B, T, F, H, seed):
    mdl.set_seed(seed)
    rnn = mdl.RNN(_make_cell(kind, F, H), return_sequences=return_sequences)
    x = np.random.default_rng(seed).standard_normal((B, T, F))
    assert mdl.gradcheck(rnn, x)


@pytest.mark.parametrize("kind, gates", [("rnn_tanh", 1), ("lstm", 4), ("gru", 3)])
def test_cell_parameter_shapes_and_default_init(kind, gates):
    mdl.set_seed(0)
    F, H = 5, 16
    cell = _make_cell(kind, F, H)
    shapes = {n: p.shape for n, p in cell.named_parameters()}
    bias_shape = (2, 3 * H) if kind == "gru" else (gates * H,)
    assert shapes == {"kernel": (F, gates * H), "recurrent_kernel": (H, gates * H), "bias": bias_shape}
    bound = 1 / math.sqrt(H)
    for p in cell.parameters():
        assert p.data.dtype == np.float32
        assert np.all(np.abs(p.data) <= bound)
        assert np.ptp(p.data) > 0
        assert np.abs(p.data).max() > 0.8 * bound
