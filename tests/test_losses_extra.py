"""CrossEntropyLoss, BCEWithLogitsLoss, HuberLoss, L1Loss: values and gradients by hand,
central differences, extreme logits, ignore_index, dtypes and bad inputs."""

import math
import warnings

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import numeric_grad
from minidl.losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss


# ---- CrossEntropyLoss by hand ----------------------------------------------------------

# Row 0: logits log([1, 2, 5]) -> softmax [1/8, 2/8, 5/8], target 2: -log(5/8) = log(1.6).
# Row 1: logits log([1, 1, 2]) + 7 -> softmax [1/4, 1/4, 1/2], target 0: -log(1/4) = log(4).
CE_PRED = np.log(np.array([[1.0, 2.0, 5.0], [1.0, 1.0, 2.0]])) + np.array([[0.0], [7.0]])
CE_TARGET = np.array([2, 0])
CE_GRAD_SUM = np.array([[0.125, 0.25, -0.375], [-0.75, 0.25, 0.5]])  # softmax - onehot


def test_cross_entropy_by_hand():
    loss = CrossEntropyLoss()
    value = loss(CE_PRED, CE_TARGET)
    assert isinstance(value, float)
    assert value == pytest.approx((math.log(1.6) + math.log(4.0)) / 2, rel=1e-14)
    np.testing.assert_allclose(loss.backward(), CE_GRAD_SUM / 2, rtol=1e-13, atol=1e-16)


def test_cross_entropy_sum_reduction_by_hand():
    loss = CrossEntropyLoss(reduction="sum")
    assert loss(CE_PRED, CE_TARGET) == pytest.approx(math.log(6.4), rel=1e-14)
    np.testing.assert_allclose(loss.backward(), CE_GRAD_SUM, rtol=1e-13, atol=1e-16)


def test_cross_entropy_ignore_index_leaves_rows_out_of_value_count_and_gradient():
    pred = np.concatenate([CE_PRED, [[3.0, -1.0, 0.5]]])
    loss = CrossEntropyLoss()
    assert loss(pred, np.array([2, 0, -100])) == pytest.approx((math.log(1.6) + math.log(4.0)) / 2, rel=1e-14)
    grad = loss.backward()
    np.testing.assert_allclose(grad[:2], CE_GRAD_SUM / 2, rtol=1e-13, atol=1e-16)
    np.testing.assert_array_equal(grad[2], 0.0)
    # A custom ignore_index may even be a valid class.
    custom = CrossEntropyLoss(ignore_index=0)
    assert custom(pred, np.array([2, 0, 0])) == pytest.approx(math.log(1.6), rel=1e-14)
    np.testing.assert_allclose(custom.backward()[0], CE_GRAD_SUM[0], rtol=1e-13)
    np.testing.assert_array_equal(custom.backward()[1:], 0.0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_all_ignored_is_zero_with_zero_gradient(reduction):
    loss = CrossEntropyLoss(reduction=reduction)
    assert loss(CE_PRED, np.array([-100, -100])) == 0.0
    grad = loss.backward()
    assert grad.shape == CE_PRED.shape
    np.testing.assert_array_equal(grad, 0.0)


def test_cross_entropy_sequence_batch_against_a_direct_reference():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(2, 5, 4)) * 3
    target = rng.integers(0, 4, size=(2, 5))
    target[0, 1] = target[1, 4] = -100
    loss = CrossEntropyLoss()
    probs = np.exp(pred) / np.exp(pred).sum(-1, keepdims=True)
    keep = target != -100
    picked = probs[np.nonzero(keep) + (target[keep],)]
    assert loss(pred, target) == pytest.approx(-np.log(picked).mean(), rel=1e-13)
    expected = probs.copy()
    expected[np.nonzero(keep) + (target[keep],)] -= 1.0
    expected[~keep] = 0.0
    np.testing.assert_allclose(loss.backward(), expected / keep.sum(), rtol=1e-12, atol=1e-15)


