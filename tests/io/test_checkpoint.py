"""Trainer checkpoints (TBPTTTrainer.save_checkpoint / load_checkpoint, minidl/io/checkpoint.py)."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import adam_trainer, random_sequences, small_rnn_model
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, bad_trainer


@pytest.mark.parametrize("seq", [False, True])
def test_checkpoint_resume_is_bit_identical(tmp_path, seq):
    x, y = random_sequences(n=9, T=6, seq=seq)
    clip = mdl.ClipByGlobalNorm(1.0)

    def fresh():
        mdl.set_seed(7)
        model = small_rnn_model(seq=seq)
        return model, adam_trainer(model, clipper=clip, k1=2, k2=3, seed=11)

    model_a, trainer_a = fresh()
    trainer_a.fit(x, y, epochs=5, batch_size=4, verbose=0)

    model_b, trainer_b = fresh()
    trainer_b.fit(x, y, epochs=2, batch_size=4, verbose=0)
    path = tmp_path / "ckpt.npz"
    trainer_b.save_checkpoint(path)
    trainer_b.fit(x, y, epochs=1, batch_size=4, verbose=0)  # diverge, then restore

    mdl.set_seed(999)  # a different fresh start must not matter
    model_c = small_rnn_model(seq=seq)
    trainer_c = adam_trainer(model_c, clipper=clip, k1=2, k2=3, seed=123)
    trainer_c.load_checkpoint(path)
    assert trainer_c.epoch == 2
    assert trainer_c.history.epoch == [0, 1] and len(trainer_c.history.history["loss"]) == 2  # the fit before saving
    trainer_c.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert trainer_c.epoch == 5
    for k, v in model_a.state_dict().items():
        np.testing.assert_array_equal(model_c.state_dict()[k], v, err_msg=k)


def test_checkpoint_that_does_not_fit_is_a_clear_error(tmp_path):
    x, y = random_sequences()
    mdl.set_seed(0)
    model = small_rnn_model()
    trainer = adam_trainer(model)
    trainer.fit(x, y, verbose=0)
    path = tmp_path / "c.npz"
    trainer.save_checkpoint(path)
    other = small_rnn_model(H=5)
    with pytest.raises(ValueError, match="c.npz"):
        adam_trainer(other).load_checkpoint(path)
    with pytest.raises(ValueError, match="k1"):
        adam_trainer(small_rnn_model(), k1=2).load_checkpoint(path)


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("save_checkpoint_not_a_path", lambda: bad_trainer().save_checkpoint(3),
         TypeError, r"^write_archive: path must be a str or os\.PathLike, got int"),
    ("load_checkpoint_none", lambda: bad_trainer().load_checkpoint(None),
         TypeError, r"^cannot read a 'minidl-checkpoint' file: path must be a str or os\.PathLike, got NoneType"),
    ("save_checkpoint_missing_folder", lambda: bad_trainer().save_checkpoint("/nonexistent-minidl/c.npz"),
         FileNotFoundError, r"No such file or directory \(writing '/nonexistent-minidl/c\.npz'\)"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
