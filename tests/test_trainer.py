"""TBPTTTrainer: batches, history, validation, checkpoints, non-finite loss, callbacks, errors."""

import io
import math

import numpy as np
import pytest

import minidl as mdl
from minidl.training.progress import Progress


def make_model(kind=mdl.LSTMCell, seq=False, H=4, F=2, out=1):
    return mdl.Sequential([mdl.RNN(kind(F, H), return_sequences=seq), mdl.Dense(H, out)])


def make_data(n=10, T=6, F=2, out=1, seq=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, T, F)).astype(np.float32)
    y = rng.standard_normal((n, T, out) if seq else (n, out)).astype(np.float32)
    return x, y


def make_trainer(model, lr=0.05, **kw):
    return mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=lr), **kw)


def test_fit_lowers_the_loss_and_records_history():
    mdl.set_seed(1)
    model = make_model(seq=True)
    x, y = make_data(seq=True)
    y = np.cumsum(x[..., :1], axis=1) * 0.3  # learnable: a running sum
    trainer = make_trainer(model, k1=3, k2=5, seed=0)
    hist = trainer.fit(x, y, epochs=15, batch_size=4, validation_data=(x, y), verbose=0)
    assert hist.epoch == list(range(15)) and trainer.epoch == 15
    assert len(hist.history["loss"]) == len(hist.history["val_loss"]) == 15
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    assert math.isclose(hist.history["val_loss"][-1], trainer.evaluate(x, y), rel_tol=1e-6)


def test_evaluate_is_the_mse_of_predictions_and_leaves_no_state():
    mdl.set_seed(2)
    model = make_model(kind=mdl.GRUCell)
    x, y = make_data(n=7)
    trainer = make_trainer(model)
    expected = float(np.mean((model.predict(x) - y) ** 2))
    assert math.isclose(trainer.evaluate(x, y, batch_size=3), expected, rel_tol=1e-5)
    assert all(r.get_state() is None for r in model.sublayers() if isinstance(r, mdl.RNN))


