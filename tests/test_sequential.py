"""Sequential (minidl/model.py): names, state dicts, forward/backward, predict, summary, config, states.

The Model base class has its own module, tests/test_model.py; Sequential and masks:
tests/test_sequential_masks.py."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers.bad_inputs import BAD_X, BAD_X2, assert_bad_input, bad_input_params, bad_model


def _nested():
    return mdl.Sequential(
        [
            mdl.Sequential([mdl.Dense(2, 3), mdl.Tanh()]),
            mdl.RNN(mdl.LSTMCell(3, 4), return_sequences=True),
            mdl.RNN(mdl.GRUCell(4, 2)),
            mdl.Dense(2, 1, bias=False),
        ]
    )


class _Probe(mdl.Layer):
    """Identity layer recording (training, grad enabled, batch size) at each forward."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, mdl.is_grad_enabled(), x.shape[0]))
        return x

    def backward(self, grad_out):
        return grad_out


# ---- structure ---------------------------------------------------------------------------
def test_named_parameters_of_a_nested_model():
    model = _nested()
    names = [n for n, _ in model.named_parameters()]
    assert names == [
        "0.0.kernel", "0.0.bias",
        "1.cell.kernel", "1.cell.recurrent_kernel", "1.cell.bias",
        "2.cell.kernel", "2.cell.recurrent_kernel", "2.cell.bias",
        "3.kernel",
    ]
    params = dict(model.named_parameters())
    assert params["0.0.bias"] is model.layers[0].layers[0].bias
    assert params["2.cell.bias"] is model.layers[2].cell.bias
    assert [p.shape for p in model.parameters()] == [(2, 3), (3,), (3, 16), (4, 16), (16,), (4, 6), (2, 6), (2, 6), (2, 1)]
    assert list(model.state_dict()) == names
    assert len(model) == 4 and model[1] is model.layers[1] and list(model) == model.layers


def test_constructor_rejects_non_layers():
    with pytest.raises(TypeError, match=r"Sequential: layers\[1\] must be a Layer, got int"):
        mdl.Sequential([mdl.Tanh(), 3])
    with pytest.raises(TypeError, match="Sequential: layers must be a list of Layer objects, got Dense"):
        mdl.Sequential(mdl.Dense(2, 2))


def test_state_dict_round_trip_gives_identical_predictions(rng):
    mdl.set_seed(1)
    a = _nested()
    mdl.set_seed(2)
    b = _nested()
    x = rng.standard_normal((5, 6, 2)).astype(np.float32)
    assert not np.array_equal(a.predict(x), b.predict(x))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    for (n, p), (m, q) in zip(a.named_parameters(), b.named_parameters()):
        assert n == m and p is not q and p.data is not q.data


@pytest.mark.parametrize(
    "change, pattern",
    [
        (lambda sd: sd.pop("2.cell.bias"), r"missing entries \['2\.cell\.bias'\], unexpected entries \[\]"),
        (lambda sd: sd.update({"3.bias": np.zeros(1)}), r"missing entries \[\], unexpected entries \['3\.bias'\]"),
        (lambda sd: sd.update({"1.cell.kernel": np.zeros((3, 12))}), r"'1\.cell\.kernel' expected shape \(3, 16\), got \(3, 12\)"),
        (lambda sd: sd.update({"0.0.kernel": np.zeros((2, 3, 1))}), r"'0\.0\.kernel' expected shape \(2, 3\), got \(2, 3, 1\)"),
    ],
)
def test_load_state_dict_errors_name_the_nested_entry(change, pattern):
    model = _nested()
    before = model.state_dict()
    sd = {k: v + 1.0 for k, v in before.items()}
    change(sd)
    with pytest.raises(ValueError, match=pattern):
        model.load_state_dict(sd)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # nothing changed


