"""Checkpoints that cannot resume exactly are refused (minidl/io/checkpoint.py): another
architecture, dtype, optimizer, clipper or loss; values a step never makes. A refused load
changes nothing: weights, optimizer state, counts, every generator, history; also when
warnings are errors."""

import json
import re
import warnings

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import random_sequences
from tests.io.mutations import header_of, members_of, npy_bytes, with_header, zipped


def build(head=mdl.Tanh, p=0.3, H=4):
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(2, H)), mdl.Dropout(p), mdl.Dense(H, 1), head()])
    model.layers[3].rng = np.random.default_rng(H)  # a layer's own generator: restored, or left alone
    return model


def trainer_for(model, optimizer=None, clipper="default", loss=None, seed=3):
    optimizer = mdl.Adam(model.parameters(), lr=0.01) if optimizer is None else optimizer(model.parameters())
    clipper = mdl.ClipByGlobalNorm(1.0) if clipper == "default" else clipper
    return mdl.TBPTTTrainer(model, loss or mdl.MSELoss(), optimizer, clipper=clipper, seed=seed)


@pytest.fixture
def saved(tmp_path):
    """A checkpoint of a trained ``trainer_for(build())``, after 2 epochs (float32)."""
    mdl.set_seed(0)
    trainer = trainer_for(build())
    x, y = random_sequences(n=6)
    trainer.fit(x, y, epochs=2, batch_size=3, verbose=0)
    path = tmp_path / "ckpt.npz"
    trainer.save_checkpoint(path)
    return path


def snapshot(trainer):
    """Everything a load may change, as comparable values."""
    opt = trainer.optimizer.state_dict()
    return json.dumps({
        "weights": {k: v.tolist() for k, v in trainer.model.state_dict().items()},
        "dtypes": [str(p.data.dtype) for p in trainer.model.parameters()],
        "optimizer": {**opt, "state": [{k: np.asarray(v).tolist() for k, v in s.items()} for s in opt["state"]]},
        "counts": [trainer.epoch, trainer.updates],
        "rng": trainer.rng.bit_generator.state,
        "global_rng": mdl._random.get_rng().bit_generator.state,
        "layer_rngs": [v.bit_generator.state for layer in trainer.model.sublayers() for v in vars(layer).values()
                       if isinstance(v, np.random.Generator)],
        "lr": trainer.optimizer.lr,
        "history": [trainer.history.epoch, trainer.history.history],
    }, default=str)


def assert_refused(trainer, path, message, warnings_are_errors=False):
    before = snapshot(trainer)
    with warnings.catch_warnings():
        if warnings_are_errors:
            warnings.simplefilter("error")
        with pytest.raises(ValueError) as info:
            trainer.load_checkpoint(path)
    text = str(info.value)
    assert text.startswith(f"load_checkpoint({str(path)!r}): "), text
    assert re.search(message, text), text
    assert snapshot(trainer) == before


# ---- another training setup ------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: trainer_for(build(head=mdl.Sigmoid)), r": layer 3 is Tanh in the checkpoint, Sigmoid in the model$"),
    (lambda: trainer_for(mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 4)), mdl.Dropout(0.3), mdl.Dense(4, 1), mdl.Tanh()])),
     r": layer 0\.cell is LSTMCell in the checkpoint, GRUCell in the model$"),
    (lambda: trainer_for(build(p=0.5)), r": layer 1 \(Dropout\) has p=0\.3 in the checkpoint, p=0\.5 in the model$"),
    (lambda: trainer_for(mdl.Sequential(build().layers[:3])), r": layer 3 is Tanh in the checkpoint, absent in the model"),
    (lambda: trainer_for(build(H=5)), r"layer 0\.cell \(LSTMCell\) has hidden_size=4 in the checkpoint, hidden_size=5"),
    (lambda: trainer_for(build().astype(np.float64)), r": dtype float32 in the checkpoint, float64 in the model$"),
    (lambda: trainer_for(build(), optimizer=lambda ps: mdl.SGD(ps, lr=0.1)),
     r": optimizer Adam\(lr=0\.01, betas=\[0\.9, 0\.999\], eps=1e-08, weight_decay=0\.0\) in the checkpoint, "
     r"SGD\(lr=0\.1, momentum=0\.0, nesterov=False, weight_decay=0\.0\) in the trainer$"),
    (lambda: trainer_for(build(), optimizer=lambda ps: mdl.Adam(ps, lr=0.01, betas=(0.8, 0.999))),
     r"optimizer Adam\(lr=0\.01, betas=\[0\.9, 0\.999\], .*\) in the checkpoint, Adam\(lr=0\.01, betas=\[0\.8, 0\.999\]"
     r", .*\) in the trainer \(betas differ; only lr is taken from the checkpoint\)$"),
    (lambda: trainer_for(build(), clipper=None), r": clipper ClipByGlobalNorm\(max_norm=1\.0, error_if_nonfinite=False\) "
                                                 r"in the checkpoint, None in the trainer$"),
    (lambda: trainer_for(build(), clipper=mdl.ClipByGlobalNorm(2.0)), r"clipper ClipByGlobalNorm\(max_norm=1\.0, .* "
                                                                      r"ClipByGlobalNorm\(max_norm=2\.0"),
    (lambda: trainer_for(build(), loss=mdl.L1Loss()), r": loss MSELoss\(.*\) in the checkpoint, L1Loss\(.*\) in the trainer$"),
])
@pytest.mark.parametrize("warnings_are_errors", [False, True])
def test_another_setup_is_refused_naming_what_differs(saved, make, message, warnings_are_errors):
    mdl.set_seed(5)
    assert_refused(make(), saved, message, warnings_are_errors)


