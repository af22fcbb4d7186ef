"""Bidirectional: by hand with constant weights, equal to two RNNs and gradcheck for every
cell, the merge modes, structure and seeding, full-BPTT training, PyTorch's bidirectional
LSTM and GRU, output aliasing and bad inputs; masks (each sequence alone, gradient checks)
and states in and out (PyTorch's packed bidirectional RNNs: tests/layers/test_packed.py).

Weight conversion for torch (written here): torch's ``weight_ih`` is ``(gates*H, in)``, ours
``kernel (in, gates*H)``, so ours = torch.T; GRU gates r,z,n in torch are z,r,n here; the
LSTM's ``bias_ih + bias_hh`` is our single bias, the GRU's are our bias rows 0 and 1.
"""

import math

import numpy as np
import pytest

import minidl as mdl
from minidl.layers import cell as cell_module
from tests.helpers import (
    Masked, assert_close_rel, assert_fit_is_one_manual_step, assert_output_edits_leave_gradients, pad_with,
    random_state, right_padded_mask, scattered_mask,
)


def _cell(kind, F, H):
    return {"lstm": mdl.LSTMCell, "gru": mdl.GRUCell, "rnn": mdl.RNNCell}[kind](F, H)


def test_bidirectional_by_hand_with_constant_weights(float64):
    fwd = mdl.RNN(mdl.RNNCell(1, 1), return_sequences=True)
    bi = mdl.Bidirectional(fwd)
    for cell, (k, u) in ((bi.forward_layer.cell, (0.5, -1.0)), (bi.backward_layer.cell, (1.0, 0.5))):
        cell.kernel.data[...] = k
        cell.recurrent_kernel.data[...] = u
        cell.bias.data[...] = 0.0
    x = np.array([[[1.0], [2.0], [3.0]]])
    t = math.tanh
    f1 = t(0.5)
    f2 = t(1.0 - f1)
    f3 = t(1.5 - f2)
    b3 = t(3.0)                     # the backward direction reads 3, 2, 1
    b2 = t(2.0 + 0.5 * b3)
    b1 = t(1.0 + 0.5 * b2)
    np.testing.assert_allclose(bi.forward(x), [[[f1, b1], [f2, b2], [f3, b3]]], rtol=1e-14)
    last = mdl.Bidirectional(mdl.RNN(bi.forward_layer.cell))
    last.backward_layer.cell.load_state_dict(bi.backward_layer.cell.state_dict())
    np.testing.assert_allclose(last.forward(x), [[f3, b1]], rtol=1e-14)   # Keras: [fwd last, bwd after all steps]


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_equals_two_rnns_by_hand_and_gradcheck(float64, rng, kind, return_sequences):
    mdl.set_seed(21)
    bi = mdl.Bidirectional(mdl.RNN(_cell(kind, 3, 4), return_sequences=return_sequences))
    x = rng.standard_normal((2, 5, 3))
    y = bi.forward(x)
    hf = mdl.RNN(bi.forward_layer.cell, return_sequences=True).forward(x)
    hb = mdl.RNN(bi.backward_layer.cell, return_sequences=True).forward(x[:, ::-1])
    if return_sequences:
        expected = np.concatenate([hf, hb[:, ::-1]], axis=-1)
    else:
        expected = np.concatenate([hf[:, -1], hb[:, -1]], axis=-1)
    assert y.shape == expected.shape == bi.compute_output_shape((2, 5, 3))
    np.testing.assert_allclose(y, expected, rtol=1e-14, atol=1e-15)

    # backward: the sum of the two directions' input gradients, re-reversed
    g = rng.standard_normal(y.shape)
    bi.zero_grad()
    dx = bi.backward(g)
    f_ref = mdl.RNN(bi.forward_layer.cell, return_sequences=return_sequences)
    b_ref = mdl.RNN(bi.backward_layer.cell, return_sequences=return_sequences)
    f_ref.forward(x)
    b_ref.forward(x[:, ::-1])
    grads = {name: p.grad.copy() for name, p in bi.named_parameters()}
    bi.zero_grad()
    gb = g[..., 4:][:, ::-1] if return_sequences else g[..., 4:]
    dx_ref = f_ref.backward(g[..., :4]) + b_ref.backward(gb)[:, ::-1]
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-13, atol=1e-14)
    for name, p in bi.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad, rtol=1e-13, atol=1e-14, err_msg=name)

    assert mdl.gradcheck(bi, x)


