"""Plots of training histories, predictions and forecasts.

matplotlib is imported inside the functions, so ``import minidl`` never loads it. The
figures are ``matplotlib.figure.Figure`` objects built without pyplot: no GUI backend is
needed (headless servers, CI), and no global figure list keeps them alive. Each function
returns its Figure and, when ``path`` is given, writes it there as PNG.
"""

import os
from collections.abc import Mapping

import numpy as np

from ._checks import as_float_array, fmt_shape
from .training.windows import tbptt_windows

__all__ = ["plot_history", "plot_predictions", "plot_forecast", "plot_tbptt", "plot_gradient_flow"]


def _figure(nrows, title, owner):
    from matplotlib.figure import Figure  # lazy: see the module docstring

    if title is not None and not isinstance(title, str):
        raise TypeError(f"{owner}: title must be a str or None, got {type(title).__name__}")
    fig = Figure(figsize=(8.0, 2.0 + 2.5 * nrows), layout="constrained")
    axes = fig.subplots(nrows, 1, sharex=True, squeeze=False)[:, 0]
    if title:
        fig.suptitle(title)
    return fig, axes


def _save(fig, path, owner):
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"{owner}: path must be a str, a path-like object or None, got {type(path).__name__}")
        fig.savefig(os.fspath(path), format="png", dpi=100)
    return fig


def _columns(values, name, owner, allow_none=False):
    """``values`` (n,) or (n, F) as a float64 (n, F) array; None passes through if allowed."""
    if values is None and allow_none:
        return None
    arr = as_float_array(values, name, owner, np.float64)
    if arr.ndim not in (1, 2) or arr.shape[0] == 0:
        raise ValueError(
            f"{owner}: expected non-empty {name} of shape (n,) or (n, F), got shape {fmt_shape(arr.shape)}"
        )
    return arr[:, None] if arr.ndim == 1 else arr


def plot_history(history, path=None, title=None):
    """Plot every per-epoch series of a training history against the epoch (1, 2, ...).

    Args:
        history: a ``History`` (anything with a ``.history`` dict) or a plain dict
            ``{name: [value per epoch]}``, e.g. ``{"loss": [...], "val_loss": [...]}``.
        path: where to write the PNG, or None.
        title: figure title, or None.

    The y axis is logarithmic when every value is > 0 (losses spanning decades stay
    readable), linear otherwise (e.g. negative values or NaN).

    Returns:
        the ``matplotlib.figure.Figure``.

    Raises:
        TypeError: ``history`` is neither a ``History`` nor a mapping, a series is not
            numeric, or ``path`` is not a str, path-like or None, or ``title`` not a str or
            None.
        ValueError: a series is not 1-D, or there is no value to plot.
    """
    owner = "plot_history"
    logs = getattr(history, "history", history)
    if not isinstance(logs, Mapping):
        raise TypeError(f"{owner}: history must be a History or a dict of lists, got {type(history).__name__}")
    series = {}
    for key, values in logs.items():
        arr = as_float_array(values, f"history[{key!r}]", owner, np.float64)
        if arr.ndim != 1:
            raise ValueError(
                f"{owner}: history[{key!r}] must be a 1-D list of per-epoch values, got shape {fmt_shape(arr.shape)}"
            )
        if arr.size:
            series[str(key)] = arr
    if not series:
        raise ValueError(f"{owner}: history has no values to plot, got keys {sorted(map(str, logs))}")

    fig, (ax,) = _figure(1, title, owner)
    for key, arr in series.items():
        epochs = np.arange(1, arr.size + 1)
        ax.plot(epochs, arr, label=key, marker="o" if arr.size <= 30 else None, markersize=3)
    if all(np.all(arr > 0.0) for arr in series.values()):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss" if all("loss" in k for k in series) else "value")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path, owner)


