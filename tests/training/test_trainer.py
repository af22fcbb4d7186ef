"""TBPTTTrainer: batches, history, validation, hooks, class-index targets, bad arguments."""

import math

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import adam_trainer, random_sequences, small_rnn_model
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, BAD_X, BAD_Y, bad_trainer, bad_fit


def test_fit_lowers_the_loss_and_records_history():
    mdl.set_seed(1)
    model = small_rnn_model(seq=True)
    x, y = random_sequences(seq=True)
    y = np.cumsum(x[..., :1], axis=1) * 0.3  # learnable: a running sum
    trainer = adam_trainer(model, k1=3, k2=5, seed=0)
    hist = trainer.fit(x, y, epochs=15, batch_size=4, validation_data=(x, y), verbose=0)
    assert hist.epoch == list(range(15)) and trainer.epoch == 15
    assert len(hist.history["loss"]) == len(hist.history["val_loss"]) == 15
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    assert math.isclose(hist.history["val_loss"][-1], trainer.evaluate(x, y), rel_tol=1e-6)


def test_evaluate_is_the_mse_of_predictions_and_leaves_no_state():
    mdl.set_seed(2)
    model = small_rnn_model(kind=mdl.GRUCell)
    x, y = random_sequences(n=7)
    trainer = adam_trainer(model)
    expected = float(np.mean((model.predict(x) - y) ** 2))
    assert math.isclose(trainer.evaluate(x, y, batch_size=3), expected, rel_tol=1e-5)
    assert all(r.get_state() is None for r in model.sublayers() if isinstance(r, mdl.RNN))


