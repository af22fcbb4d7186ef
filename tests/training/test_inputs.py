"""What fit and evaluate take (minidl/training/inputs.py and the trainer's use of it): masks
(batched and chunked with x; the model's own mask; all-masked chunks make no update),
tuples of inputs for a Model, targets of another length (sequence-to-sequence), bad inputs."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import TwoSequenceModel, right_padded_mask
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params

LENGTHS = np.array([6, 3, 5, 1])


def _data(T=6, extra=0, value=0.0, seed=0):
    """Right-padded sequences of LENGTHS (real steps equal whatever T and padding), targets per step."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 6, 2))
    y = rng.standard_normal((4, 6, 1))
    mask = right_padded_mask(LENGTHS, 6 + extra)
    x = np.concatenate([x, np.full((4, extra, 2), value)], axis=1)
    y = np.concatenate([y, np.full((4, extra, 1), value)], axis=1)
    x[~mask], y[~mask] = value, value
    return x, y, mask


def _model(seq=True):
    mdl.set_seed(3)
    return mdl.Sequential([mdl.RNN(mdl.LSTMCell(2, 4), return_sequences=seq), mdl.Dense(4, 1)]).astype(np.float64)


@pytest.mark.parametrize("k1", [None, 2, 3])
def test_padding_never_moves_the_weights_not_even_through_adam(k1):
    """Three more padded steps (with junk values) add chunks whose targets are all masked: with
    Adam, an update there would move every weight; the weights equal the unpadded run's."""
    runs = []
    for extra, value in ((0, 0.0), (3, 1e6)):
        x, y, mask = _data(extra=extra, value=value)
        model = _model()
        trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=0.05), k1=k1, seed=0)
        steps = []
        trainer.fit(x, y, epochs=2, batch_size=2, mask=mask, verbose=0, callbacks=[_Counter(steps)])
        runs.append((model.state_dict(), len(steps)))
    (a, na), (b, nb) = runs
    assert na == nb > 0
    for name in a:  # equal up to the order of sums over more (zero) rows in the weight gradients
        np.testing.assert_allclose(a[name], b[name], rtol=1e-13, atol=1e-15, err_msg=name)


class _Counter(mdl.Callback):
    def __init__(self, seen):
        self.seen = seen

    def on_update_end(self, update, logs=None):
        self.seen.append(update)


def test_a_masked_fit_is_one_manual_masked_step():
    x, y, mask = _data()
    manual = _model()
    loss = mdl.MSELoss()
    loss(manual.forward(x, mask=mask), y, mask)
    manual.backward(loss.backward())
    mdl.SGD(manual.parameters(), lr=0.1).step()
    model = _model()
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), seed=0)
    hist = trainer.fit(x, y, epochs=1, batch_size=4, shuffle=False, mask=mask, verbose=0)
    for name, value in manual.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name], value, rtol=1e-12, atol=1e-14, err_msg=name)
    before = _model()
    expected = float(np.sum(((before.forward(x, mask=mask) - y) ** 2)[mask]) / mask.sum())
    assert hist.history["loss"][0] == pytest.approx(expected, rel=1e-12)


def test_many_to_one_with_a_mask_reads_each_sequences_last_real_step():
    x, y, mask = _data()
    target = y[np.arange(4), LENGTHS - 1]  # the value at each sequence's last real step
    model = _model(seq=False)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.0), seed=0)
    result = trainer.evaluate(x, target, mask=mask)
    alone = [model.predict(x[i:i + 1, :n]) for i, n in enumerate(LENGTHS)]
    assert result == pytest.approx(float(np.mean((np.concatenate(alone) - target) ** 2)), rel=1e-12)
    hist = trainer.fit(x, target, epochs=1, batch_size=2, mask=mask, validation_data=(x, target, mask), verbose=0)
    assert hist.history["val_loss"][0] == pytest.approx(result, rel=1e-12)


def test_the_model_made_mask_is_the_losses():
    """Token 0 is padding (Embedding(mask_zero=True)): the loss takes the model's output_mask."""
    rng = np.random.default_rng(1)
    tokens = rng.integers(1, 5, (4, 6))
    tokens[right_padded_mask(LENGTHS, 6) == False] = 0  # noqa: E712
    y = rng.integers(0, 3, (4, 6))
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.Embedding(5, 3, mask_zero=True), mdl.RNN(mdl.GRUCell(3, 4), return_sequences=True),
                            mdl.Dense(4, 3)])
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), mdl.SGD(model.parameters(), lr=0.0), seed=0)
    result = trainer.evaluate(tokens, y, metrics=["accuracy"])
    logits = model.predict(tokens)
    real = tokens != 0
    expected = mdl.CrossEntropyLoss()(logits, y, real)
    assert result["loss"] == pytest.approx(expected, rel=1e-6)
    assert result["accuracy"] == pytest.approx(float(np.mean((np.argmax(logits, -1) == y)[real])), rel=1e-6)


