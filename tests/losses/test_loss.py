"""Loss, the base class: the contract a user's loss follows, the guard every loss gets (float
values, no numpy warnings, no backward before forward or after a failed one), the tools
(prepare, reduce, reduce_grad) with and without masks, the input rules and bad inputs."""

import numpy as np
import pytest

import minidl as mdl
from minidl.losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss
from tests.helpers import numeric_grad, warnings_as_errors

BUILT_IN = [MSELoss, L1Loss, HuberLoss, BCEWithLogitsLoss, CrossEntropyLoss]
MASK = np.array([[True, False, True, True], [False, True, True, False], [True, True, False, False]])  # (3, 4)


class LogCosh(mdl.Loss):
    """``mean(log(cosh(pred - target)))`` over the real entries; d term / d pred = tanh(pred - target)."""

    def forward(self, pred, target, mask=None):
        pred, target, self.mask = self.prepare(pred, target, mask)
        self.d = pred - target
        return self.reduce(np.log(np.cosh(self.d)), self.mask)

    def backward(self):
        return self.reduce_grad(np.tanh(self.d), self.mask)


def _inputs(seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 4, 2))


# ---- a user's loss ------------------------------------------------------------------------
def test_a_user_loss_gets_values_gradients_and_masks_from_the_tools():
    pred, target = _inputs()
    loss = LogCosh()
    value = loss(pred, target, MASK)
    assert isinstance(value, float)
    assert value == pytest.approx(np.log(np.cosh(pred - target))[MASK].mean(), rel=1e-14)
    np.testing.assert_allclose(loss.backward(), numeric_grad(loss, pred, target, mask=MASK), rtol=1e-6, atol=1e-10)
    np.testing.assert_array_equal(loss.backward()[~MASK], 0.0)
    with warnings_as_errors():  # cosh overflows: the loss is inf, without a warning
        assert loss(np.array([1e4]), np.array([0.0])) == np.inf


def test_a_user_loss_gets_the_backward_guard():
    loss = LogCosh()
    with pytest.raises(RuntimeError, match=r"^LogCosh: backward\(\) called before forward\(\)$"):
        loss.backward()
    loss(np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match="LogCosh: pred and target must have the same shape"):
        loss(np.ones(2), np.zeros(3))
    with pytest.raises(RuntimeError, match="before forward"):  # no stale gradient of the earlier forward
        loss.backward()

    class Raising(LogCosh):  # a nested forward succeeds, then the outer one fails
        def forward(self, pred, target, mask=None):
            raise ArithmeticError(super().forward(pred, target, mask))

    raising = Raising()
    with pytest.raises(ArithmeticError):
        raising(np.ones(2), np.zeros(2))
    with pytest.raises(RuntimeError, match="Raising: backward"):
        raising.backward()


def test_a_loss_without_mask_support_and_the_unimplemented_base():
    class Plain(mdl.Loss):  # the contract before masks: forward(pred, target)
        def forward(self, pred, target):
            self.pred, _, _ = self.prepare(pred, target)
            return self.reduce(self.pred)

        def backward(self):
            return self.reduce_grad(np.ones_like(self.pred))

    plain = Plain()
    assert plain(np.array([1.0, 3.0]), np.zeros(2)) == 2.0
    np.testing.assert_array_equal(plain.backward(), [0.5, 0.5])
    with pytest.raises(NotImplementedError, match=r"^Loss does not implement forward\(pred, target, mask=None\)$"):
        mdl.Loss()(np.ones(2), np.ones(2))
    with pytest.raises(NotImplementedError, match=r"^Loss does not implement backward\(\)$"):
        mdl.Loss().backward()


@pytest.mark.parametrize("cls", BUILT_IN, ids=lambda c: c.__name__)
def test_every_loss_is_a_loss_with_the_guard(cls):
    assert isinstance(cls(), mdl.Loss) and getattr(mdl, cls.__name__) is cls
    with pytest.raises(RuntimeError, match=f"^{cls.__name__}: backward\\(\\) called before forward\\(\\)$"):
        cls().backward()


# ---- the tools: reduce and reduce_grad ------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduce_and_reduce_grad_by_hand(reduction):
    loss = LogCosh()
    loss.reduction = reduction
    terms = np.arange(12.0).reshape(2, 3, 2)
    mask = np.array([[True, False, True], [False, True, False]])  # real: [0, 1], [4, 5], [8, 9]
    n, n_all = (1, 1) if reduction == "sum" else (6, 12)  # the count of real entries: 3 steps * 2
    assert loss.reduce(terms, mask) == 27.0 / n and loss.reduce(terms) == 66.0 / n_all
    grad = loss.reduce_grad(np.full_like(terms, 3.0), mask)
    np.testing.assert_array_equal(grad, np.where(mask[..., None], np.full_like(terms, 3.0 / n), 0.0))
    np.testing.assert_array_equal(loss.reduce_grad(np.full_like(terms, 3.0)), np.full_like(terms, 3.0 / n_all))
    assert loss.reduce(terms, np.zeros((2, 3), bool)) == 0.0
    np.testing.assert_array_equal(loss.reduce_grad(terms, np.zeros((2, 3), bool)), np.zeros_like(terms))
    source = np.ones(3)
    fresh = loss.reduce_grad(source)
    fresh[...] = 7.0  # reduce_grad returns a new array, never its input
    np.testing.assert_array_equal(source, 1.0)
    loss.reduction = "none"  # a user's loss that took an unknown reduction
    with pytest.raises(ValueError, match=r"^LogCosh: reduction must be one of 'mean', 'sum', got 'none'$"):
        loss(np.ones(2), np.zeros(2))


