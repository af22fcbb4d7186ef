"""The update guard (minidl/training/guard.py): non-finite losses, gradients and weights, and Ctrl-C.

Non-finite values stop ``fit`` with a ``FloatingPointError`` naming epoch and batch, the
weights those of the last finite update (rolled back when the step itself made them
non-finite). Ctrl-C inside an optimizer step is held until the step ends; the SIGINT
handler is installed once per ``fit``, and only over Python's default one.
What an interrupted ``fit`` keeps (history, files, resuming) is in test_interrupt.py.
"""

import os
import signal
import threading

import numpy as np
import pytest

import minidl as mdl
from minidl.training.guard import UpdateGuard
from tests.helpers import adam_trainer, random_sequences, small_rnn_model

needs_default_handler = pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler, reason="SIGINT is not Python's default handler here"
)


def _assert_weights(model, state):
    """The model's weights are ``state`` (a state dict), bit for bit."""
    for name, value in state.items():
        np.testing.assert_array_equal(model.state_dict()[name], value, err_msg=name)


# ---- non-finite values ------------------------------------------------------------------------------
def test_non_finite_loss_stops_and_keeps_last_finite_weights():
    mdl.set_seed(8)
    model = small_rnn_model()
    x, y = random_sequences(n=6)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.01))

    class Poison(mdl.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:  # after the 2nd update, make the 3rd batch's loss infinite
                self.model.layers[-1].bias.data[...] = np.float32(3e38)
                self.snapshot = self.model.state_dict()

    poison = Poison()
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 3"):
        trainer.fit(x, y, epochs=1, batch_size=2, shuffle=False, callbacks=[poison], verbose=0)
    _assert_weights(model, poison.snapshot)


def test_states_are_reset_when_fit_stops_on_a_non_finite_loss():
    class InfAtTheThirdChunk(mdl.MSELoss):
        calls = 0

        def forward(self, pred, target):
            self.calls += 1
            return np.inf if self.calls == 3 else super().forward(pred, target)

    mdl.set_seed(19)
    model = small_rnn_model(seq=True)
    x, y = random_sequences(n=2, T=6, seq=True)
    seen = []

    rnn = model.layers[0]
    original = rnn.set_state
    rnn.set_state = lambda state: (seen.append(state is not None), original(state))
    trainer = mdl.TBPTTTrainer(model, InfAtTheThirdChunk(), mdl.SGD(model.parameters(), lr=0.1), k1=2)
    with pytest.raises(FloatingPointError, match=r"loss is inf at epoch 1, batch 1"):
        trainer.fit(x, y, batch_size=2, verbose=0)
    assert seen == [False, True, True]  # the third window started from a carried state...
    assert rnn.get_state() is None      # ...which fit reset when it stopped


def test_non_finite_gradient_stops_before_the_update():
    mdl.set_seed(9)
    model = small_rnn_model()
    x, y = random_sequences(n=4)
    before = model.state_dict()

    class NanGrad(mdl.ClipByValue):
        def __call__(self, params):
            params[0].grad[...] = np.nan
            return super().__call__(params)

    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), clipper=NanGrad(1.0))
    with pytest.raises(FloatingPointError, match=r"gradient.*epoch 1, batch 1"):
        trainer.fit(x, y, batch_size=4, verbose=0)
    _assert_weights(model, before)


def test_an_update_that_makes_weights_non_finite_is_rolled_back():
    mdl.set_seed(12)
    model = small_rnn_model()
    x, y = random_sequences(n=4)

    class Overflowing(mdl.SGD):
        def step(self):
            super().step()
            with np.errstate(over="ignore"):
                self.params[0].data *= np.float32(1e38)
                self.params[0].data *= np.float32(1e38)

    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), Overflowing(model.parameters(), lr=0.1))
    before = model.state_dict()
    with pytest.raises(FloatingPointError, match=r"update at epoch 1, batch 1 made weights non-finite"):
        trainer.fit(x, y, batch_size=4, verbose=0)
    _assert_weights(model, before)


def test_keyboard_interrupt_during_a_step_is_held_until_the_step_ends():
    """Ctrl-C arriving inside optimizer.step() is raised after the step: no half-updated parameters."""
    mdl.set_seed(13)
    model = small_rnn_model()
    x, y = random_sequences(n=4)
    seen = {}

    class InterruptedSGD(mdl.SGD):
        def step(self):
            os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of the step
            seen["before"] = [p.data.copy() for p in self.params]
            super().step()
            seen["after"] = [p.data.copy() for p in self.params]

    opt = InterruptedSGD(model.parameters(), lr=0.1)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), opt)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(x, y, epochs=3, batch_size=2, verbose=0)
    assert "after" in seen  # the step ran to its end
    for p, a in zip(model.parameters(), seen["after"]):
        np.testing.assert_array_equal(p.data, a)
    assert trainer.epoch == 0 and all(r.get_state() is None for r in model.sublayers() if isinstance(r, mdl.RNN))


class SigintInStep(mdl.SGD):
    """SGD whose every step sends SIGINT to this process first, and records what it saw."""

    def __init__(self, params, **kw):
        super().__init__(params, **kw)
        self.steps, self.seen = 0, []

    def step(self):
        os.kill(os.getpid(), signal.SIGINT)
        self.seen.append(signal.getsignal(signal.SIGINT))
        super().step()
        self.steps += 1


def _fit_with_sigint_in_steps(epochs=2):
    mdl.set_seed(15)
    model = small_rnn_model()
    x, y = random_sequences(n=4)
    opt = SigintInStep(model.parameters(), lr=0.1)
    mdl.TBPTTTrainer(model, mdl.MSELoss(), opt).fit(x, y, epochs=epochs, batch_size=2, verbose=0)
    return opt


