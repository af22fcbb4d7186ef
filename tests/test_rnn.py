"""RNN: stateful carry, the state interface, stacked layers, user cells, no_grad,
gradient accumulation; gradient checks in float64 where a gradient is involved."""

import numpy as np
import pytest

import minidl as mdl

CELLS = ["rnn_tanh", "rnn_sigmoid", "rnn_relu", "lstm", "gru"]


def _make_cell(kind, F, H):
    if kind.startswith("rnn_"):
        return mdl.RNNCell(F, H, activation=kind[4:])
    return {"lstm": mdl.LSTMCell, "gru": mdl.GRUCell}[kind](F, H)


def _random_state(cell, B, rng):
    return tuple(rng.uniform(-0.8, 0.8, (B, n)) for n in cell.state_size)


# ---- stateful carry and stacks -------------------------------------------------------------
@pytest.mark.parametrize("kind", CELLS)
def test_stateful_carry_and_gradcheck_from_carried_state(float64, kind):
    rng = np.random.default_rng(5)
    mdl.set_seed(5)
    cell = _make_cell(kind, 3, 4)
    x = rng.standard_normal((2, 7, 3))
    full = mdl.RNN(cell, return_sequences=True).forward(x)
    rnn = mdl.RNN(cell, return_sequences=True, stateful=True)
    y1 = rnn.forward(x[:, :3])
    carried = rnn.get_state()
    np.testing.assert_allclose(carried[0], full[:, 2], atol=1e-14)
    y2 = rnn.forward(x[:, 3:])
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), full, atol=1e-13)

    # gradcheck of a forward that starts from the carried state (restored on every run)
    rnn.set_state(carried)
    assert mdl.gradcheck(rnn, x[:, 3:])
    for a, b in zip(rnn.get_state(), carried):  # gradcheck worked on a copy
        np.testing.assert_array_equal(a, b)

    # the gradient with respect to the carried state, against central differences
    g = rng.standard_normal((2, 4, 4))
    rnn.set_state(carried)
    rnn.forward(x[:, 3:])
    rnn.backward(g)
    analytic = rnn.initial_state_grad
    eps = 1e-6
    for k, s in enumerate(carried):
        numeric = np.zeros_like(s)
        for idx in np.ndindex(s.shape):
            vals = []
            for sign in (1, -1):
                st = [a.copy() for a in carried]
                st[k][idx] += sign * eps
                rnn.set_state(tuple(st))
                vals.append(np.sum(rnn.forward(x[:, 3:]) * g))
            numeric[idx] = (vals[0] - vals[1]) / (2 * eps)
        np.testing.assert_allclose(analytic[k], numeric, rtol=1e-6, atol=1e-8)

    rnn.reset_states()
    assert rnn.get_state() is None
    np.testing.assert_allclose(rnn.forward(x[:, 3:]), mdl.RNN(cell, return_sequences=True).forward(x[:, 3:]), atol=0)


def test_stacked_rnns_with_dense_gradcheck(float64):
    mdl.set_seed(11)
    model = mdl.Sequential([
        mdl.RNN(mdl.LSTMCell(3, 4), return_sequences=True),
        mdl.RNN(mdl.GRUCell(4, 3), return_sequences=True),
        mdl.RNN(mdl.RNNCell(3, 3, activation="sigmoid")),
        mdl.Dense(3, 2),
    ])
    x = np.random.default_rng(11).standard_normal((2, 4, 3))
    assert mdl.gradcheck(model, x)
    seq = mdl.Sequential([mdl.RNN(mdl.GRUCell(3, 4), return_sequences=True), mdl.Dense(4, 2), mdl.Tanh()])
    assert mdl.gradcheck(seq, x)


