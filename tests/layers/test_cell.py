"""Cell: the protocol a recurrent cell implements, and its step-loop defaults.

Users' cells with only ``step`` / ``step_backward`` (one with a state of two arrays) run in
``RNN`` through ``Cell``'s ``forward_sequence`` / ``backward_sequence`` / ``state_at``:
values against a hand-written loop, gradient checks (both ``return_sequences``, a carried
state), no history under ``no_grad``, masks with no change to the cell (against each sequence
alone, NaN padding, gradient checks); ``Cell.forward`` as one step and its state checks."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params
from tests.helpers import Masked, pad_with, right_padded_mask, scattered_mask


class _LeakyCell(mdl.Cell):
    """A user cell with only the step interface: ``h' = 0.5 h + tanh(x @ w + h @ u)``."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.w = self.add_weight("w", (input_size, hidden_size))
        self.u = self.add_weight("u", (hidden_size, hidden_size))

    def step(self, x, state):
        (h,) = state
        a = np.tanh(x @ self.w.data + h @ self.u.data)
        return (0.5 * h + a,), (x, h, a)

    def step_backward(self, dstate, cache):
        (dh,) = dstate
        x, h, a = cache
        da = dh * (1 - a * a)
        self.w.grad += x.T @ da
        self.u.grad += h.T @ da
        return da @ self.w.data.T, (0.5 * dh + da @ self.u.data.T,)


