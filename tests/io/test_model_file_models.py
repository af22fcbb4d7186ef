"""Model files of user ``Model`` subclasses (Model.save / load_model, minidl/io/model_file.py):
round trips, the header, a class not defined at load time, what ``save`` refuses.
Sequential's files are in tests/io/test_model_file.py."""

import json
import os

import numpy as np
import pytest

import minidl as mdl
from minidl.layers.registry import _LAYER_TYPES
from tests.helpers import TokensAndFeatures, TwoHeads, TwoSequenceModel, two_sequences


class _Unconfigured(mdl.Model):
    """A model whose ``__init__`` takes an argument and that has no ``get_config``: refused."""

    def __init__(self, hidden):
        super().__init__()
        self.rnn = mdl.RNN(mdl.RNNCell(2, hidden))

    def forward(self, x):
        return self.rnn(x)


class _Opaque(mdl.Model):
    def __init__(self, thing=None):
        super().__init__()
        self.thing = thing

    def get_config(self):
        return {"thing": self.thing}


class _NotADict(mdl.Model):
    def get_config(self):
        return [1, 2]


class _Vanishing(mdl.Model):
    """Removed from the registry by a test, as if its module were not imported at load time."""

    def __init__(self, size=2):
        super().__init__()
        self.size = size
        self.dense = mdl.Dense(size, 1)

    def get_config(self):
        return {"size": self.size}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_user_model_with_constructor_arguments_round_trips(tmp_path, rng, dtype):
    mdl.set_default_dtype(dtype)
    model = TwoSequenceModel(2, 3, hidden=5, out=3)
    mdl.set_default_dtype(np.float32)
    model.save(tmp_path / "m.npz")
    loaded = mdl.load_model(tmp_path / "m.npz")
    assert type(loaded) is TwoSequenceModel and loaded is not model
    assert loaded.get_config() == {"features_a": 2, "features_b": 3, "hidden": 5, "out": 3}
    assert loaded.head.kernel.shape == (10, 3)  # built with the saved arguments, not the defaults
    for (n, p), (m, q) in zip(model.named_parameters(), loaded.named_parameters()):
        assert n == m and q.data.dtype == dtype
        np.testing.assert_array_equal(q.data, p.data)
    a, b = two_sequences(rng, dtype=dtype)
    np.testing.assert_array_equal(loaded.predict((a, b)), model.predict((a, b)))


def test_models_with_an_integer_input_and_with_two_outputs_round_trip(tmp_path, rng):
    tokens, x = rng.integers(0, 5, (3, 4)), rng.standard_normal((3, 4, 2)).astype(np.float32)
    model = TokensAndFeatures(vocab=5, dim=2)
    model.save(tmp_path / "t.npz")
    np.testing.assert_array_equal(mdl.load_model(tmp_path / "t.npz").predict((tokens, x)), model.predict((tokens, x)))
    heads = TwoHeads(features=2, hidden=4)
    heads.save(tmp_path / "h.npz")
    for got, want in zip(mdl.load_model(tmp_path / "h.npz").predict(x), heads.predict(x)):
        np.testing.assert_array_equal(got, want)


def test_the_header_names_the_class(tmp_path):
    model = TwoHeads()
    model.save(tmp_path / "h.npz")
    with np.load(tmp_path / "h.npz", allow_pickle=False) as f:
        header = json.loads(str(f["__config__"]))
        assert sorted(f.files) == sorted(["__config__"] + list(model.state_dict()))
    assert header == {"format": "minidl-model", "format_version": 1, "minidl_version": mdl.__version__,
                      "dtype": "float32", "model": {"features": 2, "hidden": 3}, "class_name": "TwoHeads"}


def test_a_class_not_defined_at_load_time_is_a_clear_error(tmp_path):
    _Vanishing(3).save(tmp_path / "v.npz")
    del _LAYER_TYPES["_Vanishing"]
    try:
        with pytest.raises(ValueError, match=r"load_model\('.*v\.npz'\): cannot rebuild the model: unknown layer type "
                                             r"'_Vanishing'; define \(import\) the class before loading"):
            mdl.load_model(tmp_path / "v.npz")
    finally:
        _LAYER_TYPES["_Vanishing"] = _Vanishing
    assert mdl.load_model(tmp_path / "v.npz").dense.kernel.shape == (3, 1)


@pytest.mark.parametrize(
    "model, err, pattern",
    [
        (lambda: _Unconfigured(4), TypeError,
         r"^_Unconfigured\.save\('.*m\.npz'\): _Unconfigured\.__init__ takes 'hidden', which Layer\.get_config does not "
         r"return; override get_config in _Unconfigured"),
        (lambda: _Opaque(object()), TypeError, r"^_Opaque\.save\('.*m\.npz'\): _Opaque\.get_config\(\) is not JSON: a value of type object"),
        (lambda: _NotADict(), TypeError, r"_NotADict\.get_config must return a dict, got list"),
    ],
)
def test_save_refuses_a_model_it_cannot_rebuild(tmp_path, model, err, pattern):
    with pytest.raises(err, match=pattern):
        model().save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []  # nothing written


@pytest.mark.parametrize("value, pattern", [(3, r"bad class_name in the header: expected a str, got 3"),
                                            ("NoSuchModel", r"cannot rebuild the model: unknown layer type 'NoSuchModel'")])
def test_a_bad_class_name_in_the_header_is_a_value_error(tmp_path, value, pattern):
    path = tmp_path / "h.npz"
    TwoHeads().save(path)
    with np.load(path, allow_pickle=False) as f:
        members = {k: f[k] for k in f.files}
    header = json.loads(str(members.pop("__config__")))
    header["class_name"] = value
    with open(path, "wb") as fh:
        np.savez(fh, __config__=np.array(json.dumps(header)), **members)
    with pytest.raises(ValueError, match=pattern):
        mdl.load_model(path)
