"""minidl.data: windows, splits, scalers and synthetic series, with real values and bad inputs
(these helpers have no PyTorch counterpart to compare with; forecasts: tests/test_forecasting.py)."""

import re

import numpy as np
import pytest

import minidl as mdl
import minidl.data as data
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, bad_model


# ---- sliding_windows ---------------------------------------------------------------------
def test_windows_article_task():
    s = np.sin(np.arange(200))
    x, y = data.sliding_windows(s, 50)
    assert x.shape == (150, 50, 1) and y.shape == (150, 1)
    for i in (0, 1, 73, 149):
        np.testing.assert_array_equal(x[i, :, 0], s[i : i + 50])
        assert y[i, 0] == s[i + 50]
    assert x.flags.c_contiguous and y.flags.c_contiguous
    assert x.dtype == np.float64


def test_windows_hand_checked_multifeature_horizon_stride():
    series = np.arange(20.0).reshape(10, 2)  # row t = [2t, 2t + 1]
    x, y = data.sliding_windows(series, window=3, horizon=2, stride=2)
    # N = (10 - 3 - 2) // 2 + 1 = 3 windows starting at t = 0, 2, 4
    assert x.shape == (3, 3, 2) and y.shape == (3, 2, 2)
    np.testing.assert_array_equal(x[1], [[4, 5], [6, 7], [8, 9]])
    np.testing.assert_array_equal(y[1], [[10, 11], [12, 13]])
    np.testing.assert_array_equal(x[2, :, 0], [8, 10, 12])
    np.testing.assert_array_equal(y[2, :, 1], [15, 17])


def test_windows_minimal_length_and_int_input():
    x, y = data.sliding_windows([1, 2, 3, 4], window=3)
    assert x.dtype == np.float64
    np.testing.assert_array_equal(x, [[[1], [2], [3]]])
    np.testing.assert_array_equal(y, [[4]])
    x, y = data.sliding_windows(np.arange(6, dtype=np.float32), window=2, stride=3)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :, 0], [[0, 1], [3, 4]])
    np.testing.assert_array_equal(y[:, 0], [2, 5])


def test_windows_are_copies():
    s = np.arange(10.0)
    x, y = data.sliding_windows(s, 4)
    assert x.flags.writeable and y.flags.writeable and x.base is None and y.base is None
    x[0, 0, 0] = 100.0
    y[0, 0] = -1.0
    assert s[0] == 0.0 and s[4] == 4.0 and x[1, 0, 0] == 1.0


@pytest.mark.parametrize(
    "args, kwargs, err, text",
    [
        ((np.arange(10.0), 0), {}, ValueError, "window must be >= 1, got 0"),
        ((np.arange(10.0), 2.0), {}, TypeError, "window must be an int"),
        ((np.arange(10.0), 3), {"horizon": 0}, ValueError, "horizon must be >= 1"),
        ((np.arange(10.0), 3), {"stride": -1}, ValueError, "stride must be >= 1"),
        ((np.arange(10.0), 9), {"horizon": 2}, ValueError, "too short for window=9 + horizon=2; expected length >= 11"),
        ((np.zeros((4, 3, 2)), 2), {}, ValueError, "expected series of shape (T,) or (T, F), got shape (4, 3, 2)"),
        ((["a", "b", "c"], 1), {}, TypeError, "series must be a real numeric array"),
    ],
)
def test_windows_bad_inputs(args, kwargs, err, text):
    with pytest.raises(err, match=f"^sliding_windows: .*{re.escape(text)}"):
        data.sliding_windows(*args, **kwargs)


# ---- train_val_split ---------------------------------------------------------------------
def test_split_keeps_time_order_by_size():
    x = np.arange(10).reshape(10, 1)
    y = np.arange(10) * 10
    (xt, yt), (xv, yv) = data.train_val_split(x, y, val_size=3)
    np.testing.assert_array_equal(xt[:, 0], np.arange(7))
    np.testing.assert_array_equal(xv[:, 0], [7, 8, 9])
    np.testing.assert_array_equal(yt, np.arange(7) * 10)
    np.testing.assert_array_equal(yv, [70, 80, 90])


@pytest.mark.parametrize("n, fraction, n_val", [(150, 1 / 3, 50), (150, 0.2, 30), (10, 0.25, 3), (10, 0.24, 2), (3, 0.5, 2)])
def test_split_fraction_rounds_to_nearest(n, fraction, n_val):
    x, y = np.arange(n), -np.arange(n)
    (xt, yt), (xv, yv) = data.train_val_split(x, y, val_fraction=fraction)
    assert len(xv) == len(yv) == n_val and len(xt) == len(yt) == n - n_val
    np.testing.assert_array_equal(np.concatenate([xt, xv]), x)
    assert xv[0] == n - n_val


