"""The worked examples run end to end in their quick mode and write real plots."""

import importlib.util
import pathlib

import pytest

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sine_example_quick(tmp_path, capsys):
    sine = load_example("sine")
    rmse = sine.main(["--quick", "--out", str(tmp_path), "--hidden", "16"])
    out = capsys.readouterr().out
    assert "validation RMSE:" in out and "0.127" in out
    assert "| full BPTT" in out and "| truncated, k2=5" in out
    assert 0.0 < rmse < 1.0
    for name in ("loss.png", "validation.png", "forecast.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 1000, name


def test_sine_dataset_is_the_articles_split():
    sine = load_example("sine")
    (x_train, y_train), (x_val, y_val), series = sine.make_dataset()
    assert x_train.shape == (100, 50, 1) and y_train.shape == (100, 1)
    assert x_val.shape == (50, 50, 1) and y_val.shape == (50, 1)
    import numpy as np

    np.testing.assert_array_equal(x_val[0, :, 0], np.sin(np.arange(100, 150)))
    assert y_val[-1, 0] == pytest.approx(np.sin(199.0))


def read_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000, path.name
    return data


# ---- examples/adding.py --------------------------------------------------------------------
def test_adding_example_quick(tmp_path, capsys):
    adding = load_example("adding")
    results = adding.main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "baseline (always predict 1): val MSE" in out and "(expected 1/6 = 0.1667)" in out
    for name in ("LSTM", "GRU", "RNN (tanh)", "RNN (tanh), orthogonal"):
        assert f"| {name} " in out and f"{name}: val MSE" in out
    assert set(results) == {"LSTM", "GRU", "RNN (tanh)", "RNN (tanh), orthogonal"}
    assert all(0.0 < mse < 2.0 for mse in results.values())
    # an orthogonal matrix has every eigenvalue on the unit circle
    assert "RNN (tanh), orthogonal: spectral radius of the recurrent kernel 1.00 initially" in out
    assert "  RNN (tanh), orthogonal, trained    1.0e+00" in out      # per-sequence norms start at 1
    for name in ("val_mse.png", "gradient_flow.png"):
        read_png(tmp_path / name)


def test_adding_data_and_baseline():
    import numpy as np

    adding = load_example("adding")
    x, y = adding.make_adding(4000, 50, np.random.default_rng(1))
    assert x.shape == (4000, 50, 2) and y.shape == (4000, 1) and x.dtype == np.float32
    marks = x[:, :, 1]
    assert set(np.unique(marks)) == {0.0, 1.0}
    assert (marks[:, :25].sum(axis=1) == 1).all() and (marks[:, 25:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(axis=1), rtol=1e-6)
    assert 0.0 <= x[:, :, 0].min() and x[:, :, 0].max() < 1.0
    # predicting 1 (the mean of u1 + u2) has MSE Var(u1 + u2) = 2 * 1/12
    _, y_big = adding.make_adding(200_000, 4, np.random.default_rng(2))
    assert abs(np.mean((y_big - 1.0) ** 2) - 1 / 6) < 0.002
    again, _ = adding.make_adding(4000, 50, np.random.default_rng(1))
    np.testing.assert_array_equal(again, x)


# ---- examples/text.py ----------------------------------------------------------------------
def test_text_example_quick(tmp_path, capsys):
    import math

    text = load_example("text")
    loss = text.main(["--quick", "--out", str(tmp_path), "--temperature", "0.5", "--seed", "3"])
    out = capsys.readouterr().out
    v = int(out.split("V = ")[1].split()[0])
    assert "loss per character of a uniform guess: ln V =" in out
    assert "epoch   1/2: loss per character" in out and "samples after training, temperature 0.5:" in out
    assert 0.0 < loss < math.log(v)
    read_png(tmp_path / "loss.png")
    samples = (tmp_path / "samples.txt").read_text(encoding="utf-8")
    assert samples.startswith("== epoch 1, temperature 0.5\nThe ") and "== after training" in samples


def test_text_example_uses_the_package_helpers():
    import minidl as mdl

    text = load_example("text")
    assert text.Vocabulary is mdl.text.Vocabulary and text.make_streams is mdl.text.make_streams
    assert text.sample is mdl.text.sample              # tested in tests/test_text.py
    mdl.set_seed(0)
    model = text.build_model(4, 4, 8, dropout=0.5)
    assert [type(layer).__name__ for layer in model.layers] == ["Embedding", "RNN", "Dropout", "Dense"]
    assert model.predict(mdl.text.Vocabulary("abcd").encode("abc")[None]).shape == (1, 3, 4)


# ---- examples/forecast.py --------------------------------------------------------------------
def test_forecast_example_quick(tmp_path, capsys):
    forecast = load_example("forecast")
    value = forecast.main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "Mackey-Glass, tau = 17:" in out and "TBPTT(k1=20, k2=40)" in out
    assert "84-step forecast from the end of the training stream: NRMSE" in out
    assert "84-step forecasts from 3 held-out origins: NRMSE" in out
    assert 0.0 < value < 10.0
    for name in ("loss.png", "forecast.png", "error_by_step.png"):
        read_png(tmp_path / name)


def test_mackey_glass_solves_the_delay_equation():
    import numpy as np

    forecast = load_example("forecast")
    x = forecast.mackey_glass(3000, dt=0.1, sample_every=0.1, transient=100.0)
    lag = 170
    t = np.arange(lag, len(x) - 1)                            # x[t] is x(t * 0.1); x[t - lag] is x(t*0.1 - 17)
    slope = (x[t + 1] - x[t - 1]) / 0.2                        # central differences
    rhs = 0.2 * x[t - lag] / (1 + x[t - lag] ** 10) - 0.1 * x[t]
    np.testing.assert_allclose(slope, rhs, atol=1e-4)
    assert np.abs(rhs).max() > 0.02                            # the check is not on a flat series
    # halving the step changes the sampled series very little over 100 time units
    coarse = forecast.mackey_glass(100, transient=0.0)
    fine = forecast.mackey_glass(100, dt=0.05, transient=0.0)
    np.testing.assert_allclose(coarse, fine, atol=1e-4)
    long = forecast.mackey_glass(2000)
    assert 0.2 < long.min() < 0.5 and 1.2 < long.max() < 1.4   # the familiar range of tau = 17


def test_forecast_free_run_feeds_back_its_predictions():
    import numpy as np

    import minidl as mdl

    forecast = load_example("forecast")
    mdl.set_seed(0)
    model = forecast.build_model("gru", 6)
    context = np.random.default_rng(0).standard_normal((2, 15)).astype(np.float32)
    run = forecast.free_run(model, context, 5)
    seq = context
    for s in range(5):                                  # stateless: the whole growing sequence each time
        nxt = model.predict(seq[:, :, None])[:, -1, 0]
        np.testing.assert_allclose(run[:, s], nxt, rtol=1e-5, atol=1e-6)
        seq = np.concatenate([seq, nxt[:, None]], axis=1)
    assert forecast.nrmse([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.0
    assert forecast.nrmse([1.0, -1.0], [0.0, 0.0]) == 1.0
