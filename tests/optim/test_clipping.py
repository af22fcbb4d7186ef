"""Gradient clippers: hand-computed norms and clipped values, non-finite gradients, a user's
clipper, torch's clip_grad_norm_ / clip_grad_value_ (and a clipped Adam training), errors."""

import math

import numpy as np
import pytest

import minidl as mdl
from minidl.optim.clipping import GradientClipper, total_grad_norm
from tests.helpers import TORCH_SHAPES, assert_relative_close
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, BAD_P


def params_with_grads(*grads, dtype=np.float64):
    params = []
    for i, g in enumerate(grads):
        p = mdl.Parameter(np.zeros(np.shape(g), dtype=dtype), f"p{i}")
        p.grad[...] = g
        params.append(p)
    return params


def test_global_norm_scales_when_above_max_norm():
    # |[3, 4]| = 5, |[[12]]| = 12, total sqrt(9 + 16 + 144) = 13
    a, b = params_with_grads([3.0, 4.0], [[12.0]])
    grads = [a.grad, b.grad]
    total = mdl.ClipByGlobalNorm(6.5)([a, b])
    assert total == 13.0
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad, [3.0 * scale, 4.0 * scale], rtol=1e-15)
    np.testing.assert_allclose(b.grad, [[12.0 * scale]], rtol=1e-15)
    assert a.grad is grads[0] and b.grad is grads[1]
    assert total_grad_norm([a, b]) == pytest.approx(6.5 * 13.0 / (13.0 + 1e-6), rel=1e-15)


@pytest.mark.parametrize("max_norm", [13.0, 13.0 + 5e-7])
def test_global_norm_scales_in_the_band_just_under_max_norm(max_norm):
    # torch's rule: scale by max_norm / (norm + 1e-6) whenever that is below 1, so a norm of 13
    # with max_norm in (13, 13 + 1e-6) is scaled too (by a factor just under 1).
    a, b = params_with_grads([3.0, -4.0], [[-12.0]])
    assert mdl.ClipByGlobalNorm(max_norm)([a, b]) == 13.0
    scale = max_norm / (13.0 + 1e-6)
    assert scale < 1.0
    np.testing.assert_array_equal(a.grad, [3.0 * scale, -4.0 * scale])
    np.testing.assert_array_equal(b.grad, [[-12.0 * scale]])
    assert total_grad_norm([a, b]) < max_norm


@pytest.mark.parametrize("max_norm", [13.0 + 1e-6, 13.5, 100.0])
def test_global_norm_leaves_small_gradients_alone(max_norm):
    a, b = params_with_grads([3.0, -4.0], [[-12.0]])
    assert mdl.ClipByGlobalNorm(max_norm)([a, b]) == 13.0
    np.testing.assert_array_equal(a.grad, [3.0, -4.0])
    np.testing.assert_array_equal(b.grad, [[-12.0]])


def test_clip_by_value_by_hand():
    a, b = params_with_grads([3.0, -5.0, 0.5], [[12.0, -1.0]])
    total = mdl.ClipByValue(3.5)([a, b])
    assert total == pytest.approx(math.sqrt(9 + 25 + 0.25 + 144 + 1), rel=1e-15)
    np.testing.assert_array_equal(a.grad, [3.0, -3.5, 0.5])
    np.testing.assert_array_equal(b.grad, [[3.5, -1.0]])


def test_float32_gradients_norm_accumulated_in_float64():
    rng = np.random.default_rng(3)
    g = rng.uniform(0.0, 1.0, size=(300, 500)).astype(np.float32)
    (p,) = params_with_grads(g, dtype=np.float32)
    exact = math.sqrt(math.fsum(float(x) ** 2 for x in g.astype(np.float64).ravel()))
    total = mdl.ClipByGlobalNorm(1.0)([p])
    assert total == pytest.approx(exact, rel=1e-13)
    assert p.grad.dtype == np.float32
    assert total_grad_norm([p]) == pytest.approx(1.0, rel=1e-5)


