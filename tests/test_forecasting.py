"""minidl.forecasting (``minidl.data.forecast``): free-running forecasts of many-to-one models
(a sliding window) and of many-to-many models (a Stream), with real values and bad inputs."""

import numpy as np
import pytest

import minidl as mdl
import minidl.data as data


# ---- forecast --------------------------------------------------------------------------------
class WindowMean(mdl.Layer):
    """(B, window, F) -> (B, F): the mean over the window; counts calls and modes seen."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, x):
        self.modes.append((self.training, mdl.is_grad_enabled()))
        return x.mean(axis=1)


class WithPredict:
    def __init__(self):
        self.calls = 0

    def predict(self, x):
        self.calls += 1
        assert not mdl.is_grad_enabled()
        return x[:, -1] + 1.0  # next value = last value + 1


def _mean_recurrence(seed, steps):
    values = list(seed)
    for _ in range(steps):
        values.append(np.mean(values[-len(seed) :], axis=0))
    return np.array(values[len(seed) :])


def test_forecast_window_mean_1d():
    model = WindowMean()
    out = data.forecast(model, [1.0, 2.0, 3.0], steps=4)
    # 2, then mean(2, 3, 2) = 7/3, then mean(3, 2, 7/3) = 22/9, then mean(2, 7/3, 22/9) = 61/27
    np.testing.assert_allclose(out, [2.0, 7 / 3, 22 / 9, 61 / 27], rtol=1e-15)
    assert out.shape == (4,)
    assert model.modes == [(False, False)] * 4  # eval mode, no history
    assert model.training is True and mdl.is_grad_enabled()  # both restored


def test_forecast_uses_predict_and_batches_seeds():
    model = WithPredict()
    seeds = np.array([[[0.0, 10.0], [1.0, 11.0]], [[5.0, -1.0], [6.0, -2.0]]])  # (B=2, window=2, F=2)
    out = data.forecast(model, seeds, steps=3)
    assert out.shape == (2, 3, 2) and model.calls == 3  # one call per step for the whole batch
    np.testing.assert_array_equal(out[0], [[2, 12], [3, 13], [4, 14]])
    np.testing.assert_array_equal(out[1], [[7, -1], [8, 0], [9, 1]])
    two_d = data.forecast(WindowMean(), np.array([[1.0, 4.0], [3.0, 0.0]]), steps=2)
    np.testing.assert_allclose(two_d, [[2.0, 2.0], [2.5, 1.0]])


def test_forecast_batch_equals_separate_runs():
    rng = np.random.default_rng(5)
    seeds = rng.normal(size=(3, 6, 2))
    batched = data.forecast(WindowMean(), seeds, steps=5)
    for b in range(3):
        np.testing.assert_allclose(batched[b], _mean_recurrence(seeds[b], 5), rtol=1e-13)


def test_forecast_with_sequential_matches_manual_loop():
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.RNN(mdl.RNNCell(1, 4)), mdl.Dense(4, 1)])
    seed = data.sine_wave(10)
    out = data.forecast(model, seed, steps=3)
    assert model.layers[0].training is True and model.training is True  # mode restored
    window = list(seed)
    for k in range(3):
        x = np.array(window[-10:], dtype=np.float32)[None, :, None]
        with mdl.no_grad():
            nxt = model.eval().forward(x)[0, 0]
        np.testing.assert_allclose(out[k], nxt, rtol=1e-6)
        window.append(float(nxt))


def test_forecast_bad_inputs():
    with pytest.raises(ValueError, match=r"^forecast: steps must be >= 1, got 0"):
        data.forecast(WindowMean(), [1.0, 2.0], steps=0)
    with pytest.raises(ValueError, match=r"expected seed_window of shape .* got \(1, 2, 3, 4\)"):
        data.forecast(WindowMean(), np.zeros((1, 2, 3, 4)), steps=1)

    class Wrong(mdl.Layer):
        def forward(self, x):
            return x[:, -1, :1]

    with pytest.raises(ValueError, match=r"map \(B, window, F\) = \(1, 2, 3\) to \(B, F\) = \(1, 3\), got output of shape \(1, 1\)"):
        data.forecast(Wrong(), np.zeros((2, 3)), steps=1)
    with pytest.raises(TypeError, match=r"model must have predict\(x\) or forward\(x\)"):
        data.forecast(object(), [1.0], steps=1)


# ---- many-to-many models: through a Stream ------------------------------------------------------
def growing_sequence_forecast(model, seed, steps):
    """The many-to-many forecast by hand: the whole sequence so far, re-run at every step."""
    seq = seed
    for _ in range(steps):
        seq = np.concatenate([seq, model.predict(seq)[:, -1:]], axis=1)
    return seq[:, seed.shape[1]:]


@pytest.mark.parametrize("cell", [mdl.RNNCell, mdl.LSTMCell, mdl.GRUCell])
def test_many_to_many_forecast_feeds_back_with_carried_state(float64, cell):
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.RNN(cell(2, 6), return_sequences=True),
                            mdl.RNN(mdl.GRUCell(6, 4), return_sequences=True), mdl.Dense(4, 2)])
    seed = np.random.default_rng(1).normal(size=(3, 7, 2))
    out = data.forecast(model, seed, steps=5)
    assert out.shape == (3, 5, 2) and out.dtype == np.float64
    np.testing.assert_allclose(out, growing_sequence_forecast(model, seed, 5), rtol=0, atol=1e-12)
    assert model.training and all(rnn.get_state() is None for rnn in model.layers[:2])


def test_many_to_many_forecast_one_feature_and_modes(float64):
    mdl.set_seed(2)
    rnn = mdl.RNN(mdl.LSTMCell(1, 5), return_sequences=True, stateful=True)
    model = mdl.Sequential([rnn, mdl.Dropout(0.5), mdl.Dense(5, 1)])
    model.forward(np.ones((1, 3, 1)))
    own = rnn.get_state()
    seed = data.sine_wave(12)
    out = data.forecast(model, seed, steps=4)
    assert out.shape == (4,)
    for now, before in zip(rnn.get_state(), own):       # the layer's own carried state is untouched
        np.testing.assert_array_equal(now, before)
    assert rnn.stateful and model.training and model.layers[1].training
    two_d = data.forecast(model, seed[:, None], steps=4)
    np.testing.assert_array_equal(two_d[:, 0], out)
    rnn.reset_states()                                  # the forecast started from zeros: by hand,
    rnn.stateful = False                                # the stateless model on the growing sequence
    want = growing_sequence_forecast(model, seed[None, :, None], 4)[0, :, 0]
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-12)


def test_bidirectional_forecasts():
    mdl.set_seed(3)
    last = mdl.Sequential([mdl.Bidirectional(mdl.RNN(mdl.RNNCell(1, 3))), mdl.Dense(6, 1)])
    out = data.forecast(last, data.sine_wave(6), steps=2)   # many-to-one: the sliding window
    window = list(data.sine_wave(6))
    for k in range(2):
        nxt = last.predict(np.array(window[-6:], dtype=np.float32)[None, :, None])[0, 0]
        np.testing.assert_allclose(out[k], nxt, rtol=1e-6)
        window.append(float(nxt))
    every = mdl.Sequential([mdl.Bidirectional(mdl.RNN(mdl.RNNCell(1, 3), return_sequences=True)), mdl.Dense(6, 1)])
    with pytest.raises(ValueError, match=r"^Stream: Bidirectional needs each whole sequence in one forward"):
        data.forecast(every, data.sine_wave(6), steps=2)
