"""Errors with the hint a user needs, from minidl/sequential.py (Sequential): the loss value passed
to backward instead of its gradient, stacked RNNs whose first returns only its last step."""

import re

import numpy as np
import pytest

import minidl as mdl


def test_backward_of_the_loss_value_says_to_pass_its_gradient(rng):
    """model.backward(loss_value) failed in the last Dense with "expected grad_out of shape
    (4, 1), got ()": the Sequential says what to pass, for a float and a 0-d array alike."""
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 3)), mdl.Dense(3, 1)])
    loss = mdl.MSELoss()
    value = loss(model.forward(rng.standard_normal((4, 6, 2))), np.zeros((4, 1)))
    for wrong in (value, np.float32(value), np.array(value)):
        with pytest.raises(ValueError, match=r"^Sequential\.backward: grad_out must be the gradient of the loss with "
                           r"respect to the model's output, an array of shape \(4, 1\), got the number "
                           r"[0-9.e-]+: pass loss\.backward\(\), the gradient of the loss, not the loss value$"):
            model.backward(wrong)
    assert model.backward(loss.backward()).shape == (4, 6, 2)


def test_backward_before_forward_is_still_the_missing_forward_error():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        mdl.Sequential([mdl.Dense(2, 1)]).backward(1.0)


@pytest.mark.parametrize("between, first, width", [
    ([], "RNN(RNNCell)", 3),
    ([mdl.Dropout(0.2), mdl.Tanh(), mdl.Dense(3, 3)], "RNN(RNNCell)", 3),
])
def test_stacked_rnns_without_return_sequences_are_explained(between, first, width, rng):
    """The second RNN got the first one's last step (batch, H) and said only "expected input
    (batch, time, 3), got shape (4, 3)"; now the message names both layers and the fix."""
    model = mdl.Sequential([mdl.RNN(mdl.RNNCell(2, 3)), *between, mdl.RNN(mdl.LSTMCell(3, 2))])
    x = rng.standard_normal((4, 5, 2))
    k = 1 + len(between)
    pattern = (rf"^Sequential: layers\[{k}\] \(RNN\(LSTMCell\)\) takes sequences \(batch, time, features\), but "
               rf"layers\[0\] \({re.escape(first)}\) returns only its last step \(batch, {width}\): build layers\[0\] "
               r"with return_sequences=True to stack recurrent layers$")
    for run in (model.forward, model.predict):
        with pytest.raises(ValueError, match=pattern) as info:
            run(x)
        assert "expected input (batch, time, 3), got shape (4, 3)" in str(info.value.__cause__)


def test_a_bidirectional_last_step_is_explained_and_an_encoder_decoder_still_runs(rng):
    x = rng.standard_normal((2, 5, 2))
    bi = mdl.Sequential([mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3))), mdl.RNN(mdl.GRUCell(6, 2))])
    with pytest.raises(ValueError, match=r"layers\[0\] \(Bidirectional\) returns only its last step \(batch, 6\)"):
        bi.forward(x)
    seq2seq = mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 3)), mdl.RepeatVector(4), mdl.RNN(mdl.GRUCell(3, 2))])
    assert seq2seq.forward(x).shape == (2, 2)
    # other failures keep their own message
    with pytest.raises(ValueError, match=r"^RNN\(GRUCell.*expected input \(batch, time, 2\), got shape \(2, 5, 3\)$"):
        seq2seq.forward(rng.standard_normal((2, 5, 3)))
