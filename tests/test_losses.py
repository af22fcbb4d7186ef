"""MSELoss: values and gradients by hand and by central differences, dtypes, errors."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import numeric_grad


def test_mse_value_and_grad_by_hand():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    target = np.array([[0.0, 2.0], [5.0, 1.0]])
    loss = mdl.MSELoss()
    # diff = [1, 0, -2, 3]; squares 1 + 0 + 4 + 9 = 14; mean over 4 elements
    value = loss(pred, target)
    assert isinstance(value, float)
    assert value == 3.5
    # 2 * diff / 4
    np.testing.assert_array_equal(loss.backward(), [[0.5, 0.0], [-1.0, 1.5]])


def test_mse_mean_is_over_all_elements_of_a_sequence_batch():
    pred = np.full((2, 3, 4), 2.0)
    target = np.zeros((2, 3, 4))
    loss = mdl.MSELoss()
    assert loss(pred, target) == 4.0
    np.testing.assert_array_equal(loss.backward(), np.full((2, 3, 4), 2 * 2.0 / 24))


def test_mse_grad_matches_central_differences():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(3, 4, 2))
    target = rng.normal(size=(3, 4, 2))
    loss = mdl.MSELoss()
    loss(pred, target)
    grad = loss.backward()
    np.testing.assert_allclose(grad, numeric_grad(loss, pred, target), rtol=1e-7, atol=1e-10)


def test_backward_belongs_to_the_last_forward_and_can_be_repeated():
    loss = mdl.MSELoss()
    loss(np.array([1.0, 1.0]), np.array([0.0, 0.0]))
    assert loss(np.array([3.0, -1.0]), np.array([1.0, 0.0])) == 2.5  # (4 + 1) / 2
    first = loss.backward()
    np.testing.assert_array_equal(first, [2.0, -1.0])
    first[...] = 0  # the caller may modify what it got
    np.testing.assert_array_equal(loss.backward(), [2.0, -1.0])


@pytest.mark.parametrize(
    ("pred_dtype", "target_dtype", "expected"),
    [
        (np.float32, np.float64, np.float32),
        (np.float64, np.float32, np.float64),
        (np.float32, np.int64, np.float32),
    ],
)
def test_computation_runs_in_pred_dtype(pred_dtype, target_dtype, expected):
    pred = np.array([0.5, 1.5, -2.0], dtype=pred_dtype)
    target = np.array([1, 1, -1], dtype=target_dtype)
    loss = mdl.MSELoss()
    # diff = [-0.5, 0.5, -1]: (0.25 + 0.25 + 1) / 3
    assert loss(pred, target) == pytest.approx(0.5, rel=1e-7)
    grad = loss.backward()
    assert grad.dtype == expected
    np.testing.assert_allclose(grad, np.array([-1.0, 1.0, -2.0]) / 3, rtol=1e-6)


def test_non_float_pred_uses_the_default_dtype(float64):
    loss = mdl.MSELoss()
    assert loss([[1, 2]], [[0, 0]]) == 2.5
    assert loss.backward().dtype == np.float64
    mdl.set_default_dtype(np.float32)
    loss([[1, 2]], [[0, 0]])
    assert loss.backward().dtype == np.float32


def test_float32_value_close_to_float64():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(64, 10, 3)), rng.normal(size=(64, 10, 3))
    exact = float(np.mean((pred - target) ** 2))
    assert mdl.MSELoss()(pred.astype(np.float32), target.astype(np.float32)) == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize(
    ("pred", "target", "exc", "fragment"),
    [
        (np.zeros((2, 3)), np.zeros((3, 2)), ValueError, "pred (2, 3) and target (3, 2)"),
        (np.zeros((2, 3)), np.zeros((2, 3, 1)), ValueError, "target (2, 3, 1)"),
        (np.zeros(3), np.zeros(1), ValueError, "same shape"),
        (np.zeros((0, 3)), np.zeros((0, 3)), ValueError, "pred is empty"),
        (np.array(["a", "b"]), np.zeros(2), TypeError, "pred must be a real numeric array"),
        (np.zeros(2), np.array(["a", "b"]), TypeError, "target must be a real numeric array"),
        (np.zeros(2), np.zeros(2, dtype=complex), TypeError, "complex"),
        (np.zeros(2), [[1.0], [1.0, 2.0]], TypeError, "target must be a numeric array"),
        (np.zeros(2), None, TypeError, "target must be a real numeric array"),
    ],
)
def test_bad_inputs(pred, target, exc, fragment):
    loss = mdl.MSELoss()
    with pytest.raises(exc, match="MSELoss") as info:
        loss(pred, target)
    assert fragment in str(info.value)


def test_backward_before_forward_is_a_runtime_error():
    with pytest.raises(RuntimeError, match=r"MSELoss: backward\(\) called before forward\(\)"):
        mdl.MSELoss().backward()


def test_failed_forward_leaves_no_stale_gradient():
    loss = mdl.MSELoss()
    loss(np.ones(2), np.zeros(2))
    with pytest.raises(ValueError):
        loss(np.ones(2), np.zeros(3))
    with pytest.raises(RuntimeError, match="before forward"):
        loss.backward()


def test_loss_is_a_loss_and_repr():
    loss = mdl.MSELoss()
    assert isinstance(loss, mdl.Loss)
    assert repr(loss) == "MSELoss()"
