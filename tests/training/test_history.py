"""History (minidl/training/history.py): the per-epoch record that fit returns."""

import numpy as np

import minidl as mdl
from tests.helpers import adam_trainer, random_sequences, small_rnn_model


def test_record_and_read_back():
    h = mdl.History()
    h.record(3, {"loss": np.float32(0.5), "val_loss": 0.25})
    h.record(4, {"loss": 0.125})                  # an epoch without val_loss
    h.record(5, {"lr": 0.1, "loss": 0.0625})      # a key that appears late
    assert h.epoch == [3, 4, 5]
    assert h.history == {"loss": [0.5, 0.125, 0.0625], "val_loss": [0.25, None, None], "lr": [None, None, 0.1]}
    assert list(h.history) == ["loss", "val_loss", "lr"]  # keys in the order they first appear
    assert all(type(v) is float for v in h.history["loss"])
    assert repr(h) == "History(epochs=3, keys=['loss', 'lr', 'val_loss'])"


def test_setting_history_rebuilds_the_records():
    h = mdl.History()
    h.epoch = [0, 1]
    h.history = {"loss": [1.0, 0.5], "val_loss": [2.0, None]}
    assert h.history == {"loss": [1.0, 0.5], "val_loss": [2.0, None]}
    h.record(2, {"loss": 0.25, "val_loss": 1.0})
    assert h.history == {"loss": [1.0, 0.5, 0.25], "val_loss": [2.0, None, 1.0]}


def test_fit_returns_this_calls_history_as_trainer_history():
    mdl.set_seed(0)
    model = small_rnn_model()
    x, y = random_sequences(n=4)
    trainer = adam_trainer(model)
    first = trainer.fit(x, y, epochs=2, batch_size=2, validation_data=(x, y), verbose=0)
    second = trainer.fit(x, y, epochs=1, batch_size=2, verbose=0)
    assert trainer.history is second and first is not second
    assert first.epoch == [0, 1] and second.epoch == [2]  # numbered across calls
    assert sorted(first.history) == ["loss", "val_loss"] and list(second.history) == ["loss"]
