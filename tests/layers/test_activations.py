"""Tanh, Sigmoid, ReLU: values and derivatives at extreme points, gradcheck, dtypes,
PyTorch's functions, output aliasing and bad inputs."""

import math
import warnings

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_close_rel, assert_output_edits_leave_gradients
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, BAD_X2, after_forward

ACTIVATIONS = [mdl.Tanh, mdl.Sigmoid, mdl.ReLU]


def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


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


@pytest.mark.parametrize("layer, name", [(mdl.Tanh, "tanh"), (mdl.Sigmoid, "sigmoid"), (mdl.ReLU, "relu")])
def test_activation_matches_torch(float64, layer, name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, g = 3 * rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 4))
    xt = torch.from_numpy(x).requires_grad_(True)
    out = getattr(torch, name)(xt)
    out.backward(torch.from_numpy(g))
    act = layer()
    assert_close_rel(act.forward(x), out.detach().numpy(), "output", tol=1e-15)
    assert_close_rel(act.backward(g), xt.grad.numpy(), "input grad", tol=1e-14)


@pytest.mark.parametrize("layer", ACTIVATIONS)
def test_activation_output_edits_leave_gradients(float64, layer, rng):
    assert_output_edits_leave_gradients(layer(), rng.standard_normal((3, 4)))


@pytest.mark.parametrize("layer", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_keeps_a_float_dtype_and_backward_follows_it(layer, dtype):
    act = layer()
    x = np.array([[-1.0, 0.5, 2.0]], dtype)
    y = act.forward(x)
    assert y.dtype == dtype
    dx = act.backward(np.ones((1, 3)))  # a float64 gradient computed in the forward's dtype
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, act.backward(np.ones((1, 3), dtype)), rtol=0)


@pytest.mark.parametrize("layer", ACTIVATIONS)
def test_activation_bad_inputs(layer):
    act = layer()
    with pytest.raises(TypeError, match=rf"{layer.__name__}\(\): input must be a real numeric array, got dtype <U1"):
        act.forward(np.array(["a"]))
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        act.backward(np.ones(2))
    act.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(2, 3\), got \(3, 2\)"):
        act.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"grad_out must be a real numeric array, got dtype complex128"):
        act.backward(np.ones((2, 3), complex))


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    (
            "tanh_string",
            lambda: mdl.Tanh().forward(["a", "b"]),
            TypeError,
            r"Tanh\(\): input must be a real numeric array, got dtype <U1",
        ),
    (
            "sigmoid_complex",
            lambda: mdl.Sigmoid().forward(np.array([1j])),
            TypeError,
            r"Sigmoid\(\): input must be a real numeric array, got dtype complex128",
        ),
    (
            "sigmoid_backward_first",
            lambda: mdl.Sigmoid().backward(np.zeros(2)),
            RuntimeError,
            r"Sigmoid\(\): backward called before forward",
        ),
    (
            "tanh_grad_shape",
            lambda: after_forward(mdl.Tanh(), BAD_X2).backward(np.zeros((3, 2))),
            ValueError,
            r"Tanh\(\): expected grad_out of shape \(2, 3\), got \(3, 2\)",
        ),
    (
            "relu_grad_string",
            lambda: after_forward(mdl.ReLU(), BAD_X2).backward(np.full((2, 3), "a")),
            TypeError,
            r"ReLU\(\): grad_out must be a real numeric array, got dtype <U1",
        ),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
