"""Fuzzing the two file loaders, ``mdl.load_model`` and ``TBPTTTrainer.load_checkpoint``.

Hundreds of damaged files (deterministic seeds) made from a good model file and a good
checkpoint: truncations, byte flips, corrupted zip members, edited JSON headers,
replaced and extra npz members, empty files, directories. Each load must either

* raise ``ValueError`` (or ``OSError`` for a path that cannot be opened) whose message
  names the path -- any other exception type (KeyError, IndexError, BadZipFile,
  UnicodeDecodeError, json errors, EOFError, MemoryError, RecursionError ...) fails, or
* succeed with a valid result (the mutation hit padding or weight values): a model of
  float32/float64 parameters that predicts, a trainer that saves a checkpoint again.

A failed checkpoint load must leave the trainer exactly as it was.
"""

import io
import json
import os
import traceback
import zipfile

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import FIRED as _TRAP_FIRED
from tests.helpers import Trap as _Trap

pytestmark = pytest.mark.slow

X = np.random.default_rng(0).standard_normal((5, 4, 2)).astype(np.float32)
Y = np.random.default_rng(1).standard_normal((5, 1)).astype(np.float32)
COUNTS = {}  # family -> number of files, filled as the tests run


# ---- the good files ----------------------------------------------------------------------------
def _model():
    mdl.set_seed(0)
    return mdl.Sequential(
        [mdl.RNN(mdl.LSTMCell(2, 3), return_sequences=True), mdl.RNN(mdl.GRUCell(3, 2)), mdl.Dense(2, 1)]
    )


def _trainer(model=None):
    model = _model() if model is None else model
    return mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=0.01), k2=3, seed=3)


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    model_path, ckpt_path = folder / "model.npz", folder / "ckpt.npz"
    mdl.set_default_dtype(np.float32)
    _model().save(model_path)
    trainer = _trainer()
    trainer.fit(X, Y, epochs=2, batch_size=2, validation_data=(X, Y), verbose=0)
    trainer.save_checkpoint(ckpt_path)
    return {"model": model_path.read_bytes(), "checkpoint": ckpt_path.read_bytes()}


