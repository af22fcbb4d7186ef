"""RMSprop, Adagrad and AdamW: hand-computed steps, textbook references, state dicts, errors."""

import io
import json
import math

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_load_rejected, edited_state, grad_at, run
from tests.helpers import make_params as _make_params
from minidl.optim.optimizer import Adam, AdamW
from minidl.optim.rmsprop import Adagrad, RMSprop

# ---- helpers -------------------------------------------------------------------------


def make_params(dtype=np.float64):
    return _make_params(dtype, seed=3)


def constant_grad_trace(opt, p, g, steps):
    values = []
    for _ in range(steps):
        p.grad[...] = g
        opt.step()
        values.append(float(p.data[0]))
    return values


def scalar(value=1.0):
    return mdl.Parameter(np.array([value]), "w")


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


def adagrad_reference(value, steps, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    s = np.full_like(value, initial_accumulator_value)
    for t in range(1, steps + 1):
        g = grad_at(value, t - 1) + weight_decay * value
        s = s + g**2
        value = value - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
    return value


def adamw_reference(value, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """Loshchilov & Hutter: shrink the weights, then a plain Adam step on the raw gradient."""
    b1, b2 = betas
    m = np.zeros_like(value)
    v = np.zeros_like(value)
    for t in range(1, steps + 1):
        g = grad_at(value, t - 1)
        value = value * (1 - lr * weight_decay)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        value = value - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return value


# ---- RMSprop by hand -------------------------------------------------------------------


def test_rmsprop_alpha_zero_is_sign_descent():
    # alpha = 0, eps = 0: v = g**2, so each step is lr * g / |g| = lr * sign(g).
    p = scalar()
    opt = RMSprop([p], lr=0.1, alpha=0.0, eps=0.0)
    values = []
    for _ in range(3):
        p.grad[...] = p.data * 5.0
        opt.step()
        values.append(float(p.data[0]))
    assert values == pytest.approx([0.9, 0.8, 0.7], rel=1e-14)


def test_rmsprop_constant_gradient_by_hand():
    # g = 2, alpha = 0.75, eps = 0: v_t = 4 (1 - 0.75**t), step_t = lr / sqrt(1 - 0.75**t)
    p = scalar()
    trace = constant_grad_trace(RMSprop([p], lr=0.1, alpha=0.75, eps=0.0), p, 2.0, 3)
    steps = [0.1 / math.sqrt(1 - 0.75**t) for t in (1, 2, 3)]
    assert steps[0] == pytest.approx(0.2)
    assert trace == pytest.approx(list(1.0 - np.cumsum(steps)), rel=1e-14)


def test_rmsprop_centered_by_hand():
    # g = 2, alpha = 0.75: a_t = 2 (1 - q), v_t = 4 (1 - q), v - a**2 = 4 q (1 - q) with q = 0.75**t
    p = scalar()
    opt = RMSprop([p], lr=0.1, alpha=0.75, eps=0.0, centered=True)
    trace = constant_grad_trace(opt, p, 2.0, 2)
    steps = [0.1 * 2.0 / math.sqrt(4 * 0.75**t * (1 - 0.75**t)) for t in (1, 2)]
    assert trace == pytest.approx(list(1.0 - np.cumsum(steps)), rel=1e-14)
    assert opt.state[p]["grad_avg"][0] == pytest.approx(2.0 * (1 - 0.75**2), rel=1e-15)
    assert opt.state[p]["square_avg"][0] == pytest.approx(4.0 * (1 - 0.75**2), rel=1e-15)


def test_rmsprop_momentum_by_hand():
    # alpha = 0, eps = 0: g / d = 1 every step; buffer 1, 1.5, 1.75 with momentum 0.5
    p = scalar()
    opt = RMSprop([p], lr=0.1, alpha=0.0, eps=0.0, momentum=0.5)
    assert constant_grad_trace(opt, p, 2.0, 3) == pytest.approx([0.9, 0.75, 0.575], rel=1e-14)
    assert opt.state[p]["momentum_buffer"][0] == 1.75
    assert opt.state[p]["step"] == 3


def test_rmsprop_weight_decay_first_step_by_hand():
    # g = 1 + 0.5 * 2 = 2; v = 0.5 * 4 = 2; p = 2 - 0.1 * 2 / (sqrt(2) + 1e-3)
    p = scalar(2.0)
    opt = RMSprop([p], lr=0.1, alpha=0.5, eps=1e-3, weight_decay=0.5)
    p.grad[...] = 1.0
    opt.step()
    assert p.data[0] == pytest.approx(2.0 - 0.2 / (math.sqrt(2.0) + 1e-3), rel=1e-15)


def test_rmsprop_centered_variance_rounding_below_zero_gives_no_nan():
    # With alpha = 0 the centered variance v - a**2 is g**2 - g**2 = 0 exactly: d = eps.
    p = scalar()
    opt = RMSprop([p], lr=0.1, alpha=0.0, eps=1.0, centered=True)
    p.grad[...] = 3.0
    opt.step()
    assert p.data[0] == pytest.approx(1.0 - 0.3, rel=1e-15)


# ---- Adagrad by hand -------------------------------------------------------------------


def test_adagrad_by_hand():
    # g = 2: s_t = 4 t, step_t = lr * 2 / (2 sqrt(t)) = lr / sqrt(t)
    p = scalar()
    trace = constant_grad_trace(Adagrad([p], lr=0.1, eps=0.0), p, 2.0, 3)
    assert trace == pytest.approx(list(1.0 - np.cumsum([0.1, 0.1 / math.sqrt(2), 0.1 / math.sqrt(3)])), rel=1e-14)


def test_adagrad_lr_decay_and_initial_accumulator_by_hand():
    # s starts at 5: s = 9, 13; clr = 0.1, 0.1 / 1.5
    p = scalar()
    opt = Adagrad([p], lr=0.1, lr_decay=0.5, initial_accumulator_value=5.0, eps=0.0)
    trace = constant_grad_trace(opt, p, 2.0, 2)
    first = 0.1 * 2.0 / 3.0
    assert trace == pytest.approx([1.0 - first, 1.0 - first - 0.1 / 1.5 * 2.0 / math.sqrt(13.0)], rel=1e-14)
    assert opt.state[p]["sum"][0] == 13.0 and opt.state[p]["step"] == 2


def test_adagrad_weight_decay_by_hand():
    # g = 1 + 0.5 * 2 = 2, s = 4: p = 2 - 0.1 * 2 / (2 + 1e-10)
    p = scalar(2.0)
    opt = Adagrad([p], lr=0.1, weight_decay=0.5)
    p.grad[...] = 1.0
    opt.step()
    assert p.data[0] == pytest.approx(2.0 - 0.2 / (2.0 + 1e-10), rel=1e-15)


# ---- AdamW by hand ---------------------------------------------------------------------


def test_adamw_first_step_by_hand():
    # Decay first: 2 * (1 - 0.1 * 0.5) = 1.9; then Adam's first step moves by lr * g / (|g| + eps).
    p = scalar(2.0)
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad[...] = 3.0
    opt.step()
    assert p.data[0] == pytest.approx(1.9 - 0.1 * 3.0 / (3.0 + 1e-8), rel=1e-15)
    # the moments never see the decay
    assert opt.state[p]["exp_avg"][0] == pytest.approx(0.3, rel=1e-15)
    assert opt.state[p]["exp_avg_sq"][0] == pytest.approx(0.009, rel=1e-13)


def test_adamw_without_decay_is_adam_bit_for_bit():
    a, b = make_params(), make_params()
    run(AdamW(a, lr=0.01, weight_decay=0.0), a, 4)
    run(Adam(b, lr=0.01), b, 4)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.data, q.data)


def test_adamw_differs_from_adam_with_l2():
    a, b = make_params(), make_params()
    run(AdamW(a, lr=0.01, weight_decay=0.1), a, 3)
    run(Adam(b, lr=0.01, weight_decay=0.1), b, 3)
    assert not np.allclose(a[0].data, b[0].data, rtol=1e-6, atol=0)


# ---- references on several parameters ---------------------------------------------------

CONFIGS = [
    (RMSprop, rmsprop_reference, {}),
    (RMSprop, rmsprop_reference, {"lr": 0.05, "alpha": 0.9, "eps": 1e-6}),
    (RMSprop, rmsprop_reference, {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.01}),
    (RMSprop, rmsprop_reference, {"lr": 0.02, "alpha": 0.8, "centered": True}),
    (RMSprop, rmsprop_reference, {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    (Adagrad, adagrad_reference, {}),
    (Adagrad, adagrad_reference, {"lr": 0.1, "lr_decay": 0.1}),
    (Adagrad, adagrad_reference, {"lr": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6}),
    (AdamW, adamw_reference, {}),
    (AdamW, adamw_reference, {"lr": 0.01, "weight_decay": 0.1}),
    (AdamW, adamw_reference, {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 0.0}),
]


@pytest.mark.parametrize(("cls", "reference", "config"), CONFIGS)
def test_matches_reference_on_several_parameters(cls, reference, config):
    params = make_params()
    start = [p.data.copy() for p in params]
    run(cls(params, **config), params, 5)
    for p, p0 in zip(params, start):
        expected = reference(p0, 5, **config)
        assert not np.allclose(expected, p0)
        np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("cls", "reference", "config"), [CONFIGS[3], CONFIGS[7], CONFIGS[9]])
def test_float32_close_to_float64_reference(cls, reference, config):
    params = make_params(np.float32)
    arrays = [p.data for p in params]
    start = [p.data.astype(np.float64) for p in params]
    opt = cls(params, **config)
    run(opt, params, 3)
    for p, arr, p0 in zip(params, arrays, start):
        assert p.data is arr and p.data.dtype == np.float32
        np.testing.assert_allclose(p.data, reference(p0, 3, **config), rtol=2e-5, atol=1e-6)
        for value in opt.state[p].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32 and value.shape == p.shape


def test_defaults_are_torchs():
    ps = make_params()
    assert RMSprop(ps).get_config() == {
        "lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False,
    }
    assert Adagrad(ps).get_config() == {
        "lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10,
    }
    assert AdamW(ps).get_config() == {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-2}
    assert repr(AdamW(ps)) == "AdamW(3 parameters, lr=0.001, betas=[0.9, 0.999], eps=1e-08, weight_decay=0.01)"
    assert isinstance(AdamW(ps), mdl.Optimizer) and isinstance(RMSprop(ps), mdl.Optimizer)


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


# ---- state dicts ---------------------------------------------------------------------


def save_and_load(state):
    """Round trip through JSON (config, ints) and npz (arrays), as a checkpoint does."""
    arrays = {}
    entries = []
    for i, entry in enumerate(state["state"]):
        plain = {}
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                arrays[f"{i}.{key}"] = value
                plain[key] = {"__array__": f"{i}.{key}"}
            else:
                plain[key] = value
        entries.append(plain)
    text = json.dumps({"type": state["type"], "config": state["config"], "state": entries})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        loaded = dict(npz)
    out = json.loads(text)
    for entry in out["state"]:
        for key, value in entry.items():
            if isinstance(value, dict):
                entry[key] = loaded[value["__array__"]]
    return out


STATEFUL = [
    (RMSprop, {"lr": 0.01, "alpha": 0.9, "momentum": 0.9, "centered": True, "weight_decay": 0.01}),
    (RMSprop, {"lr": 0.01}),
    (Adagrad, {"lr": 0.05, "lr_decay": 0.1, "initial_accumulator_value": 0.2}),
    (AdamW, {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.05}),
]


@pytest.mark.parametrize(("cls", "config"), STATEFUL)
def test_state_dict_round_trip_continues_identically(cls, config):
    params = make_params()
    opt = cls(params, **config)
    run(opt, params, 2)
    saved = save_and_load(opt.state_dict())
    weights = [p.data.copy() for p in params]
    run(opt, params, 3, start=2)

    fresh = make_params()
    for p, w in zip(fresh, weights):
        p.data[...] = w
    other = cls(fresh)  # default hyperparameters: the state dict brings the saved ones
    other.load_state_dict(saved)
    assert other.get_config() == opt.get_config()
    run(other, fresh, 3, start=2)
    for p, q in zip(params, fresh):
        np.testing.assert_array_equal(p.data, q.data)


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
    a, b = scalar(), scalar()
    opt_a = RMSprop([a], lr=0.1, alpha=0.0, eps=0.0)
    opt_b = RMSprop([b], lr=0.1, alpha=0.0, eps=0.0, momentum=0.5)
    constant_grad_trace(opt_a, a, 2.0, 1)
    state = opt_a.state_dict()
    state["config"]["momentum"] = 0.5
    opt_a.load_state_dict(state)  # no momentum_buffer in the state: it starts at zero, as in opt_b
    assert constant_grad_trace(opt_a, a, 2.0, 2) == pytest.approx([0.8, 0.65], rel=1e-14)
    assert constant_grad_trace(opt_b, b, 2.0, 2) == pytest.approx([0.9, 0.75], rel=1e-14)


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
        (lambda: Adagrad([P, P]), ValueError, "Adagrad: params[1] is the same Parameter as params[0]"),
        (lambda: Adagrad([P], lr_decay=-0.1), ValueError, "Adagrad: lr_decay must be >= 0.0, got -0.1"),
        (lambda: Adagrad([P], initial_accumulator_value=-1), ValueError,
         "Adagrad: initial_accumulator_value must be >= 0.0, got -1.0"),
        (lambda: Adagrad([P], eps=float("nan")), ValueError, "Adagrad: eps must be finite"),
        (lambda: Adagrad([P], weight_decay=None), TypeError, "Adagrad: weight_decay must be a real number"),
        (lambda: AdamW(P), TypeError, "AdamW: params must be an iterable of Parameter"),
        (lambda: AdamW([P], betas=(0.9, 1.0)), ValueError, "AdamW: betas[1] must be in [0, 1), got 1.0"),
        (lambda: AdamW([P], betas=0.9), TypeError, "AdamW: betas must be a pair (beta1, beta2), got 0.9"),
        (lambda: AdamW([P], weight_decay=-1e-2), ValueError, "AdamW: weight_decay must be >= 0.0, got -0.01"),
    ],
)
def test_bad_arguments(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)


def test_top_level_names():
    assert (mdl.RMSprop, mdl.Adagrad, mdl.AdamW) == (RMSprop, Adagrad, AdamW)
    assert issubclass(AdamW, Adam)
