"""BCEWithLogitsLoss and CrossEntropyLoss: values and gradients by hand, ignore_index, central
differences, masks (combined with ignore_index), PyTorch on the selected elements (float64),
extreme logits, dtypes and bad inputs."""

import math

import numpy as np
import pytest

import minidl as mdl
from minidl.losses import BCEWithLogitsLoss, CrossEntropyLoss
from tests.helpers import assert_relative_close, scaled_normal, torch_value_and_grad
from tests.helpers import assert_loss_matches_torch, assert_masked_loss, numeric_grad, warnings_as_errors
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params

RNG = np.random.default_rng(0)
MASK = np.array([[True, False, True, True], [False, True, True, False], [True, True, False, False]])  # (3, 4)
PROBS = RNG.uniform(size=(3, 4, 2))
PROBS[0, 0] = [0.0, 1.0]  # hard labels too
CLASSES = RNG.integers(0, 3, size=(3, 4))
CLASSES[0, 3] = -100
# (loss, target, padding for the masked test): logits (3, 4, 2) against probabilities, (3, 4, 3) against classes
CASES = [
    (BCEWithLogitsLoss(), PROBS, np.inf), (BCEWithLogitsLoss([0.5, 2.0]), PROBS, 5.0),
    (BCEWithLogitsLoss([0.5, 2.0], "sum"), PROBS, -1.0),
    (CrossEntropyLoss(), CLASSES, 99), (CrossEntropyLoss(reduction="sum"), CLASSES, -7),
]
IDS = [repr(loss) for loss, _, _ in CASES]
TORCH_NAMES = {BCEWithLogitsLoss: "binary_cross_entropy_with_logits", CrossEntropyLoss: "cross_entropy"}


def _logits(loss, seed):
    rng = np.random.default_rng(seed)
    if isinstance(loss, CrossEntropyLoss):
        return rng.normal(size=(3, 4, 3))
    return 3 * rng.normal(size=(3, 4, 2))  # logits of both signs, some saturated


# ---- by hand -----------------------------------------------------------------------------
# CE rows: logits log([1, 2, 5]) -> softmax [1/8, 2/8, 5/8], target 2: -log(5/8) = log(1.6);
# logits log([1, 1, 2]) + 7 -> softmax [1/4, 1/4, 1/2], target 0: -log(1/4) = log(4).
CE_PRED = np.log(np.array([[1.0, 2.0, 5.0], [1.0, 1.0, 2.0]])) + np.array([[0.0], [7.0]])
CE_GRAD_SUM = np.array([[0.125, 0.25, -0.375], [-0.75, 0.25, 0.5]])  # softmax - onehot
CE_MEAN = (math.log(1.6) + math.log(4.0)) / 2
CE_3 = np.concatenate([CE_PRED, [[3.0, -1.0, 0.5]]])
# (2, 2, 3): CE_PRED's rows at steps (0, 0) and (1, 1); step (0, 1) ignored, step (1, 0) masked
CE_SEQ = np.stack([np.stack([CE_PRED[0], [3.0, 1.0, 0.0]]), np.stack([[9.0, 9.0, 9.0], CE_PRED[1]])])
CE_SEQ_GRAD = np.stack([np.stack([CE_GRAD_SUM[0], np.zeros(3)]), np.stack([np.zeros(3), CE_GRAD_SUM[1]])]) / 2
# BCE: sigmoid(0) = 1/2, sigmoid(log 3) = 3/4, sigmoid(-log 3) = 1/4
BCE_PRED, BCE_TARGET = np.array([0.0, math.log(3.0), -math.log(3.0), math.log(3.0)]), np.array([1.0, 1.0, 0.0, 0.5])
BCE_TERMS = [math.log(2.0), math.log(4.0 / 3.0), math.log(4.0 / 3.0),  # -log(1/2), -log(3/4), -log(1 - 1/4)
             -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))]           # a soft label
BCE_GRAD_TERMS = np.array([-0.5, -0.25, 0.25, 0.25])  # sigmoid(x) - y
# pos_weight [2, 3] per class: -(pw * y * log s + (1 - y) * log(1 - s)); y = 0: the weight plays no part
PW_PRED, PW_TARGET = np.array([[math.log(3.0), math.log(3.0)], [-math.log(3.0), 0.0]]), np.array([[1.0, 0.5], [0.0, 1.0]])
PW_TERMS = [2.0 * math.log(4.0 / 3.0), -(3.0 * 0.5 * math.log(0.75) + 0.5 * math.log(0.25)), math.log(4.0 / 3.0),
            3.0 * math.log(2.0)]