class CountSignalCalls:
    """Wraps ``signal.signal``: records every (signum, handler) set, then sets it."""

    def __init__(self, monkeypatch):
        self.calls, self.real = [], signal.signal
        monkeypatch.setattr(signal, "signal", self)

    def __call__(self, signum, handler):
        self.calls.append((signum, handler))
        return self.real(signum, handler)


# ---- the SIGINT handler: once per fit, only over the default one ----------------------------------------
@needs_default_handler
def test_the_handler_is_installed_once_per_fit_and_the_default_put_back(monkeypatch):
    counter = CountSignalCalls(monkeypatch)
    during = []

    class Look(mdl.Callback):
        def on_batch_end(self, batch, logs=None):
            during.append(signal.getsignal(signal.SIGINT))

    mdl.set_seed(16)
    model = small_rnn_model(seq=True)
    x, y = random_sequences(n=6, seq=True)
    adam_trainer(model, k1=2).fit(x, y, epochs=3, batch_size=2, callbacks=[Look()], verbose=0)  # 27 updates
    assert len(during) == 9 and all(h is during[0] and h is not signal.default_int_handler for h in during)
    assert [c[0] for c in counter.calls] == [signal.SIGINT, signal.SIGINT]
    assert counter.calls[0][1] is during[0] and counter.calls[1][1] is signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@needs_default_handler
def test_the_default_handler_is_put_back_when_fit_raises(monkeypatch):
    mdl.set_seed(17)
    model = small_rnn_model()
    x, y = random_sequences(n=4)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=1e38), seed=0)
    with pytest.raises(FloatingPointError):
        trainer.fit(x, y, epochs=3, batch_size=2, verbose=0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("kind", ["own handler", "SIG_IGN"])
def test_a_program_handler_or_sig_ign_is_left_alone_and_nothing_is_deferred(monkeypatch, kind):
    received = []

    def own(signum, frame):  # the program's own handler: it does not raise
        received.append(signum)

    handler = own if kind == "own handler" else signal.SIG_IGN
    previous = signal.signal(signal.SIGINT, handler)
    try:
        counter = CountSignalCalls(monkeypatch)
        opt = _fit_with_sigint_in_steps()  # no KeyboardInterrupt: the program decides what SIGINT does
        assert counter.calls == []  # fit never touched the handler
        assert opt.steps == 4 and all(h is handler for h in opt.seen)
        assert signal.getsignal(signal.SIGINT) is handler
        # the program's handler ran at once, inside each step, not held until its end
        assert received == ([signal.SIGINT] * 4 if kind == "own handler" else [])
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_nothing_is_installed(monkeypatch):
    counter = CountSignalCalls(monkeypatch)
    errors = []

    def train():
        try:
            mdl.set_seed(18)
            model = small_rnn_model()
            x, y = random_sequences(n=4)
            adam_trainer(model).fit(x, y, epochs=2, batch_size=2, verbose=0)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=train)
    thread.start()
    thread.join()
    assert errors == [] and counter.calls == []


# ---- the guard on its own ---------------------------------------------------------------------------------
def _params():
    return [mdl.Parameter(np.arange(6.0).reshape(2, 3), "w"), mdl.Parameter(np.ones(3, np.float32), "b")]


def test_a_finite_step_is_kept_and_a_non_finite_one_undone():
    params = _params()
    guard = UpdateGuard(params)

    def add_one():
        for p in params:
            p.data += 1

    def overflow():
        params[0].data[0, 0] = np.inf  # after part of the update...
        params[1].data *= 0            # ...and the rest

    with guard.armed():
        guard.at(2, 4)
        guard.step(add_one, grad_norm=1.0)
        np.testing.assert_array_equal(params[0].data, np.arange(6.0).reshape(2, 3) + 1)
        with pytest.raises(FloatingPointError, match=r"^fit: the update at epoch 3, batch 5 made weights non-finite"):
            guard.step(overflow, grad_norm=1.0)
    np.testing.assert_array_equal(params[0].data, np.arange(6.0).reshape(2, 3) + 1)
    np.testing.assert_array_equal(params[1].data, np.full(3, 2.0, np.float32))
    assert params[1].data.dtype == np.float32


def test_a_non_finite_norm_or_loss_stops_before_anything_changes():
    params = _params()
    guard = UpdateGuard(params)
    steps = []
    with guard.armed():
        guard.at(0, 1)
        for norm in (float("nan"), np.float32("inf")):
            with pytest.raises(FloatingPointError, match=rf"^fit: the gradient norm is {norm} at epoch 1, batch 2; "):
                guard.step(lambda: steps.append(1), grad_norm=norm)
        assert steps == []
        assert guard.check_loss(np.float32(0.5)) == 0.5 and type(guard.check_loss(np.float64(2.0))) is float
        with pytest.raises(FloatingPointError, match=r"^fit: the loss is -inf at epoch 1, batch 2; training stopped"):
            guard.check_loss(-np.inf)


@needs_default_handler
def test_ctrl_c_outside_a_step_raises_at_once_and_inside_after_it():
    params = _params()
    guard = UpdateGuard(params)
    order = []

    def step():
        os.kill(os.getpid(), signal.SIGINT)
        order.append("step ran to its end")

    with guard.armed():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            order.append("not reached")
        with pytest.raises(KeyboardInterrupt):
            guard.step(step, grad_norm=0.0)
        guard.step(lambda: order.append("a later step"), grad_norm=0.0)  # nothing left pending
    assert order == ["step ran to its end", "a later step"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
