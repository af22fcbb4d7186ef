"""Checkpoint files, format ``"minidl-checkpoint"``: everything a trainer's training depends on.

Stored (arrays as npz members, through the tree codec of ``tree.py``; the rest in the
JSON header):

- ``"model"``: the model's state dict; ``"dtype"``: the model's dtype; ``"architecture"``:
  ``[[path, class name, config], ...]`` for the model (path ``""``) and every layer below
  it, depth first (``"0"``, ``"0.cell"``, ``"1"``: the state dict's prefixes);
- ``"optimizer"``: its ``state_dict`` (class name, hyperparameters with the current ``lr``,
  per-parameter state); ``"clipper"`` and ``"loss"``: ``[class name, config]`` (or None);
- the generators training draws from: ``"rng"`` (the trainer's, shuffling),
  ``"global_rng"`` (minidl's, seeded by ``set_seed``: Dropout's masks) and
  ``"layer_rngs"``: ``[[path, attribute, state], ...]`` for every ``numpy.random.Generator``
  a layer holds as an attribute;
- ``"epoch"``, ``"updates"``, ``k1`` / ``k2``, the trainer's ``History``, and
  ``"position"``: None at an epoch boundary, else the place inside the epoch (see
  ``save_checkpoint``).

``load_checkpoint`` reads and compares everything before it changes anything, and refuses
a checkpoint that cannot resume exactly: another architecture or layer config, another
dtype (nothing is cast), another optimizer class or hyperparameter (the ``lr`` is taken
from the checkpoint: a schedule may have changed it), another clipper or loss, values a
step never makes. The trainer is used through its public attributes only (``model``,
``loss``, ``optimizer``, ``clipper``, ``rng``, ``epoch``, ``updates``, ``k1``, ``k2``,
``history``), so this module sits below ``minidl.training`` and imports nothing from it.
"""

import json
import math

import numpy as np

from .._random import get_rng
from ..layers.layer import weight_values
from .archive import fspath, json_default, read_archive, write_archive
from .tree import checkpoint_budget, decode_tree, encode_tree

FORMAT = "minidl-checkpoint"
_REQUIRED = ("epoch", "k1", "k2", "model", "dtype", "architecture", "optimizer", "clipper", "loss",
             "rng", "global_rng", "layer_rngs")
_POSITION_KEYS = {"batch", "batch_size", "n", "shuffle", "order", "tally"}


def save_checkpoint(trainer, path, position=None):
    """Write the training state of ``trainer`` to ``path`` (atomically).

    ``position``: None at an epoch boundary; saved inside an epoch, the dict
    ``{"batch": batches of the epoch done, "batch_size", "n": sequences, "shuffle": bool,
    "order": the epoch's permutation (an int array) or None, "tally": {"loss_sum",
    "loss_count", "sums", "counts"}}`` (the running sums of the epoch's logs), which
    ``load_checkpoint`` returns. A layer config that is not JSON is a ``TypeError``.
    """
    where = f"save_checkpoint({fspath(path, 'write_archive')!r})"
    arrays = {}
    model = trainer.model
    meta = {
        "epoch": trainer.epoch,
        "updates": trainer.updates,
        "k1": trainer.k1,
        "k2": trainer.k2,
        "model": encode_tree(model.state_dict(), "model", arrays),
        "dtype": str(np.dtype(model.dtype)),
        "architecture": _architecture(model, where),
        "optimizer": encode_tree(trainer.optimizer.state_dict(), "optimizer", arrays),
        "clipper": _describe(trainer.clipper, where),
        "loss": _describe(trainer.loss, where),
        "rng": encode_tree(trainer.rng.bit_generator.state, "rng", arrays),
        "global_rng": encode_tree(get_rng().bit_generator.state, "global_rng", arrays),
        "layer_rngs": [[p, a, encode_tree(g.bit_generator.state, f"layer_rngs/{p}/{a}", arrays)]
                       for p, a, g in _layer_generators(model)],
        "history": {"epoch": trainer.history.epoch, "history": trainer.history.history},
        "position": None if position is None else encode_tree(position, "position", arrays),
    }
    write_archive(path, arrays, meta, FORMAT)


