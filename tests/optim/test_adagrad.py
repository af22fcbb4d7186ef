"""Adagrad: hand-computed steps, a textbook reference, torch.optim.Adagrad, bad arguments."""

import math

import numpy as np
import pytest

import minidl as mdl
from minidl.optim.adagrad import Adagrad
from tests.helpers import assert_float32_close_to_reference, assert_follows_reference, compare_with_torch
from tests.helpers import constant_grad_trace, grad_at, run, scalar_param
from tests.helpers import make_params as _make_params


def make_params(dtype=np.float64):
    return _make_params(dtype, seed=3)


def adagrad_reference(value, steps, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    s = np.full_like(value, initial_accumulator_value)
    for t in range(1, steps + 1):
        g = grad_at(value, t - 1) + weight_decay * value
        s = s + g**2
        value = value - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
    return value


# ---- by hand ---------------------------------------------------------------------------


def test_adagrad_by_hand():
    # g = 2: s_t = 4 t, step_t = lr * 2 / (2 sqrt(t)) = lr / sqrt(t)
    p = scalar_param()
    trace = constant_grad_trace(Adagrad([p], lr=0.1, eps=0.0), p, 2.0, 3)
    assert trace == pytest.approx(list(1.0 - np.cumsum([0.1, 0.1 / math.sqrt(2), 0.1 / math.sqrt(3)])), rel=1e-14)


def test_adagrad_lr_decay_and_initial_accumulator_by_hand():
    # s starts at 5: s = 9, 13; clr = 0.1, 0.1 / 1.5
    p = scalar_param()
    opt = Adagrad([p], lr=0.1, lr_decay=0.5, initial_accumulator_value=5.0, eps=0.0)
    trace = constant_grad_trace(opt, p, 2.0, 2)
    first = 0.1 * 2.0 / 3.0
    assert trace == pytest.approx([1.0 - first, 1.0 - first - 0.1 / 1.5 * 2.0 / math.sqrt(13.0)], rel=1e-14)
    assert opt.state[p]["sum"][0] == 13.0 and opt.state[p]["step"] == 2


def test_adagrad_weight_decay_by_hand():
    # g = 1 + 0.5 * 2 = 2, s = 4: p = 2 - 0.1 * 2 / (2 + 1e-10)
    p = scalar_param(2.0)
    opt = Adagrad([p], lr=0.1, weight_decay=0.5)
    p.grad[...] = 1.0
    opt.step()
    assert p.data[0] == pytest.approx(2.0 - 0.2 / (2.0 + 1e-10), rel=1e-15)


# ---- references on several parameters ---------------------------------------------------

CONFIGS = [
    {},
    {"lr": 0.1, "lr_decay": 0.1},
    {"lr": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6},
]


@pytest.mark.parametrize("config", CONFIGS)
def test_matches_reference_on_several_parameters(config):
    assert_follows_reference(Adagrad, adagrad_reference, config, seed=3)


def test_float32_close_to_float64_reference():
    assert_float32_close_to_reference(Adagrad, adagrad_reference, CONFIGS[2], seed=3)


def test_defaults_are_torchs_and_the_state_is_step_and_sum():
    params = make_params()
    opt = Adagrad(params)
    assert opt.get_config() == {
        "lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10,
    }
    run(opt, params, 1)
    assert [sorted(e) for e in opt.state_dict()["state"]] == [["step", "sum"]] * 3
    assert isinstance(opt, mdl.Optimizer) and mdl.Adagrad is Adagrad


# ---- against torch ---------------------------------------------------------------------


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
    torch = pytest.importorskip("torch")
    compare_with_torch(Adagrad, torch.optim.Adagrad, config)


# ---- bad arguments -------------------------------------------------------------------

P = mdl.Parameter(np.zeros(2), "w")


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: Adagrad([P, P]), ValueError, "Adagrad: params[1] is the same Parameter as params[0]"),
        (lambda: Adagrad([P], lr_decay=-0.1), ValueError, "Adagrad: lr_decay must be >= 0.0, got -0.1"),
        (lambda: Adagrad([P], initial_accumulator_value=-1), ValueError,
         "Adagrad: initial_accumulator_value must be >= 0.0, got -1.0"),
        (lambda: Adagrad([P], eps=float("nan")), ValueError, "Adagrad: eps must be finite"),
        (lambda: Adagrad([P], weight_decay=None), TypeError, "Adagrad: weight_decay must be a real number"),
    ],
)
def test_bad_arguments(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)
