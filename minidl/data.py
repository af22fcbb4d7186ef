"""Data helpers for sequence models: windows, time-ordered splits, scalers, synthetic
series and free-running forecasts (``forecast``, from ``minidl/forecasting.py``).

Everything works on plain ``numpy`` arrays, batch first. Float inputs keep their dtype;
integer or boolean inputs become float64.
"""

import math
from collections.abc import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._checks import as_float_array, as_real_array, finite_number, fmt_shape, generator, positive_int
from ._random import get_rng
from .forecasting import forecast

__all__ = ["sliding_windows", "train_val_split", "MinMaxScaler", "StandardScaler", "sine_wave", "forecast"]
forecast.__module__ = __name__  # its public home is minidl.data (the API reference lists it here)


# ---- windows and splits ----------------------------------------------------------------
def sliding_windows(series, window, horizon=1, stride=1):
    """Cut a series into (input window, following values) pairs for many-to-one training.

    Window ``i`` starts at ``s = i * stride``: ``x[i] = series[s : s + window]`` and the
    target holds the ``horizon`` values right after it, ``series[s + window : s + window +
    horizon]``. For ``horizon=1`` that is the next value, ``y[i] = series[s + window]``.

    Args:
        series: ``(T,)`` (one feature) or ``(T, F)``.
        window: input length, >= 1.
        horizon: number of future values in each target, >= 1.
        stride: step between window starts, >= 1.

    Returns:
        ``(x, y)``, contiguous copies: ``x (N, window, F)``; ``y (N, F)`` when
        ``horizon == 1``, else ``(N, horizon, F)``; ``N = (T - window - horizon) // stride + 1``.
        A 1-D series gives ``F = 1``.

    Raises:
        TypeError: ``series`` is not a real array, or ``window``, ``horizon``, ``stride`` is
            not an int.
        ValueError: ``series`` is not ``(T,)`` or ``(T, F)``, an int is < 1, or the series is
            shorter than ``window + horizon``.

    Example: ``sliding_windows(np.sin(np.arange(200)), 50)`` gives 150 windows.
    """
    owner = "sliding_windows"
    arr = as_real_array(series, "series", owner, np.float64)
    window = positive_int(window, "window", owner)
    horizon = positive_int(horizon, "horizon", owner)
    stride = positive_int(stride, "stride", owner)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{owner}: expected series of shape (T,) or (T, F), got shape {fmt_shape(arr.shape)}")
    span = window + horizon
    if arr.shape[0] < span:
        raise ValueError(
            f"{owner}: series of length {arr.shape[0]} is too short for window={window} + horizon={horizon}; "
            f"expected length >= {span}"
        )
    # (T - span + 1, F, span) -> every stride-th start -> (N, span, F)
    views = sliding_window_view(arr, span, axis=0)[::stride].transpose(0, 2, 1)
    x = views[:, :window].copy()  # ndarray.copy is C-contiguous and writeable
    y = (views[:, window] if horizon == 1 else views[:, window:]).copy()
    return x, y


def train_val_split(x, y, val_fraction=None, val_size=None):
    """Split samples in time order: the first part trains, the last part validates.

    Give exactly one of ``val_fraction`` (in ``(0, 1)``; ``n_val = floor(N * val_fraction
    + 0.5)``, the nearest integer) or ``val_size`` (an int). Both parts must be non-empty.
    No shuffling: with overlapping windows a random split would leak validation values
    into training.

    Args:
        x: ``(N, ...)``, the inputs, samples along the first axis.
        y: ``(N, ...)``, the targets, the same ``N``.
        val_fraction: float in ``(0, 1)``, the validation share, or None.
        val_size: int >= 1, the number of validation samples, or None.

    Returns:
        ``(x_train, y_train), (x_val, y_val)``, views of the inputs along the first axis.

    Raises:
        ValueError: ``x`` or ``y`` has no sample axis, they differ in ``N``, not exactly
            one of ``val_fraction`` and ``val_size`` is given, ``val_fraction`` is not in
            ``(0, 1)``, ``val_size < 1``, or a part would be empty.
        TypeError: ``val_fraction`` is not a number or ``val_size`` not an int.
    """
    owner = "train_val_split"
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"{owner}: x and y must have a sample axis, got shapes {fmt_shape(x.shape)} and {fmt_shape(y.shape)}"
        )
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"{owner}: x and y must have the same number of samples, got {n} and {y.shape[0]}")
    if (val_fraction is None) == (val_size is None):
        raise ValueError(
            f"{owner}: give exactly one of val_fraction or val_size, "
            f"got val_fraction={val_fraction!r}, val_size={val_size!r}"
        )
    if val_fraction is not None:
        val_fraction = finite_number(val_fraction, "val_fraction", owner)
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"{owner}: val_fraction must be in (0, 1), got {val_fraction}")
        n_val = math.floor(n * val_fraction + 0.5)
    else:
        n_val = positive_int(val_size, "val_size", owner)
    if not 1 <= n_val <= n - 1:
        raise ValueError(
            f"{owner}: both parts must be non-empty: {n} samples give {n_val} for validation "
            f"and {n - n_val} for training"
        )
    cut = n - n_val
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


