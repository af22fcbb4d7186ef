"""Atomic writes that keep what a path is: the file under ``write_archive``.

``atomic_savez(path, members)`` writes ``np.savez(**members)`` to a temporary file in the
destination folder, flushes it to disk and moves it over the destination with
``os.replace``, so a failed save leaves an existing file intact and removes its
temporary. Saving over a symlink writes to its final target (a dangling link's target is
created; the link stays a link), an existing file keeps its mode, and a destination that
is not a regular file (directory, FIFO, device) is refused before anything is written.
Temporaries are named ``.<name>.<hex>.minidl-tmp``; those a killed writer left behind are
removed by the next save to the same destination once untouched for ``STALE_TMP_SECONDS``.
A write that fails with an ``OSError`` (a full disk) is re-raised with the same errno,
naming the destination.
"""

import errno
import os
import re
import secrets
import stat
import time

import numpy as np

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


def atomic_savez(path, members):
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
    except BaseException as err:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):  # a full disk, a quota: the same errno, naming the destination
            raise _naming(err, path) from None
        raise


def _naming(err, path):
    """``err`` (an ``OSError``) again, of the same type and errno, its message naming ``path``."""
    if err.errno is None:
        return type(err)(f"{err} (writing {path!r})")
    return type(err)(err.errno, f"{err.strerror} (writing {path!r})")


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
