"""The behaviour every Layer shares: named parameters, state dicts, gradient accumulation,
train/eval, dtypes, seeding, no_grad, and saving a model of every layer."""

import numpy as np
import pytest

import minidl as mdl


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
        (lambda sd: sd.update({"0.bias": np.array(["a", "b"])}), TypeError, r"'0\.bias' must be a real array"),
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
