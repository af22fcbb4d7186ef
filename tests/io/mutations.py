"""The damaged files of tests/io/test_fuzz.py: ways to break a good model file or checkpoint.

Each family takes the bytes of a good file and returns ``[(label, damaged bytes), ...]``,
deterministic for a given seed.
"""

import io
import json
import zipfile

import numpy as np
import pytest

from tests.io.zip_bombs import GIB, bomb, npy_header, raw_zip, stored


# ---- zip / npy / JSON helpers ------------------------------------------------------------------
def members_of(data):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def zipped(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def header_of(data):
    blob = members_of(data)["__config__.npy"]
    return json.loads(str(np.load(io.BytesIO(blob), allow_pickle=False)))


def rewrite(path, change):
    """Load the archive at ``path`` by hand, let ``change(members, header)`` edit its arrays and its
    JSON header, save it back."""
    with np.load(path, allow_pickle=False) as f:
        members = {k: f[k] for k in f.files}
    header = json.loads(str(members.pop("__config__")))
    change(members, header)
    with open(path, "wb") as fh:
        np.savez(fh, __config__=np.array(json.dumps(header)), **members)


def with_header(data, header=None, text=None, config_array=None):
    """The archive ``data`` with its ``__config__`` replaced (a dict, raw text or an array)."""
    members = members_of(data)
    if config_array is None:
        config_array = np.array(json.dumps(header) if text is None else text)
    members["__config__.npy"] = npy_bytes(config_array)
    return zipped(members)


def key_paths(tree, prefix=()):
    """Every key path in a JSON tree (dict keys and list indices)."""
    out = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for k, v in items:
        out.append(prefix + (k,))
        out.extend(key_paths(v, prefix + (k,)))
    return out


def edited_tree(tree, path, value, delete=False):
    tree = json.loads(json.dumps(tree))
    node = tree
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return tree


def bombs(data, param):
    """A good file's members plus (or with ``param`` replaced by) members that inflate to 1 GiB:
    every one must be refused from the zip directory, before it is inflated."""
    members = members_of(data)
    kept = [stored(n, b) for n, b in members.items()]
    without = [stored(n, b) for n, b in members.items() if n != param + ".npy"]
    true_size = len(members[param + ".npy"])
    huge = npy_header((GIB // 4,))
    return [
        ("not minidl: one 1 GiB member", raw_zip([bomb("data.npy")])),
        ("not minidl: a 1 GiB __config__", raw_zip([bomb("__config__.npy")])),
        ("a 1 GiB __config__", raw_zip([bomb("__config__.npy")] + [e for e in kept if e[0] != "__config__.npy"])),
        ("an extra 1 GiB member", raw_zip(kept + [bomb("junk.npy", prefix=huge)])),
        ("an extra 1 GiB parameter-like member", raw_zip(kept + [bomb("9.kernel.npy", prefix=huge)])),
        (f"{param} a 1 GiB array", raw_zip(without + [bomb(param + ".npy", prefix=huge)])),
        (f"{param} declares its true size but inflates to 1 GiB",
         raw_zip(without + [bomb(param + ".npy", prefix=huge, declared=true_size)])),
    ]


def bad_values(data, param):
    """``param`` replaced by a non-finite, a float32-overflowing or a differently typed array."""
    members = members_of(data)
    good = np.load(io.BytesIO(members[param + ".npy"]), allow_pickle=False)
    out = []
    for label, change in [("nan", lambda a: a.flat.__setitem__(0, np.nan)), ("inf", lambda a: a.flat.__setitem__(-1, np.inf)),
                          ("-inf", lambda a: a.fill(-np.inf))]:
        arr = good.copy()
        change(arr)
        out.append((f"{param} -> {label}", zipped({**members, param + ".npy": npy_bytes(arr)})))
    for label, arr in [("float64", good.astype(np.float64)), ("float64 beyond float32", np.full(good.shape, 1e39)),
                       ("int32", good.astype(np.int32)), ("big-endian", good.astype(good.dtype.newbyteorder(">")))]:
        out.append((f"{param} -> {label}", zipped({**members, param + ".npy": npy_bytes(arr)})))
    return out


MISSING = object()


BAD_VALUES = [
    MISSING, None, True, "x", "", -1, 0, 1, 1.5, -7.0, 10**12, 2**63, 10**30, 10**400,
    float("nan"), float("inf"), [], [1, 2], {}, {"a": 1}, {"__array__": "nope"}, {"__list__": 3},
    {"__dict__": [[1]]}, {"__dict__": 5}, {"class_name": "NoSuchLayer", "config": {}},
]


# ---- the mutations ---------------------------------------------------------------------------------


def truncations(data, seed, n):
    rng = np.random.default_rng(seed)
    cuts = {0, 1, 3, 4, 10, 30, len(data) - 1, len(data) - 22, len(data) - 23}
    cuts.update(int(c) for c in rng.integers(0, len(data), n - len(cuts)))
    return [(f"truncated at {c}", data[:c]) for c in sorted(cuts)]


def byte_flips(data, seed, n):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        buf = bytearray(data)
        k = int(rng.integers(1, 9))
        where = rng.integers(0, len(buf), k)
        for w in where:
            buf[w] ^= int(rng.integers(1, 256))
        out.append((f"flip #{i} at {sorted(int(w) for w in where)}", bytes(buf)))
    return out


def member_corruptions(data, seed):
    """Zip-level damage: CRC mismatches, corrupt deflate streams, damaged .npy headers and
    bodies (with a valid CRC), members that are not .npy files, duplicate and missing members."""
    rng = np.random.default_rng(seed)
    members = members_of(data)
    out = []
    for name, blob in members.items():
        # raw flip inside the stored member: the CRC no longer matches
        raw = bytearray(data)
        start = raw.find(blob)
        pos = start + int(rng.integers(0, len(blob)))
        raw[pos] ^= 0x5A
        out.append((f"{name}: stored bytes flipped (bad CRC)", bytes(raw)))
        # the same, compressed: a corrupt deflate stream or a bad CRC
        deflated = bytearray(zipped(members, zipfile.ZIP_DEFLATED))
        info = zipfile.ZipFile(io.BytesIO(bytes(deflated))).getinfo(name)
        body = info.header_offset + 30 + len(name.encode())
        deflated[body + int(rng.integers(0, max(info.compress_size, 1)))] ^= 0xFF
        out.append((f"{name}: deflated stream damaged", bytes(deflated)))
        # the .npy inside damaged, zip CRC valid
        for label, new in [
            ("npy magic", b"\x00" + blob[1:]),
            ("npy version 9", blob[:6] + b"\x09" + blob[7:]),
            ("npy header length huge", blob[:8] + b"\xff\xff" + blob[10:]),
            ("npy header garbage", blob[:10] + bytes(rng.integers(0, 256, 40, dtype=np.uint8)) + blob[50:]),
            ("npy descr", blob.replace(b"'descr': '<", b"'descr': '?", 1)),
            ("npy shape text", blob.replace(b"'shape': (", b"'shape': ([", 1)),
            ("npy huge shape", blob.replace(b"'shape': (", b"'shape': (10000000000000, ", 1)),
            ("npy negative shape", blob.replace(b"'shape': (", b"'shape': (-5, ", 1)),
            ("npy fortran order", blob.replace(b"False", b"Trux ", 1)),
            ("npy body truncated", blob[: len(blob) - 3]),
            ("npy body extended", blob + b"\x00" * 16),
            ("npy empty", b""),
        ]:
            out.append((f"{name}: {label}", zipped({**members, name: new})))
        out.append((f"{name}: renamed to .txt", zipped({(n[:-4] + ".txt" if n == name else n): b for n, b in members.items()})))
        out.append((f"{name}: missing", zipped({n: b for n, b in members.items() if n != name})))
    # a second entry of the same name (the later one wins in zipfile)
    with pytest.warns(UserWarning, match="Duplicate name"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, blob in members.items():
                zf.writestr(name, blob)
            zf.writestr("__config__.npy", npy_bytes(np.array("{}")))
    out.append(("duplicate __config__", buf.getvalue()))
    out.append(("empty zip archive", zipped({})))
    out.append(("a nested directory entry", zipped({"sub/": b"", **members})))
    return out


def replaced_members(data, names):
    """Parameter / state arrays replaced by arrays of a wrong dtype or shape."""
    members = members_of(data)
    out = []
    for name in names:
        good = np.load(io.BytesIO(members[name + ".npy"]), allow_pickle=False)
        variants = [
            ("object", np.array([None, 1.0], dtype=object)), ("complex64", good.astype(np.complex64)),
            ("complex128", good.astype(np.complex128) * 1j), ("str", good.astype(str)), ("bytes", good.astype(bytes)),
            ("bool", good > 0), ("int8", good.astype(np.int8)), ("float16", good.astype(np.float16)),
            ("datetime", np.zeros(good.shape, "datetime64[s]")),
            ("structured", np.zeros(good.shape, [("a", "<f4"), ("b", "<i4")])),
            ("transposed", good.T.copy() if good.ndim == 2 else good.reshape(-1, 1)), ("extra axis", good[None]),
            ("scalar", np.ones(())), ("empty", np.zeros((0,) + good.shape[1:], good.dtype)),
            ("bigger", np.concatenate([good.reshape(-1), good.reshape(-1)])),
        ]
        for label, arr in variants:
            out.append((f"{name} -> {label}", zipped({**members, name + ".npy": npy_bytes(arr)})))
    return out


def extra_members(data):
    members = members_of(data)
    return [
        ("extra float array", zipped({**members, "junk.npy": npy_bytes(np.zeros(3))})),
        ("extra parameter-like array", zipped({**members, "9.kernel.npy": npy_bytes(np.zeros((2, 2), np.float32))})),
        ("extra object array", zipped({**members, "junk.npy": npy_bytes(np.array([{}], dtype=object))})),
        ("extra text file", zipped({**members, "README": b"hello"})),
        ("extra empty .npy", zipped({**members, "e.npy": b""})),
    ]


def header_edits(data, seed, n):
    """JSON header edits: every key path x wrong types / missing / huge / negative values."""
    rng = np.random.default_rng(seed)
    header = header_of(data)
    candidates = [(p, v) for p in key_paths(header) for v in range(len(BAD_VALUES))]
    picks = rng.choice(len(candidates), size=min(n, len(candidates)), replace=False)
    out = []
    for i in sorted(picks):
        path, v = candidates[i]
        value = BAD_VALUES[v]
        edited = edited_tree(header, path, value, delete=value is MISSING)
        shown = "deleted" if value is MISSING else repr(value)[:30]
        out.append((f"header {'/'.join(map(str, path))} {shown}", with_header(data, edited)))
    return out


def header_specials(data):
    header = header_of(data)
    out = []
    for key in ("format", "format_version", "minidl_version"):
        out.append((f"header without {key}", with_header(data, edited_tree(header, (key,), None, delete=True))))
    for version in (0, 2, 10**30, "1", 1.0, True, None, [1], -1):
        out.append((f"format_version {version!r}", with_header(data, {**header, "format_version": version})))
    for fmt in ("minidl-model", "minidl-checkpoint", "", None, 7, "MINIDL-MODEL"):
        if fmt != header["format"]:
            out.append((f"format {fmt!r}", with_header(data, {**header, "format": fmt})))
    text = json.dumps(header)
    for label, config in [
        ("non-utf8 uint8 header", np.frombuffer(text.encode()[:-5] + b"\xff\xfe\xfd}", np.uint8)),
        ("latin-1 uint8 header", np.frombuffer(text.replace("}", ', "x": "\u00e9"}', 1).encode("latin-1"), np.uint8)),
        ("bytes dtype header", np.array(text.encode())),
        ("2-d unicode header", np.array([[text]])),
        ("float header", np.zeros(3)),
        ("empty string header", np.array("")),
    ]:
        out.append((label, with_header(data, config_array=config)))
    for label, raw in [
        ("header truncated JSON", text[: len(text) // 2]),
        ("header JSON list", "[" + text + "]"),
        ("header JSON string", json.dumps(text)),
        ("header Infinity", text.replace("1", "Infinity", 1)),
        ("header NaN epoch", text.replace('"format_version": 1', '"format_version": NaN')),
        ("header deeply nested", '{"x": ' + "[" * 100_000 + "]" * 100_000 + ", " + text[1:]),
        ("header nested 900 deep", '{"x": ' + "[" * 900 + "]" * 900 + ", " + text[1:]),
        ("header lone surrogate", text.replace("}", ', "s": "\\ud800"}', 1)),
        ("header duplicate keys", text[:-1] + ', "format": "other"}'),
    ]:
        out.append((label, with_header(data, text=raw)))
    return out


def model_class_edits(data):
    """Unknown, misspelled and non-layer class names; negative and huge layer sizes."""
    header = header_of(data)
    out = []
    for name in ("NoSuchLayer", "", "dense", "object", "Sequential", "Parameter", "os.system", "__class__", 3, None):
        for path in (("model", "layers", 2, "class_name"), ("model", "layers", 0, "config", "cell", "class_name")):
            out.append((f"class {name!r} at {path}", with_header(data, edited_tree(header, path, name))))
    for size in (-3, 0, 10**12, 2**62, 2**64, 10**30, 10**400, 2.0, "3", True):
        for path in (
            ("model", "layers", 2, "config", "in_features"),
            ("model", "layers", 2, "config", "out_features"),
            ("model", "layers", 0, "config", "cell", "config", "hidden_size"),
            ("model", "layers", 1, "config", "cell", "config", "input_size"),
        ):
            out.append((f"size {size!r} at {path[-1]} of {path[2]}", with_header(data, edited_tree(header, path, size))))
    for depth in (200, 450):  # a Sequential inside a Sequential inside ...: 4 JSON levels each
        nested = '{"class_name": "Sequential", "config": {"layers": [' * depth + '{"class_name": "Tanh", "config": {}}'
        nested += "]}}" * depth
        text = json.dumps(edited_tree(header, ("model", "layers", 2), "NESTED")).replace('"NESTED"', nested)
        out.append((f"Sequential nested {depth} deep", with_header(data, text=text)))
    out.append(("dtype float16", with_header(data, {**header, "dtype": "float16"})))
    out.append(("dtype object", with_header(data, {**header, "dtype": "object"})))
    out.append(("dtype int", with_header(data, {**header, "dtype": 4})))
    return out


def checkpoint_edits(data):
    """Checkpoint-specific JSON: array references, the optimizer, the generator, the history."""
    header = header_of(data)
    out = []
    for key in ("model", "optimizer", "rng", "epoch", "k1", "k2", "history"):
        out.append((f"without {key}", with_header(data, edited_tree(header, (key,), None, delete=True))))
    opt, rng, model = ("optimizer", "__dict__"), ("rng", "__dict__"), ("model", "__dict__")
    edits = [
        (("epoch",), -1), (("epoch",), 2.5), (("epoch",), True), (("epoch",), "2"), (("epoch",), 10**400),
        (("k2",), 4), (("k2",), None), (("k1",), 2),
        (opt + (0, 1), "SGD"), (opt + (1, 1, "__dict__", 0, 1), -1.0), (opt + (1, 1, "__dict__", 0, 1), "fast"),
        (opt + (2, 1, "__list__"), []),
        (rng + (0, 1), "MT19937"), (rng + (1, 1), 5), (rng + (1, 1, "__dict__", 0, 1), -1),
        (rng + (1, 1, "__dict__", 0, 1), 2**200),
        (model + (0, 1, "__array__"), "model/1.cell.kernel"), (model + (0, 1, "__array__"), ["x"]),
        (model + (0,), ["0.cell.kernel"]), (model + (0,), "ab"), (model + (0,), [1, 2, 3]),
        (("model",), {"__array__": "rng"}), (("model",), {"__list__": [1, 2]}),
        (("history", "epoch"), "0, 1"), (("history", "epoch"), ["a", None]), (("history", "epoch"), [0]),
        (("history", "history"), {"loss": ["a", "b"]}), (("history", "history"), {"loss": 3}),
        (("history", "history"), [1, 2]), (("history",), [1]),
    ]
    for path, value in edits:
        out.append((f"{'/'.join(map(str, path))} = {repr(value)[:30]}", with_header(data, edited_tree(header, path, value))))
    deep = {"__list__": [0]}
    for _ in range(400):
        deep = {"__list__": [deep]}
    out.append(("optimizer nested 400 deep", with_header(data, {**header, "optimizer": deep})))
    return out


def whole_file_cases(data):
    return [
        ("empty file", b""),
        ("one byte", b"P"),
        ("zip magic only", b"PK\x03\x04"),
        ("end-of-archive record only", b"PK\x05\x06" + b"\x00" * 18),
        ("a single .npy", npy_bytes(np.zeros(3))),
        ("a pickled ndarray", b"\x80\x04\x95" + b"\x00" * 20),
        ("text", b"not a model at all\n" * 10),
        ("doubled", data + data),
        ("garbage prefix", b"\x00" * 7 + data),
        ("garbage suffix", data + b"\x00junk" * 9),
    ]


def all_families(data, seed, param_names):
    return (
        truncations(data, seed, 50)
        + byte_flips(data, seed + 1, 70)
        + member_corruptions(data, seed + 2)
        + replaced_members(data, param_names)
        + extra_members(data)
        + header_edits(data, seed + 3, 70)
        + header_specials(data)
        + whole_file_cases(data)
        + bombs(data, param_names[-1])
        + bad_values(data, param_names[0])
    )
