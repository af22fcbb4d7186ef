"""The registry of layer classes: the name a saved file uses -> the one class it means, and what
a class must be for ``save`` and ``load_model`` to rebuild it."""

import inspect

_LAYER_TYPES = {}  # the name a file uses -> the one class it means


def layer_class(name):
    """Return the Layer subclass registered under ``name`` (used by ``load_model``).

    ``ValueError`` for a name no class has, and for a class that is not meant to be
    built from a file (a base to subclass, a private base of minidl: see ``not_buildable``).
    """
    try:
        cls = _LAYER_TYPES[name]
    except KeyError:
        raise ValueError(
            f"unknown layer type {name!r}; define (import) the class before loading a model that uses it"
        ) from None
    reason = not_buildable(cls)
    if reason:
        raise ValueError(f"layer type {name!r} ({_qualified(cls)}) cannot be built from a file: {reason}")
    return cls


def not_buildable(cls):
    """Why the Layer class ``cls`` cannot be built and run from a saved config, or "".

    Not buildable: minidl's private bases (a minidl class whose name starts with ``_``,
    e.g. ``_Activation``) and minidl's abstract classes, those that leave ``forward`` or another
    method minidl declares with a placeholder (a minidl method that only raises
    ``NotImplementedError``: ``Layer.forward``, ``Cell.step``, ``Cell.step_backward``)
    unimplemented. ``Layer.backward`` does not count: a layer used only for inference
    may load without it.
    """
    if not _is_builtin(cls):
        return ""  # a user's class is the user's to judge
    if cls.__name__.startswith("_"):
        return "it is a private base class of minidl"
    missing = [name for name in dir(cls) if name != "backward" and _is_placeholder(getattr(cls, name, None))]
    if missing:
        return f"it is an abstract base class ({', '.join(missing)} not implemented); save a subclass that implements them"
    return ""


def _is_placeholder(method):
    code = getattr(getattr(method, "__func__", method), "__code__", None)
    module = getattr(method, "__module__", None) or ""
    return code is not None and module.startswith("minidl.") and "NotImplementedError" in code.co_names


def _is_builtin(cls):
    return cls.__module__ == "minidl" or cls.__module__.startswith("minidl.")


def _qualified(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def register(cls):
    """Register ``cls`` under its class name unless another class holds the name.

    The first class of a name keeps it, except that one of minidl's own classes always
    takes its name (so a user's ``Dense`` never shadows minidl's, even when defined before
    the minidl module is imported); a class defined again with the same module and
    qualified name (a reloaded module, a class defined in a function called twice)
    replaces its earlier self. A class left unregistered is refused when saved
    (``registered_elsewhere``). ``Layer.__init_subclass__`` calls it for every subclass, so a file never names a class that loads as another.
    """
    held = _LAYER_TYPES.get(cls.__name__)
    if held is None or _qualified(held) == _qualified(cls) or (_is_builtin(cls) and not _is_builtin(held)):
        _LAYER_TYPES[cls.__name__] = cls


def registered_elsewhere(cls):
    """The message for saving ``cls`` when its name means another class in files, or ""."""
    held = _LAYER_TYPES.get(cls.__name__)
    if held is cls:
        return ""
    if held is None:
        return f"the layer class {_qualified(cls)} is not registered under its name {cls.__name__!r}"
    return (
        f"another layer class is registered under the name {cls.__name__!r}: {_qualified(held)}, "
        f"so load_model would rebuild that one, not {_qualified(cls)}. Give your class a name no other "
        f"layer class has (e.g. 'My{cls.__name__}')"
    )


def unconfigured_arguments(cls):
    """The ``__init__`` arguments of the Layer class ``cls`` that its ``get_config`` cannot know.

    A ``get_config`` returns the constructor arguments of the class that defines it.
    A subclass that adds ``__init__`` arguments without overriding ``get_config`` would
    be saved without them. Returns ``(names, definer)``: the arguments of
    ``cls.__init__`` that ``definer.__init__`` does not take, where ``definer`` is the
    class whose ``get_config`` ``cls`` uses (``*args`` / ``**kwargs`` are not counted).
    """
    definer = next(c for c in cls.__mro__ if "get_config" in vars(c))
    known = set(_init_arguments(definer))
    return [name for name in _init_arguments(cls) if name not in known], definer


def _init_arguments(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self
    return [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
