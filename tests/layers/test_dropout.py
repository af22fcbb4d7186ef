"""Dropout: values with a fixed mask, statistics, seeding, the identity in eval mode,
gradcheck, PyTorch's scaling, output aliasing and bad arguments."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_close_rel, assert_output_edits_leave_gradients


class FixedMaskDropout(mdl.Dropout):
    """Test-only Dropout whose mask is given, so that gradcheck sees one function."""

    def __init__(self, p, keep):
        super().__init__(p)
        self.keep = np.asarray(keep, bool)

    def sample_mask(self, shape):
        return self.keep


def test_dropout_values_with_a_fixed_mask(float64):
    keep = np.array([[True, False, True], [False, True, True]])
    drop = FixedMaskDropout(0.25, keep)
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = drop.forward(x)
    np.testing.assert_allclose(y, [[4 / 3, 0.0, 4.0], [0.0, 20 / 3, 8.0]], rtol=1e-15)
    dx = drop.backward(np.array([[3.0, 3.0, 3.0], [-3.0, -3.0, -3.0]]))
    np.testing.assert_allclose(dx, [[4.0, 0.0, 4.0], [0.0, -4.0, -4.0]], rtol=1e-15)


def test_dropout_statistics_and_scaling():
    mdl.set_seed(0)
    p = 0.3
    x = np.ones((200, 500), np.float32)
    y = mdl.Dropout(p).forward(x)
    assert y.dtype == np.float32
    values = np.unique(y)
    np.testing.assert_allclose(values, [0.0, 1 / 0.7], rtol=1e-6)
    kept = np.mean(y > 0)
    assert abs(kept - 0.7) < 0.006                       # 4 standard errors of 1e5 draws
    assert abs(y.mean() - 1.0) < 0.01                    # inverted dropout keeps the mean


def test_dropout_masks_follow_set_seed():
    x = np.ones((4, 6, 5))
    mdl.set_seed(7)
    drop = mdl.Dropout(0.5)
    a1, a2 = drop(x), drop(x)
    mdl.set_seed(7)
    b1, b2 = mdl.Dropout(0.5)(x), drop(x)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)                    # a fresh mask on every forward


@pytest.mark.parametrize("mode", ["eval", "p0"])
def test_dropout_identity_in_eval_mode_and_for_p0(mode, rng):
    drop = mdl.Dropout(0.0) if mode == "p0" else mdl.Dropout(0.9).eval()
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    state = mdl._random.get_rng().bit_generator.state
    y = drop.forward(x)
    np.testing.assert_array_equal(y, x)
    g = rng.standard_normal((3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(drop.backward(g), g)
    assert mdl._random.get_rng().bit_generator.state == state   # no draw
    assert mdl.gradcheck(drop, x.astype(np.float64))


def test_dropout_predict_is_identity_and_train_mode_is_restored(rng):
    model = mdl.Sequential([mdl.Dense(3, 4), mdl.Dropout(0.5)])
    x = rng.standard_normal((6, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x), model.layers[0].forward(x))
    assert model.layers[1].training
    assert np.sum(model.forward(x) == 0) > 0


def test_dropout_gradcheck_needs_a_fixed_mask(float64, rng):
    x = rng.standard_normal((4, 5))
    with pytest.raises(AssertionError, match="gradcheck: gradient of 'input' differs"):
        mdl.gradcheck(mdl.Dropout(0.5), x)               # a new mask on every forward
    keep = rng.random((4, 5)) >= 0.5
    assert mdl.gradcheck(FixedMaskDropout(0.5, keep), x)


def test_dropout_between_stacked_rnns_gradcheck(float64, rng):
    B, T, H = 2, 5, 4
    keep = rng.random((B, T, H)) >= 0.4
    model = mdl.Sequential([
        mdl.RNN(mdl.LSTMCell(3, H), return_sequences=True),
        FixedMaskDropout(0.4, keep),
        mdl.RNN(mdl.GRUCell(H, 2), return_sequences=True),
    ])
    x = rng.standard_normal((B, T, 3))
    assert mdl.gradcheck(model, x)
    # the second RNN sees exactly the masked, rescaled outputs of the first
    h1 = model.layers[0].forward(x)
    np.testing.assert_allclose(model.layers[1].forward(h1), h1 * keep / 0.6, rtol=1e-15)


@pytest.mark.parametrize(
    "p, err, pattern",
    [
        (1.0, ValueError, r"Dropout: p must be in \[0, 1\), got 1.0"),
        (-0.1, ValueError, r"Dropout: p must be in \[0, 1\), got -0.1"),
        (float("nan"), ValueError, r"got nan"),
        ("0.5", TypeError, r"Dropout: p must be a real number, got '0.5' \(str\)"),
        (True, TypeError, r"got True \(bool\)"),
    ],
)
def test_dropout_bad_p(p, err, pattern):
    with pytest.raises(err, match=pattern):
        mdl.Dropout(p)


def test_dropout_bad_calls():
    drop = mdl.Dropout(0.5)
    with pytest.raises(RuntimeError, match=r"Dropout\(p=0.5\): backward called before forward"):
        drop.backward(np.ones(3))
    drop.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(2, 3\), got \(3, 2\)"):
        drop.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match="input must be a real numeric array"):
        drop.forward(np.array(["a", "b"]))
    bad = FixedMaskDropout(0.5, np.ones((2, 2), bool))
    with pytest.raises(ValueError, match=r"sample_mask must return a bool array of shape \(2, 3\)"):
        bad.forward(np.ones((2, 3)))


def test_dropout_matches_torch_scaling_for_torch_s_own_mask(float64):
    """torch's inverted dropout, its mask read off its output, equals ours with that mask."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = 1.0 + np.random.default_rng(5).random((4, 6, 3))  # > 0: a zero output is a dropped element
    g = np.random.default_rng(6).standard_normal(x.shape)
    xt = torch.from_numpy(x).requires_grad_(True)
    out = torch.nn.functional.dropout(xt, p=0.3, training=True)
    out.backward(torch.from_numpy(g))
    drop = FixedMaskDropout(0.3, out.detach().numpy() != 0)
    assert_close_rel(drop.forward(x), out.detach().numpy(), "output", tol=1e-15)
    assert_close_rel(drop.backward(g), xt.grad.numpy(), "input grad", tol=1e-15)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_dropout_output_edits_leave_gradients(mode, rng):
    drop = mdl.Dropout(0.4) if mode == "train" else mdl.Dropout(0.4).eval()
    assert_output_edits_leave_gradients(drop, rng.standard_normal((5, 6)))
    x = rng.standard_normal((2, 3))
    assert (drop.forward(x) is x) == (mode == "eval")  # eval mode returns x itself, as PyTorch does


def test_dropout_backward_follows_the_forward_dtype():
    drop = mdl.Dropout(0.5)
    drop.forward(np.ones((2, 3), np.float32))
    assert drop.backward(np.ones((2, 3))).dtype == np.float32
