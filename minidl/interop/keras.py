"""Keras <-> minidl weights: the same layout, checked."""

from collections.abc import Mapping

from .._checks import fmt_shape
from ..layers import Bidirectional
from ._common import array, check_activations, checked_layout, directions, embedding_table, kind_name, layer_kind
from ._common import layout_kind, load_all, minidl_arrays, resolve_kind

def from_keras(weights, kind=None):
    """Keras weights -> minidl ``{"kernel", "recurrent_kernel", "bias"}``: the same arrays, checked.

    Args:
        weights: a list as ``layer.get_weights()`` returns it (``[kernel, bias]`` for
            ``Dense``; ``[kernel, recurrent_kernel, bias]`` for ``SimpleRNN``, ``LSTM``,
            ``GRU``; without the bias for ``use_bias=False``, which gives zeros;
            ``[embeddings]`` for ``Embedding``), or a Keras layer (anything with ``get_weights()``).
        kind: as in ``from_torch``; None reads it from the layer class or the shapes.

    Only ``GRU(reset_after=True)`` (Keras' default, bias ``(2, 3H)``) matches minidl's
    GRU. A Keras ``Dense``'s activation is not a weight: add the activation layer after
    minidl's ``Dense``.

    Returns:
        A dict for ``load_state_dict`` of the minidl cell, ``Dense`` or ``Embedding``
        (prefix the keys with ``"cell."`` for an ``RNN``): ``kernel``,
        ``recurrent_kernel``, ``bias`` (``Dense``: ``kernel``, ``bias``; ``Embedding``:
        ``embeddings``), each a new array.

    Raises:
        TypeError: ``weights`` is neither a list of arrays nor a Keras layer, or an array
            is not numeric.
        ValueError: a GRU with ``reset_after=False`` (a ``(3H,)`` bias), an unknown
            ``kind`` or one that contradicts the layer or the shapes, or another number
            or shape of arrays than the kind has.
    """
    owner = "from_keras"
    module_kind = None
    if callable(getattr(weights, "get_weights", None)):
        layer = weights
        module_kind = kind_name(type(layer).__name__, owner)
        if getattr(layer, "reset_after", True) is False:
            raise ValueError(f"{owner}: GRU(reset_after=False) computes another candidate than minidl's GRUCell; "
                             "only reset_after=True converts")
        weights = layer.get_weights()
    if isinstance(weights, Mapping) or not isinstance(weights, (list, tuple)):
        got = type(weights).__name__
        if module_kind is not None:
            got = f"{type(layer).__name__}.get_weights() returned a {got}"
        raise TypeError(f"{owner}: expected a list of arrays (layer.get_weights()), got {got}")
    if module_kind == "embedding" or (kind is not None and kind_name(kind, owner) == "embedding"):
        resolve_kind(kind, module_kind, owner)
        if len(weights) != 1:
            raise ValueError(f"{owner}: an Embedding has one weight, [embeddings], got {len(weights)} arrays")
        return {"embeddings": embedding_table(weights[0], "weights[0] (embeddings)", owner)}
    arrays = [array(w, f"weights[{i}]", owner) for i, w in enumerate(weights)]
    if not 1 <= len(arrays) <= 3 or arrays[0].ndim != 2:
        raise ValueError(f"{owner}: expected [kernel, (recurrent_kernel,) (bias)] with a 2-D kernel, "
                         f"got shapes {[a.shape for a in arrays]}")
    if len(arrays) == 2 and arrays[1].ndim == 1:  # a Dense: [kernel, bias]
        arrays = [arrays[0], None, arrays[1]]
    kernel, rec, bias = arrays + [None] * (3 - len(arrays))
    bias_name = "weights[1] (bias)" if rec is None else "weights[2] (bias)"
    names = ("weights[0] (kernel)", "weights[1] (recurrent_kernel)", bias_name)
    kind = layout_kind(kernel, rec, kind, module_kind, owner, names)
    if kind == "gru" and bias is not None and bias.shape == (rec.shape[-1],):
        raise ValueError(f"{owner}: a GRU bias of shape {fmt_shape(bias.shape)} comes from GRU(reset_after=False), "
                         "which computes another candidate than minidl's GRUCell; only reset_after=True converts")
    return checked_layout(kind, kernel, rec, bias, owner, names)


def to_keras(source, kind=None):
    """minidl weights -> the list Keras' ``layer.set_weights`` takes (copies).

    Build the Keras GRU with ``reset_after=True`` (its default).

    Args:
        source: a minidl ``Dense``, ``Embedding``, cell, ``RNN`` or ``Bidirectional``, or its
            state dict.
        kind: ``"dense"``, ``"embedding"``, ``"rnn"``, ``"lstm"``, ``"gru"``, or None (the
            default) for the kind of ``source`` (needed for a state dict whose shapes do
            not tell it).

    Returns:
        ``[kernel, bias]`` (``[kernel]`` without bias) for ``Dense``, ``[embeddings]`` for
        ``Embedding``, ``[kernel, recurrent_kernel, bias]`` for a recurrent layer, and the
        forward layer's list then the backward layer's for ``Bidirectional`` (as Keras'
        ``Bidirectional.get_weights()``).

    Raises:
        TypeError: ``source`` is neither a supported layer nor a state dict.
        ValueError: an unknown ``kind``, one that contradicts ``source``, or missing or
            misshapen arrays.
    """
    owner = "to_keras"
    if isinstance(source, Bidirectional):
        return [w for direction in directions(source, owner) for w in to_keras(direction, kind)]
    arrays, layer_kind_ = minidl_arrays(source, owner)
    if layer_kind_ == "embedding":
        return [from_keras([arrays["embeddings"]], kind if kind is not None else "embedding")["embeddings"]]
    order = ("kernel", "recurrent_kernel", "bias")
    checked = from_keras([arrays[k] for k in order if k in arrays], kind if kind is not None else layer_kind_)
    return [checked[k] for k in order if k in checked]


