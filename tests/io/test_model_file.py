"""Model files (Sequential.save / load_model, minidl/io/model_file.py): round trips, header errors,
what ``save`` refuses."""

import json
import os
import warnings
import zipfile

import numpy as np
import pytest

import minidl as mdl
from tests.io.mutations import rewrite
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, bad_model


class _MinimalCell(mdl.Cell):
    """A user cell with only the step interface: h' = tanh(x @ w + h)."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.w = self.add_weight("w", (input_size, hidden_size))

    def step(self, x, state):
        h = np.tanh(x @ self.w.data + state[0])
        return (h,), (x, h)

    def step_backward(self, dstate, cache):
        x, h = cache
        da = dstate[0] * (1 - h * h)
        self.w.grad += x.T @ da
        return da @ self.w.data.T, (da,)


class _Scale(mdl.Layer):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def get_config(self):
        return {"factor": self.factor}

    def forward(self, x):
        return x * self.factor


def _models():
    return {
        "rnn_relu_dense": lambda: mdl.Sequential([mdl.RNN(mdl.RNNCell(2, 5, activation="relu")), mdl.Dense(5, 1)]),
        "stacked": lambda: mdl.Sequential(
            [
                mdl.RNN(mdl.LSTMCell(2, 4), return_sequences=True),
                mdl.RNN(mdl.GRUCell(4, 3), return_sequences=True),
                mdl.RNN(mdl.RNNCell(3, 3, activation="sigmoid"), return_sequences=True, stateful=True),
                mdl.Dense(3, 4),
                mdl.Tanh(),
                mdl.Sequential([mdl.Dense(4, 2, bias=False), mdl.Sigmoid()]),
                mdl.ReLU(),
            ]
        ),
        "user_cell_and_layer": lambda: mdl.Sequential([mdl.RNN(_MinimalCell(2, 3)), _Scale(0.5)]),
    }


def _x(rng, dtype):
    return rng.standard_normal((4, 6, 2)).astype(dtype)


def _save(path, model):
    model.save(path)
    return path


# ---- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", sorted(_models()))
def test_save_load_round_trip_is_bit_identical(tmp_path, rng, dtype, kind):
    mdl.set_default_dtype(dtype)
    model = _models()[kind]()
    mdl.set_default_dtype(np.float32)  # loading must restore the saved dtype, not use the current default
    path = _save(tmp_path / "model.npz", model)
    loaded = mdl.load_model(path)
    assert type(loaded) is mdl.Sequential and loaded is not model
    assert loaded.get_config() == model.get_config()
    assert [type(l) for l in loaded.sublayers()] == [type(l) for l in model.sublayers()]
    for (n, p), (m, q) in zip(model.named_parameters(), loaded.named_parameters()):
        assert n == m and q.data.dtype == dtype and q.grad.dtype == dtype
        np.testing.assert_array_equal(q.data, p.data)
    x = _x(rng, dtype)
    y = model.predict(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(loaded.predict(x), y)


def test_file_layout_is_npz_with_json_header(tmp_path):
    model = mdl.Sequential([mdl.RNN(mdl.RNNCell(1, 3)), mdl.Dense(3, 1)])
    path = tmp_path / "weights.bin"  # used as is: no suffix added
    model.save(str(path))
    assert sorted(os.listdir(tmp_path)) == ["weights.bin"]  # no temporary files left
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == sorted(["__config__", "0.cell.kernel", "0.cell.recurrent_kernel", "0.cell.bias", "1.kernel", "1.bias"])
        np.testing.assert_array_equal(f["1.kernel"], model.layers[1].kernel.data)
        header = json.loads(str(f["__config__"]))
    assert header == {
        "format": "minidl-model",
        "format_version": 1,
        "minidl_version": mdl.__version__,
        "dtype": "float32",
        "model": model.get_config(),
    }


def test_a_compressed_archive_loads_too(tmp_path, rng):
    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 3)), mdl.Dense(3, 1)])
    path = _save(tmp_path / "c.npz", model)
    with np.load(path, allow_pickle=False) as f:
        members = {k: f[k] for k in f.files}
    np.savez_compressed(path, **members)
    with zipfile.ZipFile(path) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    x = _x(rng, np.float32)
    np.testing.assert_array_equal(mdl.load_model(path).predict(x), model.predict(x))


def test_save_overwrites_and_loading_leaves_global_state_alone(tmp_path):
    path = tmp_path / "m.npz"
    mdl.Sequential([mdl.Dense(2, 2)]).save(path)
    mdl.set_default_dtype(np.float64)
    model = mdl.Sequential([mdl.Dense(3, 1)])
    model.save(path)
    mdl.set_default_dtype(np.float32)
    mdl.set_seed(5)
    loaded = mdl.load_model(path)
    assert loaded.layers[0].kernel.shape == (3, 1) and loaded.dtype == np.float64
    assert mdl.get_default_dtype() == np.float32
    after_load = mdl.Dense(4, 4).kernel.data  # loading drew no numbers from the generator
    mdl.set_seed(5)
    np.testing.assert_array_equal(after_load, mdl.Dense(4, 4).kernel.data)


def test_state_of_stateful_rnn_is_not_saved(tmp_path, rng):
    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 3), stateful=True)])
    x = _x(rng, np.float32)
    model.forward(x)
    loaded = mdl.load_model(_save(tmp_path / "s.npz", model))
    assert loaded.layers[0].get_state() is None
    model.reset_states()
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


# ---- load errors ----------------------------------------------------------------------------


def _edit_header(key, value):
    def change(members, header):
        header[key] = value

    return change


def _edit_layer(members, header):
    header["model"]["layers"][1]["class_name"] = "NoSuchLayer"


def _bad_layer_config(members, header):
    header["model"]["layers"][1]["config"]["out_features"] = -3


def _drop(name):
    return lambda members, header: members.pop(name)


def _reshape(members, header):
    members["1.kernel"] = np.zeros((3, 2), np.float32)


def _shrink(members, header):
    members["1.kernel"] = np.zeros((2, 1), np.float32)


def _nan_weight(members, header):
    members["0.cell.recurrent_kernel"][1, 2] = np.nan


def _float64_weight(members, header):
    members["1.bias"] = np.full(1, 1e39)


def _add_extra(members, header):
    members["2.bias"] = np.zeros(1, np.float32)


def _string_param(members, header):
    members["1.bias"] = np.array(["x"])


@pytest.mark.parametrize(
    "change, pattern",
    [
        (_edit_header("format", "minidl-checkpoint"), r"expected a 'minidl-model' file, got format 'minidl-checkpoint'"),
        (_edit_header("format", None), r"expected a 'minidl-model' file, got format None"),
        (_edit_header("format_version", 2), r"unsupported format_version 2 of 'minidl-model' \(this minidl reads 1\)"),
        (_edit_header("format_version", "1"), r"unsupported format_version '1'"),
        (_edit_header("dtype", "float16"), r"load_model\('.*f\.npz'\): bad dtype in the header: .*float16"),
        (_edit_header("dtype", None), r"bad dtype in the header: expected 'float32' or 'float64', got None"),
        (_edit_header("model", {"layers": 3}), r"cannot rebuild the model: Sequential\.from_config: expected"),
        (_edit_layer, r"cannot rebuild the model: .*layers\[1\] \(NoSuchLayer\): unknown layer type 'NoSuchLayer'"),
        (_bad_layer_config, r"cannot rebuild the model: .*layers\[1\] \(Dense\): Dense: out_features must be >= 1"),
        (_drop("0.cell.bias"), r"do not match the architecture: .*missing entries \['0\.cell\.bias'\]"),
        (_add_extra, r"cannot read '.*f\.npz': unexpected members \{'2\.bias\.npy': 132\} \(name: declared bytes\); "
                     r"the file may hold only the arrays its header and architecture name; refused before inflating"),
        (_reshape, r"cannot read '.*f\.npz': entry '1\.kernel' holds 24 bytes \(shape \(3, 2\), float32\), more than "
                   r"the 12 bytes the architecture needs"),
        (_shrink, r"do not match the architecture: .*'1\.kernel' expected shape \(3, 1\), got \(2, 1\)"),
        (_nan_weight, r"the parameters do not match the architecture: load_state_dict: entry '0\.cell\.recurrent_kernel' "
                      r"has non-finite values \(nan at index \(1, 2\)\); refused"),
        (_float64_weight, r"cannot read '.*f\.npz': entry '1\.bias' has dtype float64, but the file declares float32"),
        (_string_param, r"cannot read '.*f\.npz': entry '1\.bias' has non-numeric dtype <U1"),
    ],
)
def test_bad_content_is_a_value_error_naming_path_and_problem(tmp_path, change, pattern):
    path = _save(tmp_path / "f.npz", mdl.Sequential([mdl.RNN(mdl.RNNCell(2, 3)), mdl.Dense(3, 1)]))
    rewrite(path, change)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # errors, never a value turned into inf with a warning
        with pytest.raises(ValueError, match=pattern):
            mdl.load_model(path)


def test_save_refuses_what_a_file_cannot_express(tmp_path):
    a, b = mdl.Dense(2, 2), mdl.Dense(2, 2)
    b.kernel = a.kernel
    with pytest.raises(ValueError, match="shares parameters between layers"):
        mdl.Sequential([a, b]).save(tmp_path / "shared.npz")
    with pytest.raises(TypeError, match=r"layers\[0\] \(_Scale\) has a config that is not JSON: a value of type object$"):
        mdl.Sequential([_Scale(object())]).save(tmp_path / "obj.npz")

    assert os.listdir(tmp_path) == []


# ---- the archive functions -------------------------------------------------------------------


# ---- save refuses a layer whose config it cannot rebuild --------------------------------------------
class _Shift(mdl.Layer):
    """A user layer with a constructor argument and no get_config: save must refuse it."""

    def __init__(self, amount=1.0):
        super().__init__()
        self.amount = amount

    def forward(self, x):
        return x + self.amount


class _ScaledDense(mdl.Dense):
    """A built-in's subclass that adds an argument but inherits Dense.get_config."""

    def __init__(self, in_features, out_features, bias=True, scale=2.0):
        super().__init__(in_features, out_features, bias=bias)
        self.scale = scale


