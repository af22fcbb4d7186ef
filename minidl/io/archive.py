"""The archive: numpy arrays plus JSON metadata in one npz file, never pickle.

File layout (an ordinary ``.npz`` zip archive, readable with ``np.load``)::

    <name>.npy        one member per array, under the name it was given
    __config__.npy    a 0-d unicode array holding the JSON header:
                      {"format": ..., "format_version": ..., "minidl_version": ..., **meta}

``write_archive`` / ``read_archive`` are the machinery under both file formats:
model files (``model_file.py``, format ``"minidl-model"``) and trainer checkpoints
(``checkpoint.py``, format ``"minidl-checkpoint"``).

Safety: files are read with ``allow_pickle=False`` only, so a member holding a
pickled object array is refused before any of its code can run. Writes are
atomic: the archive goes to a temporary file in the destination folder, which
then replaces the destination with ``os.replace``, so a failed save leaves an
existing file intact. Saving over a symlink writes to its final target (a dangling
link's target is created; the link stays a link), an existing file keeps its mode,
and a destination that is not a regular file (directory, FIFO, device) is refused
before anything is written. Temporaries are named ``.<name>.<hex>.minidl-tmp``; those
a killed writer left behind are removed by the next save to the same destination
once untouched for ``STALE_TMP_SECONDS``. Reading refuses a path that is not a
regular file before reading from it, so a FIFO cannot block the reader.
"""

import io
import json
import math
import os
import zipfile
from collections import namedtuple
from collections.abc import Mapping

import numpy as np

from .._version import __version__
from .atomic import atomic_savez, refuse_non_regular

CONFIG_KEY = "__config__"
_RESERVED_NAMES = (CONFIG_KEY, "file", "allow_pickle")  # the JSON member, np.savez's own arguments
_HEADER_KEYS = ("format", "format_version", "minidl_version")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # local file header, empty archive
_NUMERIC_KINDS = "biufc"


def json_default(value):
    """``json.dumps``'s ``default``: numpy scalars become Python numbers; anything else is refused."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a value of type {type(value).__name__}")


def fspath(path, owner):
    """``os.fspath(path)``, or a ``TypeError`` naming ``owner`` for a non-path."""
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"{owner}: path must be a str or os.PathLike, got {type(path).__name__}") from None


def write_archive(path, arrays, meta, format_name, format_version=1):
    """Atomically write ``arrays`` and the JSON-able ``meta`` to the npz file ``path``.

    Args:
        path: destination (str or path-like), used as is (no suffix is added).
        arrays: ``{name: ndarray}`` of numeric arrays; names are npz member names.
        meta: JSON-able dict stored in the ``__config__`` member together with
            ``format`` (= ``format_name``), ``format_version`` and ``minidl_version``.

    Raises ``TypeError`` for a non-numeric array or non-JSON metadata (nothing is
    written), ``OSError`` when the file cannot be written (an existing file at
    ``path`` is then left unchanged).
    """
    path = fspath(path, "write_archive")
    where = f"write_archive({path!r})"
    if not isinstance(arrays, Mapping) or not isinstance(meta, Mapping):
        raise TypeError(f"{where}: arrays and meta must be dicts, got {type(arrays).__name__}, {type(meta).__name__}")
    members = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name or name in _RESERVED_NAMES:
            raise ValueError(f"{where}: bad array name {name!r} (a non-empty str, not one of {_RESERVED_NAMES})")
        arr = np.asarray(value)
        if arr.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"{where}: array {name!r} must be numeric, got dtype {arr.dtype} (pickle is never used)")
        members[name] = arr
    reserved = [k for k in _HEADER_KEYS if k in meta]
    if reserved:
        raise ValueError(f"{where}: meta must not set the reserved keys {reserved}")
    header = {"format": format_name, "format_version": format_version, "minidl_version": __version__, **meta}
    try:
        text = json.dumps(header, default=json_default)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where}: the metadata is not JSON serializable: {err}") from None
    members[CONFIG_KEY] = np.array(text)
    atomic_savez(path, members)


CONFIG_MAX_BYTES = 16 * 2**20  # the JSON header's member may declare at most this (4 M characters)
NPY_HEADER_MAX = 4096  # the bytes a .npy member may hold besides its array (numpy writes 128 for most)

Budget = namedtuple("Budget", "members total")
Budget.__doc__ = """What an archive may hold, checked against the zip directory before anything is inflated.