def test_split_article_windows():
    x, y = data.sliding_windows(data.sine_wave(200), 50)
    (xt, yt), (xv, yv) = data.train_val_split(x, y, val_size=50)
    assert xt.shape == (100, 50, 1) and xv.shape == (50, 50, 1)
    assert yv[0, 0] == np.sin(150.0)


@pytest.mark.parametrize(
    "kwargs, err, text",
    [
        ({}, ValueError, "exactly one of val_fraction or val_size"),
        ({"val_fraction": 0.2, "val_size": 2}, ValueError, "exactly one of val_fraction or val_size"),
        ({"val_fraction": 1.0}, ValueError, "val_fraction must be in (0, 1), got 1.0"),
        ({"val_fraction": 0.0}, ValueError, "val_fraction must be in (0, 1), got 0.0"),
        ({"val_fraction": "0.2"}, TypeError, "val_fraction must be a real number"),
        ({"val_size": 10}, ValueError, "10 samples give 10 for validation and 0 for training"),
        ({"val_size": 0}, ValueError, "val_size must be >= 1, got 0"),
        ({"val_size": 1.5}, TypeError, "val_size must be an int"),
        ({"val_fraction": 0.01}, ValueError, "10 samples give 0 for validation"),
    ],
)
def test_split_bad_arguments(kwargs, err, text):
    with pytest.raises(err, match=re.escape(text)):
        data.train_val_split(np.arange(10), np.arange(10), **kwargs)


def test_split_length_mismatch():
    with pytest.raises(ValueError, match=r"same number of samples, got 10 and 9"):
        data.train_val_split(np.arange(10), np.arange(9), val_size=2)


# ---- scalers -------------------------------------------------------------------------------
def test_minmax_known_values_and_round_trip():
    x = np.array([[0.0, 10.0], [5.0, 20.0], [10.0, 30.0]])
    scaler = data.MinMaxScaler()
    z = scaler.fit_transform(x)
    np.testing.assert_allclose(z, [[0, 0], [0.5, 0.5], [1, 1]], atol=1e-15)
    np.testing.assert_allclose(scaler.inverse_transform(z), x, atol=1e-12)
    np.testing.assert_allclose(scaler.transform([[20.0, 0.0]]), [[2.0, -0.5]], atol=1e-15)


def test_minmax_feature_range_and_leading_axes():
    # (2, 2, 1): statistics over both leading axes; min -2, max 6
    x = np.array([[[-2.0], [0.0]], [[2.0], [6.0]]])
    scaler = data.MinMaxScaler(feature_range=(-1, 1)).fit(x)
    np.testing.assert_array_equal(scaler.state_dict()["data_min"], [-2.0])
    np.testing.assert_array_equal(scaler.state_dict()["data_max"], [6.0])
    np.testing.assert_allclose(scaler.transform(x)[:, :, 0], [[-1.0, -0.5], [0.0, 1.0]], atol=1e-15)
    # fitted on a 1-D series = one feature; transforms windows (N, window, 1)
    s = np.array([1.0, 3.0, 5.0])
    sc = data.MinMaxScaler().fit(s)
    np.testing.assert_allclose(sc.transform(s), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(sc.transform(np.array([[[3.0], [5.0]]])), [[[0.5], [1.0]]])


def test_minmax_constant_feature_no_division_by_zero():
    x = np.array([[3.0, 1.0], [3.0, 2.0]])
    scaler = data.MinMaxScaler(feature_range=(2, 4))
    with np.errstate(all="raise"):
        z = scaler.fit_transform(x)
        # constant feature: range treated as 1 -> lo + (x - min) * (hi - lo)
        np.testing.assert_allclose(z, [[2.0, 2.0], [2.0, 4.0]])
        np.testing.assert_allclose(scaler.transform([[3.5, 1.5]]), [[3.0, 3.0]])
        np.testing.assert_allclose(scaler.inverse_transform(z), x)


def test_standard_known_values_and_round_trip():
    x = np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 3.0], [7.0, 1.0]])
    scaler = data.StandardScaler().fit(x)
    state = scaler.state_dict()
    # column 0: mean 4, population variance (9 + 1 + 1 + 9) / 4 = 5; column 1: mean 1, var (1+1+4+0)/4 = 1.5
    np.testing.assert_allclose(state["mean"], [4.0, 1.0])
    np.testing.assert_allclose(state["std"], [np.sqrt(5.0), np.sqrt(1.5)])
    z = scaler.transform(x)
    np.testing.assert_allclose(z[:, 0], np.array([-3, -1, 1, 3]) / np.sqrt(5.0))
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-15)
    np.testing.assert_allclose(scaler.inverse_transform(z), x, atol=1e-14)


