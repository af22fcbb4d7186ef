"""The npz + JSON archive (minidl/io/archive.py): layout checks, pickle refused, atomic writes.

Driven through ``write_archive`` / ``read_archive`` and through model files, whose loader
hands every file to ``read_archive`` first.
"""

import io
import json
import os
import re
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import minidl as mdl
from minidl.io import read_archive, write_archive
from tests.helpers import FIRED as _TRAP_FIRED
from tests.helpers import Trap as _Trap
from tests.io.mutations import bombs, npy_bytes, zipped
from tests.io.zip_bombs import GIB


def _save(path, model):
    model.save(path)
    return path


def test_missing_file_is_file_not_found(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        mdl.load_model(path)


@pytest.mark.parametrize(
    "content, pattern",
    [
        (b"", "an empty file"),
        (b"hello, this is not a model", "not an npz \\(zip\\) archive"),
        (b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'", "a single .npy array, not an npz archive"),
    ],
)
def test_not_an_archive(tmp_path, content, pattern):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"cannot read '.*bad.npz': {pattern}"):
        mdl.load_model(path)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_file(tmp_path, keep):
    path = _save(tmp_path / "t.npz", mdl.Sequential([mdl.RNN(mdl.LSTMCell(3, 16)), mdl.Dense(16, 1)]))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match=r"cannot read '.*t\.npz': the archive is (truncated or )?corrupt"):
        mdl.load_model(path)


def test_missing_or_malformed_config_entry(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"cannot read '.*plain\.npz': no '__config__' entry"):
        mdl.load_model(path)
    for value, pattern in [
        (np.array("{not json"), r"'__config__' is not valid JSON"),
        (np.array("[1, 2]"), r"'__config__' must be a JSON object, got list"),
        (np.zeros(3), r"'__config__' must be JSON text \(a unicode string or uint8 bytes\), got dtype float64"),
        (np.frombuffer(b"\xff\xfe", np.uint8), r"'__config__' is not UTF-8 text"),
    ]:
        np.savez(path, __config__=value)
        with pytest.raises(ValueError, match=pattern):
            mdl.load_model(path)
    header = {"format": "minidl-model", "format_version": 1, "dtype": "float64", "model": {"layers": []}}
    np.savez(path, __config__=np.frombuffer(json.dumps(header).encode(), np.uint8))  # JSON as uint8 bytes is accepted
    assert len(mdl.load_model(path)) == 0


def _pickled_npy(obj_array):
    buf = io.BytesIO()
    np.save(buf, obj_array, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("member", ["evil", "__config__", "1.bias"])
def test_pickled_member_is_refused_and_never_run(tmp_path, member):
    payload = _pickled_npy(np.array([_Trap()], dtype=object))
    # the control: this payload really runs code when numpy is allowed to unpickle it
    _TRAP_FIRED.clear()
    assert np.load(io.BytesIO(payload), allow_pickle=True)[0] == "boom" and _TRAP_FIRED == [True]
    _TRAP_FIRED.clear()

    path = _save(tmp_path / "p.npz", mdl.Sequential([mdl.Dense(2, 2), mdl.Dense(2, 1)]))
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist() if name != member + ".npy"}
    members[member + ".npy"] = payload
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    # a member the architecture does not name is refused before it is even inflated
    refusal = "unexpected members {'evil.npy'" if member == "evil" else f"entry '{member}' holds pickled objects; refused"
    with pytest.raises(ValueError, match=rf"cannot read '.*p\.npz': {re.escape(refusal)}"):
        mdl.load_model(path)
    assert _TRAP_FIRED == []


# ---- atomic writes --------------------------------------------------------------------------


def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    old = mdl.Sequential([mdl.Dense(2, 3)])
    path = _save(tmp_path / "m.npz", old)
    good = path.read_bytes()

    def broken_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        mdl.Sequential([mdl.Dense(2, 1)]).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["m.npz"]  # the temporary file was removed
    np.testing.assert_array_equal(mdl.load_model(path).layers[0].kernel.data, old.layers[0].kernel.data)


def test_save_into_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        mdl.Sequential([mdl.Dense(2, 1)]).save(tmp_path / "no" / "m.npz")


# ---- save errors ----------------------------------------------------------------------------


def test_write_and_read_archive_round_trip(tmp_path):
    path = tmp_path / "a.ckpt"
    arrays = {"model/0.kernel": np.arange(6.0).reshape(2, 3), "steps": np.array([1, 2, 3], np.int64), "flag": np.array(True)}
    meta = {"epoch": 3, "lr": np.float32(0.5), "history": {"loss": [1.0, float("nan")]}, "big": 2**100}
    write_archive(path, arrays, meta, "my-format", format_version=3)
    got, header = read_archive(path, "my-format", supported_versions=(2, 3))
    assert sorted(got) == sorted(arrays)
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype
        np.testing.assert_array_equal(got[k], v)
    assert header["format"] == "my-format" and header["format_version"] == 3
    assert header["minidl_version"] == mdl.__version__
    assert header["epoch"] == 3 and header["lr"] == 0.5 and header["big"] == 2**100
    assert header["history"]["loss"][0] == 1.0 and np.isnan(header["history"]["loss"][1])
    with pytest.raises(ValueError, match=r"unsupported format_version 3 of 'my-format' \(this minidl reads 1\)"):
        read_archive(path, "my-format")


