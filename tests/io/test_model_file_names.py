"""Names in model files mean minidl's classes (minidl/io/model_file.py with the registry of
minidl/layers/registry.py): a user's class never shadows a built-in, a colliding class is refused
when saved, internal and abstract classes are refused at load."""

import os

import numpy as np
import pytest

import minidl as mdl
from tests.io.mutations import rewrite


def _save(path, model):
    model.save(path)
    return path


class Dense(mdl.Layer):
    """A user's own class named like minidl's: it must never be what a file's "Dense" means."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features}

    def forward(self, x):
        return np.full((len(x), self.out_features), -999.0)


def test_a_users_class_named_dense_never_shadows_minidls(tmp_path, rng):
    assert mdl.layers.registry.layer_class("Dense") is mdl.Dense  # the user's Dense above did not take the name
    model = mdl.Sequential([mdl.Dense(2, 1)])
    model.save(tmp_path / "m.npz")  # saving the built-in still works
    loaded = mdl.load_model(tmp_path / "m.npz")
    assert type(loaded.layers[0]) is mdl.Dense
    x = rng.standard_normal((3, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))  # not -999

    with pytest.raises(ValueError, match=(
            r"^Sequential\.save\('.*u\.npz'\): another layer class is registered under the name 'Dense': "
            r"minidl\.layers\.dense\.Dense, so load_model would rebuild that one, not tests\.io\.test_model_file_names\.Dense\. "
            r"Give your class a name no other layer class has \(e\.g\. 'MyDense'\)$")):
        mdl.Sequential([Dense(2, 1)]).save(tmp_path / "u.npz")  # told when saving, not when someone loads
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


@pytest.mark.parametrize("make, name, why", [
    (lambda: mdl.RNNCell(2, 3), "Cell", r"it is an abstract base class \(step, step_backward not implemented\)"),
    (lambda: mdl.Tanh(), "_Activation", r"it is a private base class of minidl"),
    (lambda: mdl.Flatten(), "_Reshaping", r"it is a private base class of minidl"),
])
def test_internal_and_abstract_classes_are_refused_at_load(tmp_path, make, name, why):
    path = _save(tmp_path / "i.npz", mdl.Sequential([make()]))
    rewrite(path, lambda members, header: header["model"]["layers"][0].update(class_name=name))
    with pytest.raises(ValueError, match=rf"^load_model\('.*i\.npz'\): cannot rebuild the model: .*layer type "
                                         rf"'{name}' \(minidl\.layers\.\w+\.{name}\) cannot be built from a file: {why}"):
        mdl.load_model(path)


def test_the_model_base_class_is_refused_at_load(tmp_path):
    path = _save(tmp_path / "b.npz", mdl.Sequential([mdl.Dense(2, 1)]))
    rewrite(path, lambda members, header: header.update(class_name="Model", model={}))
    with pytest.raises(ValueError, match=r"^load_model\('.*b\.npz'\): cannot rebuild the model: layer type 'Model' "
                                         r"\(minidl\.model\.Model\) cannot be built from a file: it is an abstract "
                                         r"base class \(forward not implemented\)"):
        mdl.load_model(path)


def test_save_refuses_an_abstract_builtin(tmp_path):
    with pytest.raises(ValueError, match=r"^Sequential\.save\('.*c\.npz'\): Cell cannot be saved: it is an abstract base "
                                         r"class \(step, step_backward not implemented\)"):
        mdl.Sequential([mdl.RNN(mdl.Cell(2, 3))]).save(tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []
