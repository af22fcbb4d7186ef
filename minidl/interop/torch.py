"""PyTorch <-> minidl weights (see the package docstring for the layouts)."""

from collections.abc import Mapping

import numpy as np

from .._checks import fmt_shape, non_negative_int, one_of
from ..layers import Bidirectional, Layer
from ._common import GATES, array, checked_layout, expect, gates_of, gru_order, kind_name, layer_kind, layout_kind
from ._common import directions, embedding_table, load_all, minidl_arrays, prefix_of, resolve_kind


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
        if not isinstance(source, Mapping):
            raise TypeError(f"{owner}: {type(module).__name__}.state_dict() returned a {type(source).__name__}; "
                            "expected a mapping of names to tensors, as a PyTorch module's state_dict() returns")
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


def from_torch(source, kind=None, *, layer_index=0, prefix="", direction=None):
    """PyTorch weights -> minidl ``{"kernel", "recurrent_kernel", "bias"}`` (``Dense``: ``kernel``, ``bias``;
    ``Embedding``: ``embeddings``).

    Args:
        source: a PyTorch module (``nn.Linear``, ``nn.Embedding``, ``nn.RNN``, ``nn.LSTM``,
            ``nn.GRU`` or a Cell version) or its ``state_dict()``, with tensors or numpy arrays.
        kind: ``"dense"``, ``"embedding"``, ``"rnn"``, ``"lstm"``, ``"gru"``; None reads it from
            the module class or the shapes (an explicit kind is checked against them; a state
            dict of an ``nn.Embedding`` needs ``kind="embedding"``).
        layer_index: which layer ``k`` of a multi-layer module (``weight_ih_l{k}``);
            None for the Cell modules' keys (found automatically when ``k == 0``).
        prefix: prepended to every key, for a submodule in a larger state dict
            (``"encoder."``); other keys are ignored.
        direction: for a bidirectional module, ``"forward"`` or ``"reverse"`` (the keys
            ``..._l{k}_reverse``); None refuses a bidirectional module (load both directions
            into a ``Bidirectional`` with ``load_torch_weights``).

    Returns:
        A dict for ``load_state_dict`` of the minidl cell, ``Dense`` or ``Embedding``
        (prefix the keys with ``"cell."`` for an ``RNN``).

    Raises:
        TypeError: ``source`` is neither a module nor a state dict, or a value is not an
            array or tensor.
        ValueError: a missing key or a wrong shape (named), an unknown ``kind`` or one
            that contradicts the module, an ``nn.Embedding`` with ``max_norm``, an LSTM
            with ``proj_size``, a bidirectional module without ``direction`` (or a
            ``direction`` without one), or a bias on one side only.
    """
    owner = "from_torch"
    sd, module_kind, module = _torch_state(source, owner)
    prefix = prefix_of(prefix, owner)
    if module_kind == "embedding" or (kind is not None and kind_name(kind, owner) == "embedding"):
        resolve_kind(kind, module_kind, owner)
        if getattr(module, "max_norm", None) is not None:
            raise ValueError(f"{owner}: nn.Embedding(max_norm={module.max_norm}) rescales rows at lookup; "
                             "minidl's Embedding does not, so only max_norm=None converts")
        return {"embeddings": embedding_table(_take(sd, f"{prefix}weight", owner), prefix + "weight", owner)}
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
    if f"{prefix}weight_hr{sfx}" in sd:
        raise ValueError(f"{owner}: {prefix}weight_hr{sfx!r} found: LSTMs with proj_size > 0 have no minidl equivalent")
    bidirectional = f"{prefix}weight_ih{sfx}_reverse" in sd
    if direction is None and bidirectional:
        raise ValueError(f"{owner}: the module is bidirectional ({prefix}weight_ih{sfx}_reverse found); minidl "
                         "converts unidirectional modules only here: pass direction='forward' or 'reverse', or "
                         "load both into a Bidirectional with load_torch_weights")
    if direction is not None:
        one_of(direction, ("forward", "reverse"), "direction", owner)
        if not bidirectional:
            raise ValueError(f"{owner}: direction={direction!r} needs a bidirectional module "
                             f"({prefix}weight_ih{sfx}_reverse not found)")
        sfx += "_reverse" if direction == "reverse" else ""
    names = {n: f"{prefix}{n}{sfx}" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
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


def to_torch(source, kind=None, *, layer_index=0, prefix="", direction=None):
    """minidl weights -> a PyTorch state dict of numpy arrays (the inverse of ``from_torch``).

    Args:
        source: a minidl ``Dense``, ``Embedding``, cell, ``RNN`` or ``Bidirectional``, or a
            state dict with the keys ``kernel``, ``recurrent_kernel``, ``bias`` (``"cell."``-prefixed
            keys too) or ``embeddings``.
        kind: as in ``from_torch``; None reads it from the layer or the shapes.
        layer_index: ``k`` of the keys ``weight_ih_l{k}``; None gives the Cell modules' keys.
        prefix: prepended to every key.
        direction: ``"reverse"`` names the keys ``..._l{k}_reverse`` (one direction of a
            bidirectional module). A ``Bidirectional`` gives both directions' keys, for an
            ``nn.LSTM/GRU/RNN(..., bidirectional=True)`` layer.

    The single bias of an RNN or LSTM cell goes to ``bias_ih``, zeros to ``bias_hh``.

    Returns:
        ``{torch key: ndarray}``; load it with
        ``module.load_state_dict({k: torch.from_numpy(v) for k, v in d.items()})``.

    Raises:
        TypeError: ``source`` is neither a supported minidl layer nor a state dict.
        ValueError: an unknown ``kind`` or one that contradicts ``source``, missing or
            misshapen arrays, ``direction`` not ``"forward"`` / ``"reverse"``,
            ``direction="reverse"`` or a ``Bidirectional`` with ``layer_index=None``, or
            a ``Bidirectional`` that does not concatenate.
    """
    owner = "to_torch"
    if isinstance(source, Bidirectional):
        fwd, bwd = _concatenated_directions(source, owner)
        if layer_index is None:
            raise ValueError(f"{owner}: a Bidirectional converts to the keys of a multi-layer module; "
                             "layer_index must be an int, got None")
        return {**to_torch(fwd, kind, layer_index=layer_index, prefix=prefix),
                **to_torch(bwd, kind, layer_index=layer_index, prefix=prefix, direction="reverse")}
    arrays, layer_kind = minidl_arrays(source, owner)
    prefix = prefix_of(prefix, owner)
    if layer_kind == "embedding" or (kind is not None and kind_name(kind, owner) == "embedding"):
        resolve_kind(kind, layer_kind, owner)
        return {f"{prefix}weight": embedding_table(arrays["embeddings"], "embeddings", owner)}
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
    if direction is not None and one_of(direction, ("forward", "reverse"), "direction", owner) == "reverse":
        if layer_index is None:
            raise ValueError(f"{owner}: direction='reverse' names the keys of a multi-layer module; "
                             "layer_index must be an int, got None")
        sfx += "_reverse"
    return {f"{prefix}weight_ih{sfx}": np.ascontiguousarray(w_ih), f"{prefix}weight_hh{sfx}": np.ascontiguousarray(w_hh),
            f"{prefix}bias_ih{sfx}": b_ih, f"{prefix}bias_hh{sfx}": b_hh}


def load_torch_weights(layer, source, *, layer_index=0, prefix=""):
    """Load PyTorch weights into the minidl ``Dense``, ``Embedding``, cell, ``RNN`` or
    ``Bidirectional`` ``layer`` (in place, in its dtype). Returns ``layer``.

    A ``Bidirectional(RNN(...))`` takes a bidirectional module (``bidirectional=True``):
    its ``forward_layer`` the forward direction's weights, its ``backward_layer`` the
    ``_reverse`` ones; its ``merge_mode`` must be ``"concat"`` (what PyTorch computes).
    The kind comes from ``layer``; a module of another kind, an ``nn.RNN`` whose
    ``nonlinearity`` differs from the cell's ``activation``, or a bias present on one
    side only is a ``ValueError``.

    Args:
        layer: the minidl ``Dense``, ``Embedding``, cell, ``RNN`` or ``Bidirectional`` to fill.
        source: a PyTorch module or its ``state_dict()``, as in ``from_torch``.
        layer_index: int, which layer ``k`` of a multi-layer module (``weight_ih_l{k}``),
            or None for the Cell modules' keys; default 0 (as in ``from_torch``).
        prefix: str prepended to every key, for a submodule in a larger state dict
            (``"encoder."``); default ``""``.

    Returns:
        ``layer``, with the weights loaded; nothing changes unless every array fits.

    Raises:
        TypeError: ``layer`` is not a supported minidl layer, or ``source`` is neither a
            module nor a state dict.
        ValueError: a module of another kind, another nonlinearity, a ``Bidirectional``
            that does not concatenate, or a missing or misshapen key.
    """
    owner = "load_torch_weights"
    if isinstance(layer, Bidirectional):
        fwd, bwd = _concatenated_directions(layer, owner)
        targets = ((fwd, "forward"), (bwd, "reverse"))
    else:
        targets = ((layer, None),)
    kind = layer_kind(targets[0][0], owner)
    _, module_kind, module = _torch_state(source, owner)
    if module is not None:
        resolve_kind(kind, module_kind, owner)
        act = getattr(module, "nonlinearity", None)
        cell = getattr(targets[0][0], "cell", targets[0][0])
        if kind == "rnn" and act is not None and act != cell.activation:
            raise ValueError(f"{owner}: the PyTorch module uses nonlinearity={act!r} but the cell has "
                             f"activation={cell.activation!r}")
    # nothing changes unless every direction fits
    converted = [(target, from_torch(source, kind, layer_index=layer_index, prefix=prefix, direction=direction))
                 for target, direction in targets]
    return load_all(layer, converted, kind, "PyTorch", owner)


def _concatenated_directions(layer, owner):
    """``(forward RNN, backward RNN)`` of a ``Bidirectional`` that merges as PyTorch does (concat)."""
    if layer.merge_mode != "concat":
        raise ValueError(f"{owner}: a bidirectional PyTorch module concatenates its directions; "
                         f"{layer!r} merges them with merge_mode={layer.merge_mode!r}")
    return directions(layer, owner)
