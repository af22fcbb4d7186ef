"""LayerNorm: forward and backward by hand, normalization and gradcheck, dtypes,
PyTorch's nn.LayerNorm, output aliasing and bad inputs."""

import math

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_close_rel, assert_output_edits_leave_gradients, warnings_as_errors


def test_layernorm_forward_by_hand(float64):
    ln = mdl.LayerNorm(4, eps=1e-5)
    assert [(n, p.shape) for n, p in ln.named_parameters()] == [("gamma", (4,)), ("beta", (4,))]
    np.testing.assert_array_equal(ln.gamma.data, 1.0)
    np.testing.assert_array_equal(ln.beta.data, 0.0)
    ln.gamma.data[...] = [1.0, 2.0, 0.5, -1.0]
    ln.beta.data[...] = [0.0, 1.0, 0.0, 0.5]
    y = ln.forward(np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]]))
    # row 0: mean 2.5, variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    r = 1.0 / math.sqrt(1.25 + 1e-5)
    row0 = [-1.5 * r, 2.0 * -0.5 * r + 1.0, 0.5 * 0.5 * r, -1.0 * 1.5 * r + 0.5]
    # row 1: constant, so xhat = 0 and y = beta
    np.testing.assert_allclose(y, [row0, [0.0, 1.0, 0.0, 0.5]], rtol=1e-14, atol=1e-15)


def test_layernorm_backward_by_hand(float64):
    ln = mdl.LayerNorm(3)
    x = np.array([[0.0, 1.0, 5.0]])
    y = ln.forward(x)
    # with gamma = 1, a gradient of ones (a shift of every output) gives dx = 0
    dx = ln.backward(np.ones((1, 3)))
    np.testing.assert_allclose(dx, 0.0, atol=1e-14)
    np.testing.assert_allclose(ln.beta.grad, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(ln.gamma.grad, y[0], rtol=1e-14)
    # along xhat (a scaling): dx = r * xhat * (1 - mean(xhat**2)), small only because of eps
    xhat = y[0]
    var = 26.0 / 3 - 4.0                                   # mean(x**2) - mean(x)**2 = 14/3
    r = 1.0 / math.sqrt(var + 1e-5)
    np.testing.assert_allclose(ln.backward(y), [r * xhat * (1e-5 / (var + 1e-5))], rtol=1e-6)
    # a gradient on one element: dx = r * (e0 - 1/3 - xhat * xhat[0] / 3)
    expected = r * (np.array([1.0, 0.0, 0.0]) - 1 / 3 - xhat * xhat[0] / 3)
    np.testing.assert_allclose(ln.backward(np.array([[1.0, 0.0, 0.0]])), [expected], rtol=1e-12)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5)])
def test_layernorm_gradcheck_and_normalization(float64, rng, shape):
    ln = mdl.LayerNorm(5)
    x = 3.0 + 2.0 * rng.standard_normal(shape)
    y = ln.forward(x)
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-13)
    np.testing.assert_allclose(y.var(axis=-1), 1.0 / (1.0 + 1e-5 / x.var(axis=-1)), rtol=1e-12)
    ln.gamma.data[...] = rng.standard_normal(5)
    ln.beta.data[...] = rng.standard_normal(5)
    assert mdl.gradcheck(ln, x)


def test_layernorm_dtypes(rng):
    ln = mdl.LayerNorm((6,))
    assert ln.normalized_shape == 6 and ln.gamma.data.dtype == np.float32
    y = ln(rng.standard_normal((2, 6)))                  # float64 input computed in float32
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-6)


@pytest.mark.parametrize(
    "args, err, pattern",
    [
        ((0,), ValueError, "LayerNorm: normalized_shape must be >= 1, got 0"),
        (((3, 4),), ValueError, r"normalized_shape must be an int or a one-element tuple .* got \(3, 4\)"),
        (("4",), TypeError, "LayerNorm: normalized_shape must be an int, got '4'"),
        ((4, 0.0), ValueError, r"LayerNorm: eps must be > 0.0, got 0.0"),
        ((4, "x"), TypeError, "LayerNorm: eps must be a real number"),
    ],
)
def test_layernorm_bad_arguments(args, err, pattern):
    with pytest.raises(err, match=pattern):
        mdl.LayerNorm(*args)


def test_layernorm_bad_inputs():
    ln = mdl.LayerNorm(4)
    with pytest.raises(ValueError, match=r"LayerNorm\(normalized_shape=4, eps=1e-05\): expected input \(\.\.\., 4\), got shape \(2, 3\)"):
        ln.forward(np.ones((2, 3)))
    with pytest.raises(TypeError, match="input must be a real numeric array"):
        ln.forward(np.array([["a"] * 4]))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        ln.backward(np.ones((2, 4)))
    ln.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(2, 4\), got \(4,\)"):
        ln.backward(np.ones(4))


@pytest.mark.parametrize("shape", [(4, 6), (2, 5, 6)])
def test_layernorm_matches_torch(float64, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    ref = torch.nn.LayerNorm(6, eps=1e-5).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(rng.standard_normal(6)))
        ref.bias.copy_(torch.from_numpy(rng.standard_normal(6)))
    ln = mdl.LayerNorm(6, eps=1e-5)
    ln.gamma.data[...] = ref.weight.detach().numpy()
    ln.beta.data[...] = ref.bias.detach().numpy()
    x = 1.5 + 3.0 * rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    xt = torch.from_numpy(x).requires_grad_(True)
    out = ref(xt)
    out.backward(torch.from_numpy(g))
    assert_close_rel(ln.forward(x), out.detach().numpy(), "output")
    assert_close_rel(ln.backward(g), xt.grad.numpy(), "input grad")
    assert_close_rel(ln.gamma.grad, ref.weight.grad.numpy(), "gamma.grad")
    assert_close_rel(ln.beta.grad, ref.bias.grad.numpy(), "beta.grad")


def test_layernorm_output_edits_leave_gradients(float64, rng):
    ln = mdl.LayerNorm(4)
    ln.gamma.data[...] = rng.standard_normal(4)
    assert_output_edits_leave_gradients(ln, rng.standard_normal((3, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [1e-50, 1e-40, 1e-320, 1e-5])
def test_layernorm_constant_rows_give_beta_whatever_eps(dtype, eps, rng):
    """eps = 1e-50 underflows float32 to 0 and gave 0 * inf = NaN on a constant row; var + eps
    is floored at the dtype's smallest normal, so y = beta exactly, without warnings, and the
    gradient is finite, in both dtypes; rows that are not constant are unchanged."""
    mdl.set_default_dtype(dtype)
    try:
        norm = mdl.LayerNorm(3, eps=eps)
    finally:
        mdl.set_default_dtype(np.float32)
    norm.beta.data[:] = [0.5, -1.0, 2.0]
    x = np.array([[7.0, 7.0, 7.0], [0.0, 0.0, 0.0], [1.0, 2.0, 4.0]], dtype)
    with warnings_as_errors():
        y = norm.forward(x)
        g = norm.backward(rng.standard_normal(x.shape).astype(dtype))
    assert y.dtype == dtype and np.isfinite(g).all()
    np.testing.assert_array_equal(y[:2], np.broadcast_to(norm.beta.data, (2, 3)))
    xc = x[2] - x[2].mean()
    expected = xc / np.sqrt(np.mean(xc * xc) + dtype(eps)) + norm.beta.data
    np.testing.assert_allclose(y[2], expected, rtol=1e-6)