def test_norm_of_huge_float64_gradients_does_not_overflow():
    # 1e200**2 overflows float64, the norm sqrt(2) * 1e200 does not
    (p,) = params_with_grads([1e200, -1e200])
    total = mdl.ClipByGlobalNorm(1.0)([p])
    assert total == pytest.approx(math.sqrt(2) * 1e200, rel=1e-15)
    np.testing.assert_allclose(p.grad, [2**-0.5, -(2**-0.5)], rtol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_norm_leaves_gradients_untouched_by_default(bad):
    a, b = params_with_grads([30.0, 40.0], [1.0, bad])
    total = mdl.ClipByGlobalNorm(1.0)([a, b])
    assert not math.isfinite(total)
    assert math.isnan(total) == math.isnan(bad)
    np.testing.assert_array_equal(a.grad, [30.0, 40.0])
    np.testing.assert_array_equal(b.grad, [1.0, bad])


@pytest.mark.parametrize(("bad", "shown"), [(np.nan, "nan"), (np.inf, "inf")])
def test_non_finite_norm_raises_when_asked(bad, shown):
    a, b = params_with_grads([30.0, 40.0], [1.0, bad])
    clipper = mdl.ClipByGlobalNorm(1.0, error_if_nonfinite=True)
    with pytest.raises(FloatingPointError) as info:
        clipper([a, b])
    assert f"total norm of the gradients is {shown} (non-finite)" in str(info.value)
    assert "params[1] ('p1')" in str(info.value)
    np.testing.assert_array_equal(a.grad, [30.0, 40.0])


def test_clip_by_value_with_nan_returns_nan_and_clips_the_rest():
    (p,) = params_with_grads([np.nan, 10.0, -10.0])
    assert math.isnan(mdl.ClipByValue(1.0)([p]))
    np.testing.assert_array_equal(p.grad, [np.nan, 1.0, -1.0])


def test_accepts_single_parameter_generator_and_empty_list():
    (p,) = params_with_grads([6.0, 8.0])
    assert mdl.ClipByGlobalNorm(5.0)(p) == 10.0
    np.testing.assert_allclose(p.grad, [6.0 * 5 / (10 + 1e-6), 8.0 * 5 / (10 + 1e-6)], rtol=1e-15)
    assert mdl.ClipByValue(1.0)(q for q in [p]) == pytest.approx(5.0 * 10 / (10 + 1e-6), rel=1e-15)
    assert mdl.ClipByGlobalNorm(1.0)([]) == 0.0


def test_works_on_a_layer_and_repr():
    layer = mdl.Dense(3, 2)
    for p in layer.parameters():
        p.grad[...] = 2.0  # 6 + 2 entries of 2: norm sqrt(8 * 4)
    assert mdl.ClipByValue(0.5)(layer.parameters()) == pytest.approx(math.sqrt(32), rel=1e-7)
    for p in layer.parameters():
        np.testing.assert_array_equal(p.grad, 0.5)
    clipper = mdl.ClipByGlobalNorm(1.0)
    assert isinstance(clipper, mdl.GradientClipper)
    assert repr(clipper) == "ClipByGlobalNorm(max_norm=1.0, error_if_nonfinite=False)"
    assert repr(mdl.ClipByValue(2)) == "ClipByValue(clip_value=2.0)"


class ClipEach(GradientClipper):
    """A user's clipper: each gradient rescaled to norm at most ``max_norm`` on its own."""

    def __init__(self, max_norm):
        self.max_norm = max_norm

    def clip(self, params):
        total = total_grad_norm(params)
        for p in params:
            norm = float(np.sqrt(np.sum(p.grad**2)))
            if norm > self.max_norm:
                p.grad *= self.max_norm / norm
        return total


def test_a_user_clipper_implements_clip_and_gets_validated_parameters():
    a, b = params_with_grads([3.0, 4.0], [[0.5]])
    clipper = ClipEach(1.0)
    assert clipper([a, b]) == pytest.approx(math.sqrt(25.25), rel=1e-15)
    np.testing.assert_allclose(a.grad, [0.6, 0.8], rtol=1e-15)
    np.testing.assert_array_equal(b.grad, [[0.5]])
    assert clipper(a) == pytest.approx(1.0, rel=1e-15)  # a single Parameter becomes a list
    with pytest.raises(ValueError, match=r"ClipEach: params\[1\] is the same Parameter as params\[0\]"):
        clipper([a, a])
    with pytest.raises(NotImplementedError, match=r"GradientClipper must implement clip\(params\)"):
        GradientClipper()([a])


# ---- against torch ---------------------------------------------------------------------


def _same_grads(torch, seed):
    """minidl parameters and torch tensors (float64, shapes ``TORCH_SHAPES``) holding the same random gradients."""
    rng = np.random.default_rng(seed)
    params = [mdl.Parameter(np.zeros(s), "p") for s in TORCH_SHAPES]
    tensors = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in TORCH_SHAPES]
    for p, x in zip(params, tensors):
        p.grad[...] = rng.normal(size=p.shape)
        x.grad = torch.from_numpy(p.grad.copy())
    return params, tensors


@pytest.mark.parametrize("max_norm", [0.5, 2.0, 1e3])
def test_clip_by_global_norm_matches_torch(max_norm):
    torch = pytest.importorskip("torch")
    params, tensors = _same_grads(torch, 9)
    total = mdl.ClipByGlobalNorm(max_norm)(params)
    ref = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    assert total == pytest.approx(ref.item(), rel=1e-14)
    for p, x in zip(params, tensors):
        np.testing.assert_allclose(p.grad, x.grad.numpy(), rtol=1e-14)


