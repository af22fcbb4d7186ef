"""Checkpoints of a trainer: everything training depends on, in npz + JSON.

Nested state (the optimizer's ``state_dict``, the generator's state) is split
into arrays, stored as npz members, and a JSON tree that refers to them, so no
pickle is ever written or read.
"""

import numpy as np

from .history import History


FORMAT = "minidl-checkpoint"


def flatten(obj, prefix, arrays):
    """JSON-able tree for ``obj``; its ndarrays go into ``arrays`` under path-like keys."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, flatten(v, f"{prefix}/{k}", arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [flatten(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)],
                "tuple": isinstance(obj, tuple)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"checkpoint: cannot store a value of type {type(obj).__name__} at {prefix!r}")


def unflatten(tree, arrays, where):
    """Inverse of ``flatten``; a reference to a missing array raises ValueError."""
    if isinstance(tree, dict):
        if "__array__" in tree:
            key = tree["__array__"]
            if key not in arrays:
                raise ValueError(f"{where}: the checkpoint refers to a missing array {key!r}")
            return arrays[key]
        if "__dict__" in tree:
            return {k: unflatten(v, arrays, where) for k, v in tree["__dict__"]}
        if "__list__" in tree:
            items = [unflatten(v, arrays, where) for v in tree["__list__"]]
            return tuple(items) if tree.get("tuple") else items
        raise ValueError(f"{where}: malformed checkpoint entry {sorted(tree)}")
    return tree


def save_checkpoint(trainer, path):
    from ..serialization import write_archive

    arrays = {}
    meta = {
        "epoch": trainer.epoch,
        "k1": trainer.k1,
        "k2": trainer.k2,
        "model": flatten(trainer.model.state_dict(), "model", arrays),
        "optimizer": flatten(trainer.optimizer.state_dict(), "optimizer", arrays),
        "rng": flatten(trainer.rng.bit_generator.state, "rng", arrays),
        "history": {"epoch": trainer.history.epoch, "history": trainer.history.history},
    }
    write_archive(path, arrays, meta, FORMAT)


def load_checkpoint(trainer, path):
    from ..serialization import read_archive

    arrays, meta = read_archive(path, FORMAT)
    where = f"load_checkpoint({str(path)!r})"
    try:
        model_state = unflatten(meta["model"], arrays, where)
        optimizer_state = unflatten(meta["optimizer"], arrays, where)
        rng_state = unflatten(meta["rng"], arrays, where)
        epoch = meta["epoch"]
    except (KeyError, TypeError, ValueError, RecursionError) as err:
        if isinstance(err, ValueError) and str(err).startswith(where):
            raise
        raise ValueError(f"{where}: the checkpoint is incomplete or malformed ({err!r})") from None
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"{where}: bad epoch count {epoch!r}")
    if (meta.get("k1"), meta.get("k2")) != (trainer.k1, trainer.k2):
        raise ValueError(
            f"{where}: the checkpoint was trained with k1={meta.get('k1')}, k2={meta.get('k2')}, "
            f"this trainer has k1={trainer.k1}, k2={trainer.k2}"
        )
    history = _history(meta.get("history"), where)
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
    trainer.epoch = epoch
    trainer.history = history


def _history(saved, where):
    """The ``History`` a checkpoint stored; none stored (older files) gives an empty one."""
    history = History()
    if saved is None:
        return history
    epochs = saved.get("epoch") if isinstance(saved, dict) else None
    metrics = saved.get("history") if isinstance(saved, dict) else None
    try:
        if not (isinstance(epochs, list) and all(type(e) is int for e in epochs) and isinstance(metrics, dict)):
            raise TypeError
        values = {k: [_real(v) for v in _list(vs)] for k, vs in metrics.items()}
    except (TypeError, OverflowError):
        raise ValueError(f"{where}: malformed history {saved!r:.200}") from None
    history.epoch, history.history = list(epochs), values
    return history


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
