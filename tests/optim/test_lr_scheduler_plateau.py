"""ReduceLROnPlateau (minidl/optim/lr_scheduler.py): a plain object stepped on a metric, by
hand and in a real TBPTTTrainer fit (through the callback adapter, with or without its own
optimizer), its warnings and bad arguments."""

import math

import numpy as np
import pytest

import minidl as mdl
from minidl.optim.lr_scheduler import ReduceLROnPlateau


def optimizer(lr=1.0):
    return mdl.SGD([mdl.Parameter(np.zeros(2), "w")], lr=lr)


def _model():
    mdl.set_seed(3)
    return mdl.Sequential([mdl.RNN(mdl.RNNCell(2, 3)), mdl.Dense(3, 1)])


PLATEAU = [1.0, 0.9] + [0.9] * 8


def plateau_trace(plateau, values):
    """The optimizer's lr after ``plateau.step(value)`` for each value."""
    rates = []
    for value in values:
        plateau.step(value)
        rates.append(plateau.optimizer.lr)
    return rates


def test_reduce_lr_on_plateau_by_hand():
    # no improvement at values 3 and 4 (patience 2) -> 0.05; then every 2 epochs; floor 0.02
    rates = plateau_trace(ReduceLROnPlateau(optimizer(0.1), factor=0.5, patience=2, min_lr=0.02), PLATEAU)
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02], rtol=1e-15)
    # a cooldown of 2: its last epoch already counts, so reductions come every 3 epochs
    plateau = ReduceLROnPlateau(optimizer(0.1), factor=0.5, patience=2, cooldown=2)
    rates = plateau_trace(plateau, PLATEAU)
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125], rtol=1e-15)
    assert plateau.best == 0.9 and plateau.cooldown_left == 2 and plateau.wait == 0


def test_reduce_lr_on_plateau_min_delta_and_modes():
    # improvements must exceed min_delta: 0.95 is not 0.1 better than 1.0, 0.85 is
    plateau = ReduceLROnPlateau(optimizer(1.0), factor=0.5, patience=1, min_delta=0.1)
    assert plateau_trace(plateau, [1.0, 0.95, 0.85, 0.8]) == [1.0, 0.5, 0.5, 0.25]
    # "auto" watches an accuracy for increase; "max" likewise; "min" for decrease
    for plateau in (ReduceLROnPlateau(optimizer(1.0), monitor="val_accuracy", factor=0.5, patience=1),
                    ReduceLROnPlateau(optimizer(1.0), monitor="score", mode="max", factor=0.5, patience=1)):
        assert plateau_trace(plateau, [0.5, 0.6, 0.6, 0.7]) == [1.0, 1.0, 0.5, 0.5]
    plateau = ReduceLROnPlateau(optimizer(1.0), monitor="val_accuracy", mode="min", factor=0.5, patience=1)
    assert plateau_trace(plateau, [0.5, 0.6, 0.4]) == [1.0, 0.5, 0.5]


def test_reduce_lr_on_plateau_reset_forgets_the_best():
    plateau = ReduceLROnPlateau(optimizer(1.0), factor=0.5, patience=1)
    plateau_trace(plateau, [0.1, 0.2])
    assert plateau.optimizer.lr == 0.5 and plateau.best == 0.1
    plateau.reset()
    assert plateau.best == math.inf and plateau.wait == 0 and plateau.cooldown_left == 0
    assert plateau_trace(plateau, [0.2]) == [0.5]  # 0.2 is the best now


def test_reduce_lr_on_plateau_without_optimizer_needs_a_trainer():
    plateau = ReduceLROnPlateau(patience=1)
    assert plateau.optimizer is None
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: no optimizer; pass one, or use it in TBPTTTrainer.fit"):
        plateau.step(1.0)