# ---- scalers -----------------------------------------------------------------------------
class _Scaler:
    """Per-feature affine scaling ``transform(x) = (x - offset) / scale + shift``
    and its inverse ``(x - shift) * scale + offset``; subclasses give ``_affine()``.

    Statistics are taken per feature (last axis) over all leading axes; a 1-D input is
    one feature. Statistics are stored in float64; outputs keep a float input's dtype.
    """

    _state_keys = ()

    def __init__(self):
        self._stats = None  # dict of float64 arrays, each (F,)

    @property
    def fitted(self):
        """True once ``fit`` or ``load_state_dict`` has set the statistics."""
        return self._stats is not None

    def _features(self, x, method):
        arr = as_real_array(x, "x", f"{type(self).__name__}.{method}", np.float64)
        if arr.ndim == 0 or arr.size == 0:
            raise ValueError(
                f"{type(self).__name__}.{method}: expected a non-empty array (..., features), "
                f"got shape {fmt_shape(arr.shape)}"
            )
        return arr, (arr[:, None] if arr.ndim == 1 else arr)

    def _check_fitted(self, method):
        if self._stats is None:
            raise RuntimeError(f"{type(self).__name__}.{method}: the scaler is not fitted; call fit(x) first")

    def fit(self, x):
        """Compute the per-feature statistics of ``x (..., F)``; returns self."""
        _, flat = self._features(x, "fit")
        flat = flat.reshape(-1, flat.shape[-1]).astype(np.float64)
        if not np.all(np.isfinite(flat)):
            raise ValueError(f"{type(self).__name__}.fit: x contains NaN or infinite values")
        self._stats = self._compute(flat)
        return self

    def _apply(self, x, method, inverse):
        self._check_fitted(method)
        arr, feat = self._features(x, method)
        n = self._stats[self._state_keys[-1]].shape[0]
        if feat.shape[-1] != n:
            raise ValueError(
                f"{type(self).__name__}.{method}: fitted on {n} feature(s), got x of shape {fmt_shape(arr.shape)} "
                f"with {feat.shape[-1]} feature(s)"
            )
        offset, scale, shift = self._affine()
        out = (feat - shift) * scale + offset if inverse else (feat - offset) / scale + shift
        return out.reshape(arr.shape).astype(arr.dtype, copy=False)

    def transform(self, x):
        """Scale ``x (..., F)`` with the fitted statistics; same shape and float dtype."""
        return self._apply(x, "transform", inverse=False)

    def fit_transform(self, x):
        return self.fit(x).transform(x)

    def inverse_transform(self, x):
        """Undo ``transform``: map scaled values back to the original units."""
        return self._apply(x, "inverse_transform", inverse=True)

    def state_dict(self):
        """``{name: ndarray}`` copies of the fitted statistics (plain arrays)."""
        self._check_fitted("state_dict")
        return {k: self._stats[k].copy() for k in self._state_keys}

    def load_state_dict(self, state_dict):
        """Restore statistics from ``state_dict()``; wrong keys or shapes raise ``ValueError``."""
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):  # a dict, or e.g. the NpzFile of np.load
            raise TypeError(f"{name}: expected a mapping, got {type(state_dict).__name__}")
        if set(state_dict.keys()) != set(self._state_keys):
            raise ValueError(f"{name}: expected keys {sorted(self._state_keys)}, got {sorted(map(str, state_dict))}")
        # copies: a later change to the caller's arrays cannot change the scaler
        stats = {k: as_float_array(state_dict[k], k, name, np.float64).copy() for k in self._state_keys}
        shapes = {k: v.shape for k, v in stats.items()}
        if any(len(s) != 1 for s in shapes.values()) or len(set(shapes.values())) != 1:
            raise ValueError(f"{name}: expected 1-D arrays (F,) of one length, got shapes {shapes}")
        self._validate(stats, name)
        self._stats = stats


