"""Optional reference check in float64: Embedding, LayerNorm and Bidirectional LSTM/GRU
against torch.nn, forward outputs and every gradient (relative error <= 1e-8).

Weight conversion (written here): torch's ``weight_ih`` is ``(gates*H, in)``, ours
``kernel (in, gates*H)``, so ours = torch.T; GRU gates r,z,n in torch are z,r,n here;
the LSTM's ``bias_ih + bias_hh`` is our single bias, the GRU's are our bias rows 0
and 1. ``nn.LayerNorm``'s ``weight``/``bias`` are our ``gamma``/``beta``.
"""

import numpy as np
import pytest

import minidl as mdl

torch = pytest.importorskip("torch")

TOL = 1e-8


def _rel(ours, ref):
    ref = np.asarray(ref)
    return float(np.max(np.abs(np.asarray(ours) - ref)) / max(np.max(np.abs(ref)), 1e-300))


def _assert_close(ours, ref, what):
    assert np.shape(ours) == np.shape(ref), f"{what}: shape {np.shape(ours)} != {np.shape(ref)}"
    err = _rel(ours, ref)
    assert err <= TOL, f"{what}: relative error {err:.3g} > {TOL}"


def test_embedding_matches_torch(float64):
    torch.manual_seed(0)
    ref = torch.nn.Embedding(11, 4).double()
    emb = mdl.Embedding(11, 4)
    emb.embeddings.data[...] = ref.weight.detach().numpy()
    x = np.random.default_rng(0).integers(0, 11, (3, 7))   # repeats on purpose
    g = np.random.default_rng(1).standard_normal((3, 7, 4))
    out = ref(torch.from_numpy(x))
    out.backward(torch.from_numpy(g))
    _assert_close(emb.forward(x), out.detach().numpy(), "output")
    assert emb.backward(g) is None
    _assert_close(emb.embeddings.grad, ref.weight.grad.numpy(), "embeddings.grad")


@pytest.mark.parametrize("shape", [(4, 6), (2, 5, 6)])
def test_layernorm_matches_torch(float64, shape):
    rng = np.random.default_rng(2)
    ref = torch.nn.LayerNorm(6, eps=1e-5).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(rng.standard_normal(6)))
        ref.bias.copy_(torch.from_numpy(rng.standard_normal(6)))
    ln = mdl.LayerNorm(6, eps=1e-5)
    ln.gamma.data[...] = ref.weight.detach().numpy()
    ln.beta.data[...] = ref.bias.detach().numpy()
    x = 1.5 + 3.0 * rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    xt = torch.from_numpy(x).requires_grad_(True)
    out = ref(xt)
    out.backward(torch.from_numpy(g))
    _assert_close(ln.forward(x), out.detach().numpy(), "output")
    _assert_close(ln.backward(g), xt.grad.numpy(), "input grad")
    _assert_close(ln.gamma.grad, ref.weight.grad.numpy(), "gamma.grad")
    _assert_close(ln.beta.grad, ref.bias.grad.numpy(), "beta.grad")


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

    _assert_close(bi.forward(x), expected.detach().numpy(), "output")
    _assert_close(bi.backward(g), xt.grad.numpy(), "input grad")
    grads = {n: p.grad.numpy() for n, p in ref.named_parameters()}
    ours = dict(bi.named_parameters())
    for direction, suffix in (("forward_layer", ""), ("backward_layer", "_reverse")):
        p = _perm(kind, H)
        _assert_close(ours[f"{direction}.cell.kernel"].grad, grads["weight_ih_l0" + suffix][p].T, f"{direction} kernel")
        _assert_close(
            ours[f"{direction}.cell.recurrent_kernel"].grad, grads["weight_hh_l0" + suffix][p].T, f"{direction} recurrent"
        )
        if kind == "gru":
            bias = np.stack([grads["bias_ih_l0" + suffix][p], grads["bias_hh_l0" + suffix][p]])
        else:  # our single bias receives the gradient each of torch's two biases gets
            bias = grads["bias_ih_l0" + suffix]
            _assert_close(grads["bias_hh_l0" + suffix], bias, "torch's two LSTM biases")
        _assert_close(ours[f"{direction}.cell.bias"].grad, bias, f"{direction} bias")
