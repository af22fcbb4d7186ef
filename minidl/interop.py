"""Weight conversion between minidl and PyTorch / Keras layers, on plain arrays.

minidl keeps Keras' layout (``x @ kernel``, kernels ``(in, out)``), so Keras
weights load as they are; PyTorch stores ``(out, in)`` matrices, two biases per
recurrent layer and, for the GRU, another gate order. The functions here do the
conversion in both directions; ``torch`` and ``keras`` are never imported (a
tensor is converted with ``.detach().cpu().numpy()``, a module through its
``state_dict()`` / ``get_weights()``).

Kinds (``kind=``): ``"dense"`` (``nn.Linear``, ``keras.layers.Dense``), ``"rnn"``
(``nn.RNN``/``nn.RNNCell``, ``SimpleRNN``), ``"lstm"``, ``"gru"``. Aliases
``"linear"``, ``"simple_rnn"`` and class names are accepted; when ``kind`` is None
it is read from the module's class or from the array shapes.

PyTorch ``<->`` minidl (``H`` hidden size; ``sfx`` is ``_l{layer_index}``, or empty
for ``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell``)::

    kernel            = weight_ih{sfx}.T             (GRU: row blocks r, z, n -> z, r, n first)
    recurrent_kernel  = weight_hh{sfx}.T
    bias (RNN, LSTM)  = bias_ih{sfx} + bias_hh{sfx}   (export: bias_ih = bias, bias_hh = 0)
    bias (GRU)        = [bias_ih{sfx}; bias_hh{sfx}]  (each reordered to z, r, n)
    Dense kernel, bias = weight.T, bias

A module built with ``bias=False`` (no bias entries) converts to zero biases. Not
convertible: ``proj_size > 0`` LSTMs and the reverse direction of bidirectional
modules (minidl has no such layers); both are a ``ValueError``.
"""

from collections.abc import Mapping

import numpy as np

from ._checks import as_real_array, fmt_shape, non_negative_int
from .layers import RNN, Dense, GRUCell, Layer, LSTMCell, RNNCell

__all__ = ["from_torch", "to_torch", "from_keras", "to_keras", "load_torch_weights", "load_keras_weights"]

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_ALIASES = {
    "dense": "dense", "linear": "dense", "rnn": "rnn", "simplernn": "rnn", "simple_rnn": "rnn",
    "lstm": "lstm", "gru": "gru",
}


