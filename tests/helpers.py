"""Helpers shared by the test modules: central differences of a loss, optimizer fixtures,
a pickle trap standing in for a hostile file, the fit-equals-one-manual-step check, the
output-aliasing check of a layer, and the relative-error comparison with PyTorch."""

import contextlib
import warnings

import numpy as np
import pytest

import minidl as mdl


# ---- losses ---------------------------------------------------------------------------
def numeric_grad(loss, pred, target, eps=1e-6, mask=None):
    """Central differences of ``loss(pred, target, mask)`` with respect to pred (float64)."""
    out = np.empty_like(pred)
    for idx in np.ndindex(pred.shape):
        plus, minus = pred.copy(), pred.copy()
        plus[idx] += eps
        minus[idx] -= eps
        out[idx] = (loss(plus, target, mask) - loss(minus, target, mask)) / (2 * eps)
    return out


# ---- optimizers -----------------------------------------------------------------------
def make_params(dtype=np.float64, seed=7):
    rng = np.random.default_rng(seed)
    return [
        mdl.Parameter(rng.normal(size=(3, 4)).astype(dtype), "kernel"),
        mdl.Parameter(rng.normal(size=(4,)).astype(dtype), "bias"),
        mdl.Parameter(rng.normal(size=(2, 1, 3)).astype(dtype), "other"),
    ]


def grad_at(value, t):
    """A gradient that depends on the parameter value and on the step."""
    return np.sin(value * (t + 1)) + 0.1 * (t + 1)


def run(opt, params, steps, start=0):
    """``steps`` optimizer steps, each after setting every gradient to ``grad_at``."""
    for t in range(start, start + steps):
        for p in params:
            p.grad[...] = grad_at(p.data, t)
        opt.step()


def edited_state(make_optimizer, change):
    """The ``state_dict`` of ``make_optimizer(params)`` after one step, passed through ``change``.

    For tables of corrupted optimizer states: ``change`` edits the dict in place.
    """
    params = make_params()
    opt = make_optimizer(params)
    run(opt, params, 1)
    state = opt.state_dict()
    change(state)
    return state


def assert_load_rejected(opt, params, state, exc, fragment):
    """``opt.load_state_dict(state)`` raises ``exc`` naming ``fragment`` and leaves ``opt`` as it was."""
    run(opt, params, 2)
    before = opt.state_dict()
    with pytest.raises(exc) as info:
        opt.load_state_dict(state)
    assert fragment in str(info.value)
    after = opt.state_dict()
    assert after["config"] == before["config"]
    assert len(after["state"]) == len(before["state"])
    for a, b in zip(after["state"], before["state"]):
        assert a.keys() == b.keys() and a["step"] == b["step"]
        for key in a.keys() - {"step"}:
            np.testing.assert_array_equal(a[key], b[key])


# ---- hostile files: unpickling a Trap runs code (it must never happen) ------------------
FIRED = []


def _trap():
    FIRED.append(True)
    return "boom"


class Trap:
    """Unpickling this object calls ``_trap`` (a stand-in for arbitrary code)."""

    def __reduce__(self):
        return (_trap, ())


# ---- the trainer ------------------------------------------------------------------------
def assert_fit_is_one_manual_step(build, loss_cls, x, y, lr, rtol=1e-6, atol=1e-7):
    """``build()`` makes the same model twice; one ``fit`` epoch on the whole batch (SGD, no
    truncation, no shuffle) must give the weights of forward, backward and one SGD step by hand.
    Returns the input gradient of the manual backward."""
    manual = build()
    loss = loss_cls()
    loss(manual(x), y)
    dx = manual.backward(loss.backward())
    mdl.SGD(manual.parameters(), lr=lr).step()

    model = build()
    trainer = mdl.TBPTTTrainer(model, loss_cls(), mdl.SGD(model.parameters(), lr=lr), seed=0)
    trainer.fit(x, y, epochs=1, batch_size=len(x), shuffle=False, verbose=0)
    for name, value in manual.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name], value, rtol=rtol, atol=atol, err_msg=name)
    return dx


# ---- layers ------------------------------------------------------------------------------
def assert_output_edits_leave_gradients(layer, x, seed=0):
    """Editing a forward's output in place (``y[...] = ...``, a next layer working in place)
    leaves that forward's ``backward`` unchanged: the output shares no memory with what
    ``backward`` reads. ``set_seed(seed)`` before each forward gives a Dropout the same mask."""

    def run(edit):
        layer.zero_grad()
        mdl.set_seed(seed)
        y = layer.forward(np.array(x, copy=True))
        g = np.random.default_rng(seed).standard_normal(y.shape)
        if edit:
            y[...] = 1e3
        dx = layer.backward(g)
        return dx, [p.grad.copy() for p in layer.parameters()]

    dx, grads = run(edit=False)
    assert any(np.any(a != 0) for a in grads + ([] if dx is None else [dx])), "the check needs a nonzero gradient"
    dx_edited, grads_edited = run(edit=True)
    if dx is None:
        assert dx_edited is None
    else:
        np.testing.assert_array_equal(dx_edited, dx, err_msg="input gradient")
    for (name, _), a, b in zip(layer.named_parameters(), grads_edited, grads):
        np.testing.assert_array_equal(a, b, err_msg=name)


# ---- against PyTorch ----------------------------------------------------------------------
def assert_close_rel(ours, ref, what, tol=1e-8):
    """``max |ours - ref| / max |ref| <= tol`` (float64 comparisons with torch), same shapes."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    err = float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-300))
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol}"


@contextlib.contextmanager
def warnings_as_errors():
    """Every Python warning and numpy floating-point warning (but underflow) raises inside."""
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        warnings.simplefilter("error")
        yield


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
