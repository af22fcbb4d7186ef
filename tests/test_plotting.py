"""minidl.plotting: real PNG files, headless, matplotlib imported only when plotting; every plot
function, plot_gradient_flow included, and their bad inputs."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import minidl as mdl
from minidl import plotting

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    with open(path, "rb") as f:
        head = f.read(8)
    assert head == PNG_SIGNATURE
    assert os.path.getsize(path) > 1000


def test_import_does_not_load_matplotlib():
    code = (
        "import sys\n"
        "import minidl, minidl.plotting, minidl.data\n"
        "from minidl import plotting\n"
        "loaded = sorted(m for m in sys.modules if m == 'matplotlib' or m.startswith('matplotlib.'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "[]"


def test_plot_history_from_history_object(tmp_path):
    history = mdl.History()
    for epoch, (loss, val) in enumerate([(1.0, 1.2), (0.1, 0.2), (0.01, 0.05)]):
        history.record(epoch, {"loss": loss, "val_loss": val})
    path = tmp_path / "loss.png"
    fig = plotting.plot_history(history, path=path, title="losses")
    _assert_png(path)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == ["loss", "val_loss"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), [1.2, 0.2, 0.05])
    assert fig.get_suptitle() == "losses"


def test_plot_history_dict_linear_when_not_all_positive(tmp_path):
    fig = plotting.plot_history({"loss": [0.5, 0.25], "delta": [0.0, -1.0]}, path=str(tmp_path / "h.png"))
    _assert_png(tmp_path / "h.png")
    assert fig.axes[0].get_yscale() == "linear"
    assert fig.axes[0].get_ylabel() == "value"
    fig = plotting.plot_history({"loss": [0.5, 0.25]})  # no path: nothing written, still a Figure
    assert fig.axes[0].get_ylabel() == "loss" and fig.get_suptitle() == ""
    assert [p.name for p in tmp_path.iterdir()] == ["h.png"]


def test_plot_predictions(tmp_path):
    y = np.sin(np.arange(30.0))
    path = tmp_path / "pred.png"
    fig = plotting.plot_predictions(y[:, None], y[:, None] + 0.5, path=path, title="validation")
    _assert_png(path)
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["true", "predicted (RMSE 0.5)"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), y + 0.5)
    fig = plotting.plot_predictions(np.zeros((5, 3)), np.ones((5, 3)))
    assert len(fig.axes) == 3


def test_plot_forecast(tmp_path):
    context = np.sin(np.arange(50.0))
    truth = np.sin(np.arange(50.0, 80.0))
    forecast = truth + 0.1
    path = tmp_path / "forecast.png"
    fig = plotting.plot_forecast(truth, forecast, context=context, path=path, title="forecast")
    _assert_png(path)
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {"context (seed)", "truth", "forecast"} <= set(lines)
    np.testing.assert_array_equal(lines["context (seed)"].get_xdata(), np.arange(50))
    np.testing.assert_array_equal(lines["forecast"].get_xdata(), np.arange(50, 80))
    np.testing.assert_allclose(lines["forecast"].get_ydata(), forecast)
    # unknown truth, no context, two features: two panels, forecast from step 0
    fig = plotting.plot_forecast(None, np.zeros((4, 2)), path=tmp_path / "f2.png")
    _assert_png(tmp_path / "f2.png")
    assert len(fig.axes) == 2
    np.testing.assert_array_equal(fig.axes[1].get_lines()[0].get_xdata(), np.arange(4))


@pytest.mark.parametrize(
    "call, err, text",
    [
        (lambda: plotting.plot_history([1, 2]), TypeError, "plot_history: history must be a History or a dict of lists, got list"),
        (lambda: plotting.plot_history({}), ValueError, "plot_history: history has no values to plot"),
        (lambda: plotting.plot_history({"loss": ["a"]}), TypeError, "history['loss'] must be a real numeric array"),
        (lambda: plotting.plot_predictions(np.zeros(3), np.zeros(4)), ValueError, "same shape, got (3,) and (4,)"),
        (lambda: plotting.plot_predictions(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))), ValueError, "shape (n,) or (n, F)"),
        (lambda: plotting.plot_forecast(np.zeros((3, 2)), np.zeros(3)), ValueError, "truth has 2 feature(s) but forecast has 1"),
        (lambda: plotting.plot_forecast(None, np.zeros(3), path=3), TypeError, "path must be a str, a path-like object or None"),
        (lambda: plotting.plot_forecast(None, np.zeros(3), title=1), TypeError, "title must be a str or None"),
    ],
)
def test_plot_bad_inputs(call, err, text):
    with pytest.raises(err, match=re.escape(text)):
        call()


# ---- plot_gradient_flow ------------------------------------------------------------------
def test_plot_gradient_flow(tmp_path):
    results = {"tanh": np.array([1.0, 0.5, 0.25, 0.0]), "lstm": [1.0, 0.9, 0.8]}
    path = tmp_path / "flow.png"
    fig = plotting.plot_gradient_flow(results, path=path, title="flow")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == ["tanh", "lstm"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [0, 1, 2])  # the zero is left out
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), [1.0, 0.9, 0.8])
    assert fig.get_suptitle() == "flow"
    assert len(plotting.plot_gradient_flow(np.array([1.0, 0.1])).axes[0].get_lines()) == 1


@pytest.mark.parametrize(
    "results, err, pattern",
    [
        ({}, ValueError, r"plot_gradient_flow: results is empty"),
        ({"a": [[1.0, 2.0]]}, ValueError, r"results\['a'\] must be a non-empty 1-D array, got shape \(1, 2\)"),
        ({"a": [1.0, -1.0]}, ValueError, r"must hold finite norms >= 0"),
        ({"a": ["x"]}, TypeError, r"results\['a'\] must be a real numeric array"),
    ],
)
def test_plot_gradient_flow_errors(results, err, pattern):
    with pytest.raises(err, match=pattern):
        plotting.plot_gradient_flow(results)