PW_GRAD = np.array([[0.75 * 2.0 - 2.0, 0.75 * 2.0 - 1.5], [0.25, 0.5 * 3.0 - 3.0]])  # s * (pw*y + 1 - y) - pw*y
TOL = (1e-14, 1e-13)  # value rtol, grad rtol

BY_HAND = {  # name: (loss, pred, target, mask, value, grad)
    "bce": (BCEWithLogitsLoss(), BCE_PRED, BCE_TARGET, None, sum(BCE_TERMS) / 4, BCE_GRAD_TERMS / 4),
    "bce-sum": (BCEWithLogitsLoss(reduction="sum"), BCE_PRED, BCE_TARGET, None, sum(BCE_TERMS), BCE_GRAD_TERMS),
    "bce-pos-weight": (BCEWithLogitsLoss(pos_weight=[2.0, 3.0]), PW_PRED, PW_TARGET, None, sum(PW_TERMS) / 4, PW_GRAD / 4),
    "ce": (CrossEntropyLoss(), CE_PRED, np.array([2, 0]), None, CE_MEAN, CE_GRAD_SUM / 2),
    "ce-sum": (CrossEntropyLoss(reduction="sum"), CE_PRED, np.array([2, 0]), None, math.log(6.4), CE_GRAD_SUM),
    "ce-ignore-index": (CrossEntropyLoss(), CE_3, np.array([2, 0, -100]), None, CE_MEAN,
                        np.concatenate([CE_GRAD_SUM / 2, np.zeros((1, 3))])),
    "ce-ignore-a-valid-class": (CrossEntropyLoss(ignore_index=0), CE_3, np.array([2, 0, 0]), None, math.log(1.6),
                                np.concatenate([CE_GRAD_SUM[:1], np.zeros((2, 3))])),
    "ce-unbatched": (CrossEntropyLoss(), np.log([1.0, 2.0, 5.0]), 1, None, math.log(4.0), [0.125, -0.75, 0.625]),
    # the mask combines with ignore_index; 7 is an invalid class, but at a masked step
    "ce-mask-and-ignore-index": (CrossEntropyLoss(), CE_SEQ, np.array([[2, -100], [7, 0]]),
                                 np.array([[True, True], [False, True]]), CE_MEAN, CE_SEQ_GRAD),
}


@pytest.mark.parametrize("name", BY_HAND)
def test_by_hand(name):
    loss, pred, target, mask, value, grad = BY_HAND[name]
    got = loss(pred, target, mask)
    assert isinstance(got, float)
    assert got == pytest.approx(value, rel=TOL[0], abs=0)
    np.testing.assert_allclose(loss.backward(), grad, rtol=TOL[1], atol=TOL[1] * 1e-4)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_all_ignored_is_zero_with_zero_gradient(reduction):
    loss = CrossEntropyLoss(reduction=reduction)
    assert loss(CE_PRED, np.array([-100, -100])) == 0.0
    np.testing.assert_array_equal(loss.backward(), np.zeros_like(CE_PRED))


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


# ---- central differences, masks, PyTorch ---------------------------------------------------
@pytest.mark.parametrize("loss, target, padding", CASES, ids=IDS)
@pytest.mark.parametrize("mask", [None, MASK], ids=["no-mask", "mask"])
def test_grad_matches_central_differences(loss, target, padding, mask):
    pred = _logits(loss, seed=1)
    loss(pred, target, mask)
    grad = loss.backward()
    np.testing.assert_allclose(grad, numeric_grad(loss, pred, target, mask=mask), rtol=1e-6, atol=1e-9)
    if isinstance(loss, CrossEntropyLoss):
        np.testing.assert_array_equal(grad[0, 3], 0.0)  # ignore_index


@pytest.mark.parametrize("loss, target, padding", CASES, ids=IDS)
def test_a_masked_loss_is_the_loss_of_the_real_steps_and_padding_is_never_read(loss, target, padding):
    assert_masked_loss(loss, _logits(loss, seed=2), target, MASK, padding)


@pytest.mark.parametrize("loss, target, padding", CASES, ids=IDS)
@pytest.mark.parametrize("mask", [None, MASK], ids=["no-mask", "mask"])
def test_matches_torch_on_the_selected_elements(loss, target, padding, mask):
    assert_loss_matches_torch(loss, _logits(loss, seed=4), target, mask, TORCH_NAMES[type(loss)])


