"""RNN: stateful carry, the state interface, stacked layers, no_grad, gradient
accumulation, no aliasing (what RNN hands out never shares memory with what its
backward reads), gradient checks in float64 where a gradient is involved, and bad inputs.
Users' cells in RNN: tests/layers/test_cell.py; masks: tests/layers/test_rnn_masks.py;
initial and final states: tests/layers/test_rnn_states.py; PyTorch's packed sequences:
tests/layers/test_packed.py."""

import contextlib

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import CELL_KINDS, make_cell, random_state, with_step_loop
from tests.helpers.bad_inputs import BAD_X2, BAD_X3, RNN_NAME, after_forward, assert_bad_input, bad_input_params, stateful_rnn


# ---- stateful carry and stacks -------------------------------------------------------------
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_stateful_carry_and_gradcheck_from_carried_state(float64, kind):
    rng = np.random.default_rng(5)
    mdl.set_seed(5)
    cell = make_cell(kind, 3, 4)
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


# ---- the RNN lifecycle --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_rnn_output_shapes(kind, rng):
    cell = make_cell(kind, 3, 5)
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
    s0 = random_state(cell, 2, rng)
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
        ((np.zeros((2, 4)), np.zeros((2, 3))), r"set_state: expected state\[0\] of shape \(batch, 3\), got \(2, 4\)"),
        ((np.zeros((2, 3)), np.zeros((3, 3))), r"set_state: expected state\[1\] of shape \(2, 3\), got \(3, 3\)"),
        ((np.zeros(3), np.zeros(3)), r"set_state: expected state\[0\] of shape \(batch, 3\), got \(3,\)"),
        ((np.zeros((2, 3)),), r"tuple of 2 arrays, got tuple of length 1"),
        (np.zeros((2, 3)), r"tuple of 2 arrays, got ndarray"),
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


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_rnn_gradients_accumulate(float64, kind, rng):
    cell = make_cell(kind, 2, 3)
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


