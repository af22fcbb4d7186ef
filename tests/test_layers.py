"""Dense, the activations, Parameter and the behaviour every Layer shares."""

import math
import warnings

import numpy as np
import pytest

import minidl as mdl


def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


# ---- Dense ---------------------------------------------------------------------------
def test_dense_forward_hand_computed(float64):
    dense = mdl.Dense(3, 2)
    dense.kernel.data[...] = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    dense.bias.data[...] = [0.5, -0.5]
    y = dense.forward(np.array([[1.0, 0.0, -1.0], [0.5, 0.25, 2.0]]))
    # row 0: [1 - 5 + 0.5, 2 - 6 - 0.5]; row 1: [0.5 + 0.75 + 10 + 0.5, 1 + 1 + 12 - 0.5]
    np.testing.assert_allclose(y, [[-3.5, -4.5], [11.75, 13.5]], rtol=0, atol=1e-15)


def test_dense_backward_hand_computed(float64):
    dense = mdl.Dense(2, 2)
    dense.kernel.data[...] = [[1.0, -1.0], [2.0, 0.5]]
    dense.bias.data[...] = 0.0
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    dense.forward(x)
    g = np.array([[1.0, 0.0], [2.0, -1.0]])
    dx = dense.backward(g)
    # dx = g @ kernel.T; dkernel = x.T @ g; dbias = g.sum(0), written out element by element
    np.testing.assert_allclose(dx, [[1.0, 2.0], [3.0, 3.5]], atol=1e-15)
    np.testing.assert_allclose(dense.kernel.grad, [[1 + 6, -3], [2 - 2, 1]], atol=1e-15)
    np.testing.assert_allclose(dense.bias.grad, [3.0, -1.0], atol=1e-15)


def test_dense_3d_equals_rowwise_2d(float64, rng):
    dense = mdl.Dense(4, 3)
    x = rng.standard_normal((2, 5, 4))
    y = dense.forward(x)
    assert y.shape == (2, 5, 3)
    for b in range(2):
        np.testing.assert_allclose(y[b], x[b] @ dense.kernel.data + dense.bias.data, atol=1e-14)
    assert dense.compute_output_shape((None, 5, 4)) == (None, 5, 3)


def test_dense_without_bias(float64, rng):
    dense = mdl.Dense(3, 2, bias=False)
    assert dense.bias is None
    assert [n for n, _ in dense.named_parameters()] == ["kernel"]
    x = rng.standard_normal((4, 3))
    np.testing.assert_allclose(dense.forward(x), x @ dense.kernel.data, atol=1e-15)
    assert mdl.gradcheck(dense, x)


@pytest.mark.parametrize(
    "shape, out, seed",
    [((3, 4), 2, 0), ((1, 1), 1, 1), ((2, 5, 3), 4, 2), ((3, 2, 2), 3, 3), ((2, 2, 3, 2), 3, 4), ((4,), 2, 5)],
)
def test_dense_gradcheck(float64, shape, out, seed):
    mdl.set_seed(seed)
    dense = mdl.Dense(shape[-1], out)
    x = np.random.default_rng(seed).standard_normal(shape)
    assert mdl.gradcheck(dense, x)


def test_dense_default_init_bounds():
    mdl.set_seed(0)
    dense = mdl.Dense(16, 32)
    bound = 1 / math.sqrt(16)
    for p in (dense.kernel, dense.bias):
        assert np.all(np.abs(p.data) <= bound)
        assert np.ptp(p.data) > 0
    # uniform over the whole range, not a narrower one
    assert np.abs(dense.kernel.data).max() > 0.9 * bound


# ---- activations -----------------------------------------------------------------------
_POINTS = [-800.0, -30.0, -2.5, -0.3, 0.0, 0.7, 1.0, 4.0, 30.0, 800.0]


@pytest.mark.parametrize(
    "layer, f, df",
    [
        (mdl.Tanh, math.tanh, lambda v: 1 - math.tanh(v) ** 2),
        (mdl.Sigmoid, _sigmoid, lambda v: _sigmoid(v) * (1 - _sigmoid(v))),
        (mdl.ReLU, lambda v: max(v, 0.0), lambda v: 1.0 if v > 0 else 0.0),
    ],
)
def test_activation_values_and_gradients(float64, layer, f, df):
    act = layer()
    x = np.array(_POINTS).reshape(2, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings at +-800
        y = act.forward(x)
        g = np.arange(1.0, 11.0).reshape(2, 5)
        dx = act.backward(g)
    assert y.shape == x.shape and dx.shape == x.shape
    expected_y = [f(v) for v in _POINTS]
    expected_dx = [gi * df(v) for gi, v in zip(range(1, 11), _POINTS)]
    np.testing.assert_allclose(y.ravel(), expected_y, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dx.ravel(), expected_dx, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("layer", [mdl.Tanh, mdl.Sigmoid, mdl.ReLU])
@pytest.mark.parametrize("shape, seed", [((3, 4), 0), ((2, 3, 2), 1), ((5,), 2)])
def test_activation_gradcheck(float64, layer, shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * 2
    x[np.abs(x) < 0.05] = 0.5  # keep ReLU's kink out of the central differences
    assert mdl.gradcheck(layer(), x)


def test_activations_have_no_parameters_and_convert_integers():
    for layer in (mdl.Tanh(), mdl.Sigmoid(), mdl.ReLU()):
        assert layer.parameters() == [] and layer.state_dict() == {}
        y = layer.forward([[-1, 0, 2]])
        assert y.dtype == np.float32
    np.testing.assert_array_equal(mdl.ReLU().forward(np.array([-2, 0, 3])), [0.0, 0.0, 3.0])


# ---- Parameter ---------------------------------------------------------------------------
def test_parameter_fields():
    p = mdl.Parameter(np.array([[1.0, 2.0, 3.0]], np.float32), name="w")
    assert p.name == "w" and p.shape == (1, 3) and p.size == 3 and p.dtype == np.float32
    assert p.grad.shape == p.data.shape and p.grad.dtype == np.float32
    np.testing.assert_array_equal(p.grad, 0.0)
    grad = p.grad
    p.grad += 5.0
    p.zero_grad()
    assert p.grad is grad  # zeroed in place, same memory
    np.testing.assert_array_equal(p.grad, 0.0)
    assert "w" in repr(p) and "(1, 3)" in repr(p)


def test_parameter_rejects_integer_data():
    with pytest.raises(TypeError, match=r"Parameter 'w'.*float array.*int64"):
        mdl.Parameter(np.array([1, 2], np.int64), name="w")


# ---- Layer base behaviour -------------------------------------------------------------------
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
