"""RMSprop: hand-computed steps, a textbook reference, torch.optim.RMSprop, its optional
buffers in the state, rejected states, bad arguments."""

import math

import numpy as np
import pytest

import minidl as mdl
from minidl.optim.rmsprop import RMSprop
from tests.helpers import assert_float32_close_to_reference, assert_follows_reference, assert_load_rejected
from tests.helpers import compare_with_torch, constant_grad_trace, edited_state, grad_at, run, scalar_param
from tests.helpers import make_params as _make_params


def make_params(dtype=np.float64):
    return _make_params(dtype, seed=3)


def rmsprop_reference(value, steps, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    """Tieleman & Hinton's RMSprop as torch defines it (eps outside the root)."""
    v = np.zeros_like(value)
    a = np.zeros_like(value)
    b = np.zeros_like(value)
    for t in range(steps):
        g = grad_at(value, t) + weight_decay * value
        v = alpha * v + (1 - alpha) * g**2
        if centered:
            a = alpha * a + (1 - alpha) * g
            denom = np.sqrt(v - a**2) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / denom
            value = value - lr * b
        else:
            value = value - lr * g / denom
    return value


# ---- by hand ---------------------------------------------------------------------------


def test_rmsprop_alpha_zero_is_sign_descent():
    # alpha = 0, eps = 0: v = g**2, so each step is lr * g / |g| = lr * sign(g).
    p = scalar_param()
    opt = RMSprop([p], lr=0.1, alpha=0.0, eps=0.0)
    values = []
    for _ in range(3):
        p.grad[...] = p.data * 5.0
        opt.step()
        values.append(float(p.data[0]))
    assert values == pytest.approx([0.9, 0.8, 0.7], rel=1e-14)


def test_rmsprop_constant_gradient_by_hand():
    # g = 2, alpha = 0.75, eps = 0: v_t = 4 (1 - 0.75**t), step_t = lr / sqrt(1 - 0.75**t)
    p = scalar_param()
    trace = constant_grad_trace(RMSprop([p], lr=0.1, alpha=0.75, eps=0.0), p, 2.0, 3)
    steps = [0.1 / math.sqrt(1 - 0.75**t) for t in (1, 2, 3)]
    assert steps[0] == pytest.approx(0.2)
    assert trace == pytest.approx(list(1.0 - np.cumsum(steps)), rel=1e-14)


def test_rmsprop_centered_by_hand():
    # g = 2, alpha = 0.75: a_t = 2 (1 - q), v_t = 4 (1 - q), v - a**2 = 4 q (1 - q) with q = 0.75**t
    p = scalar_param()
    opt = RMSprop([p], lr=0.1, alpha=0.75, eps=0.0, centered=True)
    trace = constant_grad_trace(opt, p, 2.0, 2)
    steps = [0.1 * 2.0 / math.sqrt(4 * 0.75**t * (1 - 0.75**t)) for t in (1, 2)]
    assert trace == pytest.approx(list(1.0 - np.cumsum(steps)), rel=1e-14)
    assert opt.state[p]["grad_avg"][0] == pytest.approx(2.0 * (1 - 0.75**2), rel=1e-15)
    assert opt.state[p]["square_avg"][0] == pytest.approx(4.0 * (1 - 0.75**2), rel=1e-15)


def test_rmsprop_momentum_by_hand():
    # alpha = 0, eps = 0: g / d = 1 every step; buffer 1, 1.5, 1.75 with momentum 0.5
    p = scalar_param()
    opt = RMSprop([p], lr=0.1, alpha=0.0, eps=0.0, momentum=0.5)
    assert constant_grad_trace(opt, p, 2.0, 3) == pytest.approx([0.9, 0.75, 0.575], rel=1e-14)
    assert opt.state[p]["momentum_buffer"][0] == 1.75
    assert opt.state[p]["step"] == 3


def test_rmsprop_weight_decay_first_step_by_hand():
    # g = 1 + 0.5 * 2 = 2; v = 0.5 * 4 = 2; p = 2 - 0.1 * 2 / (sqrt(2) + 1e-3)
    p = scalar_param(2.0)
    opt = RMSprop([p], lr=0.1, alpha=0.5, eps=1e-3, weight_decay=0.5)
    p.grad[...] = 1.0
    opt.step()
    assert p.data[0] == pytest.approx(2.0 - 0.2 / (math.sqrt(2.0) + 1e-3), rel=1e-15)


def test_rmsprop_centered_variance_rounding_below_zero_gives_no_nan():
    # With alpha = 0 the centered variance v - a**2 is g**2 - g**2 = 0 exactly: d = eps.
    p = scalar_param()
    opt = RMSprop([p], lr=0.1, alpha=0.0, eps=1.0, centered=True)
    p.grad[...] = 3.0
    opt.step()
    assert p.data[0] == pytest.approx(1.0 - 0.3, rel=1e-15)


# ---- references on several parameters ---------------------------------------------------

CONFIGS = [
    {},
    {"lr": 0.05, "alpha": 0.9, "eps": 1e-6},
    {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.01},
    {"lr": 0.02, "alpha": 0.8, "centered": True},
    {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
]


@pytest.mark.parametrize("config", CONFIGS)
def test_matches_reference_on_several_parameters(config):
    assert_follows_reference(RMSprop, rmsprop_reference, config, seed=3)


def test_float32_close_to_float64_reference():
    assert_float32_close_to_reference(RMSprop, rmsprop_reference, CONFIGS[3], seed=3)


def test_defaults_are_torchs():
    opt = RMSprop(make_params())
    assert opt.get_config() == {
        "lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False,
    }
    assert isinstance(opt, mdl.Optimizer) and mdl.RMSprop is RMSprop


def test_optimizers_follow_a_dtype_change_of_their_parameters():
    layer = mdl.Dense(2, 3)
    opt = RMSprop(layer.parameters(), momentum=0.9, centered=True)
    run(opt, layer.parameters(), 1)
    layer.astype(np.float64)
    run(opt, layer.parameters(), 1, start=1)
    for p in layer.parameters():
        assert {k: v.dtype for k, v in opt.state[p].items() if k != "step"} == {
            "square_avg": np.float64, "momentum_buffer": np.float64, "grad_avg": np.float64,
        }


# ---- against torch ---------------------------------------------------------------------


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
    torch = pytest.importorskip("torch")
    compare_with_torch(RMSprop, torch.optim.RMSprop, config)


# ---- the state: optional buffers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "keys"),
    [
        ({}, ["square_avg", "step"]),
        ({"momentum": 0.5}, ["momentum_buffer", "square_avg", "step"]),
        ({"centered": True}, ["grad_avg", "square_avg", "step"]),
    ],
)
def test_rmsprop_state_holds_only_the_buffers_its_config_uses(config, keys):
    params = make_params()
    opt = RMSprop(params, **config)
    assert opt.state_dict()["state"] == [{}, {}, {}]
    run(opt, params, 1)
    assert [sorted(e) for e in opt.state_dict()["state"]] == [keys] * 3
    assert type(opt.state_dict()["state"][0]["step"]) is int


def test_rmsprop_momentum_switched_on_later_starts_a_zero_buffer():
    a, b = scalar_param(), scalar_param()
    opt_a = RMSprop([a], lr=0.1, alpha=0.0, eps=0.0)
    opt_b = RMSprop([b], lr=0.1, alpha=0.0, eps=0.0, momentum=0.5)
    constant_grad_trace(opt_a, a, 2.0, 1)
    state = opt_a.state_dict()
    state["config"]["momentum"] = 0.5
    opt_a.load_state_dict(state)  # no momentum_buffer in the state: it starts at zero, as in opt_b
    assert constant_grad_trace(opt_a, a, 2.0, 2) == pytest.approx([0.8, 0.65], rel=1e-14)
    assert constant_grad_trace(opt_b, b, 2.0, 2) == pytest.approx([0.9, 0.75], rel=1e-14)


def test_rmsprop_centering_switched_on_between_steps_starts_a_zero_average():
    p = scalar_param()
    opt = RMSprop([p], lr=0.1, alpha=0.5, eps=0.0)
    constant_grad_trace(opt, p, 2.0, 1)
    opt.defaults["centered"] = True
    constant_grad_trace(opt, p, 2.0, 1)
    # a = 0.5 * 0 + 0.5 * 2 = 1; v = 0.5 * 2 + 0.5 * 4 = 3; d = sqrt(3 - 1)
    assert opt.state[p]["grad_avg"][0] == 1.0
    assert p.data[0] == pytest.approx(1.0 - 0.1 * 2.0 / math.sqrt(2.0) - 0.1 * 2.0 / math.sqrt(2.0), rel=1e-14)


def _edit(change):
    return edited_state(lambda params: RMSprop(params, momentum=0.9), change)


@pytest.mark.parametrize(
    ("state", "exc", "fragment"),
    [
        (_edit(lambda s: s["state"][0].pop("square_avg")), ValueError, "state[0] has missing keys ['square_avg']"),
        (_edit(lambda s: s["state"][1].update(exp_avg=np.zeros(4))), ValueError, "unexpected keys ['exp_avg']"),
        (_edit(lambda s: s["state"][1].update(grad_avg=np.zeros(5))), ValueError,
         "state[1]['grad_avg'] has shape (5,), but params[1] ('bias') has shape (4,)"),
        (_edit(lambda s: s["state"][2].update(momentum_buffer=np.array(["x"] * 3).reshape(1, 1, 3))), TypeError,
         "state[2]['momentum_buffer'] must be a real array"),
        (_edit(lambda s: s.update(type="Adagrad")), ValueError, "for a 'Adagrad' optimizer, not 'RMSprop'"),
        (_edit(lambda s: s["config"].update(alpha=1.5)), ValueError, "RMSprop: alpha must be <= 1.0, got 1.5"),
        (_edit(lambda s: s["config"].pop("centered")), ValueError, "config has missing keys ['centered']"),
    ],
)
def test_load_state_dict_rejects_bad_state_and_changes_nothing(state, exc, fragment):
    params = make_params()
    assert_load_rejected(RMSprop(params, lr=0.5, momentum=0.2), params, state, exc, fragment)


# ---- bad arguments -------------------------------------------------------------------

P = mdl.Parameter(np.zeros(2), "w")


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: RMSprop([]), ValueError, "RMSprop: params is empty"),
        (lambda: RMSprop([P], lr=-1), ValueError, "RMSprop: lr must be >= 0.0, got -1.0"),
        (lambda: RMSprop([P], alpha=1.5), ValueError, "RMSprop: alpha must be <= 1.0, got 1.5"),
        (lambda: RMSprop([P], alpha=-0.1), ValueError, "RMSprop: alpha must be >= 0.0, got -0.1"),
        (lambda: RMSprop([P], eps=-1e-8), ValueError, "RMSprop: eps must be >= 0.0"),
        (lambda: RMSprop([P], weight_decay=-1), ValueError, "RMSprop: weight_decay must be >= 0.0, got -1.0"),
        (lambda: RMSprop([P], momentum=-0.9), ValueError, "RMSprop: momentum must be >= 0.0, got -0.9"),
        (lambda: RMSprop([P], centered=1), TypeError, "RMSprop: centered must be a bool, got 1 (int)"),
        (lambda: RMSprop([P], lr="0.1"), TypeError, "RMSprop: lr must be a real number, got '0.1'"),
    ],
)
def test_bad_arguments(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)
