"""minidl.text: the character vocabulary, parallel streams, and sampling from token models
(a model whose logits are set by hand, so the sampled distribution is known)."""

import numpy as np
import pytest

import minidl as mdl
from minidl.text import Vocabulary, make_streams, sample, sample_logits


# ---- Vocabulary and streams ---------------------------------------------------------------------
def test_vocabulary_round_trip():
    vocab = Vocabulary("abcab ca")
    assert vocab.chars == [" ", "a", "b", "c"] and len(vocab) == 4 and vocab.index["c"] == 3
    ids = vocab.encode("cab a")
    np.testing.assert_array_equal(ids, [3, 1, 2, 0, 1])
    assert ids.dtype == np.int64 and vocab.decode(ids) == "cab a"
    assert vocab.decode(np.array([[1, 2], [3, 0]])) == "abc " and vocab.decode(np.array([], dtype=int)) == ""


def test_vocabulary_bad_inputs():
    with pytest.raises(ValueError, match=r"^Vocabulary: the text is empty"):
        Vocabulary("")
    with pytest.raises(TypeError, match=r"^Vocabulary: text must be a str, got list"):
        Vocabulary(["a"])
    vocab = Vocabulary("ab")
    with pytest.raises(ValueError, match=r"characters not in the vocabulary: \['c', 'd'\]"):
        vocab.encode("abdc")
    with pytest.raises(ValueError, match=r"^Vocabulary.decode: ids must lie in \[0, 1\], got values in \[0, 2\]"):
        vocab.decode([0, 2])
    with pytest.raises(TypeError, match=r"ids must be an integer array, got dtype float64"):
        vocab.decode([0.5])


def test_make_streams():
    streams = make_streams(np.arange(23), 4)                  # 4 streams of 5, the last 3 tokens dropped
    np.testing.assert_array_equal(streams, np.arange(20).reshape(4, 5))
    with pytest.raises(ValueError, match=r"^make_streams: 7 tokens are too few for 4 streams of at least 2"):
        make_streams(np.arange(7), 4)
    with pytest.raises(ValueError, match=r"expected ids of shape \(N,\), got \(2, 3\)"):
        make_streams(np.zeros((2, 3), dtype=int), 1)
    with pytest.raises(ValueError, match=r"batch must be >= 1, got 0"):
        make_streams(np.arange(8), 0)


# ---- sample_logits --------------------------------------------------------------------------
def test_sample_logits_follows_softmax_over_temperature():
    logits = np.log(np.array([[0.5, 0.3, 0.2]] * 20000))
    counts = np.bincount(sample_logits(logits, 1.0, seed=1), minlength=3) / 20000
    np.testing.assert_allclose(counts, [0.5, 0.3, 0.2], atol=0.015)
    sharp = np.bincount(sample_logits(logits, 0.5, seed=1), minlength=3) / 20000
    np.testing.assert_allclose(sharp, np.array([25, 9, 4]) / 38, atol=0.015)   # p**2, renormalized
    flat = np.bincount(sample_logits(logits, 100.0, seed=1), minlength=3) / 20000
    np.testing.assert_allclose(flat, [1 / 3] * 3, atol=0.015)


def test_sample_logits_greedy_and_seeding():
    logits = np.array([[0.1, 2.0, -1.0], [5.0, 5.0, 1.0], [-3.0, -2.0, -2.5]])
    np.testing.assert_array_equal(sample_logits(logits, 0.0), [1, 0, 1])     # ties: the lowest id
    np.testing.assert_array_equal(sample_logits(logits * 1e6, 1e-300, seed=0), [1, 0, 1])  # T -> 0 is greedy
    assert sample_logits(np.array([0.0, 3.0]), 0) == 1
    rng = np.random.default_rng(4)
    wide = np.zeros((50, 10))
    first, second = sample_logits(wide, seed=rng), sample_logits(wide, seed=rng)
    assert (first != second).any()                                            # a Generator goes on
    np.testing.assert_array_equal(sample_logits(wide, seed=7), sample_logits(wide, seed=7))
    mdl.set_seed(3)
    a = sample_logits(wide)
    mdl.set_seed(3)
    np.testing.assert_array_equal(a, sample_logits(wide))                     # the global generator


def test_sample_logits_bad_inputs():
    with pytest.raises(ValueError, match=r"^sample_logits: temperature must be >= 0.0, got -1.0"):
        sample_logits(np.zeros((1, 3)), -1.0)
    with pytest.raises(ValueError, match=r"expected logits of shape \(B, V\) or \(V,\), got \(1, 2, 3\)"):
        sample_logits(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match=r"logits must be finite"):
        sample_logits(np.array([0.0, np.nan]))
    with pytest.raises(TypeError, match=r"seed must be None, a non-negative int or a numpy Generator"):
        sample_logits(np.zeros(3), seed=-2)


# ---- sample from a model --------------------------------------------------------------------
def constant_logits_model(probabilities):
    """Token model whose logits are log(probabilities) at every step, whatever it reads."""
    v = len(probabilities)
    model = mdl.Sequential([mdl.Embedding(v, 2), mdl.RNN(mdl.RNNCell(2, 2), return_sequences=True),
                            mdl.Dense(2, v)])
    for p in model.parameters():
        p.data[...] = 0.0
    model.layers[2].bias.data[...] = np.log(probabilities)
    return model


