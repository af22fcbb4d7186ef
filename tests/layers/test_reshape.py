"""Flatten and Reshape: values and gradients, output shapes, integer indices passing
through, PyTorch's flatten/reshape, output aliasing and bad arguments."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_close_rel, assert_output_edits_leave_gradients


def test_flatten_and_reshape_values_and_gradients(float64, rng):
    x = np.arange(24.0).reshape(2, 3, 4)
    flat, reshape = mdl.Flatten(), mdl.Reshape((4, -1))
    np.testing.assert_array_equal(flat.forward(x), [np.arange(12.0), np.arange(12.0, 24.0)])
    np.testing.assert_array_equal(reshape.forward(x), x.reshape(2, 4, 3))
    g = rng.standard_normal((2, 4, 3))
    np.testing.assert_array_equal(reshape.backward(g), g.reshape(2, 3, 4))
    assert flat.forward(np.arange(3)).shape == (3, 1)                       # Keras: (batch,) -> (batch, 1)
    assert flat.compute_output_shape((None, 3, 4)) == (None, 12)
    assert flat.compute_output_shape((None, None, 4)) == (None, None)
    assert reshape.compute_output_shape((None, 3, 4)) == (None, 4, 3)
    assert mdl.Reshape((2, 6)).compute_output_shape((None, 12)) == (None, 2, 6)
    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(4, 2), return_sequences=True), mdl.Flatten(), mdl.Dense(6, 4), mdl.Reshape((2, 2))])
    assert mdl.gradcheck(model, rng.standard_normal((2, 3, 4)))
    assert mdl.Reshape((2,)).forward(np.array([[1, 2]])).dtype.kind == "i"  # indices stay integers
    tokens = mdl.Sequential([mdl.Flatten(), mdl.Embedding(5, 2), mdl.Dense(2, 1)])
    x = rng.integers(0, 5, (3, 2, 2))
    assert tokens.forward(x).shape == (3, 4, 1)
    assert tokens.backward(np.ones((3, 4, 1))) is None                       # None passes through Flatten
    assert mdl.gradcheck(tokens, x)


def test_flatten_and_reshape_errors():
    with pytest.raises(ValueError, match=r"Reshape: shape\[1\] must be an int >= 1 or -1, got 0"):
        mdl.Reshape((2, 0))
    with pytest.raises(ValueError, match="at most one -1"):
        mdl.Reshape((-1, -1))
    with pytest.raises(TypeError, match="Reshape: shape must be a tuple of ints"):
        mdl.Reshape(6)
    with pytest.raises(ValueError, match=r"Reshape\(shape=\[5\]\): cannot reshape a sample of shape \(2, 3\) \(6 elements\) to \(5,\)"):
        mdl.Reshape((5,)).forward(np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match=r"to \(4, -1\)"):
        mdl.Reshape((4, -1)).forward(np.ones((1, 6)))
    with pytest.raises(ValueError, match="Flatten\\(\\): input must have a batch axis"):
        mdl.Flatten().forward(np.float64(1.0))
    flat = mdl.Flatten()
    with pytest.raises(RuntimeError, match="backward called before forward"):
        flat.backward(np.ones((1, 2)))
    flat.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(2, 3\), got \(3, 2\)"):
        flat.backward(np.ones((3, 2)))


def test_flatten_and_reshape_match_torch(float64):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x, g = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 12))
    xt = torch.from_numpy(x).requires_grad_(True)
    out = torch.nn.Flatten()(xt)
    out.backward(torch.from_numpy(g))
    flat = mdl.Flatten()
    assert_close_rel(flat.forward(x), out.detach().numpy(), "Flatten output", tol=0)
    assert_close_rel(flat.backward(g), xt.grad.numpy(), "Flatten input grad", tol=0)
    xt.grad = None
    out = xt.reshape(2, 4, -1)
    out.backward(torch.from_numpy(g.reshape(2, 4, 3)))
    reshape = mdl.Reshape((4, -1))
    assert_close_rel(reshape.forward(x), out.detach().numpy(), "Reshape output", tol=0)
    assert_close_rel(reshape.backward(g.reshape(2, 4, 3)), xt.grad.numpy(), "Reshape input grad", tol=0)


@pytest.mark.parametrize("layer", [mdl.Flatten(), mdl.Reshape((2, -1))], ids=repr)
def test_flatten_and_reshape_output_edits_leave_gradients(float64, rng, layer):
    """The output is a view of the input; backward keeps only the two shapes."""
    assert_output_edits_leave_gradients(layer, rng.standard_normal((3, 2, 2)))


def test_reshape_gradient_dtype():
    reshape = mdl.Reshape((2,))
    reshape.forward(np.ones((3, 2), np.float32))
    assert reshape.backward(np.ones((3, 2))).dtype == np.float32          # the input's float dtype
    reshape.forward(np.ones((3, 2), np.int64))
    assert reshape.backward(np.ones((3, 2))).dtype == mdl.get_default_dtype()
    with pytest.raises(TypeError, match=r"Reshape\(shape=\[2\]\): input must be a real numeric array"):
        reshape.forward(np.array([["a", "b"]]))
