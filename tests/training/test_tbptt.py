"""The trainer makes exactly the updates of TBPTT(k1, k2) as docs/tbptt.md describes them.

Compared, weight for weight, with the independent reference in tests/tbptt_reference.py.
"""

import numpy as np
import pytest

import minidl as mdl
from tests.tbptt_reference import RefModel, reference_tbptt

CELLS = {"rnn": mdl.RNNCell, "lstm": mdl.LSTMCell, "gru": mdl.GRUCell}


def build(spec, in_features, out_features, last_sequences):
    layers = []
    f = in_features
    for i, (kind, H) in enumerate(spec):
        seq = last_sequences or i < len(spec) - 1
        layers.append(mdl.RNN(CELLS[kind](f, H), return_sequences=seq))
        f = H
    layers.append(mdl.Dense(f, out_features))
    return mdl.Sequential(layers)


def run_both(spec, T, k1, k2, many_to_many, B=3, F=2, out=2, lr=0.3, seed=0, mask=None):
    mdl.set_seed(seed)
    model = build(spec, F, out, many_to_many)
    rng = np.random.default_rng(seed + 100)
    x = rng.standard_normal((B, T, F))
    y = rng.standard_normal((B, T, out) if many_to_many else (B, out))
    ref = RefModel(spec, {k: v.copy() for k, v in model.state_dict().items()}, many_to_many)
    expected = reference_tbptt(ref, x, y, k1, k2, lr, mask)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=lr), k1=k1, k2=k2)
    trainer.fit(x, y, epochs=1, batch_size=len(x), shuffle=False, verbose=0, mask=mask)
    got = model.state_dict()
    before = {k: v for k, v in build_params(spec, F, out, many_to_many, seed).items()}
    moved = max(np.abs(got[k] - before[k]).max() for k in got)
    assert moved > 1e-3, "the trainer made no update worth comparing"
    for name in got:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-8, err_msg=name)
    return model, got


def build_params(spec, F, out, many_to_many, seed):
    mdl.set_seed(seed)
    return build(spec, F, out, many_to_many).state_dict()


@pytest.fixture(autouse=True)
def float64():
    mdl.set_default_dtype(np.float64)
    yield
    mdl.set_default_dtype(np.float32)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("k1,k2", [(2, 2), (2, 4), (3, 5), (4, 4), (3, 3)])
def test_many_to_many_matches_reference(kind, k1, k2):
    # T = 7: every setting here ends with a shorter last chunk, or k2 > k1 windows that overlap
    run_both([(kind, 3)], T=7, k1=k1, k2=k2, many_to_many=True)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("k1,k2", [(None, None), (None, 3), (4, 3 + 4)])
def test_many_to_one_matches_reference(kind, k1, k2):
    run_both([(kind, 3)], T=6, k1=k1, k2=k2, many_to_many=False)


@pytest.mark.parametrize("k1,k2", [(2, 3), (3, 3)])
def test_stacked_mixed_cells_match_reference(k1, k2):
    run_both([("lstm", 3), ("gru", 2)], T=7, k1=k1, k2=k2, many_to_many=True)
    run_both([("gru", 2), ("rnn", 3)], T=6, k1=None, k2=k2, many_to_many=False)


def test_k2_at_least_T_equals_full_bptt():
    _, full = run_both([("lstm", 3)], T=6, k1=6, k2=6, many_to_many=True)
    _, long = run_both([("lstm", 3)], T=6, k1=6, k2=50, many_to_many=True)
    for k in full:
        np.testing.assert_array_equal(full[k], long[k])
    _, m2o_full = run_both([("gru", 3)], T=6, k1=None, k2=None, many_to_many=False)
    _, m2o_long = run_both([("gru", 3)], T=6, k1=None, k2=9, many_to_many=False)
    for k in m2o_full:
        np.testing.assert_array_equal(m2o_full[k], m2o_long[k])


def test_k1_plays_no_part_in_many_to_one():
    _, a = run_both([("rnn", 3)], T=6, k1=None, k2=4, many_to_many=False)
    _, b = run_both([("rnn", 3)], T=6, k1=2, k2=4, many_to_many=False)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


class StepOnlyGRU(mdl.GRUCell):
    """A GRU that runs through the generic step interface of Cell (no fast path), as a user's cell would."""

    def step(self, x, state):
        _, new_state, cache = mdl.GRUCell.forward_sequence(self, x[None], state)
        return new_state, cache

    def step_backward(self, dstate, cache):
        dxs, dstate0 = mdl.GRUCell.backward_sequence(self, None, dstate, cache)
        return dxs[0], dstate0

    forward_sequence = mdl.Cell.forward_sequence
    backward_sequence = mdl.Cell.backward_sequence
    state_at = mdl.Cell.state_at


@pytest.mark.parametrize("k1,k2,seq", [(2, 4, True), (3, 3, True), (None, 4, False)])
def test_a_step_only_cell_trains_like_the_builtin(k1, k2, seq):
    """A cell with only step/step_backward gets exactly the updates of the built-in fast path."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 7, 2))
    y = rng.standard_normal((4, 7, 1) if seq else (4, 1))
    results = []
    for cell_cls in (mdl.GRUCell, StepOnlyGRU):
        mdl.set_seed(3)
        model = mdl.Sequential([mdl.RNN(cell_cls(2, 3), return_sequences=True),
                                mdl.RNN(mdl.LSTMCell(3, 3), return_sequences=seq), mdl.Dense(3, 1)])
        trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.2), k1=k1, k2=k2, seed=0)
        trainer.fit(x, y, epochs=2, batch_size=3, verbose=0)
        results.append(model.state_dict())
    for name in results[0]:
        np.testing.assert_allclose(results[1][name], results[0][name], rtol=0, atol=1e-12, err_msg=name)


# ---- masks: padding anywhere, chunks whose targets are all masked make no update ----------------
MASK = np.array([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0], [0, 1, 1, 0, 1, 0, 0]], bool)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("k1,k2", [(2, 2), (2, 3), (3, 5), (None, None)])
def test_masked_many_to_many_matches_reference(kind, k1, k2):
    run_both([(kind, 3)], 7, k1, k2, True, mask=MASK)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("k2", [None, 3, 5])
def test_masked_many_to_one_matches_reference(kind, k2):
    run_both([(kind, 3)], 7, None, k2, False, mask=MASK)


def test_masked_stack_and_an_all_masked_chunk_match_reference():
    mask = MASK.copy()
    mask[:, 4:6] = False  # the chunk [4, 6) of k1 = 2 has no real target: no update there
    run_both([("gru", 3), ("lstm", 2)], 7, 2, 3, True, mask=mask)