def successor_model(v):
    """Token model whose most likely next token after ``i`` is ``(i + 1) % v``."""
    model = mdl.Sequential([mdl.Embedding(v, v), mdl.RNN(mdl.RNNCell(v, v), return_sequences=True),
                            mdl.Dense(v, v)])
    model.layers[0].embeddings.data[...] = 3.0 * np.eye(v)
    cell = model.layers[1].cell
    cell.kernel.data[...] = np.eye(v)
    cell.recurrent_kernel.data[...] = 0.0
    cell.bias.data[...] = 0.0
    model.layers[2].kernel.data[...] = np.roll(np.eye(v), 1, axis=1)    # one-hot i -> logit of i + 1
    model.layers[2].bias.data[...] = 0.0
    return model


def test_sample_draws_from_the_model_distribution():
    model = constant_logits_model([0.6, 0.3, 0.1])
    tokens = sample(model, np.zeros((8, 1), dtype=int), 1000, temperature=1.0, seed=0)
    assert tokens.shape == (8, 1000) and tokens.dtype == np.int64
    np.testing.assert_allclose(np.bincount(tokens.ravel(), minlength=3) / 8000, [0.6, 0.3, 0.1], atol=0.015)
    cooled = sample(model, np.zeros((8, 1), dtype=int), 1000, temperature=0.5, seed=0)
    np.testing.assert_allclose(np.bincount(cooled.ravel(), minlength=3) / 8000, np.array([36, 9, 1]) / 46,
                               atol=0.015)


def test_greedy_decoding_is_exact():
    model = successor_model(5)
    np.testing.assert_array_equal(sample(model, [0], 7, temperature=0.0), [1, 2, 3, 4, 0, 1, 2])
    np.testing.assert_array_equal(sample(model, [[3, 1], [2, 4]], 3, temperature=0), [[2, 3, 4], [0, 1, 2]])
    vocab = Vocabulary("abcde")
    assert sample(model, "ca", 4, temperature=0, vocab=vocab) == "bcde"    # only the new tokens


def test_greedy_equals_the_model_on_the_growing_prefix():
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.Embedding(4, 4), mdl.Dropout(0.5),
                            mdl.RNN(mdl.LSTMCell(4, 8), return_sequences=True), mdl.Dense(8, 4)])
    prompt = np.tile([1, 2], (3, 1))
    greedy = sample(model, prompt, 6, 0.0)
    ids = prompt
    for i in range(6):
        nxt = model.predict(ids)[:, -1].argmax(axis=1)
        np.testing.assert_array_equal(greedy[:, i], nxt)
        ids = np.concatenate([ids, nxt[:, None]], axis=1)
    assert not model.layers[2].stateful and model.training and model.layers[2].get_state() is None


def test_sample_is_reproducible_and_handles_prompts():
    mdl.set_seed(1)
    model = mdl.Sequential([mdl.Embedding(6, 3), mdl.RNN(mdl.GRUCell(3, 5), return_sequences=True),
                            mdl.Dense(5, 6)])
    first = sample(model, [1, 2, 3], 30, seed=5)
    assert first.shape == (30,) and 0 <= first.min() and first.max() < 6
    np.testing.assert_array_equal(first, sample(model, [1, 2, 3], 30, seed=5))
    assert (first != sample(model, [1, 2, 3], 30, seed=6)).any()
    assert sample(model, [1], 0).shape == (0,)
    # many-to-one models: the logits are the model's output itself
    mdl.set_seed(2)
    last_only = mdl.Sequential([mdl.Embedding(6, 3), mdl.RNN(mdl.RNNCell(3, 5)), mdl.Dense(5, 6)])
    ids = sample(last_only, [4, 0], 3, temperature=0)
    seq = np.array([[4, 0]])
    for i in range(3):
        nxt = last_only.predict(seq).argmax(axis=1)
        assert ids[i] == nxt[0]
        seq = np.concatenate([seq, nxt[:, None]], axis=1)


def test_sample_bad_inputs():
    model = successor_model(3)
    with pytest.raises(ValueError, match=r"^sample: a str prompt needs vocab= to encode it"):
        sample(model, "ab", 2)
    with pytest.raises(ValueError, match=r"^sample: the prompt must hold at least one token"):
        sample(model, np.zeros((2, 0), dtype=int), 2)
    with pytest.raises(ValueError, match=r"expected prompt ids of shape \(P,\) or \(B, P\), got \(1, 1, 1\)"):
        sample(model, np.zeros((1, 1, 1), dtype=int), 2)
    with pytest.raises(TypeError, match=r"^sample: prompt must be an integer array, got dtype float64"):
        sample(model, [0.5], 2)
    with pytest.raises(ValueError, match=r"^sample: length must be >= 0, got -1"):
        sample(model, [0], -1)
    with pytest.raises(ValueError, match=r"^sample: temperature must be >= 0.0, got -0.5"):
        sample(model, [0], 2, temperature=-0.5)
    flat = mdl.Sequential([mdl.Embedding(3, 2), mdl.Reshape((1, 1, 1, 2))])     # 4-D output: not logits
    with pytest.raises(ValueError, match=r"^sample: the model must give logits \(B, T, V\) or \(B, V\), "
                                         r"got shape \(1, 1, 1, 1, 2\)"):
        sample(flat, [0], 1)