def test_a_float64_checkpoint_is_not_cast_into_a_float32_model(tmp_path):
    mdl.set_seed(0)
    trainer = trainer_for(build().astype(np.float64))
    path = tmp_path / "c64.npz"
    trainer.save_checkpoint(path)
    assert_refused(trainer_for(build()), path, r": dtype float64 in the checkpoint, float32 in the model$")
    same = trainer_for(build().astype(np.float64))
    same.load_checkpoint(path)
    assert all(p.data.dtype == np.float64 for p in same.model.parameters())


def test_the_learning_rate_is_taken_from_the_checkpoint(saved):
    """As torch's and Keras's optimizers do (a schedule may have changed it): the rest must match."""
    trainer = trainer_for(build(), optimizer=lambda ps: mdl.Adam(ps, lr=0.5))
    trainer.load_checkpoint(saved)
    assert trainer.optimizer.lr == 0.01


def test_a_layer_generator_the_model_lacks_is_refused(saved, tmp_path):
    model = build()
    model.layers[1].rng = np.random.default_rng(0)  # a generator the checkpoint has no state for
    assert_refused(trainer_for(model), saved,
                   r"the checkpoint holds the layer generators \['3\.rng'\], the model \['1\.rng', '3\.rng'\]$")


def test_a_checkpoint_of_an_older_minidl_is_refused(saved, tmp_path):
    header = header_of(saved.read_bytes())
    for key in ("architecture", "dtype", "clipper", "loss", "global_rng", "layer_rngs"):
        del header[key]
    old = tmp_path / "old.npz"
    old.write_bytes(with_header(saved.read_bytes(), header))
    assert_refused(trainer_for(build()), old, r"has no 'dtype', 'architecture', 'clipper', 'loss', 'global_rng', "
                                              r"'layer_rngs' \(a file of an older minidl, or damaged\)")


# ---- values a step never makes, checked before anything changes -----------------------------------------
def _edit_state(path, out, edit):
    """A copy of the checkpoint at ``path`` with ``edit(header, members)`` applied, written to ``out``."""
    data = path.read_bytes()
    header, members = header_of(data), members_of(data)
    edit(header, members)
    members["__config__.npy"] = npy_bytes(np.array(json.dumps(header)))
    out.write_bytes(zipped(members))
    return out


def _step(value):
    def edit(header, members):
        state = header["optimizer"]["__dict__"][2][1]["__list__"][0]["__dict__"]  # params[0]'s Adam state
        assert state[0][0] == "step"
        state[0][1] = value
    return edit


def _member(name, change):
    def edit(header, members):
        import io
        arr = np.load(io.BytesIO(members[name + ".npy"]))
        members[name + ".npy"] = npy_bytes(change(arr))
    return edit


def _nan_at(arr):
    arr = arr.copy()
    arr.flat[1] = np.nan
    return arr


@pytest.mark.parametrize("edit, message", [
    (_step(10**400), r"state\[0\]\['step'\] must be a count below 2\*\*63, got a 401-digit number"),
    (_step(-3), r"state\[0\]\['step'\] must be >= 0, got -3"),
    (_step(2.5), r"state\[0\]\['step'\] must be an int, got 2\.5"),
    (_member("optimizer/state/0/exp_avg", _nan_at), r"state\[0\]\['exp_avg'\] holds non-finite \(at index \(0, 1\)\)"),
    (_member("optimizer/state/1/exp_avg_sq", lambda a: a[:2]), r"state\[1\]\['exp_avg_sq'\] has shape \(2, 16\)"),
    (_member("optimizer/state/0/exp_avg", lambda a: a.astype(np.float64)),
     r"optimizer state\[0\]\['exp_avg'\]: dtype float64 in the checkpoint, float32 in the model$"),
    (_member("model/2.kernel", _nan_at), r"load_state_dict: entry '2\.kernel' has non-finite values \(nan at index \(1, 0\)\); refused$"),
    (_member("model/2.kernel", lambda a: a.astype(np.float64)),
     r"entry 'model/2\.kernel': dtype float64 in the checkpoint, float32 in the model$"),
    (lambda header, members: None, None),  # the control: the file rewritten unchanged loads
])
@pytest.mark.parametrize("warnings_are_errors", [False, True])
def test_bad_numbers_are_refused_before_anything_changes(saved, tmp_path, edit, message, warnings_are_errors):
    path = _edit_state(saved, tmp_path / "edited.npz", edit)
    mdl.set_seed(5)
    trainer = trainer_for(build())
    x, y = random_sequences(n=6)
    trainer.fit(x, y, epochs=1, batch_size=3, verbose=0)  # a trainer with state of its own
    if message is None:
        trainer.load_checkpoint(path)
        assert trainer.epoch == 2
    else:
        assert_refused(trainer, path, message, warnings_are_errors)


def test_a_config_holding_arrays_is_compared_by_value(tmp_path):
    """A user's loss whose get_config returns an array: stored as a list, compared by value."""
    class Weighted(mdl.MSELoss):
        def __init__(self, weights):
            super().__init__()
            self.weights = np.asarray(weights, dtype=np.float32)

        def get_config(self):
            return {**super().get_config(), "weights": self.weights}

    mdl.set_seed(0)
    trainer_for(build(), loss=Weighted([1.0, 2.0])).save_checkpoint(tmp_path / "w.npz")
    trainer_for(build(), loss=Weighted([1.0, 2.0])).load_checkpoint(tmp_path / "w.npz")
    assert_refused(trainer_for(build(), loss=Weighted([1.0, 3.0])), tmp_path / "w.npz",
                   r": loss Weighted\(weights=\[1\.0, 2\.0\]\) in the checkpoint, "
                   r"Weighted\(weights=\[1\.0, 3\.0\]\) in the trainer$")