class _RNNCellWithLeak(mdl.RNNCell):
    def __init__(self, input_size, hidden_size, leak=0.5):
        super().__init__(input_size, hidden_size)
        self.leak = leak


@pytest.mark.parametrize(
    "model, pattern",
    [
        (lambda: mdl.Sequential([mdl.Dense(2, 2), _Shift(3.0)]),
         r"_Shift\.__init__ takes 'amount', which Layer\.get_config does not return; override get_config in _Shift"),
        (lambda: mdl.Sequential([_ScaledDense(2, 3, scale=5.0)]),
         r"_ScaledDense\.__init__ takes 'scale', which Dense\.get_config does not return; override get_config in _ScaledDense"),
        (lambda: mdl.Sequential([mdl.RNN(_RNNCellWithLeak(2, 3)), mdl.Dense(3, 1)]),  # found inside the RNN
         r"_RNNCellWithLeak\.__init__ takes 'leak', which RNNCell\.get_config does not return"),
    ],
)
def test_save_refuses_a_layer_whose_get_config_misses_constructor_arguments(tmp_path, model, pattern):
    with pytest.raises(TypeError, match=r"^Sequential\.save\('.*m\.npz'\): " + pattern):
        model().save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []  # nothing written


class _ConfiguredShift(_Shift):
    """The same layer with get_config: saved, and rebuilt with its argument."""

    def get_config(self):
        return {"amount": self.amount}