# ---- no aliasing ------------------------------------------------------------------------------
def _run_and_edit(cell, x, g, s0, return_sequences, edit):
    """Two stateful forwards from ``s0`` and a backward of the second; with ``edit``, every
    array RNN hands out (outputs, ``state_at`` of every step, ``get_state``) is overwritten
    in place as soon as it is returned. Returns copies of what matters to a user."""
    rnn = mdl.RNN(cell, return_sequences=return_sequences, stateful=True)
    rnn.set_state(s0)
    cell.zero_grad()
    outputs = []
    for part in (x[:, :3], x[:, 3:]):
        y = rnn.forward(part)
        outputs.append(y.copy())
        handed_out = [y, *rnn.get_state()] + [s for t in range(part.shape[1] + 1) for s in rnn.state_at(t)]
        if edit:
            for a in handed_out:
                a[...] = 1e3
    states = [np.array(s) for t in range(x.shape[1] - 2) for s in rnn.state_at(t)] + list(rnn.get_state())
    dx = rnn.backward(g)
    if edit:
        dx[...] = 1e3  # nothing reads it afterwards either
    return outputs, states, rnn.initial_state_grad, [p.grad.copy() for p in cell.parameters()]


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("path", ["fused", "step loop"])
def test_returned_arrays_do_not_alias_what_backward_reads(float64, kind, return_sequences, path):
    """Editing outputs and states in place changes neither the gradients nor the carried state."""
    rng = np.random.default_rng(9)
    mdl.set_seed(9)
    cell = make_cell(kind, 3, 4)
    if path == "step loop":
        with_step_loop(cell)
    x = rng.standard_normal((2, 7, 3))
    g = rng.standard_normal((2, 4, 4) if return_sequences else (2, 4))
    s0 = random_state(cell, 2, rng)
    edited = _run_and_edit(cell, x, g, s0, return_sequences, edit=True)
    fresh = _run_and_edit(cell, x, g, s0, return_sequences, edit=False)
    (out_e, states_e, ds_e, grads_e), (out_f, states_f, ds_f, grads_f) = edited, fresh
    for a, b in zip(out_e + states_e + list(ds_e) + grads_e, out_f + states_f + list(ds_f) + grads_f, strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(np.any(gr != 0) for gr in grads_f)



# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("rnn_non_cell", lambda: mdl.RNN(mdl.Dense(3, 2)), TypeError, r"RNN: cell must be a Cell .*got Dense"),
    (
            "rnn_flag_not_bool",
            lambda: mdl.RNN(mdl.GRUCell(3, 2), return_sequences=1),
            TypeError,
            r"RNN: return_sequences must be a bool, got 1",
        ),
    (
            "rnn_stateful_str",
            lambda: mdl.RNN(mdl.GRUCell(3, 2), stateful="no"),
            TypeError,
            r"RNN: stateful must be a bool, got 'no'",
        ),
    (
            "rnn_rank2",
            lambda: mdl.RNN(mdl.LSTMCell(3, 4)).forward(BAD_X2),
            ValueError,
            RNN_NAME + r".*expected input \(batch, time, 3\), got shape \(2, 3\)",
        ),
    (
            "rnn_rank4",
            lambda: mdl.RNN(mdl.GRUCell(3, 4)).forward(np.zeros((1, 2, 4, 3))),
            ValueError,
            RNN_NAME + r".*expected input \(batch, time, 3\), got shape \(1, 2, 4, 3\)",
        ),
    (
            "rnn_wrong_features",
            lambda: mdl.RNN(mdl.RNNCell(3, 4)).forward(np.zeros((2, 4, 5))),
            ValueError,
            RNN_NAME + r".*expected input \(batch, time, 3\), got shape \(2, 4, 5\)",
        ),
    (
            "rnn_zero_steps",
            lambda: mdl.RNN(mdl.RNNCell(3, 4)).forward(np.zeros((2, 0, 3))),
            ValueError,
            RNN_NAME + r".*at least one sample and one step, got shape \(2, 0, 3\)",
        ),
    (
            "rnn_string",
            lambda: mdl.RNN(mdl.RNNCell(3, 4)).forward(np.full((2, 4, 3), "x")),
            TypeError,
            RNN_NAME + r".*input must be a real numeric array, got dtype <U1",
        ),
    (
            "rnn_complex",
            lambda: mdl.RNN(mdl.LSTMCell(3, 4)).forward(BAD_X3 + 0j),
            TypeError,
            RNN_NAME + r".*got dtype complex128",
        ),
    (
            "rnn_backward_first",
            lambda: mdl.RNN(mdl.GRUCell(3, 2)).backward(np.zeros((2, 2))),
            RuntimeError,
            RNN_NAME + r".*backward called before forward",
        ),
    (
            "rnn_grad_shape",
            lambda: after_forward(mdl.RNN(mdl.LSTMCell(3, 4)), BAD_X3).backward(np.zeros((2, 4, 4))),
            ValueError,
            RNN_NAME + r".*expected grad_out of shape \(2, 4\), got \(2, 4, 4\)",
        ),
    (
            "rnn_seq_grad_shape",
            lambda: after_forward(mdl.RNN(mdl.GRUCell(3, 4), return_sequences=True), BAD_X3).backward(np.zeros((2, 4))),
            ValueError,
            RNN_NAME + r".*expected grad_out of shape \(2, 4, 4\), got \(2, 4\)",
        ),
    (
            "rnn_grad_complex",
            lambda: after_forward(mdl.RNN(mdl.RNNCell(3, 4)), BAD_X3).backward(np.zeros((2, 4), complex)),
            TypeError,
            RNN_NAME + r".*grad_out must be a real numeric array, got dtype complex128",
        ),
    (
            "set_state_width",
            lambda: mdl.RNN(mdl.RNNCell(3, 4)).set_state((np.zeros((2, 5)),)),
            ValueError,
            RNN_NAME + r".*set_state: expected state\[0\] of shape \(batch, 4\), got \(2, 5\)",
        ),
    (
            "set_state_count",
            lambda: mdl.RNN(mdl.LSTMCell(3, 4)).set_state((np.zeros((2, 4)),)),
            ValueError,
            RNN_NAME + r".*set_state: expected state as a tuple of 2 arrays, got tuple of length 1",
        ),
    (
            "set_state_array",
            lambda: mdl.RNN(mdl.GRUCell(3, 4)).set_state(np.zeros((2, 4))),
            ValueError,
            RNN_NAME + r".*set_state: expected state as a tuple of 1 arrays, got ndarray",
        ),
    (
            "set_state_string",
            lambda: mdl.RNN(mdl.GRUCell(3, 4)).set_state((np.full((2, 4), "a"),)),
            TypeError,
            RNN_NAME + r".*state\[0\] must be a real numeric array, got dtype <U1",
        ),
    (
            "stateful_batch_change",
            lambda: stateful_rnn().forward(np.zeros((3, 4, 3))),
            ValueError,
            RNN_NAME + r".*batch size 2 but the input has 3; call reset_states\(\)",
        ),
    ("state_at_before_forward", lambda: mdl.RNN(mdl.RNNCell(3, 4)).state_at(0), RuntimeError, RNN_NAME + r".*state_at"),
    (
            "state_at_past_end",
            lambda: stateful_rnn().state_at(5),
            ValueError,
            RNN_NAME + r".*state_at\(t\) expected .*0 <= t <= 4, got 5",
        ),
    ("state_at_negative", lambda: stateful_rnn().state_at(-1), ValueError, RNN_NAME + r".*0 <= t <= 4, got -1"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)


def _fast_path(forward=None, backward=None):
    """An ``LSTMCell`` whose own sequence methods return ``forward(out)`` / ``backward(out)``."""
    class FastCell(mdl.LSTMCell):
        def forward_sequence(self, xs, state, keep_history=True, mask=None):
            out = super().forward_sequence(xs, state, keep_history, mask)
            return out if forward is None else forward(out)

        def backward_sequence(self, dhs, dstate, cache, mask=None):
            out = super().backward_sequence(dhs, dstate, cache, mask)
            return out if backward is None else backward(out)
    return FastCell(2, 3)


FAST_PATH_MISTAKES = {
    "forward_pair": (_fast_path(forward=lambda out: out[:2]), TypeError,
                     r"FastCell\.forward_sequence must return a tuple \(hs, final_state, cache\), got tuple of length 2"),
    "hs_width": (_fast_path(forward=lambda out: (out[0][:, :, :2],) + out[1:]), ValueError,
                 r"FastCell\.forward_sequence returned hs of shape \(5, 4, 2\); expected \(5, 4, 3\)"),
    "final_array": (_fast_path(forward=lambda out: (out[0], out[1][0], out[2])), TypeError,
                    r"FastCell\.forward_sequence returned final_state as ndarray of shape \(4, 3\); expected a tuple of 2"),
    "dxs_width": (_fast_path(backward=lambda out: (out[0][:, :, :1], out[1])), ValueError,
                  r"FastCell\.backward_sequence returned dxs of shape \(5, 4, 1\); expected \(5, 4, 2\)"),
    "dstate0_count": (_fast_path(backward=lambda out: (out[0], out[1][:1])), TypeError,
                      r"FastCell\.backward_sequence returned dstate0 as tuple of length 1; expected a tuple of 2"),
}


@pytest.mark.parametrize("mistake, grad", [(m, True) for m in FAST_PATH_MISTAKES]
                         + [(m, False) for m in FAST_PATH_MISTAKES if "backward" not in FAST_PATH_MISTAKES[m][2]])
def test_a_fast_path_returning_the_wrong_thing_is_named(rng, mistake, grad):
    """``RNN`` checks what a cell's sequence methods return against the contract, with history
    and without (then once per chunk of ``time_chunk`` steps)."""
    cell, exc, pattern = FAST_PATH_MISTAKES[mistake]
    rnn, x = mdl.RNN(cell), rng.standard_normal((4, 5, 2))
    with pytest.raises(exc, match=pattern):
        with contextlib.nullcontext() if grad else mdl.no_grad():
            rnn.forward(x)
        rnn.backward(np.ones((4, 3)))
