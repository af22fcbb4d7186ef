"""MSELoss, L1Loss, HuberLoss: values and gradients by hand, central differences, masks,
PyTorch on the selected elements (float64), extreme values, dtypes and bad arguments."""

import numpy as np
import pytest

import minidl as mdl
from minidl.losses import HuberLoss, L1Loss, MSELoss
from tests.helpers import assert_relative_close, scaled_normal, torch_value_and_grad
from tests.helpers import assert_loss_matches_torch, assert_masked_loss, numeric_grad, warnings_as_errors
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params

MASK = np.array([[True, False, True, True], [False, True, True, False], [True, True, False, False]])  # (3, 4)
LOSSES = [MSELoss(), L1Loss(), L1Loss(reduction="sum"), HuberLoss(), HuberLoss(delta=0.3, reduction="sum")]
TORCH_NAMES = {MSELoss: "mse_loss", L1Loss: "l1_loss", HuberLoss: "huber_loss"}


def _inputs(seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 4, 2))


# ---- by hand -----------------------------------------------------------------------------
SEQ = np.arange(12.0).reshape(2, 3, 2)
SEQ_MASK = np.array([[True, False, True], [False, True, False]])  # real steps hold [0, 1], [4, 5], [8, 9]
L1_PRED, L1_TARGET = np.array([[-1.0, 2.0], [3.0, 0.5]]), np.array([[1.0, 2.0], [0.0, 1.0]])  # d = [-2, 0, 3, -0.5]

BY_HAND = {  # name: (loss, pred, target, mask, value, grad, (value rtol, grad rtol)); 0: exact
    "mse": (MSELoss(), [[1.0, 2.0], [3.0, 4.0]], [[0.0, 2.0], [5.0, 1.0]], None,  # squares 1 + 0 + 4 + 9 over 4
            3.5, [[0.5, 0.0], [-1.0, 1.5]], (0, 0)),                                # 2 * diff / 4
    "mse-sequence-batch": (MSELoss(), np.full((2, 3, 4), 2.0), np.zeros((2, 3, 4)), None, 4.0,
                           np.full((2, 3, 4), 2 * 2.0 / 24), (0, 0)),
    "mse-mask": (MSELoss(), SEQ, np.zeros_like(SEQ), SEQ_MASK, 187 / 6,  # squares 187 over 3 steps * 2 outputs
                 np.where(SEQ_MASK[..., None], 2 * SEQ / 6, 0.0), (1e-15, 1e-15)),
    "mse-sequence-mask": (MSELoss(), SEQ, np.zeros_like(SEQ), np.array([False, True]), np.mean(SEQ[1] ** 2),
                          np.where([[[False]], [[True]]], 2 * SEQ / 6, 0.0), (1e-15, 1e-15)),
    "l1-sum-mask": (L1Loss(reduction="sum"), SEQ, np.zeros_like(SEQ), SEQ_MASK, 27.0,
                    np.where(SEQ_MASK[..., None], np.sign(SEQ), 0.0), (0, 0)),
    "l1": (L1Loss(), L1_PRED, L1_TARGET, None, 5.5 / 4, [[-0.25, 0.0], [0.25, -0.25]], (1e-15, 0)),
    "l1-sum": (L1Loss(reduction="sum"), L1_PRED, L1_TARGET, None, 5.5, [[-1.0, 0.0], [1.0, -1.0]], (0, 0)),
    # |d| <= 1: d**2 / 2; beyond: |d| - 1/2  -> 2.5, 0.5, 0.125, 0, 0.125, 1.5
    "huber": (HuberLoss(), [-3.0, -1.0, -0.5, 0.0, 0.5, 2.0], np.zeros(6), None, 4.75 / 6,
              np.array([-1.0, -1.0, -0.5, 0.0, 0.5, 1.0]) / 6, (1e-15, 1e-15)),
    # target 1: d = [-3, 0.5, 3] -> 2 * (3 - 1) = 4, 0.125, 4
    "huber-sum": (HuberLoss(delta=2.0, reduction="sum"), [-2.0, 1.5, 4.0], np.ones(3), None, 8.125,
                  [-2.0, 0.5, 2.0], (1e-15, 0)),
}