def test_smaller_last_batch_and_shorter_last_chunk_just_work():
    mdl.set_seed(3)
    model = small_rnn_model(seq=True)
    x, y = random_sequences(n=7, T=7, seq=True)  # batches 3, 3, 1; chunks 3, 3, 1
    hist = adam_trainer(model, k1=3, k2=4).fit(x, y, epochs=2, batch_size=3, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


def test_updates_per_batch_count():
    """Many-to-many: one optimizer step per chunk; many-to-one: one per batch."""
    mdl.set_seed(4)
    steps = []

    class Counting(mdl.SGD):
        def step(self):
            steps.append(1)
            super().step()

    model = small_rnn_model(seq=True)
    x, y = random_sequences(n=5, T=7, seq=True)
    mdl.TBPTTTrainer(model, mdl.MSELoss(), Counting(model.parameters(), lr=0.01), k1=3, k2=5).fit(
        x, y, batch_size=2, verbose=0)
    assert len(steps) == 3 * 3  # 3 batches x ceil(7 / 3) chunks
    steps.clear()
    model = small_rnn_model()
    x, y = random_sequences(n=5, T=7)
    mdl.TBPTTTrainer(model, mdl.MSELoss(), Counting(model.parameters(), lr=0.01), k1=3, k2=5).fit(
        x, y, batch_size=2, verbose=0)
    assert len(steps) == 3


def test_shuffle_is_driven_by_the_seed():
    x, y = random_sequences(n=9)
    results = []
    for seed in (5, 5, 6):
        mdl.set_seed(0)
        model = small_rnn_model()
        adam_trainer(model, seed=seed).fit(x, y, epochs=2, batch_size=2, verbose=0)
        results.append(model.state_dict())
    for k in results[0]:
        np.testing.assert_array_equal(results[0][k], results[1][k])
    assert any(not np.array_equal(results[0][k], results[2][k]) for k in results[0])


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
    model = small_rnn_model()
    x, y = random_sequences(n=4)
    rec = Recorder()
    adam_trainer(model).fit(x, y, epochs=2, batch_size=3, validation_data=(x, y), callbacks=[rec], verbose=0)
    assert rec.events == [
        "train_begin",
        "epoch_begin 0", "batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1", "epoch_end 0 ['loss', 'val_loss']",
        "epoch_begin 1", "batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1", "epoch_end 1 ['loss', 'val_loss']",
        "train_end",
    ]

    class StopAfterFirstBatch(mdl.Callback):
        def on_batch_end(self, batch, logs=None):
            self.trainer.stop_training = True

    trainer = adam_trainer(model)
    hist = trainer.fit(x, y, epochs=5, batch_size=1, callbacks=[StopAfterFirstBatch()], verbose=0)
    assert hist.epoch == [0] and trainer.epoch == trainer.epoch


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
        make(small_rnn_model())


BAD_FIT = [
    (dict(x=np.zeros((4, 6))), ValueError, r"x must be \(batch, time, features\), got shape \(4, 6\)"),
    (dict(y=np.zeros((3, 1))), ValueError, r"same number of samples, got 4 and 3"),
    (dict(y=np.zeros((4, 5, 1))), ValueError, r"y has a time axis \(many-to-many\) but the model output has shape \(4, 1\)"),
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
    model = small_rnn_model()
    x, y = random_sequences(n=4)
    args = dict(x=x, y=y, verbose=0)
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        adam_trainer(model).fit(**args)


def test_targets_of_another_length_than_the_output_are_explained():
    model = small_rnn_model(seq=True)
    x, _ = random_sequences(n=4)
    y = np.zeros((4, 5, 1), np.float32)  # x has 6 steps
    with pytest.raises(ValueError, match=r"^fit: y has 5 steps but the model's output has 6 \(x has 6\); "
                       r"y read as real-valued targets because the loss is MSELoss$"):
        adam_trainer(model).fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"^fit: y has 5 steps but x has 6 \(truncated many-to-many needs the same\); "
                       r"y read as real-valued targets because the loss is MSELoss$"):
        adam_trainer(model, k1=2).fit(x, y, verbose=0)


def test_many_to_many_target_with_many_to_one_model_is_explained():
    model = small_rnn_model(seq=False)
    x, y = random_sequences(n=4, seq=True)
    with pytest.raises(ValueError, match="return_sequences=True"):
        adam_trainer(model).fit(x, y, verbose=0)


def test_class_index_targets_with_cross_entropy():
    """Integer targets (batch, time) are class indices: many-to-many with CrossEntropyLoss; (batch,) many-to-one."""
    mdl.set_seed(14)
    x, _ = random_sequences(n=6, T=5, F=2)
    y_seq = (x[..., 0] > 0).astype(np.int64)            # (6, 5): class of each step
    model = small_rnn_model(seq=True, out=2)
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), mdl.Adam(model.parameters(), lr=0.05), k1=2, k2=3)
    hist = trainer.fit(x, y_seq, epochs=30, batch_size=3, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    expected = mdl.CrossEntropyLoss()(model.predict(x), y_seq)
    assert math.isclose(trainer.evaluate(x, y_seq), expected, rel_tol=1e-5)

    y_last = y_seq[:, -1]                                # (6,): many-to-one
    model = small_rnn_model(seq=False, out=2)
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), mdl.Adam(model.parameters(), lr=0.05))
    hist = trainer.fit(x, y_last, epochs=30, batch_size=6, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    with pytest.raises(ValueError, match=r"class indices, got shape \(6, 5, 1\)"):
        trainer.fit(x, y_seq[..., None], verbose=0)


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("fit_x_complex", lambda: bad_fit(x=BAD_X + 0j),
         TypeError, r"^fit: x must be a real numeric array, got dtype complex"),
    ("fit_y_object", lambda: bad_fit(y=BAD_Y.astype(object)),
         TypeError, r"^fit: y must be a real numeric array, got dtype object"),
    ("fit_x_ragged_list", lambda: bad_fit(x=[[[1.0]], [[1.0, 2.0]]], y=BAD_Y[:2]),
         TypeError, r"^fit: x must be a numeric array, got list"),
    ("fit_y_inf", lambda: bad_fit(y=np.full_like(BAD_Y, np.inf)),
         ValueError, r"^fit: y contains NaN or infinite values"),
    ("fit_x_minus_inf", lambda: bad_fit(x=np.full_like(BAD_X, -np.inf)),
         ValueError, r"^fit: x contains NaN or infinite values"),
    ("fit_validation_y_nan", lambda: bad_fit(validation_data=(BAD_X, np.full_like(BAD_Y, np.nan))),
         ValueError, r"^fit: validation y contains NaN or infinite values"),
    ("fit_validation_x_strings", lambda: bad_fit(validation_data=(BAD_X.astype(str), BAD_Y)),
         TypeError, r"^fit: validation x must be a real numeric array, got dtype <U"),
    ("fit_validation_quadruple", lambda: bad_fit(validation_data=(BAD_X, BAD_Y, None, None)),
         TypeError, r"^fit: validation_data must be a tuple \(x_val, y_val\)"),
    ("fit_no_samples", lambda: bad_fit(x=BAD_X[:0], y=BAD_Y[:0]),
         ValueError, r"^fit: x and y must not be empty, got shapes \(0, 5, 2\) and \(0, 1\)"),
    ("fit_no_steps", lambda: bad_fit(x=BAD_X[:, :0]),
         ValueError, r"^fit: x and y must not be empty, got shapes \(4, 0, 2\) and \(4, 1\)"),
    ("fit_negative_epochs", lambda: bad_fit(epochs=-1),
         ValueError, r"^fit: epochs must be >= 0, got -1"),
    ("fit_float_epochs", lambda: bad_fit(epochs=1.5),
         TypeError, r"^fit: epochs must be an int, got 1\.5 \(float\)"),
    ("fit_zero_float_epochs", lambda: bad_fit(epochs=0.0),
         TypeError, r"^fit: epochs must be an int, got 0\.0 \(float\)$"),
    ("fit_numpy_float_epochs", lambda: bad_fit(epochs=np.float64(2.0)),
         TypeError, r"^fit: epochs must be an int, got np\.float64\(2\.0\) \(float64\)$"),
    ("fit_bool_epochs", lambda: bad_fit(epochs=True),
         TypeError, r"^fit: epochs must be an int, got True \(bool\)$"),
    ("evaluate_float_batch_size", lambda: bad_trainer().evaluate(BAD_X, BAD_Y, batch_size=2.0),
         TypeError, r"^evaluate: batch_size must be an int, got 2\.0 \(float\)$"),
    ("fit_bool_batch_size", lambda: bad_fit(batch_size=True),
         TypeError, r"^fit: batch_size must be an int, got True \(bool\)"),
    ("fit_shuffle_string", lambda: bad_fit(shuffle="yes"),
         TypeError, r"^fit: shuffle must be a bool, got 'yes'"),
    ("fit_many_to_many_k2_without_k1", lambda: bad_trainer(k2=2).fit(BAD_X, np.zeros((4, 5, 1)), verbose=0),
         ValueError, r"^fit: many-to-many training with k2=2 needs k1 <= k2.*pass k1"),
    ("evaluate_nan", lambda: bad_trainer().evaluate(np.full_like(BAD_X, np.nan), BAD_Y),
         ValueError, r"x contains NaN or infinite values"),
    ("evaluate_zero_batch", lambda: bad_trainer().evaluate(BAD_X, BAD_Y, batch_size=0),
         ValueError, r"^evaluate: batch_size must be >= 1, got 0"),
    ("trainer_zero_k2", lambda: bad_trainer(k2=0),
         ValueError, r"^TBPTTTrainer: k2 must be >= 1, got 0"),
    ("trainer_string_clipper", lambda: bad_trainer(clipper="norm"),
         TypeError, r"^TBPTTTrainer: clipper must be a GradientClipper or None, got str"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
