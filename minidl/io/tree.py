"""The tree codec: nested state (dicts, lists, arrays, numbers) as npz members plus JSON.

An optimizer's ``state_dict`` or a generator's state is a tree of dicts, lists and
tuples whose leaves are arrays, numbers, strings or None. ``encode_tree`` moves every
array into a flat ``{key: ndarray}`` dict (the npz members, keyed by their path in the
tree) and returns a JSON-able tree that refers to them; ``decode_tree`` puts it back
together. The encoded forms::

    ndarray     {"__array__": "<key>"}
    dict        {"__dict__": [[key, value], ...]}      (keys keep their type and order)
    list/tuple  {"__list__": [value, ...], "tuple": bool}
    other       the JSON value itself (numpy scalars become Python numbers)

``checkpoint_budget`` says, from a checkpoint's trees and the model it is loaded into,
which members the file may hold and how large they may be, so that nothing else is
inflated (``read_archive``'s ``budget``).
"""

import numpy as np

from .archive import Budget


def encode_tree(obj, prefix, arrays):
    """JSON-able tree for ``obj``; its ndarrays go into ``arrays`` under path-like keys."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, encode_tree(v, f"{prefix}/{k}", arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [encode_tree(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)],
                "tuple": isinstance(obj, tuple)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"checkpoint: cannot store a value of type {type(obj).__name__} at {prefix!r}")


def decode_tree(tree, arrays, where):
    """Inverse of ``encode_tree``; a reference to a missing array raises ValueError naming ``where``."""
    if isinstance(tree, dict):
        if "__array__" in tree:
            key = tree["__array__"]
            if key not in arrays:
                raise ValueError(f"{where}: the checkpoint refers to a missing array {key!r}")
            return arrays[key]
        if "__dict__" in tree:
            return {k: decode_tree(v, arrays, where) for k, v in tree["__dict__"]}
        if "__list__" in tree:
            items = [decode_tree(v, arrays, where) for v in tree["__list__"]]
            return tuple(items) if tree.get("tuple") else items
        raise ValueError(f"{where}: malformed checkpoint entry {sorted(tree)}")
    return tree


STATE_SLOTS = 8  # float64 arrays a checkpoint's other state may hold per model parameter element
GENERATOR_BYTES = 2**20  # room for generator states (numpy's MT19937 key: 2.5 KiB) and 0-d arrays


def array_keys(tree):
    """Every array key a JSON tree refers to (``{"__array__": key}`` nodes), walked without recursion."""
    keys, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("__array__"), str):
                keys.append(node["__array__"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return keys


def checkpoint_budget(model):
    """The ``budget`` for ``read_archive`` of a checkpoint to be loaded into ``model``'s trainer.

    A checkpoint may hold only the arrays its JSON trees refer to. Each model parameter
    ``model/<name>`` of ``model`` may hold its element count in float64 (a float32 <->
    float64 mismatch is refused later, by name); all other arrays together (optimizer
    moments, generator states, parameters ``model`` does not have) at most ``STATE_SLOTS``
    float64 arrays per parameter element plus ``GENERATOR_BYTES``. Adam keeps two arrays
    per parameter (AMSGrad three, RMSprop up to three), so built-in optimizers are far
    inside it, and a file declaring more is refused before anything is inflated. A
    checkpoint saved inside an epoch also holds the epoch's permutation, ``position/order``:
    8 bytes per sequence, as many as its header's ``n`` (which, like the architecture, the
    header states; see ``_permutation_length``).
    """
    sizes = {f"model/{name}": p.data.size for name, p in model.named_parameters()}
    other = STATE_SLOTS * 8 * sum(sizes.values()) + GENERATOR_BYTES

    def budget(meta):
        members = {key: (8 * sizes[key] if key in sizes else other, None) for key in array_keys(meta)}
        order = 8 * _permutation_length(meta.get("position"))
        if order and "position/order" in members:
            members["position/order"] = (order, None)
        return Budget(members, 8 * sum(sizes.values()) + other + order)

    return budget


MAX_SEQUENCES = 2**32  # the most sequences a mid-epoch checkpoint's permutation may order


def _permutation_length(position):
    """``n``, the sequences of the epoch a position tree (``encode_tree`` of the trainer's
    position) was saved in, or 0 when the tree holds no such number (it is checked, by name,
    after loading)."""
    entries = position.get("__dict__") if isinstance(position, dict) else None
    if not isinstance(entries, list):
        return 0
    for entry in entries:
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == "n":
            n = entry[1]
            return n if isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_SEQUENCES else 0
    return 0
