"""The Layer base (minidl/layers/layer.py): the behaviour every layer shares (named parameters,
state dicts, gradient accumulation, train/eval, dtypes, seeding, no_grad, saving a model of every
layer), the class registry, the recurrent-state protocol, which constructor arguments a
get_config covers, shared parameters."""

import numpy as np
import pytest

import minidl as mdl
from minidl.layers.layer import layers_with_state, shares_parameters
from minidl.layers.registry import layer_class, unconfigured_arguments
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params


class _RunningSum(mdl.Layer):
    """``y[:, t] = s + x[:, 0] + ... + x[:, t]`` from the state ``s`` (zeros by default).

    A user layer that follows the recurrent-state protocol, and records which of its
    methods are called. ``x: (batch, time, features) -> y`` of the same shape.
    """

    has_state = True

    def __init__(self, stateful=False):
        super().__init__()
        self.stateful = stateful
        self.calls, self.set_to = [], []
        self._state = None

    def get_config(self):
        return {"stateful": self.stateful}

    def get_state(self):
        self.calls.append("get_state")
        return None if self._state is None else (self._state.copy(),)

    def set_state(self, state):
        self.calls.append("set_state")
        self.set_to.append(None if state is None else state[0].copy())
        self._state = None if state is None else np.array(state[0])

    def reset_states(self):
        self.calls.append("reset_states")
        self._state = None

    def state_at(self, t):
        self.calls.append("state_at")
        return (self._start.copy() if t == 0 else self._ys[:, t - 1].copy(),)

    def forward(self, x):
        self._start = np.zeros_like(x[:, 0]) if self._state is None else self._state
        self._ys = self._start[:, None] + np.cumsum(x, axis=1)
        if self.stateful:
            self._state = self._ys[:, -1].copy()
        return self._ys.copy()

    def backward(self, grad_out):
        return np.cumsum(grad_out[:, ::-1], axis=1)[:, ::-1]  # dx_t = sum of the gradients at steps >= t


class _ResetsButHasNoState(mdl.Layer):
    """Has a ``reset_states`` method but does not declare ``has_state``: nobody calls it."""

    def reset_states(self):
        raise AssertionError("reset_states called on a layer without has_state")

    def forward(self, x):
        return x

    def backward(self, grad_out):
        return grad_out


# ---- the recurrent-state protocol ----------------------------------------------------------------
def test_layers_with_state_finds_declared_layers_at_any_depth():
    inner, rnn = _RunningSum(), mdl.RNN(mdl.GRUCell(2, 2))
    bi = mdl.Bidirectional(mdl.RNN(mdl.RNNCell(2, 2)))
    model = mdl.Sequential([mdl.Sequential([inner, _ResetsButHasNoState()]), rnn, bi, mdl.Dense(4, 1)])
    assert layers_with_state(model) == [inner, rnn, bi.forward_layer, bi.backward_layer]
    assert layers_with_state(rnn) == [rnn] and layers_with_state(mdl.Dense(2, 2)) == []
    assert mdl.Layer.has_state is False and mdl.RNN.has_state is True and mdl.Bidirectional.has_state is False


def test_sequential_reset_states_goes_through_the_protocol_only():
    layer = _RunningSum(stateful=True)
    model = mdl.Sequential([layer, _ResetsButHasNoState()])
    x = np.ones((2, 3, 1))
    model.forward(x)
    np.testing.assert_array_equal(model.forward(x)[:, 0, 0], [4.0, 4.0])  # carried: 3 + 1
    model.reset_states()
    assert layer.calls == ["reset_states"]
    np.testing.assert_array_equal(model.forward(x)[:, 0, 0], [1.0, 1.0])


def test_gradcheck_restores_the_state_before_every_forward(float64, rng):
    layer = _RunningSum(stateful=True)
    layer.set_state((rng.standard_normal((2, 3)),))
    model = mdl.Sequential([mdl.Dense(3, 3), layer])
    state = layer.get_state()
    # a carried state that gradcheck did not restore would shift every perturbed output
    assert mdl.gradcheck(model, rng.standard_normal((2, 4, 3)))
    np.testing.assert_array_equal(layer.get_state()[0], state[0])  # it checked a copy


