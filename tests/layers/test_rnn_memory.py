"""RNN without history (``no_grad``, ``predict``, the trainer's history-free prefix) runs in
chunks of ``time_chunk(cell, batch)`` steps: bit-exactly the numbers of the forward with history
(every cell, the step loop, float64 and float32, masks, initial and carried states, both
``return_sequences``), chunk by chunk, and in working memory that does not grow with the
sequence (``tracemalloc``, which sees numpy's buffers). The rest of RNN: test_rnn.py."""

import tracemalloc

import numpy as np
import pytest

import minidl as mdl
from minidl.layers import cell as cell_module
from minidl.layers.cell import time_chunk
from tests.helpers import CELL_KINDS, make_cell, random_state, scattered_mask, with_step_loop

KINDS = CELL_KINDS + ["lstm_steps"]  # the last: LSTMCell run through Cell's loop over step


def _cell(kind, F, H, dtype):
    cell = make_cell(kind.removesuffix("_steps"), F, H).astype(dtype)
    return with_step_loop(cell) if kind.endswith("_steps") else cell


def _chunks_of(monkeypatch, cell, batch, steps):
    """Make ``time_chunk(cell, batch)`` give ``steps`` (a budget of exactly that many steps)."""
    width = max(cell.input_size, *cell.state_size)
    monkeypatch.setattr(cell_module, "CHUNK_BYTES", steps * batch * width * np.dtype(cell.dtype).itemsize)
    assert time_chunk(cell, batch) == steps


def _run(rnn, x, mask, initial, grad):
    """``(output, final_state)`` of one forward, with history or under ``no_grad``."""
    if grad:
        return rnn.forward(x, mask=mask, initial_state=initial), rnn.final_state
    with mdl.no_grad():
        return rnn.forward(x, mask=mask, initial_state=initial), rnn.final_state


def _assert_identical(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b, strict=True)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True], ids=["plain", "mask+initial_state"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", KINDS)
def test_no_grad_in_chunks_is_bit_exact_with_the_forward_with_history(monkeypatch, kind, dtype, masked,
                                                                      return_sequences):
    mdl.set_seed(0)
    rng = np.random.default_rng(1)
    B, T, F, H = 3, 10, 2, 4
    cell = _cell(kind, F, H, dtype)
    _chunks_of(monkeypatch, cell, B, 3)  # chunks of 3, 3, 3 and 1 steps
    rnn = mdl.RNN(cell, return_sequences=return_sequences)
    x = rng.standard_normal((B, T, F)).astype(dtype)
    mask = scattered_mask(rng, B, T) if masked else None
    initial = tuple(s.astype(dtype) for s in random_state(cell, B, rng)) if masked else None
    y, final = _run(rnn, x, mask, initial, grad=True)
    y_ng, final_ng = _run(rnn, x, mask, initial, grad=False)
    _assert_identical(y_ng, y)
    for s_ng, s in zip(final_ng, final, strict=True):
        _assert_identical(s_ng, s)


@pytest.mark.parametrize("kind", ["lstm", "gru", "lstm_steps"])
def test_one_sample_whose_last_chunk_is_one_row_and_a_stateful_carry(monkeypatch, kind):
    """Batch 1: the last chunk projects a single row (BLAS then takes another kernel); a
    stateful RNN carries the chunked final state into the next call."""
    mdl.set_seed(2)
    rng = np.random.default_rng(2)
    cell = _cell(kind, 3, 5, np.float64)
    _chunks_of(monkeypatch, cell, 1, 4)
    x1, x2 = rng.standard_normal((1, 9, 3)), rng.standard_normal((1, 6, 3))
    outputs = []
    for grad in (True, False):
        rnn = mdl.RNN(cell, return_sequences=True, stateful=True)
        outputs.append([_run(rnn, x, None, None, grad)[0] for x in (x1, x2)] + list(rnn.get_state()))
    for got, expected in zip(outputs[1], outputs[0], strict=True):
        _assert_identical(got, expected)


def test_the_default_chunk_is_bit_exact_past_its_end():
    """With the default budget: a sequence a few steps longer than one chunk."""
    mdl.set_seed(3)
    cell = mdl.LSTMCell(64, 64).astype(np.float64)
    steps = time_chunk(cell, 1)
    assert steps == cell_module.CHUNK_BYTES // (64 * 8) == 512
    rnn = mdl.RNN(cell, return_sequences=True)
    x = np.random.default_rng(3).standard_normal((1, steps + 5, 64))
    _assert_identical(_run(rnn, x, None, None, grad=False)[0], _run(rnn, x, None, None, grad=True)[0])


def test_without_history_the_cell_sees_chunks_and_with_history_the_whole_sequence(monkeypatch):
    mdl.set_seed(4)
    cell = mdl.GRUCell(2, 3)
    _chunks_of(monkeypatch, cell, 2, 3)
    calls = []
    fused = cell.forward_sequence

    def spy(xs, state, keep_history=True, mask=None):
        calls.append((xs.shape[0], keep_history, mask is not None))
        return fused(xs, state, keep_history, mask=mask)

    cell.forward_sequence = spy
    rnn = mdl.RNN(cell)
    x = np.random.default_rng(4).standard_normal((2, 10, 2))
    with mdl.no_grad():
        rnn.forward(x, mask=np.ones((2, 10), bool))
    assert calls == [(3, False, True), (3, False, True), (3, False, True), (1, False, True)]
    calls.clear()
    rnn.forward(x)
    assert calls == [(10, True, False)]
    assert rnn.state_at(10) is not None and rnn.backward(np.ones((2, 3))).shape == x.shape


def test_predict_is_bit_exact_with_forward(monkeypatch):
    mdl.set_seed(5)
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(2, 4), return_sequences=True), mdl.RNN(mdl.GRUCell(4, 3)),
                            mdl.Dense(3, 1)]).astype(np.float64)
    _chunks_of(monkeypatch, model.layers[0].cell, 5, 4)
    x = np.random.default_rng(5).standard_normal((5, 13, 2))
    _assert_identical(model.predict(x), model.forward(x))


