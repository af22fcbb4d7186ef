"""RNN's states in and out: ``initial_state=``, ``final_state``, ``grad_final_state``,
``initial_state_grad`` (gradient checks, an encoder-decoder whose gradient flows through
both RNNs, with and without masks), ``set_state`` on a non-stateful RNN (one forward only),
and the errors of bad states. The rest of RNN: tests/layers/test_rnn.py."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import CELL_KINDS, Masked, make_cell, random_state, right_padded_mask


class _FinalStateOut(mdl.Layer):
    """Outputs ``[y | final_state[k]]`` so that ``gradcheck`` checks ``grad_final_state[k]``
    (the other entries None)."""

    def __init__(self, rnn, k):
        super().__init__()
        self.rnn, self.k = rnn, k

    def forward(self, x):
        y = self.rnn.forward(x, mask=right_padded_mask([4, 2, 0], 4))
        return np.concatenate([y, self.rnn.final_state[self.k]], axis=-1)

    def backward(self, grad_out):
        H = self.rnn.cell.hidden_size
        extra = [None] * len(self.rnn.cell.state_size)
        extra[self.k] = grad_out[:, H:]
        return self.rnn.backward(grad_out[:, :H], grad_final_state=tuple(extra))


class _EncoderDecoder(mdl.Layer):
    """``x: (batch, T_enc + T_dec, F)``: the encoder reads the first ``T_enc`` steps (masked),
    its final state starts the decoder on the rest; the decoder's outputs are the output."""

    def __init__(self, kind, F, H, t_enc, enc_mask=None):
        super().__init__()
        self.encoder = mdl.RNN(make_cell(kind, F, H))
        self.decoder = mdl.RNN(make_cell(kind, F, H), return_sequences=True)
        self.t_enc, self.enc_mask = t_enc, enc_mask

    def forward(self, x):
        self.encoder.forward(x[:, :self.t_enc], mask=self.enc_mask)
        return self.decoder.forward(x[:, self.t_enc:], initial_state=self.encoder.final_state)

    def backward(self, grad_out):
        dx_dec = self.decoder.backward(grad_out)
        B, H = grad_out.shape[0], self.encoder.cell.hidden_size
        dx_enc = self.encoder.backward(np.zeros((B, H)), grad_final_state=self.decoder.initial_state_grad)
        return np.concatenate([dx_enc, dx_dec], axis=1)


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("masked", [False, True])
def test_encoder_decoder_gradcheck(float64, kind, masked):
    rng = np.random.default_rng(21)
    mdl.set_seed(21)
    mask = right_padded_mask([4, 2, 1], 4) if masked else None
    model = _EncoderDecoder(kind, 2, 3, 4, mask)
    x = rng.standard_normal((3, 7, 2))
    assert mdl.gradcheck(model, x)
    # the decoder really starts from the encoder's final state: not from zeros
    y = model.forward(x)
    assert np.abs(y - mdl.RNN(model.decoder.cell, return_sequences=True).forward(x[:, 4:])).max() > 1e-3


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_grad_final_state_gradcheck(float64, kind):
    """Each entry of ``grad_final_state`` alone (the others None), with a masked batch."""
    rng = np.random.default_rng(22)
    mdl.set_seed(22)
    cell = make_cell(kind, 2, 3)
    for k in range(len(cell.state_size)):
        assert mdl.gradcheck(_FinalStateOut(mdl.RNN(cell), k), rng.standard_normal((3, 4, 2)))


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_initial_state_starts_this_call_and_its_gradient(float64, kind):
    rng = np.random.default_rng(23)
    mdl.set_seed(23)
    cell = make_cell(kind, 2, 3)
    x, s0 = rng.standard_normal((2, 5, 2)), random_state(cell, 2, rng)
    via_set_state = mdl.RNN(cell, return_sequences=True)
    via_set_state.set_state(s0)
    expected = via_set_state.forward(x)
    stateful = mdl.RNN(cell, return_sequences=True, stateful=True)
    stateful.forward(x)  # a carried state that initial_state overrides
    np.testing.assert_array_equal(stateful.forward(x, initial_state=s0), expected)
    for a, b in zip(stateful.get_state(), stateful.final_state, strict=True):
        np.testing.assert_array_equal(a, b)  # and the stateful layer carries on from there
    rnn = mdl.RNN(cell, return_sequences=True)
    assert mdl.gradcheck(Masked(rnn, None, initial_state=s0), x)
    # initial_state_grad against central differences of the objective
    g = rng.standard_normal(expected.shape)
    rnn.forward(x, initial_state=s0)
    rnn.backward(g)
    for k, analytic in enumerate(rnn.initial_state_grad):
        numeric = np.empty_like(analytic)
        for idx in np.ndindex(analytic.shape):
            values = []
            for sign in (1, -1):
                s = [a.copy() for a in s0]
                s[k][idx] += sign * 1e-6
                values.append(np.sum(rnn.forward(x, initial_state=tuple(s)) * g))
            numeric[idx] = (values[0] - values[1]) / 2e-6
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_final_state_is_each_rows_last_real_step_and_a_copy(float64, rng):
    cell = mdl.LSTMCell(2, 3)
    mask = right_padded_mask([5, 2, 0], 5)
    x, s0 = rng.standard_normal((3, 5, 2)), random_state(cell, 3, rng)
    rnn = mdl.RNN(cell, return_sequences=True)
    assert rnn.final_state is None
    y = rnn.forward(x, mask=mask, initial_state=s0)
    final = rnn.final_state
    np.testing.assert_array_equal(final[0][0], y[0, 4])
    np.testing.assert_array_equal(final[0][1], y[1, 1])
    for got, want in zip(final, s0):
        np.testing.assert_array_equal(got[2], want[2])  # no real step: the initial state
    dx = rnn.backward(np.ones_like(y))
    final[0][...] = 99.0  # a copy: backward, state_at and a second final_state are unaffected
    np.testing.assert_array_equal(rnn.final_state[0][0], y[0, 4])
    np.testing.assert_array_equal(rnn.backward(np.ones_like(y)), dx)


