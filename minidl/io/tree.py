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
"""

import numpy as np


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
