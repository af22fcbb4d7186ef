"""minidl.training.metrics: accuracy and mae by hand (masks, ignore_index), callables, and
the metrics of fit / evaluate in History, against values computed by hand."""

import numpy as np
import pytest

import minidl as mdl
from minidl.training.metrics import Tally, accuracy, mae, real_targets, resolve
from tests.helpers import random_sequences, small_rnn_model
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params

PRED = np.array([[[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0]],
                 [[0.0, 0.0, 1.0], [4.0, 1.0, 0.0], [0.0, 2.0, 1.0]]])  # argmax: [[0, 1, 2], [2, 0, 1]]
TARGET = np.array([[0, 2, 2], [2, 1, 1]])  # hits: [[T, F, T], [T, F, T]]
MASK = np.array([[True, True, False], [True, False, False]])


def test_accuracy_by_hand():
    assert accuracy(PRED, TARGET) == pytest.approx(4 / 6)
    assert accuracy(PRED, TARGET, MASK) == pytest.approx(2 / 3)  # real: (0,0) hit, (0,1) miss, (1,0) hit
    assert accuracy(PRED, TARGET, np.zeros((2, 3), bool)) == 0.0


def test_mae_by_hand():
    pred = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    target = np.array([[[0.0, 0.0], [3.0, 6.0]]])
    assert mae(pred, target) == pytest.approx((1 + 2 + 0 + 2) / 4)
    assert mae(pred, target, np.array([[False, True]])) == pytest.approx((0 + 2) / 2)


def test_ignore_index_joins_the_mask():
    target = TARGET.copy()
    target[0, 0] = -100
    real = real_targets(target, MASK, -100)
    np.testing.assert_array_equal(real, [[False, True, False], [True, False, False]])
    assert accuracy(PRED, target, real) == pytest.approx(1 / 2)
    assert real_targets(PRED, None, -100) is None  # float targets: ignore_index plays no part


def test_tally_weights_each_chunk_by_its_real_targets():
    tally = Tally(resolve(["accuracy"], "test"))
    tally.add(1.0, 6, PRED, TARGET, MASK)         # 3 real targets, accuracy 2/3
    tally.add(3.0, 2, PRED[:, :1], TARGET[:, :1])  # 2 real targets, accuracy 2/2
    logs = tally.logs("val_")
    assert logs["val_loss"] == pytest.approx((1.0 * 6 + 3.0 * 2) / 8)
    assert logs["val_accuracy"] == pytest.approx((2 / 3 * 3 + 1.0 * 2) / 5)


def _classifier_and_data():
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 4)), mdl.Dense(4, 3)])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 5, 2)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    return model, x, y


def test_fit_and_evaluate_report_metrics_by_hand():
    model, x, y = _classifier_and_data()
    y[0] = -100  # ignored by the loss and by accuracy
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), mdl.SGD(model.parameters(), lr=0.0), seed=0)

    def top_is_zero(pred, target, mask):
        return float(np.mean(np.argmax(pred, -1) == 0))

    hist = trainer.fit(x, y, epochs=2, batch_size=4, validation_data=(x, y), verbose=0,
                       metrics=("accuracy", top_is_zero))
    pred = model.predict(x)
    real = y != -100
    expected = float(np.mean((np.argmax(pred, -1) == y)[real]))
    assert sorted(hist.history) == ["accuracy", "loss", "top_is_zero", "val_accuracy", "val_loss", "val_top_is_zero"]
    assert hist.history["accuracy"] == pytest.approx([expected, expected], rel=1e-6)  # lr = 0: the same model
    assert hist.history["val_accuracy"] == pytest.approx([expected] * 2, rel=1e-6)
    sizes = [4, 4, 2]
    by_batch = [float(np.mean(np.argmax(pred[i:i + 4], -1) == 0)) for i in range(0, 10, 4)]
    assert hist.history["top_is_zero"][0] == pytest.approx(np.dot(by_batch, sizes) / 10, rel=1e-6)
    result = trainer.evaluate(x, y, metrics=["accuracy"])
    assert set(result) == {"loss", "accuracy"} and result["accuracy"] == pytest.approx(expected, rel=1e-6)
    assert result["loss"] == pytest.approx(trainer.evaluate(x, y), rel=1e-12)
    assert isinstance(trainer.evaluate(x, y), float)


def test_many_to_many_mae_over_the_tbptt_chunks():
    mdl.set_seed(0)
    model = small_rnn_model(seq=True)
    x, y = random_sequences(n=4, T=6, seq=True)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.0), k1=2, seed=0)
    hist = trainer.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0, metrics=["mae"])
    assert hist.history["mae"] == pytest.approx([float(np.mean(np.abs(model.predict(x) - y)))], rel=1e-5)


def test_the_per_update_hook_sees_every_optimizer_step():
    mdl.set_seed(0)
    model = small_rnn_model(seq=True)
    x, y = random_sequences(n=6, T=7, seq=True)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.01), k1=3, seed=0)
    seen, steps = [], []

    class Updates(mdl.Callback):
        def on_update_end(self, update, logs=None):
            seen.append((update, logs["loss"], logs["grad_norm"]))

    original = trainer.optimizer.step
    trainer.optimizer.step = lambda: (steps.append(1), original())[1]
    hist = trainer.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[Updates()])
    # 2 batches a epoch, 3 chunks (3 + 3 + 1 steps) a batch: 12 updates, numbered 1..12
    assert [u for u, _, _ in seen] == list(range(1, 13)) == list(range(1, len(steps) + 1))
    assert trainer.updates == 12
    assert all(np.isfinite(loss) and norm > 0 for _, loss, norm in seen)
    chunk_sizes = [3, 3, 1] * 2  # the epoch loss is the element-weighted mean of its updates' losses
    epoch0 = [loss for _, loss, _ in seen[:6]]
    elements = [4 * k if i < 3 else 2 * k for i, k in enumerate(chunk_sizes)]
    assert hist.history["loss"][0] == pytest.approx(np.dot(epoch0, elements) / sum(elements), rel=1e-6)


def test_the_update_count_is_kept_by_checkpoints(tmp_path):
    mdl.set_seed(0)
    model = small_rnn_model()
    x, y = random_sequences(n=4)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.01), seed=0)
    trainer.fit(x, y, epochs=3, batch_size=2, verbose=0)
    trainer.save_checkpoint(tmp_path / "c.npz")
    fresh = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.01), seed=1)
    fresh.load_checkpoint(tmp_path / "c.npz")
    assert fresh.updates == trainer.updates == 6


def _fit_with(metrics):
    model, x, y = _classifier_and_data()
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), mdl.SGD(model.parameters(), lr=0.0))
    return trainer.fit(x, y, verbose=0, metrics=metrics)


BAD_INPUTS = [
    ("metrics_a_string", lambda: _fit_with("accuracy"), TypeError, r"fit: metrics must be a list or tuple .*\('accuracy',\)"),
    ("metrics_unknown", lambda: _fit_with(["f1"]), ValueError, r"fit: metrics\[0\] must be one of 'accuracy', 'mae'"),
    ("metrics_not_callable", lambda: _fit_with([3]), TypeError, r"fit: metrics\[0\] must be a name or a callable, got int"),
    ("metrics_twice", lambda: _fit_with(["mae", "mae"]), ValueError, r"fit: metric names must be distinct"),
    ("accuracy_float_target", lambda: accuracy(PRED, TARGET.astype(float)), TypeError, r"accuracy: target must be integer"),
    ("accuracy_shape", lambda: accuracy(PRED, TARGET[:, :2]), ValueError, r"accuracy: target must have pred's shape"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
