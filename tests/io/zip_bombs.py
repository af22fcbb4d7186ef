"""Zip bombs for the file tests: archives assembled by hand whose members may declare any size.

``bomb(name)`` is a deflated member of 1 GiB of zeros, about 1 MiB in the file, made in
milliseconds; ``raw_zip`` writes members with any declared size (zipfile refuses to write a lie).
"""

import functools
import io
import struct
import zipfile
import zlib

import numpy as np

GIB = 2**30
_CHUNK = 2**20


@functools.lru_cache(maxsize=4)
def deflated_zeros(size, prefix=b""):
    """``(raw deflate stream, crc32)`` of ``prefix`` followed by ``size`` zero bytes, made in a few
    milliseconds: after a full flush every MiB of zeros compresses to the same ~1 KiB block."""
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = head.compress(prefix) + head.flush(zlib.Z_FULL_FLUSH) if prefix else b""
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = block.compress(bytes(_CHUNK)) + block.flush(zlib.Z_FULL_FLUSH)
    whole, rest = divmod(size, _CHUNK)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream += block * whole + tail.compress(bytes(rest)) + tail.flush()
    crc = zlib.crc32(prefix)
    for _ in range(whole):
        crc = zlib.crc32(bytes(_CHUNK), crc)
    return stream, zlib.crc32(bytes(rest), crc)


def raw_zip(entries):
    """A zip archive of ``(name, data, method, crc, declared_size)`` entries, written by hand so that
    a member can declare any size (zipfile itself would refuse to write a lie)."""
    out, central = bytearray(), bytearray()
    for name, data, method, crc, size in entries:
        encoded = name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(encoded), 0)
        out += encoded + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(encoded), 0, 0, 0, 0, 0, offset)
        central += encoded
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + eocd)


def stored(name, blob):
    return (name, blob, zipfile.ZIP_STORED, zlib.crc32(blob), len(blob))


def bomb(name, size=GIB, prefix=b"", declared=None):
    """A deflated member of ``prefix`` + ``size`` zeros (about ``size / 1000`` bytes in the file),
    declaring ``declared`` bytes (default: the truth)."""
    stream, crc = deflated_zeros(size, prefix)
    return (name, stream, zipfile.ZIP_DEFLATED, crc, len(prefix) + size if declared is None else declared)


def npy_header(shape, dtype=np.float32):
    """The ``.npy`` header numpy writes for an array of ``shape`` and ``dtype``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                               "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()