def test_standard_constant_feature_centred_only():
    x = np.array([[2.0], [2.0], [2.0]])
    scaler = data.StandardScaler()
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(scaler.fit_transform(x), [[0.0], [0.0], [0.0]])
        np.testing.assert_array_equal(scaler.transform([[5.0]]), [[3.0]])
    assert scaler.state_dict()["std"][0] == 0.0


def test_scaler_keeps_float32():
    x = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4, 1)
    for scaler in (data.MinMaxScaler(), data.StandardScaler()):
        z = scaler.fit_transform(x)
        assert z.dtype == np.float32 and z.shape == x.shape
        assert scaler.inverse_transform(z).dtype == np.float32
    assert data.StandardScaler().fit_transform([[1], [2]]).dtype == np.float64


@pytest.mark.parametrize("cls", [data.MinMaxScaler, data.StandardScaler])
def test_scaler_state_dict_round_trip(cls):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3)) * [1.0, 5.0, 0.1] + [0.0, -3.0, 7.0]
    fitted = cls().fit(x)
    state = fitted.state_dict()
    assert all(isinstance(v, np.ndarray) and v.shape == (3,) for v in state.values())
    fresh = cls()
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.transform(x), fitted.transform(x))
    expected = fitted.transform(x)
    for value in state.values():  # the scalers hold copies: editing the dict changes nothing
        value[:] = 123.0
    np.testing.assert_array_equal(fresh.transform(x), expected)
    np.testing.assert_array_equal(fitted.transform(x), expected)


@pytest.mark.parametrize("cls", [data.MinMaxScaler, data.StandardScaler])
@pytest.mark.parametrize("method", ["transform", "inverse_transform", "state_dict"])
def test_scaler_not_fitted(cls, method):
    args = () if method == "state_dict" else (np.ones((2, 1)),)
    with pytest.raises(RuntimeError, match=rf"^{cls.__name__}\.{method}: the scaler is not fitted; call fit\(x\) first"):
        getattr(cls(), method)(*args)


def test_scaler_bad_inputs():
    scaler = data.StandardScaler().fit(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"StandardScaler.transform: fitted on 2 feature\(s\), got x of shape \(4, 3\)"):
        scaler.transform(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"NaN or infinite"):
        data.MinMaxScaler().fit([1.0, np.nan])
    with pytest.raises(TypeError, match=r"MinMaxScaler.fit: x must be a real numeric array, got dtype <U1"):
        data.MinMaxScaler().fit(["a"])
    with pytest.raises(ValueError, match=r"expected a non-empty array"):
        data.MinMaxScaler().fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"lo < hi, got \(1, 0\)"):
        data.MinMaxScaler(feature_range=(1, 0))
    with pytest.raises(TypeError, match=r"feature_range must be a pair"):
        data.MinMaxScaler(feature_range=1.0)
    with pytest.raises(ValueError, match=r"expected keys \['mean', 'std'\], got \['mean'\]"):
        data.StandardScaler().load_state_dict({"mean": np.zeros(2)})
    with pytest.raises(ValueError, match=r"one length"):
        data.StandardScaler().load_state_dict({"mean": np.zeros(2), "std": np.ones(3)})
    with pytest.raises(ValueError, match=r"std must be >= 0"):
        data.StandardScaler().load_state_dict({"mean": np.zeros(1), "std": -np.ones(1)})


# ---- sine_wave -------------------------------------------------------------------------------
def test_sine_default_is_exact():
    np.testing.assert_array_equal(data.sine_wave(200), np.sin(np.arange(200)))
    assert data.sine_wave(200).shape == (200,) and data.sine_wave(1)[0] == 0.0


def test_sine_components_step_and_phase():
    t = 0.1 * np.arange(50)
    s = data.sine_wave(50, frequencies=(1.0, 3.0), amplitudes=(2.0, 0.5), phases=(0.0, np.pi / 2), step=0.1)
    np.testing.assert_allclose(s, 2.0 * np.sin(t) + 0.5 * np.cos(3.0 * t), atol=1e-14)
    np.testing.assert_allclose(data.sine_wave(3, frequencies=np.pi / 2), [0.0, 1.0, 0.0], atol=1e-15)