# ---- helpers -------------------------------------------------------------------------
def _array(value, name, owner):
    """A torch tensor or array-like as a real numeric ndarray, dtype kept."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return as_real_array(value, repr(name), owner)


def _prefix(prefix, owner):
    if not isinstance(prefix, str):
        raise TypeError(f"{owner}: prefix must be a str, got {type(prefix).__name__}")
    return prefix


def _kind_name(kind, owner):
    if not isinstance(kind, str):
        raise TypeError(f"{owner}: kind must be a str, got {type(kind).__name__}")
    key = kind.lower()
    if key.endswith("cell") and key != "cell":
        key = key[:-4]
    if key not in _ALIASES:
        raise ValueError(f"{owner}: unknown kind {kind!r}; expected one of 'dense', 'rnn', 'lstm', 'gru'")
    return _ALIASES[key]


def _resolve_kind(kind, inferred, owner):
    """The explicit ``kind`` (checked against ``inferred`` when both are known) or ``inferred``."""
    if kind is None:
        if inferred is None:
            raise ValueError(f"{owner}: cannot tell the layer kind; pass kind='dense', 'rnn', 'lstm' or 'gru'")
        return inferred
    kind = _kind_name(kind, owner)
    if inferred is not None and inferred != kind:
        raise ValueError(f"{owner}: kind={kind!r} does not match the weights, which are those of a {inferred!r} layer")
    return kind


def _gates_of(recurrent, owner, what):
    """Gate count from a recurrent matrix whose long side is ``g * H`` and short side ``H``."""
    if recurrent.ndim != 2 or min(recurrent.shape) == 0 or max(recurrent.shape) % min(recurrent.shape):
        raise ValueError(f"{owner}: {what} must be (H, g*H) or (g*H, H), got shape {fmt_shape(recurrent.shape)}")
    g = max(recurrent.shape) // min(recurrent.shape)
    for kind, n in _GATES.items():
        if n == g:
            return kind
    raise ValueError(f"{owner}: {what} of shape {fmt_shape(recurrent.shape)} has {g} gate blocks; "
                     "expected 1 (RNN), 3 (GRU) or 4 (LSTM)")


def _expect(arr, shape, name, owner):
    if arr.shape != shape:
        raise ValueError(f"{owner}: {name!r} expected shape {fmt_shape(shape)}, got {fmt_shape(arr.shape)}")


def _gru_order(H):
    """Index swapping the first two gate blocks: PyTorch r, z, n <-> minidl z, r, n (its own inverse)."""
    return np.r_[H:2 * H, 0:H, 2 * H:3 * H]


def _layout_kind(kernel, rec, kind, inferred, owner, names):
    """The kind of minidl-layout weights (``x @ kernel``): ``kind`` checked against ``inferred``
    (None: read from ``rec``, no ``rec`` being a Dense). ``names`` of kernel, rec, bias for errors."""
    if kernel.ndim != 2:
        raise ValueError(f"{owner}: {names[0]!r} must be (in, out), got shape {fmt_shape(kernel.shape)}")
    if inferred is None:
        inferred = "dense" if rec is None else _gates_of(rec, owner, names[1])
    kind = _resolve_kind(kind, inferred, owner)
    if kind == "dense" and rec is not None:
        raise ValueError(f"{owner}: a Dense layer has no {names[1]!r}")
    if kind != "dense" and rec is None:
        raise ValueError(f"{owner}: a {kind!r} layer needs a {names[1]!r}")
    return kind


def _checked_layout(kind, kernel, rec, bias, owner, names):
    """minidl-layout weights ``{"kernel", "recurrent_kernel", "bias"}`` (copies) after checking every
    shape; a recurrent layer without bias gets zeros, a Dense none."""
    if kind == "dense":
        out = {"kernel": kernel.copy()}
        if bias is not None:
            _expect(bias, (kernel.shape[1],), names[2], owner)
            out["bias"] = bias.copy()
        return out
    H = rec.shape[0] if rec.ndim == 2 else -1
    G = _GATES[kind] * H
    _expect(rec, (H, G), names[1], owner)
    _expect(kernel, (kernel.shape[0], G), names[0], owner)
    bias_shape = (2, G) if kind == "gru" else (G,)
    bias = np.zeros(bias_shape, kernel.dtype) if bias is None else bias.copy()
    _expect(bias, bias_shape, names[2], owner)
    return {"kernel": kernel.copy(), "recurrent_kernel": rec.copy(), "bias": bias}


def _layer_kind(layer, owner):
    """The kind of a minidl Dense, cell or RNN, or a ``TypeError``."""
    cell = layer.cell if isinstance(layer, RNN) else layer
    for cls, kind in ((Dense, "dense"), (RNNCell, "rnn"), (LSTMCell, "lstm"), (GRUCell, "gru")):
        if isinstance(cell, cls):
            return kind
    raise TypeError(f"{owner}: expected a minidl Dense, RNNCell, LSTMCell, GRUCell or RNN, got {type(layer).__name__}")


def _minidl_arrays(source, owner):
    """``{kernel, recurrent_kernel?, bias?}`` arrays and the kind (if known) of a minidl layer or state dict."""
    if isinstance(source, Layer):
        kind = _layer_kind(source, owner)
        layer = source.cell if isinstance(source, RNN) else source
        return {k: p.data for k, p in layer.named_parameters()}, kind
    if not isinstance(source, Mapping):
        raise TypeError(f"{owner}: expected a minidl layer or its state dict, got {type(source).__name__}")
    sd = dict(source)
    if sd and all(isinstance(k, str) and k.startswith("cell.") for k in sd):  # an RNN's state dict
        sd = {k[5:]: v for k, v in sd.items()}
    unknown = sorted(set(sd) - {"kernel", "recurrent_kernel", "bias"})
    if unknown or "kernel" not in sd:
        raise ValueError(f"{owner}: expected the keys 'kernel', 'recurrent_kernel' (recurrent layers), 'bias', "
                         f"got {sorted(sd)}")
    return {k: _array(v, k, owner) for k, v in sd.items()}, None


def _load(layer, kind, converted, framework, owner):
    """``layer.load_state_dict`` of the converted arrays (``cell.``-prefixed for an RNN)."""
    if kind == "dense" and ("bias" in converted) != (layer.bias is not None):
        raise ValueError(f"{owner}: the {framework} weights {'have' if 'bias' in converted else 'have no'} bias but "
                         f"{layer!r} {'has none' if layer.bias is None else 'has one'}")
    if kind != "dense" and hasattr(layer, "cell"):
        converted = {f"cell.{k}": v for k, v in converted.items()}
    layer.load_state_dict(converted)
    return layer


# ---- PyTorch -------------------------------------------------------------------------
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
    sd = {k: _array(v, k, owner) for k, v in source.items()}
    kind = None
    if module is not None:
        try:
            kind = _kind_name(type(module).__name__, owner)
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
    prefix = _prefix(prefix, owner)
    if module_kind is None and f"{prefix}weight" in sd and f"{prefix}weight_ih" not in sd:
        module_kind = "dense"
    if module_kind == "dense" or (kind is not None and _kind_name(kind, owner) == "dense"):
        kind = _resolve_kind(kind, module_kind, owner)
        weight = _take(sd, f"{prefix}weight", owner)
        if weight.ndim != 2:
            raise ValueError(f"{owner}: {prefix + 'weight'!r} must be (out, in), got shape {fmt_shape(weight.shape)}")
        names = (prefix + "weight", None, prefix + "bias")
        return _checked_layout("dense", weight.T, None, sd.get(prefix + "bias"), owner, names)

    sfx = _torch_suffix(sd, prefix, layer_index, owner)
    names = {n: f"{prefix}{n}{sfx}" for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    if f"{prefix}weight_hr{sfx}" in sd:
        raise ValueError(f"{owner}: {prefix}weight_hr{sfx!r} found: LSTMs with proj_size > 0 have no minidl equivalent")
    if f"{names['weight_ih']}_reverse" in sd:
        raise ValueError(f"{owner}: the module is bidirectional ({names['weight_ih']}_reverse found); minidl "
                         "converts unidirectional modules only")
    w_ih, w_hh = _take(sd, names["weight_ih"], owner), _take(sd, names["weight_hh"], owner)
    kind = _resolve_kind(kind, module_kind or _gates_of(w_hh, owner, names["weight_hh"]), owner)
    if w_hh.ndim != 2:
        raise ValueError(f"{owner}: {names['weight_hh']!r} must be 2-D, got shape {fmt_shape(w_hh.shape)}")
    H = w_hh.shape[1]
    G = _GATES[kind] * H
    _expect(w_hh, (G, H), names["weight_hh"], owner)
    if w_ih.ndim != 2 or w_ih.shape[0] != G:
        raise ValueError(f"{owner}: {names['weight_ih']!r} expected shape ({G}, input_size), got {fmt_shape(w_ih.shape)}")
    has = [names[b] in sd for b in ("bias_ih", "bias_hh")]
    if any(has) and not all(has):
        missing = names["bias_hh"] if has[0] else names["bias_ih"]
        raise ValueError(f"{owner}: the state dict has no entry {missing!r} (expected both biases or neither)")
    dtype = np.result_type(w_ih, w_hh)
    b_ih, b_hh = (sd[names[b]] if all(has) else np.zeros(G, dtype) for b in ("bias_ih", "bias_hh"))
    _expect(b_ih, (G,), names["bias_ih"], owner)
    _expect(b_hh, (G,), names["bias_hh"], owner)
    if kind == "gru":
        order = _gru_order(H)
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
    arrays, layer_kind = _minidl_arrays(source, owner)
    prefix = _prefix(prefix, owner)
    names = ("kernel", "recurrent_kernel", "bias")
    kernel, rec, bias = (arrays.get(k) for k in names)
    kind = _layout_kind(kernel, rec, kind, layer_kind, owner, names)
    checked = _checked_layout(kind, kernel, rec, bias, owner, names)
    if kind == "dense":
        out = {f"{prefix}weight": np.ascontiguousarray(kernel.T)}
        if "bias" in checked:
            out[f"{prefix}bias"] = checked["bias"]
        return out
    w_ih, w_hh, bias = checked["kernel"].T, checked["recurrent_kernel"].T, checked["bias"]
    if kind == "gru":
        order = _gru_order(rec.shape[0])
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
    kind = _layer_kind(layer, owner)
    _, module_kind, module = _torch_state(source, owner)
    if module is not None:
        _resolve_kind(kind, module_kind, owner)
        act = getattr(module, "nonlinearity", None)
        cell = getattr(layer, "cell", layer)
        if kind == "rnn" and act is not None and act != cell.activation:
            raise ValueError(f"{owner}: the PyTorch module uses nonlinearity={act!r} but the cell has "
                             f"activation={cell.activation!r}")
    return _load(layer, kind, from_torch(source, kind, layer_index=layer_index, prefix=prefix), "PyTorch", owner)


# ---- Keras ---------------------------------------------------------------------------
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
        module_kind = _kind_name(type(layer).__name__, owner)
        if getattr(layer, "reset_after", True) is False:
            raise ValueError(f"{owner}: GRU(reset_after=False) computes another candidate than minidl's GRUCell; "
                             "only reset_after=True converts")
        weights = layer.get_weights()
    if isinstance(weights, Mapping) or not isinstance(weights, (list, tuple)):
        raise TypeError(f"{owner}: expected a list of arrays (layer.get_weights()), got {type(weights).__name__}")
    arrays = [_array(w, f"weights[{i}]", owner) for i, w in enumerate(weights)]
    if not 1 <= len(arrays) <= 3 or arrays[0].ndim != 2:
        raise ValueError(f"{owner}: expected [kernel, (recurrent_kernel,) (bias)] with a 2-D kernel, "
                         f"got shapes {[a.shape for a in arrays]}")
    if len(arrays) == 2 and arrays[1].ndim == 1:  # a Dense: [kernel, bias]
        arrays = [arrays[0], None, arrays[1]]
    kernel, rec, bias = arrays + [None] * (3 - len(arrays))
    bias_name = "weights[1] (bias)" if rec is None else "weights[2] (bias)"
    names = ("weights[0] (kernel)", "weights[1] (recurrent_kernel)", bias_name)
    kind = _layout_kind(kernel, rec, kind, module_kind, owner, names)
    if kind == "gru" and bias is not None and bias.shape == (rec.shape[-1],):
        raise ValueError(f"{owner}: a GRU bias of shape {fmt_shape(bias.shape)} comes from GRU(reset_after=False), "
                         "which computes another candidate than minidl's GRUCell; only reset_after=True converts")
    return _checked_layout(kind, kernel, rec, bias, owner, names)


def to_keras(source, kind=None):
    """minidl weights -> the list Keras' ``layer.set_weights`` takes (copies).

    ``source``: a minidl ``Dense``, cell or ``RNN``, or its state dict. Gives
    ``[kernel, bias]`` (``[kernel]`` without bias) for ``Dense`` and
    ``[kernel, recurrent_kernel, bias]`` otherwise; build the Keras GRU with
    ``reset_after=True`` (its default).
    """
    owner = "to_keras"
    arrays, layer_kind = _minidl_arrays(source, owner)
    order = ("kernel", "recurrent_kernel", "bias")
    checked = from_keras([arrays[k] for k in order if k in arrays], kind if kind is not None else layer_kind)
    return [checked[k] for k in order if k in checked]


def load_keras_weights(layer, weights):
    """Load Keras weights (``from_keras``'s input) into the minidl ``Dense``, cell or ``RNN``
    ``layer`` (in place, in its dtype). Returns ``layer``."""
    owner = "load_keras_weights"
    kind = _layer_kind(layer, owner)
    return _load(layer, kind, from_keras(weights, kind), "Keras", owner)