@pytest.mark.parametrize("merge_mode", ["sum", "ave", "mul"])
def test_bidirectional_other_merge_modes(float64, rng, merge_mode):
    mdl.set_seed(22)
    bi = mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3), return_sequences=True), merge_mode=merge_mode)
    x = rng.standard_normal((2, 4, 2))
    hf = mdl.RNN(bi.forward_layer.cell, return_sequences=True).forward(x)
    hb = mdl.RNN(bi.backward_layer.cell, return_sequences=True).forward(x[:, ::-1])[:, ::-1]
    expected = {"sum": hf + hb, "ave": (hf + hb) / 2, "mul": hf * hb}[merge_mode]
    np.testing.assert_allclose(bi.forward(x), expected, rtol=1e-14, atol=1e-15)
    assert bi.compute_output_shape((None, 4, 2)) == (None, 4, 3)
    assert mdl.gradcheck(bi, x)


def test_bidirectional_structure_and_seeding():
    mdl.set_seed(5)
    a = mdl.Bidirectional(mdl.RNN(mdl.RNNCell(3, 4, activation="relu")))
    mdl.set_seed(5)
    b = mdl.Bidirectional(mdl.RNN(mdl.RNNCell(3, 4, activation="relu")))
    names = [n for n, _ in a.named_parameters()]
    assert names == [f"{d}_layer.cell.{w}" for d in ("forward", "backward") for w in ("kernel", "recurrent_kernel", "bias")]
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)
    # a fresh cell of the same class and config, with its own weights
    assert type(a.backward_layer.cell) is mdl.RNNCell and a.backward_layer.cell.get_config() == a.forward_layer.cell.get_config()
    assert a.backward_layer.cell is not a.forward_layer.cell
    assert not np.array_equal(a.forward_layer.cell.kernel.data, a.backward_layer.cell.kernel.data)
    assert a.supports_truncation is False and mdl.Bidirectional.supports_truncation is False
    for method in ("get_state", "set_state", "state_at"):
        assert not hasattr(a, method)
    assert a.compute_output_shape((None, 7, 3)) == (None, 8)
    # the backward cell takes the forward cell's dtype, whatever the default
    c64 = mdl.LSTMCell(2, 3).astype(np.float64)
    assert mdl.Bidirectional(mdl.RNN(c64)).backward_layer.cell.kernel.data.dtype == np.float64


def test_bidirectional_bad_arguments_and_inputs():
    with pytest.raises(TypeError, match=r"Bidirectional: rnn must be an RNN \(e.g. RNN\(LSTMCell\(F, H\)\)\), got LSTMCell"):
        mdl.Bidirectional(mdl.LSTMCell(2, 3))
    with pytest.raises(TypeError, match="Bidirectional: rnn must be an RNN instance, got the class RNN"):
        mdl.Bidirectional(mdl.RNN)
    with pytest.raises(ValueError, match="Bidirectional: a stateful RNN is not supported"):
        mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3), stateful=True))
    with pytest.raises(ValueError, match=r"Bidirectional: merge_mode must be one of 'concat', 'sum', 'ave', 'mul', got 'max'"):
        mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3)), merge_mode="max")
    bi = mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3), return_sequences=True))
    with pytest.raises(ValueError, match=r"Bidirectional\(RNN\(GRUCell.*expected input \(batch, time, 2\).*got shape \(4, 2\)"):
        bi.forward(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"got shape \(1, 0, 2\)"):
        bi.forward(np.ones((1, 0, 2)))
    with pytest.raises(TypeError, match="input must be a real numeric array"):
        bi.forward(np.full((1, 2, 2), "a"))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        bi.backward(np.ones((1, 2, 6)))
    bi.forward(np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(1, 2, 6\), got \(1, 2, 3\)"):
        bi.backward(np.ones((1, 2, 3)))
    bi.forward_layer.set_state((np.ones((1, 3)),))
    with pytest.raises(ValueError, match="both directions start from zero states, but a state was set"):
        bi.forward(np.ones((1, 2, 2)))
    bi.forward_layer.reset_states()
    bi.forward(np.ones((1, 2, 2)))
    bi.forward_layer.stateful = True
    with pytest.raises(ValueError, match="the wrapped RNN was made stateful"):
        bi.forward(np.ones((1, 2, 2)))


def test_bidirectional_trains_with_full_bptt_exactly_like_a_manual_step(rng):
    x = rng.standard_normal((6, 5, 2)).astype(np.float32)
    y = rng.standard_normal((6, 1)).astype(np.float32)

    def build():
        mdl.set_seed(30)
        return mdl.Sequential([mdl.Bidirectional(mdl.RNN(mdl.LSTMCell(2, 3))), mdl.Dense(6, 1)])

    assert_fit_is_one_manual_step(build, mdl.MSELoss, x, y, lr=0.1)
    model = build()

    # truncation would cut the backward direction's view of the future: refused
    with pytest.raises(ValueError, match="Bidirectional reads each sequence in both directions"):
        mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), k1=2)


