"""The Python-owned mapping of a port's netmap memory.

The engine maps the region for its own use; this second mapping of the
netmap memory file (same pages; the engine's control state is in another
file, ctl.<id>, never mapped here) is the one user-visible views
(ring.slots, ring.buf(), nextpkt() data, numpy arrays over them) derive from.

The mapping is made with mmap(2) itself, not Python's mmap module (which
keeps a duplicate of the file's descriptor for as long as any view lives),
so a closed port holds nothing of its region: neither a descriptor nor,
after close(), a mapping of the file.

At close, a view may still be alive (ring.slots always is while its Ring
is).  Its memory must not stay the shared region: the same rings and
buffers may belong to a port opened later.  So close() maps private,
zero-filled, anonymous pages over the whole range (mmap MAP_FIXED on the
same address): a stale view reads zeros, and what is written through it
lands in pages no other port maps.  The address range stays valid until
the last view is gone (each view keeps the mapping's owner object alive),
and is unmapped then.
"""
from __future__ import annotations

import ctypes
import errno
import mmap
import os

import numpy as np

from nmcompat._ffi import ffi
from nmcompat.errors import os_error

_MAP_FIXED = 0x10                       # Linux, every architecture
_MAP_FAILED = 2**64 - 1                 # (void *)-1 on 64-bit Linux
_RW = mmap.PROT_READ | mmap.PROT_WRITE
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)


def _map_shared(fd: int, size: int) -> int:
    addr = _libc.mmap(None, size, _RW, mmap.MAP_SHARED, fd, 0)
    if addr is None or addr == _MAP_FAILED:
        err = ctypes.get_errno() or errno.ENOMEM
        raise OSError(err, os.strerror(err))
    return addr


def _replace_with_private_zeros(addr: int, size: int) -> None:
    got = _libc.mmap(addr, size, _RW, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_FIXED, -1, 0)
    if got != addr:
        err = ctypes.get_errno() or errno.ENOMEM
        raise os_error(err, "detach the views of", "a closed port's memory")


class Memory:
    """netmap memory [IF pool | RING pool | BUF pool] of one region: the
    memory file, size bytes from offset 0."""

    def __init__(self, path: str, size: int, port: str = "", fd: int = -1) -> None:
        """Map path (or the open descriptor fd of it, such as a registered
        /dev/netmap descriptor); a failure (EMFILE, ENOMEM...) names port
        and the file."""
        try:
            if fd >= 0:
                addr = _map_shared(fd, size)
            else:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
                try:
                    addr = _map_shared(fd, size)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise os_error(exc.errno, "map the memory of", port or path,
                           f"{exc.strerror} ({path})") from None
        self.size = size
        self._addr = addr
        # the owner of the mapping: every view keeps it alive (through the
        # buffer below), and the last one to go unmaps the range
        owner = ffi.gc(ffi.cast("char *", addr), lambda _p: _libc.munmap(addr, size))
        self._buf = ffi.buffer(owner, size)
        self._base = owner

    @property
    def address(self) -> int:
        """Where the mapping starts in this process."""
        return self._addr

    def cast(self, ctype: str, offset: int):
        """A cffi pointer of type ctype at offset (kept valid by this object)."""
        return ffi.cast(ctype, self._base + offset)

    def array(self, dtype, count: int, offset: int) -> np.ndarray:
        """A writable numpy view of count items of dtype at offset."""
        return np.frombuffer(self._buf, dtype=dtype, count=count, offset=offset)

    def view(self, offset: int, length: int) -> memoryview:
        return memoryview(self._buf)[offset:offset + length]

    def close(self) -> None:
        """Detach every view from the shared memory (private zero pages over
        the range); the range is unmapped when the last view is gone."""
        if self._base is None:
            return
        _replace_with_private_zeros(self._addr, self.size)
        self._base = self._buf = None
