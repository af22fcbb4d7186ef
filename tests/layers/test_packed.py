"""RNN and Bidirectional with masks against PyTorch's packed sequences (float64, <= 1e-8).

A right-padded batch of different lengths (``mask = lengths[:, None] > arange(T)``) through
``RNN`` (tanh and relu), LSTM and GRU gives exactly ``pack_padded_sequence`` ->
``torch.nn.RNN/LSTM/GRU`` -> ``pad_packed_sequence``: the zero-padded outputs, ``h_n`` (and
``c_n``), every parameter gradient, the input gradient and the initial-state gradients, with
gradients on the outputs and on the final states (``grad_final_state``). The same for
``bidirectional=True`` against ``Bidirectional``, with ``return_sequences`` both ways.
Weights are converted with the helpers of tests/helpers/cells.py."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import relative_error, right_padded_mask, torch_pair
from tests.helpers.cells import _torch_to_ours

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
LIMIT = 1e-8
B, T, F, H = 4, 6, 3, 5
LENGTHS = np.array([6, 2, 4, 1])  # unsorted: enforce_sorted=False


def _direction(arrays, suffix):
    """torch's arrays of one direction (``""`` or ``"_reverse"``), under the names of layer 0."""
    return {name[:-len(suffix)] if suffix else name: value for name, value in arrays.items()
            if name.endswith("_l0" + suffix)}


def _load(cell, kind, torch_arrays, suffix):
    for name, value in _torch_to_ours(kind, _direction(torch_arrays, suffix), H).items():
        getattr(cell, name).data[...] = value


def _assert_grads(cell, kind, torch_grads, suffix, errors):
    for name, theirs in _torch_to_ours(kind, _direction(torch_grads, suffix), H, check_bias_grads=True).items():
        errors[f"{name}{suffix} grad"] = relative_error(getattr(cell, name).grad, theirs)


def _torch_run(torch, ref, x, states, lengths, g_out, g_final, return_sequences):
    """Packed forward and backward of ``ref``; returns (output, finals, dx, dstates) as arrays.

    ``states``/``g_final``: one ``(num_directions, B, H)`` array per state entry."""
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=True,
                                                     enforce_sorted=False)
    out, final = ref(packed, tuple(st) if len(st) == 2 else st[0])
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    final = final if isinstance(final, tuple) else (final,)
    # the last output is h_n (both directions concatenated when bidirectional)
    y = out if return_sequences else torch.cat(list(final[0]), dim=-1)
    loss = (y * torch.tensor(g_out)).sum() + sum((f * torch.tensor(gf)).sum() for f, gf in zip(final, g_final))
    loss.backward()
    return (y.detach().numpy(), [f.detach().numpy() for f in final], xt.grad.numpy(), [s.grad.numpy() for s in st])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_rnn_equals_packed_sequence(float64, kind, return_sequences):
    torch = pytest.importorskip("torch")
    ref, cell = torch_pair(torch, kind, F, H, seed=41)
    weights = {n: p.detach().numpy() for n, p in ref.named_parameters()}
    _load(cell, kind, weights, "")
    rng = np.random.default_rng(41)
    mask = right_padded_mask(LENGTHS, T)
    x = rng.standard_normal((B, T, F))
    x[~mask] = 1e6  # padding values never matter, in either library
    s0 = [rng.uniform(-0.5, 0.5, (1, B, H)) for _ in cell.state_size]
    g = rng.standard_normal((B, T, H) if return_sequences else (B, H))
    g_final = [rng.standard_normal((1, B, H)) for _ in cell.state_size]

    rnn = mdl.RNN(cell, return_sequences=return_sequences)
    y = rnn.forward(x, mask=mask, initial_state=tuple(s[0] for s in s0))
    dx = rnn.backward(g, grad_final_state=tuple(gf[0] for gf in g_final))
    ty, tfinal, tdx, tds = _torch_run(torch, ref, x, s0, LENGTHS, g, g_final, return_sequences)

    errors = {"output": relative_error(y, ty), "input grad": relative_error(dx[mask], tdx[mask])}
    np.testing.assert_array_equal(dx[~mask], 0.0)
    np.testing.assert_array_equal(tdx[~mask], 0.0)
    for k in range(len(s0)):
        errors[f"final state[{k}]"] = relative_error(rnn.final_state[k], tfinal[k][0])
        errors[f"initial state[{k}] grad"] = relative_error(rnn.initial_state_grad[k], tds[k][0])
    _assert_grads(cell, kind, {n: p.grad.numpy() for n, p in ref.named_parameters()}, "", errors)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= LIMIT, f"{kind}: {worst} relative error {errors[worst]:.3g}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_equals_packed_bidirectional(float64, kind, return_sequences):
    torch = pytest.importorskip("torch")
    torch.manual_seed(42)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(kind)
    if module is None:
        ref = torch.nn.RNN(F, H, nonlinearity=kind[4:], batch_first=True, bidirectional=True)
    else:
        ref = module(F, H, batch_first=True, bidirectional=True)
    ref = ref.double()
    _, cell = torch_pair(torch, kind, F, H, seed=42)
    bi = mdl.Bidirectional(mdl.RNN(cell, return_sequences=return_sequences))
    weights = {n: p.detach().numpy() for n, p in ref.named_parameters()}
    directions = ((bi.forward_layer.cell, ""), (bi.backward_layer.cell, "_reverse"))
    for c, suffix in directions:
        _load(c, kind, weights, suffix)
    rng = np.random.default_rng(42)
    mask = right_padded_mask(LENGTHS, T)
    x = rng.standard_normal((B, T, F))
    x[~mask] = -3e5
    s0 = [rng.uniform(-0.5, 0.5, (2, B, H)) for _ in cell.state_size]
    g = rng.standard_normal((B, T, 2 * H) if return_sequences else (B, 2 * H))
    g_final = [rng.standard_normal((2, B, H)) for _ in cell.state_size]

    y = bi.forward(x, mask=mask, initial_state=tuple(tuple(s[d] for s in s0) for d in (0, 1)))
    dx = bi.backward(g, grad_final_state=tuple(tuple(gf[d] for gf in g_final) for d in (0, 1)))
    ty, tfinal, tdx, tds = _torch_run(torch, ref, x, s0, LENGTHS, g, g_final, return_sequences)

    errors = {"output": relative_error(y, ty), "input grad": relative_error(dx[mask], tdx[mask])}
    np.testing.assert_array_equal(dx[~mask], 0.0)
    for d in (0, 1):
        for k in range(len(s0)):
            errors[f"final state[{k}] dir {d}"] = relative_error(bi.final_state[d][k], tfinal[k][d])
            errors[f"initial state[{k}] grad dir {d}"] = relative_error(bi.initial_state_grad[d][k], tds[k][d])
    grads = {n: p.grad.numpy() for n, p in ref.named_parameters()}
    for c, suffix in directions:
        _assert_grads(c, kind, grads, suffix, errors)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= LIMIT, f"{kind}: {worst} relative error {errors[worst]:.3g}"
