"""Masking: the input passes through (a copy, gradient too), the mask is
``any(x != mask_value, axis=-1)``, the mask drives an RNN so that padding never matters,
configuration and bad inputs."""

import numpy as np
import pytest

import minidl as mdl


def test_masking_passes_through_and_makes_the_mask(rng):
    x = rng.standard_normal((2, 4, 3))
    x[0, 2:] = -1.0  # padding steps, every feature the mask value
    x[1, 1, 0] = -1.0  # one feature equal to it is not padding
    layer = mdl.layers.Masking(mask_value=-1.0)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, x)
    assert not np.shares_memory(y, x)
    np.testing.assert_array_equal(layer.compute_mask(x, None), [[True, True, False, False], [True] * 4])
    # the mask replaces an incoming one
    np.testing.assert_array_equal(layer.compute_mask(x, np.zeros((2, 4), bool)), layer.compute_mask(x, None))
    g = rng.standard_normal(x.shape)
    dx = layer.backward(g)
    np.testing.assert_array_equal(dx, g)
    assert not np.shares_memory(dx, g)


def test_masking_keeps_the_dtype(rng):
    x = rng.standard_normal((1, 2, 2)).astype(np.float32)
    assert mdl.layers.Masking().forward(x).dtype == np.float32


def test_masking_then_rnn_ignores_the_padded_steps(float64, rng):
    """Zero-padded sequences: Masking's mask makes the RNN's output that of the real steps."""
    masking, rnn = mdl.layers.Masking(), mdl.RNN(mdl.LSTMCell(2, 3))
    x = rng.standard_normal((2, 5, 2))
    x[1, 3:] = 0.0
    y = rnn.forward(masking.forward(x), mask=masking.compute_mask(x, None))
    np.testing.assert_allclose(y[1], rnn.forward(x[1:, :3])[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(y[0], rnn.forward(x[:1])[0], rtol=0, atol=1e-14)


def test_masking_config_and_repr():
    layer = mdl.layers.Masking(0.5)
    assert layer.get_config() == {"mask_value": 0.5}
    assert mdl.layers.Masking.from_config(layer.get_config()).mask_value == 0.5
    assert repr(layer) == "Masking(mask_value=0.5)"
    assert mdl.layers.Masking().mask_value == 0.0 and not mdl.layers.Masking.takes_mask


@pytest.mark.parametrize(
    "value, error, pattern",
    [("0", TypeError, r"Masking: mask_value must be a real number"), (float("nan"), ValueError, r"must be finite")],
)
def test_masking_bad_arguments(value, error, pattern):
    with pytest.raises(error, match=pattern):
        mdl.layers.Masking(value)


def test_masking_bad_inputs_and_calls(rng):
    with pytest.raises(ValueError, match=r"expected input \(batch, time, features\), got shape \(2, 3\)"):
        mdl.layers.Masking().forward(rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match=r"expected input \(batch, time, features\)"):
        mdl.layers.Masking().compute_mask(rng.standard_normal((2,)), None)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        mdl.layers.Masking().backward(np.zeros((1, 2, 2)))
    layer = mdl.layers.Masking()
    layer.forward(np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(1, 2, 2\)"):
        layer.backward(np.zeros((1, 2)))
