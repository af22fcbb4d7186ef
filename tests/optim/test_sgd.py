"""SGD: hand-computed updates, an independent reference, torch.optim.SGD, bad arguments."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_step_in_place, compare_with_torch, grad_at, run, scalar_param
from tests.helpers import make_params as _make_params
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, BAD_P


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


def minimize_square(opt, p, steps):
    """Gradient of p**2 / 2 is p."""
    values = []
    for _ in range(steps):
        p.grad[...] = p.data
        opt.step()
        values.append(float(p.data[0]))
    return values


# ---- by hand ---------------------------------------------------------------------------


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


def test_float32_close_to_float64_reference():
    config = {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}
    params = make_params(np.float32)
    start = [p.data.astype(np.float64) for p in params]
    run(mdl.SGD(params, **config), params, 3)
    for p, p0 in zip(params, start):
        np.testing.assert_allclose(p.data, sgd_reference(p0, 3, **config), rtol=2e-5, atol=1e-6)


def test_defaults_are_torchs():
    sgd = mdl.SGD(make_params(), lr=0.1)
    assert sgd.get_config() == {"lr": 0.1, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0}
    assert sgd.defaults == sgd.get_config()


def test_the_state_is_the_momentum_buffer_starting_at_the_first_gradient():
    params = make_params()
    start = params[0].data.copy()
    opt = mdl.SGD(params, lr=0.1, momentum=0.9)
    run(opt, params, 1)
    assert [sorted(e) for e in opt.state_dict()["state"]] == [["momentum_buffer"]] * 3
    buf = opt.state[params[0]]["momentum_buffer"]
    np.testing.assert_array_equal(buf, grad_at(start, 0))  # torch's first buffer: the gradient itself
    assert buf is not params[0].grad and not np.shares_memory(buf, params[0].grad)


def test_step_keeps_identity_dtype_and_leaves_grad_alone():
    assert_step_in_place(lambda ps: mdl.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1))


def test_without_momentum_there_is_no_state():
    params = make_params()
    sgd = mdl.SGD(params, lr=0.1)
    run(sgd, params, 1)
    assert sgd.state_dict()["state"] == [{}, {}, {}]


# ---- against torch ---------------------------------------------------------------------


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
    torch = pytest.importorskip("torch")
    compare_with_torch(mdl.SGD, torch.optim.SGD, config)


# ---- bad arguments -------------------------------------------------------------------

P = mdl.Parameter(np.zeros(2), "w")


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: mdl.SGD([P], lr=-1), ValueError, "SGD: lr must be >= 0.0, got -1.0"),
        (lambda: mdl.SGD([P], lr="0.1"), TypeError, "SGD: lr must be a real number, got '0.1'"),
        (lambda: mdl.SGD([P], lr=float("nan")), ValueError, "SGD: lr must be finite"),
        (lambda: mdl.SGD([P], lr=0.1, momentum=-0.5), ValueError, "SGD: momentum must be >= 0.0, got -0.5"),
        (lambda: mdl.SGD([P], lr=0.1, nesterov=True), ValueError, "nesterov=True requires momentum > 0"),
        (lambda: mdl.SGD([P], lr=0.1, momentum=0.9, nesterov="yes"), TypeError, "SGD: nesterov must be a bool"),
        (lambda: mdl.SGD([P], lr=0.1, weight_decay=-1e-4), ValueError, "SGD: weight_decay must be >= 0.0"),
        (lambda: mdl.SGD([P]), TypeError, "lr"),
    ],
)
def test_bad_arguments(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("sgd_lr_huge_int", lambda: mdl.SGD([BAD_P], lr=10**400),
         ValueError, r"^SGD: lr must be finite, got a number too large for a float"),
    ("sgd_lr_complex", lambda: mdl.SGD([BAD_P], lr=1j),
         TypeError, r"^SGD: lr must be a real number, got 1j \(complex\)"),
    ("sgd_lr_array", lambda: mdl.SGD([BAD_P], lr=np.array([0.1])),
         TypeError, r"^SGD: lr must be a real number, got array\(\[0\.1\]\) \(ndarray\)"),
    ("sgd_momentum_string", lambda: mdl.SGD([BAD_P], lr=0.1, momentum="0.9"),
         TypeError, r"^SGD: momentum must be a real number, got '0\.9' \(str\)"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