def test_the_trainer_drives_a_user_stateful_layer_through_the_protocol(float64, rng):
    layer = _RunningSum()
    model = mdl.Sequential([layer, mdl.Dense(1, 1)])
    x = rng.standard_normal((2, 6, 1))
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.01), k1=2, k2=3)
    layer.calls.clear()
    trainer.fit(x, x, epochs=1, batch_size=2, shuffle=False, verbose=0)
    # windows (s, p, e): (0, 0, 2), (1, 2, 4), (3, 4, 6); each starts from the state stored at s
    assert layer.calls == ["reset_states", "set_state", "state_at", "set_state", "state_at", "set_state", "reset_states"]
    assert layer.set_to[0] is None
    np.testing.assert_allclose(layer.set_to[1], x[:, 0], rtol=1e-15)         # the state after step 0
    np.testing.assert_allclose(layer.set_to[2], x[:, :3].sum(1), rtol=1e-15)  # after steps 0..2


def test_supports_truncation_is_declared_on_the_class():
    assert mdl.Layer.supports_truncation is True and mdl.Bidirectional.supports_truncation is False
    model = mdl.Sequential([mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 2))), mdl.Dense(4, 1)])
    with pytest.raises(ValueError, match="Bidirectional reads each sequence in both directions and cannot be truncated"):
        mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), k1=2)


# ---- the registry and configs ----------------------------------------------------------------------
def test_every_subclass_is_registered_by_name():
    class _Registered(mdl.Layer):
        pass

    assert layer_class("_Registered") is _Registered and layer_class("Dense") is mdl.Dense
    with pytest.raises(ValueError, match=r"unknown layer type 'NoSuchLayer'; define \(import\) the class"):
        layer_class("NoSuchLayer")


def test_unconfigured_arguments_compares_init_with_the_get_config_owner():
    class _Extra(mdl.Dense):
        def __init__(self, in_features, out_features, gain=1.0, *args, **kwargs):
            super().__init__(in_features, out_features, *args, **kwargs)

    class _Configured(_Extra):
        def get_config(self):
            return {**super().get_config(), "gain": 1.0}

    class _Inherits(_Configured):  # no __init__, no get_config of its own: _Configured's cover it
        pass

    assert unconfigured_arguments(_Extra) == (["gain"], mdl.Dense)  # *args / **kwargs not counted
    assert unconfigured_arguments(_Configured) == ([], _Configured)
    assert unconfigured_arguments(_Inherits) == ([], _Configured)
    assert unconfigured_arguments(mdl.Tanh) == ([], mdl.Layer)
    assert unconfigured_arguments(mdl.RNN) == ([], mdl.RNN)


def test_shares_parameters():
    a, b = mdl.Dense(2, 2), mdl.Dense(2, 2)
    assert not shares_parameters(mdl.Sequential([a, b]))
    b.kernel = a.kernel
    assert shares_parameters(mdl.Sequential([a, b])) and len(mdl.Sequential([a, b]).parameters()) == 3


# ==== layers and losses engineer's block: Layer base behaviour, checked on the built-in layers ====
def _stack():
    return mdl.Sequential(
        [mdl.RNN(mdl.LSTMCell(3, 4), return_sequences=True), mdl.RNN(mdl.GRUCell(4, 2)), mdl.Dense(2, 1)]
    )


def test_named_parameters_and_attribute_access():
    model = _stack()
    names = [n for n, _ in model.named_parameters()]
    assert names == [
        "0.cell.kernel", "0.cell.recurrent_kernel", "0.cell.bias",
        "1.cell.kernel", "1.cell.recurrent_kernel", "1.cell.bias",
        "2.kernel", "2.bias",
    ]
    params = dict(model.named_parameters())
    assert params["0.cell.recurrent_kernel"] is model.layers[0].cell.recurrent_kernel
    assert params["2.bias"] is model.layers[2].bias
    assert model.parameters() == list(params.values())
    assert params["0.cell.kernel"].shape == (3, 16) and params["1.cell.bias"].shape == (2, 6)


def test_shared_parameter_appears_once():
    a, b = mdl.Dense(2, 2), mdl.Dense(2, 2)
    b.kernel = a.kernel
    model = mdl.Sequential([a, b])
    assert [n for n, _ in model.named_parameters()] == ["0.kernel", "0.bias", "1.bias"]


