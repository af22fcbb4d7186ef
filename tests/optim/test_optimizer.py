"""SGD and Adam: hand-computed updates, independent references, state dicts, errors."""

import io
import json

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_load_rejected, edited_state, grad_at, run
from tests.helpers import make_params as _make_params

# ---- helpers -------------------------------------------------------------------------


def make_params(dtype=np.float64):
    return _make_params(dtype, seed=7)


def sgd_reference(value, steps, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """Textbook SGD (PyTorch's variant: buffer starts at the first gradient, no dampening)."""
    velocity = None
    for t in range(steps):
        d_p = grad_at(value, t) + weight_decay * value
        if momentum:
            velocity = d_p if velocity is None else momentum * velocity + d_p
            d_p = d_p + momentum * velocity if nesterov else velocity
        value = value - lr * d_p
    return value


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


def scalar_param(value=1.0):
    return mdl.Parameter(np.array([value]), "w")


def minimize_square(opt, p, steps):
    """Gradient of p**2 / 2 is p."""
    values = []
    for _ in range(steps):
        p.grad[...] = p.data
        opt.step()
        values.append(float(p.data[0]))
    return values


# ---- SGD by hand ---------------------------------------------------------------------


# Minimizing p**2 / 2 (gradient p) from p = 1 with lr = 0.1:
# plain:     p <- 0.9 p
# decay 0.1: g = 1.1 p, p <- 0.89 p
# momentum:  b = 1 -> 0.9;  b = 0.9*1 + 0.9 = 1.8 -> 0.72;  b = 0.9*1.8 + 0.72 = 2.34 -> 0.486
# nesterov:  g=1, b=1, step 1 + 0.9 = 1.9 -> 0.81;  g=0.81, b=1.71, step 0.81 + 1.539 -> 0.5751;
#            g=0.5751, b=1.539 + 0.5751 = 2.1141, step 0.5751 + 1.90269 = 2.47779 -> 0.327321
@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, [0.9, 0.81, 0.729]),
        ({"weight_decay": 0.1}, [0.89, 0.7921, 0.704969]),
        ({"momentum": 0.9}, [0.9, 0.72, 0.486]),
        ({"momentum": 0.9, "nesterov": True}, [0.81, 0.5751, 0.327321]),
    ],
)
def test_sgd_by_hand(config, expected):
    p = scalar_param()
    assert minimize_square(mdl.SGD([p], lr=0.1, **config), p, 3) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize(
    "config",
    [
        {"lr": 0.1},
        {"lr": 0.05, "weight_decay": 0.01},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.1, "momentum": 0.5, "nesterov": True},
        {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    ],
)
def test_sgd_matches_reference_on_several_parameters(config):
    params = make_params()
    start = [p.data.copy() for p in params]
    run(mdl.SGD(params, **config), params, 3)
    for p, p0 in zip(params, start):
        np.testing.assert_allclose(p.data, sgd_reference(p0, 3, **config), rtol=1e-13, atol=1e-15)


# ---- Adam ----------------------------------------------------------------------------


def test_adam_constant_gradient_by_hand():
    # With a constant gradient c, m_hat = c and v_hat = c**2 at every step, so each
    # step moves by lr * c / (|c| + eps).
    p = scalar_param()
    opt = mdl.Adam([p], lr=0.1)
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
    opt = mdl.Adam([p], lr=0.01, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.5)
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
    run(mdl.Adam(params, **config), params, 3)
    for p, p0 in zip(params, start):
        np.testing.assert_allclose(p.data, adam_reference(p0, 3, **config), rtol=1e-12, atol=1e-15)


def test_adam_defaults_are_torchs():
    opt = mdl.Adam(make_params())
    assert opt.get_config() == {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}
    sgd = mdl.SGD(make_params(), lr=0.1)
    assert sgd.get_config() == {"lr": 0.1, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0}


# ---- common behaviour ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [lambda ps: mdl.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1), mdl.Adam]
)
def test_step_keeps_identity_dtype_and_leaves_grad_alone(make):
    params = make_params(np.float32)
    arrays = [p.data for p in params]
    opt = make(params)
    for p in params:
        p.grad[...] = 1.5
    before = [p.data.copy() for p in params]
    opt.step()
    for p, arr, b in zip(params, arrays, before):
        assert p.data is arr
        assert p.data.dtype == np.float32
        assert not np.array_equal(p.data, b)
        np.testing.assert_array_equal(p.grad, 1.5)
        for value in opt.state[p].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32 and value.shape == p.shape