def test_smaller_last_batch_and_shorter_last_chunk_just_work():
    mdl.set_seed(3)
    model = make_model(seq=True)
    x, y = make_data(n=7, T=7, seq=True)  # batches 3, 3, 1; chunks 3, 3, 1
    hist = make_trainer(model, k1=3, k2=4).fit(x, y, epochs=2, batch_size=3, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


def test_updates_per_batch_count():
    """Many-to-many: one optimizer step per chunk; many-to-one: one per batch."""
    mdl.set_seed(4)
    steps = []

    class Counting(mdl.SGD):
        def step(self):
            steps.append(1)
            super().step()

    model = make_model(seq=True)
    x, y = make_data(n=5, T=7, seq=True)
    mdl.TBPTTTrainer(model, mdl.MSELoss(), Counting(model.parameters(), lr=0.01), k1=3, k2=5).fit(
        x, y, batch_size=2, verbose=0)
    assert len(steps) == 3 * 3  # 3 batches x ceil(7 / 3) chunks
    steps.clear()
    model = make_model()
    x, y = make_data(n=5, T=7)
    mdl.TBPTTTrainer(model, mdl.MSELoss(), Counting(model.parameters(), lr=0.01), k1=3, k2=5).fit(
        x, y, batch_size=2, verbose=0)
    assert len(steps) == 3


def test_shuffle_is_driven_by_the_seed():
    x, y = make_data(n=9)
    results = []
    for seed in (5, 5, 6):
        mdl.set_seed(0)
        model = make_model()
        make_trainer(model, seed=seed).fit(x, y, epochs=2, batch_size=2, verbose=0)
        results.append(model.state_dict())
    for k in results[0]:
        np.testing.assert_array_equal(results[0][k], results[1][k])
    assert any(not np.array_equal(results[0][k], results[2][k]) for k in results[0])


@pytest.mark.parametrize("seq", [False, True])
def test_checkpoint_resume_is_bit_identical(tmp_path, seq):
    x, y = make_data(n=9, T=6, seq=seq)
    clip = mdl.ClipByGlobalNorm(1.0)

    def fresh():
        mdl.set_seed(7)
        model = make_model(seq=seq)
        return model, make_trainer(model, clipper=clip, k1=2, k2=3, seed=11)

    model_a, trainer_a = fresh()
    trainer_a.fit(x, y, epochs=5, batch_size=4, verbose=0)

    model_b, trainer_b = fresh()
    trainer_b.fit(x, y, epochs=2, batch_size=4, verbose=0)
    path = tmp_path / "ckpt.npz"
    trainer_b.save_checkpoint(path)
    trainer_b.fit(x, y, epochs=1, batch_size=4, verbose=0)  # diverge, then restore

    mdl.set_seed(999)  # a different fresh start must not matter
    model_c = make_model(seq=seq)
    trainer_c = make_trainer(model_c, clipper=clip, k1=2, k2=3, seed=123)
    trainer_c.load_checkpoint(path)
    assert trainer_c.epoch == 2
    assert trainer_c.history.epoch == [0, 1] and len(trainer_c.history.history["loss"]) == 2  # the fit before saving
    trainer_c.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert trainer_c.epoch == 5
    for k, v in model_a.state_dict().items():
        np.testing.assert_array_equal(model_c.state_dict()[k], v, err_msg=k)


def test_checkpoint_that_does_not_fit_is_a_clear_error(tmp_path):
    x, y = make_data()
    mdl.set_seed(0)
    model = make_model()
    trainer = make_trainer(model)
    trainer.fit(x, y, verbose=0)
    path = tmp_path / "c.npz"
    trainer.save_checkpoint(path)
    other = make_model(H=5)
    with pytest.raises(ValueError, match="c.npz"):
        make_trainer(other).load_checkpoint(path)
    with pytest.raises(ValueError, match="k1"):
        make_trainer(make_model(), k1=2).load_checkpoint(path)


def test_non_finite_loss_stops_and_keeps_last_finite_weights():
    mdl.set_seed(8)
    model = make_model()
    x, y = make_data(n=6)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.01))

    class Poison(mdl.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:  # after the 2nd update, make the 3rd batch's loss infinite
                self.model.layers[-1].bias.data[...] = np.float32(3e38)
                self.snapshot = self.model.state_dict()

    poison = Poison()
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 3"):
        trainer.fit(x, y, epochs=1, batch_size=2, shuffle=False, callbacks=[poison], verbose=0)
    for k, v in poison.snapshot.items():
        np.testing.assert_array_equal(model.state_dict()[k], v)


def test_non_finite_gradient_stops_before_the_update():
    mdl.set_seed(9)
    model = make_model()
    x, y = make_data(n=4)
    before = model.state_dict()

    class NanGrad(mdl.ClipByValue):
        def __call__(self, params):
            params[0].grad[...] = np.nan
            return super().__call__(params)

    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), clipper=NanGrad(1.0))
    with pytest.raises(FloatingPointError, match=r"gradient.*epoch 1, batch 1"):
        trainer.fit(x, y, batch_size=4, verbose=0)
    for k, v in before.items():
        np.testing.assert_array_equal(model.state_dict()[k], v)


class Recorder(mdl.Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, logs=None): self.events.append("train_begin")
    def on_train_end(self, logs=None): self.events.append("train_end")
    def on_epoch_begin(self, epoch, logs=None): self.events.append(f"epoch_begin {epoch}")
    def on_epoch_end(self, epoch, logs=None): self.events.append(f"epoch_end {epoch} {sorted(logs)}")
    def on_batch_begin(self, batch, logs=None): self.events.append(f"batch_begin {batch}")
    def on_batch_end(self, batch, logs=None): self.events.append(f"batch_end {batch}")


def test_callback_hooks_in_order_and_a_callback_can_stop():
    mdl.set_seed(10)
    model = make_model()
    x, y = make_data(n=4)
    rec = Recorder()
    make_trainer(model).fit(x, y, epochs=2, batch_size=3, validation_data=(x, y), callbacks=[rec], verbose=0)
    assert rec.events == [
        "train_begin",
        "epoch_begin 0", "batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1", "epoch_end 0 ['loss', 'val_loss']",
        "epoch_begin 1", "batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1", "epoch_end 1 ['loss', 'val_loss']",
        "train_end",
    ]

    class StopAfterFirstBatch(mdl.Callback):
        def on_batch_end(self, batch, logs=None):
            self.trainer.stop_training = True

    trainer = make_trainer(model)
    hist = trainer.fit(x, y, epochs=5, batch_size=1, callbacks=[StopAfterFirstBatch()], verbose=0)
    assert hist.epoch == [0] and trainer.epoch == trainer.epoch


def scripted_trainer(values, callbacks, epochs):
    """A trainer whose validation loss follows ``values`` (evaluate is replaced)."""
    mdl.set_seed(0)
    model = make_model()
    trainer = make_trainer(model, lr=0.0)
    it = iter(values)
    trainer.evaluate = lambda *a, **k: next(it)
    x, y = make_data(n=2)
    hist = trainer.fit(x, y, epochs=epochs, batch_size=2, validation_data=(x, y), callbacks=callbacks, verbose=0)
    return trainer, hist


