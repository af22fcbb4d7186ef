"""RepeatVector: golden values and gradients, gradcheck, PyTorch's repeat, shapes and masks,
the Keras-style encoder-decoder in a Sequential, output aliasing, bad inputs."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import ZeroMasker, assert_close_rel, assert_output_edits_leave_gradients


def test_golden_values_and_gradient(float64):
    layer = mdl.RepeatVector(3)
    x = np.array([[1.0, -2.0], [0.5, 4.0]])
    y = layer.forward(x)
    assert y.shape == (2, 3, 2)
    np.testing.assert_array_equal(y, [[[1.0, -2.0]] * 3, [[0.5, 4.0]] * 3])
    g = np.arange(12.0).reshape(2, 3, 2)
    # dL/dx = sum over the repeated axis: sample 0 [0+2+4, 1+3+5], sample 1 [6+8+10, 7+9+11]
    np.testing.assert_array_equal(layer.backward(g), [[6.0, 9.0], [24.0, 27.0]])


def test_gradcheck(float64, rng):
    assert mdl.gradcheck(mdl.RepeatVector(4), rng.standard_normal((3, 2)))


def test_dtypes():
    layer = mdl.RepeatVector(2)
    assert layer.forward(np.ones((1, 3), np.float64)).dtype == np.float64  # float input keeps its dtype
    assert layer.backward(np.ones((1, 2, 3))).dtype == np.float64
    assert layer.forward(np.ones((1, 3), np.int64)).dtype == np.float32  # integers: the default dtype


def test_matches_torch_repeat(float64, rng):
    torch = pytest.importorskip("torch")
    x, g = rng.standard_normal((3, 4)), rng.standard_normal((3, 5, 4))
    xt = torch.from_numpy(x).requires_grad_(True)
    out = xt.unsqueeze(1).repeat(1, 5, 1)
    out.backward(torch.from_numpy(g))
    layer = mdl.RepeatVector(5)
    assert_close_rel(layer.forward(x), out.detach().numpy(), "output", tol=0.0)
    assert_close_rel(layer.backward(g), xt.grad.numpy(), "input gradient", tol=1e-15)


def test_shapes_config_and_mask():
    layer = mdl.RepeatVector(7)
    assert layer.compute_output_shape((None, 3)) == (None, 7, 3)
    assert layer.get_config() == {"n": 7} and repr(layer) == "RepeatVector(n=7)"
    assert layer.compute_mask(np.ones((2, 3)), None) is None
    # a mask before the encoder is consumed by it; RepeatVector's output has none either way
    model = mdl.Sequential([ZeroMasker(), mdl.Flatten(), mdl.RepeatVector(2)])
    model.forward(np.ones((2, 3, 1)))
    assert model.output_mask is None


def test_keras_style_encoder_decoder_in_a_sequential(float64, rng):
    T_in, T_out, F, H, V = 6, 3, 2, 5, 4
    model = mdl.Sequential([
        mdl.RNN(mdl.LSTMCell(F, H)),                                  # encoder: (B, T_in, F) -> (B, H)
        mdl.RepeatVector(T_out),                                      # (B, H) -> (B, T_out, H)
        mdl.RNN(mdl.LSTMCell(H, H), return_sequences=True),           # decoder: (B, T_out, H)
        mdl.Dense(H, V),                                              # (B, T_out, V)
    ])
    x = rng.standard_normal((2, T_in, F))
    assert model.forward(x).shape == (2, T_out, V)
    assert "(None, 3, 5)" in model.summary() and "(None, 3, 4)" in model.summary()
    assert mdl.gradcheck(model, x)


def test_output_shares_no_memory_with_what_backward_reads(rng):
    assert_output_edits_leave_gradients(mdl.Sequential([mdl.Dense(2, 2), mdl.RepeatVector(3)]), rng.standard_normal((2, 2)))


@pytest.mark.parametrize(
    "make, err, pattern",
    [
        (lambda: mdl.RepeatVector(0), ValueError, r"RepeatVector: n must be >= 1, got 0"),
        (lambda: mdl.RepeatVector(2.0), TypeError, r"RepeatVector: n must be an int, got 2\.0"),
        (lambda: mdl.RepeatVector(2).forward(np.ones((2, 3, 1))), ValueError,
         r"RepeatVector\(n=2\): expected input of rank 2 \(batch, features\), got shape \(2, 3, 1\)"),
        (lambda: mdl.RepeatVector(2).forward(np.full((2, 3), "a")), TypeError, r"input must be a real numeric array, got dtype <U1"),
        (lambda: mdl.RepeatVector(2).backward(np.ones((2, 2, 3))), RuntimeError, r"backward called before forward"),
    ],
)
def test_bad_inputs(make, err, pattern):
    with pytest.raises(err, match=pattern):
        make()


def test_grad_out_of_the_wrong_shape():
    layer = mdl.RepeatVector(2)
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"RepeatVector\(n=2\): expected grad_out of shape \(2, 2, 3\), got \(2, 3\)"):
        layer.backward(np.ones((2, 3)))
    with mdl.no_grad():
        layer.forward(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"after a forward under no_grad"):
        layer.backward(np.ones((2, 2, 3)))