# ---- zip / npy / JSON helpers ------------------------------------------------------------------
def _members(data):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _zip(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _header(data):
    blob = _members(data)["__config__.npy"]
    return json.loads(str(np.load(io.BytesIO(blob), allow_pickle=False)))


def _with_header(data, header=None, text=None, config_array=None):
    """The archive ``data`` with its ``__config__`` replaced (a dict, raw text or an array)."""
    members = _members(data)
    if config_array is None:
        config_array = np.array(json.dumps(header) if text is None else text)
    members["__config__.npy"] = _npy(config_array)
    return _zip(members)


def _paths(tree, prefix=()):
    """Every key path in a JSON tree (dict keys and list indices)."""
    out = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for k, v in items:
        out.append(prefix + (k,))
        out.extend(_paths(v, prefix + (k,)))
    return out


def _edited(tree, path, value, delete=False):
    tree = json.loads(json.dumps(tree))
    node = tree
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return tree


_MISSING = object()
BAD_VALUES = [
    _MISSING, None, True, "x", "", -1, 0, 1, 1.5, -7.0, 10**12, 2**63, 10**30, 10**400,
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
    members = _members(data)
    out = []
    for name, blob in members.items():
        # raw flip inside the stored member: the CRC no longer matches
        raw = bytearray(data)
        start = raw.find(blob)
        pos = start + int(rng.integers(0, len(blob)))
        raw[pos] ^= 0x5A
        out.append((f"{name}: stored bytes flipped (bad CRC)", bytes(raw)))
        # the same, compressed: a corrupt deflate stream or a bad CRC
        deflated = bytearray(_zip(members, zipfile.ZIP_DEFLATED))
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
            out.append((f"{name}: {label}", _zip({**members, name: new})))
        out.append((f"{name}: renamed to .txt", _zip({(n[:-4] + ".txt" if n == name else n): b for n, b in members.items()})))
        out.append((f"{name}: missing", _zip({n: b for n, b in members.items() if n != name})))
    # a second entry of the same name (the later one wins in zipfile)
    with pytest.warns(UserWarning, match="Duplicate name"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, blob in members.items():
                zf.writestr(name, blob)
            zf.writestr("__config__.npy", _npy(np.array("{}")))
    out.append(("duplicate __config__", buf.getvalue()))
    out.append(("empty zip archive", _zip({})))
    out.append(("a nested directory entry", _zip({"sub/": b"", **members})))
    return out


def replaced_members(data, names):
    """Parameter / state arrays replaced by arrays of a wrong dtype or shape."""
    members = _members(data)
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
            out.append((f"{name} -> {label}", _zip({**members, name + ".npy": _npy(arr)})))
    return out


def extra_members(data):
    members = _members(data)
    return [
        ("extra float array", _zip({**members, "junk.npy": _npy(np.zeros(3))})),
        ("extra parameter-like array", _zip({**members, "9.kernel.npy": _npy(np.zeros((2, 2), np.float32))})),
        ("extra object array", _zip({**members, "junk.npy": _npy(np.array([{}], dtype=object))})),
        ("extra text file", _zip({**members, "README": b"hello"})),
        ("extra empty .npy", _zip({**members, "e.npy": b""})),
    ]


def header_edits(data, seed, n):
    """JSON header edits: every key path x wrong types / missing / huge / negative values."""
    rng = np.random.default_rng(seed)
    header = _header(data)
    candidates = [(p, v) for p in _paths(header) for v in range(len(BAD_VALUES))]
    picks = rng.choice(len(candidates), size=min(n, len(candidates)), replace=False)
    out = []
    for i in sorted(picks):
        path, v = candidates[i]
        value = BAD_VALUES[v]
        edited = _edited(header, path, value, delete=value is _MISSING)
        shown = "deleted" if value is _MISSING else repr(value)[:30]
        out.append((f"header {'/'.join(map(str, path))} {shown}", _with_header(data, edited)))
    return out


def header_specials(data):
    header = _header(data)
    out = []
    for key in ("format", "format_version", "minidl_version"):
        out.append((f"header without {key}", _with_header(data, _edited(header, (key,), None, delete=True))))
    for version in (0, 2, 10**30, "1", 1.0, True, None, [1], -1):
        out.append((f"format_version {version!r}", _with_header(data, {**header, "format_version": version})))
    for fmt in ("minidl-model", "minidl-checkpoint", "", None, 7, "MINIDL-MODEL"):
        if fmt != header["format"]:
            out.append((f"format {fmt!r}", _with_header(data, {**header, "format": fmt})))
    text = json.dumps(header)
    for label, config in [
        ("non-utf8 uint8 header", np.frombuffer(text.encode()[:-5] + b"\xff\xfe\xfd}", np.uint8)),
        ("latin-1 uint8 header", np.frombuffer(text.replace("}", ', "x": "\u00e9"}', 1).encode("latin-1"), np.uint8)),
        ("bytes dtype header", np.array(text.encode())),
        ("2-d unicode header", np.array([[text]])),
        ("float header", np.zeros(3)),
        ("empty string header", np.array("")),
    ]:
        out.append((label, _with_header(data, config_array=config)))
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
        out.append((label, _with_header(data, text=raw)))
    return out


def model_class_edits(data):
    """Unknown, misspelled and non-layer class names; negative and huge layer sizes."""
    header = _header(data)
    out = []
    for name in ("NoSuchLayer", "", "dense", "object", "Sequential", "Parameter", "os.system", "__class__", 3, None):
        for path in (("model", "layers", 2, "class_name"), ("model", "layers", 0, "config", "cell", "class_name")):
            out.append((f"class {name!r} at {path}", _with_header(data, _edited(header, path, name))))
    for size in (-3, 0, 10**12, 2**62, 2**64, 10**30, 10**400, 2.0, "3", True):
        for path in (
            ("model", "layers", 2, "config", "in_features"),
            ("model", "layers", 2, "config", "out_features"),
            ("model", "layers", 0, "config", "cell", "config", "hidden_size"),
            ("model", "layers", 1, "config", "cell", "config", "input_size"),
        ):
            out.append((f"size {size!r} at {path[-1]} of {path[2]}", _with_header(data, _edited(header, path, size))))
    for depth in (200, 450):  # a Sequential inside a Sequential inside ...: 4 JSON levels each
        nested = '{"class_name": "Sequential", "config": {"layers": [' * depth + '{"class_name": "Tanh", "config": {}}'
        nested += "]}}" * depth
        text = json.dumps(_edited(header, ("model", "layers", 2), "NESTED")).replace('"NESTED"', nested)
        out.append((f"Sequential nested {depth} deep", _with_header(data, text=text)))
    out.append(("dtype float16", _with_header(data, {**header, "dtype": "float16"})))
    out.append(("dtype object", _with_header(data, {**header, "dtype": "object"})))
    out.append(("dtype int", _with_header(data, {**header, "dtype": 4})))
    return out


def checkpoint_edits(data):
    """Checkpoint-specific JSON: array references, the optimizer, the generator, the history."""
    header = _header(data)
    out = []
    for key in ("model", "optimizer", "rng", "epoch", "k1", "k2", "history"):
        out.append((f"without {key}", _with_header(data, _edited(header, (key,), None, delete=True))))
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
        out.append((f"{'/'.join(map(str, path))} = {repr(value)[:30]}", _with_header(data, _edited(header, path, value))))
    deep = {"__list__": [0]}
    for _ in range(400):
        deep = {"__list__": [deep]}
    out.append(("optimizer nested 400 deep", _with_header(data, {**header, "optimizer": deep})))
    return out


def whole_file_cases(data):
    return [
        ("empty file", b""),
        ("one byte", b"P"),
        ("zip magic only", b"PK\x03\x04"),
        ("end-of-archive record only", b"PK\x05\x06" + b"\x00" * 18),
        ("a single .npy", _npy(np.zeros(3))),
        ("a pickled ndarray", b"\x80\x04\x95" + b"\x00" * 20),
        ("text", b"not a model at all\n" * 10),
        ("doubled", data + data),
        ("garbage prefix", b"\x00" * 7 + data),
        ("garbage suffix", data + b"\x00junk" * 9),
    ]


# ---- checking one load -------------------------------------------------------------------------------
def _names_path(err, path):
    return os.fspath(path) in str(err)


def _check_model(path):
    """None when load_model behaved (a clear error or a valid model), else what went wrong."""
    try:
        model = mdl.load_model(path)
    except (ValueError, OSError) as err:
        if not _names_path(err, path):
            return f"{type(err).__name__} without the path: {err}"
        if isinstance(err, OSError) and not isinstance(err, (FileNotFoundError, IsADirectoryError, PermissionError)):
            return f"unexpected OSError: {err!r}"
        return None
    except Exception as err:  # noqa: BLE001 - the point of the test
        return f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-3)}"
    # a load that succeeded must give a usable model
    try:
        assert isinstance(model, mdl.Sequential)
        for name, p in model.named_parameters():
            assert p.data.dtype in (np.float32, np.float64) and p.grad.shape == p.data.shape, name
        first = model.layers[0]
        if isinstance(first, mdl.RNN):
            x = np.ones((2, 3, first.cell.input_size), np.float32)
        else:
            x = np.ones((2, first.in_features), np.float32)
        out = model.predict(x)
        assert out.shape[0] == 2
    except Exception as err:  # noqa: BLE001
        return f"loaded, but the model is not usable: {type(err).__name__}: {err}"
    return None


def _trainer_snapshot(trainer):
    opt = trainer.optimizer.state_dict()
    return (
        trainer.model.state_dict(),
        json.dumps({**opt, "state": [{k: np.asarray(v).tolist() for k, v in s.items()} for s in opt["state"]]}),
        trainer.epoch,
        json.dumps(trainer.rng.bit_generator.state),
        (list(trainer.history.epoch), json.dumps(trainer.history.history)),
        trainer.optimizer.lr,
    )


def _same_snapshot(a, b):
    return all(np.array_equal(a[0][k], b[0][k]) for k in a[0]) and a[1:] == b[1:]


def _check_checkpoint(path, tmp_path):
    trainer = _trainer()
    before = _trainer_snapshot(trainer)
    try:
        trainer.load_checkpoint(path)
    except (ValueError, OSError) as err:
        if not _names_path(err, path):
            return f"{type(err).__name__} without the path: {err}"
        if not _same_snapshot(before, _trainer_snapshot(trainer)):
            return f"the failed load ({err}) changed the trainer"
        return None
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-3)}"
    try:
        assert isinstance(trainer.epoch, int) and trainer.epoch >= 0
        assert all(isinstance(e, int) for e in trainer.history.epoch)
        assert all(
            isinstance(v, float) for values in trainer.history.history.values() for v in values
        ), trainer.history.history
        again = tmp_path / "again.npz"
        trainer.save_checkpoint(again)
        other = _trainer()
        other.load_checkpoint(again)
        assert _same_snapshot(_trainer_snapshot(trainer), _trainer_snapshot(other))
        trainer.rng.permutation(4)
    except Exception as err:  # noqa: BLE001
        return f"loaded, but the trainer is not usable: {type(err).__name__}: {err}"
    return None