def _perm(kind, H):
    return np.r_[H:2 * H, 0:H, 2 * H:3 * H] if kind == "gru" else np.arange(4 * H)


def _torch_to_cell(kind, arrays, suffix, H):
    """torch (bidirectional) arrays of one direction -> our cell's layout."""
    p = _perm(kind, H)
    a = {k: arrays[k + suffix] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}
    out = {"kernel": a["weight_ih_l0"][p].T, "recurrent_kernel": a["weight_hh_l0"][p].T}
    if kind == "gru":
        out["bias"] = np.stack([a["bias_ih_l0"][p], a["bias_hh_l0"][p]])
    else:
        out["bias"] = a["bias_ih_l0"] + a["bias_hh_l0"]
    return out


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_matches_torch(float64, kind, return_sequences):
    torch = pytest.importorskip("torch")
    B, T, F, H = 3, 6, 4, 5
    torch.manual_seed(3)
    ref = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(F, H, batch_first=True, bidirectional=True).double()
    cell = (mdl.LSTMCell if kind == "lstm" else mdl.GRUCell)(F, H)
    bi = mdl.Bidirectional(mdl.RNN(cell, return_sequences=return_sequences))
    weights = {n: p.detach().numpy() for n, p in ref.named_parameters()}
    state = {}
    for direction, suffix in (("forward_layer", ""), ("backward_layer", "_reverse")):
        for k, v in _torch_to_cell(kind, weights, suffix, H).items():
            state[f"{direction}.cell.{k}"] = v
    bi.load_state_dict(state)

    rng = np.random.default_rng(4)
    x = rng.standard_normal((B, T, F))
    xt = torch.from_numpy(x).requires_grad_(True)
    output, _ = ref(xt)                                        # (B, T, 2H): step t holds both directions at t
    if return_sequences:
        expected = output
    else:  # Keras: [forward's last output, backward's output after the whole reversed sequence (at t = 0)]
        expected = torch.cat([output[:, -1, :H], output[:, 0, H:]], dim=-1)
    g = rng.standard_normal(tuple(expected.shape))
    expected.backward(torch.from_numpy(g))

    assert_close_rel(bi.forward(x), expected.detach().numpy(), "output")
    assert_close_rel(bi.backward(g), xt.grad.numpy(), "input grad")
    grads = {n: p.grad.numpy() for n, p in ref.named_parameters()}
    ours = dict(bi.named_parameters())
    for direction, suffix in (("forward_layer", ""), ("backward_layer", "_reverse")):
        p = _perm(kind, H)
        assert_close_rel(ours[f"{direction}.cell.kernel"].grad, grads["weight_ih_l0" + suffix][p].T, f"{direction} kernel")
        assert_close_rel(
            ours[f"{direction}.cell.recurrent_kernel"].grad, grads["weight_hh_l0" + suffix][p].T, f"{direction} recurrent"
        )
        if kind == "gru":
            bias = np.stack([grads["bias_ih_l0" + suffix][p], grads["bias_hh_l0" + suffix][p]])
        else:  # our single bias receives the gradient each of torch's two biases gets
            bias = grads["bias_ih_l0" + suffix]
            assert_close_rel(grads["bias_hh_l0" + suffix], bias, "torch's two LSTM biases")
        assert_close_rel(ours[f"{direction}.cell.bias"].grad, bias, f"{direction} bias")


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_output_edits_leave_gradients(float64, rng, merge_mode, return_sequences):
    bi = mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3), return_sequences=return_sequences), merge_mode=merge_mode)
    assert_output_edits_leave_gradients(bi, rng.standard_normal((2, 4, 2)))


# ---- masks and states ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_masked_bidirectional_equals_each_sequence_alone(float64, kind, return_sequences):
    """Right padding (NaN values): each row is its real steps run alone, so the backward
    direction starts at the row's last real step; zeros at padded steps and for an empty row."""
    rng = np.random.default_rng(31)
    mdl.set_seed(31)
    bi = mdl.Bidirectional(mdl.RNN(_cell(kind, 2, 3), return_sequences=return_sequences))
    lengths = np.array([5, 3, 0])
    mask = right_padded_mask(lengths, 5)
    x = pad_with(rng.standard_normal((3, 5, 2)), mask, np.nan)
    y = bi.forward(x, mask=mask)
    dx = bi.backward(np.ones_like(y))
    assert np.all(np.isfinite(dx)) and np.all(dx[~mask] == 0)
    for b, L in enumerate(lengths):
        if L == 0:
            np.testing.assert_array_equal(y[b], 0.0)
            continue
        alone = bi.forward(x[b:b + 1, :L])[0]
        np.testing.assert_allclose(y[b, :L] if return_sequences else y[b], alone, rtol=0, atol=1e-14)
        if return_sequences:
            np.testing.assert_array_equal(y[b, L:], 0.0)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("merge_mode", ["concat", "mul"])
