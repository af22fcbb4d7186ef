"""Optimizers, MSELoss and clippers against PyTorch (float64), skipped without torch."""

import numpy as np
import pytest

import minidl as mdl

torch = pytest.importorskip("torch")

STEPS = 6
SHAPES = [(3, 4), (4,), (2, 1, 3)]


def initial_values():
    rng = np.random.default_rng(11)
    return [rng.normal(size=s) for s in SHAPES]


def grad_at(value, t):
    return np.sin(value * (t + 1)) + 0.1 * (t + 1) * np.cos(value)


def assert_close(ours, theirs):
    ours = np.asarray(ours)
    theirs = np.asarray(theirs)
    rel = np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300)
    assert rel <= 1e-8, rel


def compare_optimizer(ours_cls, torch_cls, config):
    values = initial_values()
    params = [mdl.Parameter(v.copy(), f"p{i}") for i, v in enumerate(values)]
    tensors = [torch.tensor(v.copy(), dtype=torch.float64, requires_grad=True) for v in values]
    ours = ours_cls(params, **config)
    theirs = torch_cls(tensors, **config)
    for t in range(STEPS):
        for p, x in zip(params, tensors):
            p.grad[...] = grad_at(p.data, t)
            x.grad = torch.from_numpy(grad_at(x.detach().numpy(), t))
        ours.step()
        theirs.step()
        for p, x in zip(params, tensors):
            assert_close(p.data, x.detach().numpy())
    return params


@pytest.mark.parametrize(
    "config",
    [
        {"lr": 0.1},
        {"lr": 0.05, "weight_decay": 0.01},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1},
        {"lr": 0.1, "momentum": 0.9, "nesterov": True},
        {"lr": 0.02, "momentum": 0.99, "nesterov": True, "weight_decay": 0.05},
    ],
)
def test_sgd_matches_torch(config):
    params = compare_optimizer(mdl.SGD, torch.optim.SGD, config)
    assert not np.allclose(params[0].data, initial_values()[0])


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"lr": 0.01},
        {"lr": 0.05, "weight_decay": 0.1},
        {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-4},
        {"lr": 0.003, "betas": (0.0, 0.99), "eps": 1e-6, "weight_decay": 1e-3},
        {"lr": 0.1, "betas": (0.95, 0.0)},
    ],
)
def test_adam_matches_torch(config):
    params = compare_optimizer(mdl.Adam, torch.optim.Adam, config)
    assert not np.allclose(params[0].data, initial_values()[0])


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


def _same_grads(seed):
    """minidl parameters and torch tensors (float64, shapes ``SHAPES``) holding the same random gradients."""
    rng = np.random.default_rng(seed)
    params = [mdl.Parameter(np.zeros(s), "p") for s in SHAPES]
    tensors = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for p, x in zip(params, tensors):
        p.grad[...] = rng.normal(size=p.shape)
        x.grad = torch.from_numpy(p.grad.copy())
    return params, tensors


@pytest.mark.parametrize("max_norm", [0.5, 2.0, 1e3])
def test_clip_by_global_norm_matches_torch(max_norm):
    params, tensors = _same_grads(9)
    total = mdl.ClipByGlobalNorm(max_norm)(params)
    ref = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    assert total == pytest.approx(ref.item(), rel=1e-14)
    for p, x in zip(params, tensors):
        np.testing.assert_allclose(p.grad, x.grad.numpy(), rtol=1e-14)


def test_clip_by_value_matches_torch():
    params, tensors = _same_grads(10)
    mdl.ClipByValue(0.7)(params)
    torch.nn.utils.clip_grad_value_(tensors, 0.7)
    for p, x in zip(params, tensors):
        np.testing.assert_array_equal(p.grad, x.grad.numpy())


def test_dense_mse_clip_adam_training_matches_torch(float64):
    """Five steps of Dense + MSE + global-norm clipping + Adam, against nn.Linear."""
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    dense = mdl.Dense(3, 2)
    linear = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(dense.kernel.data.T.copy()))
        linear.bias.copy_(torch.from_numpy(dense.bias.data.copy()))
    loss, opt, clip = mdl.MSELoss(), mdl.Adam(dense.parameters(), lr=0.05), mdl.ClipByGlobalNorm(0.3)
    t_opt = torch.optim.Adam(linear.parameters(), lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        value = loss(dense(x), y)
        dense.backward(loss.backward())
        norm = clip(dense.parameters())
        opt.step()

        t_opt.zero_grad()
        t_loss = torch.nn.functional.mse_loss(linear(torch.from_numpy(x)), torch.from_numpy(y))
        t_loss.backward()
        t_norm = torch.nn.utils.clip_grad_norm_(linear.parameters(), 0.3)
        t_opt.step()

        assert value == pytest.approx(t_loss.item(), rel=1e-12)
        assert norm == pytest.approx(t_norm.item(), rel=1e-12)
        assert_close(dense.kernel.data, linear.weight.detach().numpy().T)
        assert_close(dense.bias.data, linear.bias.detach().numpy())
