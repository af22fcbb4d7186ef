"""Stream: chunked and step-by-step inference with carried state equals one forward over the
whole sequence, leaves the model untouched, and refuses what it cannot stream."""

import numpy as np
import pytest

import minidl as mdl
from minidl.layers import cell as cell_module


pytestmark = pytest.mark.usefixtures("float64")      # tests/conftest.py: layers built in float64


def many_to_many(cell):
    mdl.set_seed(1)
    return mdl.Sequential([mdl.RNN(cell(3, 5), return_sequences=True), mdl.Dense(5, 2)])


def stacked():
    mdl.set_seed(2)
    return mdl.Sequential([
        mdl.Dense(3, 4), mdl.Tanh(),
        mdl.RNN(mdl.LSTMCell(4, 5), return_sequences=True),
        mdl.RNN(mdl.GRUCell(5, 3), return_sequences=True),
        mdl.RNN(mdl.RNNCell(3, 4), return_sequences=True),
        mdl.Dropout(0.5), mdl.Dense(4, 2),
    ])


def tokens_model():
    mdl.set_seed(3)
    return mdl.Sequential([mdl.Embedding(7, 3), mdl.RNN(mdl.LSTMCell(3, 6), return_sequences=True), mdl.Dense(6, 7)])


MODELS = {
    "rnn": lambda: many_to_many(mdl.RNNCell),
    "lstm": lambda: many_to_many(mdl.LSTMCell),
    "gru": lambda: many_to_many(mdl.GRUCell),
    "stacked": stacked,
    "embedding": tokens_model,
}
CHUNKS = {"ones": [1] * 10, "threes": [3, 3, 3, 1], "all": [10], "mixed": [2, 1, 4, 3]}


def sequence(model, batch=2, steps=10):
    rng = np.random.default_rng(0)
    if isinstance(model.layers[0], mdl.Embedding):
        return rng.integers(0, 7, size=(batch, steps))
    return rng.normal(size=(batch, steps, 3))


def stream_in_chunks(stream, x, sizes):
    outs, start = [], 0
    for size in sizes:
        piece = x[:, start:start + size]
        outs.append(stream.step(piece[:, 0])[:, None] if size == 1 else stream(piece))
        start += size
    assert start == x.shape[1]
    return outs


@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize("name", MODELS)
def test_chunks_of_any_size_equal_one_forward(name, chunks):
    model = MODELS[name]()
    x = sequence(model)
    full = model.predict(x)
    stream = mdl.Stream(model)
    assert stream.returns_sequences
    out = np.concatenate(stream_in_chunks(stream, x, CHUNKS[chunks]), axis=1)
    assert out.shape == full.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, full, rtol=0, atol=1e-12)
    assert stream.steps == 10


def test_state_is_the_state_after_the_streamed_steps():
    model = many_to_many(mdl.LSTMCell)
    x = sequence(model)
    stream = mdl.Stream(model)
    assert stream.state == [None]
    stream(x[:, :4])
    stream.step(x[:, 4])
    model.forward(x[:, :5])
    h, c = stream.state[0]
    want_h, want_c = model.layers[0].state_at(5)
    np.testing.assert_allclose(h, want_h, atol=1e-12)
    np.testing.assert_allclose(c, want_c, atol=1e-12)
    stream.state[0][0][...] = 99.0                   # a copy: editing it changes nothing
    np.testing.assert_allclose(stream.state[0][0], want_h, atol=1e-12)
    stream.reset()
    assert stream.state == [None] and stream.steps == 0
    np.testing.assert_allclose(stream(x[:, :3]), model.predict(x[:, :3]), atol=1e-12)  # zeros again


def test_many_to_one_chunk_gives_the_output_after_its_last_step():
    mdl.set_seed(4)
    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(3, 5), return_sequences=True), mdl.RNN(mdl.LSTMCell(5, 4)),
                            mdl.Dense(4, 1)])
    x = sequence(model, steps=7)
    stream = mdl.Stream(model)
    assert not stream.returns_sequences
    first = stream(x[:, :3])
    np.testing.assert_allclose(first, model.predict(x[:, :3]), atol=1e-12)
    assert first.shape == (2, 1)
    stream.step(x[:, 3])
    last = stream(x[:, 4:])
    np.testing.assert_allclose(last, model.predict(x), atol=1e-12)
    for t in range(7):                               # step by step: each output is that of the prefix
        y = (stream.reset() or stream) if t == 0 else stream
        np.testing.assert_allclose(y.step(x[:, t]), model.predict(x[:, :t + 1]), atol=1e-12)


