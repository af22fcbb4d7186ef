"""minidl/interop/_common.py: what every import (Keras and PyTorch) loads passes ``load``, and so
``Layer.load_state_dict``'s checks: float32/float64 only, finite, within a float32 layer's range."""

import warnings

import numpy as np
import pytest

import minidl as mdl
from minidl import interop

F, H = 3, 4


def _assert_refused(layer, load, exc, pattern):
    """``load(layer)`` raises ``exc`` matching ``pattern``, also with warnings as errors, and changes nothing."""
    before = layer.state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an error, not inf with a warning
        with pytest.raises(exc, match=pattern):
            load(layer)
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def _keras_lstm(value=None, dtype=np.float64):
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((F, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)]
    if value is not None:
        weights[1][2, 5] = value
    return [w.astype(dtype) for w in weights]


@pytest.mark.parametrize("weights, exc, pattern", [
    (_keras_lstm(np.nan), ValueError, r"entry 'cell\.recurrent_kernel' has non-finite values \(nan at index \(2, 5\)\)"),
    (_keras_lstm(-np.inf), ValueError, r"entry 'cell\.recurrent_kernel' has non-finite values \(-inf at index \(2, 5\)\)"),
    (_keras_lstm(1e39), ValueError, r"entry 'cell\.recurrent_kernel' has values beyond float32's range \(largest "
                                    r"magnitude 1e\+39\); they would become inf"),
    (_keras_lstm(dtype=np.int64), TypeError, r"entry 'cell\.kernel' must be a float32 or float64 array, got dtype int64"),
    (_keras_lstm(dtype=np.float16), TypeError, r"entry 'cell\.kernel' must be a float32 or float64 array, got dtype float16"),
])
def test_keras_weights_that_are_not_finite_floats_are_refused(weights, exc, pattern):
    _assert_refused(mdl.RNN(mdl.LSTMCell(F, H)), lambda layer: interop.load_keras_weights(layer, weights), exc,
                    r"^load_keras_weights: the Keras weights do not fit RNN\(LSTMCell\(.*\): load_state_dict: " + pattern)


def test_finite_float64_keras_weights_load_into_float32():
    weights = _keras_lstm(3e38)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = interop.load_keras_weights(mdl.RNN(mdl.LSTMCell(F, H)), weights)
    assert layer.cell.recurrent_kernel.data.dtype == np.float32
    np.testing.assert_array_equal(layer.cell.recurrent_kernel.data, weights[1].astype(np.float32))


def test_a_bidirectional_import_that_fails_in_one_direction_changes_nothing():
    weights = _keras_lstm() + _keras_lstm(np.nan)  # forward arrays, then the backward ones
    bidi = mdl.Bidirectional(mdl.RNN(mdl.LSTMCell(F, H)))
    before = bidi.state_dict()
    with pytest.raises(ValueError, match=r"non-finite values"):
        interop.load_keras_weights(bidi, weights)
    for k, v in bidi.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("value, pattern", [
    (float("nan"), r"entry 'cell\.kernel' has non-finite values \(nan at index \(0, 5\)\)"),
    (1e39, r"entry 'cell\.kernel' has values beyond float32's range"),
])
def test_torch_weights_that_are_not_finite_are_refused(value, pattern):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.GRU(F, H, batch_first=True).double()
    with torch.no_grad():
        module.weight_ih_l0[1, 0] = value  # row 1 (gate r, unit 1) of torch's (3H, F): minidl's kernel[0, H + 1] (z, r, n order)
    _assert_refused(mdl.RNN(mdl.GRUCell(F, H)), lambda layer: interop.load_torch_weights(layer, module), ValueError,
                    r"^load_torch_weights: the PyTorch weights do not fit RNN\(GRUCell\(.*\): load_state_dict: " + pattern)


def test_torch_half_precision_weights_are_refused():
    torch = pytest.importorskip("torch")
    module = torch.nn.Linear(F, 2).half()
    with pytest.raises(TypeError, match=r"^load_torch_weights: the PyTorch weights do not fit Dense\(.*\): "
                                        r"load_state_dict: entry 'kernel' must be a float32 or float64 array, got dtype float16"):
        interop.load_torch_weights(mdl.Dense(F, 2), module)