def test_set_state_on_a_non_stateful_rnn_starts_one_forward(float64, rng):
    cell = mdl.GRUCell(2, 3)
    x, s0 = rng.standard_normal((2, 4, 2)), random_state(cell, 2, rng)
    rnn = mdl.RNN(cell)
    rnn.set_state(s0)
    assert rnn.get_state() is not None
    first = rnn.forward(x)
    assert rnn.get_state() is None  # used up
    np.testing.assert_array_equal(first, mdl.RNN(cell).forward(x, initial_state=s0))
    np.testing.assert_array_equal(rnn.forward(x), mdl.RNN(cell).forward(x))  # zeros again


def test_no_real_step_passes_the_final_state_gradient_to_the_initial_state(float64, rng):
    cell = mdl.LSTMCell(2, 3)
    rnn = mdl.RNN(cell)
    rnn.forward(rng.standard_normal((2, 3, 2)), mask=right_padded_mask([3, 0], 3))
    gfs = (rng.standard_normal((2, 3)), rng.standard_normal((2, 3)))
    g = rng.standard_normal((2, 3))
    rnn.backward(g, grad_final_state=gfs)
    dh0, dc0 = rnn.initial_state_grad
    np.testing.assert_array_equal(dh0[1], gfs[0][1] + g[1])  # the output of a row without real steps is h0
    np.testing.assert_array_equal(dc0[1], gfs[1][1])


@pytest.mark.parametrize(
    "state, pattern",
    [
        ((np.zeros((2, 3)),), r"expected initial_state as a tuple of 2 arrays, got tuple of length 1"),
        (np.zeros((2, 3)), r"expected initial_state as a tuple of 2 arrays, got ndarray"),
        ((np.zeros((2, 3)), np.zeros((2, 4))), r"expected initial_state\[1\] of shape \(2, 3\), got \(2, 4\)"),
        ((np.zeros((3, 3)), np.zeros((3, 3))), r"expected initial_state\[0\] of shape \(2, 3\), got \(3, 3\)"),
    ],
)
def test_bad_initial_state(rng, state, pattern):
    with pytest.raises(ValueError, match=pattern):
        mdl.RNN(mdl.LSTMCell(2, 3)).forward(rng.standard_normal((2, 4, 2)), initial_state=state)


@pytest.mark.parametrize(
    "grad, pattern",
    [
        ((np.zeros((2, 3)),), r"expected grad_final_state as a tuple of 2 arrays \(or None entries\).*length 1"),
        (np.zeros((2, 3)), r"expected grad_final_state as a tuple of 2 arrays.*got ndarray"),
        ((None, np.zeros((2, 4))), r"grad_final_state\[1\]: expected grad_out of shape \(2, 3\), got \(2, 4\)"),
    ],
)
def test_bad_grad_final_state(rng, grad, pattern):
    rnn = mdl.RNN(mdl.LSTMCell(2, 3))
    rnn.forward(rng.standard_normal((2, 4, 2)))
    with pytest.raises(ValueError, match=pattern):
        rnn.backward(np.zeros((2, 3)), grad_final_state=grad)