# ---- forward / backward ----------------------------------------------------------------------
def test_forward_and_backward_are_the_chain_rule(float64):
    model = mdl.Sequential([mdl.Dense(2, 2), mdl.Tanh(), mdl.Dense(2, 1)])
    model.layers[0].kernel.data[...] = [[1.0, -1.0], [0.5, 2.0]]
    model.layers[0].bias.data[...] = [0.0, 0.5]
    model.layers[2].kernel.data[...] = [[2.0], [-1.0]]
    model.layers[2].bias.data[...] = [0.25]
    x = np.array([[1.0, 0.0], [0.0, -1.0]])
    # hidden pre-activations: row 0 [1, -0.5]; row 1 [-0.5, -1.5]
    a = np.array([[1.0, -0.5], [-0.5, -1.5]])
    h = np.tanh(a)
    y = model.forward(x)
    np.testing.assert_allclose(y[:, 0], 2 * h[:, 0] - h[:, 1] + 0.25, rtol=1e-15)
    dx = model.backward(np.array([[1.0], [3.0]]))
    da = np.array([[1.0], [3.0]]) * np.array([[2.0, -1.0]]) * (1 - h**2)
    np.testing.assert_allclose(dx, da @ np.array([[1.0, 0.5], [-1.0, 2.0]]), rtol=1e-14)
    np.testing.assert_allclose(model.layers[2].kernel.grad[:, 0], h[0] + 3 * h[1], rtol=1e-14)
    np.testing.assert_allclose(model.layers[0].bias.grad, da.sum(0), rtol=1e-14)


# ---- predict ---------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [1, 3, 7, 10, 100])
def test_predict_in_batches_equals_whole_batch(float64, rng, batch_size):
    probe = _Probe()
    model = mdl.Sequential([probe, mdl.RNN(mdl.GRUCell(2, 5), return_sequences=True), mdl.RNN(mdl.RNNCell(5, 3)), mdl.Dense(3, 2)])
    x = rng.standard_normal((10, 4, 2))
    whole = model.predict(x)
    batched = model.predict(x, batch_size=batch_size)
    assert batched.shape == whole.shape == (10, 2)
    np.testing.assert_allclose(batched, whole, rtol=1e-13, atol=1e-15)
    expected_sizes = [10] + [min(batch_size, 10 - i) for i in range(0, 10, batch_size)]
    assert [c[2] for c in probe.calls] == expected_sizes  # one vectorized forward per slice
    assert all(c[:2] == (False, False) for c in probe.calls)  # eval mode, no history


def test_predict_equals_forward_and_keeps_no_history(rng):
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(2, 3)), mdl.Dense(3, 1)])
    x = rng.standard_normal((4, 5, 2))
    y = model.predict(x, batch_size=2)
    np.testing.assert_allclose(y, model.forward(x), rtol=1e-6)
    model.predict(x)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward(np.ones((4, 1), np.float32))
    assert mdl.is_grad_enabled()


def test_predict_restores_each_layers_mode_even_after_an_error():
    probe = _Probe()
    dense = mdl.Dense(2, 2)
    model = mdl.Sequential([probe, dense])
    dense.eval()  # mixed modes: model and probe training, dense eval
    model.predict(np.zeros((3, 2)))
    assert (model.training, probe.training, dense.training) == (True, True, False)
    with pytest.raises(ValueError, match=r"expected input \(\.\.\., 2\), got shape \(3, 5\)"):
        model.predict(np.zeros((3, 5)))
    assert (model.training, probe.training, dense.training) == (True, True, False)
    assert mdl.is_grad_enabled()


@pytest.mark.parametrize(
    "batch_size, err, pattern",
    [
        (0, ValueError, r"Sequential\.predict: batch_size must be >= 1, got 0"),
        (-2, ValueError, r"batch_size must be >= 1, got -2"),
        (2.0, TypeError, r"batch_size must be an int, got 2\.0"),
        (True, TypeError, r"batch_size must be an int, got True"),
    ],
)
def test_predict_validates_batch_size(batch_size, err, pattern):
    with pytest.raises(err, match=pattern):
        mdl.Sequential([mdl.Dense(2, 1)]).predict(np.zeros((3, 2)), batch_size=batch_size)


def test_predict_rejects_a_scalar():
    with pytest.raises(ValueError, match="must have a batch axis"):
        mdl.Sequential([mdl.Tanh()]).predict(1.0)


# ---- summary ---------------------------------------------------------------------------------
def _row(text, start):
    return next(line.split() for line in text.splitlines() if line.startswith(start))


