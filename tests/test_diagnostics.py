"""minidl.diagnostics.gradient_flow.

References: central finite differences of the loss with respect to the state at
step T-k (through the public RNN interface), the re-run method of the brief
(set_state(state_at(T-k)), forward, initial_state_grad), and closed forms for a
linear regime (norms[k] = ||g @ (W.T)^k||).
"""

import numpy as np
import pytest

import minidl as mdl
from minidl import diagnostics, init, interop

B, T, F, H = 2, 6, 2, 3


def _rnn(cell):
    return mdl.RNN(cell)


def _loss_from_state(rnn, x, t0, state, G):
    """L = sum(h_T * G) when the layer runs x[:, t0:] from ``state``."""
    rnn.set_state(state)
    out = rnn(x[:, t0:])
    rnn.set_state(None)
    return float(np.sum(out * G))


def _fd_grad(rnn, x, t0, states, G, index, eps=1e-6):
    """Central differences of L w.r.t. entry ``index`` of the state after t0 steps."""
    grad = np.zeros_like(states[index])
    for i in np.ndindex(grad.shape):
        plus = [s.copy() for s in states]
        minus = [s.copy() for s in states]
        plus[index][i] += eps
        minus[index][i] -= eps
        grad[i] = (_loss_from_state(rnn, x, t0, tuple(plus), G) - _loss_from_state(rnn, x, t0, tuple(minus), G)) / (2 * eps)
    return grad


@pytest.mark.parametrize("make, index", [
    (lambda: mdl.RNNCell(F, H), 0),
    (lambda: mdl.LSTMCell(F, H), 0),
    (lambda: mdl.LSTMCell(F, H), 1),
    (lambda: mdl.GRUCell(F, H), 0),
], ids=["rnn-h", "lstm-h", "lstm-c", "gru-h"])
def test_against_finite_differences(float64, make, index):
    mdl.set_seed(0)
    rnn = _rnn(make())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, F))
    G = rng.standard_normal((B, H))
    norms = diagnostics.gradient_flow(rnn, x, G, state_index=index)
    assert norms.shape == (T,) and norms.dtype == np.float64
    rnn(x)
    full = [rnn.state_at(t) for t in range(T + 1)]
    expected = [np.linalg.norm(G) if index == 0 else 0.0]
    for k in range(1, T):
        expected.append(np.linalg.norm(_fd_grad(rnn, x, T - k, full[T - k], G, index)))
    np.testing.assert_allclose(norms, expected, rtol=1e-6, atol=1e-10)
    assert norms[-1] > 0


def test_matches_rerunning_the_layer_from_each_state(float64):
    """The O(T^2) method through set_state / state_at / initial_state_grad gives the same numbers."""
    mdl.set_seed(1)
    rnn = mdl.RNN(mdl.LSTMCell(F, H))
    x = np.random.default_rng(1).standard_normal((B, T, F))
    norms = diagnostics.gradient_flow(rnn, x)
    v = np.random.default_rng(0).standard_normal(H)
    g = np.broadcast_to(v / np.linalg.norm(v), (B, H))
    probe = mdl.RNN(rnn.cell)
    probe(x)
    states = [probe.state_at(t) for t in range(T + 1)]
    expected = [np.linalg.norm(g)]
    for k in range(1, T):
        probe.set_state(states[T - k])
        probe(x[:, T - k:])
        probe.backward(g)
        expected.append(np.linalg.norm(probe.initial_state_grad[0]))
    np.testing.assert_allclose(norms, expected, rtol=1e-12)
    assert norms[0] == pytest.approx(np.sqrt(B))  # unit vector, summed over the batch


def test_exploding_relu_rnn_closed_form(float64):
    """relu with positive pre-activations is linear: dL/dh_{T-k} = g @ (1.5 I)^k."""
    cell = mdl.RNNCell(F, H, activation="relu", kernel_initializer="zeros", bias_initializer="ones")
    cell.recurrent_kernel.data[...] = 1.5 * np.eye(H)
    G = np.arange(1.0, B * H + 1).reshape(B, H)
    norms = diagnostics.gradient_flow(mdl.RNN(cell), np.zeros((B, T, F)), G)
    np.testing.assert_allclose(norms, np.linalg.norm(G) * 1.5 ** np.arange(T), rtol=1e-13)


def test_vanishing_tanh_rnn_with_small_weights(float64):
    mdl.set_seed(2)
    small = init.Uniform(-0.1, 0.1)
    rnn = mdl.RNN(mdl.RNNCell(F, 8, kernel_initializer=small, recurrent_initializer=small, bias_initializer=small))
    x = np.random.default_rng(2).standard_normal((4, 20, F))
    norms = diagnostics.gradient_flow(rnn, x)
    assert np.all(np.diff(norms) < 0)  # decreasing with k
    # ||U|| (spectral) bounds the decay per step: tanh' <= 1.
    rate = np.linalg.norm(rnn.cell.recurrent_kernel.data, 2)
    assert rate < 0.5
    assert np.all(norms[1:] <= norms[:-1] * rate * (1 + 1e-12))
    assert norms[-1] / norms[0] < 1e-6