def test_backward_belongs_to_the_last_forward_and_can_be_repeated():
    loss = MSELoss()
    loss(np.array([1.0, 1.0]), np.array([0.0, 0.0]))
    assert loss(np.array([3.0, -1.0]), np.array([1.0, 0.0])) == 2.5  # (4 + 1) / 2
    first = loss.backward()
    np.testing.assert_array_equal(first, [2.0, -1.0])
    first[...] = 0  # the caller may modify what it got
    np.testing.assert_array_equal(loss.backward(), [2.0, -1.0])


def test_the_mask_is_copied_and_broadcast_over_the_remaining_axes():
    pred, target = _inputs()
    loss, mask = MSELoss(), MASK.copy()
    assert loss.as_mask(mask, pred.shape).shape == (3, 4, 1)
    loss(pred, target, mask)
    grad = loss.backward()
    mask[...] = True  # the caller reuses its buffer before backward
    np.testing.assert_array_equal(loss.backward(), grad)
    full = np.broadcast_to(MASK[..., None], pred.shape)  # a mask of every element is one too
    assert loss(pred, target, full) == pytest.approx(loss(pred, target, MASK), rel=1e-15)


@pytest.mark.parametrize(
    ("loss", "target"),
    [(CrossEntropyLoss(), np.array([[0, 1], [2, 0]])), (BCEWithLogitsLoss(pos_weight=[1.0, 2.0, 0.5]), np.full((2, 2, 3), 0.25)),
     (HuberLoss(), np.zeros((2, 2, 3))), (L1Loss(), np.zeros((2, 2, 3)))],
    ids=["CrossEntropyLoss", "BCEWithLogitsLoss", "HuberLoss", "L1Loss"],
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


def test_non_float_pred_uses_the_default_dtype(float64):
    loss = MSELoss()
    assert loss([[1, 2]], [[0, 0]]) == 2.5
    assert loss.backward().dtype == np.float64
    mdl.set_default_dtype(np.float32)
    loss([[1, 2]], [[0, 0]])
    assert loss.backward().dtype == np.float32


# ---- bad inputs: prepare (pred, target, mask) ---------------------------------------------------
Z23 = np.zeros((2, 3))


@pytest.mark.parametrize(
    ("loss", "pred", "target", "mask", "exc", "fragment"),
    [
        (MSELoss(), Z23, np.zeros((3, 2)), None, ValueError, "pred (2, 3) and target (3, 2)"),
        (MSELoss(), Z23, np.zeros((2, 3, 1)), None, ValueError, "target (2, 3, 1)"),
        (MSELoss(), np.zeros(3), np.zeros(1), None, ValueError, "same shape"),
        (MSELoss(), np.zeros((0, 3)), np.zeros((0, 3)), None, ValueError, "pred is empty"),
        (MSELoss(), np.array(["a", "b"]), np.zeros(2), None, TypeError, "pred must be a real numeric array"),
        (MSELoss(), np.zeros(2), np.array(["a", "b"]), None, TypeError, "target must be a real numeric array"),
        (MSELoss(), np.zeros(2), np.zeros(2, dtype=complex), None, TypeError, "complex"),
        (MSELoss(), np.zeros(2), [[1.0], [1.0, 2.0]], None, TypeError, "target must be a numeric array"),
        (MSELoss(), np.zeros(2), None, None, TypeError, "target must be a real numeric array"),
        (MSELoss(), Z23, Z23, np.ones((3, 2), bool), ValueError,
         "MSELoss: mask must have the leading axes of pred (2, 3), e.g. (2, 3) for (batch, time), got shape (3, 2)"),
        (MSELoss(), Z23, Z23, np.ones((2, 3, 1), bool), ValueError, "got shape (2, 3, 1)"),
        (MSELoss(), Z23, Z23, np.ones((2, 3)), TypeError, "MSELoss: mask must be a bool array (True at real steps), got dtype float64"),
        (L1Loss(), Z23, Z23, np.ones(2, int), TypeError, "mask must be a bool array (True at real steps), got dtype int64"),
        (HuberLoss(), Z23, Z23, [[True], [True, False]], TypeError, "mask must be a bool array (True at real steps), got dtype object"),
    ],
)
def test_bad_inputs_leave_no_stale_gradient(loss, pred, target, mask, exc, fragment):
    loss(Z23, Z23)  # a forward that succeeds, then one that fails:
    with pytest.raises(exc, match=type(loss).__name__) as info:
        loss(pred, target, mask)
    assert fragment in str(info.value)
    with pytest.raises(RuntimeError, match="before forward"):
        loss.backward()


def test_each_built_in_loss_says_how_integer_targets_are_read():
    """The trainer reads integer targets from takes_class_indices (training/inputs.py):
    class indices only for CrossEntropyLoss; a user's loss that does not say keeps None."""
    assert {cls.__name__: cls.takes_class_indices for cls in BUILT_IN} == {
        "MSELoss": False, "L1Loss": False, "HuberLoss": False, "BCEWithLogitsLoss": False, "CrossEntropyLoss": True}
    assert LogCosh.takes_class_indices is None and mdl.Loss.takes_class_indices is None
