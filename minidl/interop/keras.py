"""Keras <-> minidl weights: the same layout, checked."""

from collections.abc import Mapping

from .._checks import fmt_shape
from ._common import array, checked_layout, kind_name, layer_kind, layout_kind, load, minidl_arrays

def from_keras(weights, kind=None):
    """Keras weights -> minidl ``{"kernel", "recurrent_kernel", "bias"}``: the same arrays, checked.

    Args:
        weights: a list as ``layer.get_weights()`` returns it (``[kernel, bias]`` for
            ``Dense``; ``[kernel, recurrent_kernel, bias]`` for ``SimpleRNN``, ``LSTM``,
            ``GRU``; without the bias for ``use_bias=False``, which gives zeros), or a
            Keras layer (anything with ``get_weights()``).
        kind: as in ``from_torch``; None reads it from the layer class or the shapes.

    Only ``GRU(reset_after=True)`` (Keras' default, bias ``(2, 3H)``) matches minidl's
    GRU; a ``(3H,)`` GRU bias (``reset_after=False``) is a ``ValueError``. A Keras
    ``Dense``'s activation is not a weight: add the activation layer after minidl's ``Dense``.
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
        raise TypeError(f"{owner}: expected a list of arrays (layer.get_weights()), got {type(weights).__name__}")
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

    ``source``: a minidl ``Dense``, cell or ``RNN``, or its state dict. Gives
    ``[kernel, bias]`` (``[kernel]`` without bias) for ``Dense`` and
    ``[kernel, recurrent_kernel, bias]`` otherwise; build the Keras GRU with
    ``reset_after=True`` (its default).
    """
    owner = "to_keras"
    arrays, layer_kind = minidl_arrays(source, owner)
    order = ("kernel", "recurrent_kernel", "bias")
    checked = from_keras([arrays[k] for k in order if k in arrays], kind if kind is not None else layer_kind)
    return [checked[k] for k in order if k in checked]


def load_keras_weights(layer, weights):
    """Load Keras weights (``from_keras``'s input) into the minidl ``Dense``, cell or ``RNN``
    ``layer`` (in place, in its dtype). Returns ``layer``."""
    owner = "load_keras_weights"
    kind = layer_kind(layer, owner)
    return load(layer, kind, from_keras(weights, kind), "Keras", owner)