@pytest.mark.parametrize(
    "arrays, meta, err, pattern",
    [
        ({"x": np.array([object()])}, {}, TypeError, r"array 'x' must be numeric, got dtype object \(pickle is never used\)"),
        ({"x": np.array(["a"])}, {}, TypeError, r"array 'x' must be numeric, got dtype <U1"),
        ({"__config__": np.zeros(1)}, {}, ValueError, r"bad array name '__config__'"),
        ({"file": np.zeros(1)}, {}, ValueError, r"bad array name 'file'"),
        ({"": np.zeros(1)}, {}, ValueError, r"bad array name ''"),
        ({}, {"when": object()}, TypeError, r"the metadata is not JSON serializable: a value of type object$"),
        ({}, {"format": "x"}, ValueError, r"meta must not set the reserved keys \['format'\]"),
        ([], {}, TypeError, r"arrays and meta must be dicts, got list, dict"),
    ],
)
def test_write_archive_errors_write_nothing(tmp_path, arrays, meta, err, pattern):
    with pytest.raises(err, match=r"write_archive\('.*a\.npz'\): " + pattern):
        write_archive(tmp_path / "a.npz", arrays, meta, "f")
    assert os.listdir(tmp_path) == []


# ---- no inflation before checks ------------------------------------------------------------------
def _bomb_model_file(tmp_path):
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(2, 3)), mdl.Dense(3, 1)])
    return _save(tmp_path / "m.npz", model).read_bytes()


BOMB_REFUSALS = {
    "not minidl: one 1 GiB member": r"no '__config__' entry; not a minidl file",
    "not minidl: a 1 GiB __config__": r"'__config__' declares 1073741824 bytes, more than a minidl header may have "
                                      r"\(16777216\); refused before inflating it",
    "a 1 GiB __config__": r"'__config__' declares 1073741824 bytes",
    "an extra 1 GiB member": r"unexpected members \{'junk\.npy': 1073741952\} \(name: declared bytes\); the file may "
                             r"hold only the arrays its header and architecture name; refused before inflating",
    "an extra 1 GiB parameter-like member": r"unexpected members \{'9\.kernel\.npy': 1073741952\}",
    "1.kernel a 1 GiB array": r"member '1\.kernel\.npy' declares 1073741952 bytes, more than the 12 its array may "
                              r"need plus a \.npy header of at most 4096; refused before inflating",
    "1.kernel declares its true size but inflates to 1 GiB": r"the archive is truncated or corrupt \(BadZipFile: Bad CRC-32",
}


@pytest.mark.parametrize("label", sorted(BOMB_REFUSALS))
def test_a_zip_bomb_is_refused_fast_before_inflating(tmp_path, label):
    cases = dict(bombs(_bomb_model_file(tmp_path), "1.kernel"))
    blob = cases[label]
    assert len(blob) < 1.1 * 2**20  # about 1 MiB in the file ...
    if label != "1.kernel declares its true size but inflates to 1 GiB":  # ... that really inflates to 1 GiB
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            assert max(i.file_size for i in zf.infolist()) >= GIB
            big = max(zf.infolist(), key=lambda i: i.file_size)
            with zf.open(big) as member:
                assert len(member.read(2**24)) == 2**24  # (a real deflate stream: 16 MiB of it, read as a control)
    path = tmp_path / "bomb.npz"
    path.write_bytes(blob)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=rf"^cannot read '.*bomb\.npz': {BOMB_REFUSALS[label]}"):
            mdl.load_model(path)
        elapsed, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5 and peak < 4 * 2**20, (elapsed, peak)


def test_a_member_is_inflated_at_most_to_its_declared_size(tmp_path, monkeypatch):
    """The bounded read: whatever zipfile does, no member is read past its declared size + 1 byte."""
    requested = []
    real_open = zipfile.ZipFile.open

    def spying_open(self, name, *args, **kwargs):
        member = real_open(self, name, *args, **kwargs)
        real_read = member.read
        member.read = lambda n=-1: requested.append((getattr(name, "filename", name), n)) or real_read(n)
        return member

    monkeypatch.setattr(zipfile.ZipFile, "open", spying_open)
    data = _bomb_model_file(tmp_path)
    sizes = {i.filename: i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist()}
    mdl.load_model(tmp_path / "m.npz")
    assert sorted(requested) == sorted((name, size + 1) for name, size in sizes.items())


def test_parameters_of_another_dtype_than_the_header_declares_are_refused(tmp_path):
    path = _save(tmp_path / "d.npz", mdl.Sequential([mdl.Dense(3, 2)]))
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    for arr, pattern in [
        (np.zeros((3, 2), np.float64), r"entry '0\.kernel' has dtype float64, but the file declares float32"),
        (np.zeros((3, 2), np.int32), r"entry '0\.kernel' has dtype int32, but the file declares float32"),
        (np.zeros((3, 2), np.float16), r"entry '0\.kernel' has dtype float16, but the file declares float32"),
    ]:
        path.write_bytes(zipped({**members, "0.kernel.npy": npy_bytes(arr)}))
        with pytest.raises(ValueError, match=rf"^cannot read '.*d\.npz': {pattern}"):
            mdl.load_model(path)
    big_endian = np.arange(6, dtype=">f4").reshape(3, 2)  # the same dtype in another byte order loads
    path.write_bytes(zipped({**members, "0.kernel.npy": npy_bytes(big_endian)}))
    np.testing.assert_array_equal(mdl.load_model(path).layers[0].kernel.data, big_endian)
