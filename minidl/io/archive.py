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

import errno
import json
import os
import re
import secrets
import stat
import time
import zipfile
from collections.abc import Mapping

import numpy as np

from .._version import __version__

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
    _atomic_savez(path, members)


_TMP_SUFFIX = ".minidl-tmp"
STALE_TMP_SECONDS = 60  # a temporary file untouched this long belongs to a writer that died


def file_kind(st):
    """What the ``os.stat`` result ``st`` describes, for error messages ("a FIFO", ...)."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((what for test, what in kinds if test(st.st_mode)), "not a regular file")


def refuse_non_regular(path, st, action):
    """Raise unless ``st`` (``os.stat`` of ``path``) is a regular file: ``IsADirectoryError``
    for a directory, ``ValueError`` naming what it is for a FIFO, device or socket."""
    if stat.S_ISREG(st.st_mode):
        return
    message = f"cannot {action} {path!r}: it is {file_kind(st)}, not a regular file"
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, message, path)
    raise ValueError(message)


def _atomic_savez(path, members):
    # Write through symlinks: the file replaced is the link's final target (created if dangling).
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None:
        refuse_non_regular(path, st, "save to")
    folder, base = os.path.split(target)
    _remove_stale_temporaries(folder, base)
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}{_TMP_SUFFIX}")
    # O_EXCL: never clobber someone else's file; mode 0o666 lets the umask decide, as open() would
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as err:  # name the destination, not the temporary file
        raise type(err)(err.errno, f"{err.strerror} (writing {path!r})", folder) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if st is not None:  # an existing file keeps its permissions (0600 stays 0600)
                os.chmod(tmp, stat.S_IMODE(st.st_mode))
            # a file object, not a name: np.savez would append ".npz" to a name
            np.savez(f, allow_pickle=False, **members)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def _remove_stale_temporaries(folder, base):
    """Remove the temporary files of earlier saves to ``folder/base`` whose writer was killed:
    only our own pattern (``.<base>.<12 hex digits>.minidl-tmp``), regular files of this user,
    untouched for ``STALE_TMP_SECONDS``."""
    pattern = re.compile(re.escape(f".{base}.") + "[0-9a-f]{12}" + re.escape(_TMP_SUFFIX))
    try:
        names = os.listdir(folder)
    except OSError:
        return
    now = time.time()
    for name in names:
        if not pattern.fullmatch(name):
            continue
        stale = os.path.join(folder, name)
        try:
            st = os.lstat(stale)
            mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
            if stat.S_ISREG(st.st_mode) and mine and now - st.st_mtime > STALE_TMP_SECONDS:
                os.remove(stale)
        except OSError:  # gone already, or not ours to remove
            pass


def read_archive(path, expected_format, supported_versions=(1,)):
    """Read a file written by ``write_archive``: returns ``(arrays, meta)``.

    ``arrays`` is ``{name: ndarray}`` (numeric arrays only); ``meta`` is the whole
    JSON header, including ``format``, ``format_version`` and ``minidl_version``.

    Raises ``FileNotFoundError`` (an ``OSError``) for a missing file, and
    ``ValueError`` naming ``path`` when the file is not an npz archive, is
    truncated or corrupt, holds a pickled (object) array, lacks the JSON header,
    or has another format name or an unsupported format version.
    """
    path = fspath(path, f"cannot read a {expected_format!r} file")
    where = f"cannot read {path!r}"
    with _open_regular(path) as f:
        magic = f.read(4)
        if magic not in _ZIP_MAGIC:
            what = "an empty file" if not magic else "not an npz (zip) archive"
            if magic.startswith(b"\x93NUM"):
                what = "a single .npy array, not an npz archive"
            raise ValueError(f"{where}: {what}")
        f.seek(0)
        _refuse_duplicate_members(f, where)
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as npz:
                names = list(npz.files)
                loaded = {name: _read_member(npz, name, where) for name in names}
        except ValueError as err:
            if str(err).startswith(where):
                raise
            raise ValueError(f"{where}: the archive is corrupt ({err})") from None
        except Exception as err:  # noqa: BLE001 - zipfile/zlib/numpy on damaged bytes raise many types
            # (BadZipFile, zlib.error, EOFError, tokenize.TokenError from a garbled .npy header,
            # MemoryError from a header declaring a huge shape, ...): all mean a damaged file.
            raise ValueError(f"{where}: the archive is truncated or corrupt ({type(err).__name__}: {err})") from None
    if CONFIG_KEY not in loaded:
        raise ValueError(f"{where}: no {CONFIG_KEY!r} entry; not a minidl file")
    meta = _parse_header(loaded.pop(CONFIG_KEY), where)
    fmt, version = meta.get("format"), meta.get("format_version")
    if fmt != expected_format:
        raise ValueError(f"{where}: expected a {expected_format!r} file, got format {fmt!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version not in supported_versions:
        raise ValueError(
            f"{where}: unsupported format_version {version!r} of {fmt!r} "
            f"(this minidl reads {', '.join(map(str, supported_versions))}); minidl_version {meta.get('minidl_version')!r}"
        )
    for name, arr in loaded.items():
        if arr.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"{where}: entry {name!r} has non-numeric dtype {arr.dtype}")
    return loaded, meta


def _refuse_duplicate_members(f, where):
    """Raise when two members of the zip ``f`` share a name (zipfile would read the last one)."""
    try:
        with zipfile.ZipFile(f) as zf:
            names = [info.filename for info in zf.infolist()]
    except Exception:  # noqa: BLE001 - a damaged archive is reported by the full read below
        return
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{where}: duplicate member names {duplicates}; refused")


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


def _read_member(npz, name, where):
    try:
        value = npz[name]
    except ValueError as err:  # numpy refuses object arrays before unpickling anything
        if "pickle" in str(err):
            raise ValueError(f"{where}: entry {name!r} holds pickled objects; refused (pickle is never loaded)") from None
        raise ValueError(f"{where}: entry {name!r} is corrupt ({err})") from None
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{where}: entry {name!r} is not a .npy array")
    return value


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
