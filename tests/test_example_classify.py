"""examples/classify.py: its quick mode end to end, its data generator and padding, by value."""

import numpy as np
import pytest

import minidl as mdl
from tests.test_examples import load_example, read_png

pytestmark = pytest.mark.slow


def test_classify_example_quick(tmp_path, capsys):
    classify = load_example("classify")
    results = classify.main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "data: 300 training and 100 validation sequences of 5-60 steps, padded to 60" in out
    names = [f"{model}, {variant}" for model in ("RNN (tanh)", "Bidirectional GRU")
             for variant in ("no mask", "pre-padding", "mask")]
    for name in names:
        assert f"| {name} " in out
    assert set(results["accuracy"]) == set(names) == set(results["padding_change"])
    assert all(0.0 <= acc <= 1.0 for acc in results["accuracy"].values())
    change = results["padding_change"]
    # with a mask, padding length, padding value and running alone leave the logits as they are ...
    assert change["RNN (tanh), mask"] < 1e-5 and change["Bidirectional GRU, mask"] < 1e-5
    # ... without one the model reads the padding, and 60 more zeros move its logits
    assert change["RNN (tanh), no mask"] > 1e-3 and change["Bidirectional GRU, no mask"] > 1e-3
    assert change["Bidirectional GRU, pre-padding"] > 1e-3          # its backward direction ends in zeros
    for name in ("RNN (tanh), mask", "Bidirectional GRU, mask"):
        assert results["accuracy_padded_to_120"][name] == results["accuracy"][name]
    for name in ("val_accuracy.png", "accuracy_by_length.png"):
        read_png(tmp_path / name)


def test_patterns_without_noise_are_one_ramp_in_zeros():
    classify = load_example("classify")
    seqs, labels = classify.make_patterns(500, np.random.default_rng(0), noise=0.0)
    ramp = [-1.0, -0.5, 0.0, 0.5, 1.0]
    for seq, label in zip(seqs, labels):
        assert seq.dtype == np.float32 and 5 <= len(seq) <= 60
        start = int(np.flatnonzero(seq == (-1.0 if label == 0 else 1.0))[0])
        np.testing.assert_array_equal(seq[start:start + 5], ramp if label == 0 else ramp[::-1])
        assert np.count_nonzero(seq) == 4                          # the ramp's middle step is 0
    lengths = np.array([len(s) for s in seqs])
    assert lengths.min() == 5 and lengths.max() == 60               # both ends are drawn
    assert labels.dtype == np.int64 and set(np.unique(labels)) == {0, 1} and 0.4 < labels.mean() < 0.6


def test_patterns_noise_and_seed():
    classify = load_example("classify")
    seqs, labels = classify.make_patterns(3000, np.random.default_rng(1), min_len=40, max_len=40)
    x = np.stack(seqs)
    clean, _ = classify.make_patterns(3000, np.random.default_rng(1), min_len=40, max_len=40, noise=0.0)
    noise = x - np.stack(clean)                                     # the same draws, without the noise
    assert abs(noise.std() - 0.3) < 0.003 and abs(noise.mean()) < 0.003
    again, labels_again = classify.make_patterns(3000, np.random.default_rng(1), min_len=40, max_len=40)
    np.testing.assert_array_equal(np.stack(again), x)
    np.testing.assert_array_equal(labels_again, labels)
    with pytest.raises(ValueError, match="need 5 <= min_len <= max_len, got 4 and 60"):
        classify.make_patterns(3, np.random.default_rng(0), min_len=4)


def test_pad_post_and_pre():
    classify = load_example("classify")
    seqs = [np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0, 5.0], np.float32)]
    x, mask = classify.pad(seqs, 4)
    assert x.shape == (2, 4, 1) and x.dtype == np.float32
    assert x[:, :, 0].tolist() == [[1, 2, 0, 0], [3, 4, 5, 0]]
    assert mask.tolist() == [[True, True, False, False], [True, True, True, False]]
    x, mask = classify.pad(seqs, 4, side="pre", value=-7.0)
    assert x[:, :, 0].tolist() == [[-7, -7, 1, 2], [-7, 3, 4, 5]]
    assert mask.tolist() == [[False, False, True, True], [False, True, True, True]]
    x, mask = classify.padded_for("no mask", seqs, 3)
    assert mask is None and x[:, :, 0].tolist() == [[1, 2, 0], [3, 4, 5]]


def test_masked_model_matches_each_sequence_alone_and_masking_gives_the_same_mask():
    classify = load_example("classify")
    seqs, _ = classify.make_patterns(30, np.random.default_rng(2))
    mdl.set_seed(0)
    model = classify.build_model("bigru", 5)
    assert classify.padding_change(model, "mask", seqs) < 1e-5
    assert classify.padding_change(model, "no mask", seqs) > 1e-3
    x, mask = classify.pad(seqs, 60)
    np.testing.assert_array_equal(mdl.Masking(0.0).compute_mask(x, None), mask)


def test_accuracy_by_length():
    classify = load_example("classify")
    correct = np.array([True, False, True, True, False])
    lengths = np.array([5, 6, 13, 20, 60])
    acc = classify.accuracy_by_length(correct, lengths, np.array([5, 13, 21, 61]))
    np.testing.assert_array_equal(acc, [0.5, 1.0, 0.0])