def load_keras_weights(layer, weights, *, activation=None, recurrent_activation=None):
    """Load Keras weights (``from_keras``'s input) into the minidl ``Dense``, ``Embedding``, cell,
    ``RNN`` or ``Bidirectional`` ``layer`` (in place, in its dtype). Returns ``layer``.

    The weights carry no activation, so a ``SimpleRNN(activation="relu")`` would load into a
    tanh cell and compute something else. The Keras activations are read from a Keras layer
    object (its ``get_config()``), or given as ``activation=`` / ``recurrent_activation=``
    (names, e.g. ``"relu"``, ``"hard_sigmoid"``) with a list of arrays; one that differs from
    what the cell computes with (``RNNCell.activation``; ``tanh`` and ``sigmoid`` for the LSTM
    and GRU cells) is a ``ValueError``. With a bare list and no names nothing can be checked.

    A ``Bidirectional(RNN(...))`` takes the list Keras' ``Bidirectional.get_weights()`` gives:
    the forward layer's arrays, then the backward layer's (or the Keras ``Bidirectional``
    itself, whose ``merge_mode`` must equal the minidl layer's).

    Args:
        layer: the minidl ``Dense``, ``Embedding``, cell, ``RNN`` or ``Bidirectional`` to fill.
        weights: a Keras layer object, or the list of arrays its ``get_weights()`` gives.
        activation: str or None, the Keras layer's activation name (``"tanh"``), checked
            against the cell's; None reads it from a Keras layer object, or checks nothing.
        recurrent_activation: str or None, the gates' activation (LSTM, GRU), as above.

    Returns:
        ``layer``, with the weights loaded; nothing changes unless every array fits.

    Raises:
        TypeError: ``layer`` is not a supported minidl layer, or ``weights`` is not a
            Keras layer or a list of arrays.
        ValueError: an activation that differs from the cell's, another ``merge_mode``,
            an odd number of arrays for a ``Bidirectional``, or a missing or misshapen array.
    """
    owner = "load_keras_weights"
    is_object = callable(getattr(weights, "get_weights", None))
    if isinstance(layer, Bidirectional):
        targets = directions(layer, owner)
        if is_object:
            merge = _keras_config(weights).get("merge_mode", layer.merge_mode)
            if merge != layer.merge_mode:
                raise ValueError(f"{owner}: the Keras Bidirectional has merge_mode={merge!r} but {layer!r} has "
                                 f"merge_mode={layer.merge_mode!r}")
            sources = (weights.forward_layer, weights.backward_layer)
        else:
            sources = _halves(weights, owner)
    else:
        targets, sources = (layer,), (weights,)
    kind = layer_kind(targets[0], owner)
    for target, source in zip(targets, sources):
        theirs = _keras_activations(source) if callable(getattr(source, "get_weights", None)) else (None, None)
        check_activations(target, kind, activation or theirs[0], recurrent_activation or theirs[1], "Keras", owner)
    # nothing changes unless every direction fits
    converted = [(target, from_keras(source, kind)) for target, source in zip(targets, sources)]
    return load_all(layer, converted, kind, "Keras", owner)


def _halves(weights, owner):
    """The forward and backward layers' arrays of a Keras ``Bidirectional.get_weights()`` list."""
    if isinstance(weights, Mapping) or not isinstance(weights, (list, tuple)):
        raise TypeError(f"{owner}: expected a list of arrays (layer.get_weights()), got {type(weights).__name__}")
    if not weights or len(weights) % 2:
        raise ValueError(f"{owner}: a Bidirectional's weights are the forward layer's arrays then the backward "
                         f"layer's, an even number; got {len(weights)}")
    half = len(weights) // 2
    return list(weights[:half]), list(weights[half:])


def _keras_config(layer):
    config = layer.get_config() if callable(getattr(layer, "get_config", None)) else {}
    return config if isinstance(config, Mapping) else {}


def _keras_activations(layer):
    """``(activation, recurrent_activation)`` names of a Keras layer (None where it has none)."""
    config = _keras_config(layer)
    return tuple(_activation_name(config.get(key, getattr(layer, key, None)))
                 for key in ("activation", "recurrent_activation"))


def _activation_name(value):
    """The name of a Keras activation as a config or a layer holds it: a str, a serialized dict
    (``{"class_name": ..., "config": {"name": ...}}``) or the function itself."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return value.get("config", {}).get("name") or value.get("class_name")
    return getattr(value, "__name__", None)