class _SumCell(mdl.Cell):
    """A user cell with a state of two arrays: ``h' = tanh(x @ w + s)``, ``s' = s + h'``."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.w = self.add_weight("w", (input_size, hidden_size))

    @property
    def state_size(self):
        return (self.hidden_size, self.hidden_size)

    def step(self, x, state):
        _, s = state
        h = np.tanh(x @ self.w.data + s)
        return (h, s + h), (x, h)

    def step_backward(self, dstate, cache):
        dh, ds = dstate
        x, h = cache
        da = (dh + ds) * (1 - h * h)
        self.w.grad += x.T @ da
        return da @ self.w.data.T, (np.zeros_like(dh), ds + da)


def test_user_cell_with_step_interface_only(float64, rng):
    cell = _LeakyCell(2, 3)
    x = rng.standard_normal((2, 4, 2))
    rnn = mdl.RNN(cell, return_sequences=True)
    y = rnn.forward(x)
    h = np.zeros((2, 3))
    for t in range(4):
        h = 0.5 * h + np.tanh(x[:, t] @ cell.w.data + h @ cell.u.data)
        np.testing.assert_allclose(y[:, t], h, atol=1e-14)
    np.testing.assert_allclose(rnn.state_at(4)[0], h, atol=1e-14)
    assert [n for n, _ in rnn.named_parameters()] == ["cell.w", "cell.u"]
    assert mdl.gradcheck(rnn, x)
    assert mdl.gradcheck(mdl.RNN(cell), x)


def test_user_cell_with_two_state_arrays(float64, rng):
    cell = _SumCell(2, 3)
    x = rng.standard_normal((2, 5, 2))
    s0 = (rng.standard_normal((2, 3)), rng.standard_normal((2, 3)))
    rnn = mdl.RNN(cell, return_sequences=True, stateful=True)
    rnn.set_state(s0)
    y = rnn.forward(x)
    h, s = s0
    for t in range(5):
        h = np.tanh(x[:, t] @ cell.w.data + s)
        s = s + h
        np.testing.assert_allclose(y[:, t], h, atol=1e-14)
        for got, want in zip(rnn.state_at(t + 1), (h, s), strict=True):
            np.testing.assert_allclose(got, want, atol=1e-14)
    for got, want in zip(rnn.state_at(0), s0, strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(rnn.get_state(), (h, s), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-14)
    assert mdl.gradcheck(rnn, x)  # from the carried state, restored on every run
    rnn.set_state(s0)
    assert mdl.gradcheck(mdl.RNN(cell), x)


def test_step_loop_without_history(float64, rng):
    cell = _LeakyCell(2, 3)
    xs = rng.standard_normal((4, 2, 2))
    state = (rng.standard_normal((2, 3)),)
    hs, final, cache = cell.forward_sequence(xs, state, keep_history=False)
    hs_kept, final_kept, cache_kept = cell.forward_sequence(xs, state)
    assert cache is None and cache_kept is not None
    np.testing.assert_array_equal(hs, hs_kept)
    np.testing.assert_array_equal(final[0], final_kept[0])
    np.testing.assert_array_equal(hs[-1], final[0])
    rnn = mdl.RNN(cell, return_sequences=True)
    rnn.set_state(state)
    with mdl.no_grad():
        y = rnn.forward(xs.transpose(1, 0, 2))
    np.testing.assert_allclose(y, hs.transpose(1, 0, 2), atol=1e-15)


def test_cell_forward_is_one_step(float64, rng):
    cell = _SumCell(2, 3)
    x = rng.standard_normal((4, 2))
    state = (rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))
    h, s = cell(x, state)
    np.testing.assert_allclose(h, np.tanh(x @ cell.w.data + state[1]), atol=1e-15)
    np.testing.assert_allclose(s, state[1] + h, atol=1e-15)
    h0, s0 = cell(x)  # from the zero state
    np.testing.assert_allclose(h0, np.tanh(x @ cell.w.data), atol=1e-15)
    np.testing.assert_array_equal(s0, h0)
    h_list, _ = cell(x.tolist(), [a.tolist() for a in state])  # lists are converted
    np.testing.assert_array_equal(h_list, h)


def test_initial_state_and_state_size():
    cell = _SumCell(2, 3)
    zeros = cell.initial_state(4)
    assert isinstance(zeros, tuple) and len(zeros) == 2
    assert all(z.shape == (4, 3) and z.dtype == np.float32 and not z.any() for z in zeros)
    assert cell.initial_state(1, np.float64)[0].dtype == np.float64
    assert _LeakyCell(2, 5).state_size == (5,)
    assert mdl.LSTMCell(2, 5).state_size == (5, 5) and mdl.GRUCell(2, 5).state_size == (5,)


@pytest.mark.parametrize(
    "state, pattern",
    [
        ((np.zeros((4, 3)),), r"_SumCell\(.*expected state as a tuple of 2 arrays, got tuple of length 1"),
        (np.zeros((4, 3)), r"expected state as a tuple of 2 arrays, got ndarray"),
        ((np.zeros((4, 3)), np.zeros((3, 3))), r"expected state\[1\] of shape \(4, 3\), got \(3, 3\)"),
        ((np.zeros((4, 2)), np.zeros((4, 3))), r"expected state\[0\] of shape \(4, 3\), got \(4, 2\)"),
    ],
)
def test_cell_forward_state_checks(state, pattern):
    with pytest.raises(ValueError, match=pattern):
        _SumCell(2, 3).forward(np.zeros((4, 2)), state)


def test_cell_forward_input_checks():
    with pytest.raises(ValueError, match=r"_LeakyCell\(.*expected input \(batch, 2\), got shape \(4, 3\)"):
        _LeakyCell(2, 3).forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"input must have at least one sample, got shape \(0, 2\)"):
        _LeakyCell(2, 3).forward(np.zeros((0, 2)))


def test_a_cell_must_implement_the_steps():
    class NoSteps(mdl.Cell):
        pass

    cell = NoSteps(2, 3)
    with pytest.raises(NotImplementedError, match="NoSteps must implement step\\(x, state\\)"):
        cell.forward(np.zeros((1, 2)))
    with pytest.raises(NotImplementedError, match="NoSteps must implement step_backward"):
        cell.step_backward((np.zeros((1, 3)),), None)


def test_user_cell_get_config_and_save(tmp_path, rng):
    model = mdl.Sequential([mdl.RNN(_LeakyCell(2, 3)), mdl.Dense(3, 1)])
    assert model.layers[0].cell.get_config() == {"input_size": 2, "hidden_size": 3}
    model.save(tmp_path / "leaky.npz")
    restored = mdl.load_model(tmp_path / "leaky.npz")
    assert type(restored.layers[0].cell) is _LeakyCell
    x = rng.standard_normal((2, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))


@pytest.mark.parametrize("make", [_LeakyCell, _SumCell])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_user_cell_with_masks_needs_no_change(float64, rng, make, return_sequences):
    """A step-only cell under a mask: each row equals its real steps run alone (NaN padding
    never leaks), zeros at padded steps, and the gradients check (padding anywhere)."""
    cell = make(2, 3)
    lengths = np.array([5, 2, 0])
    mask = right_padded_mask(lengths, 5)
    x = pad_with(rng.standard_normal((3, 5, 2)), mask, np.nan)
    rnn = mdl.RNN(cell, return_sequences=return_sequences)
    y = rnn.forward(x, mask=mask)
    dx = rnn.backward(np.ones_like(y))
    assert np.all(np.isfinite(dx)) and np.all(dx[~mask] == 0)
    for b, L in enumerate(lengths):
        if L == 0:
            np.testing.assert_array_equal(y[b], 0.0)
            continue
        alone = mdl.RNN(cell, return_sequences=True).forward(x[b:b + 1, :L])[0]
        np.testing.assert_allclose(y[b, :L] if return_sequences else y[b], alone if return_sequences else alone[-1],
                                   rtol=0, atol=1e-14)
        alone_rnn = mdl.RNN(cell)
        alone_rnn.forward(x[b:b + 1, :L])
        for got, want in zip(rnn.final_state, alone_rnn.final_state, strict=True):
            np.testing.assert_allclose(got[b], want[0], rtol=0, atol=1e-14)
    assert mdl.gradcheck(Masked(rnn, scattered_mask(rng, 3, 6)), rng.standard_normal((3, 6, 2)))


def test_a_fast_path_without_masks_is_refused_with_a_mask(float64, rng):
    """A user's forward_sequence / backward_sequence that take no mask= run unmasked, and a
    mask is a clear TypeError instead of a silent unmasked run."""

    class _OldFastPath(_LeakyCell):
        def forward_sequence(self, xs, state, keep_history=True):
            return mdl.Cell.forward_sequence(self, xs, state, keep_history)

    rnn = mdl.RNN(_OldFastPath(2, 3))
    x = rng.standard_normal((2, 4, 2))
    np.testing.assert_array_equal(rnn.forward(x), mdl.RNN(rnn.cell).forward(x))
    with pytest.raises(TypeError, match=r"_OldFastPath.forward_sequence takes no mask= argument"):
        rnn.forward(x, mask=np.ones((2, 4), bool))


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    (
            "cell_wrong_features",
            lambda: mdl.RNNCell(3, 4).forward(np.zeros((2, 5))),
            ValueError,
            r"RNNCell\(input_size=3.*expected input \(batch, 3\), got shape \(2, 5\)",
        ),
    (
            "cell_rank1",
            lambda: mdl.GRUCell(3, 4).forward(np.zeros(3)),
            ValueError,
            r"GRUCell\(input_size=3.*expected input \(batch, 3\), got shape \(3,\)",
        ),
    (
            "cell_string",
            lambda: mdl.LSTMCell(3, 4).forward("abc"),
            TypeError,
            r"LSTMCell\(.*input must be a real numeric array, got dtype <U3",
        ),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)


# ---- what a user's step methods return is checked at the first step, naming cell and method ----
def _broken(step=None, step_backward=None):
    """A ``_LeakyCell`` subclass whose ``step`` / ``step_backward`` return ``step(out)`` /
    ``step_backward(out)`` of the correct return ``out`` instead."""
    class Broken(_LeakyCell):
        def step(self, x, state):
            out = super().step(x, state)
            return out if step is None else step(out)

        def step_backward(self, dstate, cache):
            out = super().step_backward(dstate, cache)
            if step_backward is None:
                return out
            return step_backward(self, out)
    return Broken


def _replace_grad(cell, out):
    cell.u.grad = cell.u.grad.sum(axis=0)  # assigned instead of added into, and of the wrong shape
    return out


BROKEN_STEPS = {
    "h instead of (h,)": (lambda out: (out[0][0], out[1]), TypeError,
                          r"Broken\.step returned new_state as ndarray of shape \(8, 4\); expected a tuple of 1 "
                          r"array\(s\) shaped \(8, 4\) \(one per state_size entry: return \(h_new,\), cache"),
    "no cache": (lambda out: out[0], TypeError, r"Broken\.step must return a tuple \(new_state, cache\), got tuple of length 1"),
    "h of the wrong width": (lambda out: ((out[0][0][:, :3],), out[1]), ValueError,
                             r"Broken\.step returned new_state\[0\] of shape \(8, 3\); expected \(8, 4\)"),
    "h a list": (lambda out: ((out[0][0].tolist(),), out[1]), TypeError,
                 r"Broken\.step returned new_state\[0\] as list of length 8; expected an array of shape \(8, 4\)"),
}
BROKEN_BACKWARDS = {
    "dx transposed": (lambda cell, out: (out[0].T, out[1]), ValueError,
                      r"Broken\.step_backward returned dx of shape \(2, 8\); expected \(8, 2\)"),
    "dh instead of (dh,)": (lambda cell, out: (out[0], out[1][0]), TypeError,
                            r"Broken\.step_backward returned dstate_prev as ndarray of shape \(8, 4\); expected a tuple"),
    "dstate_prev of the wrong batch": (lambda cell, out: (out[0], (out[1][0][:1],)), ValueError,
                                       r"Broken\.step_backward returned dstate_prev\[0\] of shape \(1, 4\); expected \(8, 4\)"),
    "one value": (lambda cell, out: out[0], TypeError,
                  r"Broken\.step_backward must return a tuple \(dx, dstate_prev\), got ndarray of shape \(8, 2\)"),
    "a grad replaced": (_replace_grad, ValueError,
                        r"Broken\.step_backward left u\.grad as ndarray of shape \(4,\); expected an array of shape "
                        r"\(4, 4\) like u\.data: add into it \(u\.grad \+= \.\.\.\), never replace it"),
}


@pytest.mark.parametrize("mistake", BROKEN_STEPS)
def test_a_wrong_step_return_is_named_at_the_first_step(rng, mistake):
    """The reported case: ``predict`` gave shape (1,) for a batch of 8 when ``step`` returned ``h``."""
    edit, exc, pattern = BROKEN_STEPS[mistake]
    cell = _broken(step=edit)(2, 4)
    x = rng.standard_normal((8, 5, 2))
    for run in (lambda: mdl.Sequential([mdl.RNN(cell)]).predict(x), lambda: mdl.RNN(cell)(x),
                lambda: mdl.RNN(cell, return_sequences=True).forward(x, mask=np.ones((8, 5), bool)),
                lambda: cell(x[:, 0])):
        with pytest.raises(exc, match=pattern):
            run()


@pytest.mark.parametrize("mistake", BROKEN_BACKWARDS)
@pytest.mark.parametrize("masked", [False, True])
def test_a_wrong_step_backward_return_is_named_at_the_first_step(rng, mistake, masked):
    edit, exc, pattern = BROKEN_BACKWARDS[mistake]
    rnn = mdl.RNN(_broken(step_backward=edit)(2, 4))
    rnn.forward(rng.standard_normal((8, 5, 2)), mask=np.ones((8, 5), bool) if masked else None)
    with pytest.raises(exc, match=pattern):
        rnn.backward(np.ones((8, 4)))


def test_the_returns_are_checked_at_the_first_step_only(monkeypatch, rng):
    """The checks cost one step's worth of shape comparisons per call; the built-in cells'
    fused kernels never reach them."""
    calls = []
    for name in ("_checked_step", "_checked_step_backward"):
        checked = getattr(mdl.Cell, name)
        monkeypatch.setattr(mdl.Cell, name, lambda self, *a, _c=checked, _n=name: calls.append(_n) or _c(self, *a))
    rnn = mdl.RNN(_LeakyCell(2, 4), return_sequences=True)
    x = rng.standard_normal((3, 40, 2))
    rnn.backward(rnn.forward(x))
    assert calls == ["_checked_step", "_checked_step_backward"]
    calls.clear()
    for cell in (mdl.LSTMCell(2, 4), mdl.GRUCell(2, 4), mdl.RNNCell(2, 4)):
        rnn = mdl.RNN(cell, return_sequences=True)
        rnn.backward(rnn.forward(x))
    assert calls == []
