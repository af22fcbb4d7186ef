"""PyTorch <-> minidl weights (see the package docstring for the layouts)."""

from collections.abc import Mapping

import numpy as np

from .._checks import fmt_shape, non_negative_int
from ..layers import Layer
from ._common import GATES, array, checked_layout, expect, gates_of, gru_order, kind_name, layer_kind, layout_kind
from ._common import load, minidl_arrays, prefix_of, resolve_kind


def _torch_state(source, owner):
    """``(state dict of numpy arrays, inferred kind or None, module or None)``."""
    if isinstance(source, Layer):
        raise TypeError(f"{owner}: expected a PyTorch module or state dict, got the minidl {type(source).__name__} "
                        "(to convert a minidl layer to PyTorch, use to_torch)")
    module = None
    if not isinstance(source, Mapping):
        if not callable(getattr(source, "state_dict", None)):
            raise TypeError(f"{owner}: expected a PyTorch module or its state_dict(), got {type(source).__name__}")
        module, source = source, source.state_dict()
    sd = {k: array(v, k, owner) for k, v in source.items()}
    kind = None
    if module is not None:
        try:
            kind = kind_name(type(module).__name__, owner)
        except ValueError:
            raise TypeError(f"{owner}: cannot convert a {type(module).__name__}; expected nn.Linear, nn.RNN, "
                            "nn.LSTM, nn.GRU or their Cell versions") from None
    return sd, kind, module


def _torch_suffix(sd, prefix, layer_index, owner):
    """``_l{k}``, or empty for the Cell modules' keys (also chosen when ``layer_index == 0``
    finds only those)."""
    if layer_index is None:
        return ""
    layer_index = non_negative_int(layer_index, "layer_index", owner)
    if layer_index == 0 and f"{prefix}weight_ih_l0" not in sd and f"{prefix}weight_ih" in sd:
        return ""
    return f"_l{layer_index}"


def _take(sd, key, owner):
    if key not in sd:
        keys = sorted(sd)
        hint = keys if len(keys) <= 12 else keys[:12] + ["..."]
        raise ValueError(f"{owner}: the state dict has no entry {key!r}; its keys are {hint}")
    return sd[key]