@pytest.mark.parametrize("gap", [0.0, 1e-7, 5e-7, 9e-7, 1e-6, 2e-6])
def test_clip_by_global_norm_matches_torch_in_the_band_under_max_norm(gap):
    # norm = max_norm - gap: torch scales for gap < 1e-6 (factor < 1) and leaves the rest alone
    torch = pytest.importorskip("torch")
    params, tensors = _same_grads(torch, 11)
    norm = total_grad_norm(params)
    max_norm = norm + gap
    before = [p.grad.copy() for p in params]
    mdl.ClipByGlobalNorm(max_norm)(params)
    torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    scaled = gap < 1e-6
    for p, x, b in zip(params, tensors, before):
        # the factor differs from 1 by >= 1e-7 / norm (about 3e-8 here): rtol 1e-14 tells them apart
        np.testing.assert_allclose(p.grad, x.grad.numpy(), rtol=1e-14, atol=0)
        assert np.allclose(x.grad.numpy(), b, rtol=1e-12, atol=0) is (not scaled)
        assert np.allclose(p.grad, b, rtol=1e-12, atol=0) is (not scaled)


def test_clip_by_value_matches_torch():
    torch = pytest.importorskip("torch")
    params, tensors = _same_grads(torch, 10)
    mdl.ClipByValue(0.7)(params)
    torch.nn.utils.clip_grad_value_(tensors, 0.7)
    for p, x in zip(params, tensors):
        np.testing.assert_array_equal(p.grad, x.grad.numpy())


def test_dense_mse_clip_adam_training_matches_torch(float64):
    """Five steps of Dense + MSE + global-norm clipping + Adam, against nn.Linear."""
    torch = pytest.importorskip("torch")
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
        assert_relative_close(dense.kernel.data, linear.weight.detach().numpy().T)
        assert_relative_close(dense.bias.data, linear.bias.detach().numpy())


# ---- bad arguments -------------------------------------------------------------------

P = mdl.Parameter(np.zeros(2), "w")


@pytest.mark.parametrize(
    ("call", "exc", "fragment"),
    [
        (lambda: mdl.ClipByValue(0.0), ValueError, "ClipByValue: clip_value must be > 0.0, got 0.0"),
        (lambda: mdl.ClipByValue(-1), ValueError, "ClipByValue: clip_value must be > 0.0, got -1.0"),
        (lambda: mdl.ClipByValue("1"), TypeError, "ClipByValue: clip_value must be a real number"),
        (lambda: mdl.ClipByValue(float("inf")), ValueError, "ClipByValue: clip_value must be finite"),
        (lambda: mdl.ClipByGlobalNorm(0), ValueError, "ClipByGlobalNorm: max_norm must be > 0.0, got 0.0"),
        (lambda: mdl.ClipByGlobalNorm(None), TypeError, "ClipByGlobalNorm: max_norm must be a real number"),
        (
            lambda: mdl.ClipByGlobalNorm(1.0, error_if_nonfinite="yes"),
            TypeError,
            "ClipByGlobalNorm: error_if_nonfinite must be a bool, got 'yes'",
        ),
        (lambda: mdl.ClipByGlobalNorm(1.0)([P, P]), ValueError, "params[1] is the same Parameter as params[0]"),
        (lambda: mdl.ClipByValue(1.0)([P, np.zeros(2)]), TypeError, "params[1] must be a Parameter, got ndarray"),
        (lambda: mdl.ClipByValue(1.0)(mdl.Dense(2, 2)), TypeError, "got Dense"),
    ],
)
def test_bad_arguments(call, exc, fragment):
    with pytest.raises(exc) as info:
        call()
    assert fragment in str(info.value)


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("clip_value_huge_int", lambda: mdl.ClipByValue(10**400),
         ValueError, r"^ClipByValue: clip_value must be finite, got a number too large for a float"),
    ("clip_norm_bool", lambda: mdl.ClipByGlobalNorm(True),
         TypeError, r"^ClipByGlobalNorm: max_norm must be a real number, got True \(bool\)"),
    ("clip_norm_nan", lambda: mdl.ClipByGlobalNorm(float("nan")),
         ValueError, r"^ClipByGlobalNorm: max_norm must be finite, got nan"),
    ("total_grad_norm_duplicates", lambda: total_grad_norm([BAD_P, BAD_P]),
         ValueError, r"^total_grad_norm: params\[1\] is the same Parameter as params\[0\] \('w'\)"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
