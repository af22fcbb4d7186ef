"""Helpers shared by the test modules: central differences of a loss, optimizer fixtures,
a pickle trap standing in for a hostile file, the fit-equals-one-manual-step check, and a
small recurrent model, its data and an Adam trainer for the trainer tests."""

import numpy as np
import pytest

import minidl as mdl


# ---- losses ---------------------------------------------------------------------------
def numeric_grad(loss, pred, target, eps=1e-6):
    """Central differences of ``loss(pred, target)`` with respect to pred (float64)."""
    out = np.empty_like(pred)
    for idx in np.ndindex(pred.shape):
        plus, minus = pred.copy(), pred.copy()
        plus[idx] += eps
        minus[idx] -= eps
        out[idx] = (loss(plus, target) - loss(minus, target)) / (2 * eps)
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


def small_rnn_model(kind=mdl.LSTMCell, seq=False, H=4, F=2, out=1):
    """``RNN(kind(F, H), return_sequences=seq)`` then ``Dense(H, out)``."""
    return mdl.Sequential([mdl.RNN(kind(F, H), return_sequences=seq), mdl.Dense(H, out)])


def random_sequences(n=10, T=6, F=2, out=1, seq=False, seed=0):
    """float32 ``x: (n, T, F)`` and ``y: (n, T, out)`` (``seq``) or ``(n, out)``, standard normal."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, T, F)).astype(np.float32)
    y = rng.standard_normal((n, T, out) if seq else (n, out)).astype(np.float32)
    return x, y


def adam_trainer(model, lr=0.05, **kw):
    """A ``TBPTTTrainer`` with ``MSELoss`` and ``Adam(lr)``; ``kw`` go to the trainer."""
    return mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=lr), **kw)
