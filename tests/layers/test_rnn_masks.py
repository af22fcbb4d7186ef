"""RNN with masks: each sequence of a padded batch equals that sequence alone (fused path and
step loop), padding values and lengths never matter, gradient checks of masked RNNs, the
mask protocol (takes_mask, compute_mask) and bad masks."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import (
    CELL_KINDS, Masked, make_cell, pad_with, random_state, right_padded_mask, scattered_mask, with_step_loop,
)


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
    run alone (zeros at padded steps; a row without real steps outputs the state it started
    from, zeros at every step with return_sequences); the parameter gradients are the sum of
    the rows' own."""
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
            np.testing.assert_array_equal(y[b], 0.0 if return_sequences else s0[0][b])
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


def test_a_row_without_real_steps_outputs_zeros_from_a_zero_start(float64, rng):
    rnn = mdl.RNN(mdl.GRUCell(2, 3))
    y = rnn.forward(rng.standard_normal((2, 4, 2)), mask=right_padded_mask([4, 0], 4))
    np.testing.assert_array_equal(y[1], 0.0)
    assert np.abs(y[0]).min() > 0