def test_a_tuple_of_inputs_trains_a_model_as_one_manual_step():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((5, 4, 2)), rng.standard_normal((5, 3, 3))
    y = rng.standard_normal((5, 2))

    def build():
        mdl.set_seed(0)
        return TwoSequenceModel(2, 3).astype(np.float64)

    manual = build()
    loss = mdl.MSELoss()
    loss(manual.forward(a, b), y)
    manual.backward(loss.backward())
    mdl.SGD(manual.parameters(), lr=0.1).step()
    model = build()
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), seed=0)
    trainer.fit((a, b), y, epochs=1, batch_size=5, shuffle=False, verbose=0)
    for name, value in manual.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name], value, rtol=1e-12, err_msg=name)
    trainer.fit((a, b), y, epochs=2, batch_size=2, verbose=0, validation_data=((a, b), y))  # shuffled together
    assert trainer.evaluate((a, b), y) == pytest.approx(float(np.mean((model.predict((a, b)) - y) ** 2)), rel=1e-12)


def test_sequence_to_sequence_targets_of_another_length():
    """Keras-style encoder-decoder in a Sequential: 6 steps in, 3 steps out."""
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((8, 6, 2)), rng.standard_normal((8, 3, 1))
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(2, 8)), mdl.RepeatVector(3),
                            mdl.RNN(mdl.LSTMCell(8, 8), return_sequences=True), mdl.Dense(8, 1)]).astype(np.float64)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=0.02), seed=0)
    before = trainer.evaluate(x, y)
    hist = trainer.fit(x, y, epochs=80, batch_size=8, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * before
    with pytest.raises(ValueError, match=r"y has 3 steps but x has 6 \(truncated many-to-many needs the same\)"):
        mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), k1=2).fit(x, y, verbose=0)


X, Y = np.zeros((4, 5, 2)), np.zeros((4, 5, 1))


def _fit(x=X, y=Y, k1=None, model=None, **kw):
    model = model or mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 3), return_sequences=True), mdl.Dense(3, 1)])
    return mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), k1=k1).fit(x, y, verbose=0, **kw)


BAD_INPUTS = [
    ("mask_not_bool", lambda: _fit(mask=np.ones((4, 5))), TypeError, r"^fit: mask must be a bool array .*got dtype float64"),
    ("mask_shape", lambda: _fit(mask=np.ones((4, 4), bool)), ValueError, r"^fit: mask must have shape \(batch, time\) = \(4, 5\), got \(4, 4\)"),
    ("mask_for_a_model_without_masks", lambda: _fit(model=mdl.Dense(2, 1), mask=np.ones((4, 5), bool)), TypeError,
     r"^fit: a mask was given, but Dense\.forward takes no mask"),
    ("tuple_with_k1", lambda: _fit(x=(X, X), k1=2), ValueError, r"^fit: truncated BPTT \(k1, k2\) needs a single time-aligned input"),
    ("tuple_of_unequal_batches", lambda: _fit(x=(X, X[:3])), ValueError, r"^fit: every input needs the batch size of y \(4\), got x\[1\] of shape \(3, 5, 2\)"),
    ("empty_tuple", lambda: _fit(x=()), ValueError, r"^fit: x is an empty tuple"),
    ("tuple_mask_without_time", lambda: _fit(x=(X, X), y=np.zeros((4, 1)), mask=np.ones((4, 5), bool)), ValueError,
     r"^fit: with a tuple of inputs the mask is the targets' mask"),
    ("evaluate_all_masked", lambda: mdl.TBPTTTrainer(_model(), mdl.MSELoss(), mdl.SGD(_model().parameters(), lr=0.1))
     .evaluate(X, Y, mask=np.zeros((4, 5), bool)), ValueError, r"^evaluate: every target is masked"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)


# ---- reading data as the user means it: integer features, and targets read as the loss says ----
def _gru_trainer(loss, out=1, seq=False):
    mdl.set_seed(5)
    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 3), return_sequences=seq), mdl.Dense(3, out)]).astype(np.float64)
    return model, mdl.TBPTTTrainer(model, loss, mdl.SGD(model.parameters(), lr=0.1), seed=0)