def load_checkpoint(trainer, path):
    """Put what ``save_checkpoint`` stored back into ``trainer``; return the stored ``position``.

    Everything is read and checked first; the trainer (and minidl's global generator)
    changes only when the whole checkpoint fits it, also when warnings are errors.
    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` starting with
    ``load_checkpoint('<path>')`` and naming what differs for anything else.
    """
    arrays, meta = read_archive(path, FORMAT, budget=checkpoint_budget(trainer.model))
    where = f"load_checkpoint({str(path)!r})"
    missing = [key for key in _REQUIRED if key not in meta]
    if missing:
        raise ValueError(f"{where}: the checkpoint has no {', '.join(map(repr, missing))} "
                         "(a file of an older minidl, or damaged); it cannot be checked for an exact resume")
    try:
        trees = {key: decode_tree(meta[key], arrays, where) for key in ("model", "optimizer", "rng", "global_rng")}
        layer_rngs = [(p, a, decode_tree(s, arrays, where)) for p, a, s in _list(meta["layer_rngs"])]
        position = decode_tree(meta.get("position"), arrays, where)
    except (KeyError, TypeError, ValueError, RecursionError) as err:
        if isinstance(err, ValueError) and str(err).startswith(where):
            raise
        raise ValueError(f"{where}: the checkpoint is incomplete or malformed ({err!r})") from None
    epoch, updates = meta["epoch"], meta.get("updates", 0)  # files from before the per-update count: 0
    for name, count in (("epoch", epoch), ("update", updates)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{where}: bad {name} count {count!r}")
    if (meta["k1"], meta["k2"]) != (trainer.k1, trainer.k2):
        raise ValueError(
            f"{where}: the checkpoint was trained with k1={meta['k1']}, k2={meta['k2']}, "
            f"this trainer has k1={trainer.k1}, k2={trainer.k2}"
        )
    _compare_architecture(meta["architecture"], _architecture(trainer.model, where), where)
    model_state = _checked_weights(trees["model"], meta["dtype"], trainer.model, where)
    optimizer_state = _checked_optimizer(trees["optimizer"], trainer.optimizer, where)
    for name, obj in (("clipper", trainer.clipper), ("loss", trainer.loss)):
        if _canonical(meta[name]) != _canonical(_describe(obj, where)):
            raise ValueError(f"{where}: {name} {_call(meta[name])} in the checkpoint, "
                             f"{_call(_describe(obj, where))} in the trainer")
    generators = _checked_generators(trainer, trees["rng"], trees["global_rng"], layer_rngs, where)
    epochs, values = _history(meta.get("history"), where)
    position = _position(position, where)

    previous = trainer.optimizer.state_dict()
    try:
        trainer.optimizer.load_state_dict(optimizer_state)  # validates everything first; changes nothing if not
        trainer.model.load_state_dict(model_state)  # checked above: cannot fail
    except (ValueError, TypeError, KeyError, OverflowError) as err:
        trainer.optimizer.load_state_dict(previous)
        raise ValueError(f"{where}: does not fit this trainer: {err}") from None
    for generator, state in generators:
        generator.bit_generator.state = state
    trainer.epoch, trainer.updates = epoch, updates
    history = type(trainer.history)()  # a fresh History (this module does not import training)
    history.epoch, history.history = epochs, values
    trainer.history = history
    return position


# ---- what the checkpoint was trained with ----------------------------------------------------
def _walk(model):
    """``(path, layer)`` for ``model`` (path ``""``) and every layer below it, depth first."""
    out = [("", model)]
    for name, child in model.children():
        out.extend((f"{name}.{p}" if p else name, layer) for p, layer in _walk(child))
    return out


def _architecture(model, where):
    """``[[path, class name, config], ...]``: what the layers are, as JSON."""
    out = []
    for path, layer in _walk(model):
        try:
            config = json.loads(json.dumps(layer.get_config(), default=_as_json))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{where}: {_layer(path)} ({type(layer).__name__}) has a config that is not JSON: "
                            f"{err}") from None
        out.append([path, type(layer).__name__, config])
    return out


def _as_json(value):
    """``json.dumps``'s ``default`` for configs: arrays as nested lists, numpy scalars as numbers."""
    return value.tolist() if isinstance(value, np.ndarray) else json_default(value)


def _layer(path):
    return "the model" if path == "" else f"layer {path}"


