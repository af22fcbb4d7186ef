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


# ---- every generator training draws from: Dropout's, a layer's own ----------------------------------------
class Noise(mdl.Layer):
    """A user's layer with its own generator: adds noise drawn from ``self.rng`` in training mode."""

    def __init__(self, scale=0.1, seed=0):
        super().__init__()
        self.scale, self.seed = scale, seed
        self.rng = np.random.default_rng(seed)

    def get_config(self):
        return {"scale": self.scale, "seed": self.seed}

    def forward(self, x):
        return x + self.scale * self.rng.standard_normal(x.shape).astype(x.dtype) if self.training else x

    def backward(self, grad_out):
        return grad_out


def dropout_model(seq, head=mdl.Tanh):
    return mdl.Sequential([mdl.RNN(mdl.LSTMCell(2, 4), return_sequences=seq), mdl.Dropout(0.3), Noise(),
                           mdl.Dense(4, 1), head()])


def resumed_run(tmp_path, build, x, y, total, first, k1=None, k2=None, **fit):
    """(straight, resumed) trainers: ``total`` epochs in one go, and ``first`` epochs, save,
    load into a fresh trainer built after another seed, ``total - first`` more."""
    fit = {"batch_size": 4, "verbose": 0, **fit}

    def fresh(seed):
        mdl.set_seed(seed)
        model = build()
        return adam_trainer(model, lr=0.02, clipper=mdl.ClipByGlobalNorm(1.0), k1=k1, k2=k2, seed=seed)

    straight = fresh(7)
    straight.fit(x, y, epochs=total, **fit)
    first_run = fresh(7)
    first_run.fit(x, y, epochs=first, **fit)
    first_run.save_checkpoint(tmp_path / "ckpt.npz")
    resumed = fresh(99)  # other weights, generators, Noise seed state: the checkpoint replaces them all
    resumed.load_checkpoint(tmp_path / "ckpt.npz")
    resumed.fit(x, y, epochs=total - first, **fit)
    return straight, resumed


def assert_same_weights(a, b):
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert p.data.dtype == q.data.dtype
        np.testing.assert_array_equal(q.data, p.data, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seq, k1, k2", [(False, None, 3), (True, 2, 3), (True, None, None)])
def test_resume_with_dropout_and_a_layer_generator_is_bit_identical(tmp_path, dtype, seq, k1, k2):
    mdl.set_default_dtype(dtype)
    x, y = random_sequences(n=9, T=6, seq=seq)
    straight, resumed = resumed_run(tmp_path, lambda: dropout_model(seq), x, y, total=4, first=2, k1=k1, k2=k2)
    assert straight.model.dtype == dtype
    assert_same_weights(straight, resumed)
    assert resumed.epoch == 4 and resumed.updates == straight.updates
    # the generators too: the next draws agree
    assert straight.rng.random() == resumed.rng.random()
    assert straight.model.layers[2].rng.random() == resumed.model.layers[2].rng.random()


def test_without_the_global_generator_dropout_would_resume_elsewhere(tmp_path):
    """The control: the masks come from minidl's global generator, which set_seed(99) moved;
    restoring it is what makes the resume exact."""
    x, y = random_sequences(n=9, T=6)
    build = lambda: mdl.Sequential([mdl.RNN(mdl.LSTMCell(2, 4)), mdl.Dropout(0.3), mdl.Dense(4, 1)])
    straight, resumed = resumed_run(tmp_path, build, x, y, total=3, first=1)
    assert_same_weights(straight, resumed)
    first = adam_trainer(build(), lr=0.02, clipper=mdl.ClipByGlobalNorm(1.0), seed=7)
    first.load_checkpoint(tmp_path / "ckpt.npz")
    mdl.set_seed(12345)  # another global generator state than the checkpoint's
    first.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert not np.array_equal(first.model.layers[-1].kernel.data, straight.model.layers[-1].kernel.data)


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
