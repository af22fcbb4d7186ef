"""Central differences of a loss, and the masked-loss checks (by hand and against PyTorch)."""

import numpy as np
import pytest

from .layers import assert_close_rel, warnings_as_errors



# ---- losses ---------------------------------------------------------------------------
def scaled_normal(shape, scale=3.0, seed=0):
    """``N(0, scale^2)`` values of ``shape`` (float64) from ``default_rng(seed)``: predictions and
    targets for the loss comparisons."""
    return np.random.default_rng(seed).normal(size=shape) * scale


def numeric_grad(loss, pred, target, eps=1e-6, mask=None):
    """Central differences of ``loss(pred, target, mask)`` with respect to pred (float64)."""
    out = np.empty_like(pred)
    for idx in np.ndindex(pred.shape):
        plus, minus = pred.copy(), pred.copy()
        plus[idx] += eps
        minus[idx] -= eps
        out[idx] = (loss(plus, target, mask) - loss(minus, target, mask)) / (2 * eps)
    return out


# ---- losses with masks ------------------------------------------------------------------------
def assert_masked_loss(loss, pred, target, mask, padding):
    """``loss(pred, target, mask)`` is the loss of the real steps alone (``pred[mask]``), its
    gradient that one scattered back and exactly 0 at masked steps, whatever the padding holds:
    NaN in pred, ``padding`` in target (out of range: not validated). An all-masked batch is 0.0
    with a zero gradient. Checked with warnings as errors."""
    value = loss(pred[mask], target[mask])
    grad = np.zeros_like(pred)
    grad[mask] = loss.backward()
    assert loss(pred, target, mask) == pytest.approx(value, rel=1e-14)
    np.testing.assert_allclose(loss.backward(), grad, rtol=1e-14, atol=1e-17)
    pred, target = pred.copy(), np.array(target, copy=True)
    pred[~mask], target[~mask] = np.nan, padding
    with warnings_as_errors():
        assert loss(pred, target, mask) == pytest.approx(value, rel=1e-14)
        np.testing.assert_allclose(loss.backward(), grad, rtol=1e-14, atol=1e-17)
        assert loss(pred, target, np.zeros(mask.shape, bool)) == 0.0
        assert loss.backward().dtype == pred.dtype
        np.testing.assert_array_equal(loss.backward(), np.zeros_like(pred))


def assert_loss_matches_torch(loss, pred, target, mask, function):
    """Value and gradient of ``loss(pred, target, mask)`` equal ``torch.nn.functional.<function>``
    on the selected elements (float64, relative error <= 1e-12); the loss's config gives torch's
    keyword arguments (reduction, delta, ignore_index, pos_weight)."""
    torch = pytest.importorskip("torch")
    real = torch.tensor(np.ones(np.shape(target)[:2], bool) if mask is None else mask)
    kwargs = loss.get_config()
    if kwargs.get("pos_weight") is not None:
        kwargs["pos_weight"] = torch.tensor(kwargs["pos_weight"], dtype=torch.float64)
    x = torch.tensor(pred, requires_grad=True)
    ref = getattr(torch.nn.functional, function)(x[real], torch.tensor(target)[real], **kwargs)
    ref.backward()
    assert loss(pred, target, mask) == pytest.approx(ref.item(), rel=1e-12)
    assert_close_rel(loss.backward(), x.grad.numpy(), "grad", tol=1e-12)


def torch_value_and_grad(fn, pred, *args, **kwargs):
    """``fn(pred, ...)`` in torch (float64) and its gradient with respect to ``pred``."""
    import torch  # optional: only the torch comparisons (which importorskip it) call this

    x = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
    value = fn(x, *args, **kwargs)
    value.backward()
    return value.item(), x.grad.numpy()
