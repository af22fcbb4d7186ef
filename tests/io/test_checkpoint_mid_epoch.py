"""Checkpoints saved inside an epoch: between batches they store the place in the epoch and its
permutation, and the resume is exact; inside a batch (``on_update_end``) they are refused."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import adam_trainer, random_sequences


class SaveAt(mdl.Callback):
    """Save a checkpoint at ``hook`` of batch ``batch`` in epoch ``epoch``."""

    def __init__(self, path, epoch, batch, hook="on_batch_end"):
        self.path, self.at, self.hook = path, (epoch, batch), hook
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_begin(self, batch, logs=None):
        if self.hook == "on_batch_begin" and (self.epoch, batch) == self.at:
            self.trainer.save_checkpoint(self.path)

    def on_batch_end(self, batch, logs=None):
        if self.hook == "on_batch_end" and (self.epoch, batch) == self.at:
            self.trainer.save_checkpoint(self.path)


def build():
    return mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 4), return_sequences=True), mdl.Dropout(0.2), mdl.Dense(4, 1)])


def fresh(seed, k1=2, k2=3):
    mdl.set_seed(seed)
    model = build()
    return adam_trainer(model, lr=0.02, clipper=mdl.ClipByGlobalNorm(1.0), k1=k1, k2=k2, seed=seed)


DATA = random_sequences(n=11, T=6, seq=True)
FIT = {"batch_size": 3, "verbose": 0, "metrics": ("mae",)}


@pytest.mark.parametrize("epoch, batch, hook, k1, k2", [
    (1, 1, "on_batch_end", 2, 3), (0, 0, "on_batch_end", 2, 3), (2, 3, "on_batch_end", 2, 3),
    (1, 2, "on_batch_begin", 2, 3), (1, 1, "on_batch_end", None, None)])
def test_a_checkpoint_saved_between_batches_resumes_exactly(tmp_path, epoch, batch, hook, k1, k2):
    x, y = DATA
    straight = fresh(4, k1, k2)
    expected = straight.fit(x, y, epochs=4, **FIT).history
    path = tmp_path / "mid.npz"
    fresh(4, k1, k2).fit(x, y, epochs=4, callbacks=[SaveAt(path, epoch, batch, hook)], **FIT)
    resumed = fresh(77, k1, k2)
    resumed.load_checkpoint(path)
    assert resumed.epoch == epoch
    got = resumed.fit(x, y, epochs=4 - epoch, **FIT).history
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(q.data, p.data)
    assert resumed.updates == straight.updates and resumed.epoch == 4
    # the resumed epoch's logs are the whole epoch's: its first batches' sums came with the checkpoint
    assert got["loss"] == expected["loss"][epoch:] and got["mae"] == expected["mae"][epoch:]


def test_a_mid_epoch_checkpoint_saved_again_before_fit_keeps_its_place(tmp_path):
    x, y = DATA
    straight = fresh(4)
    straight.fit(x, y, epochs=2, **FIT)
    path = tmp_path / "mid.npz"
    fresh(4).fit(x, y, epochs=2, callbacks=[SaveAt(path, 1, 0)], **FIT)
    middle = fresh(5)
    middle.load_checkpoint(path)
    middle.save_checkpoint(tmp_path / "again.npz")
    resumed = fresh(6)
    resumed.load_checkpoint(tmp_path / "again.npz")
    resumed.fit(x, y, epochs=1, **FIT)
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(q.data, p.data)


def test_a_mid_epoch_resume_with_other_fit_arguments_is_refused(tmp_path):
    x, y = DATA
    path = tmp_path / "mid.npz"
    fresh(4).fit(x, y, epochs=2, callbacks=[SaveAt(path, 1, 1)], **FIT)
    resumed = fresh(8)
    resumed.load_checkpoint(path)
    weights = resumed.model.state_dict()
    for change in ({"batch_size": 4}, {"shuffle": False}, {"metrics": ()}):
        with pytest.raises(ValueError, match=r"^fit: the checkpoint was saved after batch 2 of epoch 1 of a fit over "
                                             r"11 sequences with batch_size=3, shuffle=True, metrics \['mae'\]; "
                                             r"this fit has 11, .*Resume with the same data and arguments$"):
            resumed.fit(x, y, epochs=1, **{**FIT, **change})
        assert all(np.array_equal(v, resumed.model.state_dict()[k]) for k, v in weights.items())
    with pytest.raises(ValueError, match=r"over 11 sequences .* this fit has 10,"):
        resumed.fit(x[:10], y[:10], epochs=1, **FIT)
    resumed.fit(x, y, epochs=1, **FIT)  # the right arguments still resume
    assert resumed.epoch == 2


class SaveOnUpdate(mdl.Callback):
    def __init__(self, path):
        self.path, self.errors = path, []

    def on_update_end(self, update, logs=None):
        try:
            self.trainer.save_checkpoint(self.path)
        except ValueError as err:
            self.errors.append(str(err))


@pytest.mark.parametrize("k1, k2", [(2, 3), (None, None)])
def test_saving_inside_a_batch_is_refused(tmp_path, k1, k2):
    """From on_update_end the batch's remaining chunks (and, with TBPTT, the carried states) are
    not stored: refused, with where to save instead. Nothing is written."""
    x, y = DATA
    cb = SaveOnUpdate(tmp_path / "u.npz")
    trainer = fresh(4, k1, k2)
    trainer.fit(x, y, epochs=1, callbacks=[cb], **FIT)
    assert len(cb.errors) == trainer.updates > 0
    assert cb.errors[0] == (
        f"save_checkpoint({str(tmp_path / 'u.npz')!r}): called inside batch 0 of epoch 0 (from on_update_end, or "
        "after a fit that stopped inside a batch); a checkpoint there could not resume exactly. "
        "Save from on_batch_end or on_epoch_end")
    assert not (tmp_path / "u.npz").exists()
    trainer.save_checkpoint(tmp_path / "u.npz")  # after the epoch: fine


def test_after_a_fit_stopped_inside_a_batch_saving_is_refused_until_the_next_fit(tmp_path):
    x, y = DATA

    class Stop(mdl.Callback):
        def on_update_end(self, update, logs=None):
            if update == 4:  # the first chunk of batch 1
                raise KeyboardInterrupt

    trainer = fresh(4)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(x, y, epochs=1, callbacks=[Stop()], **FIT)
    with pytest.raises(ValueError, match=r"called inside batch 1 of epoch 0"):
        trainer.save_checkpoint(tmp_path / "x.npz")
    trainer.fit(x, y, epochs=1, **FIT)  # restarting fit re-runs the epoch (not a resume), as before
    trainer.save_checkpoint(tmp_path / "x.npz")
    assert trainer.epoch == 1


def test_a_checkpoint_saved_during_validation_resumes_after_the_epoch(tmp_path):
    """Interrupted while validating (all batches done, the epoch not yet counted), a checkpoint
    resumes with validation: the epoch's updates are not made twice."""
    x, y = DATA
    straight = fresh(4)
    expected = straight.fit(x, y, epochs=3, validation_data=(x, y), **FIT).history
    first = fresh(4)
    calls = []
    validate = first.evaluate

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # epoch 1's validation
            first.save_checkpoint(tmp_path / "val.npz")
            raise KeyboardInterrupt
        return validate(*args, **kwargs)

    first.evaluate = interrupted
    with pytest.raises(KeyboardInterrupt):
        first.fit(x, y, epochs=3, validation_data=(x, y), **FIT)
    resumed = fresh(9)
    resumed.load_checkpoint(tmp_path / "val.npz")
    assert resumed.epoch == 1
    got = resumed.fit(x, y, epochs=2, validation_data=(x, y), **FIT).history
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(q.data, p.data)
    assert got["val_loss"] == expected["val_loss"][1:] and got["loss"] == expected["loss"][1:]


