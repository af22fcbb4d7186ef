"""Adam and AdamW: hand-computed steps, textbook references, torch.optim, state, bad arguments."""

import numpy as np
import pytest

import minidl as mdl
from minidl.optim.adam import Adam, AdamW
from tests.helpers import assert_float32_close_to_reference, assert_follows_reference, compare_with_torch
from tests.helpers import assert_step_in_place, grad_at, run, scalar_param
from tests.helpers import make_params as _make_params
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, BAD_P, bad_model, adam_state


def make_params(dtype=np.float64, seed=7):
    return _make_params(dtype, seed=seed)


def adam_reference(value, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Kingma & Ba's Adam with bias-corrected moments, L2 decay added to the gradient."""
    b1, b2 = betas
    m = np.zeros_like(value)
    v = np.zeros_like(value)
    for t in range(1, steps + 1):
        g = grad_at(value, t - 1) + weight_decay * value
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        value = value - lr * m_hat / (np.sqrt(v_hat) + eps)
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


# ---- Adam by hand ----------------------------------------------------------------------


def test_adam_constant_gradient_by_hand():
    # With a constant gradient c, m_hat = c and v_hat = c**2 at every step, so each
    # step moves by lr * c / (|c| + eps).
    p = scalar_param()
    opt = Adam([p], lr=0.1)
    for t in range(1, 4):
        p.grad[...] = 2.0
        opt.step()
        assert p.data[0] == pytest.approx(1.0 - t * 0.1 * 2.0 / (2.0 + 1e-8), rel=1e-14)
    st = opt.state[p]
    assert st["step"] == 3
    # m = (1 - 0.9**3) * 2, v = (1 - 0.999**3) * 4
    assert st["exp_avg"][0] == pytest.approx(0.271 * 2.0, rel=1e-14)
    assert st["exp_avg_sq"][0] == pytest.approx((1 - 0.999**3) * 4.0, rel=1e-14)


def test_adam_first_step_by_hand_with_weight_decay():
    p = scalar_param(2.0)
    opt = Adam([p], lr=0.01, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.5)
    p.grad[...] = 1.0
    opt.step()
    # g = 1 + 0.5*2 = 2; m = 0.2*2 = 0.4, v = 0.1*4 = 0.4; m_hat = 2, v_hat = 4
    # p = 2 - 0.01 * 2 / (2 + 0.001)
    assert p.data[0] == pytest.approx(2.0 - 0.02 / 2.001, rel=1e-15)
    assert opt.state[p]["exp_avg"][0] == pytest.approx(0.4, rel=1e-15)
    assert opt.state[p]["exp_avg_sq"][0] == pytest.approx(0.4, rel=1e-15)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-6},
        {"lr": 0.002, "betas": (0.0, 0.99), "weight_decay": 1e-3},
    ],
)
def test_adam_matches_reference_on_several_parameters(config):
    params = make_params()
    start = [p.data.copy() for p in params]
    run(Adam(params, **config), params, 3)
    for p, p0 in zip(params, start):
        np.testing.assert_allclose(p.data, adam_reference(p0, 3, **config), rtol=1e-12, atol=1e-15)


def test_adam_float32_close_to_float64_reference():
    config = {"lr": 0.01, "weight_decay": 0.01}
    params = make_params(np.float32)
    start = [p.data.astype(np.float64) for p in params]
    run(Adam(params, **config), params, 3)
    for p, p0 in zip(params, start):
        np.testing.assert_allclose(p.data, adam_reference(p0, 3, **config), rtol=2e-5, atol=1e-6)


def test_adam_defaults_are_torchs():
    opt = Adam(make_params())
    assert opt.get_config() == {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}
    assert opt.defaults["betas"] == (0.9, 0.999)


def test_adam_state_dict_contents_and_copies():
    params = make_params()
    opt = Adam(params, lr=0.01)
    assert opt.state_dict() == {
        "type": "Adam",
        "config": {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0},
        "state": [{}, {}, {}],
    }
    run(opt, params, 1)
    state = opt.state_dict()
    assert [sorted(e) for e in state["state"]] == [["exp_avg", "exp_avg_sq", "step"]] * 3
    assert state["state"][1]["step"] == 1 and type(state["state"][1]["step"]) is int
    m = state["state"][0]["exp_avg"].copy()
    run(opt, params, 1, start=1)
    np.testing.assert_array_equal(state["state"][0]["exp_avg"], m)  # a copy, not the live buffer


def test_adam_step_keeps_identity_dtype_and_leaves_grad_alone():
    assert_step_in_place(Adam)


def test_adam_follows_a_dtype_change_of_its_parameters():
    layer = mdl.Dense(2, 3)
    opt = Adam(layer.parameters(), lr=0.01)
    run(opt, layer.parameters(), 1)
    layer.astype(np.float64)
    run(opt, layer.parameters(), 1, start=1)
    for p in layer.parameters():
        assert p.data.dtype == np.float64
        assert opt.state[p]["exp_avg"].dtype == np.float64