def test_early_stopping_patience_and_restore_best_weights():
    es = mdl.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)

    class Mark(mdl.Callback):  # write the epoch number into a weight, so we can tell which was restored
        def on_epoch_end(self, epoch, logs=None):
            self.model.layers[-1].bias.data[...] = epoch

    _, hist = scripted_trainer([5.0, 3.0, 4.0, 2.9999, 6.0, 7.0, 1.0], [Mark(), es], epochs=7)
    assert hist.epoch == [0, 1, 2, 3, 4, 5]  # best at 3, no improvement at 4 and 5 -> stop
    assert es.best_epoch == 3 and es.stopped_epoch == 5
    assert es.model.layers[-1].bias.data[0] == 3.0
    es2 = mdl.EarlyStopping(patience=1, min_delta=0.5)
    _, hist = scripted_trainer([5.0, 4.8, 4.7, 1.0], [es2], epochs=4)
    assert hist.epoch == [0, 1]  # 4.8 is not better than 5.0 by more than 0.5


def test_reduce_lr_on_plateau():
    cb = mdl.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=0.01)
    mdl.set_seed(0)
    model = make_model()
    opt = mdl.SGD(model.parameters(), lr=0.08)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), opt)
    it = iter([1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5])
    trainer.evaluate = lambda *a, **k: next(it)
    x, y = make_data(n=2)
    hist = trainer.fit(x, y, epochs=8, batch_size=2, validation_data=(x, y), callbacks=[cb], verbose=0)
    # no improvement at epochs 1, 2 -> 0.04 from epoch 2; 3, 4 -> 0.02; better at 5; 6, 7 -> 0.01 (min_lr)
    assert hist.history["lr"] == pytest.approx([0.08, 0.08, 0.04, 0.04, 0.02, 0.02, 0.02, 0.01])
    assert opt.lr == pytest.approx(0.01)


def test_model_checkpoint_saves_best_only(tmp_path):
    path = tmp_path / "best.npz"
    mc = mdl.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)

    class Mark(mdl.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.layers[-1].bias.data[...] = epoch

    scripted_trainer([3.0, 1.0, 2.0, 5.0], [Mark(), mc], epochs=4)
    loaded = mdl.load_model(path)
    assert loaded.layers[-1].bias.data[0] == 1.0
    every = mdl.ModelCheckpoint(tmp_path / "e{epoch:02d}.npz", save_best_only=False)
    scripted_trainer([3.0, 1.0], [every], epochs=2)
    assert sorted(p.name for p in tmp_path.glob("e*.npz")) == ["e01.npz", "e02.npz"]


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    scripted_trainer([0.5, 0.25], [mdl.CSVLogger(path)], epochs=2)
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,val_loss"
    assert [l.split(",")[0] for l in lines[1:]] == ["0", "1"]
    assert [float(l.split(",")[2]) for l in lines[1:]] == [0.5, 0.25]


def test_progress_lines_when_not_a_terminal():
    stream = io.StringIO()
    p = Progress(1, epochs=2, batches=3, stream=stream)
    p.epoch_begin(0, 1)
    p.batch_end(0.5)
    p.epoch_end(1, {"loss": 0.25, "val_loss": 0.125})
    out = stream.getvalue()
    assert out.count("\n") == 1 and "Epoch 1/2" in out and "loss: 0.25" in out and "val_loss: 0.125" in out
    silent = io.StringIO()
    q = Progress(0, 1, 1, stream=silent)
    q.epoch_begin(0, 1)
    q.epoch_end(1, {"loss": 1.0})
    assert silent.getvalue() == ""


def test_verbose_2_prints_one_line_per_epoch(capsys):
    mdl.set_seed(0)
    model = make_model()
    x, y = make_data(n=4)
    make_trainer(model).fit(x, y, epochs=3, batch_size=2, verbose=2)
    err = capsys.readouterr().err
    assert [l.split(" - ")[0] for l in err.strip().splitlines()] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]