def test_state_dict_is_a_copy_and_load_keeps_identity(rng):
    model = _stack()
    sd = model.state_dict()
    assert set(sd) == {n for n, _ in model.named_parameters()}
    kernel = model.layers[2].kernel
    before = kernel.data.copy()
    sd["2.kernel"][...] = 7.0
    np.testing.assert_array_equal(kernel.data, before)  # a copy, not a view

    data_id = id(kernel.data)
    new = {k: rng.standard_normal(v.shape) for k, v in sd.items()}
    model.load_state_dict(new)
    assert id(kernel.data) == data_id and kernel.data.dtype == np.float32
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.data, new[name], rtol=1e-6)


@pytest.mark.parametrize(
    "change, err, pattern",
    [
        (lambda sd: sd.pop("1.bias"), ValueError, r"missing entries \['1\.bias'\]"),
        (lambda sd: sd.update(extra=np.zeros(2)), ValueError, r"unexpected entries \['extra'\]"),
        (
            lambda sd: sd.update({"0.kernel": np.zeros((2, 3))}),
            ValueError,
            r"'0\.kernel' expected shape \(3, 2\), got \(2, 3\)",
        ),
        (lambda sd: sd.update({"0.bias": np.array(["a", "b"])}), TypeError,
         r"'0\.bias' must be a float32 or float64 array, got dtype <U1"),
    ],
)
def test_load_state_dict_errors_change_nothing(change, err, pattern):
    model = mdl.Sequential([mdl.Dense(3, 2), mdl.Dense(2, 1)])
    before = model.state_dict()
    sd = {k: np.full_like(v, 9.0) for k, v in before.items()}
    change(sd)
    with pytest.raises(err, match=pattern):
        model.load_state_dict(sd)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_gradients_accumulate_and_zero_grad_clears(float64, rng):
    model = mdl.Sequential([mdl.Dense(3, 4), mdl.Tanh(), mdl.Dense(4, 2)])
    x, g = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    model.forward(x)
    dx1 = model.backward(g)
    once = [p.grad.copy() for p in model.parameters()]
    assert all(np.any(o != 0) for o in once)
    model.forward(x)
    dx2 = model.backward(g)
    np.testing.assert_array_equal(dx1, dx2)  # the input gradient is returned, not accumulated
    for p, o in zip(model.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * o, rtol=1e-14)
    model.zero_grad()
    assert all(np.all(p.grad == 0) for p in model.parameters())


def test_train_eval_propagate():
    model = _stack()
    assert all(layer.training for layer in model.sublayers())
    assert model.eval() is model
    assert not any(layer.training for layer in model.sublayers())
    model.train()
    assert all(layer.training for layer in model.sublayers())


def test_default_dtype_is_float32_and_float64_on_request():
    assert mdl.get_default_dtype() == np.float32
    model = _stack()
    assert all(p.data.dtype == np.float32 and p.grad.dtype == np.float32 for p in model.parameters())
    x64 = np.random.default_rng(0).standard_normal((2, 3, 3))  # float64 input
    y = model.forward(x64)
    assert y.dtype == np.float32  # computed in the parameters' dtype
    assert model.backward(np.ones_like(y)).dtype == np.float32
    np.testing.assert_array_equal(y, model.forward(x64.astype(np.float32)))

    mdl.set_default_dtype(np.float64)
    assert mdl.get_default_dtype() == np.float64
    model64 = _stack()
    assert all(p.data.dtype == np.float64 for p in model64.parameters())
    assert model64.forward(x64.astype(np.float32)).dtype == np.float64


def test_integer_input_is_converted(float64):
    dense = mdl.Dense(2, 1)
    dense.kernel.data[...] = [[2.0], [3.0]]
    dense.bias.data[...] = 1.0
    y = dense.forward(np.array([[1, 2], [3, -1]], np.int32))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [[9.0], [4.0]])
    rnn = mdl.RNN(mdl.RNNCell(2, 3))
    assert rnn.forward([[[1, 0], [0, 1]]]).dtype == np.float64