def test_cross_entropy_unbatched_logits():
    loss = CrossEntropyLoss()
    assert loss(np.log([1.0, 2.0, 5.0]), 1) == pytest.approx(math.log(4.0), rel=1e-14)
    np.testing.assert_allclose(loss.backward(), [0.125, -0.75, 0.625], rtol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_grad_matches_central_differences(reduction):
    rng = np.random.default_rng(1)
    pred = rng.normal(size=(3, 4, 5))
    target = rng.integers(0, 5, size=(3, 4))
    target[1, 2] = -100
    loss = CrossEntropyLoss(reduction=reduction)
    loss(pred, target)
    grad = loss.backward()
    np.testing.assert_allclose(grad, numeric_grad(loss, pred, target), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(grad[1, 2], 0.0)


# ---- BCEWithLogitsLoss by hand -----------------------------------------------------------

# sigmoid(0) = 1/2, sigmoid(log 3) = 3/4, sigmoid(-log 3) = 1/4.
BCE_PRED = np.array([0.0, math.log(3.0), -math.log(3.0), math.log(3.0)])
BCE_TARGET = np.array([1.0, 1.0, 0.0, 0.5])
BCE_TERMS = [
    math.log(2.0),                                   # -log(1/2)
    math.log(4.0 / 3.0),                             # -log(3/4)
    math.log(4.0 / 3.0),                             # -log(1 - 1/4)
    -(0.5 * math.log(0.75) + 0.5 * math.log(0.25)),  # soft label
]
BCE_GRAD_TERMS = np.array([-0.5, -0.25, 0.25, 0.25])  # sigmoid(x) - y


def test_bce_with_logits_by_hand():
    loss = BCEWithLogitsLoss()
    assert loss(BCE_PRED, BCE_TARGET) == pytest.approx(sum(BCE_TERMS) / 4, rel=1e-14)
    np.testing.assert_allclose(loss.backward(), BCE_GRAD_TERMS / 4, rtol=1e-13, atol=1e-17)
    total = BCEWithLogitsLoss(reduction="sum")
    assert total(BCE_PRED, BCE_TARGET) == pytest.approx(sum(BCE_TERMS), rel=1e-14)
    np.testing.assert_allclose(total.backward(), BCE_GRAD_TERMS, rtol=1e-13, atol=1e-17)


def test_bce_with_logits_pos_weight_by_hand():
    # Per class weights of the positive term: -(pw * y * log s + (1 - y) * log(1 - s)).
    pred = np.array([[math.log(3.0), math.log(3.0)], [-math.log(3.0), 0.0]])
    target = np.array([[1.0, 0.5], [0.0, 1.0]])
    loss = BCEWithLogitsLoss(pos_weight=[2.0, 3.0])
    terms = [
        2.0 * math.log(4.0 / 3.0),
        -(3.0 * 0.5 * math.log(0.75) + 0.5 * math.log(0.25)),
        math.log(4.0 / 3.0),           # y = 0: the weight plays no part
        3.0 * math.log(2.0),
    ]
    assert loss(pred, target) == pytest.approx(sum(terms) / 4, rel=1e-14)
    # d/dx = sigmoid(x) * (pw * y + 1 - y) - pw * y
    grads = np.array([[0.75 * 2.0 - 2.0, 0.75 * 2.0 - 1.5], [0.25, 0.5 * 3.0 - 3.0]])
    np.testing.assert_allclose(loss.backward(), grads / 4, rtol=1e-13, atol=1e-17)


@pytest.mark.parametrize("pos_weight", [None, [0.5, 2.0, 1.0]])
def test_bce_with_logits_grad_matches_central_differences(pos_weight):
    rng = np.random.default_rng(2)
    pred = rng.normal(size=(2, 4, 3)) * 3
    target = rng.uniform(size=(2, 4, 3))
    target[0, 0] = [0.0, 1.0, 1.0]
    loss = BCEWithLogitsLoss(pos_weight=pos_weight)
    loss(pred, target)
    np.testing.assert_allclose(loss.backward(), numeric_grad(loss, pred, target), rtol=1e-6, atol=1e-10)


# ---- Huber and L1 by hand ----------------------------------------------------------------


def test_huber_by_hand():
    pred = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 2.0])
    loss = HuberLoss()
    # |d| <= 1: d**2 / 2; beyond: |d| - 1/2  -> 2.5, 0.5, 0.125, 0, 0.125, 1.5
    assert loss(pred, np.zeros(6)) == pytest.approx(4.75 / 6, rel=1e-15)
    np.testing.assert_allclose(loss.backward(), np.array([-1.0, -1.0, -0.5, 0.0, 0.5, 1.0]) / 6, rtol=1e-15)
    wide = HuberLoss(delta=2.0, reduction="sum")
    # target 1: d = [-3, 0.5, 3] -> 2 * (3 - 1) = 4, 0.125, 4
    assert wide(np.array([-2.0, 1.5, 4.0]), np.ones(3)) == pytest.approx(8.125, rel=1e-15)
    np.testing.assert_array_equal(wide.backward(), [-2.0, 0.5, 2.0])


def test_l1_by_hand_with_zero_subgradient():
    loss = L1Loss()
    pred, target = np.array([[-1.0, 2.0], [3.0, 0.5]]), np.array([[1.0, 2.0], [0.0, 1.0]])
    # d = [-2, 0, 3, -0.5]
    assert loss(pred, target) == pytest.approx(5.5 / 4, rel=1e-15)
    np.testing.assert_array_equal(loss.backward(), [[-0.25, 0.0], [0.25, -0.25]])
    total = L1Loss(reduction="sum")
    assert total(pred, target) == 5.5
    np.testing.assert_array_equal(total.backward(), [[-1.0, 0.0], [1.0, -1.0]])