# ---- memory ----------------------------------------------------------------------------------
def _peak_bytes(run, warm_up=False):
    """Peak traced memory of ``run()`` beyond what was allocated before it. ``warm_up``: a first,
    untraced run fills Python's free lists (of tuples, say), which would otherwise count as new
    (some 100 KiB: noise when the figures are small)."""
    if warm_up:
        run()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        run()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _lstm_model(F, H):
    mdl.set_seed(6)
    return mdl.Sequential([mdl.RNN(mdl.LSTMCell(F, H)), mdl.Dense(H, 1)]).astype(np.float64)


def _long_input(T, F=4, B=2):
    return np.random.default_rng(T).standard_normal((B, T, F))


# Each workload: (the run, the bytes of input copies it makes: outside what RNN must bound).
def _no_grad_forward(model, T):
    x = _long_input(T)

    def run():
        with mdl.no_grad():
            model.forward(x)
    return run, 0


def _predict(model, T):
    x = _long_input(T)
    return lambda: model.predict(x), 0


def _history_free_prefix(model, T):
    """One many-to-one ``fit`` epoch with ``k2=20``: all but 20 steps run without history."""
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=1e-3), k2=20, seed=0)
    y = np.zeros((2, 1))
    trainer.fit(_long_input(40), y, epochs=1, verbose=0)  # the optimizer's state exists before measuring
    x = _long_input(T)
    return lambda: trainer.fit(x, y, epochs=1, verbose=0), x.nbytes  # fit copies the (shuffled) mini-batch


@pytest.mark.slow
@pytest.mark.parametrize("workload", [_no_grad_forward, _predict, _history_free_prefix])
def test_many_to_one_memory_does_not_grow_with_the_sequence(workload):
    """LSTM 64, batch 2, float64: 256 steps a chunk, some 2 MiB of working memory. Projecting
    all steps at once took 12 MiB at 2,000 steps and 119 MiB at 20,000."""
    model = _lstm_model(4, 64)
    assert time_chunk(model.layers[0].cell, 2) == 256
    short, long = (_peak_bytes(run) - copied for run, copied in (workload(model, T) for T in (2_000, 20_000)))
    assert long <= 1.5 * short, (short, long)
    assert long < 4 * 2**20, long


@pytest.mark.parametrize("kind", KINDS)
def test_memory_does_not_grow_with_masks_initial_states_and_every_output(monkeypatch, kind):
    """Chunks of 16 steps; the extra memory is the peak less the output itself (the whole
    sequence at once needed ~0.5 MiB more at 2,000 steps than at 200)."""
    mdl.set_seed(7)
    cell = _cell(kind, 3, 8, np.float64)
    _chunks_of(monkeypatch, cell, 2, 16)
    rnn = mdl.RNN(cell, return_sequences=True)
    rng = np.random.default_rng(7)
    extra = []
    for T in (200, 2_000):
        x, mask = rng.standard_normal((2, T, 3)), scattered_mask(rng, 2, T)
        initial = random_state(cell, 2, rng)
        with mdl.no_grad():
            peak = _peak_bytes(lambda: rnn.forward(x, mask=mask, initial_state=initial), warm_up=True)
        extra.append(peak - 2 * T * 8 * 8)
    assert extra[1] <= 1.5 * extra[0] + 16 * 2**10, extra
