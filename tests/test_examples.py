"""The worked examples run end to end in their quick mode and write real plots."""

import importlib.util
import pathlib

import pytest

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