def test_summary_rnn_dense_counts_and_shapes():
    model = mdl.Sequential([mdl.RNN(mdl.RNNCell(1, 100)), mdl.Dense(100, 1)])
    rnn_count = 1 * 100 + 100 * 100 + 100  # kernel (1, 100), recurrent_kernel (100, 100), bias (100,)
    dense_count = 100 * 1 + 1
    assert (rnn_count, dense_count) == (10_200, 101)
    text = model.summary()
    assert text.splitlines()[0] == "Sequential: input shape (None, None, 1), dtype float32"
    assert _row(text, "0 ") == ["0", "RNN(RNNCell)", "(None,", "100)", "10,200"]
    assert _row(text, "1 ") == ["1", "Dense", "(None,", "1)", "101"]
    assert text.splitlines()[-1] == "Total params: 10,301"
    assert text.splitlines()[2].split() == ["Layer", "Output", "shape", "Params"]


def test_summary_with_input_shape_and_sequences():
    H = 8
    model = mdl.Sequential(
        [mdl.RNN(mdl.LSTMCell(3, H), return_sequences=True), mdl.RNN(mdl.GRUCell(H, 4), return_sequences=True),
         mdl.Dense(4, 2), mdl.Tanh()]
    )
    lstm = 3 * 4 * H + H * 4 * H + 4 * H  # 96 + 256 + 32
    gru = H * 12 + 4 * 12 + 2 * 12  # 96 + 48 + 24
    text = model.summary(input_shape=(32, 50, 3))
    assert "input shape (None, 50, 3)" in text
    assert _row(text, "0 ")[1:] == ["RNN(LSTMCell)", "(None,", "50,", "8)", "384"]
    assert _row(text, "1 ")[1:] == ["RNN(GRUCell)", "(None,", "50,", "4)", "168"]
    assert _row(text, "2 ")[1:] == ["Dense", "(None,", "50,", "2)", "10"]
    assert _row(text, "3 ")[1:] == ["Tanh", "(None,", "50,", "2)", "0"]
    assert text.endswith(f"Total params: {lstm + gru + 10}")
    assert lstm + gru + 10 == 562


def test_summary_inference_and_unknown_shapes():
    nested = mdl.Sequential([mdl.Sequential([mdl.Dense(5, 3)]), mdl.ReLU()])
    text = nested.summary()
    assert "input shape (None, 5)" in text
    assert _row(text, "0 ") == ["0", "Sequential", "(None,", "3)", "18"]
    unknown = mdl.Sequential([mdl.Sigmoid(), mdl.Dense(3, 1000)])
    text = unknown.summary()
    assert "input shape ?" in text
    assert _row(text, "1 ") == ["1", "Dense", "?", "4,000"]
    assert _row(unknown.summary((None, 3)), "1 ") == ["1", "Dense", "(None,", "1000)", "4,000"]


@pytest.mark.parametrize(
    "shape, err, pattern",
    [
        ((), TypeError, r"input_shape must be a non-empty tuple"),
        (5, TypeError, r"input_shape must be a non-empty tuple"),
        ((None, 0, 1), ValueError, r"input_shape\[1\] must be None or an int >= 1, got 0"),
        ((None, "a"), ValueError, r"input_shape\[1\] must be None or an int >= 1, got 'a'"),
    ],
)
def test_summary_validates_input_shape(shape, err, pattern):
    with pytest.raises(err, match=pattern):
        mdl.Sequential([mdl.Dense(2, 1)]).summary(shape)


# ---- states and config ------------------------------------------------------------------------
def test_reset_states_reaches_nested_stateful_layers(rng):
    inner = mdl.RNN(mdl.RNNCell(2, 3), stateful=True)
    model = mdl.Sequential([mdl.Sequential([inner]), mdl.Dense(3, 1)])
    x = rng.standard_normal((2, 4, 2))
    first = model.forward(x)
    assert inner.get_state() is not None
    assert not np.allclose(model.forward(x), first)  # carried state
    model.reset_states()
    assert inner.get_state() is None
    np.testing.assert_array_equal(model.forward(x), first)