def test_sine_noise_seeded():
    a = data.sine_wave(100, noise=0.1, seed=3)
    expected = np.sin(np.arange(100)) + np.random.default_rng(3).normal(0.0, 0.1, size=100)
    np.testing.assert_allclose(a, expected, atol=1e-15)
    assert not np.array_equal(a, data.sine_wave(100, noise=0.1, seed=4))


def test_sine_noise_global_rng():
    mdl.set_seed(7)
    a = data.sine_wave(30, noise=0.5)
    b = data.sine_wave(30, noise=0.5)
    mdl.set_seed(7)
    np.testing.assert_array_equal(data.sine_wave(30, noise=0.5), a)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, err, text",
    [
        ({"length": 0}, ValueError, "length must be >= 1, got 0"),
        ({"length": 10, "noise": -0.1}, ValueError, "noise must be >= 0.0, got -0.1"),
        ({"length": 10, "step": 0.0}, ValueError, "step must be > 0.0, got 0.0"),
        (
            {"length": 10, "frequencies": (1.0, 2.0), "amplitudes": (1.0,)},
            ValueError,
            "amplitudes must have one entry per frequency (2), got 1",
        ),
        ({"length": 10, "frequencies": ()}, ValueError, "frequencies must be a number or a non-empty 1-D sequence"),
        ({"length": 10, "phases": (np.inf,)}, ValueError, "phases must be finite"),
        ({"length": 10, "seed": -1}, TypeError, "seed must be None, a non-negative int or a numpy Generator"),
    ],
)
def test_sine_bad_inputs(kwargs, err, text):
    with pytest.raises(err, match="^sine_wave: " + re.escape(text)):
        data.sine_wave(**kwargs)


def test_scaler_state_dict_through_npz(tmp_path):
    scaler = data.MinMaxScaler().fit(np.array([[0.0], [4.0]]))
    assert not data.MinMaxScaler().fitted and scaler.fitted
    np.savez(tmp_path / "scaler.npz", **scaler.state_dict())
    fresh = data.MinMaxScaler()
    with np.load(tmp_path / "scaler.npz") as state:
        fresh.load_state_dict(state)
    np.testing.assert_allclose(fresh.transform([[1.0]]), [[0.25]])
    with pytest.raises(TypeError, match=r"MinMaxScaler.load_state_dict: expected a mapping, got list"):
        fresh.load_state_dict([1, 2])


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("windows_complex", lambda: data.sliding_windows(np.zeros(10, complex), 3),
         TypeError, r"^sliding_windows: series must be a real numeric array, got dtype complex128"),
    ("windows_object", lambda: data.sliding_windows(np.array([None] * 10), 3),
         TypeError, r"^sliding_windows: series must be a real numeric array, got dtype object"),
    ("windows_empty", lambda: data.sliding_windows(np.zeros(0), 1),
         ValueError, r"^sliding_windows: series of length 0 is too short for window=1 \+ horizon=1"),
    ("scaler_fit_complex", lambda: data.StandardScaler().fit(np.zeros((3, 2), complex)),
         TypeError, r"^StandardScaler\.fit: x must be a real numeric array, got dtype complex128"),
    ("scaler_transform_object", lambda: data.MinMaxScaler().fit(np.zeros((3, 2))).transform(np.array([[None, 1]], dtype=object)),
         TypeError, r"^MinMaxScaler\.transform: x must be a real numeric array, got dtype object"),
    ("scaler_fit_ragged", lambda: data.MinMaxScaler().fit([[1.0], [1.0, 2.0]]),
         TypeError, r"^MinMaxScaler\.fit: x must be a numeric array, got list"),
    ("forecast_complex_seed", lambda: data.forecast(bad_model(), np.zeros((5, 2), complex), 3),
         TypeError, r"^forecast: seed_window must be a real numeric array, got dtype complex128"),
    ("split_no_samples", lambda: data.train_val_split(np.zeros(0), np.zeros(0), val_size=1),
         ValueError, r"^train_val_split: both parts must be non-empty: 0 samples give 1 for validation"),
    ("sine_nan_frequency", lambda: data.sine_wave(10, frequencies=[np.nan]),
         ValueError, r"^sine_wave: frequencies must be finite, got \[nan\]"),
    ("sine_complex_amplitude", lambda: data.sine_wave(10, amplitudes=1j),
         TypeError, r"^sine_wave: amplitudes must be a real numeric array, got dtype complex128"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
