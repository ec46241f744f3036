"""Ring: a netmap_ring in shared memory, with netmap's index helpers.

head, cur and tail read and write the ring itself, as C code would; slots
is a numpy structured array over the slot table; buf(idx) a writable view
of one buffer.  Nothing here copies packet data.
"""
from __future__ import annotations

import numpy as np

from nmcompat._memory import Memory
from nmcompat.errors import PortClosed

SLOT_DTYPE = np.dtype([("buf_idx", "<u4"), ("len", "<u2"), ("flags", "<u2"), ("ptr", "<u8")])
RING_HEADER = 256           # struct netmap_ring: slot[] starts here

NS_BUF_CHANGED = 0x0001
NS_REPORT = 0x0002
NS_FORWARD = 0x0004
NS_NO_LEARN = 0x0008
NS_INDIRECT = 0x0010
NS_MOREFRAG = 0x0020
NS_TXMON = 0x0040
NR_TIMESTAMP = 0x0002
NR_FORWARD = 0x0004


class Ring:
    """One bound netmap ring (TX or RX) of a port."""

    def __init__(self, mem: Memory, offset: int, buf_num: int) -> None:
        self._mem = mem
        self._offset = offset
        self._c = mem.cast("struct netmap_ring *", offset)
        self.num_slots = int(self._c.num_slots)
        self.nr_buf_size = int(self._c.nr_buf_size)
        self.ringid = int(self._c.ringid)
        self.dir = int(self._c.dir)
        self._buf_base = offset + int(self._c.buf_ofs)
        self._buf_num = buf_num
        self.slots = mem.array(SLOT_DTYPE, self.num_slots, offset + RING_HEADER)

    def _ring(self):
        if self._mem._base is None:
            raise PortClosed("the port of this ring")
        return self._c

    head = property(lambda self: int(self._ring().head),
                    lambda self, v: setattr(self._ring(), "head", v))
    cur = property(lambda self: int(self._ring().cur),
                   lambda self, v: setattr(self._ring(), "cur", v))
    tail = property(lambda self: int(self._ring().tail),
                    lambda self, v: setattr(self._ring(), "tail", v))
    flags = property(lambda self: int(self._ring().flags),
                     lambda self, v: setattr(self._ring(), "flags", v))

    @property
    def ts(self) -> float:
        """ring->ts (set by rxsync) in seconds."""
        ts = self._ring().ts
        return ts.tv_sec + ts.tv_usec / 1e6

    def next(self, i: int) -> int:
        """nm_ring_next(): the slot after i."""
        return 0 if i + 1 == self.num_slots else i + 1

    def space(self) -> int:
        """nm_ring_space(): slots from head to tail."""
        r = self._ring()
        return (r.tail - r.head) % self.num_slots

    def empty(self) -> bool:
        """nm_ring_empty(): head == tail."""
        r = self._ring()
        return r.head == r.tail

    def tx_pending(self) -> bool:
        """nm_tx_pending(): TX slots not yet drained by the other side."""
        r = self._ring()
        return self.next(r.tail) != r.head

    def buf(self, idx: int) -> memoryview:
        """Writable zero-copy view of buffer idx (NETMAP_BUF); numpy users
        wrap it with np.frombuffer(view, np.uint8)."""
        if not 0 <= idx < self._buf_num:
            raise IndexError(f"buffer index {idx} out of range [0, {self._buf_num})")
        self._ring()
        return self._mem.view(self._buf_base + idx * self.nr_buf_size, self.nr_buf_size)

    def __repr__(self) -> str:
        kind = "tx" if self.dir == 0 else "rx"
        return (f"<Ring {kind}{self.ringid} head={self.head} cur={self.cur} "
                f"tail={self.tail} num_slots={self.num_slots}>")
