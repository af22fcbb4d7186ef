"""Ctrl-C during training loses nothing that was finished (the guard's deferral: test_guard.py).

A ``KeyboardInterrupt`` raised at a chosen point of ``fit`` (a callback, the loss
forward, the clipper, a real SIGINT, a checkpoint write) must leave

* the model and the optimizer exactly as after the last completed update: compared
  bit for bit with a run that stops cleanly after the same number of updates;
* ``trainer.history`` / ``trainer.epoch`` holding the completed epochs only;
* files written before (the best ``ModelCheckpoint``) intact and loadable;
* and a checkpoint saved before the interrupt resuming bit-identically to a run that
  was never interrupted.
"""

import os
import signal

import numpy as np
import pytest

import minidl as mdl

N, T, BATCH = 8, 6, 3  # 3 batches (3, 3, 2) x 3 chunks (k1=2) = 9 updates per epoch
UPDATES_PER_EPOCH = 9


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, 2)).astype(np.float32)
    y = np.cumsum(x[..., :1], axis=1).astype(np.float32) * 0.3
    return x, y


class CountingAdam(mdl.Adam):
    """Adam that counts its steps, and makes no more after ``limit`` (a clean stop)."""

    def __init__(self, params, limit=None, **kw):
        super().__init__(params, **kw)
        self.steps, self.limit = 0, limit

    def step(self):
        if self.limit is not None and self.steps >= self.limit:
            return
        super().step()
        self.steps += 1


def _setup(loss=None, clipper=None, limit=None, init_seed=5, trainer_seed=11):
    mdl.set_seed(init_seed)
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(2, 4), return_sequences=True), mdl.Dense(4, 1)])
    opt = CountingAdam(model.parameters(), limit=limit, lr=0.02)
    clipper = mdl.ClipByGlobalNorm(1.0) if clipper is None else clipper
    trainer = mdl.TBPTTTrainer(model, loss or mdl.MSELoss(), opt, clipper=clipper, k1=2, k2=3, seed=trainer_seed)
    return model, trainer


def _fit(trainer, epochs=3, **kw):
    x, y = _data()
    return trainer.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, **kw)


def _assert_same_training_state(a, b):
    """Weights and optimizer state bit-identical."""
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["config"] == sb["config"]
    for i, (ea, eb) in enumerate(zip(sa["state"], sb["state"])):
        assert ea.keys() == eb.keys(), i
        for k in ea:
            np.testing.assert_array_equal(ea[k], eb[k], err_msg=f"state[{i}][{k}]")


def _assert_states_reset(model):
    assert all(l.get_state() is None for l in model.sublayers() if isinstance(l, mdl.RNN))


class At(mdl.Callback):
    """Run ``action(trainer)`` in hook ``hook`` at (epoch, batch)."""

    def __init__(self, hook, epoch, batch, action):
        self.hook, self.where, self.action, self.epoch = hook, (epoch, batch), action, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_begin(self, batch, logs=None):
        if self.hook == "begin" and (self.epoch, batch) == self.where:
            self.action(self.trainer)

    def on_batch_end(self, batch, logs=None):
        if self.hook == "end" and (self.epoch, batch) == self.where:
            self.action(self.trainer)


def _interrupt(trainer):
    raise KeyboardInterrupt


def _stop(trainer):
    trainer.stop_training = True


# ---- from a callback --------------------------------------------------------------------------------
@pytest.mark.parametrize("epoch, batch", [(0, 0), (1, 1), (2, 2)])
def test_interrupt_from_a_callback_keeps_the_completed_updates(epoch, batch):
    model, trainer = _setup()
    with pytest.raises(KeyboardInterrupt):
        _fit(trainer, callbacks=[At("end", epoch, batch, _interrupt)])
    completed = epoch * UPDATES_PER_EPOCH + (batch + 1) * 3
    assert trainer.optimizer.steps == completed

    # the clean stop: stop_training after the same batch
    ref_model, ref = _setup()
    ref_history = _fit(ref, callbacks=[At("end", epoch, batch, _stop)])
    assert ref.optimizer.steps == completed
    _assert_same_training_state(trainer, ref)
    _assert_states_reset(model)

    # the history holds the completed epochs, with the clean run's values
    assert trainer.epoch == epoch
    assert trainer.history.epoch == list(range(epoch))
    assert trainer.history.history.get("loss", []) == ref_history.history["loss"][:epoch]


