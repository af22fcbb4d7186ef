"""Dense: values and gradients by hand, gradcheck, the default init, PyTorch's nn.Linear,
output aliasing and bad inputs."""

import math

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_close_rel, assert_output_edits_leave_gradients
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, BAD_X2, after_forward


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


@pytest.mark.parametrize("bias", [True, False])
def test_dense_matches_torch_linear(float64, bias):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = torch.nn.Linear(5, 3, bias=bias).double()
    dense = mdl.Dense(5, 3, bias=bias)
    dense.kernel.data[...] = ref.weight.detach().numpy().T          # torch (out, in), ours (in, out)
    if bias:
        dense.bias.data[...] = ref.bias.detach().numpy()
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 4, 3))
    xt = torch.from_numpy(x).requires_grad_(True)
    out = ref(xt)
    out.backward(torch.from_numpy(g))
    assert_close_rel(dense.forward(x), out.detach().numpy(), "output")
    assert_close_rel(dense.backward(g), xt.grad.numpy(), "input grad")
    assert_close_rel(dense.kernel.grad, ref.weight.grad.numpy().T, "kernel grad")
    if bias:
        assert_close_rel(dense.bias.grad, ref.bias.grad.numpy(), "bias grad")


def test_dense_output_edits_leave_gradients(float64, rng):
    assert_output_edits_leave_gradients(mdl.Dense(3, 2), rng.standard_normal((4, 3)))


@pytest.mark.parametrize(
    "make, err, pattern",
    [
        (lambda: mdl.Dense(0, 2), ValueError, r"Dense: in_features must be >= 1, got 0"),
        (lambda: mdl.Dense(2, 1.5), TypeError, r"Dense: out_features must be an int, got 1.5"),
        (lambda: mdl.Dense(2, 2, bias=1), TypeError, r"Dense: bias must be a bool, got 1 \(int\)"),
        (lambda: mdl.Dense(2, 2, kernel_initializer="nope"), ValueError, r"Dense: unknown kernel_initializer 'nope'"),
        (lambda: mdl.Dense(3, 2).forward(np.ones((2, 4))), ValueError, r"Dense\(.*expected input \(\.\.\., 3\), got shape \(2, 4\)"),
        (lambda: mdl.Dense(3, 2).forward(np.full((2, 3), "a")), TypeError, r"input must be a real numeric array"),
        (lambda: mdl.Dense(3, 2).backward(np.ones((2, 2))), RuntimeError, r"backward called before forward"),
    ],
)
def test_dense_bad_arguments_and_inputs(make, err, pattern):
    with pytest.raises(err, match=pattern):
        make()


def test_dense_bad_grad_out():
    dense = mdl.Dense(3, 2)
    dense.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"Dense\(.*\): expected grad_out of shape \(4, 2\), got \(2, 4\)"):
        dense.backward(np.ones((2, 4)))
    with pytest.raises(TypeError, match=r"grad_out must be a real numeric array, got dtype complex128"):
        dense.backward(np.ones((4, 2), complex))


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("dense_zero_in", lambda: mdl.Dense(0, 2), ValueError, r"Dense: in_features must be >= 1, got 0"),
    ("dense_negative_out", lambda: mdl.Dense(3, -1), ValueError, r"Dense: out_features must be >= 1, got -1"),
    (
            "dense_float_size",
            lambda: mdl.Dense(3, 2.0),
            TypeError,
            r"Dense: out_features must be an int, got 2\.0 \(float\)",
        ),
    ("dense_str_size", lambda: mdl.Dense("3", 2), TypeError, r"Dense: in_features must be an int, got '3' \(str\)"),
    ("dense_bias_not_bool", lambda: mdl.Dense(3, 2, bias="yes"), TypeError, r"Dense: bias must be a bool, got 'yes'"),
    (
            "dense_wrong_features",
            lambda: mdl.Dense(3, 2).forward(np.zeros((2, 4))),
            ValueError,
            r"Dense\(in_features=3.*expected input \(\.\.\., 3\), got shape \(2, 4\)",
        ),
    (
            "dense_scalar",
            lambda: mdl.Dense(3, 2).forward(1.0),
            ValueError,
            r"Dense\(in_features=3.*expected input \(\.\.\., 3\), got shape \(\)",
        ),
    (
            "dense_string",
            lambda: mdl.Dense(3, 2).forward("abc"),
            TypeError,
            r"Dense\(in_features=3.*input must be a real numeric array, got dtype <U3",
        ),
    (
            "dense_object",
            lambda: mdl.Dense(3, 2).forward(np.array([None, 1, 2], dtype=object)),
            TypeError,
            r"Dense\(.*input must be a real numeric array, got dtype object",
        ),
    (
            "dense_complex",
            lambda: mdl.Dense(3, 2).forward(np.ones((1, 3), complex)),
            TypeError,
            r"Dense\(.*input must be a real numeric array, got dtype complex128",
        ),
    (
            "dense_ragged",
            lambda: mdl.Dense(3, 2).forward([[1, 2, 3], [1]]),
            TypeError,
            r"Dense\(.*input must be a numeric array, got list",
        ),
    (
            "dense_backward_first",
            lambda: mdl.Dense(3, 2).backward(np.zeros((2, 2))),
            RuntimeError,
            r"Dense\(in_features=3.*backward called before forward",
        ),
    (
            "dense_grad_shape",
            lambda: after_forward(mdl.Dense(3, 2), BAD_X2).backward(np.zeros((2, 3))),
            ValueError,
            r"Dense\(.*expected grad_out of shape \(2, 2\), got \(2, 3\)",
        ),
    ("dense_no_samples", lambda: mdl.Dense(3, 2).forward(np.zeros((0, 3))),
         ValueError, r"^Dense\(in_features=3.*input is empty \(shape \(0, 3\)\)"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)


def test_backward_of_a_loss_value_says_to_pass_its_gradient():
    """The one check of every backward (_checks.grad_shape) hints when a number comes in."""
    dense = mdl.Dense(3, 1)
    dense.forward(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(4, 1\), got \(\); pass loss\.backward\(\), "
                                         r"the gradient of the loss, not the loss value$"):
        dense.backward(0.3)
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(4, 1\), got \(4,\)$"):
        dense.backward(np.ones(4, np.float32))          # a wrong shape, but not a number: no hint