def _plateau_fit(plateau, lr=0.08, values=(1.0, 1.0, 1.0, 0.5)):
    model = _model()
    opt = mdl.SGD(model.parameters(), lr=lr)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), opt, seed=0)
    scripted = iter(values)
    trainer.evaluate = lambda *a, **k: next(scripted)
    x, y = np.zeros((2, 3, 2)), np.zeros((2, 1))
    history = trainer.fit(x, y, epochs=len(values), batch_size=2, validation_data=(x, y), callbacks=[plateau],
                          verbose=0)
    return opt, history


def test_reduce_lr_on_plateau_in_fit_follows_each_trainer_and_starts_afresh(float64):
    plateau = ReduceLROnPlateau(factor=0.5, patience=2)
    opt, history = _plateau_fit(plateau)
    assert plateau.optimizer is opt and history.history["lr"] == [0.08, 0.08, 0.04, 0.04]
    # a second fit, with another trainer: its optimizer, and a fresh best / patience count
    opt2, history = _plateau_fit(plateau, lr=1.0, values=(2.0, 2.0, 2.0))
    assert plateau.optimizer is opt2 and history.history["lr"] == [1.0, 1.0, 0.5]


def test_reduce_lr_on_plateau_built_on_the_trainers_optimizer_or_refused(float64):
    model = _model()
    opt = mdl.SGD(model.parameters(), lr=0.1)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), opt, seed=0)
    x, y = np.zeros((2, 3, 2)), np.zeros((2, 1))
    plateau = ReduceLROnPlateau(opt, monitor="loss", patience=1, min_delta=10.0)  # only the first epoch improves
    history = trainer.fit(x, y, epochs=3, verbose=0, callbacks=[plateau])
    assert history.history["lr"] == pytest.approx([0.1, 0.01, 0.001], rel=1e-15)
    other = ReduceLROnPlateau(mdl.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="ReduceLROnPlateau: built on another optimizer than the trainer's"):
        trainer.fit(x, y, epochs=1, verbose=0, callbacks=[other])


def test_reduce_lr_on_plateau_without_its_metric_warns_and_keeps_the_lr(float64):
    model = _model()
    opt = mdl.SGD(model.parameters(), lr=0.1)
    x, y = np.zeros((2, 3, 2)), np.zeros((2, 1))
    with pytest.warns(RuntimeWarning, match=r"ReduceLROnPlateau: metric 'val_loss' is not in the logs \['loss'\]"):
        history = mdl.TBPTTTrainer(model, mdl.MSELoss(), opt, seed=0).fit(
            x, y, epochs=2, verbose=0, callbacks=[ReduceLROnPlateau(patience=0)])
    assert history.history["lr"] == [0.1, 0.1]


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: ReduceLROnPlateau(object()), TypeError,
         "ReduceLROnPlateau: optimizer must be an Optimizer or None, got object"),
        (lambda: ReduceLROnPlateau(monitor=""), TypeError, "ReduceLROnPlateau: monitor must be a metric name"),
        (lambda: ReduceLROnPlateau(mode="up"), ValueError,
         "ReduceLROnPlateau: mode must be one of 'min', 'max', 'auto'"),
        (lambda: ReduceLROnPlateau(factor=1.0), ValueError, "ReduceLROnPlateau: factor must be < 1, got 1.0"),
        (lambda: ReduceLROnPlateau(factor=0.0), ValueError, "ReduceLROnPlateau: factor must be > 0.0, got 0.0"),
        (lambda: ReduceLROnPlateau(patience=-1), ValueError, "ReduceLROnPlateau: patience must be >= 0, got -1"),
        (lambda: ReduceLROnPlateau(patience=1.5), TypeError, "ReduceLROnPlateau: patience must be an int, got 1.5"),
        (lambda: ReduceLROnPlateau(cooldown=True), TypeError, "ReduceLROnPlateau: cooldown must be an int, got True"),
        (lambda: ReduceLROnPlateau(min_lr=-1e-3), ValueError, "ReduceLROnPlateau: min_lr must be >= 0.0"),
        (lambda: ReduceLROnPlateau(min_delta=float("nan")), ValueError, "ReduceLROnPlateau: min_delta must be finite"),
    ],
)
def test_reduce_lr_on_plateau_bad_arguments(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)
