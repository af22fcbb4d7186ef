"""minidl.interop.torch: PyTorch weight conversion.

numpy-only tests: hand-made layouts, round trips, errors. The torch tests (skipped
without torch) convert real ``torch.nn`` modules both ways and compare the outputs
in float64.
"""

import numpy as np
import pytest

import minidl as mdl
from minidl import interop
from tests.helpers import make_cell

F, H = 3, 4


def _torch_like(kind, rng, F=F, H=H, sfx="_l0"):
    g = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    return {f"weight_ih{sfx}": rng.standard_normal((g * H, F)), f"weight_hh{sfx}": rng.standard_normal((g * H, H)),
            f"bias_ih{sfx}": rng.standard_normal(g * H), f"bias_hh{sfx}": rng.standard_normal(g * H)}


def _cell(kind, F=F, H=H, **kw):
    """A float64 built-in cell: ``"rnn"`` (tanh unless ``activation=``), ``"lstm"`` or ``"gru"``."""
    cell = make_cell("rnn_" + kw.pop("activation", "tanh") if kind == "rnn" else kind, F, H)
    assert not kw
    return cell.astype(np.float64)


# ---- numpy only ----------------------------------------------------------------------
def test_gru_gate_reorder_by_hand():
    # H = 1, F = 1: torch rows are (r, z, n); ours columns are (z, r, n).
    sd = {"weight_ih_l0": np.array([[1.0], [2.0], [3.0]]), "weight_hh_l0": np.array([[4.0], [5.0], [6.0]]),
          "bias_ih_l0": np.array([7.0, 8.0, 9.0]), "bias_hh_l0": np.array([10.0, 11.0, 12.0])}
    out = interop.from_torch(sd, "gru")
    np.testing.assert_array_equal(out["kernel"], [[2.0, 1.0, 3.0]])
    np.testing.assert_array_equal(out["recurrent_kernel"], [[5.0, 4.0, 6.0]])
    np.testing.assert_array_equal(out["bias"], [[8.0, 7.0, 9.0], [11.0, 10.0, 12.0]])
    back = interop.to_torch(out)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k])