@pytest.mark.parametrize("loss", [HuberLoss(), HuberLoss(delta=0.3, reduction="sum"), L1Loss()], ids=repr)
def test_huber_and_l1_grads_match_central_differences(loss):
    rng = np.random.default_rng(3)
    pred, target = rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 5, 2))
    d = np.abs(pred - target)
    assert d.min() > 1e-3 and np.abs(d - 0.3).min() > 1e-3 and np.abs(d - 1.0).min() > 1e-3  # away from kinks
    loss(pred, target)
    np.testing.assert_allclose(loss.backward(), numeric_grad(loss, pred, target), rtol=1e-6, atol=1e-10)


# ---- extreme logits ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_finite_exact_and_warning_free(dtype):
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        # Cross-entropy: row 0 is certain of its target (loss 0); row 1 puts 2e4 on the wrong class.
        ce = CrossEntropyLoss()
        pred = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4 - 1, -1e4]], dtype=dtype)
        value = ce(pred, np.array([0, 0, 1]))
        assert value == pytest.approx((0.0 + 2e4 + 1.0 + math.log1p(math.exp(-1.0))) / 3, rel=1e-6)
        grad = ce.backward()
        assert grad.dtype == dtype
        s = 1.0 / (1.0 + math.exp(-1.0))  # softmax of the 1e4 entry of row 2
        expected = np.array([[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [s, (1.0 - s) - 1.0, 0.0]]) / 3
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-12)

        bce = BCEWithLogitsLoss()
        x = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)
        assert bce(x, np.array([1.0, 0.0, 0.0, 1.0])) == 5000.0
        np.testing.assert_array_equal(bce.backward(), np.array([0.0, 0.0, 0.25, -0.25], dtype=dtype))
        weighted = BCEWithLogitsLoss(pos_weight=[3.0])
        assert weighted(x, np.array([1.0, 0.0, 0.0, 1.0])) == pytest.approx((1e4 + 3e4) / 4, rel=1e-7)
        np.testing.assert_array_equal(weighted.backward(), np.array([0.0, 0.0, 0.25, -0.75], dtype=dtype))

        for loss in (HuberLoss(), L1Loss(), mdl.MSELoss()):
            assert np.isfinite(loss(x, -x))
            assert np.isfinite(loss.backward()).all()


# ---- dtypes, API ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "target"),
    [
        (CrossEntropyLoss(), np.array([[0, 1], [2, 0]])),
        (BCEWithLogitsLoss(pos_weight=[1.0, 2.0, 0.5]), np.full((2, 2, 3), 0.25)),
        (HuberLoss(), np.zeros((2, 2, 3))),
        (L1Loss(), np.zeros((2, 2, 3))),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, mdl.Loss) else "",
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_computation_runs_in_pred_dtype_and_float32_is_close(loss, target, dtype):
    pred = np.random.default_rng(4).normal(size=(2, 2, 3))
    exact = loss(pred, target)
    exact_grad = loss.backward()
    value = loss(pred.astype(dtype), target)
    grad = loss.backward()
    assert grad.dtype == dtype and grad.shape == pred.shape
    assert value == pytest.approx(exact, rel=1e-6)
    np.testing.assert_allclose(grad, exact_grad, rtol=1e-5, atol=1e-7)


def test_reprs_and_base_class():
    assert repr(CrossEntropyLoss()) == "CrossEntropyLoss(ignore_index=-100, reduction='mean')"
    assert repr(BCEWithLogitsLoss([2.0])) == "BCEWithLogitsLoss(pos_weight=[2.0], reduction='mean')"
    assert repr(HuberLoss(delta=0.5, reduction="sum")) == "HuberLoss(delta=0.5, reduction='sum')"
    assert repr(L1Loss()) == "L1Loss(reduction='mean')"
    for cls in (CrossEntropyLoss, BCEWithLogitsLoss, HuberLoss, L1Loss):
        assert isinstance(cls(), mdl.Loss)
        with pytest.raises(RuntimeError, match=f"{cls.__name__}: backward\\(\\) called before forward\\(\\)"):
            cls().backward()


