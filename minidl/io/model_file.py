"""Model files, format ``"minidl-model"``: a model's config and its state dict in one archive.

Members: one array per parameter under its state-dict name (``"0.cell.kernel"``);
the JSON header adds ``"dtype"`` (the model's), ``"model"`` (``get_config()``) and,
for a model class other than ``Sequential``, ``"class_name"`` (a header without it,
as every file before it, holds a ``Sequential``). ``load_model`` rebuilds the model
through the layer registry, so this module knows no layer class by name but ``Sequential``'s.
"""

import json

import numpy as np

from .._dtype import as_float_dtype, get_default_dtype, set_default_dtype
from .._random import get_rng
from ..layers.layer import shares_parameters
from ..layers.registry import layer_class, not_buildable, registered_elsewhere, unconfigured_arguments
from .archive import Budget, fspath, json_default, open_archive, write_archive

MODEL_FORMAT = "minidl-model"
MODEL_FORMAT_VERSION = 1
MODEL_CLASS = "Sequential"  # the registered Layer class a header without "class_name" rebuilds


def save_model(model, path):
    """Write ``model`` (a ``Sequential`` or another ``Model``) to ``path``: its state dict and its config.

    Refused, with nothing written: parameters shared between layers, a layer class
    whose registered name belongs to another class, a layer whose ``__init__`` takes
    arguments its ``get_config`` does not return, a config that is not JSON.
    See ``Model.save``.
    """
    owner = f"{type(model).__name__}.save"
    where = f"{owner}({fspath(path, owner)!r})"
    if shares_parameters(model):
        raise ValueError(f"{where}: the model shares parameters between layers; its config cannot express that")
    for layer in model.sublayers():
        _check_rebuildable(layer, where)
    config = model.get_config()
    if not isinstance(config, dict):
        raise TypeError(f"{where}: {type(model).__name__}.get_config must return a dict, got {type(config).__name__}")
    layers = config.get("layers") if type(model).__name__ == MODEL_CLASS else None
    for i, spec in enumerate(layers or ()):
        try:
            json.dumps(spec, default=json_default)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{where}: layers[{i}] ({spec['class_name']}) has a config that is not JSON: {err}") from None
    try:
        json.dumps(config, default=json_default)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where}: {type(model).__name__}.get_config() is not JSON: {err}") from None
    meta = {"dtype": str(np.dtype(model.dtype)), "model": config}
    if type(model).__name__ != MODEL_CLASS:
        meta["class_name"] = type(model).__name__
    write_archive(path, model.state_dict(), meta, MODEL_FORMAT, MODEL_FORMAT_VERSION)


def _check_rebuildable(layer, where):
    """Raise unless ``load_model`` can rebuild ``layer`` from its class name and ``get_config()``."""
    cls = type(layer)
    name = cls.__name__
    collision = registered_elsewhere(cls)
    if collision:
        raise ValueError(f"{where}: {collision}")
    abstract = not_buildable(cls)
    if abstract:
        raise ValueError(f"{where}: {name} cannot be saved: {abstract}")
    unknown, definer = unconfigured_arguments(cls)
    if unknown:
        raise TypeError(
            f"{where}: {name}.__init__ takes {', '.join(map(repr, unknown))}, which {definer.__name__}.get_config "
            f"does not return; override get_config in {name} to return every constructor argument "
            "(load_model rebuilds a layer as cls(**get_config()))"
        )


def load_model(path):
    """Rebuild the model (a ``Sequential`` or another ``Model`` subclass) saved with ``model.save(path)``.

    The model is rebuilt from its class name and config, ``cls.from_config(config)``
    (``cls(**config)`` unless the class overrides it; a ``Sequential`` rebuilds its
    layers from their class names and configs): every class must be defined, i.e.
    imported. Parameters get the saved values and dtypes exactly.
    Loading draws no numbers from minidl's random generator.

    Nothing but the zip directory and the header is inflated before the model is
    rebuilt from its config: then every member must be a parameter of that model, of
    the header's dtype and no larger than the parameter (plus a ``.npy`` header), or the
    file is refused before that member is inflated.

    Args:
        path: str or path-like, the file ``model.save`` wrote (used as is).

    Returns:
        The rebuilt model, of the saved class, with the saved weights and dtype.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        TypeError: ``path`` is not a str or path-like.
        ValueError: anything else that is wrong with the file, naming ``path`` and the problem.
    """
    path = fspath(path, "load_model")
    with open_archive(path, MODEL_FORMAT, (MODEL_FORMAT_VERSION,)) as archive:
        model, dtype = _rebuild(archive.meta, f"load_model({path!r})")
        # what the architecture needs, checked against the zip directory before a member is inflated
        needs = {name: (p.data.size * dtype.itemsize, dtype) for name, p in model.named_parameters()}
        arrays = archive.arrays(Budget(needs, None))
    try:
        model.load_state_dict(arrays)
    except (ValueError, TypeError) as err:
        raise ValueError(f"load_model({path!r}): the parameters do not match the architecture: {err}") from None
    return model


def _rebuild(meta, where):
    """``(model, dtype)``: the model the header ``meta`` describes, with throwaway initial weights."""
    try:
        if not isinstance(meta.get("dtype"), str):
            raise TypeError(f"expected 'float32' or 'float64', got {meta.get('dtype')!r}")
        dtype = np.dtype(as_float_dtype(meta["dtype"], "dtype"))
    except TypeError as err:
        raise ValueError(f"{where}: bad dtype in the header: {err}") from None
    if "model" not in meta:
        raise ValueError(f"{where}: the header has no 'model' entry")
    class_name = meta.get("class_name", MODEL_CLASS)
    if not isinstance(class_name, str):
        raise ValueError(f"{where}: bad class_name in the header: expected a str, got {class_name!r:.100}")

    rng = get_rng()
    rng_state, previous_dtype = rng.bit_generator.state, get_default_dtype()
    set_default_dtype(dtype)
    try:
        model = layer_class(class_name).from_config(meta["model"])
    except (ValueError, TypeError, KeyError, OverflowError, MemoryError, RecursionError) as err:
        # MemoryError: a config asking for impossibly large layers; RecursionError: nested too deep
        raise ValueError(f"{where}: cannot rebuild the model: {err}") from None
    finally:
        set_default_dtype(previous_dtype)
        rng.bit_generator.state = rng_state  # the throwaway initial weights leave no trace
    return model, dtype