def test_user_cell_through_the_step_interface(float64):
    class _LinearStepCell(mdl.Cell):
        """h' = x @ K + h @ W: only step and step_backward."""

        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)
            self.kernel = self.add_weight("kernel", (input_size, hidden_size))
            self.recurrent_kernel = self.add_weight("recurrent_kernel", (hidden_size, hidden_size))

        def step(self, x, state):
            (h,) = state
            return (x @ self.kernel.data + h @ self.recurrent_kernel.data,), (x, h)

        def step_backward(self, dstate, cache):
            (dh,) = dstate
            x, h = cache
            self.kernel.grad += x.T @ dh
            self.recurrent_kernel.grad += h.T @ dh
            return dh @ self.kernel.data.T, (dh @ self.recurrent_kernel.data.T,)

    mdl.set_seed(3)
    cell = _LinearStepCell(F, H)
    G = np.random.default_rng(3).standard_normal((B, H))
    norms = diagnostics.gradient_flow(mdl.RNN(cell), np.ones((B, T, F)), G)
    W = cell.recurrent_kernel.data
    expected = [np.linalg.norm(G @ np.linalg.matrix_power(W.T, k)) for k in range(T)]
    np.testing.assert_allclose(norms, expected, rtol=1e-12)
    assert np.all(cell.kernel.grad == 0) and np.all(cell.recurrent_kernel.grad == 0)


def test_leaves_state_history_and_grads_alone(float64):
    mdl.set_seed(4)
    rnn = mdl.RNN(mdl.GRUCell(F, H), return_sequences=True, stateful=True)
    x = np.random.default_rng(4).standard_normal((B, T, F))
    out = rnn(x)
    rnn.backward(np.ones_like(out))
    grads = [p.grad.copy() for p in rnn.parameters()]
    carried = rnn.get_state()
    mid = rnn.state_at(2)
    norms = diagnostics.gradient_flow(rnn, x)
    for p, g in zip(rnn.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)
    np.testing.assert_array_equal(rnn.get_state()[0], carried[0])
    np.testing.assert_array_equal(rnn.state_at(2)[0], mid[0])
    # It started from the carried state: the same as a fresh layer set to that state.
    fresh = mdl.RNN(rnn.cell)
    fresh.set_state(carried)
    np.testing.assert_array_equal(diagnostics.gradient_flow(fresh, x), norms)
    rnn.reset_states()
    assert not np.allclose(diagnostics.gradient_flow(rnn, x), norms)


def test_sequential_probes_its_first_rnn(float64):
    mdl.set_seed(5)
    pre = mdl.Dense(F, 4)
    rnn = mdl.RNN(mdl.LSTMCell(4, H), return_sequences=True)
    model = mdl.Sequential([pre, mdl.Tanh(), rnn, mdl.RNN(mdl.GRUCell(H, 2)), mdl.Dense(2, 1)])
    x = np.random.default_rng(5).standard_normal((B, T, F))
    np.testing.assert_array_equal(diagnostics.gradient_flow(model, x, seed=7),
                                  diagnostics.gradient_flow(rnn, np.tanh(pre(x)), seed=7))
    assert not np.allclose(diagnostics.gradient_flow(model, x, seed=7), diagnostics.gradient_flow(model, x, seed=8))


@pytest.mark.parametrize(
    "call, err, pattern",
    [
        (lambda r: diagnostics.gradient_flow(r, np.zeros((B, T))), ValueError,
         r"gradient_flow: expected x of shape \(batch, time, 2\) for .*, got \(2, 6\)"),
        (lambda r: diagnostics.gradient_flow(r, np.zeros((B, T, F)), np.zeros((B, 2))), ValueError,
         r"expected grad_output of shape \(2, 3\), got \(2, 2\)"),
        (lambda r: diagnostics.gradient_flow(r, np.zeros((B, T, F)), state_index=1), ValueError,
         r"state_index must be an int in \[0, 1\), got 1"),
        (lambda r: diagnostics.gradient_flow(mdl.Sequential([mdl.Dense(2, 2)]), np.zeros((B, T, F))), ValueError,
         r"the Sequential has no RNN layer among its layers \['Dense'\]"),
        (lambda r: diagnostics.gradient_flow(r.cell, np.zeros((B, T, F))), TypeError,
         r"expected an RNN or a Sequential containing one, got RNNCell"),
        (lambda r: diagnostics.gradient_flow(r, np.full((B, T, F), "a")), TypeError, r"x must be a real numeric array"),
    ],
)
def test_errors(call, err, pattern):
    with pytest.raises(err, match=pattern):
        call(mdl.RNN(mdl.RNNCell(F, H)))


def test_single_step_sequence():
    norms = diagnostics.gradient_flow(mdl.RNN(mdl.RNNCell(F, H)), np.ones((B, 1, F)), np.ones((B, H)))
    np.testing.assert_allclose(norms, [np.sqrt(B * H)])


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_matches_torch_autograd_through_the_steps(float64, kind):
    """norms[k] = ||dL/dh_{T-k}|| from torch's autograd over a loop of its cell, L = sum(h_T * G)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind](F, H).double()
    cell = {"rnn": mdl.RNNCell, "lstm": mdl.LSTMCell, "gru": mdl.GRUCell}[kind](F, H)
    rnn = interop.load_torch_weights(mdl.RNN(cell), ref)
    rng = np.random.default_rng(9)
    x, G = rng.standard_normal((B, T, F)), rng.standard_normal((B, H))
    h = c = torch.zeros(B, H, dtype=torch.float64)
    states = []
    for t in range(T):
        xt = torch.from_numpy(x[:, t])
        if kind == "lstm":
            h, c = ref(xt, (h, c))
        else:
            h = ref(xt, h)
        h.retain_grad()
        states.append(h)  # states[t] is the state after t + 1 steps
    (h * torch.from_numpy(G)).sum().backward()
    expected = [np.linalg.norm(states[T - 1 - k].grad.numpy()) for k in range(T)]
    np.testing.assert_allclose(diagnostics.gradient_flow(rnn, x, G), expected, rtol=1e-10)