def test_the_permutation_of_many_sequences_fits_the_budget_of_a_small_model(tmp_path, monkeypatch):
    """The permutation is 8 bytes per sequence, allowed by the header's n, not by the model's
    size: a tiny model trained on many sequences resumes; a longer order than n is refused."""
    from minidl.io import tree

    monkeypatch.setattr(tree, "GENERATOR_BYTES", 4096)          # a budget far below the permutation
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3000, 2, 1)), rng.normal(size=(3000, 1))

    def small():
        mdl.set_seed(0)
        return adam_trainer(mdl.Sequential([mdl.RNN(mdl.RNNCell(1, 1)), mdl.Dense(1, 1)]), lr=0.01, seed=0)

    path = tmp_path / "mid.npz"
    small().fit(x, y, epochs=1, batch_size=1000, verbose=0, callbacks=[SaveAt(path, 0, 1)])
    resumed = small()
    resumed.load_checkpoint(path)
    resumed.fit(x, y, epochs=1, batch_size=1000, verbose=0)
    straight = small()
    straight.fit(x, y, epochs=1, batch_size=1000, verbose=0)
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(q.data, p.data)
    assert tree._permutation_length({"__dict__": [["n", 3000]]}) == 3000
    assert tree._permutation_length({"__dict__": [["n", True]]}) == 0
    assert tree._permutation_length({"__dict__": [["n", 2**40]]}) == 0
    assert tree._permutation_length(["n", 5]) == 0