class _PassThroughDense(mdl.Dense):
    """A subclass that forwards every argument to the base: Dense.get_config still describes it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)


def test_a_layer_with_get_config_is_saved_and_rebuilt_with_its_arguments(tmp_path, rng):
    model = mdl.Sequential([_PassThroughDense(2, 3, bias=False), _ConfiguredShift(amount=3.5)])
    model.save(tmp_path / "m.npz")
    loaded = mdl.load_model(tmp_path / "m.npz")
    assert type(loaded.layers[1]) is _ConfiguredShift and loaded.layers[1].amount == 3.5  # not the default 1.0
    assert type(loaded.layers[0]) is _PassThroughDense and loaded.layers[0].bias is None
    x = rng.standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def _every_builtin_layer():
    rnn = lambda cell, **kw: mdl.RNN(cell, **kw)  # noqa: E731
    return [
        mdl.Dense(2, 3), mdl.Dense(3, 2, bias=False), mdl.Tanh(), mdl.Sigmoid(), mdl.ReLU(),
        rnn(mdl.RNNCell(2, 3, activation="relu"), return_sequences=True), rnn(mdl.LSTMCell(3, 2), stateful=True),
        rnn(mdl.GRUCell(2, 4)), mdl.Embedding(7, 3), mdl.Dropout(0.25), mdl.LayerNorm(3, eps=1e-3),
        mdl.Bidirectional(rnn(mdl.GRUCell(3, 2), return_sequences=True), merge_mode="sum"),
        mdl.Flatten(), mdl.Reshape((2, 3)), mdl.Sequential([mdl.Dense(1, 1)]), mdl.Masking(0.5),
        mdl.RepeatVector(4), mdl.Concatenate(axis=1),
    ]


def test_every_builtin_layer_is_saved_and_rebuilt(tmp_path):
    layers = _every_builtin_layer()
    exported = {getattr(mdl, name) for name in mdl.layers.__all__} - {mdl.Layer, mdl.Cell}
    covered = {type(l) for layer in layers for l in layer.sublayers()}
    assert exported <= covered, exported - covered
    model = mdl.Sequential(layers)
    model.save(tmp_path / "all.npz")
    loaded = mdl.load_model(tmp_path / "all.npz")
    assert loaded.get_config() == model.get_config()
    assert [type(l) for l in loaded.sublayers()] == [type(l) for l in model.sublayers()]
    for (name, p), q in zip(model.named_parameters(), loaded.parameters()):
        np.testing.assert_array_equal(q.data, p.data, err_msg=name)


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("load_model_none", lambda: mdl.load_model(None),
         TypeError, r"^load_model: path must be a str or os\.PathLike, got NoneType"),
    ("save_model_none", lambda: bad_model().save(None),
         TypeError, r"^Sequential\.save: path must be a str or os\.PathLike, got NoneType"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