class MinMaxScaler(_Scaler):
    """Scale each feature linearly so its fitted minimum and maximum map to ``feature_range``.

    ``transform(x) = (x - data_min) / (data_max - data_min) * (hi - lo) + lo``. A feature
    with zero range (constant during ``fit``) uses a range of 1 instead, so it maps to
    ``lo + (x - data_min) * (hi - lo)`` and its constant value to ``lo``, never dividing by zero.

    ``state_dict()``: ``{"data_min": (F,), "data_max": (F,)}``.

    Args:
        feature_range: pair of finite numbers ``(lo, hi)`` with ``lo < hi``, where the
            minimum and the maximum go; default ``(0, 1)``.

    Raises:
        TypeError: ``feature_range`` is not a pair of numbers.
        ValueError: a bound is not finite, or ``lo >= hi``.
    """

    _state_keys = ("data_min", "data_max")

    def __init__(self, feature_range=(0, 1)):
        super().__init__()
        try:
            lo, hi = (float(v) for v in feature_range)
        except (TypeError, ValueError):
            raise TypeError(
                f"MinMaxScaler: feature_range must be a pair of numbers (lo, hi), got {feature_range!r}"
            ) from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"MinMaxScaler: feature_range must be finite with lo < hi, got {feature_range!r}")
        self.feature_range = (lo, hi)

    def _compute(self, flat):
        return {"data_min": flat.min(axis=0), "data_max": flat.max(axis=0)}

    def _validate(self, stats, name):
        if not np.all(stats["data_min"] <= stats["data_max"]):
            raise ValueError(f"{name}: data_min must be <= data_max")

    def _affine(self):
        lo, hi = self.feature_range
        data_range = self._stats["data_max"] - self._stats["data_min"]
        data_range = np.where(data_range == 0.0, 1.0, data_range)
        return self._stats["data_min"], data_range / (hi - lo), lo

    def __repr__(self):
        return f"MinMaxScaler(feature_range={self.feature_range})"


class StandardScaler(_Scaler):
    """Standardize each feature: ``transform(x) = (x - mean) / std``.

    ``std`` is the population standard deviation (``ddof=0``, as scikit-learn). A feature
    with zero std uses 1 instead, so it is only centred (its constant value maps to 0).

    ``state_dict()``: ``{"mean": (F,), "std": (F,)}`` (``std`` as measured, possibly 0).
    """

    _state_keys = ("mean", "std")

    def _compute(self, flat):
        mean, std = flat.mean(axis=0), flat.std(axis=0)
        # A constant feature: its rounded mean may miss the value by an ulp, leaving a tiny
        # std (1e-11 for 1e5) that would map the value to -1 or 1; make it exact.
        constant = flat.min(axis=0) == flat.max(axis=0)
        return {"mean": np.where(constant, flat[0], mean), "std": np.where(constant, 0.0, std)}

    def _validate(self, stats, name):
        if not np.all(stats["std"] >= 0.0):
            raise ValueError(f"{name}: std must be >= 0")

    def _affine(self):
        std = self._stats["std"]
        return self._stats["mean"], np.where(std == 0.0, 1.0, std), 0.0

    def __repr__(self):
        return "StandardScaler()"


# ---- synthetic series ----------------------------------------------------------------------
def _vector(value, name, owner, length=None):
    arr = as_float_array(value, name, owner, np.float64)
    arr = arr.reshape(1) if arr.ndim == 0 else arr
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{owner}: {name} must be a number or a non-empty 1-D sequence, got shape {fmt_shape(arr.shape)}"
        )
    if length is not None and arr.size != length:
        raise ValueError(f"{owner}: {name} must have one entry per frequency ({length}), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{owner}: {name} must be finite, got {arr.tolist()}")
    return arr


def sine_wave(length, frequencies=(1.0,), amplitudes=None, phases=None, noise=0.0, step=1.0, seed=None):
    """A sum of sines sampled at ``t = step * arange(length)``, plus optional Gaussian noise.

    ``s[t] = sum_k amplitudes[k] * sin(frequencies[k] * t + phases[k]) + noise * N(0, 1)``.
    Frequencies are angular (radians per unit of ``t``). Amplitudes default to 1, phases
    to 0; with the defaults ``sine_wave(200)`` equals ``np.sin(np.arange(200))`` exactly.

    Args:
        length: number of samples, >= 1.
        frequencies: a number or one entry per component.
        amplitudes: a number or one entry per component (default 1).
        phases: a number or one entry per component (default 0).
        noise: standard deviation of the added noise, >= 0 (0: no random numbers drawn).
        step: sampling interval, > 0.
        seed: int or ``numpy.random.Generator`` for the noise; None uses minidl's global
            generator (seeded by ``minidl.set_seed``).

    Returns:
        float64 array ``(length,)``.

    Raises:
        TypeError: ``length`` is not an int, a number is not a real number, or ``seed``
            is not None, an int >= 0 or a Generator.
        ValueError: ``length < 1``, a component list of another length than
            ``frequencies`` or not finite, ``noise < 0``, or ``step <= 0``.
    """
    owner = "sine_wave"
    length = positive_int(length, "length", owner)
    freqs = _vector(frequencies, "frequencies", owner)
    amps = np.ones_like(freqs) if amplitudes is None else _vector(amplitudes, "amplitudes", owner, freqs.size)
    phs = np.zeros_like(freqs) if phases is None else _vector(phases, "phases", owner, freqs.size)
    noise = finite_number(noise, "noise", owner, minimum=0.0)
    step = finite_number(step, "step", owner, minimum=0.0, min_open=True)
    rng = generator(seed, owner) or get_rng()
    t = step * np.arange(length, dtype=np.float64)
    series = (amps[:, None] * np.sin(freqs[:, None] * t + phs[:, None])).sum(axis=0)
    if noise > 0.0:
        series += rng.normal(0.0, noise, size=length)
    return series