def test_set_seed_builds_identical_models():
    mdl.set_seed(7)
    a = _stack()
    mdl.set_seed(7)
    b = _stack()
    mdl.set_seed(8)
    c = _stack()
    for (na, pa), (nb, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert na == nb
        np.testing.assert_array_equal(pa.data, pb.data)
        assert not np.array_equal(pa.data, pc.data)


def test_astype_converts_in_place(rng):
    dense = mdl.Dense(3, 2)
    p = dense.kernel
    values = p.data.astype(np.float64)
    assert dense.astype(np.float64) is dense
    assert dense.kernel is p and p.data.dtype == np.float64 and p.grad.dtype == np.float64
    np.testing.assert_array_equal(p.data, values)
    assert dense.dtype == np.float64


def test_no_grad_keeps_no_history_same_output(rng):
    dense = mdl.Dense(3, 2)
    x = rng.standard_normal((4, 3))
    with mdl.no_grad():
        assert not mdl.is_grad_enabled()
        y0 = dense.forward(x)
    assert mdl.is_grad_enabled()
    with pytest.raises(RuntimeError, match=r"Dense.*backward called before forward"):
        dense.backward(np.ones((4, 2)))
    np.testing.assert_array_equal(y0, dense.forward(x))
    for act in (mdl.Tanh(), mdl.ReLU()):
        with mdl.no_grad():
            act.forward(x)
        with pytest.raises(RuntimeError, match="backward called before forward"):
            act.backward(np.ones_like(x))


def test_base_layer_and_call():
    with pytest.raises(NotImplementedError, match="Layer does not implement forward"):
        mdl.Layer().forward(np.zeros(2))
    with pytest.raises(NotImplementedError, match="Layer does not implement backward"):
        mdl.Layer().backward(np.zeros(2))
    dense = mdl.Dense(2, 2)
    x = np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(dense(x), dense.forward(x))
    assert repr(dense) == "Dense(in_features=2, out_features=2, bias=True)"


def _roundtrip(model, tmp_path, x):
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = mdl.load_model(path)
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value, err_msg=name)
        assert loaded.state_dict()[name].dtype == value.dtype
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    return loaded


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_model_with_every_new_layer(tmp_path, rng, dtype):
    mdl.set_default_dtype(dtype)
    mdl.set_seed(40)
    model = mdl.Sequential([
        mdl.Embedding(9, 4),
        mdl.Bidirectional(mdl.RNN(mdl.LSTMCell(4, 3), return_sequences=True), merge_mode="ave"),
        mdl.LayerNorm(3, eps=1e-3),
        mdl.Dropout(0.25),
        mdl.Bidirectional(mdl.RNN(mdl.GRUCell(3, 2))),
        mdl.Reshape((2, 2)),
        mdl.Flatten(),
        mdl.Dense(4, 2),
    ])
    for p in model.parameters():                         # make gamma/beta non-trivial too
        p.data[...] = rng.standard_normal(p.shape)
    x = rng.integers(0, 9, (3, 6))
    loaded = _roundtrip(model, tmp_path, x)
    assert loaded.layers[1].merge_mode == "ave" and loaded.layers[1].return_sequences
    assert loaded.layers[2].eps == 1e-3 and loaded.layers[3].p == 0.25
    assert loaded.layers[5].shape == (2, 2)
    assert loaded.get_config() == model.get_config()
    assert "0.embeddings" in model.state_dict() and "1.backward_layer.cell.kernel" in model.state_dict()
    table = model.summary(input_shape=(None, 6))
    assert "(None, 6, 4)" in table and "(None, 4)" in table
# ==== end of the layers and losses engineer's block ====


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    (
            "load_state_dict_list",
            lambda: mdl.Dense(3, 2).load_state_dict([1, 2]),
            TypeError,
            r"Dense\(.*load_state_dict expected a mapping, got list",
        ),
    (
            "astype_int",
            lambda: mdl.Dense(3, 2).astype(np.int64),
            TypeError,
            r"dtype: expected float32 or float64, got int64",
        ),
    ("load_state_dict_complex", lambda: mdl.Dense(2, 1).load_state_dict({"kernel": np.zeros((2, 1), complex), "bias": np.zeros(1)}),
         TypeError, r"load_state_dict: entry 'kernel' must be a float32 or float64 array, got dtype complex128"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