``members``: ``{array name: (max_bytes, dtype or None)}``, every member the file may have
(others are refused) with the most array bytes it may hold (plus ``NPY_HEADER_MAX`` of
``.npy`` header) and, when not None, the one dtype it must have. ``total``: the most array
bytes all members together may declare (None: no limit beyond each member's)."""


def read_archive(path, expected_format, supported_versions=(1,), budget=None):
    """Read a file written by ``write_archive``: returns ``(arrays, meta)``.

    ``arrays`` is ``{name: ndarray}`` (numeric arrays only); ``meta`` is the whole
    JSON header, including ``format``, ``format_version`` and ``minidl_version``.
    ``budget(meta) -> Budget``, when given, says which members the file may hold and how
    large they may be; it is called after the header is read and checked, before any
    array member is inflated (see ``open_archive``).

    Raises ``FileNotFoundError`` (an ``OSError``) for a missing file, and
    ``ValueError`` naming ``path`` when the file is not an npz archive, is
    truncated or corrupt, holds a pickled (object) array, lacks the JSON header,
    has another format name or an unsupported format version, or holds members
    outside the budget.
    """
    with open_archive(path, expected_format, supported_versions) as archive:
        return archive.arrays(None if budget is None else budget(archive.meta)), archive.meta


def open_archive(path, expected_format, supported_versions=(1,)):
    """Open a file written by ``write_archive`` and read its header only: an ``Archive``.

    Nothing but the zip directory and the ``__config__`` member (at most
    ``CONFIG_MAX_BYTES``) is inflated here; the format and version are checked.
    Use as a context manager: ``with open_archive(...) as archive: archive.meta ...
    archive.arrays(budget)``.
    """
    path = fspath(path, f"cannot read a {expected_format!r} file")
    archive = Archive(path, f"cannot read {path!r}")
    try:
        archive.meta = _checked_format(archive.read_header(), expected_format, supported_versions, archive.where)
    except BaseException:
        archive.close()
        raise
    return archive


class Archive:
    """An open npz archive: its zip directory, its JSON header (``meta``) and its arrays on demand."""

    def __init__(self, path, where):
        self.where = where
        self._file = _open_regular(path)
        try:
            magic = self._file.read(4)
            if magic not in _ZIP_MAGIC:
                what = "an empty file" if not magic else "not an npz (zip) archive"
                if magic.startswith(b"\x93NUM"):
                    what = "a single .npy array, not an npz archive"
                raise ValueError(f"{where}: {what}")
            self._file.seek(0)
            self._zip = self._zipped(lambda: zipfile.ZipFile(self._file))
            self._infos = self._zip.infolist()
        except BaseException:
            self._file.close()
            raise
        names = [info.filename for info in self._infos]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            self.close()
            raise ValueError(f"{where}: duplicate member names {duplicates}; refused")
        self.meta = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if getattr(self, "_zip", None) is not None:
            self._zip.close()
        self._file.close()

    def read_header(self):
        """The JSON header as a dict (format not yet checked)."""
        info = next((i for i in self._infos if i.filename == CONFIG_KEY + ".npy"), None)
        if info is None:
            raise ValueError(f"{self.where}: no {CONFIG_KEY!r} entry; not a minidl file")
        if info.file_size > CONFIG_MAX_BYTES:
            raise ValueError(f"{self.where}: {CONFIG_KEY!r} declares {info.file_size} bytes, more than a minidl "
                             f"header may have ({CONFIG_MAX_BYTES}); refused before inflating it")
        return _parse_header(self._npy(info, CONFIG_KEY, CONFIG_MAX_BYTES, None, _NUMERIC_KINDS + "U"), self.where)

    def arrays(self, budget=None):
        """``{name: ndarray}`` of every member but the header, after checking each declared size
        against ``budget`` (a ``Budget``; None: each member as large as it declares)."""
        members = {info.filename: info for info in self._infos if info.filename != CONFIG_KEY + ".npy"}
        limits = {}
        if budget is not None:
            unexpected = sorted(n for n in members if not n.endswith(".npy") or n[:-4] not in budget.members)
            if unexpected:
                shown = {n: members[n].file_size for n in unexpected[:5]}
                raise ValueError(f"{self.where}: unexpected members {shown} (name: declared bytes); the file may hold "
                                 f"only the arrays its header and architecture name; refused before inflating")
            for filename, info in members.items():
                max_bytes, dtype = budget.members[filename[:-4]]
                if info.file_size > max_bytes + NPY_HEADER_MAX:
                    raise ValueError(f"{self.where}: member {filename!r} declares {info.file_size} bytes, more than "
                                     f"the {max_bytes} its array may need plus a .npy header of at most {NPY_HEADER_MAX}; "
                                     "refused before inflating")
                limits[filename] = (max_bytes, dtype)
            declared = sum(info.file_size for info in members.values())
            if budget.total is not None and declared > budget.total + NPY_HEADER_MAX * len(members):
                raise ValueError(f"{self.where}: the members declare {declared} bytes in all, more than the "
                                 f"{budget.total} this file may hold; refused before inflating")
        loaded = {}
        for filename, info in members.items():
            name = filename[:-4] if filename.endswith(".npy") else filename
            max_bytes, dtype = limits.get(filename, (None, None))
            loaded[name] = self._npy(info, name, max_bytes, dtype)
        return loaded

    def _npy(self, info, name, max_bytes, dtype, kinds=_NUMERIC_KINDS):
        """The array in member ``info``: inflated to at most its declared size, header checked
        (no pickle, numeric, ``dtype``, at most ``max_bytes``) before the array is made."""
        def read():
            with self._zip.open(info) as member:
                return member.read(info.file_size + 1)  # bounded: a member cannot inflate beyond its declared size
        blob = self._zipped(read)
        if len(blob) != info.file_size:
            raise ValueError(f"{self.where}: entry {name!r} inflates to {'more' if len(blob) > info.file_size else 'less'} "
                             f"than its declared {info.file_size} bytes; the archive is corrupt")
        return npy_array(blob, name, self.where, max_bytes, dtype, kinds)

    def _zipped(self, action):
        try:
            return action()
        except Exception as err:  # noqa: BLE001 - zipfile/zlib on damaged bytes raise many types
            raise ValueError(f"{self.where}: the archive is truncated or corrupt ({type(err).__name__}: {err})") from None


def npy_array(blob, name, where, max_bytes=None, dtype=None, kinds=_NUMERIC_KINDS):
    """The array of the ``.npy`` bytes ``blob`` (a writable copy, native byte order).

    Its header is read and checked first: a pickled (object) array, a dtype whose kind is
    not in ``kinds`` (numeric by default), a dtype other than ``dtype`` (when given), more
    than ``max_bytes`` array bytes (when given) and a body of another length than the
    header declares are a ``ValueError`` naming ``name``; nothing is allocated for an
    array that is refused.
    """
    fp = io.BytesIO(blob)
    try:
        version = np.lib.format.read_magic(fp)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy format version {version}")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, stored = read_header(fp)
        if any(n < 0 for n in shape):
            raise ValueError(f"negative shape {shape}")
    except Exception as err:  # noqa: BLE001 - a garbled header raises ValueError, SyntaxError, EOFError, ...
        raise ValueError(f"{where}: entry {name!r} is corrupt (a bad .npy header: {type(err).__name__}: {err})") from None
    if stored.hasobject:
        raise ValueError(f"{where}: entry {name!r} holds pickled objects; refused (pickle is never loaded)")
    if stored.kind not in kinds or stored.fields is not None or stored.subdtype is not None:
        raise ValueError(f"{where}: entry {name!r} has non-numeric dtype {stored}")
    native = stored.newbyteorder("=")
    if dtype is not None and native != np.dtype(dtype):
        raise ValueError(f"{where}: entry {name!r} has dtype {native}, but the file declares {np.dtype(dtype)}")
    count = math.prod(shape)
    nbytes = count * stored.itemsize
    if max_bytes is not None and nbytes > max_bytes:
        raise ValueError(f"{where}: entry {name!r} holds {nbytes} bytes (shape {shape}, {native}), more than the "
                         f"{max_bytes} bytes the architecture needs")
    if len(blob) - fp.tell() != nbytes:
        raise ValueError(f"{where}: entry {name!r} is corrupt: {len(blob) - fp.tell()} bytes of data for an array "
                         f"of {nbytes} bytes (shape {shape}, dtype {stored})")
    arr = np.frombuffer(blob, stored, count, fp.tell()).reshape(shape, order="F" if fortran_order else "C")
    return arr.astype(native)  # a copy: writable, native byte order


def _checked_format(meta, expected_format, supported_versions, where):
    fmt, version = meta.get("format"), meta.get("format_version")
    if fmt != expected_format:
        raise ValueError(f"{where}: expected a {expected_format!r} file, got format {fmt!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version not in supported_versions:
        raise ValueError(
            f"{where}: unsupported format_version {version!r} of {fmt!r} "
            f"(this minidl reads {', '.join(map(str, supported_versions))}); minidl_version {meta.get('minidl_version')!r}"
        )
    return meta


def _open_regular(path):
    """Open ``path`` for reading, refusing anything but a regular file before reading a byte.

    ``O_NONBLOCK`` makes opening a FIFO return at once (no writer needed); ``fstat`` of the
    open descriptor then says what was opened, with no window between check and open."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        refuse_non_regular(path, os.fstat(fd), "read")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _parse_header(arr, where):
    if arr.dtype.kind == "U" and arr.ndim == 0:
        text = str(arr)
    elif arr.dtype == np.uint8 and arr.ndim == 1:
        try:
            text = arr.tobytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{where}: {CONFIG_KEY!r} is not UTF-8 text ({err})") from None
    else:
        raise ValueError(
            f"{where}: {CONFIG_KEY!r} must be JSON text (a unicode string or uint8 bytes), "
            f"got dtype {arr.dtype} shape {arr.shape}"
        )
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as err:  # RecursionError: nesting too deep
        raise ValueError(f"{where}: {CONFIG_KEY!r} is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: {CONFIG_KEY!r} must be a JSON object, got {type(meta).__name__}")
    return meta