# ---- AdamW by hand ---------------------------------------------------------------------


def test_adamw_first_step_by_hand():
    # Decay first: 2 * (1 - 0.1 * 0.5) = 1.9; then Adam's first step moves by lr * g / (|g| + eps).
    p = scalar_param(2.0)
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad[...] = 3.0
    opt.step()
    assert p.data[0] == pytest.approx(1.9 - 0.1 * 3.0 / (3.0 + 1e-8), rel=1e-15)
    # the moments never see the decay
    assert opt.state[p]["exp_avg"][0] == pytest.approx(0.3, rel=1e-15)
    assert opt.state[p]["exp_avg_sq"][0] == pytest.approx(0.009, rel=1e-13)


def test_adamw_without_decay_is_adam_bit_for_bit():
    a, b = make_params(seed=3), make_params(seed=3)
    run(AdamW(a, lr=0.01, weight_decay=0.0), a, 4)
    run(Adam(b, lr=0.01), b, 4)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.data, q.data)


def test_adamw_differs_from_adam_with_l2():
    a, b = make_params(seed=3), make_params(seed=3)
    run(AdamW(a, lr=0.01, weight_decay=0.1), a, 3)
    run(Adam(b, lr=0.01, weight_decay=0.1), b, 3)
    assert not np.allclose(a[0].data, b[0].data, rtol=1e-6, atol=0)


ADAMW_CONFIGS = [
    {},
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 0.0},
]


@pytest.mark.parametrize("config", ADAMW_CONFIGS)
def test_adamw_matches_reference_on_several_parameters(config):
    assert_follows_reference(AdamW, adamw_reference, config, seed=3)


def test_adamw_float32_close_to_float64_reference():
    assert_float32_close_to_reference(AdamW, adamw_reference, ADAMW_CONFIGS[1], seed=3)


def test_adamw_defaults_are_torchs():
    ps = make_params(seed=3)
    assert AdamW(ps).get_config() == {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-2}
    assert repr(AdamW(ps)) == "AdamW(3 parameters, lr=0.001, betas=[0.9, 0.999], eps=1e-08, weight_decay=0.01)"
    assert isinstance(AdamW(ps), mdl.Optimizer)


# ---- against torch ---------------------------------------------------------------------


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
    torch = pytest.importorskip("torch")
    compare_with_torch(Adam, torch.optim.Adam, config)


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
    torch = pytest.importorskip("torch")
    compare_with_torch(AdamW, torch.optim.AdamW, config)


# ---- bad arguments -------------------------------------------------------------------

P = mdl.Parameter(np.zeros(2), "w")


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: Adam([], lr=0.1), ValueError, "Adam: params is empty"),
        (lambda: Adam([P], lr=-1e-3), ValueError, "Adam: lr must be >= 0.0, got -0.001"),
        (lambda: Adam([P], betas=(1.0, 0.999)), ValueError, "Adam: betas[0] must be in [0, 1), got 1.0"),
        (lambda: Adam([P], betas=(0.9, -0.1)), ValueError, "Adam: betas[1] must be >= 0.0, got -0.1"),
        (lambda: Adam([P], betas=0.9), TypeError, "Adam: betas must be a pair (beta1, beta2), got 0.9"),
        (lambda: Adam([P], betas=(0.9,)), ValueError, "got 1 values"),
        (lambda: Adam([P], eps=-1.0), ValueError, "Adam: eps must be >= 0.0, got -1.0"),
        (lambda: Adam([P], weight_decay=-0.1), ValueError, "Adam: weight_decay must be >= 0.0, got -0.1"),
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
    assert (mdl.Adam, mdl.AdamW) == (Adam, AdamW)
    assert issubclass(AdamW, Adam)


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("adam_beta_nan", lambda: mdl.Adam([BAD_P], betas=(0.9, float("nan"))),
         ValueError, r"^Adam: betas\[1\] must be finite, got nan"),
    ("adam_betas_string", lambda: mdl.Adam([BAD_P], betas="ab"),
         TypeError, r"^Adam: betas must be a pair \(beta1, beta2\), got 'ab' \(str\)"),
    ("adam_eps_inf", lambda: mdl.Adam([BAD_P], eps=float("inf")),
         ValueError, r"^Adam: eps must be finite, got inf"),
    ("adam_lr_set_negative", lambda: setattr(mdl.Adam([BAD_P]), "lr", -1),
         ValueError, r"^Adam: lr must be >= 0\.0, got -1\.0"),
    ("adam_duplicate_model_params", lambda: mdl.Adam(bad_model().parameters() * 2),
         ValueError, r"^Adam: params\[5\] is the same Parameter as params\[0\] \('kernel'\); each parameter may appear only once"),
    ("adam_state_of_strings", lambda: mdl.Adam([BAD_P]).load_state_dict(adam_state(np.array(["a", "b"]))),
         TypeError, r"^Adam\.load_state_dict: state\[0\]\['exp_avg'\] must be a real array, got dtype <U1"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
