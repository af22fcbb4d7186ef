"""Optional reference check: RNN/LSTM/GRU against torch.nn (float64), outputs and gradients.

Layout conversion (written here, independently of minidl): torch keeps ``weight_ih``
as ``(gates*H, in)`` and multiplies from the right, ours is ``kernel (in, gates*H)``
multiplied from the left, so ours = torch.T. LSTM gate order is i,f,g,o in both;
torch's GRU order is r,z,n while ours is z,r,n. torch has ``bias_ih`` and ``bias_hh``:
for RNN/LSTM they sum into our single bias, for GRU they are our bias rows 0 and 1.
"""

import numpy as np
import pytest

import minidl as mdl

torch = pytest.importorskip("torch")

MAX_REL_ERR = {}


def _rel(ours, ref):
    ref = np.asarray(ref)
    return float(np.max(np.abs(np.asarray(ours) - ref)) / max(np.max(np.abs(ref)), 1e-300))


def _build(kind, F, H, seed):
    torch.manual_seed(seed)
    if kind == "lstm":
        ref, cell = torch.nn.LSTM(F, H, batch_first=True), mdl.LSTMCell(F, H)
    elif kind == "gru":
        ref, cell = torch.nn.GRU(F, H, batch_first=True), mdl.GRUCell(F, H)
    else:
        act = kind[4:]
        ref, cell = torch.nn.RNN(F, H, nonlinearity=act, batch_first=True), mdl.RNNCell(F, H, activation=act)
    return ref.double(), cell


def _gate_perm(kind, H):
    """Row order that takes torch's gate blocks to ours."""
    if kind == "gru":  # torch r,z,n -> ours z,r,n
        return np.r_[H:2 * H, 0:H, 2 * H:3 * H]
    return np.arange((4 if kind == "lstm" else 1) * H)


def _to_ours(kind, ref, H):
    """torch parameters (or their grads) -> dict of arrays in our layout."""
    perm = _gate_perm(kind, H)
    t = {n: p.detach().numpy() for n, p in ref.named_parameters()}
    out = {"kernel": t["weight_ih_l0"][perm].T, "recurrent_kernel": t["weight_hh_l0"][perm].T}
    if kind == "gru":
        out["bias"] = np.stack([t["bias_ih_l0"][perm], t["bias_hh_l0"][perm]])
    else:
        out["bias"] = t["bias_ih_l0"] + t["bias_hh_l0"]
    return out


def _grads_to_ours(kind, ref, H):
    perm = _gate_perm(kind, H)
    g = {n: p.grad.numpy() for n, p in ref.named_parameters()}
    out = {"kernel": g["weight_ih_l0"][perm].T, "recurrent_kernel": g["weight_hh_l0"][perm].T}
    if kind == "gru":
        out["bias"] = np.stack([g["bias_ih_l0"][perm], g["bias_hh_l0"][perm]])
    else:  # d/d(bias_ih) = d/d(bias_hh) = d/d(our bias)
        np.testing.assert_allclose(g["bias_ih_l0"], g["bias_hh_l0"], rtol=1e-12, atol=1e-15)
        out["bias"] = g["bias_ih_l0"]
    return out


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("B, T, F, H, seed", [(3, 6, 4, 5, 0), (2, 4, 3, 3, 1)])
def test_matches_torch(float64, kind, return_sequences, B, T, F, H, seed):
    ref, cell = _build(kind, F, H, seed)
    for name, value in _to_ours(kind, ref, H).items():
        getattr(cell, name).data[...] = value
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, F))
    state = tuple(rng.uniform(-0.5, 0.5, (B, H)) for _ in cell.state_size)
    g = rng.standard_normal((B, T, H) if return_sequences else (B, H))

    rnn = mdl.RNN(cell, return_sequences=return_sequences)
    rnn.set_state(state)
    y = rnn.forward(x)
    dx = rnn.backward(g)

    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s[None], requires_grad=True) for s in state]
    out, final = ref(xt, (st[0], st[1]) if kind == "lstm" else st[0])
    yt = out if return_sequences else out[:, -1]
    (yt * torch.tensor(g)).sum().backward()
    final = final if kind == "lstm" else (final,)

    errors = {"output": _rel(y, yt.detach().numpy()), "input grad": _rel(dx, xt.grad.numpy())}
    for k, (ours, theirs) in enumerate(zip(rnn.state_at(T), final)):
        errors[f"final state[{k}]"] = _rel(ours, theirs.detach().numpy()[0])
    for k, (ours, theirs) in enumerate(zip(rnn.initial_state_grad, st)):
        errors[f"initial state[{k}] grad"] = _rel(ours, theirs.grad.numpy()[0])
    for name, theirs in _grads_to_ours(kind, ref, H).items():
        errors[f"{name} grad"] = _rel(getattr(cell, name).grad, theirs)
    for what, err in errors.items():
        MAX_REL_ERR[(kind, what)] = max(err, MAX_REL_ERR.get((kind, what), 0.0))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-8, f"{kind}: {worst} relative error {errors[worst]:.3g}"


def test_gru_layout_conversion_matters(float64):
    """Without the r,z,n -> z,r,n permutation the GRU does not match torch (the check can fail)."""
    ref, cell = _build("gru", 2, 3, 0)
    t = {n: p.detach().numpy() for n, p in ref.named_parameters()}
    cell.kernel.data[...] = t["weight_ih_l0"].T
    cell.recurrent_kernel.data[...] = t["weight_hh_l0"].T
    cell.bias.data[...] = np.stack([t["bias_ih_l0"], t["bias_hh_l0"]])
    x = np.random.default_rng(0).standard_normal((2, 3, 2))
    y = mdl.RNN(cell).forward(x)
    yt = ref(torch.tensor(x))[0][:, -1].detach().numpy()
    assert _rel(y, yt) > 1e-3


def test_report_max_relative_errors(capsys, request):
    """With ``-v`` prints the worst relative error of each compared quantity."""
    if not MAX_REL_ERR:
        pytest.skip("the comparison tests did not run")
    if request.config.getoption("verbose") > 0:
        with capsys.disabled():
            print("\nmax relative error vs torch:")
            for (kind, what), err in sorted(MAX_REL_ERR.items()):
                print(f"  {kind:9s} {what:24s} {err:.2e}")
    assert max(MAX_REL_ERR.values()) <= 1e-8