def test_lstm_and_rnn_transpose_and_fold_biases_by_hand():
    sd = {"weight_ih_l0": np.arange(8.0).reshape(4, 2), "weight_hh_l0": np.arange(4.0).reshape(4, 1),
          "bias_ih_l0": np.array([1.0, 2.0, 3.0, 4.0]), "bias_hh_l0": np.array([0.5, 0.5, 0.5, -4.0])}
    out = interop.from_torch(sd)  # kind read from the shapes: 4 gate blocks
    np.testing.assert_array_equal(out["kernel"], [[0, 2, 4, 6], [1, 3, 5, 7]])
    np.testing.assert_array_equal(out["recurrent_kernel"], [[0, 1, 2, 3]])
    np.testing.assert_array_equal(out["bias"], [1.5, 2.5, 3.5, 0.0])
    back = interop.to_torch(out, "lstm")
    np.testing.assert_array_equal(back["bias_ih_l0"], [1.5, 2.5, 3.5, 0.0])
    np.testing.assert_array_equal(back["bias_hh_l0"], [0, 0, 0, 0])


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_round_trips(kind):
    rng = np.random.default_rng(0)
    cell = _cell(kind)
    cell.load_state_dict({k: rng.standard_normal(p.shape) for k, p in cell.named_parameters()})
    sd = cell.state_dict()
    for layer_index in (0, 2, None):
        torch_sd = interop.to_torch(cell, layer_index=layer_index, prefix="m.")
        sfx = "" if layer_index is None else f"_l{layer_index}"
        assert sorted(torch_sd) == sorted(f"m.{n}{sfx}" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        back = interop.from_torch(torch_sd, kind, layer_index=layer_index, prefix="m.")
        for k in sd:
            np.testing.assert_array_equal(back[k], sd[k])
    # torch -> minidl -> torch keeps the weights and the sum of the biases (RNN, LSTM) or both (GRU).
    t = _torch_like(kind, rng)
    again = interop.to_torch(interop.from_torch(t, kind), kind)
    np.testing.assert_array_equal(again["weight_ih_l0"], t["weight_ih_l0"])
    np.testing.assert_array_equal(again["weight_hh_l0"], t["weight_hh_l0"])
    if kind == "gru":
        np.testing.assert_array_equal(again["bias_hh_l0"], t["bias_hh_l0"])
    np.testing.assert_allclose(again["bias_ih_l0"] + again["bias_hh_l0"], t["bias_ih_l0"] + t["bias_hh_l0"], rtol=1e-15)


def test_dense_round_trip_with_and_without_bias():
    rng = np.random.default_rng(1)
    sd = {"weight": rng.standard_normal((2, 5)), "bias": rng.standard_normal(2)}
    out = interop.from_torch(sd)
    np.testing.assert_array_equal(out["kernel"], sd["weight"].T)
    assert out["kernel"].flags.c_contiguous
    back = interop.to_torch(out)
    assert sorted(back) == ["bias", "weight"]
    np.testing.assert_array_equal(back["weight"], sd["weight"])
    dense = mdl.Dense(5, 2, bias=False).astype(np.float64)
    interop.load_torch_weights(dense, {"weight": sd["weight"]})
    np.testing.assert_array_equal(dense.kernel.data, sd["weight"].T)
    assert list(interop.to_torch(dense)) == ["weight"]
    with pytest.raises(ValueError, match=r"the PyTorch weights have bias but Dense\(.*\) has none"):
        interop.load_torch_weights(dense, sd)


def test_load_torch_weights_into_an_rnn_and_compare_with_torch_equations():
    rng = np.random.default_rng(2)
    t = _torch_like("lstm", rng)
    rnn = mdl.RNN(_cell("lstm"), return_sequences=True)
    assert interop.load_torch_weights(rnn, t) is rnn
    x = rng.standard_normal((2, 5, F))
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    h, c = np.zeros((2, H)), np.zeros((2, H))
    for s in range(5):  # PyTorch's LSTM equations on PyTorch's arrays
        z = x[:, s] @ t["weight_ih_l0"].T + t["bias_ih_l0"] + h @ t["weight_hh_l0"].T + t["bias_hh_l0"]
        i, f, g, o = sig(z[:, :H]), sig(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sig(z[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        np.testing.assert_allclose(rnn(x)[:, s], h, rtol=1e-12, atol=1e-14)


def test_torch_module_without_biases_gives_zero_biases():
    rng = np.random.default_rng(3)
    t = _torch_like("gru", rng)
    del t["bias_ih_l0"], t["bias_hh_l0"]
    out = interop.from_torch(t, "gru")
    np.testing.assert_array_equal(out["bias"], np.zeros((2, 3 * H)))


def test_cell_module_keys_are_found_for_layer_zero():
    t = _torch_like("rnn", np.random.default_rng(4), sfx="")
    a = interop.from_torch(t, "rnn")
    b = interop.from_torch(t, "rnn", layer_index=None)
    np.testing.assert_array_equal(a["kernel"], t["weight_ih"].T)
    np.testing.assert_array_equal(a["bias"], b["bias"])


class _ListStateDict:
    """Looks like a module, but its state_dict() is a list (it raised AttributeError: 'items')."""

    def state_dict(self):
        return [np.zeros((2, 2))]


@pytest.mark.parametrize(
    "call, err, pattern",
    [
        (lambda t: interop.from_torch({k: v for k, v in t.items() if k != "weight_hh_l0"}, "lstm"), ValueError,
         r"from_torch: the state dict has no entry 'weight_hh_l0'; its keys are \['bias_hh_l0', 'bias_ih_l0', 'weight_ih_l0'\]"),
        (lambda t: interop.from_torch(t, "lstm", layer_index=1), ValueError, r"no entry 'weight_ih_l1'"),
        (lambda t: interop.from_torch(t, "gru"), ValueError,
         r"kind='gru' does not match the weights, which are those of a 'lstm' layer"),
        (lambda t: interop.from_torch({**t, "weight_ih_l0": t["weight_ih_l0"][:4]}, "lstm"), ValueError,
         r"'weight_ih_l0' expected shape \(16, input_size\), got \(4, 3\)"),
        (lambda t: interop.from_torch({**t, "bias_hh_l0": t["bias_hh_l0"][:3]}), ValueError,
         r"'bias_hh_l0' expected shape \(16,\), got \(3,\)"),
        (lambda t: interop.from_torch({k: v for k, v in t.items() if k != "bias_hh_l0"}), ValueError,
         r"no entry 'bias_hh_l0' \(expected both biases or neither\)"),
        (lambda t: interop.from_torch({**t, "weight_ih_l0_reverse": t["weight_ih_l0"]}), ValueError, r"bidirectional"),
        (lambda t: interop.from_torch({**t, "weight_hr_l0": t["weight_ih_l0"]}), ValueError, r"proj_size"),
        (lambda t: interop.from_torch({**t, "weight_hh_l0": np.zeros((8, 4))}), ValueError, r"has 2 gate blocks"),
        (lambda t: interop.from_torch(t, "conv"), ValueError, r"unknown kind 'conv'; expected one of"),
        (lambda t: interop.from_torch(t, layer_index=-1), ValueError, r"from_torch: layer_index must be >= 0, got -1"),
        (lambda t: interop.from_torch(mdl.LSTMCell(3, 4)), TypeError, r"got the minidl LSTMCell .*use to_torch"),
        (lambda t: interop.from_torch([1, 2]), TypeError, r"expected a PyTorch module or its state_dict\(\), got list"),
        (lambda t: interop.from_torch(_ListStateDict()), TypeError,
         r"^from_torch: _ListStateDict\.state_dict\(\) returned a list; expected a mapping of names to tensors"),
        (lambda t: interop.load_torch_weights(mdl.Dense(2, 2), _ListStateDict()), TypeError,
         r"^load_torch_weights: _ListStateDict\.state_dict\(\) returned a list"),
        (lambda t: interop.from_torch({**t, "weight_ih_l0": np.full((16, 3), "a")}), TypeError,
         r"'weight_ih_l0' must be a real numeric array"),
        (lambda t: interop.to_torch({"kernel": np.zeros((3, 8)), "recurrent_kernel": np.zeros((4, 8))}), ValueError,
         r"has 2 gate blocks"),
        (lambda t: interop.to_torch({"kernel": np.zeros((3, 16)), "recurrent_kernel": np.zeros((4, 16)),
                                     "bias": np.zeros(12)}), ValueError, r"'bias' expected shape \(16,\), got \(12,\)"),
        (lambda t: interop.to_torch({"kernel": np.zeros((3, 4)), "weight": 1}), ValueError, r"expected the keys"),
        (lambda t: interop.to_torch(mdl.Dense(2, 2), "lstm"), ValueError, r"kind='lstm' does not match"),
        (lambda t: interop.load_torch_weights(mdl.RNN(mdl.GRUCell(3, 4)), t), ValueError, r"kind='gru' does not match"),
        (lambda t: interop.load_torch_weights(mdl.RNN(mdl.LSTMCell(2, 4)), t), ValueError,
         r"entry 'cell.kernel' expected shape \(2, 16\), got \(3, 16\)"),
        (lambda t: interop.load_torch_weights(mdl.Tanh(), t), TypeError, r"expected a minidl Dense, RNNCell"),
    ],
)
def test_errors(call, err, pattern):
    with pytest.raises(err, match=pattern):
        call(_torch_like("lstm", np.random.default_rng(5)))


# ---- against real torch modules ------------------------------------------------------
def _torch_module(kind, F=F, H=H, **kw):
    torch = pytest.importorskip("torch")
    cls = {"rnn_tanh": torch.nn.RNN, "rnn_relu": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    if kind.startswith("rnn_"):
        kw["nonlinearity"] = kind[4:]
    return cls(F, H, batch_first=True, **kw).double()


def _minidl_cell(kind):
    if kind.startswith("rnn_"):
        return _cell("rnn", activation=kind[4:])
    return _cell(kind)


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_torch_modules_both_ways(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = _torch_module(kind)
    x = np.random.default_rng(9).standard_normal((3, 6, F))
    with torch.no_grad():
        expected = module(torch.from_numpy(x))[0].numpy()

    rnn = mdl.RNN(_minidl_cell(kind), return_sequences=True)
    interop.load_torch_weights(rnn, module)  # the module itself
    np.testing.assert_allclose(rnn(x), expected, rtol=1e-6, atol=1e-12)
    assert np.max(np.abs(rnn(x) - expected)) < 1e-13
    other = mdl.RNN(_minidl_cell(kind), return_sequences=True)
    interop.load_torch_weights(other, module.state_dict())  # or its tensors
    np.testing.assert_array_equal(other(x), rnn(x))

    # Export: fresh minidl weights into a fresh torch module.
    mdl.set_seed(1)
    ours = mdl.RNN(_minidl_cell(kind), return_sequences=True)
    fresh = _torch_module(kind)
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in interop.to_torch(ours).items()})
    with torch.no_grad():
        got = fresh(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(got, ours(x), rtol=1e-6, atol=1e-12)
    assert np.max(np.abs(got - ours(x))) < 1e-13


def test_torch_two_layer_lstm_by_layer_index():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    module = _torch_module("lstm", num_layers=2)
    x = np.random.default_rng(10).standard_normal((2, 5, F))
    with torch.no_grad():
        expected = module(torch.from_numpy(x))[0].numpy()
    first = interop.load_torch_weights(mdl.RNN(_cell("lstm"), return_sequences=True), module, layer_index=0)
    second = interop.load_torch_weights(mdl.RNN(_cell("lstm", F=H), return_sequences=True), module, layer_index=1)
    np.testing.assert_allclose(second(first(x)), expected, rtol=1e-6, atol=1e-12)


def test_torch_linear_and_cell_modules():
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    x = np.random.default_rng(11).standard_normal((2, 4, F))
    linear = torch.nn.Linear(F, 2).double()
    dense = interop.load_torch_weights(mdl.Dense(F, 2).astype(np.float64), linear)
    with torch.no_grad():
        np.testing.assert_allclose(dense(x), linear(torch.from_numpy(x)).numpy(), rtol=1e-6, atol=1e-12)
    mdl.set_seed(3)
    ours = mdl.Dense(F, 2).astype(np.float64)
    fresh = torch.nn.Linear(F, 2).double()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in interop.to_torch(ours).items()})
    with torch.no_grad():
        np.testing.assert_allclose(fresh(torch.from_numpy(x)).numpy(), ours(x), rtol=1e-6, atol=1e-12)

    for torch_cls, kind in ((torch.nn.GRUCell, "gru"), (torch.nn.LSTMCell, "lstm"), (torch.nn.RNNCell, "rnn")):
        module = torch_cls(F, H).double()
        cell = interop.load_torch_weights(_cell(kind), module)
        x1, h1 = np.random.default_rng(12).standard_normal((2, 2, max(F, H)))[:, :, :F], np.random.default_rng(13).standard_normal((2, H))
        state = (h1, np.zeros((2, H))) if kind == "lstm" else (h1,)
        with torch.no_grad():
            ref = module(torch.from_numpy(x1[0]), tuple(torch.from_numpy(s) for s in state) if kind == "lstm"
                         else torch.from_numpy(h1))
        ref_h = (ref[0] if kind == "lstm" else ref).numpy()
        np.testing.assert_allclose(cell(x1[0], state)[0], ref_h, rtol=1e-6, atol=1e-12)
        keys = interop.to_torch(cell, layer_index=None)
        assert sorted(keys) == sorted(module.state_dict())


def test_torch_nonlinearity_mismatch_and_float32():
    torch = pytest.importorskip("torch")
    module = _torch_module("rnn_relu")
    with pytest.raises(ValueError, match=r"nonlinearity='relu' but the cell has activation='tanh'"):
        interop.load_torch_weights(mdl.RNN(mdl.RNNCell(F, H)), module)
    torch.manual_seed(4)
    module32 = torch.nn.GRU(F, H, batch_first=True)
    rnn32 = interop.load_torch_weights(mdl.RNN(mdl.GRUCell(F, H), return_sequences=True), module32)
    assert rnn32.cell.kernel.data.dtype == np.float32
    x = np.random.default_rng(14).standard_normal((2, 5, F)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(rnn32(x), module32(torch.from_numpy(x))[0].numpy(), rtol=1e-5, atol=1e-6)


# ---- bidirectional modules and embeddings ------------------------------------------------------
def _bidirectional(kind, F=F, H=H, return_sequences=True, merge_mode="concat"):
    return mdl.Bidirectional(mdl.RNN(_minidl_cell_sized(kind, F, H), return_sequences=return_sequences),
                             merge_mode=merge_mode)


def _minidl_cell_sized(kind, F, H):
    return _cell("rnn", F, H, activation=kind[4:]) if kind.startswith("rnn_") else _cell(kind, F, H)


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_torch_bidirectional_modules_both_ways(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(5)
    module = _torch_module(kind, num_layers=2, bidirectional=True)
    x = np.random.default_rng(15).standard_normal((3, 6, F))
    with torch.no_grad():
        out, h_n = module(torch.from_numpy(x))
    h_n = (h_n[0] if kind == "lstm" else h_n).numpy()          # (layers * 2, B, H)
    first = interop.load_torch_weights(_bidirectional(kind), module, layer_index=0)
    second = interop.load_torch_weights(_bidirectional(kind, F=2 * H), module, layer_index=1)
    assert np.max(np.abs(second(first(x)) - out.numpy())) < 1e-13
    last = interop.load_torch_weights(_bidirectional(kind, F=2 * H, return_sequences=False), module, layer_index=1)
    assert np.max(np.abs(last(first(x)) - np.concatenate([h_n[2], h_n[3]], axis=1))) < 1e-13

    mdl.set_seed(6)                                              # export: fresh minidl weights into torch
    ours = [_bidirectional(kind), _bidirectional(kind, F=2 * H)]
    state = {**interop.to_torch(ours[0], layer_index=0), **interop.to_torch(ours[1], layer_index=1)}
    fresh = _torch_module(kind, num_layers=2, bidirectional=True)
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})   # strict: every key, no other
    with torch.no_grad():
        got = fresh(torch.from_numpy(x))[0].numpy()
    assert np.max(np.abs(got - ours[1](ours[0](x)))) < 1e-13
    direction = interop.from_torch(module, layer_index=1, direction="reverse")
    np.testing.assert_array_equal(direction["recurrent_kernel"], second.backward_layer.cell.recurrent_kernel.data)


def test_torch_bidirectional_errors():
    pytest.importorskip("torch")
    both = _torch_module("lstm", bidirectional=True)
    one = _torch_module("lstm")
    with pytest.raises(ValueError, match=r"the module is bidirectional \(weight_ih_l0_reverse found\).*"
                                         r"load both into a Bidirectional"):
        interop.load_torch_weights(mdl.RNN(_cell("lstm")), both)
    with pytest.raises(ValueError, match=r"direction='forward' needs a bidirectional module"):
        interop.load_torch_weights(_bidirectional("lstm"), one)
    with pytest.raises(ValueError, match=r"concatenates its directions; .* merge_mode='sum'"):
        interop.load_torch_weights(_bidirectional("lstm", merge_mode="sum"), both)
    with pytest.raises(ValueError, match=r"concatenates its directions; .* merge_mode='ave'"):
        interop.to_torch(_bidirectional("lstm", merge_mode="ave"))
    with pytest.raises(ValueError, match=r"nonlinearity='relu' but the cell has activation='tanh'"):
        interop.load_torch_weights(_bidirectional("rnn_tanh"), _torch_module("rnn_relu", bidirectional=True))
    with pytest.raises(ValueError, match=r"direction must be one of 'forward', 'reverse', got 'up'"):
        interop.from_torch(both, direction="up")
    target = _bidirectional("lstm")
    before = target.state_dict()
    with pytest.raises(ValueError, match=r"'weight_ih_l0_reverse' expected shape \(16, input_size\)"):
        sd = {k: v.detach().numpy() for k, v in both.state_dict().items()}
        interop.load_torch_weights(target, {**sd, "weight_ih_l0_reverse": sd["weight_ih_l0_reverse"][:3]})
    for k, v in target.state_dict().items():                     # nothing was loaded
        np.testing.assert_array_equal(v, before[k])


def test_torch_embedding_and_a_token_model():
    torch = pytest.importorskip("torch")
    torch.manual_seed(7)
    emb, lstm, head = torch.nn.Embedding(6, F, padding_idx=0).double(), _torch_module("lstm"), torch.nn.Linear(H, 6)
    head = head.double()
    ids = np.array([[0, 3, 5, 1], [2, 2, 4, 0]])
    with torch.no_grad():
        expected = head(lstm(emb(torch.from_numpy(ids)))[0]).numpy()
    model = mdl.Sequential([mdl.Embedding(6, F), mdl.RNN(mdl.LSTMCell(F, H), return_sequences=True),
                            mdl.Dense(H, 6)]).astype(np.float64)
    for layer, module in zip(model.layers, (emb, lstm, head)):
        interop.load_torch_weights(layer, module)
    assert np.max(np.abs(model(ids) - expected)) < 1e-13
    table = interop.from_torch(emb.state_dict(), "embedding")["embeddings"]
    np.testing.assert_array_equal(table, emb.weight.detach().numpy())
    back = interop.to_torch(model.layers[0])
    assert list(back) == ["weight"]
    np.testing.assert_array_equal(back["weight"], emb.weight.detach().numpy())
    with pytest.raises(ValueError, match=r"nn.Embedding\(max_norm=1.0\) rescales rows at lookup"):
        interop.from_torch(torch.nn.Embedding(6, F, max_norm=1.0))
    with pytest.raises(ValueError, match=r"kind='lstm' does not match the weights, which are those of a 'embedding'"):
        interop.load_torch_weights(mdl.RNN(_cell("lstm")), emb)
