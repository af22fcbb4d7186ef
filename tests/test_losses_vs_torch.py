"""Losses against PyTorch (float64), skipped without torch: value and gradient.

Moved unchanged from the former test_torch_extra.py and test_torch_optimizers.py, to be
folded into the loss tests."""

import numpy as np
import pytest

import minidl as mdl
from minidl.losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss

torch = pytest.importorskip("torch")
F = torch.nn.functional


def assert_close(ours, theirs, tol=1e-8):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape
    rel = np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300)
    assert rel <= tol, rel


def torch_value_and_grad(fn, pred, *args, **kwargs):
    x = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
    value = fn(x, *args, **kwargs)
    value.backward()
    return value.item(), x.grad.numpy()


# ---- losses ----------------------------------------------------------------------------


def _logits(shape, scale=3.0, seed=0):
    return np.random.default_rng(seed).normal(size=shape) * scale


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(
    ("shape", "scale", "ignore_index", "n_ignored"),
    [((6, 5), 3.0, -100, 0), ((3, 4, 5), 3.0, -100, 3), ((2, 7, 3), 1e4, -100, 2), ((4, 3), 2.0, 1, 0)],
    ids=["2d", "3d-ignore", "3d-extreme", "ignore-a-class"],
)
def test_cross_entropy_matches_torch(shape, scale, ignore_index, n_ignored, reduction):
    rng = np.random.default_rng(1)
    pred = _logits(shape, scale)
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
    assert_close(loss.backward(), np.moveaxis(ref_grad, 1, -1), tol=1e-12)


def test_cross_entropy_all_ignored_value_differs_from_torch_by_design():
    pred, target = _logits((3, 4)), np.full(3, -100)
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
    rng = np.random.default_rng(2)
    pred = _logits((2, 5, 3), scale, seed=3)
    target = rng.uniform(size=(2, 5, 3))
    target[0] = rng.integers(0, 2, size=(5, 3))  # some hard labels too
    loss = BCEWithLogitsLoss(pos_weight=pos_weight, reduction=reduction)
    value = loss(pred, target)
    pw = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float64)
    ref, ref_grad = torch_value_and_grad(
        F.binary_cross_entropy_with_logits, pred, torch.from_numpy(target), pos_weight=pw, reduction=reduction
    )
    assert value == pytest.approx(ref, rel=1e-12)
    assert_close(loss.backward(), ref_grad, tol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber_matches_torch(delta, reduction):
    pred, target = _logits((3, 4, 2), 2.0, seed=4), _logits((3, 4, 2), 2.0, seed=5)
    target[0, 0, 0] = pred[0, 0, 0] + delta  # exactly on the kink
    loss = HuberLoss(delta=delta, reduction=reduction)
    value = loss(pred, target)
    ref, ref_grad = torch_value_and_grad(F.huber_loss, pred, torch.from_numpy(target), delta=delta, reduction=reduction)
    assert value == pytest.approx(ref, rel=1e-13)
    assert_close(loss.backward(), ref_grad, tol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_l1_matches_torch_including_zero_differences(reduction):
    pred, target = _logits((3, 4, 2), seed=6), _logits((3, 4, 2), seed=7)
    target[1] = pred[1]  # d = 0: torch's gradient there is 0
    loss = L1Loss(reduction=reduction)
    value = loss(pred, target)
    ref, ref_grad = torch_value_and_grad(F.l1_loss, pred, torch.from_numpy(target), reduction=reduction)
    assert value == pytest.approx(ref, rel=1e-13)
    np.testing.assert_array_equal(loss.backward(), ref_grad)
    assert not loss.backward()[1].any()


def test_mse_matches_torch():
    rng = np.random.default_rng(5)
    pred, target = rng.normal(size=(4, 7, 3)), rng.normal(size=(4, 7, 3))
    loss = mdl.MSELoss()
    value = loss(pred, target)
    x = torch.tensor(pred, requires_grad=True)
    ref = torch.nn.functional.mse_loss(x, torch.tensor(target))
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-14)
    np.testing.assert_allclose(loss.backward(), x.grad.numpy(), rtol=1e-14)
