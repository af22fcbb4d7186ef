"""RNN: stateful carry, the state interface, stacked layers, no_grad, gradient
accumulation, and no aliasing (what RNN hands out never shares memory with what its
backward reads); masks (each sequence alone, padding values and lengths that do not
matter, gradient checks, bad masks); gradient checks in float64 where a gradient is
involved. Users' cells in RNN: tests/layers/test_cell.py; initial and final states:
tests/layers/test_rnn_states.py; PyTorch's packed sequences: tests/layers/test_packed.py."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import (
    CELL_KINDS, Masked, make_cell, pad_with, random_state, right_padded_mask, scattered_mask, with_step_loop,
)


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



# ---- masks ---------------------------------------------------------------------------------
LENGTHS = np.array([6, 3, 1, 0])  # a full row, two padded ones, one without any real step


def _masked_run(cell, x, mask, g, return_sequences, s0=None):
    rnn = mdl.RNN(cell, return_sequences=return_sequences)
    cell.zero_grad()
    y = rnn.forward(x, mask=mask, initial_state=s0)
    dx = rnn.backward(g)
    return y, dx, rnn.final_state, rnn.initial_state_grad, [p.grad.copy() for p in cell.parameters()]


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("path", ["fused", "step loop"])
def test_masked_batch_equals_each_sequence_alone(float64, kind, return_sequences, path):
    """Right padding: each row's outputs, final state and gradients are those of its real steps
    run alone (zeros at padded steps; a row without real steps outputs zeros); the parameter
    gradients are the sum of the rows' own."""
    rng = np.random.default_rng(11)
    mdl.set_seed(11)
    cell = make_cell(kind, 3, 4)
    cell = with_step_loop(cell) if path == "step loop" else cell
    B, T = len(LENGTHS), 6
    mask = right_padded_mask(LENGTHS, T)
    x = pad_with(rng.standard_normal((B, T, 3)), mask, np.nan)
    s0 = random_state(cell, B, rng)
    g = rng.standard_normal((B, T, 4) if return_sequences else (B, 4))
    y, dx, final, ds0, grads = _masked_run(cell, x, mask, g, return_sequences, s0)
    summed = [np.zeros_like(p) for p in grads]
    for b, L in enumerate(LENGTHS):
        if L == 0:
            np.testing.assert_array_equal(y[b], 0.0)
            for got, want in zip(final, s0):
                np.testing.assert_array_equal(got[b], want[b])  # the initial state, carried through
            continue
        gb = g[b:b + 1, :L] if return_sequences else g[b:b + 1]
        y1, dx1, final1, ds1, grads1 = _masked_run(cell, x[b:b + 1, :L], None, gb, return_sequences,
                                                   tuple(s[b:b + 1] for s in s0))
        np.testing.assert_allclose(y[b, :L] if return_sequences else y[b], y1[0], rtol=0, atol=1e-13)
        if return_sequences:
            np.testing.assert_array_equal(y[b, L:], 0.0)
        np.testing.assert_allclose(dx[b, :L], dx1[0], rtol=0, atol=1e-13)
        for got, want in zip(final + ds0, final1 + ds1, strict=True):
            np.testing.assert_allclose(got[b], want[0], rtol=0, atol=1e-13)
        summed = [a + b_ for a, b_ in zip(summed, grads1)]
    np.testing.assert_array_equal(dx[~mask], 0.0)
    for got, want in zip(grads, summed, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_padding_values_and_length_never_matter(float64, kind, return_sequences):
    """The same sequences padded with 0, 1e300, inf or NaN, and with 0 or 5 more padded steps:
    the same real-step outputs and input gradients, final states, initial-state and parameter
    gradients; nothing non-finite anywhere."""
    rng = np.random.default_rng(12)
    mdl.set_seed(12)
    cell = make_cell(kind, 2, 3)
    B, T = len(LENGTHS), 6
    x = rng.standard_normal((B, T + 5, 2))
    s0 = random_state(cell, B, rng)
    g = rng.standard_normal((B, T + 5, 3) if return_sequences else (B, 3))
    runs = []
    for extra in (0, 5):
        mask = right_padded_mask(LENGTHS, T + extra)
        for value in (0.0, 1e300, np.inf, np.nan):
            xp = pad_with(x[:, :T + extra], mask, value)
            gp = g[:, :T + extra] if return_sequences else g
            y, dx, final, ds0, grads = _masked_run(cell, xp, mask, gp, return_sequences, s0)
            for arr in (y, dx) + final + ds0 + tuple(grads):
                assert np.all(np.isfinite(arr))
            runs.append((y[:, :T] if return_sequences else y, dx[:, :T], final, ds0, grads))
    first = runs[0]
    for other in runs[1:]:
        for a, b in zip(first[:2] + first[2] + first[3] + tuple(first[4]),
                        other[:2] + other[2] + other[3] + tuple(other[4]), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_masked_rnn_gradcheck(float64, kind, return_sequences):
    """Padding anywhere (an empty row, a step padded in every row), from a non-zero initial state."""
    rng = np.random.default_rng(13)
    mdl.set_seed(13)
    cell = make_cell(kind, 3, 4)
    mask = scattered_mask(rng, 3, 6)
    s0 = random_state(cell, 3, rng)
    rnn = mdl.RNN(cell, return_sequences=return_sequences)
    assert mdl.gradcheck(Masked(rnn, mask, initial_state=s0), rng.standard_normal((3, 6, 3)))


def test_compute_mask_and_takes_mask(rng):
    mask = right_padded_mask([3, 1], 3)
    x = rng.standard_normal((2, 3, 2))
    assert mdl.RNN.takes_mask
    np.testing.assert_array_equal(mdl.RNN(mdl.GRUCell(2, 3), return_sequences=True).compute_mask(x, mask), mask)
    assert mdl.RNN(mdl.GRUCell(2, 3)).compute_mask(x, mask) is None


@pytest.mark.parametrize(
    "mask, error, pattern",
    [
        (np.ones((2, 4), int), TypeError, r"mask must be a bool array.*got dtype int"),
        (np.ones((2, 4)), TypeError, r"mask must be a bool array.*got dtype float64"),
        (np.ones((2, 3), bool), ValueError, r"expected mask of shape \(2, 4\).*got \(2, 3\)"),
        (np.ones((4, 2), bool), ValueError, r"expected mask of shape \(2, 4\)"),
        (np.ones((2, 4, 1), bool), ValueError, r"expected mask of shape \(2, 4\).*got \(2, 4, 1\)"),
    ],
)
def test_bad_masks(rng, mask, error, pattern):
    with pytest.raises(error, match=pattern):
        mdl.RNN(mdl.LSTMCell(2, 3)).forward(rng.standard_normal((2, 4, 2)), mask=mask)
