"""minidl.interop.keras: Keras weight conversion (numpy only: Keras' lists are minidl's
layout; Keras layer objects are stood in for by small classes with its interface)."""

import numpy as np
import pytest

import minidl as mdl
from minidl import interop
from tests.helpers import make_cell

F, H = 3, 4


def _cell(kind):
    return make_cell("rnn_tanh" if kind == "rnn" else kind, F, H).astype(np.float64)


def test_keras_layouts_are_identical_arrays():
    rng = np.random.default_rng(6)
    cases = {
        "rnn": [rng.standard_normal((F, H)), rng.standard_normal((H, H)), rng.standard_normal(H)],
        "lstm": [rng.standard_normal((F, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)],
        "gru": [rng.standard_normal((F, 3 * H)), rng.standard_normal((H, 3 * H)), rng.standard_normal((2, 3 * H))],
    }
    for kind, weights in cases.items():
        out = interop.from_keras(weights)  # kind read from the shapes
        for arr, key in zip(weights, ("kernel", "recurrent_kernel", "bias")):
            np.testing.assert_array_equal(out[key], arr)
        cell = interop.load_keras_weights(_cell(kind), weights)
        for got, arr in zip(interop.to_keras(cell), weights):
            np.testing.assert_array_equal(got, arr)
    dense = [rng.standard_normal((F, 2)), rng.standard_normal(2)]
    layer = interop.load_keras_weights(mdl.Dense(F, 2).astype(np.float64), dense)
    x = rng.standard_normal((5, F))
    np.testing.assert_allclose(layer(x), x @ dense[0] + dense[1], rtol=1e-14)
    assert [w.shape for w in interop.to_keras(layer)] == [(F, 2), (2,)]
    assert [w.shape for w in interop.to_keras(mdl.Dense(F, 2, bias=False))] == [(F, 2)]


def test_keras_gru_reset_after_equations():
    rng = np.random.default_rng(7)
    kernel, rec, bias = rng.standard_normal((F, 3 * H)), rng.standard_normal((H, 3 * H)), rng.standard_normal((2, 3 * H))
    rnn = interop.load_keras_weights(mdl.RNN(_cell("gru")), [kernel, rec, bias])
    x = rng.standard_normal((2, 3, F))
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    h = np.zeros((2, H))
    for s in range(3):  # Keras GRU, reset_after=True: blocks z, r, h
        mx, mh = x[:, s] @ kernel + bias[0], h @ rec + bias[1]
        z, r = sig(mx[:, :H] + mh[:, :H]), sig(mx[:, H:2 * H] + mh[:, H:2 * H])
        hh = np.tanh(mx[:, 2 * H:] + r * mh[:, 2 * H:])
        h = z * h + (1 - z) * hh
    np.testing.assert_allclose(rnn(x), h, rtol=1e-12, atol=1e-14)


def test_keras_without_bias_and_layer_objects():
    rng = np.random.default_rng(8)
    out = interop.from_keras([rng.standard_normal((F, 4 * H)), rng.standard_normal((H, 4 * H))])
    np.testing.assert_array_equal(out["bias"], np.zeros(4 * H))

    class GRU:  # stands in for a Keras layer: class name and get_weights()
        reset_after = True

        def get_weights(self):
            return [np.ones((F, 3 * H)), np.ones((H, 3 * H)), np.ones((2, 3 * H))]

    assert interop.from_keras(GRU())["bias"].shape == (2, 3 * H)
    GRU.reset_after = False
    with pytest.raises(ValueError, match=r"GRU\(reset_after=False\) computes another candidate"):
        interop.from_keras(GRU())


@pytest.mark.parametrize(
    "weights, kind, pattern",
    [
        ([np.zeros((F, 3 * H)), np.zeros((H, 3 * H)), np.zeros(3 * H)], None, r"comes from GRU\(reset_after=False\)"),
        ([np.zeros((F, 4 * H)), np.zeros((H, 4 * H)), np.zeros(3 * H)], None,
         r"'weights\[2\] \(bias\)' expected shape \(16,\), got \(12,\)"),
        ([np.zeros((F + 1, H)), np.zeros((H, H)), np.zeros(H)], "gru", r"kind='gru' does not match"),
        ([np.zeros((F, 2)), np.zeros(3)], None, r"'weights\[1\] \(bias\)' expected shape \(2,\), got \(3,\)"),
        ([np.zeros(3)], None, r"expected \[kernel, \(recurrent_kernel,\) \(bias\)\] with a 2-D kernel"),
        ({"kernel": np.zeros((2, 2))}, None, r"expected a list of arrays"),
    ],
)
def test_keras_errors(weights, kind, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        interop.from_keras(weights, kind)


def test_a_keras_layer_whose_get_weights_is_not_a_list_is_named():
    with pytest.raises(TypeError, match=r"^from_keras: expected a list of arrays \(layer\.get_weights\(\)\), got "
                                        r"LSTM\.get_weights\(\) returned a dict$"):
        interop.from_keras(type("LSTM", (KerasLayer,), {})({"kernel": np.zeros((2, 8))}))




# ---- Bidirectional, Embedding, activations --------------------------------------------------------
class KerasLayer:
    """Stands in for a Keras layer: its class name is the Keras one, with get_weights() and get_config()."""

    def __init__(self, weights, **config):
        self.weights, self.config = weights, config

    def get_weights(self):
        return self.weights

    def get_config(self):
        return dict(self.config)


def keras_layer(class_name, weights, **config):
    return type(class_name, (KerasLayer,), {})(weights, **config)


def _random_weights(kind, rng, F=F):
    g = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    bias = rng.standard_normal((2, g * H) if kind == "gru" else g * H)
    return [rng.standard_normal((F, g * H)), rng.standard_normal((H, g * H)), bias]


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_keras_bidirectional_weights(kind):
    rng = np.random.default_rng(20)
    forward, backward = _random_weights(kind, rng), _random_weights(kind, rng)
    bidi = mdl.Bidirectional(mdl.RNN(_cell(kind), return_sequences=True))
    interop.load_keras_weights(bidi, forward + backward)        # Keras' Bidirectional.get_weights() order
    x = rng.standard_normal((2, 5, F))
    fwd = interop.load_keras_weights(mdl.RNN(_cell(kind), return_sequences=True), forward)
    bwd = interop.load_keras_weights(mdl.RNN(_cell(kind), return_sequences=True), backward)
    # Keras: the backward layer reads the reversed sequence; its outputs are reversed back and concatenated
    np.testing.assert_allclose(bidi(x), np.concatenate([fwd(x), bwd(x[:, ::-1])[:, ::-1]], axis=-1), rtol=0, atol=1e-14)
    for got, want in zip(interop.to_keras(bidi), forward + backward):
        np.testing.assert_array_equal(got, want)
    layer = keras_layer("Bidirectional", None, merge_mode="concat")
    layer.forward_layer = keras_layer(kind.upper() if kind != "rnn" else "SimpleRNN", forward, activation="tanh")
    layer.backward_layer = keras_layer(kind.upper() if kind != "rnn" else "SimpleRNN", backward, activation="tanh")
    again = interop.load_keras_weights(mdl.Bidirectional(mdl.RNN(_cell(kind), return_sequences=True)), layer)
    np.testing.assert_array_equal(again(x), bidi(x))


def test_keras_bidirectional_errors():
    rng = np.random.default_rng(21)
    weights = _random_weights("lstm", rng)
    bidi = mdl.Bidirectional(mdl.RNN(_cell("lstm")))
    with pytest.raises(ValueError, match=r"forward layer's arrays then the backward layer's, an even number; got 3"):
        interop.load_keras_weights(bidi, weights)
    before = bidi.state_dict()
    with pytest.raises(ValueError, match=r"entry 'cell.kernel' expected shape \(3, 16\), got \(2, 16\)"):
        interop.load_keras_weights(bidi, weights + [weights[0][:2]] + weights[1:])
    for k, v in bidi.state_dict().items():                       # neither direction was loaded
        np.testing.assert_array_equal(v, before[k])
    layer = keras_layer("Bidirectional", None, merge_mode="sum")
    with pytest.raises(ValueError, match=r"the Keras Bidirectional has merge_mode='sum' but .* merge_mode='concat'"):
        interop.load_keras_weights(bidi, layer)


def test_keras_activations_are_checked():
    rng = np.random.default_rng(22)
    weights = _random_weights("rnn", rng)
    relu_layer = keras_layer("SimpleRNN", weights, activation="relu")
    with pytest.raises(ValueError, match=r"^load_keras_weights: the Keras layer uses activation='relu' but "
                                         r"RNNCell\(.*activation='tanh'.*\) computes with activation='tanh'"):
        interop.load_keras_weights(mdl.RNN(_cell("rnn")), relu_layer)
    with pytest.raises(ValueError, match=r"the Keras layer uses activation='relu'"):
        interop.load_keras_weights(mdl.RNN(_cell("rnn")), weights, activation="relu")     # a bare list: say it
    relu = interop.load_keras_weights(mdl.RNN(mdl.RNNCell(F, H, activation="relu").astype(np.float64)), relu_layer)
    x = rng.standard_normal((2, 3, F))
    h = np.zeros((2, H))
    for t in range(3):                                            # Keras SimpleRNN(activation="relu")
        h = np.maximum(x[:, t] @ weights[0] + h @ weights[1] + weights[2], 0.0)
    np.testing.assert_allclose(relu(x), h, rtol=0, atol=1e-14)
    serialized = keras_layer("SimpleRNN", weights, activation={"class_name": "function", "config": {"name": "sigmoid"}})
    with pytest.raises(ValueError, match=r"activation='sigmoid'"):
        interop.load_keras_weights(_cell("rnn"), serialized)
    hard = keras_layer("LSTM", _random_weights("lstm", rng), activation="tanh", recurrent_activation="hard_sigmoid")
    with pytest.raises(ValueError, match=r"recurrent_activation='hard_sigmoid' but LSTMCell.* "
                                         r"computes with recurrent_activation='sigmoid'"):
        interop.load_keras_weights(_cell("lstm"), hard)
    fine = keras_layer("GRU", _random_weights("gru", rng), activation="tanh", recurrent_activation="sigmoid",
                       reset_after=True)
    interop.load_keras_weights(_cell("gru"), fine)
    bidi_relu = keras_layer("Bidirectional", None, merge_mode="concat")
    bidi_relu.forward_layer = bidi_relu.backward_layer = relu_layer
    with pytest.raises(ValueError, match=r"activation='relu'"):
        interop.load_keras_weights(mdl.Bidirectional(mdl.RNN(_cell("rnn"))), bidi_relu)


def test_keras_embedding():
    table = np.random.default_rng(23).standard_normal((7, 3))
    emb = interop.load_keras_weights(mdl.Embedding(7, 3).astype(np.float64), [table])
    np.testing.assert_array_equal(emb(np.array([[6, 0]])), table[[[6, 0]]])
    np.testing.assert_array_equal(interop.to_keras(emb)[0], table)
    assert list(interop.from_keras(keras_layer("Embedding", [table]))) == ["embeddings"]
    np.testing.assert_array_equal(interop.from_keras([table], "embedding")["embeddings"], table)
    with pytest.raises(ValueError, match=r"an Embedding has one weight, \[embeddings\], got 2 arrays"):
        interop.from_keras([table, table], "embedding")
    with pytest.raises(ValueError, match=r"'weights\[0\] \(embeddings\)' must be \(num_embeddings, embedding_dim\)"):
        interop.from_keras([table[0]], "embedding")
    with pytest.raises(ValueError, match=r"expected shape \(7, 2\), got \(7, 3\)"):
        interop.load_keras_weights(mdl.Embedding(7, 2), [table])
