"""Shared pieces of the PyTorch and Keras converters: kinds, shape checks, the minidl layout."""

from collections.abc import Mapping

import numpy as np

from .._checks import as_real_array, fmt_shape
from ..layers import RNN, Bidirectional, Dense, Embedding, GRUCell, Layer, LSTMCell, RNNCell

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
ALIASES = {
    "dense": "dense", "linear": "dense", "rnn": "rnn", "simplernn": "rnn", "simple_rnn": "rnn",
    "lstm": "lstm", "gru": "gru", "embedding": "embedding",
}
# What minidl's cells compute with: RNNCell's activation is its own, LSTM and GRU cells are fixed.
FIXED_ACTIVATIONS = {"lstm": ("tanh", "sigmoid"), "gru": ("tanh", "sigmoid")}


def array(value, name, owner):
    """A torch tensor or array-like as a real numeric ndarray, dtype kept."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return as_real_array(value, repr(name), owner)


def prefix_of(prefix, owner):
    if not isinstance(prefix, str):
        raise TypeError(f"{owner}: prefix must be a str, got {type(prefix).__name__}")
    return prefix


def kind_name(kind, owner):
    if not isinstance(kind, str):
        raise TypeError(f"{owner}: kind must be a str, got {type(kind).__name__}")
    key = kind.lower()
    if key.endswith("cell") and key != "cell":
        key = key[:-4]
    if key not in ALIASES:
        raise ValueError(f"{owner}: unknown kind {kind!r}; expected one of 'dense', 'rnn', 'lstm', 'gru', 'embedding'")
    return ALIASES[key]


def resolve_kind(kind, inferred, owner):
    """The explicit ``kind`` (checked against ``inferred`` when both are known) or ``inferred``."""
    if kind is None:
        if inferred is None:
            raise ValueError(f"{owner}: cannot tell the layer kind; pass kind='dense', 'rnn', 'lstm' or 'gru'")
        return inferred
    kind = kind_name(kind, owner)
    if inferred is not None and inferred != kind:
        raise ValueError(f"{owner}: kind={kind!r} does not match the weights, which are those of a {inferred!r} layer")
    return kind


def gates_of(recurrent, owner, what):
    """Gate count from a recurrent matrix whose long side is ``g * H`` and short side ``H``."""
    if recurrent.ndim != 2 or min(recurrent.shape) == 0 or max(recurrent.shape) % min(recurrent.shape):
        raise ValueError(f"{owner}: {what} must be (H, g*H) or (g*H, H), got shape {fmt_shape(recurrent.shape)}")
    g = max(recurrent.shape) // min(recurrent.shape)
    for kind, n in GATES.items():
        if n == g:
            return kind
    raise ValueError(f"{owner}: {what} of shape {fmt_shape(recurrent.shape)} has {g} gate blocks; "
                     "expected 1 (RNN), 3 (GRU) or 4 (LSTM)")


def expect(arr, shape, name, owner):
    if arr.shape != shape:
        raise ValueError(f"{owner}: {name!r} expected shape {fmt_shape(shape)}, got {fmt_shape(arr.shape)}")


def gru_order(H):
    """Index swapping the first two gate blocks: PyTorch r, z, n <-> minidl z, r, n (its own inverse)."""
    return np.r_[H:2 * H, 0:H, 2 * H:3 * H]


def layout_kind(kernel, rec, kind, inferred, owner, names):
    """The kind of minidl-layout weights (``x @ kernel``): ``kind`` checked against ``inferred``
    (None: read from ``rec``, no ``rec`` being a Dense). ``names`` of kernel, rec, bias for errors."""
    if kernel.ndim != 2:
        raise ValueError(f"{owner}: {names[0]!r} must be (in, out), got shape {fmt_shape(kernel.shape)}")
    if inferred is None:
        inferred = "dense" if rec is None else gates_of(rec, owner, names[1])
    kind = resolve_kind(kind, inferred, owner)
    if kind == "dense" and rec is not None:
        raise ValueError(f"{owner}: a Dense layer has no {names[1]!r}")
    if kind != "dense" and rec is None:
        raise ValueError(f"{owner}: a {kind!r} layer needs a {names[1]!r}")
    return kind


def checked_layout(kind, kernel, rec, bias, owner, names):
    """minidl-layout weights ``{"kernel", "recurrent_kernel", "bias"}`` (copies) after checking every
    shape; a recurrent layer without bias gets zeros, a Dense none."""
    if kind == "dense":
        out = {"kernel": kernel.copy()}
        if bias is not None:
            expect(bias, (kernel.shape[1],), names[2], owner)
            out["bias"] = bias.copy()
        return out
    H = rec.shape[0] if rec.ndim == 2 else -1
    G = GATES[kind] * H
    expect(rec, (H, G), names[1], owner)
    expect(kernel, (kernel.shape[0], G), names[0], owner)
    bias_shape = (2, G) if kind == "gru" else (G,)
    bias = np.zeros(bias_shape, kernel.dtype) if bias is None else bias.copy()
    expect(bias, bias_shape, names[2], owner)
    return {"kernel": kernel.copy(), "recurrent_kernel": rec.copy(), "bias": bias}


def layer_kind(layer, owner):
    """The kind of a minidl Dense, Embedding, cell or RNN, or a ``TypeError``."""
    cell = layer.cell if isinstance(layer, RNN) else layer
    kinds = ((Dense, "dense"), (Embedding, "embedding"), (RNNCell, "rnn"), (LSTMCell, "lstm"), (GRUCell, "gru"))
    for cls, kind in kinds:
        if isinstance(cell, cls):
            return kind
    raise TypeError(f"{owner}: expected a minidl Dense, RNNCell, LSTMCell, GRUCell or RNN (or an Embedding, "
                    f"a Bidirectional), got {type(layer).__name__}")


def minidl_arrays(source, owner):
    """``{kernel, recurrent_kernel?, bias?}`` (``{embeddings}``) arrays and the kind (if known) of a
    minidl layer or state dict."""
    if isinstance(source, Layer):
        kind = layer_kind(source, owner)
        layer = source.cell if isinstance(source, RNN) else source
        return {k: p.data for k, p in layer.named_parameters()}, kind
    if not isinstance(source, Mapping):
        raise TypeError(f"{owner}: expected a minidl layer or its state dict, got {type(source).__name__}")
    sd = dict(source)
    if list(sd) == ["embeddings"]:
        return {"embeddings": embedding_table(sd["embeddings"], "embeddings", owner)}, "embedding"
    if sd and all(isinstance(k, str) and k.startswith("cell.") for k in sd):  # an RNN's state dict
        sd = {k[5:]: v for k, v in sd.items()}
    unknown = sorted(set(sd) - {"kernel", "recurrent_kernel", "bias"})
    if unknown or "kernel" not in sd:
        raise ValueError(f"{owner}: expected the keys 'kernel', 'recurrent_kernel' (recurrent layers), 'bias', "
                         f"or 'embeddings' alone, got {sorted(sd)}")
    return {k: array(v, k, owner) for k, v in sd.items()}, None


def embedding_table(value, name, owner):
    """An embedding table ``(num_embeddings, embedding_dim)`` (a copy), the same in all three libraries."""
    table = array(value, name, owner)
    if table.ndim != 2:
        raise ValueError(f"{owner}: {name!r} must be (num_embeddings, embedding_dim), got {fmt_shape(table.shape)}")
    return table.copy()


def directions(layer, owner):
    """``(forward RNN, backward RNN)`` of a minidl ``Bidirectional``."""
    if not isinstance(layer, Bidirectional):
        raise TypeError(f"{owner}: expected a minidl Bidirectional, got {type(layer).__name__}")
    return layer.forward_layer, layer.backward_layer


def check_activations(layer, kind, activation, recurrent_activation, framework, owner):
    """Refuse weights whose ``activation`` / ``recurrent_activation`` (names; None: not known)
    differ from what the cell of ``layer`` computes with."""
    if kind not in ("rnn", "lstm", "gru"):
        return
    cell = getattr(layer, "cell", layer)
    ours = FIXED_ACTIVATIONS[kind] if kind in FIXED_ACTIVATIONS else (cell.activation, None)
    for name, theirs, mine in (("activation", activation, ours[0]), ("recurrent_activation", recurrent_activation,
                                                                      ours[1])):
        if theirs is not None and mine is not None and theirs != mine:
            raise ValueError(f"{owner}: the {framework} layer uses {name}={theirs!r} but {cell!r} computes with "
                             f"{name}={mine!r}; weights trained for one do not work with the other")


def load(layer, kind, converted, framework, owner):
    """``layer.load_state_dict`` of the converted arrays (``cell.``-prefixed for an RNN); its errors
    (a wrong shape, a dtype other than float32/float64, NaN or inf, a float64 value beyond a
    float32 layer's range) come back naming ``owner`` and ``layer``."""
    if kind == "dense" and ("bias" in converted) != (layer.bias is not None):
        raise ValueError(f"{owner}: the {framework} weights {'have' if 'bias' in converted else 'have no'} bias but "
                         f"{layer!r} {'has none' if layer.bias is None else 'has one'}")
    if kind != "dense" and hasattr(layer, "cell"):
        converted = {f"cell.{k}": v for k, v in converted.items()}
    try:  # load_state_dict refuses non-float, non-finite and float32-overflowing weights, naming the entry
        layer.load_state_dict(converted)
    except (ValueError, TypeError) as err:
        raise type(err)(f"{owner}: the {framework} weights do not fit {layer!r}: {err}") from None
    return layer


def load_all(layer, converted, kind, framework, owner):
    """``load`` every ``(target, arrays)`` of ``converted`` (the parts of ``layer``); when one
    does not fit, ``layer`` is put back as it was (in place) before the error is raised."""
    before = layer.state_dict()
    try:
        for target, arrays in converted:
            load(target, kind, arrays, framework, owner)
    except (ValueError, TypeError):
        layer.load_state_dict(before)
        raise
    return layer