def test_get_config_and_from_config():
    model = _nested()
    config = model.get_config()
    assert config == {
        "layers": [
            {"class_name": "Sequential", "config": {"layers": [
                {"class_name": "Dense", "config": {"in_features": 2, "out_features": 3, "bias": True}},
                {"class_name": "Tanh", "config": {}},
            ]}},
            {"class_name": "RNN", "config": {"cell": {"class_name": "LSTMCell", "config": {"input_size": 3, "hidden_size": 4}},
                                             "return_sequences": True, "stateful": False}},
            {"class_name": "RNN", "config": {"cell": {"class_name": "GRUCell", "config": {"input_size": 4, "hidden_size": 2}},
                                             "return_sequences": False, "stateful": False}},
            {"class_name": "Dense", "config": {"in_features": 2, "out_features": 1, "bias": False}},
        ]
    }
    rebuilt = mdl.Sequential.from_config(config)
    assert rebuilt.get_config() == config
    assert [type(l) for l in rebuilt.sublayers()] == [type(l) for l in model.sublayers()]
    assert [(n, p.shape) for n, p in rebuilt.named_parameters()] == [(n, p.shape) for n, p in model.named_parameters()]


@pytest.mark.parametrize(
    "config, err, pattern",
    [
        ({"layers": [{"class_name": "NoSuchLayer", "config": {}}]}, ValueError, r"layers\[0\] \(NoSuchLayer\): unknown layer type 'NoSuchLayer'"),
        ({"layers": [{"class_name": "Dense", "config": {"in_features": 2}}]}, TypeError, r"layers\[0\] \(Dense\):.*out_features"),
        ({"layers": [{"class_name": "Dense", "config": {"in_features": 0, "out_features": 1}}]}, ValueError, r"in_features must be >= 1"),
        ({"layers": [{"class_name": "Tanh"}]}, ValueError, r"layers\[0\] must be \{'class_name': str, 'config': dict\}"),
        ({"layer": []}, ValueError, r"expected \{'layers': \[\.\.\.\]\}"),
    ],
)
def test_from_config_errors(config, err, pattern):
    with pytest.raises(err, match=pattern):
        mdl.Sequential.from_config(config)


def test_repr_lists_the_layers():
    assert repr(mdl.Sequential([mdl.Dense(2, 1), mdl.ReLU()])) == (
        "Sequential([Dense(in_features=2, out_features=1, bias=True), ReLU()])"
    )


def test_summary_infers_the_input_of_token_and_bidirectional_models():
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.Embedding(30, 8), mdl.Bidirectional(mdl.RNN(mdl.LSTMCell(8, 4), return_sequences=True)),
                            mdl.Dense(8, 30)])
    text = model.summary()
    assert "input shape (None, None)" in text
    assert "(None, None, 8)" in text and "(None, None, 30)" in text
    # 30*8 embeddings; two LSTMs of 4*4*(8+4+1) = 208 each; 8*30 + 30
    assert "Total params: 926" in text
    inner = mdl.Sequential([mdl.Bidirectional(mdl.RNN(mdl.GRUCell(3, 2)))])
    assert "input shape (None, None, 3)" in inner.summary()


def test_sequential_is_a_model():
    assert isinstance(mdl.Sequential([]), mdl.Model) and issubclass(mdl.Sequential, mdl.Layer)


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    (
            "sequential_non_layer",
            lambda: mdl.Sequential([mdl.Dense(3, 2), "relu"]),
            TypeError,
            r"Sequential: layers\[1\] must be a Layer, got str",
        ),
    (
            "sequential_function",
            lambda: mdl.Sequential([np.tanh]),
            TypeError,
            r"Sequential: layers\[0\] must be a Layer, got ufunc",
        ),
    (
            "sequential_inner_shape",
            lambda: mdl.Sequential([mdl.Dense(3, 2), mdl.Dense(4, 1)]).forward(BAD_X2),
            ValueError,
            r"Dense\(in_features=4.*expected input \(\.\.\., 4\), got shape \(2, 2\)",
        ),
    (
            "sequential_backward_first",
            lambda: mdl.Sequential([mdl.Dense(3, 2)]).backward(np.zeros((2, 2))),
            RuntimeError,
            r"Dense\(.*backward called before forward",
        ),
    ("predict_strings", lambda: bad_model().predict(np.full((2, 3, 2), "a")),
         TypeError, r"^RNN\(GRUCell\(.*input must be a real numeric array, got dtype <U1"),
    ("predict_no_samples", lambda: bad_model().predict(np.zeros((0, 3, 2))),
         ValueError, r"^RNN\(GRUCell\(.*at least one sample and one step, got shape \(0, 3, 2\)"),
    ("predict_negative_batch_size", lambda: bad_model().predict(BAD_X, batch_size=-2),
         ValueError, r"^Sequential\.predict: batch_size must be >= 1, got -2"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