BAD = [
    (lambda m: mdl.TBPTTTrainer(m, mdl.MSELoss(), mdl.SGD(m.parameters(), lr=0.1), k1=5, k2=3), ValueError, r"k2 must be >= k1.*k1=5, k2=3"),
    (lambda m: mdl.TBPTTTrainer(m, mdl.MSELoss(), mdl.SGD(m.parameters(), lr=0.1), k1=0), ValueError, r"k1 must be >= 1, got 0"),
    (lambda m: mdl.TBPTTTrainer(m, mdl.MSELoss(), mdl.SGD(m.parameters(), lr=0.1), k2=2.5), TypeError, r"k2 must be an int"),
    (lambda m: mdl.TBPTTTrainer("model", mdl.MSELoss(), mdl.SGD(m.parameters(), lr=0.1)), TypeError, r"model must be a Layer"),
    (lambda m: mdl.TBPTTTrainer(m, "mse", mdl.SGD(m.parameters(), lr=0.1)), TypeError, r"loss must have forward"),
    (lambda m: mdl.TBPTTTrainer(m, mdl.MSELoss(), None), TypeError, r"optimizer must have step"),
    (lambda m: mdl.TBPTTTrainer(m, mdl.MSELoss(), mdl.SGD(m.parameters(), lr=0.1), seed=-1), ValueError, r"seed must be a non-negative int or None, got -1"),
    (lambda m: mdl.TBPTTTrainer(m, mdl.MSELoss(), mdl.SGD(m.parameters(), lr=0.1), seed="0"), TypeError, r"seed must be a non-negative int"),
]


@pytest.mark.parametrize("make,exc,msg", BAD)
def test_bad_trainer_arguments(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make(make_model())


BAD_FIT = [
    (dict(x=np.zeros((4, 6))), ValueError, r"x must be \(batch, time, features\), got shape \(4, 6\)"),
    (dict(y=np.zeros((3, 1))), ValueError, r"same number of samples, got 4 and 3"),
    (dict(y=np.zeros((4, 5, 1))), ValueError, r"y has 5 steps but x has 6"),
    (dict(y=np.zeros(4)), ValueError, r"y must be \(batch, out\).*got shape \(4,\)"),
    (dict(x=np.full((4, 6, 2), "a")), TypeError, r"x must be a real numeric array"),
    (dict(x=np.full((4, 6, 2), np.nan)), ValueError, r"x contains NaN"),
    (dict(batch_size=0), ValueError, r"batch_size must be >= 1, got 0"),
    (dict(verbose=3), ValueError, r"verbose must be 0, 1 or 2"),
    (dict(validation_data=np.zeros(3)), TypeError, r"validation_data must be a tuple"),
    (dict(callbacks=["x"]), TypeError, r"callbacks\[0\] must be a Callback"),
]


@pytest.mark.parametrize("kwargs,exc,msg", BAD_FIT)
def test_bad_fit_arguments(kwargs, exc, msg):
    model = make_model()
    x, y = make_data(n=4)
    args = dict(x=x, y=y, verbose=0)
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        make_trainer(model).fit(**args)


def test_many_to_many_target_with_many_to_one_model_is_explained():
    model = make_model(seq=False)
    x, y = make_data(n=4, seq=True)
    with pytest.raises(ValueError, match="return_sequences=True"):
        make_trainer(model).fit(x, y, verbose=0)


def test_an_update_that_makes_weights_non_finite_is_rolled_back():
    mdl.set_seed(12)
    model = make_model()
    x, y = make_data(n=4)

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
    for k, v in before.items():
        np.testing.assert_array_equal(model.state_dict()[k], v)


def test_keyboard_interrupt_during_a_step_is_held_until_the_step_ends():
    """Ctrl-C arriving inside optimizer.step() is raised after the step: no half-updated parameters."""
    import os
    import signal

    mdl.set_seed(13)
    model = make_model()
    x, y = make_data(n=4)
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


def test_class_index_targets_with_cross_entropy():
    """Integer targets (batch, time) are class indices: many-to-many with CrossEntropyLoss; (batch,) many-to-one."""
    mdl.set_seed(14)
    x, _ = make_data(n=6, T=5, F=2)
    y_seq = (x[..., 0] > 0).astype(np.int64)            # (6, 5): class of each step
    model = make_model(seq=True, out=2)
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), mdl.Adam(model.parameters(), lr=0.05), k1=2, k2=3)
    hist = trainer.fit(x, y_seq, epochs=30, batch_size=3, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    expected = mdl.CrossEntropyLoss()(model.predict(x), y_seq)
    assert math.isclose(trainer.evaluate(x, y_seq), expected, rel_tol=1e-5)

    y_last = y_seq[:, -1]                                # (6,): many-to-one
    model = make_model(seq=False, out=2)
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), mdl.Adam(model.parameters(), lr=0.05))
    hist = trainer.fit(x, y_last, epochs=30, batch_size=6, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    with pytest.raises(ValueError, match=r"class indices, got shape \(6, 5, 1\)"):
        trainer.fit(x, y_seq[..., None], verbose=0)