def plot_predictions(y_true, y_pred, path=None, title=None):
    """Plot targets and predictions sample by sample, one panel per feature.

    Args:
        y_true: the targets, ``(N,)`` or ``(N, F)``.
        y_pred: the predictions, the same shape as ``y_true``.
        path: where to write the PNG, or None (as in ``plot_history``).
        title: figure title, or None.

    Each panel's legend gives the RMSE of that feature.

    Returns:
        the ``matplotlib.figure.Figure``.

    Raises:
        TypeError: an array is not numeric, or ``path`` is not a str, path-like or None, or
            ``title`` not a str or None.
        ValueError: an array is empty or not ``(N,)`` / ``(N, F)``, or ``y_pred``'s shape is
            not ``y_true``'s.
    """
    owner = "plot_predictions"
    true = _columns(y_true, "y_true", owner)
    pred = _columns(y_pred, "y_pred", owner)
    if true.shape != pred.shape:
        raise ValueError(
            f"{owner}: y_true and y_pred must have the same shape, got {fmt_shape(np.shape(y_true))} "
            f"and {fmt_shape(np.shape(y_pred))}"
        )
    fig, axes = _figure(true.shape[1], title, owner)
    index = np.arange(true.shape[0])
    for j, ax in enumerate(axes):
        rmse = float(np.sqrt(np.mean((pred[:, j] - true[:, j]) ** 2)))
        ax.plot(index, true[:, j], label="true", linewidth=1.5)
        ax.plot(index, pred[:, j], label=f"predicted (RMSE {rmse:.4g})", linestyle="--", linewidth=1.5)
        ax.set_ylabel(f"feature {j}" if true.shape[1] > 1 else "value")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    axes[-1].set_xlabel("sample")
    return _save(fig, path, owner)


def plot_forecast(truth, forecast, context=None, path=None, title=None):
    """Plot a free-running forecast against the true continuation, after its seed.

    Args:
        truth: the actual values over the forecast period, ``(n,)`` or ``(n, F)``, or None
            when they are unknown.
        forecast: ``(steps,)`` or ``(steps, F)``, e.g. from ``minidl.data.forecast``.
        context: the seed window ``(W,)`` or ``(W, F)`` the forecast started from, drawn at
            steps ``0 .. W-1``; truth and forecast then start at step ``W``. None: they
            start at 0.
        path: where to write the PNG, or None (as in ``plot_history``).
        title: figure title, or None.

    Returns:
        the ``matplotlib.figure.Figure``.

    Raises:
        TypeError: an array is not numeric, or ``path`` is not a str, path-like or None, or
            ``title`` not a str or None.
        ValueError: an array is empty or not ``(n,)`` / ``(n, F)``, or ``truth`` /
            ``context`` has another number of features than ``forecast``.
    """
    owner = "plot_forecast"
    pred = _columns(forecast, "forecast", owner)
    true = _columns(truth, "truth", owner, allow_none=True)
    ctx = _columns(context, "context", owner, allow_none=True)
    n_features = pred.shape[1]
    for name, arr in (("truth", true), ("context", ctx)):
        if arr is not None and arr.shape[1] != n_features:
            raise ValueError(f"{owner}: {name} has {arr.shape[1]} feature(s) but forecast has {n_features}")

    start = 0 if ctx is None else ctx.shape[0]
    fig, axes = _figure(n_features, title, owner)
    for j, ax in enumerate(axes):
        if ctx is not None:
            ax.plot(np.arange(start), ctx[:, j], color="0.35", label="context (seed)")
            ax.axvline(start - 0.5, color="0.6", linestyle=":", linewidth=1)
        if true is not None:
            ax.plot(start + np.arange(true.shape[0]), true[:, j], color="C0", label="truth")
        ax.plot(start + np.arange(pred.shape[0]), pred[:, j], color="C1", linestyle="--", label="forecast")
        ax.set_ylabel(f"feature {j}" if n_features > 1 else "value")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    axes[-1].set_xlabel("step")
    return _save(fig, path, owner)


