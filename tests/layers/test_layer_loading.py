"""What a layer takes from files: the registry of class names (minidl/layers/registry.py) and the
values ``load_state_dict`` accepts (every way weights come in passes there: model files,
checkpoints, the interop imports)."""

import warnings

import numpy as np
import pytest

import minidl as mdl
from minidl.layers.registry import _LAYER_TYPES, layer_class, not_buildable, registered_elsewhere


# ---- the registry --------------------------------------------------------------------------------
def test_a_builtin_name_is_never_taken_by_a_users_class():
    class Dense(mdl.Layer):
        def forward(self, x):
            return x * 0 - 999

    class LSTMCell(mdl.LSTMCell):
        pass

    assert layer_class("Dense") is mdl.Dense and layer_class("LSTMCell") is mdl.LSTMCell
    assert registered_elsewhere(mdl.Dense) == ""
    message = registered_elsewhere(Dense)
    assert message.startswith("another layer class is registered under the name 'Dense': minidl.layers.dense.Dense, "
                              "so load_model would rebuild that one, not tests.layers.test_layer_loading.")
    assert message.endswith("Give your class a name no other layer class has (e.g. 'MyDense')")


def test_a_builtin_takes_its_name_even_from_a_user_class_defined_before_it():
    class LateBuiltin(mdl.Layer):  # the user's class comes first ...
        pass

    user = LateBuiltin
    namespace = {"__name__": "minidl.layers.late", "mdl": mdl}
    try:  # ... then a minidl module defines the name
        exec("class LateBuiltin(mdl.Layer):\n    def forward(self, x):\n        return x\n", namespace)
        assert layer_class("LateBuiltin") is namespace["LateBuiltin"] is not user
        assert "minidl.layers.late.LateBuiltin" in registered_elsewhere(user)
    finally:
        del _LAYER_TYPES["LateBuiltin"]


def test_the_first_user_class_of_a_name_keeps_it_and_a_redefinition_replaces_itself():
    def define(base):
        class _Twice(base):
            def forward(self, x):
                return x

        return _Twice

    first = define(mdl.Layer)
    assert layer_class("_Twice") is first
    again = define(mdl.Layer)  # the same module and qualified name: a redefinition (a notebook cell run twice)
    assert layer_class("_Twice") is again and registered_elsewhere(first) != ""

    class _Twice(mdl.Layer):  # another class (another qualified name) of the same name
        pass

    assert layer_class("_Twice") is again
    assert "registered under the name '_Twice'" in registered_elsewhere(_Twice)
    del _LAYER_TYPES["_Twice"]


def test_internal_and_abstract_builtins_are_not_buildable():
    not_buildable_names = {name for name, cls in _LAYER_TYPES.items() if not_buildable(cls)}
    assert {"Cell", "Model", "_Activation", "_Reshaping"} <= not_buildable_names
    assert all(name.startswith("_") or name in ("Cell", "Model") for name in not_buildable_names), not_buildable_names
    for name in mdl.layers.__all__:  # every exported concrete layer is buildable
        if name not in ("Layer", "Cell"):
            assert layer_class(name) is getattr(mdl, name)
    with pytest.raises(ValueError, match=r"^layer type 'Cell' \(minidl\.layers\.cell\.Cell\) cannot be built from a "
                                         r"file: it is an abstract base class \(step, step_backward not implemented\); "
                                         r"save a subclass that implements them$"):
        layer_class("Cell")
    with pytest.raises(ValueError, match=r"^layer type '_Activation' .* it is a private base class of minidl$"):
        layer_class("_Activation")

    class _OnlyForward(mdl.Layer):  # a user's class is the user's to judge; backward is optional for loading
        def forward(self, x):
            return x

    assert not_buildable(_OnlyForward) == "" and layer_class("_OnlyForward") is _OnlyForward


# ---- the values load_state_dict takes ------------------------------------------------------------
def _dense(dtype=np.float32):
    mdl.set_default_dtype(dtype)
    try:
        return mdl.Dense(2, 2)
    finally:
        mdl.set_default_dtype(np.float32)


@pytest.mark.parametrize("value, exc, pattern", [
    (np.zeros((2, 2), np.int64), TypeError, r"entry 'kernel' must be a float32 or float64 array, got dtype int64"),
    (np.zeros((2, 2), np.float16), TypeError, r"entry 'kernel' must be a float32 or float64 array, got dtype float16"),
    (np.zeros((2, 2), bool), TypeError, r"entry 'kernel' must be a float32 or float64 array, got dtype bool"),
    (np.array([[0.0, np.nan], [0.0, 0.0]]), ValueError, r"entry 'kernel' has non-finite values \(nan at index \(0, 1\)\); refused"),
    (np.array([[0.0, 0.0], [-np.inf, 0.0]], np.float32), ValueError, r"entry 'kernel' has non-finite values \(-inf at index \(1, 0\)\)"),
    (np.array([[0.0, 1e39], [0.0, 0.0]]), ValueError,
     r"entry 'kernel' has values beyond float32's range \(largest magnitude 1e\+39\); they would become inf"),
    (np.full((2, 2), -3.4028236e38), ValueError, r"entry 'kernel' has values beyond float32's range"),  # rounds to -inf
])
def test_load_state_dict_refuses_what_is_not_a_finite_float_weight(value, exc, pattern):
    layer = _dense()
    before = layer.state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an error, not inf with a warning
        with pytest.raises(exc, match=rf"^load_state_dict: {pattern}"):
            layer.load_state_dict({"kernel": value, "bias": np.zeros(2, np.float32)})
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # nothing changed


def test_load_state_dict_converts_what_fits():
    layer = _dense()
    biggest = float(np.finfo(np.float32).max)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer.load_state_dict({"kernel": np.array([[biggest, -biggest], [0.1, 2.0]]), "bias": np.zeros(2, np.float32)})
    assert layer.kernel.data.dtype == np.float32 and layer.kernel.data[0, 0] == np.float32(biggest)
    wide = _dense(np.float64)
    wide.load_state_dict({"kernel": np.full((2, 2), 1e300), "bias": np.ones(2, np.float32)})
    assert wide.kernel.data[0, 0] == 1e300 and wide.bias.data.dtype == np.float64