class _LeakyCell(mdl.Cell):
    """A user cell with only the step interface: ``h' = 0.5 h + tanh(x @ w + h @ u)``."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.w = self.add_weight("w", (input_size, hidden_size))
        self.u = self.add_weight("u", (hidden_size, hidden_size))

    def step(self, x, state):
        (h,) = state
        a = np.tanh(x @ self.w.data + h @ self.u.data)
        return (0.5 * h + a,), (x, h, a)

    def step_backward(self, dstate, cache):
        (dh,) = dstate
        x, h, a = cache
        da = dh * (1 - a * a)
        self.w.grad += x.T @ da
        self.u.grad += h.T @ da
        return da @ self.w.data.T, (0.5 * dh + da @ self.u.data.T,)


def test_user_cell_with_step_interface_only(float64, rng):
    cell = _LeakyCell(2, 3)
    x = rng.standard_normal((2, 4, 2))
    rnn = mdl.RNN(cell, return_sequences=True)
    y = rnn.forward(x)
    h = np.zeros((2, 3))
    for t in range(4):
        h = 0.5 * h + np.tanh(x[:, t] @ cell.w.data + h @ cell.u.data)
        np.testing.assert_allclose(y[:, t], h, atol=1e-14)
    np.testing.assert_allclose(rnn.state_at(4)[0], h, atol=1e-14)
    assert [n for n, _ in rnn.named_parameters()] == ["cell.w", "cell.u"]
    assert mdl.gradcheck(rnn, x)
    assert mdl.gradcheck(mdl.RNN(cell), x)


# ---- the RNN lifecycle --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", CELLS)
def test_rnn_output_shapes(kind, rng):
    cell = _make_cell(kind, 3, 5)
    x = rng.standard_normal((4, 6, 3))
    assert mdl.RNN(cell).forward(x).shape == (4, 5)
    assert mdl.RNN(cell, return_sequences=True).forward(x).shape == (4, 6, 5)
    assert mdl.RNN(cell).compute_output_shape((None, 6, 3)) == (None, 5)
    assert mdl.RNN(cell, return_sequences=True).compute_output_shape((4, 6, 3)) == (4, 6, 5)
    rnn = mdl.RNN(cell, return_sequences=True)
    y = rnn.forward(x)
    assert y.dtype == np.float32
    assert rnn.backward(np.ones_like(y)).shape == x.shape


def test_non_stateful_starts_from_zero_each_time(rng):
    rnn = mdl.RNN(mdl.GRUCell(2, 3))
    x = rng.standard_normal((2, 4, 2))
    y1 = rnn.forward(x)
    np.testing.assert_array_equal(rnn.forward(x), y1)
    assert rnn.get_state() is None


def test_state_api(float64, rng):
    cell = mdl.LSTMCell(2, 3)
    rnn = mdl.RNN(cell, stateful=True)
    x = rng.standard_normal((2, 5, 2))
    s0 = _random_state(cell, 2, rng)
    rnn.set_state(s0)
    got = rnn.get_state()
    got[0][...] = 99.0  # get_state hands out copies
    np.testing.assert_array_equal(rnn.get_state()[0], s0[0])
    y = rnn.forward(x)
    for a, b in zip(rnn.state_at(0), s0):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(rnn.state_at(5), rnn.get_state()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(rnn.state_at(5)[0], y)
    # state_at(t) equals running only the first t steps from the same state
    probe = mdl.RNN(cell, stateful=True)
    probe.set_state(s0)
    probe.forward(x[:, :2])
    for a, b in zip(rnn.state_at(2), probe.get_state()):
        np.testing.assert_allclose(a, b, atol=1e-14)
    # set_state(None) = zeros
    rnn.set_state(None)
    assert rnn.get_state() is None
    np.testing.assert_allclose(rnn.forward(x), mdl.RNN(cell).forward(x), atol=0)


@pytest.mark.parametrize(
    "state, pattern",
    [
        ((np.zeros((2, 4)), np.zeros((2, 3))), r"state\[0\] expected shape \(batch, 3\), got \(2, 4\)"),
        ((np.zeros((2, 3)), np.zeros((3, 3))), r"state\[1\] expected shape \(batch, 3\), got \(3, 3\)"),
        ((np.zeros(3), np.zeros(3)), r"state\[0\] expected shape \(batch, 3\), got \(3,\)"),
        ((np.zeros((2, 3)),), r"tuple of 2 arrays"),
        (np.zeros((2, 3)), r"tuple of 2 arrays"),
    ],
)
def test_set_state_wrong_shapes(state, pattern):
    rnn = mdl.RNN(mdl.LSTMCell(2, 3))
    with pytest.raises(ValueError, match=pattern):
        rnn.set_state(state)
    assert rnn.get_state() is None


def test_stateful_batch_change_needs_reset(rng):
    rnn = mdl.RNN(mdl.RNNCell(2, 3), stateful=True)
    rnn.forward(rng.standard_normal((4, 3, 2)))
    with pytest.raises(ValueError, match=r"batch size 4 but the input has 3.*reset_states\(\)"):
        rnn.forward(rng.standard_normal((3, 3, 2)))
    rnn.reset_states()
    assert rnn.forward(rng.standard_normal((3, 3, 2))).shape == (3, 3)


def test_no_grad_forward_keeps_no_history(rng):
    rnn = mdl.RNN(mdl.LSTMCell(2, 3), return_sequences=True)
    x = rng.standard_normal((2, 4, 2))
    y = rnn.forward(x)
    with mdl.no_grad():
        y_ng = rnn.forward(x)
    np.testing.assert_array_equal(y, y_ng)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        rnn.backward(np.ones_like(y))  # the earlier history is gone too
    rnn.forward(x)
    rnn.backward(np.ones_like(y))


@pytest.mark.parametrize("kind", CELLS)
def test_rnn_gradients_accumulate(float64, kind, rng):
    cell = _make_cell(kind, 2, 3)
    rnn = mdl.RNN(cell, return_sequences=True)
    x, g = rng.standard_normal((2, 4, 2)), rng.standard_normal((2, 4, 3))
    rnn.forward(x)
    dx = rnn.backward(g)
    once = [p.grad.copy() for p in cell.parameters()]
    assert all(np.any(o != 0) for o in once)
    rnn.forward(x)
    np.testing.assert_array_equal(rnn.backward(g), dx)
    for p, o in zip(cell.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * o, rtol=1e-13, atol=1e-15)
    rnn.zero_grad()
    assert all(np.all(p.grad == 0) for p in cell.parameters())
