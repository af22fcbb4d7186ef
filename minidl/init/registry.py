"""Initializers by name and config (``get``, ``serialize``, ``names``); ``GateBlocks``, built
from other initializers; and ``make_weight``, the one way a layer's constructor makes a weight
from an initializer."""

import math

import numpy as np

from .._checks import positive_int
from .._dtype import get_default_dtype
from .._random import get_rng
from ..parameter import Parameter
from .distributions import SumOfUniforms
from .initializer import _CLASSES, _NAMES, Initializer

def names():
    """The names ``get`` accepts, sorted."""
    return sorted(_NAMES)


def get(identifier, owner="minidl.init.get", argument="initializer"):
    """An ``Initializer`` from a name, an ``Initializer`` or a config dict.

    Args:
        identifier: ``"glorot_uniform"`` (any of ``names()``), an ``Initializer``
            (returned as is), ``{"class_name": ..., "config": {...}}`` as ``serialize``
            returns, or None (returned as None: the layer's default).
        owner: str, the caller named in error messages; default ``"minidl.init.get"``.
        argument: str, the argument named in error messages; default ``"initializer"``.

    Returns:
        The ``Initializer``, or None.

    Raises:
        ValueError: an unknown name (the message lists the names) or a malformed config dict.
        TypeError: ``identifier`` is of another kind (a plain function included).
    """
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier)
        if cls is None:
            raise ValueError(f"{owner}: unknown {argument} {identifier!r}; expected one of {', '.join(names())}")
        return cls()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        config = identifier.get("config", {})
        if cls is None or not isinstance(config, dict) or set(identifier) - {"class_name", "config"}:
            raise ValueError(
                f"{owner}: {argument} config must be {{'class_name': <an Initializer class>, 'config': dict}}, "
                f"got {identifier!r}"
            )
        return cls(**config)
    raise TypeError(
        f"{owner}: {argument} must be None, a name ({', '.join(names())}), a minidl.init.Initializer "
        f"or its config dict, got {type(identifier).__name__}"
        + (" (wrap a function in an Initializer subclass so that the model can be saved)" if callable(identifier) else "")
    )


def serialize(initializer):
    """JSON-friendly form of an initializer.

    Args:
        initializer: anything ``get`` accepts (a name, an ``Initializer``, a config dict
            or None).

    Returns:
        Its name when it has one and default arguments, else
        ``{"class_name": ..., "config": ...}``; None stays None.

    Raises:
        TypeError, ValueError: as ``get`` for what it does not accept.
    """
    init = get(initializer, "minidl.init.serialize")
    if init is None:
        return None
    if init.name is not None and _NAMES.get(init.name) is type(init):
        try:
            if init == type(init)():
                return init.name
        except TypeError:  # a user's named class without default arguments
            pass
    return {"class_name": type(init).__name__, "config": init.get_config()}


class GateBlocks(Initializer):
    """Apply ``initializer`` to each of ``blocks`` equal column blocks of a weight.

    ``GateBlocks(orthogonal, 4)((H, 4H))`` is four independent orthogonal ``(H, H)``
    blocks side by side, drawn in column order (for an LSTM: i, f, g, o). The
    built-in cells wrap their ``recurrent_initializer`` in it, so that every gate's
    own recurrence gets the initializer's properties (and fan-scaled initializers
    see ``fan_out = H``).

    Args:
        initializer: the initializer of each block: a name, an ``Initializer`` or its
            config dict (see ``get``).
        blocks: int >= 1, the number of equal column blocks.

    Raises:
        TypeError: ``initializer`` is of another kind, or ``blocks`` is not an int.
        ValueError: ``initializer`` is an unknown name, or ``blocks < 1``; when sampling,
            a last axis that does not split into ``blocks`` equal blocks.
    """

    def __init__(self, initializer, blocks):
        self.initializer = get(initializer, "GateBlocks", "initializer")
        self.blocks = positive_int(blocks, "blocks", "GateBlocks")

    def sample(self, shape, rng):
        if not shape or shape[-1] % self.blocks:
            raise ValueError(f"GateBlocks: the last axis of {shape} does not split into {self.blocks} equal blocks")
        width = shape[-1] // self.blocks
        parts = [self.initializer.sample(shape[:-1] + (width,), rng) for _ in range(self.blocks)]
        return np.concatenate(parts, axis=-1)

    def get_config(self):
        return {"initializer": serialize(self.initializer), "blocks": self.blocks}


def make_weight(layer, name, shape, initializer, blocks=1, **add_weight_kwargs):
    """The ``Parameter`` ``name`` of ``layer``, as the layers' constructors build it.

    With ``initializer`` None this is ``layer.add_weight(name, shape, **add_weight_kwargs)``
    (the PyTorch default, drawn exactly as before initializers existed); otherwise
    ``initializer`` draws it, per column block when ``blocks > 1`` (``GateBlocks``),
    from the global generator in the default dtype (a bound-less ``SumOfUniforms`` with the layer's bound).

    Args:
        layer: the ``Layer`` that owns the weight (its ``add_weight`` and, for a
            bound-less ``SumOfUniforms``, its ``hidden_size``).
        name: str, the parameter's name.
        shape: tuple of ints, the weight's shape.
        initializer: an ``Initializer`` or None (the layer's default).
        blocks: int >= 1, the number of column blocks drawn separately; default 1.

    Returns:
        The new ``Parameter``.
    """
    if initializer is None:
        return layer.add_weight(name, shape, **add_weight_kwargs)
    if isinstance(initializer, SumOfUniforms) and initializer.bound is None:
        bound = add_weight_kwargs.get("bound")  # a Dense's; a cell's is 1/sqrt(hidden_size)
        initializer = SumOfUniforms(1.0 / math.sqrt(layer.hidden_size) if bound is None else bound, initializer.terms)
    if blocks > 1:
        initializer = GateBlocks(initializer, blocks)
    return Parameter(initializer(shape, get_default_dtype(), get_rng()), name)