def test_masked_bidirectional_gradcheck_from_initial_states(float64, kind, return_sequences, merge_mode):
    rng = np.random.default_rng(32)
    mdl.set_seed(32)
    cell = _cell(kind, 2, 3)
    bi = mdl.Bidirectional(mdl.RNN(cell, return_sequences=return_sequences), merge_mode=merge_mode)
    states = (random_state(cell, 3, rng), random_state(cell, 3, rng))
    assert mdl.gradcheck(Masked(bi, scattered_mask(rng, 3, 5), initial_state=states), rng.standard_normal((3, 5, 2)))


class _BiFinalStates(mdl.Layer):
    """Outputs both directions' final h (masked), so that ``gradcheck`` checks the pair
    ``grad_final_state`` and, through ``initial_state``, ``initial_state_grad``."""

    def __init__(self, bi, mask):
        super().__init__()
        self.bi, self.mask = bi, mask

    def forward(self, x):
        self.out_shape = self.bi.forward(x, mask=self.mask).shape
        (hf, _), (hb, _) = self.bi.final_state
        return np.concatenate([hf, hb], axis=-1)

    def backward(self, grad_out):
        H = self.bi.forward_layer.cell.hidden_size
        return self.bi.backward(np.zeros(self.out_shape), grad_final_state=((grad_out[:, :H], None), (grad_out[:, H:], None)))


def test_bidirectional_states_in_and_out(float64, rng):
    mdl.set_seed(33)
    cell = mdl.LSTMCell(2, 3)
    bi = mdl.Bidirectional(mdl.RNN(cell, return_sequences=True))
    mask = right_padded_mask([4, 2], 4)
    x = rng.standard_normal((2, 4, 2))
    states = (random_state(cell, 2, rng), random_state(cell, 2, rng))
    y = bi.forward(x, mask=mask, initial_state=states)
    (hf, cf), (hb, cb) = bi.final_state
    np.testing.assert_array_equal(hf[1], y[1, 1, :3])  # forward: after its last real step
    np.testing.assert_array_equal(hb, y[:, 0, 3:])  # backward: its last real step is t = 0
    bi.backward(np.ones_like(y))
    assert len(bi.initial_state_grad) == 2 and len(bi.initial_state_grad[1]) == 2
    assert mdl.gradcheck(_BiFinalStates(bi, mask), x)
    np.testing.assert_array_equal(bi.compute_mask(x, mask), mask)
    assert mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3))).compute_mask(x, mask) is None


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"mask": np.ones((2, 4), int)}, TypeError, r"Bidirectional.*mask must be a bool array"),
        ({"mask": np.ones((2, 3), bool)}, ValueError, r"Bidirectional.*expected mask of shape \(2, 4\)"),
        ({"initial_state": (None,)}, ValueError, r"expected initial_state as a pair.*tuple of length 1"),
        ({"initial_state": (None, (np.zeros((2, 4)),))}, ValueError, r"expected initial_state\[0\] of shape \(2, 3\)"),
    ],
)
def test_bidirectional_bad_masks_and_states(rng, kwargs, error, pattern):
    bi = mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3)))
    with pytest.raises(error, match=pattern):
        bi.forward(rng.standard_normal((2, 4, 2)), **kwargs)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_no_grad_in_chunks_is_bit_exact_with_the_forward_with_history(float64, monkeypatch, kind, return_sequences):
    """Both directions run without history in chunks of ``time_chunk`` steps (3 here): the same
    numbers as with history, masks and initial states included."""
    mdl.set_seed(8)
    rng = np.random.default_rng(8)
    layer = mdl.Bidirectional(mdl.RNN(_cell(kind, 2, 3), return_sequences=return_sequences))
    monkeypatch.setattr(cell_module, "CHUNK_BYTES", 3 * 4 * 3 * 8)
    assert cell_module.time_chunk(layer.forward_layer.cell, 4) == 3
    x, mask = rng.standard_normal((4, 10, 2)), scattered_mask(rng, 4, 10)
    initial = (random_state(layer.forward_layer.cell, 4, rng), random_state(layer.backward_layer.cell, 4, rng))
    y = layer.forward(x, mask=mask, initial_state=initial)
    with mdl.no_grad():
        y_ng = layer.forward(x, mask=mask, initial_state=initial)
    np.testing.assert_array_equal(y_ng, y, strict=True)