def _run(cases, check, tmp_path, family):
    failures = []
    path = tmp_path / "fuzzed.npz"
    for label, blob in cases:
        path.write_bytes(blob)
        problem = check(path)
        if problem is not None:
            failures.append(f"[{label}] {problem}")
    COUNTS[family] = len(cases)
    assert not failures, f"{len(failures)} of {len(cases)} files misbehaved:\n" + "\n".join(failures[:15])


def _families(data, seed, param_names):
    return (
        truncations(data, seed, 50)
        + byte_flips(data, seed + 1, 70)
        + member_corruptions(data, seed + 2)
        + replaced_members(data, param_names)
        + extra_members(data)
        + header_edits(data, seed + 3, 70)
        + header_specials(data)
        + whole_file_cases(data)
    )


# ---- the tests -------------------------------------------------------------------------------------------
def test_fuzzed_model_files(good_files, tmp_path):
    data = good_files["model"]
    cases = _families(data, 100, ["0.cell.kernel", "2.bias"]) + model_class_edits(data)
    _run(cases, _check_model, tmp_path, "model")


def test_fuzzed_checkpoints(good_files, tmp_path):
    data = good_files["checkpoint"]
    cases = _families(data, 200, ["model/0.cell.recurrent_kernel", "optimizer/state/1/exp_avg"])
    cases += checkpoint_edits(data)
    _run(cases, lambda p: _check_checkpoint(p, tmp_path), tmp_path, "checkpoint")