def from_torch(source, kind=None, *, layer_index=0, prefix=""):
    """PyTorch weights -> minidl ``{"kernel", "recurrent_kernel", "bias"}`` (``Dense``: ``kernel``, ``bias``).

    Args:
        source: a PyTorch module (``nn.Linear``, ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` or a
            Cell version) or its ``state_dict()``, with tensors or numpy arrays.
        kind: ``"dense"``, ``"rnn"``, ``"lstm"``, ``"gru"``; None reads it from the module
            class or the shapes (an explicit kind is checked against them).
        layer_index: which layer ``k`` of a multi-layer module (``weight_ih_l{k}``);
            None for the Cell modules' keys (found automatically when ``k == 0``).
        prefix: prepended to every key, for a submodule in a larger state dict
            (``"encoder."``); other keys are ignored.

    Returns a dict for ``load_state_dict`` of the minidl cell or ``Dense`` (prefix
    the keys with ``"cell."`` for an ``RNN``). A missing key or a wrong shape is a
    ``ValueError`` naming it.
    """
    owner = "from_torch"
    sd, module_kind, _ = _torch_state(source, owner)
    prefix = prefix_of(prefix, owner)
    if module_kind is None and f"{prefix}weight" in sd and f"{prefix}weight_ih" not in sd:
        module_kind = "dense"
    if module_kind == "dense" or (kind is not None and kind_name(kind, owner) == "dense"):
        kind = resolve_kind(kind, module_kind, owner)
        weight = _take(sd, f"{prefix}weight", owner)
        if weight.ndim != 2:
            raise ValueError(f"{owner}: {prefix + 'weight'!r} must be (out, in), got shape {fmt_shape(weight.shape)}")
        names = (prefix + "weight", None, prefix + "bias")
        return checked_layout("dense", weight.T, None, sd.get(prefix + "bias"), owner, names)

    sfx = _torch_suffix(sd, prefix, layer_index, owner)
    names = {n: f"{prefix}{n}{sfx}" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    if f"{prefix}weight_hr{sfx}" in sd:
        raise ValueError(f"{owner}: {prefix}weight_hr{sfx!r} found: LSTMs with proj_size > 0 have no minidl equivalent")
    if f"{names['weight_ih']}_reverse" in sd:
        raise ValueError(f"{owner}: the module is bidirectional ({names['weight_ih']}_reverse found); minidl "
                         "converts unidirectional modules only")
    w_ih, w_hh = _take(sd, names["weight_ih"], owner), _take(sd, names["weight_hh"], owner)
    kind = resolve_kind(kind, module_kind or gates_of(w_hh, owner, names["weight_hh"]), owner)
    if w_hh.ndim != 2:
        raise ValueError(f"{owner}: {names['weight_hh']!r} must be 2-D, got shape {fmt_shape(w_hh.shape)}")
    H = w_hh.shape[1]
    G = GATES[kind] * H
    expect(w_hh, (G, H), names["weight_hh"], owner)
    if w_ih.ndim != 2 or w_ih.shape[0] != G:
        raise ValueError(f"{owner}: {names['weight_ih']!r} expected shape ({G}, input_size), got {fmt_shape(w_ih.shape)}")
    has = [names[b] in sd for b in ("bias_ih", "bias_hh")]
    if any(has) and not all(has):
        missing = names["bias_hh"] if has[0] else names["bias_ih"]
        raise ValueError(f"{owner}: the state dict has no entry {missing!r} (expected both biases or neither)")
    dtype = np.result_type(w_ih, w_hh)
    b_ih, b_hh = (sd[names[b]] if all(has) else np.zeros(G, dtype) for b in ("bias_ih", "bias_hh"))
    expect(b_ih, (G,), names["bias_ih"], owner)
    expect(b_hh, (G,), names["bias_hh"], owner)
    if kind == "gru":
        order = gru_order(H)
        w_ih, w_hh, bias = w_ih[order], w_hh[order], np.stack([b_ih[order], b_hh[order]])
    else:
        bias = b_ih + b_hh
    return {"kernel": np.ascontiguousarray(w_ih.T), "recurrent_kernel": np.ascontiguousarray(w_hh.T), "bias": bias}


def to_torch(source, kind=None, *, layer_index=0, prefix=""):
    """minidl weights -> a PyTorch state dict of numpy arrays (the inverse of ``from_torch``).

    Args:
        source: a minidl ``Dense``, cell or ``RNN``, or a state dict with the keys
            ``kernel``, ``recurrent_kernel``, ``bias`` (``"cell."``-prefixed keys too).
        kind: as in ``from_torch``; None reads it from the layer or the shapes.
        layer_index: ``k`` of the keys ``weight_ih_l{k}``; None gives the Cell modules' keys.
        prefix: prepended to every key.

    The single bias of an RNN or LSTM cell goes to ``bias_ih``, zeros to ``bias_hh``.
    Load with ``module.load_state_dict({k: torch.from_numpy(v) for k, v in d.items()})``.
    """
    owner = "to_torch"
    arrays, layer_kind = minidl_arrays(source, owner)
    prefix = prefix_of(prefix, owner)
    names = ("kernel", "recurrent_kernel", "bias")
    kernel, rec, bias = (arrays.get(k) for k in names)
    kind = layout_kind(kernel, rec, kind, layer_kind, owner, names)
    checked = checked_layout(kind, kernel, rec, bias, owner, names)
    if kind == "dense":
        out = {f"{prefix}weight": np.ascontiguousarray(kernel.T)}
        if "bias" in checked:
            out[f"{prefix}bias"] = checked["bias"]
        return out
    w_ih, w_hh, bias = checked["kernel"].T, checked["recurrent_kernel"].T, checked["bias"]
    if kind == "gru":
        order = gru_order(rec.shape[0])
        w_ih, w_hh, b_ih, b_hh = w_ih[order], w_hh[order], bias[0][order], bias[1][order]
    else:
        b_ih, b_hh = bias, np.zeros_like(bias)
    sfx = "" if layer_index is None else _torch_suffix({}, prefix, layer_index, owner)
    return {f"{prefix}weight_ih{sfx}": np.ascontiguousarray(w_ih), f"{prefix}weight_hh{sfx}": np.ascontiguousarray(w_hh),
            f"{prefix}bias_ih{sfx}": b_ih, f"{prefix}bias_hh{sfx}": b_hh}


def load_torch_weights(layer, source, *, layer_index=0, prefix=""):
    """Load PyTorch weights into the minidl ``Dense``, cell or ``RNN`` ``layer`` (in place, in
    its dtype); ``source``, ``layer_index``, ``prefix`` as in ``from_torch``. Returns ``layer``.

    The kind comes from ``layer``; a module of another kind, an ``nn.RNN`` whose
    ``nonlinearity`` differs from the cell's ``activation``, or a bias present on one
    side only is a ``ValueError``.
    """
    owner = "load_torch_weights"
    kind = layer_kind(layer, owner)
    _, module_kind, module = _torch_state(source, owner)
    if module is not None:
        resolve_kind(kind, module_kind, owner)
        act = getattr(module, "nonlinearity", None)
        cell = getattr(layer, "cell", layer)
        if kind == "rnn" and act is not None and act != cell.activation:
            raise ValueError(f"{owner}: the PyTorch module uses nonlinearity={act!r} but the cell has "
                             f"activation={cell.activation!r}")
    return load(layer, kind, from_torch(source, kind, layer_index=layer_index, prefix=prefix), "PyTorch", owner)