@pytest.mark.parametrize(
    ("make", "reference", "config"),
    [
        (mdl.SGD, sgd_reference, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}),
        (mdl.Adam, adam_reference, {"lr": 0.01, "weight_decay": 0.01}),
    ],
)
def test_float32_close_to_float64_reference(make, reference, config):
    params = make_params(np.float32)
    start = [p.data.astype(np.float64) for p in params]
    run(make(params, **config), params, 3)
    for p, p0 in zip(params, start):
        np.testing.assert_allclose(p.data, reference(p0, 3, **config), rtol=2e-5, atol=1e-6)


def test_zero_grad_zeroes_in_place():
    params = make_params()
    grads = [p.grad for p in params]
    for p in params:
        p.grad[...] = 3.0
    mdl.SGD(params, lr=0.1).zero_grad()
    for p, g in zip(params, grads):
        assert p.grad is g
        np.testing.assert_array_equal(p.grad, 0.0)


def test_lr_can_be_changed_between_steps():
    p = scalar_param()
    opt = mdl.SGD([p], lr=0.1)
    p.grad[...] = 1.0
    opt.step()
    opt.lr = 0.01
    opt.step()
    assert p.data[0] == pytest.approx(1.0 - 0.1 - 0.01, rel=1e-15)
    with pytest.raises(ValueError, match="SGD: lr must be >= 0.0, got -0.5"):
        opt.lr = -0.5
    assert opt.lr == 0.01


def test_optimizer_follows_a_dtype_change_of_its_parameters():
    layer = mdl.Dense(2, 3)
    opt = mdl.Adam(layer.parameters(), lr=0.01)
    run(opt, layer.parameters(), 1)
    layer.astype(np.float64)
    run(opt, layer.parameters(), 1, start=1)
    for p in layer.parameters():
        assert p.data.dtype == np.float64
        assert opt.state[p]["exp_avg"].dtype == np.float64


# ---- state dicts ---------------------------------------------------------------------


def save_and_load(state):
    """Round trip through npz (arrays) + JSON (everything else), as a checkpoint does."""
    arrays = {}

    def strip(obj, path):
        if isinstance(obj, np.ndarray):
            arrays[path] = obj
            return {"__array__": path}
        if isinstance(obj, (dict, list)):
            items = obj.items() if isinstance(obj, dict) else enumerate(obj)
            out = {k: strip(v, f"{path}.{k}") for k, v in items}
            return out if isinstance(obj, dict) else list(out.values())
        assert isinstance(obj, (bool, int, float, str)), f"{path}: {type(obj).__name__} is not JSON-able"
        return obj

    def restore(obj):
        if isinstance(obj, dict):
            return loaded[obj["__array__"]] if "__array__" in obj else {k: restore(v) for k, v in obj.items()}
        return [restore(v) for v in obj] if isinstance(obj, list) else obj

    text = json.dumps(strip(state, "s"))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        loaded = dict(npz)
    return restore(json.loads(text))


OPTIMIZERS = [
    lambda ps: mdl.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: mdl.SGD(ps, lr=0.05),
    lambda ps: mdl.Adam(ps, lr=0.01, betas=(0.8, 0.95), weight_decay=0.01),
]


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_state_dict_round_trip_continues_identically(make):
    params = make_params()
    opt = make(params)
    run(opt, params, 2)
    saved = save_and_load(opt.state_dict())
    weights = [p.data.copy() for p in params]

    run(opt, params, 3, start=2)  # the original goes on

    fresh = make_params()
    for p, w in zip(fresh, weights):
        p.data[...] = w
    other = mdl.SGD(fresh, lr=1.0) if isinstance(opt, mdl.SGD) else mdl.Adam(fresh)
    other.load_state_dict(saved)
    assert other.get_config() == opt.get_config()
    run(other, fresh, 3, start=2)
    for p, q in zip(params, fresh):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_contents_and_copies():
    params = make_params()
    opt = mdl.Adam(params, lr=0.01)
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
    sgd = mdl.SGD(params, lr=0.1)  # no momentum: no state at all
    run(sgd, params, 1)
    assert sgd.state_dict()["state"] == [{}, {}, {}]


def _edit(change):
    return edited_state(mdl.Adam, change)