def test_paths_that_are_not_files(tmp_path):
    folder = tmp_path / "a_directory.npz"
    folder.mkdir()
    missing = tmp_path / "missing.npz"
    for path in (folder, missing, str(missing)):
        assert _check_model(path) is None
        assert _check_checkpoint(path, tmp_path) is None
    with pytest.raises(IsADirectoryError, match="a_directory"):
        mdl.load_model(folder)
    with pytest.raises(FileNotFoundError, match="missing"):
        _trainer().load_checkpoint(missing)
    COUNTS["paths"] = 6


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(good_files, tmp_path):
    path = tmp_path / "locked.npz"
    path.write_bytes(good_files["model"])
    path.chmod(0)
    try:
        with pytest.raises(PermissionError, match="locked"):
            mdl.load_model(path)
    finally:
        path.chmod(0o600)


def test_the_good_files_load(good_files, tmp_path):
    """The control: the unmutated files load and pass the same checks."""
    path = tmp_path / "good.npz"
    path.write_bytes(good_files["model"])
    assert _check_model(path) is None
    path.write_bytes(good_files["checkpoint"])
    assert _check_checkpoint(path, tmp_path) is None
    trainer = _trainer()
    trainer.load_checkpoint(path)
    assert trainer.epoch == 2 and trainer.history.epoch == [0, 1]





@pytest.mark.parametrize("member", ["model/0.cell.kernel", "optimizer/state/0/exp_avg", "__config__", "evil"])
def test_pickled_member_in_a_checkpoint_is_refused_and_never_run(good_files, tmp_path, member):
    payload = _npy(np.array([_Trap()], dtype=object))
    _TRAP_FIRED.clear()
    assert np.load(io.BytesIO(payload), allow_pickle=True)[0] == "boom" and _TRAP_FIRED == [True]  # it is live
    _TRAP_FIRED.clear()
    path = tmp_path / "pickled.npz"
    path.write_bytes(_zip({**_members(good_files["checkpoint"]), member + ".npy": payload}))
    trainer = _trainer()
    before = _trainer_snapshot(trainer)
    with pytest.raises(ValueError, match=rf"cannot read '.*pickled\.npz': entry '{member}' holds pickled objects; refused"):
        trainer.load_checkpoint(path)
    assert _TRAP_FIRED == []
    assert _same_snapshot(before, _trainer_snapshot(trainer))


def test_enough_files_were_fuzzed():
    """Runs last in this module: at least 500 damaged files went through the loaders."""
    if {"model", "checkpoint"} - set(COUNTS):
        pytest.skip("the fuzz tests did not run in this session")
    total = sum(COUNTS.values())
    print(f"fuzzed files: {COUNTS} total {total}")
    assert total >= 500