@pytest.mark.parametrize("name", BY_HAND)
def test_by_hand(name):
    loss, pred, target, mask, value, grad, (value_rtol, grad_rtol) = BY_HAND[name]
    got = loss(np.asarray(pred, np.float64), target, mask)
    assert isinstance(got, float)
    assert got == pytest.approx(value, rel=value_rtol, abs=0)
    np.testing.assert_allclose(loss.backward(), grad, rtol=grad_rtol, atol=grad_rtol * 1e-4)


def test_mse_float32_value_close_to_float64():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(64, 10, 3)), rng.normal(size=(64, 10, 3))
    exact = float(np.mean((pred - target) ** 2))
    assert MSELoss()(pred.astype(np.float32), target.astype(np.float32)) == pytest.approx(exact, rel=1e-5)


# ---- central differences, masks, PyTorch ---------------------------------------------------
@pytest.mark.parametrize("loss", LOSSES, ids=repr)
@pytest.mark.parametrize("mask", [None, MASK], ids=["no-mask", "mask"])
def test_grad_matches_central_differences(loss, mask):
    pred, target = _inputs()
    d = np.abs(pred - target)  # away from the kinks of L1 (0) and Huber (delta)
    assert d.min() > 1e-3 and np.abs(d - 0.3).min() > 1e-3 and np.abs(d - 1.0).min() > 1e-3
    loss(pred, target, mask)
    np.testing.assert_allclose(loss.backward(), numeric_grad(loss, pred, target, mask=mask), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_a_masked_loss_is_the_loss_of_the_real_steps_and_padding_is_never_read(loss):
    assert_masked_loss(loss, *_inputs(seed=2), MASK, padding=np.inf)


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
@pytest.mark.parametrize("mask", [None, MASK], ids=["no-mask", "mask"])
def test_matches_torch_on_the_selected_elements(loss, mask):
    pred, target = _inputs(seed=4)
    target[1, 2] = pred[1, 2]  # d = 0: torch's L1 gradient there is 0, as ours
    assert_loss_matches_torch(loss, pred, target, mask, TORCH_NAMES[type(loss)])


# ---- extreme values, dtypes ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_values_are_finite_and_warning_free(dtype):
    x = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    with warnings_as_errors():
        for loss in (HuberLoss(), L1Loss(), MSELoss()):
            assert np.isfinite(loss(x, -x)) and np.isfinite(loss.backward()).all()


@pytest.mark.parametrize(
    ("pred_dtype", "target_dtype", "expected"),
    [(np.float32, np.float64, np.float32), (np.float64, np.float32, np.float64), (np.float32, np.int64, np.float32)],
)
def test_computation_runs_in_pred_dtype(pred_dtype, target_dtype, expected):
    loss = MSELoss()
    pred, target = np.array([0.5, 1.5, -2.0], dtype=pred_dtype), np.array([1, 1, -1], dtype=target_dtype)
    assert loss(pred, target) == pytest.approx(0.5, rel=1e-7)  # diff = [-0.5, 0.5, -1]: (0.25 + 0.25 + 1) / 3
    grad = loss.backward()
    assert grad.dtype == expected
    np.testing.assert_allclose(grad, np.array([-1.0, 1.0, -2.0]) / 3, rtol=1e-6)


# ---- configuration and bad arguments -----------------------------------------------------------
def test_reprs():
    assert repr(MSELoss()) == "MSELoss()"
    assert repr(HuberLoss(delta=0.5, reduction="sum")) == "HuberLoss(delta=0.5, reduction='sum')"
    assert repr(L1Loss()) == "L1Loss(reduction='mean')"


@pytest.mark.parametrize(
    ("loss", "pred", "target", "fragment"),
    [(HuberLoss(), np.zeros((2, 3)), np.zeros(3), "HuberLoss: pred and target must have the same shape, got pred (2, 3) and target (3,)"),
     (L1Loss(), np.zeros(2), np.array(["a", "b"]), "L1Loss: target must be a real numeric array")],
)
def test_bad_inputs(loss, pred, target, fragment):
    with pytest.raises((ValueError, TypeError)) as info:
        loss(pred, target)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: HuberLoss(delta=0.0), ValueError, "HuberLoss: delta must be > 0.0, got 0.0"),
        (lambda: HuberLoss(delta="1"), TypeError, "HuberLoss: delta must be a real number"),
        (lambda: HuberLoss(reduction="avg"), ValueError, "HuberLoss: reduction must be one of 'mean', 'sum', got 'avg'"),
        (lambda: L1Loss(reduction=None), ValueError, "L1Loss: reduction must be one of 'mean', 'sum', got None"),
    ],
)
def test_bad_constructor_arguments(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("mse_object_pred", lambda: mdl.MSELoss()(np.array([1.0, None], dtype=object), np.zeros(2)),
         TypeError, r"^MSELoss: pred must be a real numeric array, got dtype object"),
    ("mse_bytes_pred", lambda: mdl.MSELoss()(np.array([b"a", b"b"]), np.zeros(2)),
         TypeError, r"^MSELoss: pred must be a real numeric array, got dtype \|S1"),
    ("mse_complex_pred", lambda: mdl.MSELoss()(np.zeros(2, complex), np.zeros(2)),
         TypeError, r"^MSELoss: pred must be a real numeric array, got dtype complex128"),
    ("mse_empty_features", lambda: mdl.MSELoss()(np.zeros((2, 0)), np.zeros((2, 0))),
         ValueError, r"^MSELoss: pred is empty \(shape \(2, 0\)\)"),
    ("l1_object_target", lambda: mdl.L1Loss()(np.zeros(2), np.array([None, 1], dtype=object)),
         TypeError, r"^L1Loss: target must be a real numeric array, got dtype object"),
    ("huber_string_pred", lambda: mdl.HuberLoss()(np.array(["a"]), np.zeros(1)),
         TypeError, r"^HuberLoss: pred must be a real numeric array, got dtype <U1"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)


# ---- against PyTorch in more settings (float64): deltas, zero differences ----
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber_matches_torch(delta, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    pred, target = scaled_normal((3, 4, 2), 2.0, seed=4), scaled_normal((3, 4, 2), 2.0, seed=5)
    target[0, 0, 0] = pred[0, 0, 0] + delta  # exactly on the kink
    loss = HuberLoss(delta=delta, reduction=reduction)
    value = loss(pred, target)
    ref, ref_grad = torch_value_and_grad(F.huber_loss, pred, torch.from_numpy(target), delta=delta, reduction=reduction)
    assert value == pytest.approx(ref, rel=1e-13)
    assert_relative_close(loss.backward(), ref_grad, tol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_l1_matches_torch_including_zero_differences(reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    pred, target = scaled_normal((3, 4, 2), seed=6), scaled_normal((3, 4, 2), seed=7)
    target[1] = pred[1]  # d = 0: torch's gradient there is 0
    loss = L1Loss(reduction=reduction)
    value = loss(pred, target)
    ref, ref_grad = torch_value_and_grad(F.l1_loss, pred, torch.from_numpy(target), reduction=reduction)
    assert value == pytest.approx(ref, rel=1e-13)
    np.testing.assert_array_equal(loss.backward(), ref_grad)
    assert not loss.backward()[1].any()


def test_mse_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    pred, target = rng.normal(size=(4, 7, 3)), rng.normal(size=(4, 7, 3))
    loss = mdl.MSELoss()
    value = loss(pred, target)
    x = torch.tensor(pred, requires_grad=True)
    ref = torch.nn.functional.mse_loss(x, torch.tensor(target))
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-14)
    np.testing.assert_allclose(loss.backward(), x.grad.numpy(), rtol=1e-14)