@pytest.mark.parametrize(
    ("state", "exc", "fragment"),
    [
        ([1, 2], TypeError, "expected a mapping, got list"),
        (_edit(lambda s: s.pop("config")), ValueError, "missing keys ['config']"),
        (_edit(lambda s: s.update(extra=1)), ValueError, "unexpected keys ['extra']"),
        (_edit(lambda s: s.update(type="SGD")), ValueError, "for a 'SGD' optimizer, not 'Adam'"),
        (_edit(lambda s: s["state"].pop()), ValueError, "'state' has 2 entries but the optimizer has 3 parameters"),
        (_edit(lambda s: s["state"].append({})), ValueError, "'state' has 4 entries"),
        (
            _edit(lambda s: s["state"][1].update(exp_avg=np.zeros(5))),
            ValueError,
            "state[1]['exp_avg'] has shape (5,), but params[1] ('bias') has shape (4,)",
        ),
        (_edit(lambda s: s["state"][0].pop("step")), ValueError, "state[0] has missing keys ['step']"),
        (_edit(lambda s: s["state"][2].update(momentum_buffer=0)), ValueError, "unexpected keys ['momentum_buffer']"),
        (_edit(lambda s: s["state"][0].update(step=-1)), ValueError, "state[0]['step'] must be >= 0, got -1"),
        (_edit(lambda s: s["state"][0].update(step=1.5)), TypeError, "state[0]['step'] must be an int"),
        (_edit(lambda s: s["config"].update(lr=-1.0)), ValueError, "Adam: lr must be >= 0.0, got -1.0"),
        (_edit(lambda s: s["config"].pop("eps")), ValueError, "config has missing keys ['eps']"),
        (_edit(lambda s: s["config"].update(betas=[0.9, 1.0])), ValueError, "betas[1] must be in [0, 1), got 1.0"),
        (_edit(lambda s: s.update(state="x")), TypeError, "'state' must be a list"),
    ],
)
def test_load_state_dict_rejects_bad_state_and_changes_nothing(state, exc, fragment):
    params = make_params()
    assert_load_rejected(mdl.Adam(params, lr=0.5), params, state, exc, fragment)


# ---- bad arguments -------------------------------------------------------------------

P = mdl.Parameter(np.zeros(2), "w")
Q = mdl.Parameter(np.zeros(3), "b")


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: mdl.SGD([], lr=0.1), ValueError, "SGD: params is empty"),
        (lambda: mdl.SGD([P, Q, P], lr=0.1), ValueError, "params[2] is the same Parameter as params[0] ('w')"),
        (lambda: mdl.SGD([P, np.zeros(2)], lr=0.1), TypeError, "params[1] must be a Parameter, got ndarray"),
        (lambda: mdl.SGD(P, lr=0.1), TypeError, "iterable of Parameter (e.g. model.parameters()), got a Parameter"),
        (lambda: mdl.SGD({P}, lr=0.1), TypeError, "got an unordered set"),
        (lambda: mdl.SGD(mdl.Dense(2, 2), lr=0.1), TypeError, "got Dense"),
        (lambda: mdl.SGD(5, lr=0.1), TypeError, "got int"),
        (lambda: mdl.SGD([P], lr=-1), ValueError, "SGD: lr must be >= 0.0, got -1.0"),
        (lambda: mdl.SGD([P], lr="0.1"), TypeError, "SGD: lr must be a real number, got '0.1'"),
        (lambda: mdl.SGD([P], lr=float("nan")), ValueError, "SGD: lr must be finite"),
        (lambda: mdl.SGD([P], lr=0.1, momentum=-0.5), ValueError, "SGD: momentum must be >= 0.0, got -0.5"),
        (lambda: mdl.SGD([P], lr=0.1, nesterov=True), ValueError, "nesterov=True requires momentum > 0"),
        (lambda: mdl.SGD([P], lr=0.1, momentum=0.9, nesterov="yes"), TypeError, "SGD: nesterov must be a bool"),
        (lambda: mdl.SGD([P], lr=0.1, weight_decay=-1e-4), ValueError, "SGD: weight_decay must be >= 0.0"),
        (lambda: mdl.SGD([P]), TypeError, "lr"),
        (lambda: mdl.Adam([], lr=0.1), ValueError, "Adam: params is empty"),
        (lambda: mdl.Adam([P], lr=-1e-3), ValueError, "Adam: lr must be >= 0.0, got -0.001"),
        (lambda: mdl.Adam([P], betas=(1.0, 0.999)), ValueError, "Adam: betas[0] must be in [0, 1), got 1.0"),
        (lambda: mdl.Adam([P], betas=(0.9, -0.1)), ValueError, "Adam: betas[1] must be >= 0.0, got -0.1"),
        (lambda: mdl.Adam([P], betas=0.9), TypeError, "Adam: betas must be a pair (beta1, beta2), got 0.9"),
        (lambda: mdl.Adam([P], betas=(0.9,)), ValueError, "got 1 values"),
        (lambda: mdl.Adam([P], eps=-1.0), ValueError, "Adam: eps must be >= 0.0, got -1.0"),
        (lambda: mdl.Adam([P], weight_decay=-0.1), ValueError, "Adam: weight_decay must be >= 0.0, got -0.1"),
    ],
)
def test_bad_arguments(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)


def test_params_may_be_a_generator_and_repr():
    opt = mdl.SGD((p for p in [P, Q]), lr=0.1)
    assert opt.params == [P, Q]
    assert isinstance(opt, mdl.Optimizer)
    assert repr(opt) == "SGD(2 parameters, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0)"