# ---- extreme logits, dtypes ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_finite_exact_and_warning_free(dtype):
    with warnings_as_errors(), np.errstate(under="raise"):
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

        bce, weighted = BCEWithLogitsLoss(), BCEWithLogitsLoss(pos_weight=[3.0])
        x, y = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype), np.array([1.0, 0.0, 0.0, 1.0])
        assert bce(x, y) == 5000.0
        np.testing.assert_array_equal(bce.backward(), np.array([0.0, 0.0, 0.25, -0.25], dtype=dtype))
        assert weighted(x, y) == pytest.approx((1e4 + 3e4) / 4, rel=1e-7)
        np.testing.assert_array_equal(weighted.backward(), np.array([0.0, 0.0, 0.25, -0.75], dtype=dtype))


# ---- configuration and bad inputs -------------------------------------------------------------
def test_reprs():
    assert repr(CrossEntropyLoss()) == "CrossEntropyLoss(ignore_index=-100, reduction='mean')"
    assert repr(BCEWithLogitsLoss([2.0])) == "BCEWithLogitsLoss(pos_weight=[2.0], reduction='mean')"


Z23 = np.zeros((2, 3))
MASKED_FIRST = np.array([[False, True], [True, True]])


@pytest.mark.parametrize(
    ("loss", "pred", "target", "mask", "exc", "fragment"),
    [
        (CrossEntropyLoss(), Z23, np.array([0.0, 1.0]), None, TypeError, "target must be integer class indices, got dtype float64"),
        (CrossEntropyLoss(), Z23, np.array([True, False]), None, TypeError, "got dtype bool"),
        (CrossEntropyLoss(), Z23, np.eye(3)[[0, 1]], None, TypeError, "one-hot targets are not supported"),
        (CrossEntropyLoss(), Z23, np.array([[1, 0, 0], [0, 1, 0]]), None, ValueError, "(2,) for pred (2, 3), got (2, 3)"),
        (CrossEntropyLoss(), np.zeros((2, 4, 3)), np.zeros((4, 2), int), None, ValueError, "(2, 4) for pred (2, 4, 3), got (4, 2)"),
        (CrossEntropyLoss(), Z23, np.array([0, 3]), None, ValueError, "class index 3 at position (1,), outside [0, 3)"),
        (CrossEntropyLoss(), np.zeros((2, 2, 3)), np.array([[0, 1], [-1, 2]]), None, ValueError, "class index -1 at position (1, 0)"),
        (CrossEntropyLoss(), np.zeros((2, 2, 3)), np.array([[9, 1], [5, 2]]), MASKED_FIRST, ValueError,
         "class index 5 at position (1, 0)"),  # a masked step is not validated, a real one is
        (CrossEntropyLoss(ignore_index=-1), Z23, np.array([-100, 0]), None, ValueError,
         "class index -100 at position (0,), outside [0, 3) for pred with 3 classes (ignore_index=-1)"),
        (CrossEntropyLoss(), np.float64(1.0), np.array(0), None, ValueError, "pred must have a class axis"),
        (CrossEntropyLoss(), np.zeros((0, 3)), np.zeros(0, int), None, ValueError, "pred is empty"),
        (CrossEntropyLoss(), np.array([["a", "b"]]), np.array([0]), None, TypeError, "pred must be a real numeric array"),
        (CrossEntropyLoss(), np.zeros((2, 4, 3)), np.zeros((2, 4), int), np.ones((2, 4, 3), bool), ValueError,
         "mask must have the leading axes of target (2, 4), e.g. (2, 4) for (batch, time), got shape (2, 4, 3)"),
        (BCEWithLogitsLoss(), np.zeros(3), np.array([0.0, 1.0, 2.0]), None, ValueError,
         "target must hold probabilities in [0, 1], got 2.0"),
        (BCEWithLogitsLoss(), np.zeros(2), np.array([-1.0, 1.0]), None, ValueError, "got -1.0"),
        (BCEWithLogitsLoss(), np.zeros(2), np.array([np.nan, 1.0]), None, ValueError, "got nan"),
        (BCEWithLogitsLoss(), np.zeros((2, 2)), np.array([[9.0, 0.5], [3.0, 0.5]]), MASKED_FIRST, ValueError, "got 3.0"),
        (BCEWithLogitsLoss(), Z23, np.zeros((3, 2)), None, ValueError, "pred (2, 3) and target (3, 2)"),
        (BCEWithLogitsLoss(pos_weight=[1.0, 2.0]), Z23, Z23, None, ValueError,
         "pos_weight of shape (2,) does not broadcast to pred (2, 3)"),
        (BCEWithLogitsLoss(pos_weight=np.ones((2, 1, 3))), Z23, Z23, None, ValueError,
         "pos_weight of shape (2, 1, 3) does not broadcast to pred (2, 3)"),
    ],
)
def test_bad_inputs(loss, pred, target, mask, exc, fragment):
    with pytest.raises(exc, match=type(loss).__name__) as info:
        loss(pred, target, mask)
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
    ],
)
def test_bad_constructor_arguments(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("bce_complex_logits", lambda: mdl.BCEWithLogitsLoss()(np.zeros(2, complex), np.zeros(2)),
         TypeError, r"^BCEWithLogitsLoss: pred must be a real numeric array, got dtype complex128"),
    ("bce_nan_target", lambda: mdl.BCEWithLogitsLoss()(np.zeros(2), np.array([0.0, np.nan])),
         ValueError, r"^BCEWithLogitsLoss: target must hold probabilities in \[0, 1\], got nan"),
    ("ce_string_target", lambda: mdl.CrossEntropyLoss()(np.zeros((2, 3)), np.array(["a", "b"])),
         TypeError, r"^CrossEntropyLoss: target must be integer class indices, got dtype <U1"),
    ("ce_scalar_logits", lambda: mdl.CrossEntropyLoss()(np.float64(1.0), np.array(0)),
         ValueError, r"^CrossEntropyLoss: pred must have a class axis \(\.\.\., C\), got a scalar"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)


# ---- against PyTorch in more settings (float64): ignore_index, pos_weight, scales ----
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(
    ("shape", "scale", "ignore_index", "n_ignored"),
    [((6, 5), 3.0, -100, 0), ((3, 4, 5), 3.0, -100, 3), ((2, 7, 3), 1e4, -100, 2), ((4, 3), 2.0, 1, 0)],
    ids=["2d", "3d-ignore", "3d-extreme", "ignore-a-class"],
)
def test_cross_entropy_matches_torch(shape, scale, ignore_index, n_ignored, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    pred = scaled_normal(shape, scale)
    target = rng.integers(0, shape[-1], size=shape[:-1])
    flat = target.reshape(-1)
    flat[rng.choice(flat.size, n_ignored, replace=False)] = ignore_index
    loss = CrossEntropyLoss(ignore_index=ignore_index, reduction=reduction)
    value = loss(pred, target)
    # torch wants the classes on axis 1: (N, C) or (N, C, T)
    moved = np.moveaxis(pred, -1, 1)
    ref, ref_grad = torch_value_and_grad(
        F.cross_entropy, moved, torch.from_numpy(target), ignore_index=ignore_index, reduction=reduction
    )
    assert value == pytest.approx(ref, rel=1e-12)
    assert_relative_close(loss.backward(), np.moveaxis(ref_grad, 1, -1), tol=1e-12)


def test_cross_entropy_all_ignored_value_differs_from_torch_by_design():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    pred, target = scaled_normal((3, 4)), np.full(3, -100)
    ref, ref_grad = torch_value_and_grad(F.cross_entropy, pred, torch.from_numpy(target))
    assert np.isnan(ref)  # torch: 0 / 0 for the value, but a zero gradient
    loss = CrossEntropyLoss()
    assert loss(pred, target) == 0.0
    np.testing.assert_array_equal(loss.backward(), ref_grad)
    np.testing.assert_array_equal(ref_grad, 0.0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(
    ("scale", "pos_weight"),
    [(3.0, None), (3.0, [0.5, 2.0, 1.0]), (1e4, None), (1e4, [3.0, 0.2, 1.0]), (3.0, 2.5)],
)
def test_bce_with_logits_matches_torch(scale, pos_weight, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    pred = scaled_normal((2, 5, 3), scale, seed=3)
    target = rng.uniform(size=(2, 5, 3))
    target[0] = rng.integers(0, 2, size=(5, 3))  # some hard labels too
    loss = BCEWithLogitsLoss(pos_weight=pos_weight, reduction=reduction)
    value = loss(pred, target)
    pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
    ref, ref_grad = torch_value_and_grad(
        F.binary_cross_entropy_with_logits, pred, torch.from_numpy(target), pos_weight=pw, reduction=reduction
    )
    assert value == pytest.approx(ref, rel=1e-12)
    assert_relative_close(loss.backward(), ref_grad, tol=1e-12)
