"""Fuzzing the two file loaders, ``mdl.load_model`` and ``TBPTTTrainer.load_checkpoint``.

Hundreds of damaged files (deterministic seeds) made from a good model file and a good
checkpoint: truncations, byte flips, corrupted zip members, edited JSON headers,
replaced and extra npz members, empty files, directories. Each load must either

* raise ``ValueError`` (or ``OSError`` for a path that cannot be opened) whose message
  names the path -- any other exception type (KeyError, IndexError, BadZipFile,
  UnicodeDecodeError, json errors, EOFError, MemoryError, RecursionError ...) fails, or
* succeed with a valid result (the mutation hit padding or weight values): a model of
  float32/float64 parameters that predicts, a trainer that saves a checkpoint again.

A failed checkpoint load must leave the trainer exactly as it was.
"""

import io
import json
import os
import re
import traceback

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import FIRED as _TRAP_FIRED
from tests.helpers import Trap as _Trap
from tests.io.mutations import all_families, checkpoint_edits, members_of, model_class_edits, npy_bytes, zipped

pytestmark = pytest.mark.slow

X = np.random.default_rng(0).standard_normal((5, 4, 2)).astype(np.float32)


Y = np.random.default_rng(1).standard_normal((5, 1)).astype(np.float32)


COUNTS = {}  # family -> number of files, filled as the tests run


# ---- the good files ----------------------------------------------------------------------------


def _model():
    mdl.set_seed(0)
    return mdl.Sequential(
        [mdl.RNN(mdl.LSTMCell(2, 3), return_sequences=True), mdl.RNN(mdl.GRUCell(3, 2)), mdl.Dense(2, 1)]
    )


def _trainer(model=None):
    model = _model() if model is None else model
    return mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=0.01), k2=3, seed=3)


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    model_path, ckpt_path = folder / "model.npz", folder / "ckpt.npz"
    mdl.set_default_dtype(np.float32)
    _model().save(model_path)
    trainer = _trainer()
    trainer.fit(X, Y, epochs=2, batch_size=2, validation_data=(X, Y), verbose=0)
    trainer.save_checkpoint(ckpt_path)
    return {"model": model_path.read_bytes(), "checkpoint": ckpt_path.read_bytes()}


# ---- checking one load -------------------------------------------------------------------------------
def _names_path(err, path):
    return os.fspath(path) in str(err)


def _check_model(path):
    """None when load_model behaved (a clear error or a valid model), else what went wrong."""
    try:
        model = mdl.load_model(path)
    except (ValueError, OSError) as err:
        if not _names_path(err, path):
            return f"{type(err).__name__} without the path: {err}"
        if isinstance(err, OSError) and not isinstance(err, (FileNotFoundError, IsADirectoryError, PermissionError)):
            return f"unexpected OSError: {err!r}"
        return None
    except Exception as err:  # noqa: BLE001 - the point of the test
        return f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-3)}"
    # a load that succeeded must give a usable model
    try:
        assert isinstance(model, mdl.Sequential)
        for name, p in model.named_parameters():
            assert p.data.dtype in (np.float32, np.float64) and p.grad.shape == p.data.shape, name
        first = model.layers[0]
        if isinstance(first, mdl.RNN):
            x = np.ones((2, 3, first.cell.input_size), np.float32)
        else:
            x = np.ones((2, first.in_features), np.float32)
        out = model.predict(x)
        assert out.shape[0] == 2
    except Exception as err:  # noqa: BLE001
        return f"loaded, but the model is not usable: {type(err).__name__}: {err}"
    return None


def _trainer_snapshot(trainer):
    opt = trainer.optimizer.state_dict()
    return (
        trainer.model.state_dict(),
        json.dumps({**opt, "state": [{k: np.asarray(v).tolist() for k, v in s.items()} for s in opt["state"]]}),
        trainer.epoch,
        json.dumps(trainer.rng.bit_generator.state),
        (list(trainer.history.epoch), json.dumps(trainer.history.history)),
        trainer.optimizer.lr,
    )


def _same_snapshot(a, b):
    return all(np.array_equal(a[0][k], b[0][k]) for k in a[0]) and a[1:] == b[1:]