class Probe(mdl.Layer):
    """Identity that records (training, grad enabled) at each forward."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, mdl.is_grad_enabled()))
        return x


def test_model_is_left_exactly_as_found():
    mdl.set_seed(5)
    probe = Probe()
    carried, plain = mdl.RNN(mdl.LSTMCell(3, 4), return_sequences=True, stateful=True), mdl.Dense(4, 2)
    model = mdl.Sequential([probe, carried, mdl.Dropout(0.3), plain])
    model.train()
    plain.eval()                                     # a mixed set of modes, restored one by one
    x = sequence(model)
    model.forward(x[:, :6])                          # the layer's own carried state
    own = carried.get_state()
    weights = model.state_dict()
    stream = mdl.Stream(model)
    out = np.concatenate([stream(x[:, :4]), stream.step(x[:, 4])[:, None]], axis=1)
    assert probe.seen[1:] == [(False, False)] * 2     # eval mode, no history, each call
    assert model.training and model.layers[2].training and not plain.training
    assert carried.stateful
    for now, before in zip(carried.get_state(), own):
        np.testing.assert_array_equal(now, before)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, weights[k])
    # the stream started from zeros, not from the layer's carried state
    carried.reset_states()
    np.testing.assert_allclose(out, model.predict(x[:, :5]), atol=1e-12)


def test_training_between_calls_uses_the_new_weights():
    model = many_to_many(mdl.GRUCell)
    x = sequence(model)
    stream = mdl.Stream(model)
    stream(x[:, :5])
    carried = stream.state[0]
    old_rest = model.predict(x)[:, 5:]
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.5), seed=0)
    trainer.fit(x, np.ones((2, 10, 2)), epochs=1, batch_size=2, verbose=0)
    rest = stream(x[:, 5:])
    rnn = model.layers[0]
    rnn.set_state(carried)                           # by hand: the carried state, the new weights
    want = model.predict(x[:, 5:])
    rnn.reset_states()
    np.testing.assert_allclose(rest, want, atol=1e-12)
    assert np.abs(rest - old_rest).max() > 1e-3      # the weights did change
    assert model.training


def test_bidirectional_is_refused():
    model = mdl.Sequential([mdl.Bidirectional(mdl.RNN(mdl.RNNCell(3, 2), return_sequences=True)), mdl.Dense(4, 1)])
    with pytest.raises(ValueError, match=r"^Stream: Bidirectional needs each whole sequence in one forward "
                                         r"\(supports_truncation is False\)"):
        mdl.Stream(model)


def test_bad_inputs():
    model = many_to_many(mdl.RNNCell)
    stream = mdl.Stream(model)
    with pytest.raises(ValueError, match=r"^Stream: expected x_chunk of shape \(batch, steps, 3\), got \(2, 4, 2\)"):
        stream(np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match=r"^Stream: expected x_chunk of shape \(batch, steps, 3\), got \(2, 3\)"):
        stream(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"^Stream.step: expected x_t of shape \(batch, 3\), got \(2, 5\)"):
        stream.step(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"^Stream.step: x_t must have a batch axis"):
        stream.step(1.0)
    with pytest.raises(ValueError, match=r"at least one sample and one step, got shape \(2, 0, 3\)"):
        stream(np.zeros((2, 0, 3)))
    assert stream.steps == 0 and stream.state == [None]   # failed calls carry nothing
    stream(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"^Stream: the carried state has batch size 2 but x_chunk has 3; "
                                         r"call reset\(\) before changing the batch size"):
        stream(np.zeros((3, 1, 3)))
    stream.reset()
    assert stream(np.zeros((3, 1, 3))).shape == (3, 1, 2)
    tokens = mdl.Stream(tokens_model())
    with pytest.raises(ValueError, match=r"^Stream.step: expected x_t of shape \(batch,\), got \(2, 1\)"):
        tokens.step(np.zeros((2, 1), dtype=int))
    with pytest.raises(TypeError, match=r"^Stream: model must be a Layer \(e.g. a Sequential\), got list"):
        mdl.Stream([model])


def test_reset_to_given_states():
    model = stacked()
    x = sequence(model)
    stream = mdl.Stream(model)
    stream(x[:, :6])
    carried = stream.state
    rest = stream(x[:, 6:])
    again = mdl.Stream(model)
    again.reset(carried)                               # e.g. an encoder's state starting a decoder
    assert again.steps == 0 and repr(again) == "Stream(Sequential, batch=2, steps=0)"
    np.testing.assert_allclose(again(x[:, 6:]), rest, atol=1e-12)
    partly = [None, carried[1], None]                   # None: zeros for that layer
    again.reset(partly)
    for got, want in zip(again.state[1], carried[1]):
        np.testing.assert_array_equal(got, want)
    assert again.state[0] is None and all(layer.get_state() is None for layer in model.layers[2:5])
    with pytest.raises(ValueError, match=r"^Stream.reset: state must be a list with one entry per stateful layer "
                                         r"\(3\), like stream.state; got a list of 1"):
        again.reset([carried[0]])
    with pytest.raises(ValueError, match=r"set_state: expected state\[0\] of shape \(batch, 5\), got \(2, 4\)"):
        again.reset([(carried[0][0][:, :4], carried[0][1]), None, None])
    with pytest.raises(ValueError, match=r"^Stream.reset: the states have different batch sizes \[1, 2\]"):
        again.reset([tuple(s[:1] for s in carried[0]), carried[1], None])
    np.testing.assert_array_equal(again.state[1][0], carried[1][0])   # a refused reset changes nothing
    with pytest.raises(ValueError, match=r"carried state has batch size 2 but x_chunk has 1"):
        again.reset(carried)
        again(x[:1])


class TwoInputs(mdl.Model):
    """forward(a: (B, T, 2), b: (B, T, 1)) -> (B, T, 3): one RNN over both, joined per step."""

    def __init__(self):
        super().__init__()
        self.join = mdl.Concatenate()
        self.rnn = mdl.RNN(mdl.GRUCell(3, 4), return_sequences=True)
        self.head = mdl.Dense(4, 3)

    def forward(self, a, b):
        return self.head(self.rnn(self.join(a, b)))


def test_a_model_of_two_inputs_streams_a_tuple_of_chunks():
    mdl.set_seed(6)
    model = TwoInputs()
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 9, 2)), rng.normal(size=(2, 9, 1))
    full = model.predict((a, b))
    stream = mdl.Stream(model)
    pieces = [stream((a[:, :4], b[:, :4])), stream.step((a[:, 4], b[:, 4]))[:, None], stream((a[:, 5:], b[:, 5:]))]
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=0, atol=1e-12)
    assert stream.steps == 9
    with pytest.raises(ValueError, match=r"^Stream: the inputs of a stream advance together and need the same "
                                         r"number of steps, got x_chunk\[0\] has 2, x_chunk\[1\] has 3"):
        stream((a[:, :2], b[:, :3]))
    with pytest.raises(ValueError, match=r"^Stream: TwoInputs.forward takes 2 inputs \(a, b\), got 1 array"):
        stream(a)
    with pytest.raises(ValueError, match=r"^Stream.step: the inputs must have the same batch size, "
                                         r"got x_t\[0\] has 2, x_t\[1\] has 1"):
        stream.step((a[:, 0], b[:1, 0]))
    with pytest.raises(ValueError, match=r"^Stream.step: x_t\[1\] must have a batch axis"):
        stream.step((a[:, 0], 1.0))
    with pytest.raises(ValueError, match=r"^Stream: Sequential.forward takes 1 input \(x\), got 2 arrays"):
        mdl.Stream(many_to_many(mdl.GRUCell))((a, b))
    assert stream.steps == 9                          # failed calls carry nothing


def test_one_long_call_runs_in_bounded_chunks_with_the_numbers_of_forward(monkeypatch):
    """Inside a call the RNNs run without history, ``time_chunk`` steps at a time (here 3, for
    every layer's size): bit-exactly what ``forward`` with history gives, in working memory
    that does not grow with the call (tests/layers/test_rnn_memory.py)."""
    monkeypatch.setattr(cell_module, "CHUNK_BYTES", 3 * 2 * 5 * 8)
    model = stacked()
    model.eval()
    x = sequence(model, steps=11)
    assert [cell_module.time_chunk(r.cell, 2) for r in model.layers[2:5]] == [3, 3, 3]
    out = mdl.Stream(model)(x)
    np.testing.assert_array_equal(out, model.forward(x), strict=True)
