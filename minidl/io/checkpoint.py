"""Checkpoint files, format ``"minidl-checkpoint"``: everything a trainer's training depends on.

Stored: the model's state dict, the optimizer's ``state_dict``, the state of the
trainer's random generator (the three as trees, see ``tree.py``), the epoch count,
``k1`` / ``k2`` and the trainer's ``History``. Not stored: the architecture, the
loss, the clipper, callbacks (build the trainer the same way, then load).

The trainer is used through its public attributes only (``model``, ``optimizer``,
``rng``, ``epoch``, ``k1``, ``k2``, ``history``), so this module sits below
``minidl.training`` and imports nothing from it.
"""

import numpy as np

from .archive import read_archive, write_archive
from .tree import checkpoint_budget, decode_tree, encode_tree

FORMAT = "minidl-checkpoint"


def save_checkpoint(trainer, path):
    """Write the training state of ``trainer`` to ``path`` (atomically)."""
    arrays = {}
    meta = {
        "epoch": trainer.epoch,
        "updates": trainer.updates,
        "k1": trainer.k1,
        "k2": trainer.k2,
        "model": encode_tree(trainer.model.state_dict(), "model", arrays),
        "optimizer": encode_tree(trainer.optimizer.state_dict(), "optimizer", arrays),
        "rng": encode_tree(trainer.rng.bit_generator.state, "rng", arrays),
        "history": {"epoch": trainer.history.epoch, "history": trainer.history.history},
    }
    write_archive(path, arrays, meta, FORMAT)


def load_checkpoint(trainer, path):
    """Put what ``save_checkpoint`` stored back into ``trainer``.

    Everything is read and checked first; the trainer changes only when the whole
    checkpoint fits it. Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` naming ``path`` for anything else.
    """
    arrays, meta = read_archive(path, FORMAT, budget=checkpoint_budget(trainer.model))
    where = f"load_checkpoint({str(path)!r})"
    try:
        model_state = decode_tree(meta["model"], arrays, where)
        optimizer_state = decode_tree(meta["optimizer"], arrays, where)
        rng_state = decode_tree(meta["rng"], arrays, where)
        epoch = meta["epoch"]
        updates = meta.get("updates", 0)  # files from before the per-update count: 0
    except (KeyError, TypeError, ValueError, RecursionError) as err:
        if isinstance(err, ValueError) and str(err).startswith(where):
            raise
        raise ValueError(f"{where}: the checkpoint is incomplete or malformed ({err!r})") from None
    for name, count in (("epoch", epoch), ("update", updates)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{where}: bad {name} count {count!r}")
    if (meta.get("k1"), meta.get("k2")) != (trainer.k1, trainer.k2):
        raise ValueError(
            f"{where}: the checkpoint was trained with k1={meta.get('k1')}, k2={meta.get('k2')}, "
            f"this trainer has k1={trainer.k1}, k2={trainer.k2}"
        )
    epochs, values = _history(meta.get("history"), where)
    previous = trainer.model.state_dict()
    try:
        rng = np.random.default_rng()
        rng.bit_generator.state = rng_state
        trainer.model.load_state_dict(model_state)
        trainer.optimizer.load_state_dict(optimizer_state)
    except (ValueError, TypeError, KeyError, OverflowError) as err:
        # each load_state_dict changes nothing when it fails; undo the model's if the optimizer's failed
        trainer.model.load_state_dict(previous)
        raise ValueError(f"{where}: does not fit this trainer: {err}") from None
    trainer.rng = rng
    trainer.epoch, trainer.updates = epoch, updates
    history = type(trainer.history)()  # a fresh History (this module does not import training)
    history.epoch, history.history = epochs, values
    trainer.history = history


def _history(saved, where):
    """``(epochs, values)`` of the History a checkpoint stored; none stored (older files): empty."""
    if saved is None:
        return [], {}
    epochs = saved.get("epoch") if isinstance(saved, dict) else None
    metrics = saved.get("history") if isinstance(saved, dict) else None
    try:
        if not (isinstance(epochs, list) and all(type(e) is int for e in epochs) and isinstance(metrics, dict)):
            raise TypeError
        values = {k: [_real(v) for v in _list(vs)] for k, vs in metrics.items()}
    except (TypeError, OverflowError):
        raise ValueError(f"{where}: malformed history {saved!r:.200}") from None
    return list(epochs), values


def _list(value):
    if not isinstance(value, list):
        raise TypeError
    return value


def _real(value):
    if value is None:  # an epoch that lacked this metric
        return None
    if type(value) not in (int, float):
        raise TypeError
    return float(value)