# ---- bad inputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "pred", "target", "exc", "fragment"),
    [
        (CrossEntropyLoss(), np.zeros((2, 3)), np.array([0.0, 1.0]), TypeError,
         "target must be integer class indices, got dtype float64"),
        (CrossEntropyLoss(), np.zeros((2, 3)), np.array([True, False]), TypeError, "got dtype bool"),
        (CrossEntropyLoss(), np.zeros((2, 3)), np.eye(3)[[0, 1]], TypeError, "one-hot targets are not supported"),
        (CrossEntropyLoss(), np.zeros((2, 3)), np.array([[1, 0, 0], [0, 1, 0]]), ValueError,
         "(2,) for pred (2, 3), got (2, 3)"),
        (CrossEntropyLoss(), np.zeros((2, 4, 3)), np.zeros((4, 2), dtype=int), ValueError,
         "(2, 4) for pred (2, 4, 3), got (4, 2)"),
        (CrossEntropyLoss(), np.zeros((2, 3)), np.array([0, 3]), ValueError,
         "class index 3 at position (1,), outside [0, 3)"),
        (CrossEntropyLoss(), np.zeros((2, 2, 3)), np.array([[0, 1], [-1, 2]]), ValueError,
         "class index -1 at position (1, 0)"),
        (CrossEntropyLoss(ignore_index=-1), np.zeros((2, 3)), np.array([-100, 0]), ValueError,
         "class index -100 at position (0,), outside [0, 3) for pred with 3 classes (ignore_index=-1)"),
        (CrossEntropyLoss(), np.float64(1.0), np.array(0), ValueError, "pred must have a class axis"),
        (CrossEntropyLoss(), np.zeros((0, 3)), np.zeros(0, dtype=int), ValueError, "pred is empty"),
        (CrossEntropyLoss(), np.array([["a", "b"]]), np.array([0]), TypeError, "pred must be a real numeric array"),
        (BCEWithLogitsLoss(), np.zeros(3), np.array([0.0, 1.0, 2.0]), ValueError,
         "target must hold probabilities in [0, 1], got 2.0"),
        (BCEWithLogitsLoss(), np.zeros(2), np.array([-1.0, 1.0]), ValueError, "got -1.0"),
        (BCEWithLogitsLoss(), np.zeros(2), np.array([np.nan, 1.0]), ValueError, "got nan"),
        (BCEWithLogitsLoss(), np.zeros((2, 3)), np.zeros((3, 2)), ValueError, "pred (2, 3) and target (3, 2)"),
        (BCEWithLogitsLoss(pos_weight=[1.0, 2.0]), np.zeros((2, 3)), np.zeros((2, 3)), ValueError,
         "pos_weight of shape (2,) does not broadcast to pred (2, 3)"),
        (BCEWithLogitsLoss(pos_weight=np.ones((2, 1, 3))), np.zeros((2, 3)), np.zeros((2, 3)), ValueError,
         "pos_weight of shape (2, 1, 3) does not broadcast to pred (2, 3)"),
        (HuberLoss(), np.zeros((2, 3)), np.zeros(3), ValueError, "pred (2, 3) and target (3,)"),
        (L1Loss(), np.zeros(2), np.array(["a", "b"]), TypeError, "target must be a real numeric array"),
    ],
)
def test_bad_inputs(loss, pred, target, exc, fragment):
    with pytest.raises(exc, match=type(loss).__name__) as info:
        loss(pred, target)
    assert fragment in str(info.value)
    with pytest.raises(RuntimeError, match="before forward"):
        loss.backward()


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: CrossEntropyLoss(ignore_index=1.5), TypeError, "CrossEntropyLoss: ignore_index must be an int, got 1.5"),
        (lambda: CrossEntropyLoss(ignore_index=True), TypeError, "ignore_index must be an int"),
        (lambda: CrossEntropyLoss(reduction="none"), ValueError,
         "CrossEntropyLoss: reduction must be one of 'mean', 'sum', got 'none'"),
        (lambda: BCEWithLogitsLoss(pos_weight=[-1.0]), ValueError, "BCEWithLogitsLoss: pos_weight must be finite and >= 0"),
        (lambda: BCEWithLogitsLoss(pos_weight=[np.inf]), ValueError, "pos_weight must be finite"),
        (lambda: BCEWithLogitsLoss(pos_weight="a"), TypeError, "BCEWithLogitsLoss: pos_weight must be a real numeric array"),
        (lambda: BCEWithLogitsLoss(reduction="avg"), ValueError, "reduction must be one of 'mean', 'sum'"),
        (lambda: HuberLoss(delta=0.0), ValueError, "HuberLoss: delta must be > 0.0, got 0.0"),
        (lambda: HuberLoss(delta="1"), TypeError, "HuberLoss: delta must be a real number"),
        (lambda: L1Loss(reduction=None), ValueError, "L1Loss: reduction must be one of 'mean', 'sum', got None"),
    ],
)
def test_bad_constructor_arguments(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)


def test_top_level_names():
    assert (mdl.CrossEntropyLoss, mdl.BCEWithLogitsLoss, mdl.HuberLoss, mdl.L1Loss) == (
        CrossEntropyLoss, BCEWithLogitsLoss, HuberLoss, L1Loss
    )