def _compare_architecture(saved, mine, where):
    """Raise naming the first layer whose class or config differs (classes first, leaves before containers)."""
    if not (isinstance(saved, list) and all(isinstance(e, list) and len(e) == 3 and isinstance(e[0], str)
                                            and isinstance(e[1], str) for e in saved)):
        raise ValueError(f"{where}: malformed architecture {saved!r:.200}")
    theirs = {path: (cls, config) for path, cls, config in saved}
    ours = {path: (cls, config) for path, cls, config in mine}
    for path in [p for p, _, _ in mine] + [p for p, _, _ in saved if p not in ours]:
        cls_saved, cls_mine = theirs.get(path, ("absent",))[0], ours.get(path, ("absent",))[0]
        if cls_saved != cls_mine:
            raise ValueError(f"{where}: {_layer(path)} is {cls_saved} in the checkpoint, {cls_mine} in the model")
    order = {path: k for k, path in enumerate(ours)}
    containers = {p for p in ours if any(q != p and (p == "" or q.startswith(p + ".")) for q in ours)}
    for path in sorted(ours, key=lambda p: (p in containers, order[p])):
        (cls, a), (_, b) = theirs[path], ours[path]
        if _canonical(a) != _canonical(b):
            raise ValueError(f"{where}: {_layer(path)} ({cls}) has {_differences(a, b)} in the checkpoint, "
                             f"{_differences(b, a)} in the model")


def _differences(a, b):
    """The entries of the config ``a`` that differ from ``b``'s, as ``key=value`` (the whole of ``a`` if not dicts)."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return f"config {a!r:.200}"
    keys = [k for k in a if k not in b or _canonical(a[k]) != _canonical(b[k])] + [k for k in b if k not in a]
    return ", ".join(f"{k}={a[k]!r:.100}" if k in a else f"no {k}" for k in keys)


def _describe(obj, where):
    """``[class name, config]`` of a clipper or loss (its ``get_config()``, if any), None for None."""
    if obj is None:
        return None
    get_config = getattr(obj, "get_config", None)
    try:
        config = json.loads(json.dumps(get_config() if callable(get_config) else {}, default=_as_json))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where}: the config of {type(obj).__name__} is not JSON: {err}") from None
    return [type(obj).__name__, config]


def _call(description):
    """``"Adam(lr=0.01, ...)"`` for ``[class name, config]``; ``"None"`` for None."""
    if not (isinstance(description, list) and len(description) == 2 and isinstance(description[1], dict)):
        return repr(description)[:200]
    name, config = description
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in config.items())})"


def _canonical(value):
    """A text equal for equal JSON values (NaN equal to NaN; arrays by their values)."""
    return json.dumps(value, sort_keys=True, default=lambda v: v.tolist() if isinstance(v, np.ndarray) else str(v))


def _checked_weights(state, dtype, model, where):
    """The model's state from the checkpoint, checked against ``model``: the same names, shapes and dtypes, finite."""
    if dtype != str(np.dtype(model.dtype)):
        shown = dtype if isinstance(dtype, str) and dtype.isidentifier() else f"{dtype!r:.40}"
        raise ValueError(f"{where}: dtype {shown} in the checkpoint, {np.dtype(model.dtype)} in the model")
    if not isinstance(state, dict):
        raise ValueError(f"{where}: malformed model state {state!r:.200}")
    params = dict(model.named_parameters())
    missing, extra = sorted(set(params) - set(state)), sorted(map(str, set(state) - set(params)))
    if missing or extra:
        raise ValueError(f"{where}: the weights do not fit the model: missing {missing}, unexpected {extra}")
    for name, value in state.items():
        p = params[name]
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{where}: entry 'model/{name}' is not an array, got {value!r:.100}")
        if value.dtype != p.data.dtype:
            raise ValueError(f"{where}: entry 'model/{name}': dtype {value.dtype} in the checkpoint, "
                             f"{p.data.dtype} in the model")
        if value.shape != p.data.shape:
            raise ValueError(f"{where}: entry 'model/{name}': shape {value.shape} in the checkpoint, "
                             f"{p.data.shape} in the model")
        try:
            weight_values(value, name, p.data)      # the one check of incoming weights: finite
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    return state