def test_interrupt_at_the_start_of_a_batch():
    """Before batch 0 of epoch 2: exactly the updates of two whole epochs."""
    model, trainer = _setup()
    with pytest.raises(KeyboardInterrupt):
        _fit(trainer, callbacks=[At("begin", 2, 0, _interrupt)])
    ref_model, ref = _setup()
    ref_history = _fit(ref, epochs=2)
    assert trainer.optimizer.steps == ref.optimizer.steps == 2 * UPDATES_PER_EPOCH
    _assert_same_training_state(trainer, ref)
    assert trainer.epoch == 2 and trainer.history.history["loss"] == ref_history.history["loss"]


def test_a_real_sigint_from_a_callback():
    """The same through the signal machinery: os.kill(SIGINT) in on_batch_end."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler here")
    model, trainer = _setup()
    with pytest.raises(KeyboardInterrupt):
        _fit(trainer, callbacks=[At("end", 1, 0, lambda t: os.kill(os.getpid(), signal.SIGINT))])
    ref_model, ref = _setup()
    _fit(ref, callbacks=[At("end", 1, 0, _stop)])
    _assert_same_training_state(trainer, ref)
    assert trainer.epoch == 1 and trainer.history.epoch == [0]


# ---- from inside an update ---------------------------------------------------------------------------
class InterruptingLoss(mdl.MSELoss):
    """Raises KeyboardInterrupt in its ``at``-th forward (1-based), before computing anything."""

    def __init__(self, at):
        super().__init__()
        self.calls, self.at = 0, at

    def forward(self, pred, target):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return super().forward(pred, target)


class InterruptingClipper(mdl.ClipByGlobalNorm):
    """Raises in its ``at``-th call: after backward, before the optimizer step."""

    def __init__(self, at):
        super().__init__(1.0)
        self.calls, self.at = 0, at

    def __call__(self, params):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return super().__call__(params)


@pytest.mark.parametrize("where", ["loss", "clipper"])
@pytest.mark.parametrize("at", [1, 5, 10, 17])  # 5, 17: mid-batch; 10: first chunk of epoch 2
def test_interrupt_inside_an_update_keeps_the_previous_ones(where, at):
    kw = {"loss": InterruptingLoss(at)} if where == "loss" else {"clipper": InterruptingClipper(at)}
    model, trainer = _setup(**kw)
    with pytest.raises(KeyboardInterrupt):
        _fit(trainer)
    assert trainer.optimizer.steps == at - 1
    # the clean reference: an optimizer that makes no more steps after at - 1
    ref_model, ref = _setup(limit=at - 1)
    ref_history = _fit(ref)
    _assert_same_training_state(trainer, ref)
    _assert_states_reset(model)
    done = (at - 1) // UPDATES_PER_EPOCH  # epochs completed before the interrupt
    assert trainer.epoch == done and trainer.history.epoch == list(range(done))
    assert trainer.history.history.get("loss", []) == ref_history.history["loss"][:done]


# ---- files ---------------------------------------------------------------------------------------------
class Snapshots(mdl.Callback):
    """The weights and logs at every epoch end."""

    def __init__(self):
        self.weights, self.val = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.state_dict())
        self.val.append(logs["val_loss"])


def test_best_model_checkpoint_survives_an_interrupt(tmp_path):
    x, y = _data()
    path = tmp_path / "best.npz"
    snaps = Snapshots()
    model, trainer = _setup()
    callbacks = [snaps, mdl.ModelCheckpoint(path, save_best_only=True), At("end", 3, 1, _interrupt)]
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(x, y, epochs=6, batch_size=BATCH, validation_data=(x[:4], y[:4]), callbacks=callbacks, verbose=0)
    assert len(snaps.val) == 3 and trainer.epoch == 3
    best = int(np.argmin(snaps.val))
    loaded = mdl.load_model(path)
    for k, v in snaps.weights[best].items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v, err_msg=k)
    assert sorted(os.listdir(tmp_path)) == ["best.npz"]


def test_interrupt_while_the_best_model_is_written(tmp_path, monkeypatch):
    """Ctrl-C inside the write of a new best file: the previous best stays, no temporary left."""
    x, y = _data()
    path = tmp_path / "best.npz"
    snaps = Snapshots()
    model, trainer = _setup()
    writes = []
    real_savez = np.savez

    def interrupted_savez(file, *args, **kwargs):
        writes.append(1)
        if len(writes) == 2:  # the second best file: half written, then Ctrl-C
            file.write(b"PK\x03\x04 half an archive")
            raise KeyboardInterrupt
        return real_savez(file, *args, **kwargs)

    monkeypatch.setattr(np, "savez", interrupted_savez)
    # val_loss on the training data falls steadily here, so every epoch is a new best
    callbacks = [snaps, mdl.ModelCheckpoint(path, save_best_only=True)]
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(x, y, epochs=4, batch_size=BATCH, validation_data=(x, y), callbacks=callbacks, verbose=0)
    monkeypatch.undo()
    assert len(writes) == 2 and snaps.val[1] < snaps.val[0]
    assert sorted(os.listdir(tmp_path)) == ["best.npz"]
    loaded = mdl.load_model(path)  # the first epoch's model, intact
    for k, v in snaps.weights[0].items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v, err_msg=k)


# ---- resuming --------------------------------------------------------------------------------------------
class SaveEveryEpoch(mdl.Callback):
    def __init__(self, path):
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        self.trainer.save_checkpoint(self.path)


@pytest.mark.parametrize("into", ["same trainer", "fresh trainer"])
def test_resume_after_interrupt_is_bit_identical(tmp_path, into):
    total = 4
    _, uninterrupted = _setup()
    _fit(uninterrupted, epochs=total)

    path = tmp_path / "ckpt.npz"
    model, trainer = _setup()
    with pytest.raises(KeyboardInterrupt):
        _fit(trainer, epochs=total, callbacks=[SaveEveryEpoch(path), At("end", 2, 1, _interrupt)])
    if into == "fresh trainer":  # another process: other initial weights, another seed
        model, trainer = _setup(init_seed=99, trainer_seed=123)
    trainer.load_checkpoint(path)
    assert trainer.epoch == 2
    _fit(trainer, epochs=total - trainer.epoch)
    assert trainer.epoch == total
    _assert_same_training_state(trainer, uninterrupted)


def test_interrupt_in_a_resumed_run_then_resume_again(tmp_path):
    """Two interrupts, two resumes: still the uninterrupted weights."""
    _, uninterrupted = _setup()
    _fit(uninterrupted, epochs=5)
    path = tmp_path / "ckpt.npz"
    _, trainer = _setup()
    with pytest.raises(KeyboardInterrupt):
        _fit(trainer, epochs=5, callbacks=[SaveEveryEpoch(path), At("end", 1, 2, _interrupt)])
    _, trainer = _setup(init_seed=1)
    trainer.load_checkpoint(path)
    with pytest.raises(KeyboardInterrupt):
        _fit(trainer, epochs=5 - trainer.epoch, callbacks=[SaveEveryEpoch(path), At("begin", 3, 1, _interrupt)])
    _, trainer = _setup(init_seed=2)
    trainer.load_checkpoint(path)
    assert trainer.epoch == 3
    _fit(trainer, epochs=2)
    _assert_same_training_state(trainer, uninterrupted)


# ---- known gap -----------------------------------------------------------------------------------------------
def test_epoch_count_and_history_agree_inside_epoch_end_callbacks(tmp_path):
    class SaveThenInterrupt(mdl.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.trainer.save_checkpoint(tmp_path / "ckpt.npz")
            if epoch == 1:
                raise KeyboardInterrupt

    model, trainer = _setup()
    with pytest.raises(KeyboardInterrupt):
        _fit(trainer, callbacks=[SaveThenInterrupt()])
    assert trainer.epoch == 2  # both epochs' updates are complete and counted
    resumed = _setup()[1]
    resumed.load_checkpoint(tmp_path / "ckpt.npz")
    assert resumed.epoch == 2
    assert len(resumed.history.epoch) == resumed.epoch  # the checkpoint's history lacks epoch 1
    assert len(trainer.history.epoch) == trainer.epoch
