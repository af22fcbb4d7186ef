"""Concatenate: golden values and gradients (a tuple, one per input), gradcheck over tuples,
PyTorch's cat, shapes and dtypes, use inside a user Model, output aliasing, bad inputs."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import TwoSequenceModel, assert_close_rel, two_sequences


def test_golden_values_and_gradients(float64):
    layer = mdl.Concatenate()
    a, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0], [6.0]])
    np.testing.assert_array_equal(layer.forward(a, b), [[1.0, 2.0, 5.0], [3.0, 4.0, 6.0]])
    g = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    da, db = layer.backward(g)  # g cut at offset 2 along the last axis
    np.testing.assert_array_equal(da, [[0.1, 0.2], [0.4, 0.5]])
    np.testing.assert_array_equal(db, [[0.3], [0.6]])


def test_time_axis_and_three_inputs(float64, rng):
    layer = mdl.Concatenate(axis=1)
    xs = [rng.standard_normal((2, t, 3)) for t in (1, 4, 2)]
    y = layer.forward(*xs)
    assert y.shape == (2, 7, 3)
    np.testing.assert_array_equal(y[:, 1:5], xs[1])
    grads = layer.backward(np.arange(42.0).reshape(2, 7, 3))
    assert isinstance(grads, tuple) and [gr.shape for gr in grads] == [(2, 1, 3), (2, 4, 3), (2, 2, 3)]
    np.testing.assert_array_equal(grads[2], np.arange(42.0).reshape(2, 7, 3)[:, 5:])
    single = mdl.Concatenate()
    np.testing.assert_array_equal(single.forward(xs[0]), xs[0])  # one input: passed through
    assert len(single.backward(np.ones((2, 1, 3)))) == 1


@pytest.mark.parametrize("axis", [-1, 1, 2, -2])
def test_gradcheck_over_a_tuple(float64, rng, axis):
    shapes = {-1: [(2, 3, 1), (2, 3, 4)], 2: [(2, 3, 1), (2, 3, 4)], 1: [(2, 1, 2), (2, 3, 2)], -2: [(2, 1, 2), (2, 3, 2)]}
    xs = tuple(rng.standard_normal(s) for s in shapes[axis])
    assert mdl.gradcheck(mdl.Concatenate(axis=axis), xs)


def test_matches_torch_cat(float64, rng):
    torch = pytest.importorskip("torch")
    xs = [rng.standard_normal((3, 2, k)) for k in (2, 5)]
    g = rng.standard_normal((3, 2, 7))
    ts = [torch.from_numpy(x).requires_grad_(True) for x in xs]
    out = torch.cat(ts, dim=-1)
    out.backward(torch.from_numpy(g))
    layer = mdl.Concatenate()
    assert_close_rel(layer.forward(*xs), out.detach().numpy(), "output", tol=0.0)
    for k, (ours, t) in enumerate(zip(layer.backward(g), ts)):
        assert_close_rel(ours, t.grad.numpy(), f"gradient of input {k}", tol=0.0)


def test_shapes_dtypes_and_config():
    layer = mdl.Concatenate()
    assert layer.compute_output_shape(((None, 5, 2), (None, 5, 3))) == (None, 5, 5)
    assert layer.compute_output_shape(((None, 2), (None, None))) == (None, None)
    assert mdl.Concatenate(axis=1).compute_output_shape(((None, 2, 4), (None, 3, 4))) == (None, 5, 4)
    assert layer.get_config() == {"axis": -1} and repr(mdl.Concatenate(1)) == "Concatenate(axis=1)"
    y = layer.forward(np.ones((1, 2), np.float32), np.ones((1, 1), np.float64))
    assert y.dtype == np.float64
    da, db = layer.backward(np.ones((1, 3)))
    assert (da.dtype, db.dtype) == (np.float32, np.float64)  # each gradient in its input's dtype
    assert layer.forward(np.ones((1, 2), np.int64), np.ones((1, 1), np.int64)).dtype == np.float32


def test_gradients_share_no_memory_with_grad_out_or_the_output(float64):
    layer = mdl.Concatenate()
    a, b = np.ones((2, 2)), np.ones((2, 1))
    y = layer.forward(a, b)
    y[...] = 7.0  # editing the output leaves the inputs alone
    np.testing.assert_array_equal(a, 1.0)
    g = np.arange(6.0).reshape(2, 3)
    da, _ = layer.backward(g)
    da[...] = -1.0
    np.testing.assert_array_equal(g, np.arange(6.0).reshape(2, 3))


def test_inside_a_user_model(float64, rng):
    model = TwoSequenceModel(2, 3)
    a, b = two_sequences(rng)
    by_hand = model.head.forward(np.concatenate([model.left.forward(a), model.right.forward(b)], axis=-1))
    np.testing.assert_array_equal(model.forward(a, b), by_hand)


@pytest.mark.parametrize(
    "make, err, pattern",
    [
        (lambda: mdl.Concatenate(axis=1.0), TypeError, r"Concatenate: axis must be an int, got 1\.0"),
        (lambda: mdl.Concatenate(axis=True), TypeError, r"Concatenate: axis must be an int, got True"),
        (lambda: mdl.Concatenate().forward(), ValueError, r"Concatenate\(axis=-1\): forward needs at least one input, got none"),
        (lambda: mdl.Concatenate(axis=0).forward(np.ones((2, 3)), np.ones((2, 3))), ValueError,
         r"Concatenate\(axis=0\): cannot join input\[0\] of shape \(2, 3\) along axis 0 \(an axis other than the batch axis 0"),
        (lambda: mdl.Concatenate(axis=-2).forward(np.ones((2, 3)), np.ones((2, 3))), ValueError, r"along axis -2"),
        (lambda: mdl.Concatenate(axis=3).forward(np.ones((2, 3)), np.ones((2, 3))), ValueError, r"along axis 3"),
        (lambda: mdl.Concatenate().forward(np.ones(3), np.ones(3)), ValueError, r"input\[0\] of shape \(3,\) along axis -1"),
        (lambda: mdl.Concatenate().forward(np.ones((2, 3)), np.ones((4, 1))), ValueError,
         r"expected input\[1\] of shape \(2, None\) \(that of input\[0\] but on axis 1\), got \(4, 1\)"),
        (lambda: mdl.Concatenate().forward(np.ones((2, 3)), np.ones((2, 3, 1))), ValueError, r"expected input\[1\] of shape \(2, None\)"),
        (lambda: mdl.Concatenate().forward(np.ones((2, 3)), np.full((2, 1), "a")), TypeError,
         r"input\[1\] must be a real numeric array, got dtype <U1"),
        (lambda: mdl.Concatenate().backward(np.ones((2, 3))), RuntimeError, r"backward called before forward"),
    ],
)
def test_bad_inputs(make, err, pattern):
    with pytest.raises(err, match=pattern):
        make()


def test_grad_out_of_the_wrong_shape():
    layer = mdl.Concatenate()
    layer.forward(np.ones((2, 3)), np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"Concatenate\(axis=-1\): expected grad_out of shape \(2, 4\), got \(2, 3\)"):
        layer.backward(np.ones((2, 3)))
