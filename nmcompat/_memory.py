"""The Python-owned mapping of a port's netmap memory.

The engine maps the region for its own use; this second mapping of the same
file (same pages) is the one user-visible views derive from, so a numpy
array or memoryview that outlives the port keeps its memory mapped instead
of dangling.
"""
from __future__ import annotations

import mmap
import os

import numpy as np

from nmcompat._ffi import ffi


class Memory:
    """netmap memory [IF pool | RING pool | BUF pool] of one region."""

    def __init__(self, path: str, file_offset: int, size: int) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            self._mm = mmap.mmap(fd, size, mmap.MAP_SHARED,
                                 mmap.PROT_READ | mmap.PROT_WRITE, offset=file_offset)
        finally:
            os.close(fd)
        self.size = size
        self._base = ffi.from_buffer("char[]", self._mm)

    def cast(self, ctype: str, offset: int):
        """A cffi pointer of type ctype at offset (kept valid by this object)."""
        return ffi.cast(ctype, self._base + offset)

    def array(self, dtype, count: int, offset: int) -> np.ndarray:
        """A writable numpy view of count items of dtype at offset."""
        return np.frombuffer(self._mm, dtype=dtype, count=count, offset=offset)

    def view(self, offset: int, length: int) -> memoryview:
        return memoryview(self._mm)[offset:offset + length]

    def close(self) -> None:
        """Drop our references; the mapping goes away with its last view."""
        if self._base is not None:
            ffi.release(self._base)
            self._base = None
        try:
            self._mm.close()
        except BufferError:
            pass        # views are alive: they keep the mapping until collected
