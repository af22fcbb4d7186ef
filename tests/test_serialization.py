"""Model files (Sequential.save / load_model) and the npz + JSON archive machinery."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

import minidl as mdl
from minidl.io import read_archive, write_archive

from tests.helpers import FIRED as _TRAP_FIRED
from tests.helpers import Trap as _Trap


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


def _rewrite(path, change):
    """Load an archive by hand, let ``change(members, header)`` edit it, save it back."""
    with np.load(path, allow_pickle=False) as f:
        members = {k: f[k] for k in f.files}
    header = json.loads(str(members.pop("__config__")))
    change(members, header)
    with open(path, "wb") as fh:
        np.savez(fh, __config__=np.array(json.dumps(header)), **members)


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
def test_missing_file_is_file_not_found(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        mdl.load_model(path)


@pytest.mark.parametrize(
    "content, pattern",
    [
        (b"", "an empty file"),
        (b"hello, this is not a model", "not an npz \\(zip\\) archive"),
        (b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'", "a single .npy array, not an npz archive"),
    ],
)
def test_not_an_archive(tmp_path, content, pattern):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"cannot read '.*bad.npz': {pattern}"):
        mdl.load_model(path)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_file(tmp_path, keep):
    path = _save(tmp_path / "t.npz", mdl.Sequential([mdl.RNN(mdl.LSTMCell(3, 16)), mdl.Dense(16, 1)]))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match=r"cannot read '.*t\.npz': the archive is (truncated or )?corrupt"):
        mdl.load_model(path)


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
        (_add_extra, r"do not match the architecture: .*unexpected entries \['2\.bias'\]"),
        (_reshape, r"do not match the architecture: .*'1\.kernel' expected shape \(3, 1\), got \(3, 2\)"),
        (_string_param, r"cannot read '.*f\.npz': entry '1\.bias' has non-numeric dtype <U1"),
    ],
)
def test_bad_content_is_a_value_error_naming_path_and_problem(tmp_path, change, pattern):
    path = _save(tmp_path / "f.npz", mdl.Sequential([mdl.RNN(mdl.RNNCell(2, 3)), mdl.Dense(3, 1)]))
    _rewrite(path, change)
    with pytest.raises(ValueError, match=pattern):
        mdl.load_model(path)


def test_missing_or_malformed_config_entry(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"cannot read '.*plain\.npz': no '__config__' entry"):
        mdl.load_model(path)
    for value, pattern in [
        (np.array("{not json"), r"'__config__' is not valid JSON"),
        (np.array("[1, 2]"), r"'__config__' must be a JSON object, got list"),
        (np.zeros(3), r"'__config__' must be JSON text \(a unicode string or uint8 bytes\), got dtype float64"),
        (np.frombuffer(b"\xff\xfe", np.uint8), r"'__config__' is not UTF-8 text"),
    ]:
        np.savez(path, __config__=value)
        with pytest.raises(ValueError, match=pattern):
            mdl.load_model(path)
    header = {"format": "minidl-model", "format_version": 1, "dtype": "float64", "model": {"layers": []}}
    np.savez(path, __config__=np.frombuffer(json.dumps(header).encode(), np.uint8))  # JSON as uint8 bytes is accepted
    assert len(mdl.load_model(path)) == 0


def _pickled_npy(obj_array):
    buf = io.BytesIO()
    np.save(buf, obj_array, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("member", ["evil", "__config__", "1.bias"])
def test_pickled_member_is_refused_and_never_run(tmp_path, member):
    payload = _pickled_npy(np.array([_Trap()], dtype=object))
    # the control: this payload really runs code when numpy is allowed to unpickle it
    _TRAP_FIRED.clear()
    assert np.load(io.BytesIO(payload), allow_pickle=True)[0] == "boom" and _TRAP_FIRED == [True]
    _TRAP_FIRED.clear()

    path = _save(tmp_path / "p.npz", mdl.Sequential([mdl.Dense(2, 2), mdl.Dense(2, 1)]))
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist() if name != member + ".npy"}
    members[member + ".npy"] = payload
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ValueError, match=rf"cannot read '.*p\.npz': entry '{member}' holds pickled objects; refused"):
        mdl.load_model(path)
    assert _TRAP_FIRED == []


# ---- atomic writes --------------------------------------------------------------------------
def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    old = mdl.Sequential([mdl.Dense(2, 3)])
    path = _save(tmp_path / "m.npz", old)
    good = path.read_bytes()

    def broken_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        mdl.Sequential([mdl.Dense(2, 1)]).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["m.npz"]  # the temporary file was removed
    np.testing.assert_array_equal(mdl.load_model(path).layers[0].kernel.data, old.layers[0].kernel.data)


def test_save_into_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        mdl.Sequential([mdl.Dense(2, 1)]).save(tmp_path / "no" / "m.npz")


# ---- save errors ----------------------------------------------------------------------------
def test_save_refuses_what_a_file_cannot_express(tmp_path):
    a, b = mdl.Dense(2, 2), mdl.Dense(2, 2)
    b.kernel = a.kernel
    with pytest.raises(ValueError, match="shares parameters between layers"):
        mdl.Sequential([a, b]).save(tmp_path / "shared.npz")
    with pytest.raises(TypeError, match=r"layers\[0\] \(_Scale\) has a config that is not JSON: a value of type object$"):
        mdl.Sequential([_Scale(object())]).save(tmp_path / "obj.npz")

    class Dense(mdl.Dense):  # shadows the registered name "Dense"
        pass

    shadow = Dense(2, 2)
    try:
        with pytest.raises(ValueError, match="another layer class is registered under the name 'Dense'"):
            mdl.Sequential([mdl.Dense(2, 2)]).save(tmp_path / "d.npz")
    finally:
        from minidl.layers.layer import _LAYER_TYPES

        _LAYER_TYPES["Dense"] = mdl.Dense  # undo the shadowing for the other tests
    assert type(shadow).__name__ == "Dense"
    assert os.listdir(tmp_path) == []


# ---- the archive functions -------------------------------------------------------------------
def test_write_and_read_archive_round_trip(tmp_path):
    path = tmp_path / "a.ckpt"
    arrays = {"model/0.kernel": np.arange(6.0).reshape(2, 3), "steps": np.array([1, 2, 3], np.int64), "flag": np.array(True)}
    meta = {"epoch": 3, "lr": np.float32(0.5), "history": {"loss": [1.0, float("nan")]}, "big": 2**100}
    write_archive(path, arrays, meta, "my-format", format_version=3)
    got, header = read_archive(path, "my-format", supported_versions=(2, 3))
    assert sorted(got) == sorted(arrays)
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype
        np.testing.assert_array_equal(got[k], v)
    assert header["format"] == "my-format" and header["format_version"] == 3
    assert header["minidl_version"] == mdl.__version__
    assert header["epoch"] == 3 and header["lr"] == 0.5 and header["big"] == 2**100
    assert header["history"]["loss"][0] == 1.0 and np.isnan(header["history"]["loss"][1])
    with pytest.raises(ValueError, match=r"unsupported format_version 3 of 'my-format' \(this minidl reads 1\)"):
        read_archive(path, "my-format")


@pytest.mark.parametrize(
    "arrays, meta, err, pattern",
    [
        ({"x": np.array([object()])}, {}, TypeError, r"array 'x' must be numeric, got dtype object \(pickle is never used\)"),
        ({"x": np.array(["a"])}, {}, TypeError, r"array 'x' must be numeric, got dtype <U1"),
        ({"__config__": np.zeros(1)}, {}, ValueError, r"bad array name '__config__'"),
        ({"file": np.zeros(1)}, {}, ValueError, r"bad array name 'file'"),
        ({"": np.zeros(1)}, {}, ValueError, r"bad array name ''"),
        ({}, {"when": object()}, TypeError, r"the metadata is not JSON serializable: a value of type object$"),
        ({}, {"format": "x"}, ValueError, r"meta must not set the reserved keys \['format'\]"),
        ([], {}, TypeError, r"arrays and meta must be dicts, got list, dict"),
    ],
)
def test_write_archive_errors_write_nothing(tmp_path, arrays, meta, err, pattern):
    with pytest.raises(err, match=r"write_archive\('.*a\.npz'\): " + pattern):
        write_archive(tmp_path / "a.npz", arrays, meta, "f")
    assert os.listdir(tmp_path) == []
