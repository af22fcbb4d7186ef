"""The built-in callbacks in a real fit: EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, CSVLogger."""

import pytest

import minidl as mdl
from tests.helpers import adam_trainer, random_sequences, small_rnn_model


def scripted_trainer(values, callbacks, epochs):
    """A trainer whose validation loss follows ``values`` (evaluate is replaced)."""
    mdl.set_seed(0)
    model = small_rnn_model()
    trainer = adam_trainer(model, lr=0.0)
    it = iter(values)
    trainer.evaluate = lambda *a, **k: next(it)
    x, y = random_sequences(n=2)
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
    model = small_rnn_model()
    opt = mdl.SGD(model.parameters(), lr=0.08)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), opt)
    it = iter([1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5])
    trainer.evaluate = lambda *a, **k: next(it)
    x, y = random_sequences(n=2)
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


@pytest.mark.parametrize("logger_first", [True, False])
def test_csv_logger_sees_the_lr_of_a_schedule_listed_before_or_after_it(tmp_path, logger_first):
    path = tmp_path / "log.csv"
    mdl.set_seed(0)
    model = small_rnn_model()
    opt = mdl.SGD(model.parameters(), lr=0.1)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), opt, seed=0)
    logger, schedule = mdl.CSVLogger(path), mdl.StepLR(opt, step_size=1, gamma=0.5)
    x, y = random_sequences(n=2)
    hist = trainer.fit(x, y, epochs=3, batch_size=2, verbose=0,
                       callbacks=[logger, schedule] if logger_first else [schedule, logger])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,lr"
    assert [float(line.split(",")[2]) for line in lines[1:]] == [0.05, 0.025, 0.0125]
    assert hist.history["lr"] == [0.05, 0.025, 0.0125]
    assert [float(line.split(",")[1]) for line in lines[1:]] == hist.history["loss"]


# ---- ModelCheckpoint's path template: checked when the callback is built ----------------------------
@pytest.mark.parametrize("template, message", [
    ("m-{best}", r"has the field \{best\}; the fields it may hold are \{epoch\}, \{lr\}, \{loss\}, \{accuracy\}, "
                 r"\{mae\}, \{val_loss\}, \{val_accuracy\}, \{val_mae\} and the monitored metric \{val_loss\}$"),
    ("m-{}", r"has the field \{\}"),
    ("m-{0}", r"has the field \{0\}"),
    ("m-{epoch.real}", r"has the field \{epoch\.real\}"),
    ("m-{epoch[0]}", r"has the field \{epoch\[0\]\}"),
    ("m-{epoch:q}", r"bad format spec for \{epoch\}: Unknown format code 'q'"),
    ("m-{loss:{w}}", r"the format spec of \{loss\} must not hold fields"),
    ("m-{", r"is not a valid format template"),
])
def test_model_checkpoint_refuses_a_bad_template_when_built(template, message):
    with pytest.raises(ValueError, match=r"^ModelCheckpoint: path '" + template.replace("{", r"\{")
                       .replace("[", r"\[") + "'.*" + message):
        mdl.ModelCheckpoint(template)


def test_model_checkpoint_takes_every_documented_field(tmp_path):
    template = str(tmp_path / "m-{epoch:02d}-{loss:.3f}-{val_loss:.2e}-{lr}-{mae:.2f}-{val_mae}-{val_f1}.npz")
    mc = mdl.ModelCheckpoint(template, monitor="val_f1", mode="max")
    assert mc.path == template

    class F1(mdl.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_f1"], logs["lr"] = 0.5, 0.05

    mdl.set_seed(0)
    model = small_rnn_model()
    trainer = adam_trainer(model)
    x, y = random_sequences(n=2)
    h = trainer.fit(x, y, epochs=1, batch_size=2, validation_data=(x, y), metrics=("mae",), callbacks=[F1(), mc],
                    verbose=0).history
    (saved,) = tmp_path.glob("m-*.npz")
    assert saved.name == (f"m-01-{h['loss'][0]:.3f}-{h['val_loss'][0]:.2e}-0.05-{h['mae'][0]:.2f}-{h['val_mae'][0]}"
                          "-0.5.npz")


def test_model_checkpoint_field_missing_from_the_logs_is_a_clear_error(tmp_path):
    mc = mdl.ModelCheckpoint(tmp_path / "m-{val_loss:.3f}.npz")  # but no validation data
    mdl.set_seed(0)
    model = small_rnn_model()
    x, y = random_sequences(n=2)
    with pytest.raises(ValueError, match=r"^ModelCheckpoint: path '.*' uses 'val_loss', which the logs of epoch 1 "
                                         r"lack \(they hold \['loss'\]\)$"):
        adam_trainer(model).fit(x, y, epochs=1, batch_size=2, callbacks=[mc], verbose=0)
    assert not list(tmp_path.glob("m-*"))
