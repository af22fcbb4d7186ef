"""Recurrent-cell builders, scalar-reference plumbing, golden-value weights, the comparison
with torch.nn and gradient checks of a cell in RNN."""

import math
import types

import numpy as np
import pytest

import minidl as mdl


# ---- recurrent cells ------------------------------------------------------------------
CELL_KINDS = ["rnn_tanh", "rnn_sigmoid", "rnn_relu", "lstm", "gru"]


def make_cell(kind, F, H):
    """A built-in cell by test name: ``"rnn_<activation>"``, ``"lstm"`` or ``"gru"``."""
    if kind.startswith("rnn_"):
        return mdl.RNNCell(F, H, activation=kind[4:])
    return {"lstm": mdl.LSTMCell, "gru": mdl.GRUCell}[kind](F, H)


def random_state(cell, B, rng):
    """A non-zero state for ``cell``: one ``(B, n)`` array per entry of ``state_size``."""
    return tuple(rng.uniform(-0.8, 0.8, (B, n)) for n in cell.state_size)


def with_step_loop(cell):
    """``cell`` itself, made to run in ``RNN`` through ``Cell``'s loop over its own ``step`` /
    ``step_backward`` instead of its fused sequence methods (instance attributes, so a deep
    copy such as ``gradcheck``'s keeps them)."""
    for name in ("forward_sequence", "backward_sequence", "state_at"):
        setattr(cell, name, types.MethodType(getattr(mdl.Cell, name), cell))
    return cell


def scalar_sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


def column(vec, mat, j):
    """``(vec @ mat)[j]`` on Python lists, by scalar arithmetic."""
    return sum(vec[k] * mat[k][j] for k in range(len(vec)))


def scalar_sequences(x, state, step):
    """Run ``step(x_t, state) -> state`` (plain Python lists) over each batch row of ``x``.

    ``x``: (B, T, F) and ``state``: a tuple of (B, n), both nested lists. Returns the
    outputs ``(B, T, H)`` (the first state entry of every step) and the final state
    (a tuple of ``(B, n)`` arrays).
    """
    out, finals = [], []
    for b in range(len(x)):
        s = tuple(list(entry[b]) for entry in state)
        seq = []
        for xt in x[b]:
            s = step(xt, s)
            seq.append(s[0])
        out.append(seq)
        finals.append(s)
    return np.array(out), tuple(np.array([f[k] for f in finals]) for k in range(len(state)))


def run_with_random_weights(cell, seed, B=2, T=4):
    """Random weights, input and initial state (seeded); returns ``(x, state, outputs, final)``
    of ``RNN(cell, return_sequences=True)``, for comparison with a scalar reference."""
    rng = np.random.default_rng(seed)
    for p in cell.parameters():
        p.data[...] = rng.uniform(-1, 1, p.shape)
    x = rng.standard_normal((B, T, cell.input_size))
    state = random_state(cell, B, rng)
    rnn = mdl.RNN(cell, return_sequences=True)
    rnn.set_state(state)
    return x, state, rnn.forward(x), rnn.state_at(T)


# Golden values: every weight 0.1, every recurrent weight 0.2, every bias 0.05, so that
# every unit holds the same scalar, written out by hand in each cell's test module.
X_GOLDEN = np.array([[[0.5, -0.2, 0.1], [1.0, 0.3, -0.4]], [[-1.0, -0.5, 0.2], [0.3, 0.4, -0.1]]])


def constant_weights(cell):
    cell.kernel.data[...] = 0.1
    cell.recurrent_kernel.data[...] = 0.2
    cell.bias.data[...] = 0.05
    return cell


def assert_golden(cell, expected):
    """``RNN(cell)`` on ``X_GOLDEN`` gives ``expected (B, T, H)``, with and without return_sequences."""
    np.testing.assert_allclose(mdl.RNN(cell, return_sequences=True).forward(X_GOLDEN), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mdl.RNN(cell).forward(X_GOLDEN), expected[:, -1], rtol=0, atol=1e-12)


def assert_default_init(cell, shapes):
    """The cell's parameter shapes are ``shapes`` and each is drawn from ``U(-1/sqrt(H), 1/sqrt(H))``."""
    assert {n: p.shape for n, p in cell.named_parameters()} == shapes
    bound = 1 / math.sqrt(cell.hidden_size)
    for p in cell.parameters():
        assert p.data.dtype == np.float32
        assert np.all(np.abs(p.data) <= bound)
        assert np.ptp(p.data) > 0
        assert np.abs(p.data).max() > 0.8 * bound


# ---- recurrent cells against torch.nn (float64) -----------------------------------------
# Layout conversion, written here independently of minidl: torch keeps ``weight_ih`` as
# ``(gates*H, in)`` and multiplies from the right, ours is ``kernel (in, gates*H)``
# multiplied from the left, so ours = torch.T. LSTM gate order is i,f,g,o in both; torch's
# GRU order is r,z,n while ours is z,r,n. torch has ``bias_ih`` and ``bias_hh``: for
# RNN/LSTM they sum into our single bias, for GRU they are our bias rows 0 and 1.
def relative_error(ours, ref):
    ref = np.asarray(ref)
    return float(np.max(np.abs(np.asarray(ours) - ref)) / max(np.max(np.abs(ref)), 1e-300))


