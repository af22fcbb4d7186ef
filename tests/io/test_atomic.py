"""Atomic writes (minidl/io/atomic.py) and what saving and loading do to paths: symlinks written
through, non-regular files refused both ways, the mode kept, a killed writer's temporary cleaned up,
a full disk's error naming the destination."""

import errno
import os
import stat
import subprocess
import sys
import threading
import time
import warnings
import zipfile

import numpy as np
import pytest

import minidl as mdl
from minidl.io import atomic

needs_posix = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX symlinks, FIFOs and modes")


def _model(seed=0):
    mdl.set_seed(seed)
    return mdl.Sequential([mdl.Dense(2, 3), mdl.Tanh(), mdl.Dense(3, 1)])


def _same_weights(path, model):
    loaded = mdl.load_model(path)
    for (n, p), (m, q) in zip(model.named_parameters(), loaded.named_parameters()):
        assert n == m
        np.testing.assert_array_equal(p.data, q.data)


@needs_posix
def test_saving_over_a_symlink_writes_its_target(tmp_path):
    target, link = tmp_path / "real.npz", tmp_path / "link.npz"
    _model(0).save(target)
    os.symlink(target, link)
    new = _model(1)
    new.save(link)
    assert os.path.islink(link) and os.readlink(link) == str(target)
    _same_weights(target, new)  # the target holds the new model, not the old one
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "real.npz"]


@needs_posix
def test_saving_over_a_dangling_symlink_creates_its_target(tmp_path):
    target, link = tmp_path / "sub" / "made.npz", tmp_path / "link.npz"
    target.parent.mkdir()
    os.symlink(target, link)
    model = _model(2)
    model.save(link)
    assert os.path.islink(link) and target.is_file()
    _same_weights(link, model)


@needs_posix
def test_an_existing_files_mode_is_kept(tmp_path):
    path = tmp_path / "private.npz"
    _model(0).save(path)
    os.chmod(path, 0o600)
    _model(1).save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o640)
    _model(1).save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


@needs_posix
def test_saving_to_a_fifo_is_refused_before_writing(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"cannot save to '.*pipe\.npz': it is a FIFO \(named pipe\), not a regular file"):
        _model().save(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still a FIFO
    assert os.listdir(tmp_path) == ["pipe.npz"]  # and no temporary file


def test_saving_to_a_directory_is_refused(tmp_path):
    folder = tmp_path / "d.npz"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=r"cannot save to '.*d\.npz': it is a directory, not a regular file"):
        _model().save(folder)
    assert folder.is_dir() and os.listdir(folder) == [] and os.listdir(tmp_path) == ["d.npz"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or not os.path.exists("/dev/null"),
                    reason="only root can replace /dev/null; the check needs root to mean something")
def test_saving_to_a_character_device_is_refused_as_root():
    with pytest.raises(ValueError, match=r"cannot save to '/dev/null': it is a character device, not a regular file"):
        _model().save("/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@needs_posix
def test_loading_a_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            mdl.load_model(fifo)
        except Exception as err:  # noqa: BLE001 - recorded and checked below
            outcome.append(err)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=5)
    if worker.is_alive():  # unblock the reader so the test process can exit
        with open(fifo, "wb"):
            pass
        pytest.fail("load_model blocked on a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], ValueError)
    assert "cannot read" in str(outcome[0]) and "it is a FIFO (named pipe), not a regular file" in str(outcome[0])


def _temporaries(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith(".minidl-tmp"))


def test_a_killed_writers_temporary_is_removed_by_the_next_save(tmp_path):
    """A real writer killed (SIGKILL-like ``os._exit``) in the middle of ``np.savez`` leaves its
    temporary; the next save to the same path removes it once it is stale, and only it."""
    path = tmp_path / "m.npz"
    child = (
        "import os, numpy as np, minidl as mdl\n"
        "from minidl.io import atomic\n"
        "def dying(f, **kw):\n"
        "    f.write(b'PK half a file'); f.flush(); os._exit(9)\n"
        "atomic.np = type('np', (), {'savez': staticmethod(dying), **{k: getattr(np, k) for k in ('asarray', 'array')}})\n"
        f"mdl.Sequential([mdl.Dense(2, 1)]).save({str(path)!r})\n"
    )
    rc = subprocess.run([sys.executable, "-c", child], cwd=os.getcwd(), timeout=60).returncode
    assert rc == 9
    left = _temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith(".m.npz.") and not path.exists()

    other = tmp_path / ".other.npz.0123456789ab.minidl-tmp"  # another destination's temporary
    fresh = tmp_path / ".m.npz.aaaaaaaaaaaa.minidl-tmp"  # a live writer's (recent) temporary
    unrelated = tmp_path / ".m.npz.backup"
    for f in (other, fresh, unrelated):
        f.write_bytes(b"x")
    old = time.time() - atomic.STALE_TMP_SECONDS - 5
    for f in (tmp_path / left[0], other, unrelated):
        os.utime(f, (old, old))

    model = _model(3)
    model.save(path)
    _same_weights(path, model)
    assert _temporaries(tmp_path) == sorted([fresh.name, other.name])  # the stale one of m.npz is gone
    assert unrelated.exists()

    os.utime(fresh, (old, old))
    model.save(path)  # saves do not pile up temporaries
    assert _temporaries(tmp_path) == [other.name]


def test_duplicate_member_names_are_refused(tmp_path):
    path = tmp_path / "dup.npz"
    _model().save(path)
    with zipfile.ZipFile(path) as zf:
        body = zf.read("2.bias.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name" while writing it
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("2.bias.npy", body)
    with pytest.raises(ValueError, match=r"cannot read '.*dup\.npz': duplicate member names \['2\.bias\.npy'\]; refused"):
        mdl.load_model(path)


@pytest.mark.parametrize("where", ["savez", "fsync", "replace"])
def test_a_full_disk_is_an_oserror_naming_the_path(tmp_path, monkeypatch, where):
    """ENOSPC while writing, flushing or renaming: an OSError of the same errno naming the destination;
    the existing file untouched, no temporary left."""
    path = tmp_path / "m.npz"
    old = _model(1)
    old.save(path)
    good = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    target = {"savez": (atomic.np, "savez"), "fsync": (atomic.os, "fsync"), "replace": (atomic.os, "replace")}[where]
    monkeypatch.setattr(*target, full)
    with pytest.raises(OSError) as info:
        _model(2).save(path)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and type(info.value) is OSError
    assert str(info.value) == f"[Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)} (writing {str(path)!r})"
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["m.npz"]
    _same_weights(path, old)


def test_an_oserror_without_errno_names_the_path_too(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise PermissionError("quota exceeded")

    monkeypatch.setattr(atomic.np, "savez", broken)
    with pytest.raises(PermissionError, match=r"^quota exceeded \(writing '.*q\.npz'\)$"):
        _model().save(tmp_path / "q.npz")
    assert os.listdir(tmp_path) == []