def _checked_optimizer(state, optimizer, where):
    """The optimizer's state from the checkpoint: the same class and hyperparameters but ``lr``,
    state arrays in their parameter's dtype (the rest is ``load_state_dict``'s to check)."""
    mine = optimizer.state_dict()
    if not (isinstance(state, dict) and isinstance(state.get("config"), dict)):
        raise ValueError(f"{where}: malformed optimizer state {state!r:.200}")
    saved = [state.get("type"), state["config"]]
    if saved[0] != mine["type"]:
        raise ValueError(f"{where}: optimizer {_call(saved)} in the checkpoint, "
                         f"{_call([mine['type'], mine['config']])} in the trainer")
    differ = [k for k in {**mine["config"], **saved[1]}
              if k != "lr" and _canonical(saved[1].get(k)) != _canonical(mine["config"].get(k))]
    if differ:
        raise ValueError(f"{where}: optimizer {_call(saved)} in the checkpoint, "
                         f"{_call([mine['type'], mine['config']])} in the trainer ({', '.join(map(str, differ))} differ; "
                         "only lr is taken from the checkpoint)")
    entries = state.get("state")
    if isinstance(entries, list) and len(entries) == len(optimizer.params):
        for i, (entry, p) in enumerate(zip(entries, optimizer.params)):
            for key, value in (entry.items() if isinstance(entry, dict) else ()):
                if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.dtype != p.data.dtype:
                    raise ValueError(f"{where}: optimizer state[{i}][{key!r}]: dtype {value.dtype} in the "
                                     f"checkpoint, {p.data.dtype} in the model")
    return state


def _layer_generators(model):
    """``(path, attribute, Generator)`` for every numpy Generator a layer of ``model`` holds."""
    return [(path, name, value) for path, layer in _walk(model)
            for name, value in vars(layer).items() if isinstance(value, np.random.Generator)]


def _checked_generators(trainer, rng, global_rng, layer_rngs, where):
    """``[(generator, state)]`` to restore, each state tried on a scratch generator of its kind first."""
    mine = _layer_generators(trainer.model)
    if [(p, a) for p, a, _ in mine] != [(p, a) for p, a, _ in layer_rngs]:
        raise ValueError(f"{where}: the checkpoint holds the layer generators "
                         f"{[f'{p}.{a}' for p, a, _ in layer_rngs]}, the model "
                         f"{[f'{p}.{a}' for p, a, _ in mine]}")
    pairs = [(trainer.rng, rng, "the trainer's generator"), (get_rng(), global_rng, "minidl's global generator")]
    pairs += [(g, s, f"the generator {p}.{a}") for (p, a, g), (_, _, s) in zip(mine, layer_rngs)]
    out = []
    for generator, state, name in pairs:
        scratch = type(generator.bit_generator)()
        try:
            scratch.state = state
        except (TypeError, ValueError, KeyError, OverflowError) as err:
            raise ValueError(f"{where}: bad state of {name}: {err!r:.200}") from None
        out.append((generator, scratch.state))
    return out


# ---- the rest: history, position --------------------------------------------------------------
def _position(saved, where):
    """The stored position inside an epoch, checked (None at an epoch boundary)."""
    if saved is None:
        return None
    try:
        if not isinstance(saved, dict) or set(saved) != _POSITION_KEYS:
            raise TypeError("keys")
        n, batch_size, batch = (_count(saved[k]) for k in ("n", "batch_size", "batch"))
        if n == 0 or batch_size == 0 or batch > math.ceil(n / batch_size) or type(saved["shuffle"]) is not bool:
            raise TypeError("counts")
        order = saved["order"]
        if saved["shuffle"] != (order is not None):
            raise TypeError("order")
        if order is not None and not (isinstance(order, np.ndarray) and order.dtype.kind in "iu"
                                      and order.shape == (n,) and np.array_equal(np.sort(order), np.arange(n))):
            raise TypeError("order")
        tally = saved["tally"]
        if not (isinstance(tally, dict) and set(tally) == {"loss_sum", "loss_count", "sums", "counts"}):
            raise TypeError("tally")
        sums, counts = tally["sums"], tally["counts"]
        if not (isinstance(sums, dict) and isinstance(counts, dict) and set(sums) == set(counts)):
            raise TypeError("tally")
        tally = {"loss_sum": _finite(tally["loss_sum"]), "loss_count": _count(tally["loss_count"]),
                 "sums": {k: _finite(v) for k, v in sums.items()}, "counts": {k: _count(v) for k, v in counts.items()}}
    except TypeError:
        raise ValueError(f"{where}: malformed position in the epoch {saved!r:.200}") from None
    return {"batch": batch, "batch_size": batch_size, "n": n, "shuffle": saved["shuffle"],
            "order": None if order is None else order.astype(np.int64), "tally": tally}


def _count(value):
    if type(value) is not int or value < 0:
        raise TypeError
    return value


def _finite(value):
    if type(value) not in (int, float) or not math.isfinite(value):
        raise TypeError
    return float(value)


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
