"""The extra losses, optimizers and lr schedules against PyTorch (float64), skipped without torch."""

import numpy as np
import pytest

from minidl.losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss
from minidl.optim.optimizer import SGD, AdamW
from minidl.optim.rmsprop import Adagrad, RMSprop
from minidl.parameter import Parameter
from minidl.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, StepLR

torch = pytest.importorskip("torch")
F = torch.nn.functional

STEPS = 6
SHAPES = [(3, 4), (4,), (2, 1, 3)]


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


# ---- optimizers --------------------------------------------------------------------------


def _grad_at(value, t):
    return np.sin(value * (t + 1)) + 0.1 * (t + 1) * np.cos(value)


def compare_optimizer(ours_cls, torch_cls, config):
    rng = np.random.default_rng(11)
    values = [rng.normal(size=s) for s in SHAPES]
    params = [Parameter(v.copy(), f"p{i}") for i, v in enumerate(values)]
    tensors = [torch.tensor(v.copy(), dtype=torch.float64, requires_grad=True) for v in values]
    ours, theirs = ours_cls(params, **config), torch_cls(tensors, **config)
    for t in range(STEPS):
        for p, x in zip(params, tensors):
            p.grad[...] = _grad_at(p.data, t)
            x.grad = torch.from_numpy(_grad_at(x.detach().numpy(), t))
        ours.step()
        theirs.step()
        for p, x in zip(params, tensors):
            assert_close(p.data, x.detach().numpy())
    assert not np.allclose(params[0].data, values[0])


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"lr": 0.05, "alpha": 0.9},
        {"lr": 0.01, "eps": 1e-4, "weight_decay": 0.1},
        {"lr": 0.01, "momentum": 0.9},
        {"lr": 0.02, "alpha": 0.8, "centered": True},
        {"lr": 0.01, "alpha": 0.95, "momentum": 0.5, "centered": True, "weight_decay": 0.05},
        {"lr": 0.1, "alpha": 0.0},
    ],
)
def test_rmsprop_matches_torch(config):
    compare_optimizer(RMSprop, torch.optim.RMSprop, config)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"lr": 0.1, "lr_decay": 0.05},
        {"lr": 0.05, "weight_decay": 0.1},
        {"lr": 0.05, "initial_accumulator_value": 0.3, "eps": 1e-6},
        {"lr": 0.2, "lr_decay": 0.5, "weight_decay": 0.01, "initial_accumulator_value": 1.0},
    ],
)
def test_adagrad_matches_torch(config):
    compare_optimizer(Adagrad, torch.optim.Adagrad, config)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"lr": 0.01},
        {"lr": 0.05, "weight_decay": 0.1},
        {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-4, "weight_decay": 0.0},
        {"lr": 0.1, "betas": (0.0, 0.99), "weight_decay": 0.5},
    ],
)
def test_adamw_matches_torch(config):
    compare_optimizer(AdamW, torch.optim.AdamW, config)


# ---- schedules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs", "epochs"),
    [
        (lambda o: StepLR(o, 3), lambda o: torch.optim.lr_scheduler.StepLR(o, 3), 12),
        (lambda o: StepLR(o, 2, gamma=0.7), lambda o: torch.optim.lr_scheduler.StepLR(o, 2, gamma=0.7), 12),
        (lambda o: ExponentialLR(o, 0.9), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9), 15),
        (lambda o: CosineAnnealingLR(o, 1), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 1), 6),
        (lambda o: CosineAnnealingLR(o, 5), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 5), 16),
        (
            lambda o: CosineAnnealingLR(o, 7, eta_min=0.01),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, eta_min=0.01),
            22,
        ),
    ],
)
def test_schedules_match_torch(ours, theirs, epochs):
    opt = SGD([Parameter(np.zeros(2), "w")], lr=0.1)
    t_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    sched, t_sched = ours(opt), theirs(t_opt)
    rates, t_rates = [sched.get_last_lr()], [t_sched.get_last_lr()[0]]
    for _ in range(epochs):
        t_opt.step()  # torch wants the optimizer step first
        sched.step()
        t_sched.step()
        rates.append(sched.get_last_lr())
        t_rates.append(t_sched.get_last_lr()[0])
    assert sched.last_epoch == t_sched.last_epoch == epochs
    np.testing.assert_allclose(rates, t_rates, rtol=1e-12, atol=1e-15)
    assert len(set(rates)) > 1