def plot_tbptt(T, k1=None, k2=None, path=None, title=None):
    """Draw the TBPTT(k1, k2) schedule over ``T`` steps, one row per update.

    Dark cells are the chunk ``[p, e)`` whose outputs enter the loss, light cells the
    earlier steps of the window ``[s, e)`` the gradient also flows through, and the
    dot the stored state the window starts from. The schedule is the trainer's own
    (``minidl.training.windows.tbptt_windows``).

    Args:
        T: int >= 1, the sequence length.
        k1: int >= 1, the steps between updates (the chunk), or None for ``T``.
        k2: int >= ``k1``, the steps backpropagated through, or None for ``k1``.
        path: where to write the PNG, or None (as in ``plot_history``).
        title: figure title, or None for one naming ``T``, ``k1`` and ``k2``.

    Returns:
        the ``matplotlib.figure.Figure``.

    Raises:
        TypeError: ``T``, ``k1`` or ``k2`` is not an int, or ``path`` / ``title`` of the
            wrong type.
        ValueError: ``T``, ``k1`` or ``k2`` < 1, or ``k2 < k1``.
    """
    from matplotlib.patches import Rectangle  # lazy: see the module docstring

    owner = "plot_tbptt"
    windows = tbptt_windows(T, k1, k2)
    fig, (ax,) = _figure(1, title or f"TBPTT(k1={k1 or T}, k2={k2 or k1 or T}) over T={T} steps", owner)
    fig.set_size_inches(max(6.0, 0.45 * T + 2.0), 1.2 + 0.45 * len(windows))
    for row, (s, p, e) in enumerate(windows):
        y = len(windows) - 1 - row
        for t in range(s, e):
            chunk = t >= p
            ax.add_patch(Rectangle((t, y + 0.1), 0.95, 0.8, facecolor="tab:blue", alpha=0.9 if chunk else 0.3,
                                   edgecolor="none"))
        ax.plot([s], [y + 0.5], "o", color="black", markersize=4)
        ax.text(T + 0.2, y + 0.5, f"update {row + 1}: forward {s}..{e - 1}, loss on {p}..{e - 1}", va="center", fontsize=8)
    ax.set_xlim(-0.3, T + 0.1 + 0.3 * T)
    ax.set_ylim(0, len(windows))
    ax.set_yticks([])
    ax.set_xticks([t + 0.475 for t in range(T)], labels=[str(t) for t in range(T)])
    ax.set_xlabel("time step")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return _save(fig, path, owner)


def plot_gradient_flow(results, path=None, title=None):
    """Plot gradient norms against the number of steps back, on a logarithmic y axis.

    Args:
        results: ``{name: norms}`` with ``norms[k] = ||dL/dh_{T-k}||`` for ``k = 0, 1, ...``
            as ``minidl.diagnostics.gradient_flow`` returns them (one curve per name, e.g.
            one per cell type or initializer; the lengths may differ). A single array is
            drawn unnamed.
        path: where to write the PNG, or None (as in ``plot_history``).
        title: figure title, or None.

    Zero norms (a gradient that vanished exactly) cannot be drawn on the log axis and are
    left out of their curve.

    Returns:
        the ``matplotlib.figure.Figure``.

    Raises:
        TypeError: a curve is not numeric, or ``path`` is not a str, path-like or None, or
            ``title`` not a str or None.
        ValueError: ``results`` is empty, or a curve is not a non-empty 1-D array of finite
            norms >= 0.
    """
    owner = "plot_gradient_flow"
    if not isinstance(results, Mapping):
        results = {"": results}
    if not results:
        raise ValueError(f"{owner}: results is empty; expected {{name: norms}}")
    curves = {}
    for name, values in results.items():
        arr = as_float_array(values, f"results[{name!r}]", owner, np.float64)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{owner}: results[{name!r}] must be a non-empty 1-D array, got shape {fmt_shape(arr.shape)}")
        if np.any(arr < 0) or not np.all(np.isfinite(arr)):
            raise ValueError(f"{owner}: results[{name!r}] must hold finite norms >= 0, got {arr!r:.200}")
        curves[str(name)] = arr

    fig, (ax,) = _figure(1, title, owner)
    for name, arr in curves.items():
        k = np.arange(arr.size)
        shown = arr > 0
        ax.plot(k[shown], arr[shown], label=name or None, marker="o" if arr.size <= 40 else None, markersize=3)
    ax.set_yscale("log")
    ax.set_xlabel("k (steps back from the last step)")
    ax.set_ylabel(r"$\|\partial L / \partial h_{T-k}\|$")
    ax.grid(True, which="both", alpha=0.3)
    if any(curves):
        ax.legend()
    return _save(fig, path, owner)

