"""fused: the built-in cells' fast sequence kernels equal the loop over their readable
``step`` / ``step_backward`` (``Cell``'s defaults), in float64 to 1e-12, for every cell and
every RNNCell activation: outputs, final state, every per-step state, every parameter
gradient, the input gradient and the initial-state gradient, from a non-zero initial
state, with output gradients on every step (or none) and a gradient on the final state;
also without history, with the scratch arrays reused, and in float32."""

import copy
import functools

import numpy as np
import pytest

import minidl as mdl
from minidl.layers import cell as cell_module
from tests.helpers import CELL_KINDS, make_cell, random_state, scattered_mask, with_step_loop

ATOL = 1e-12


def fused(cell):
    return cell.forward_sequence, cell.backward_sequence, cell.state_at


def steps(cell):
    return tuple(functools.partial(getattr(mdl.Cell, name), cell)
                 for name in ("forward_sequence", "backward_sequence", "state_at"))


def run(path, cell, xs, state, dhs, dfinal, mask=None):
    """Forward and backward of one sequence through ``path`` (fused or steps), all results copied;
    ``mask: (time, batch)`` is passed on when given."""
    forward, backward, state_at = path
    cell.zero_grad()
    masked = {} if mask is None else {"mask": mask}
    hs, final, cache = forward(xs, state, **masked)
    out = {"hs": np.array(hs), "final": [np.array(s) for s in final]}
    out["states"] = [[np.array(s) for s in state_at(cache, t)] for t in range(xs.shape[0] + 1)]
    dxs, dstate0 = backward(dhs, dfinal, cache, **masked)
    out.update(dxs=np.array(dxs), dstate0=[np.array(s) for s in dstate0])
    out["grads"] = {name: p.grad.copy() for name, p in cell.named_parameters()}
    return out


def assert_same(a, b, atol=ATOL, rtol=0.0):
    """Every array of result ``a`` equals the one of ``b``; every parameter gradient is non-zero."""
    np.testing.assert_allclose(a["hs"], b["hs"], rtol=rtol, atol=atol, err_msg="outputs")
    np.testing.assert_allclose(a["dxs"], b["dxs"], rtol=rtol, atol=atol, err_msg="input grad")
    for k, (x, y) in enumerate(zip(a["final"], b["final"], strict=True)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"final state[{k}]")
    for k, (x, y) in enumerate(zip(a["dstate0"], b["dstate0"], strict=True)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"initial state[{k}] grad")
    for t, (sa, sb) in enumerate(zip(a["states"], b["states"], strict=True)):
        for k, (x, y) in enumerate(zip(sa, sb, strict=True)):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"state_at({t})[{k}]")
    assert a["grads"].keys() == b["grads"].keys()
    for name in a["grads"]:
        assert np.any(a["grads"][name] != 0), name
        np.testing.assert_allclose(a["grads"][name], b["grads"][name], rtol=rtol, atol=atol, err_msg=name)