def torch_pair(torch, kind, F, H, seed):
    """``(torch module in float64, our cell)`` of the same kind; the weights still differ."""
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


def _torch_to_ours(kind, arrays, H, check_bias_grads=False):
    """torch parameters (or their grads), by torch name -> dict of arrays in our layout."""
    perm = _gate_perm(kind, H)
    out = {"kernel": arrays["weight_ih_l0"][perm].T, "recurrent_kernel": arrays["weight_hh_l0"][perm].T}
    if kind == "gru":
        out["bias"] = np.stack([arrays["bias_ih_l0"][perm], arrays["bias_hh_l0"][perm]])
    elif check_bias_grads:  # d/d(bias_ih) = d/d(bias_hh) = d/d(our bias)
        np.testing.assert_allclose(arrays["bias_ih_l0"], arrays["bias_hh_l0"], rtol=1e-12, atol=1e-15)
        out["bias"] = arrays["bias_ih_l0"]
    else:
        out["bias"] = arrays["bias_ih_l0"] + arrays["bias_hh_l0"]
    return out


def torch_errors(torch, kind, return_sequences, B, T, F, H, seed):
    """Relative errors of ``RNN(cell)`` against torch with the same weights, from a random
    initial state: output, input grad, final state, initial-state grads, parameter grads."""
    ref, cell = torch_pair(torch, kind, F, H, seed)
    weights = {n: p.detach().numpy() for n, p in ref.named_parameters()}
    for name, value in _torch_to_ours(kind, weights, H).items():
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

    errors = {"output": relative_error(y, yt.detach().numpy()), "input grad": relative_error(dx, xt.grad.numpy())}
    for k, (ours, theirs) in enumerate(zip(rnn.state_at(T), final)):
        errors[f"final state[{k}]"] = relative_error(ours, theirs.detach().numpy()[0])
    for k, (ours, theirs) in enumerate(zip(rnn.initial_state_grad, st)):
        errors[f"initial state[{k}] grad"] = relative_error(ours, theirs.grad.numpy()[0])
    grads = {n: p.grad.numpy() for n, p in ref.named_parameters()}
    for name, theirs in _torch_to_ours(kind, grads, H, check_bias_grads=True).items():
        errors[f"{name} grad"] = relative_error(getattr(cell, name).grad, theirs)
    return errors


def record_torch_errors(max_errors, kind, errors, limit=1e-8):
    """Keep the worst error of each quantity in ``max_errors`` and assert all are within ``limit``."""
    for what, err in errors.items():
        max_errors[(kind, what)] = max(err, max_errors.get((kind, what), 0.0))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= limit, f"{kind}: {worst} relative error {errors[worst]:.3g}"


def report_torch_errors(max_errors, capsys, request, limit=1e-8):
    """With ``-v`` print the worst relative error of each compared quantity; assert all within ``limit``."""
    if not max_errors:
        pytest.skip("the comparison tests did not run")
    if request.config.getoption("verbose") > 0:
        with capsys.disabled():
            print("\nmax relative error vs torch:")
            for (kind, what), err in sorted(max_errors.items()):
                print(f"  {kind:9s} {what:24s} {err:.2e}")
    assert max(max_errors.values()) <= limit


# ---- gradient checks of a cell in RNN (float64) ----------------------------------------------
GRADCHECK_SIZES = [(2, 3, 2, 3, 0), (3, 5, 4, 5, 1), (2, 6, 3, 4, 2)]  # B, T, F, H, seed
TORCH_SIZES = [(3, 6, 4, 5, 0), (2, 4, 3, 3, 1)]  # B, T, F, H, seed


def rnn_gradcheck(make, return_sequences, B, T, F, H, seed):
    """``gradcheck`` of ``RNN(make(F, H))`` (the fused path of a built-in cell) from zeros."""
    mdl.set_seed(seed)
    rnn = mdl.RNN(make(F, H), return_sequences=return_sequences)
    return mdl.gradcheck(rnn, np.random.default_rng(seed).standard_normal((B, T, F)))


def steps_gradcheck(make, return_sequences, seed=4):
    """``gradcheck`` of ``RNN`` over the cell's readable ``step`` / ``step_backward`` alone
    (``with_step_loop``), from a random carried state."""
    mdl.set_seed(seed)
    rng = np.random.default_rng(seed)
    cell = with_step_loop(make(3, 4))
    rnn = mdl.RNN(cell, return_sequences=return_sequences)
    rnn.set_state(random_state(cell, 2, rng))
    return mdl.gradcheck(rnn, rng.standard_normal((2, 5, 3)))