def test_integer_features_train_as_their_floats():
    """Integer (batch, time, features) are features, as predict reads them: fit, evaluate and
    validation data give exactly what the same values as floats give."""
    rng = np.random.default_rng(7)
    xi, y = rng.integers(-3, 4, (6, 5, 2)), rng.standard_normal((6, 1))
    runs = []
    for x in (xi, xi.astype(np.float64)):
        model, trainer = _gru_trainer(mdl.MSELoss())
        hist = trainer.fit(x, y, epochs=2, batch_size=3, validation_data=(x, y), verbose=0)
        runs.append((model.state_dict(), hist.history, trainer.evaluate(x, y)))
    (a, ha, ea), (b, hb, eb) = runs
    assert ha == hb and ea == eb and ha["loss"][0] != ha["loss"][1]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("loss,seq", [(mdl.MSELoss(), False), (mdl.L1Loss(), True), (mdl.HuberLoss(), False),
                                      (mdl.BCEWithLogitsLoss(), True)])
def test_integer_targets_of_a_regression_loss_are_real_values(loss, seq):
    """(batch, 1) integers were read as class indices ("y has 1 steps but x has 6"): a loss on
    real values converts them, and trains exactly as on the same floats."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 6, 2))
    yi = rng.integers(0, 2, (4, 6, 1) if seq else (4, 1))
    assert loss.takes_class_indices is False
    runs = []
    for y in (yi, yi.astype(np.float64)):
        model, trainer = _gru_trainer(loss, seq=seq)
        runs.append((trainer.fit(x, y, epochs=2, batch_size=2, verbose=0).history, trainer.evaluate(x, y),
                     model.state_dict()))
    assert runs[0][:2] == runs[1][:2]
    for name in runs[0][2]:
        np.testing.assert_array_equal(runs[0][2][name], runs[1][2][name], err_msg=name)


class _UndeclaredLoss(mdl.Loss):
    """A user's loss written before takes_class_indices: MSE on whatever targets it gets."""

    def forward(self, pred, target, mask=None):
        pred, target, _ = self.prepare(pred, target)
        self._diff = pred - target
        return float(np.mean(self._diff ** 2))

    def backward(self):
        return 2 * self._diff / self._diff.size


def _cross_entropy():
    return _gru_trainer(mdl.CrossEntropyLoss(), out=2)[1]


READING_ERRORS = [
    ("cross_entropy_float_targets", lambda: _cross_entropy().fit(X, np.zeros((4, 1)), verbose=0),
     TypeError, r"^fit: y must be integer class indices because the loss is CrossEntropyLoss "
                r"\(takes_class_indices\), got dtype float64$"),
    ("cross_entropy_validation_floats", lambda: _cross_entropy().fit(
        X, np.zeros(4, int), validation_data=(X, np.zeros(4)), verbose=0),
     TypeError, r"^fit: validation y must be integer class indices because the loss is CrossEntropyLoss"),
    ("cross_entropy_ragged_targets", lambda: _cross_entropy().evaluate(X, [[0], [1, 0], [0], [1]]),
     TypeError, r"^evaluate: y must be integer class indices because the loss is CrossEntropyLoss .*got a ragged list"),
    ("class_indices_shape_says_why", lambda: _cross_entropy().fit(
        X, np.zeros((4, 5, 1), int), verbose=0),
     ValueError, r"^fit: y must be \(batch,\) or \(batch, time\) of class indices, got shape \(4, 5, 1\); "
                 r"y read as class indices because the loss is CrossEntropyLoss$"),
    ("regression_shape_says_why", lambda: _gru_trainer(mdl.MSELoss())[1].fit(X, np.zeros(4, int), verbose=0),
     ValueError, r"^fit: y must be \(batch, out\) for many-to-one or \(batch, time, out\) for many-to-many, "
                 r"got shape \(4,\); y read as real-valued targets because the loss is MSELoss$"),
    ("undeclared_loss_reads_integers_as_classes", lambda: _gru_trainer(_UndeclaredLoss())[1].fit(
        np.zeros((4, 6, 2)), np.zeros((4, 1), int), verbose=0),
     ValueError, r"^fit: y has a time axis \(many-to-many\) but the model output has shape \(4, 1\); use "
                 r"return_sequences=True on the last RNN; y read as class indices because it holds integers "
                 r"and _UndeclaredLoss does not set takes_class_indices$"),
    ("many_to_many_floats_say_why", lambda: _gru_trainer(_UndeclaredLoss())[1].fit(X, Y, verbose=0),
     ValueError, r"; y read as real-valued targets because it holds floats$"),
]


@pytest.mark.parametrize(**bad_input_params(READING_ERRORS))
def test_errors_about_y_say_how_it_was_read(make, exc, pattern):
    assert_bad_input(make, exc, pattern)


def test_a_loss_that_declares_real_targets_reads_integers_as_floats():
    """The fix of the undeclared loss above: takes_class_indices = False."""
    class Declared(_UndeclaredLoss):
        takes_class_indices = False

    x, y = np.zeros((4, 6, 2)), np.ones((4, 1), int)
    hist = _gru_trainer(Declared())[1].fit(x, y, verbose=0)
    assert np.isfinite(hist.history["loss"][0]) and hist.history["loss"][0] > 0