def problem(kind, T, B, F, H, seed=3, with_dhs=True):
    """A cell with its default (random) weights, inputs, a non-zero state and gradients."""
    rng = np.random.default_rng(seed)
    mdl.set_seed(seed)
    cell = make_cell(kind, F, H)
    xs = rng.standard_normal((T, B, F))
    state = random_state(cell, B, rng)
    dhs = rng.standard_normal((T, B, H)) if with_dhs else None
    dfinal = tuple(rng.standard_normal((B, n)) for n in cell.state_size)
    return cell, xs, state, dhs, dfinal


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("with_dhs", [True, False])
@pytest.mark.parametrize("T, B, F, H", [(5, 3, 2, 4), (1, 1, 1, 3), (7, 2, 1, 5), (4, 3, 6, 4)])  # F = 1: project's broadcast; F >= 0.6 H: RNNCell's projected layout
def test_fused_equals_steps(float64, kind, with_dhs, T, B, F, H):
    cell, xs, state, dhs, dfinal = problem(kind, T, B, F, H, with_dhs=with_dhs)
    result = run(fused(cell), cell, xs, state, dhs, dfinal)
    assert_same(result, run(steps(cell), cell, xs, state, dhs, dfinal))
    for a, b in zip(result["states"][0], state):
        np.testing.assert_array_equal(a, b)  # state_at(0) is the initial state itself


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_without_history(float64, kind):
    """keep_history=False (no_grad): the same outputs and final state, and no cache."""
    cell, xs, state, _, _ = problem(kind, 6, 3, 2, 4)
    hs, final, cache = cell.forward_sequence(xs, state, keep_history=False)
    hs_steps, final_steps, cache_steps = mdl.Cell.forward_sequence(cell, xs, state, keep_history=False)
    hs_kept, final_kept, _ = cell.forward_sequence(xs, state)
    assert cache is None and cache_steps is None
    np.testing.assert_allclose(hs, hs_steps, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(hs, hs_kept)
    for a, b, c in zip(final, final_steps, final_kept, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_backward_twice_and_scratch_reuse(float64, kind):
    """A second backward of the same cache gives the same gradients again (backward does not
    overwrite what it reads, and the scratch arrays it reuses start afresh); a sequence of
    another shape in between reallocates them and still equals the step path."""
    cell, xs, state, dhs, dfinal = problem(kind, 5, 3, 2, 4)
    first = run(fused(cell), cell, xs, state, dhs, dfinal)
    _, _, cache = cell.forward_sequence(xs, state)
    cell.zero_grad()
    cell.backward_sequence(dhs, dfinal, cache)
    dxs, _ = cell.backward_sequence(dhs, dfinal, cache)
    np.testing.assert_array_equal(dxs, first["dxs"])
    for name, p in cell.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * first["grads"][name], rtol=1e-14, atol=1e-15)

    other = problem(kind, 3, 2, 2, 4, seed=8)[1:]
    other_cell = copy.deepcopy(cell)  # the same weights
    assert_same(run(fused(cell), cell, *other), run(steps(other_cell), other_cell, *other))
    assert_same(run(fused(cell), cell, xs, state, dhs, dfinal), first, atol=0)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_deepcopy_leaves_scratch_arrays_behind(float64, kind):
    cell, xs, state, dhs, dfinal = problem(kind, 5, 3, 2, 4)
    first = run(fused(cell), cell, xs, state, dhs, dfinal)
    assert vars(cell)["_workspace"]._arrays  # the fused backward keeps scratch arrays
    clone = copy.deepcopy(cell)
    assert not vars(clone)["_workspace"]._arrays
    assert_same(run(fused(clone), clone, xs, state, dhs, dfinal), first, atol=0)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_float32_close_to_steps(kind):
    """In float32 both paths compute in float32 and agree to its precision."""
    cell, xs, state, dhs, dfinal = problem(kind, 5, 3, 2, 4)
    xs, dhs = xs.astype(np.float32), dhs.astype(np.float32)
    state, dfinal = (tuple(s.astype(np.float32) for s in v) for v in (state, dfinal))
    a, b = run(fused(cell), cell, xs, state, dhs, dfinal), run(steps(cell), cell, xs, state, dhs, dfinal)
    assert a["hs"].dtype == b["hs"].dtype == a["dxs"].dtype == np.float32
    assert_same(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_rnn_over_fused_equals_rnn_over_steps(float64, kind, return_sequences):
    """Through RNN, from a carried state (stateful, two calls): outputs, states and gradients."""
    rng = np.random.default_rng(6)
    mdl.set_seed(6)
    cell = make_cell(kind, 3, 4)
    twin = with_step_loop(copy.deepcopy(cell))
    x = rng.standard_normal((2, 7, 3))
    g = rng.standard_normal((2, 4, 4) if return_sequences else (2, 4))
    results = []
    for c in (cell, twin):
        rnn = mdl.RNN(c, return_sequences=return_sequences, stateful=True)
        rnn.forward(x[:, :3])
        y = rnn.forward(x[:, 3:])
        dx = rnn.backward(g)
        results.append((y, dx, rnn.initial_state_grad, [rnn.state_at(t) for t in range(5)],
                        [p.grad.copy() for p in c.parameters()]))
    (y1, dx1, ds1, st1, g1), (y2, dx2, ds2, st2, g2) = results
    np.testing.assert_allclose(y1, y2, rtol=0, atol=ATOL)
    np.testing.assert_allclose(dx1, dx2, rtol=0, atol=ATOL)
    for a, b in zip(ds1 + sum(st1, ()), ds2 + sum(st2, ()), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL)


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("with_dhs", [True, False])
@pytest.mark.parametrize("F, H", [(2, 3), (1, 5)])  # RNNCell: the projected and the joined layout
def test_masked_fused_equals_masked_steps(float64, kind, with_dhs, F, H):
    """With padding anywhere (a full row, an empty row, a step padded in every row): the fused
    select per step equals Cell's loop, for every per-step state and every gradient."""
    cell, xs, state, dhs, dfinal = problem(kind, 7, 4, F, H, with_dhs=with_dhs)
    mask = scattered_mask(np.random.default_rng(5), 4, 7).T.copy()  # (time, batch)
    if dhs is not None:
        dhs[~mask] = 0.0  # RNN zeroes the output gradient at padded steps
    result = run(fused(cell), cell, xs, state, dhs, dfinal, mask)
    assert_same(result, run(steps(cell), cell, xs, state, dhs, dfinal, mask))
    for t in range(7):  # the carry: a padded sample's state is the one before
        for now, before in zip(result["states"][t + 1], result["states"][t]):
            np.testing.assert_array_equal(now[~mask[t]], before[~mask[t]])
    np.testing.assert_array_equal(result["dxs"][~mask], 0.0)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_all_real_mask_equals_no_mask(float64, kind):
    """A mask that is True everywhere gives the unmasked results (to rounding: other operations)."""
    cell, xs, state, dhs, dfinal = problem(kind, 5, 3, 2, 4)
    full = np.ones((5, 3), bool)
    assert_same(run(fused(cell), cell, xs, state, dhs, dfinal, full), run(fused(cell), cell, xs, state, dhs, dfinal),
                atol=0)


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("F, H", [(2, 3), (1, 5)])
def test_masked_without_history(float64, kind, F, H):
    """keep_history=False (no_grad) with a mask: the same outputs and final state as with history."""
    cell, xs, state, _, _ = problem(kind, 6, 4, F, H)
    mask = scattered_mask(np.random.default_rng(6), 4, 6).T.copy()
    hs, final, cache = cell.forward_sequence(xs, state, keep_history=False, mask=mask)
    hs_kept, final_kept, _ = cell.forward_sequence(xs, state, mask=mask)
    assert cache is None
    np.testing.assert_array_equal(hs, hs_kept)
    for a, b in zip(final, final_kept, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("F", [1, 3])  # F = 1: project's broadcast
def test_projection_in_chunks_of_time_equals_steps(float64, monkeypatch, kind, F):
    """``project`` makes one product per ``time_chunk`` steps (3, 3 and 1 here), with history
    too, so that a forward without history (RNN runs it in those chunks) gives the same numbers."""
    T, B, H = 7, 2, 4
    cell, xs, state, dhs, dfinal = problem(kind, T, B, F, H)
    monkeypatch.setattr(cell_module, "CHUNK_BYTES", 3 * B * max(F, *cell.state_size) * 8)
    assert cell_module.time_chunk(cell, B) == 3
    assert_same(run(fused(cell), cell, xs, state, dhs, dfinal), run(steps(cell), cell, xs, state, dhs, dfinal))


def test_rnn_cell_layout_follows_the_input_width():
    """RNNCell's kernels join a narrow input into the recurrent product, project a wide one."""
    from minidl.layers.fused.rnn import joins_input
    assert joins_input(mdl.RNNCell(1, 100)) and joins_input(mdl.RNNCell(65, 128))
    assert not joins_input(mdl.RNNCell(128, 128)) and not joins_input(mdl.RNNCell(2, 3))
    for F, H, width in [(1, 5, 5 + 1 + 1), (2, 3, 3)]:  # [h, x, 1] against h alone
        cell, xs, state, _, _ = problem("rnn_tanh", 3, 2, F, H)
        assert cell.forward_sequence(xs, state)[2]["hx"].shape == (4, 2, width)


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("masked", [False, True])
def test_long_sequences_equal_steps(float64, kind, masked, monkeypatch):
    """The LSTM's backward in blocks (here of 8 steps: 8, 8 and a short 3, BLOCK_BYTES made
    small) equals the step loop, with padding across the blocks' borders too."""
    from minidl.layers.fused import lstm
    monkeypatch.setattr(lstm, "BLOCK_BYTES", 8 * 4 * 4 * 3 * 8)  # 8 steps of (4H, B) = (16, 3) float64
    assert lstm.block_steps(19, 3, 4, np.float64) == 8
    T = 19
    cell, xs, state, dhs, dfinal = problem(kind, T, 3, 2, 4)
    mask = scattered_mask(np.random.default_rng(9), 3, T).T.copy() if masked else None
    if mask is not None:
        dhs[~mask] = 0.0
    assert_same(run(fused(cell), cell, xs, state, dhs, dfinal, mask), run(steps(cell), cell, xs, state, dhs, dfinal, mask))


def test_block_steps():
    from minidl.layers.fused.lstm import block_steps
    assert block_steps(50, 32, 128, np.float32) == 8  # the benchmark's LSTM
    assert block_steps(40, 1, 32, np.float32) == 40  # a small layer: one block
    assert block_steps(3, 512, 1024, np.float64) == 1