def _check_checkpoint(path, tmp_path):
    trainer = _trainer()
    before = _trainer_snapshot(trainer)
    try:
        trainer.load_checkpoint(path)
    except (ValueError, OSError) as err:
        if not _names_path(err, path):
            return f"{type(err).__name__} without the path: {err}"
        if not _same_snapshot(before, _trainer_snapshot(trainer)):
            return f"the failed load ({err}) changed the trainer"
        return None
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-3)}"
    try:
        assert isinstance(trainer.epoch, int) and trainer.epoch >= 0
        assert all(isinstance(e, int) for e in trainer.history.epoch)
        assert all(  # None: an epoch that lacks a metric, as History documents
            v is None or isinstance(v, float) for values in trainer.history.history.values() for v in values
        ), trainer.history.history
        again = tmp_path / "again.npz"
        trainer.save_checkpoint(again)
        other = _trainer()
        other.load_checkpoint(again)
        assert _same_snapshot(_trainer_snapshot(trainer), _trainer_snapshot(other))
        trainer.rng.permutation(4)
    except Exception as err:  # noqa: BLE001
        return f"loaded, but the trainer is not usable: {type(err).__name__}: {err}"
    return None


def _run(cases, check, tmp_path, family):
    failures = []
    path = tmp_path / "fuzzed.npz"
    for label, blob in cases:
        path.write_bytes(blob)
        problem = check(path)
        if problem is not None:
            failures.append(f"[{label}] {problem}")
    COUNTS[family] = len(cases)
    assert not failures, f"{len(failures)} of {len(cases)} files misbehaved:\n" + "\n".join(failures[:15])


# ---- the tests -------------------------------------------------------------------------------------------
def test_fuzzed_model_files(good_files, tmp_path):
    data = good_files["model"]
    cases = all_families(data, 100, ["0.cell.kernel", "2.bias"]) + model_class_edits(data)
    _run(cases, _check_model, tmp_path, "model")


def test_fuzzed_checkpoints(good_files, tmp_path):
    data = good_files["checkpoint"]
    cases = all_families(data, 200, ["model/0.cell.recurrent_kernel", "optimizer/state/1/exp_avg"])
    cases += checkpoint_edits(data)
    _run(cases, lambda p: _check_checkpoint(p, tmp_path), tmp_path, "checkpoint")


def test_paths_that_are_not_files(tmp_path):
    folder = tmp_path / "a_directory.npz"
    folder.mkdir()
    missing = tmp_path / "missing.npz"
    for path in (folder, missing, str(missing)):
        assert _check_model(path) is None
        assert _check_checkpoint(path, tmp_path) is None
    with pytest.raises(IsADirectoryError, match="a_directory"):
        mdl.load_model(folder)
    with pytest.raises(FileNotFoundError, match="missing"):
        _trainer().load_checkpoint(missing)
    COUNTS["paths"] = 6


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(good_files, tmp_path):
    path = tmp_path / "locked.npz"
    path.write_bytes(good_files["model"])
    path.chmod(0)
    try:
        with pytest.raises(PermissionError, match="locked"):
            mdl.load_model(path)
    finally:
        path.chmod(0o600)


def test_the_good_files_load(good_files, tmp_path):
    """The control: the unmutated files load and pass the same checks."""
    path = tmp_path / "good.npz"
    path.write_bytes(good_files["model"])
    assert _check_model(path) is None
    path.write_bytes(good_files["checkpoint"])
    assert _check_checkpoint(path, tmp_path) is None
    trainer = _trainer()
    trainer.load_checkpoint(path)
    assert trainer.epoch == 2 and trainer.history.epoch == [0, 1]


@pytest.mark.parametrize("member", ["model/0.cell.kernel", "optimizer/state/0/exp_avg", "__config__", "evil"])
def test_pickled_member_in_a_checkpoint_is_refused_and_never_run(good_files, tmp_path, member):
    payload = npy_bytes(np.array([_Trap()], dtype=object))
    _TRAP_FIRED.clear()
    assert np.load(io.BytesIO(payload), allow_pickle=True)[0] == "boom" and _TRAP_FIRED == [True]  # it is live
    _TRAP_FIRED.clear()
    path = tmp_path / "pickled.npz"
    path.write_bytes(zipped({**members_of(good_files["checkpoint"]), member + ".npy": payload}))
    trainer = _trainer()
    before = _trainer_snapshot(trainer)
    # a member the trees do not name is refused before it is even inflated
    refusal = "unexpected members {'evil.npy'" if member == "evil" else f"entry '{member}' holds pickled objects; refused"
    with pytest.raises(ValueError, match=rf"cannot read '.*pickled\.npz': {re.escape(refusal)}"):
        trainer.load_checkpoint(path)
    assert _TRAP_FIRED == []
    assert _same_snapshot(before, _trainer_snapshot(trainer))


def test_enough_files_were_fuzzed():
    """Runs last in this module: at least 500 damaged files went through the loaders."""
    if {"model", "checkpoint"} - set(COUNTS):
        pytest.skip("the fuzz tests did not run in this session")
    total = sum(COUNTS.values())
    print(f"fuzzed files: {COUNTS} total {total}")
    assert total >= 500
