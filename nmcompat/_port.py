"""Port: one open netmap port (one netmap_if), whatever its backend.

Open is staged (resolve the name -> register in the engine -> map the
memory -> build the rings) and every stage is undone in reverse when a
later one fails.  Ports are context managers; close() is idempotent.

Threads: every call into the C port is counted (_enter/_leave).  close()
refuses new calls, interrupts a poll() waiting in another thread
(nmc_port_interrupt: it raises PortClosed) and frees the C port only after
the last call in progress has returned.
"""
from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

from nmcompat._batch import recv_args, send_args
from nmcompat._ffi import check, ffi, lib
from nmcompat._memory import Memory
from nmcompat._ring import Ring
from nmcompat.errors import PortClosed, os_error

POLLIN, POLLOUT, POLLERR = select.POLLIN, select.POLLOUT, select.POLLERR
# the kernel sockets under a NIC backend's port (they stay with the process
# that opened it: a child forked later gets EOWNERDEAD from the engine)
_SOCKETS = {"afxdp": "AF_XDP", "afpacket": "AF_PACKET"}


@dataclass(frozen=True)
class PortInfo:
    """The REGISTER reply plus what nmcompat chose (see docs/DESIGN.md)."""
    name: str
    backend: str
    mem_id: int
    memsize: int
    nr_offset: int
    tx_rings: int
    rx_rings: int
    tx_slots: int
    rx_slots: int
    host_tx_rings: int
    host_rx_rings: int
    extra_bufs: int
    buf_size: int
    buf_num: int
    bound_tx: range
    bound_rx: range
    region: str
    # NIC ports (AF_XDP): what the kernel actually gave us
    xdp_mode: Optional[str] = None          # "drv" (native) or "skb" (generic)
    zerocopy: Optional[bool] = None
    multibuffer: Optional[bool] = None      # frames larger than a buffer as NS_MOREFRAG chains
    queues: tuple = ()
    xdp_fallback_reason: str = ""           # why "auto" did not get drv mode
    host_tap: str = ""                      # NIC ports with host rings: the tap they own
    why: str = ""                           # why this backend (admode, and what failed before it)


@dataclass(frozen=True)
class PktHdr:
    """libpcap-style header of one received packet (netmap's nm_pkthdr)."""
    ts: float           # ring->ts at the rxsync that brought it, seconds
    caplen: int         # bytes in the data handed over
    len: int            # length of the packet on the wire
    flags: int          # NM_MORE_PKTS (1) when more packets follow in this batch
    ring: int
    slot: int


NM_MORE_PKTS = 1
_DETAILS = {   # the reason of an EINVAL from a sync
    "txsync": "invalid head, cur or slot in a TX ring; the ring was reinitialized",
    "rxsync": "invalid head, cur or slot in an RX ring; the ring was reinitialized",
}


def _counted(verb: str, fn, doc: str):
    """A Port method calling fn(handle) as a counted call (Port._c without
    its extra call: the syncs are the calls made most often)."""
    def call(self) -> None:
        calls = self._calls
        calls.append(verb)
        try:
            if self._closed:
                raise PortClosed(self.name, verb)
            rc = fn(self._h)
        finally:
            calls.pop()
            if self._closed and not calls:
                self._calls_done.set()
        if rc < 0:
            self._fail(rc, verb)
    call.__name__, call.__qualname__ = verb, f"Port.{verb}"
    call.__doc__ = doc
    return call


class Port:
    """An open port.  Use nmcompat.open() to make one.

    Safe to share between threads: close() in one thread makes a poll()
    waiting in another raise PortClosed, and frees the C port only after
    every call in progress has returned.  Memory views (ring.slots,
    ring.buf(), nextpkt() data, numpy arrays over them) kept after close()
    no longer reach the shared memory: close() maps private zero-filled
    pages over them, so they read zeros and what is written to them goes
    nowhere another port could see (see docs/DESIGN.md, Python).
    """

    def __init__(self, name: str, backend: str, handle, details: Optional[dict] = None,
                 on_close: Optional[Callable[[], None]] = None) -> None:
        self._h = handle
        self.name = name
        self._pid = os.getpid()
        self._closed = False
        self._on_close = on_close
        self._calls: list = []                  # one item per call into the C port in progress
        self._calls_done = threading.Event()    # set by the last call to leave after close()
        self._closing = threading.Lock()        # one close() frees the port
        try:
            self.info = self._read_info(backend, details or {})
            self._mem = self._map()
            self.tx_rings = self._rings(self.info.bound_tx, 0)
            self.rx_rings = self._rings(self.info.bound_rx, 1)
        except BaseException:
            self._release()
            self._closed = True
            if on_close:
                on_close()
            raise

    # -- construction ---------------------------------------------------
    def _read_info(self, backend: str, details: dict) -> PortInfo:
        ci = ffi.new("struct nmc_port_info *")
        check(lib.nmc_port_info(self._h, ci), "describe", self.name)
        return PortInfo(
            name=self.name, backend=backend, mem_id=ci.nr_mem_id, memsize=ci.nr_memsize,
            nr_offset=ci.nr_offset, tx_rings=ci.nr_tx_rings, rx_rings=ci.nr_rx_rings,
            tx_slots=ci.nr_tx_slots, rx_slots=ci.nr_rx_slots,
            host_tx_rings=ci.nr_host_tx_rings, host_rx_rings=ci.nr_host_rx_rings,
            extra_bufs=ci.nr_extra_bufs, buf_size=ci.buf_size, buf_num=ci.buf_num,
            bound_tx=range(ci.first_tx_ring, ci.last_tx_ring),
            bound_rx=range(ci.first_rx_ring, ci.last_rx_ring),
            region=ffi.string(ci.region_path).decode(), **details)

    # what a NativePort does its own way: map, free (0 or -errno), end a poll()
    def _map(self) -> Memory:
        return Memory(self.info.region, self.info.memsize, self.name)

    def _release(self) -> int:
        return lib.nmc_port_close(self._h)

    def _interrupt(self) -> None:
        lib.nmc_port_interrupt(self._h)

    def _rings(self, bound: range, direction: int) -> List[Ring]:
        nifp = self._mem.cast("struct netmap_if *", self.info.nr_offset)
        ntx, htx = nifp.ni_tx_rings, nifp.ni_host_tx_rings
        total = ntx + htx + nifp.ni_rx_rings + nifp.ni_host_rx_rings
        ring_ofs = self._mem.array("<i8", total, self.info.nr_offset + 56)
        first = 0 if direction == 0 else ntx + htx
        return [Ring(self._mem, self.info.nr_offset + int(ring_ofs[first + i]), self.info.buf_num)
                for i in bound]

    @property
    def nifp(self):
        """The netmap_if (a cffi struct pointer into the shared memory)."""
        return self._mem.cast("struct netmap_if *", self.info.nr_offset)

    @property
    def bufs_head(self) -> int:
        """nifp->ni_bufs_head: the first extra buffer (0 ends the list)."""
        return int(self.nifp.ni_bufs_head)

    @bufs_head.setter
    def bufs_head(self, idx: int) -> None:
        self.nifp.ni_bufs_head = idx

    def buf(self, idx: int) -> memoryview:
        """Writable zero-copy view of buffer idx of this port's region."""
        rings = self.tx_rings or self.rx_rings
        return rings[0].buf(idx)

    # -- calls into C: counted, so that close() can wait for them ---------
    def _live(self):
        """The C handle, for callers that run their own C loop on it (the
        tools); such a loop is not counted, so close the port after it."""
        if self._closed:
            raise PortClosed(self.name)
        return self._h

    # list.append/pop are atomic: a call counts itself, then checks _closed;
    # close() sets _closed, then counts the calls.  Either the call sees
    # _closed, or close() sees the call and waits for it.
    def _enter(self, verb: str):
        self._calls.append(verb)
        if self._closed:
            self._leave()
            raise PortClosed(self.name, verb)
        return self._h

    def _leave(self) -> None:
        self._calls.pop()
        if self._closed and not self._calls:
            self._calls_done.set()

    def _c(self, verb: str, fn, *args) -> int:
        """fn(handle, *args) as a counted call; a negative result raises."""
        calls = self._calls
        calls.append(verb)
        try:
            if self._closed:
                raise PortClosed(self.name, verb)
            rc = fn(self._h, *args)
        finally:
            calls.pop()
            if self._closed and not calls:
                self._calls_done.set()
        return rc if rc >= 0 else self._fail(rc, verb)

    def _fail(self, rc: int, verb: str):
        if rc == -errno.ECANCELED and self._closed:
            raise PortClosed(self.name, verb)
        if rc == -errno.EOWNERDEAD:             # a NIC port inherited across fork()
            raise os_error(-rc, verb, self.name, (
                f"the port's {_SOCKETS.get(self.info.backend, 'kernel')} sockets belong to "
                f"process {self._pid} (ports do not survive fork(); open the port again in "
                "the child)"))
        raise os_error(-rc, verb, self.name, _DETAILS.get(verb, "") if rc == -errno.EINVAL else "")

    # -- data path: one C call each (a NativePort's loops take its ring view)
    _inject_c, _send_c, _recv_c, _next_c, _copy_c, _forward_c = map(staticmethod, (
        lib.nmc_inject, lib.nmc_send_batch, lib.nmc_recv_batch, lib.nmc_next_packet,
        lib.nmc_copy_packet, lib.nmc_forward))

    def fileno(self) -> int:
        """The port's pollable descriptor, for select, poll, epoll or asyncio's
        add_reader (level-triggered): readable while an rxsync would hand out
        packets, writable while a txsync would find room, whatever was called
        before.  It stays readable until an rxsync finds nothing left (see
        docs/DESIGN.md section 8; NIC ports hand out their kernel sockets)."""
        return self._c("get the descriptor of", lib.nmc_port_fd)

    txsync = _counted("txsync", lib.nmc_txsync, """NIOCTXSYNC.  Raises OSError(EINVAL)
        after repairing a ring whose head/cur/slots were invalid (netmap's reinit).""")
    rxsync = _counted("rxsync", lib.nmc_rxsync, """NIOCRXSYNC.  Raises OSError(EINVAL)
        after a reinit, as txsync.""")

    def poll(self, events: int = POLLIN, timeout_ms: int = -1) -> int:
        """netmap's poll(): syncs, then waits.  Returns revents (POLLERR after
        a reinit), 0 on timeout.  Releases the GIL while it waits; raises
        PortClosed when another thread closes the port meanwhile.  A signal
        whose Python handler returns does not end the wait: it goes on for
        what is left of the timeout (PEP 475, as Python's own calls); a
        handler that raises ends it with that exception."""
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        while True:
            try:
                return self._c("poll", lib.nmc_poll, events, timeout_ms)
            except InterruptedError:
                if deadline is not None:    # the handler has run by now (and returned)
                    timeout_ms = max(0, int((deadline - time.monotonic()) * 1000))

    def inject(self, data) -> int:
        """nm_inject(): queue one packet (NS_MOREFRAG chain if larger than a
        buffer) on a TX ring with room; no syscall.  Returns len(data) or 0."""
        buf = ffi.from_buffer(data)
        return self._c("inject into", self._inject_c, buf, len(buf))

    def send(self, packets: np.ndarray, lengths: Optional[np.ndarray] = None,
             sync: bool = True) -> int:
        """Queue packets[i][:lengths[i]] for every row of a 2-D uint8 array
        (one C call), then txsync.  Returns how many were queued.  A length
        beyond the row raises BadArgument."""
        packets, lengths = send_args(self.name, packets, lengths)
        n, stride = packets.shape
        sent = self._c("send to", self._send_c, ffi.from_buffer("uint8_t[]", packets), stride,
                       ffi.from_buffer("uint32_t[]", lengths), n)
        if sync:
            self.txsync()
        return sent

    def recv(self, max_packets: int = 512, snaplen: int = 2048, sync: bool = True,
             out: Optional[np.ndarray] = None, lengths: Optional[np.ndarray] = None):
        """rxsync, then take up to max_packets whole packets (MOREFRAG chains
        reassembled) in one C call.  Returns (data[:n], lengths[:n]): rows of
        snaplen bytes and each packet's full length.  Rows are allocated for
        at most the packets the RX rings hold; max_packets above 2**24 or
        snaplen above 1 MiB raise BadArgument."""
        rx_slots = sum(r.num_slots for r in self.rx_rings)
        out, lengths, take = recv_args(self.name, rx_slots, max_packets, snaplen, out, lengths)
        if sync:
            self.rxsync()
        n = self._c("receive from", self._recv_c, ffi.from_buffer("uint8_t[]", out),
                    out.shape[1], ffi.from_buffer("uint32_t[]", lengths), take)
        return out[:n], lengths[:n]

    def _next(self, whole: bool):
        p = ffi.new("struct nmc_pkt *")
        h = self._enter("receive from")
        try:
            if self._next_c(h, int(whole), p) != 1:
                return None
            if p.nfrags == 1:
                data = self._mem.view(p.buf_ofs, p.first_len)
            else:
                dst = bytearray(p.len)
                check(self._copy_c(h, p, ffi.from_buffer("uint8_t[]", dst), p.len),
                      "copy", self.name)
                data = memoryview(dst)
        finally:
            self._leave()
        hdr = PktHdr(ts=p.ts_sec + p.ts_usec / 1e6, caplen=len(data), len=p.len,
                     flags=0, ring=p.ring, slot=p.slot)
        return hdr, data

    def nextpkt(self):
        """nm_nextpkt(): (PktHdr, memoryview) of the next slot, MOREFRAG not
        followed, or None; no syscall.  The view is valid until the next
        rxsync."""
        return self._next(whole=False)

    def dispatch(self, callback: Callable, count: int = -1) -> int:
        """nm_dispatch(): call callback(hdr, data) for up to count packets
        (all if count <= 0), reassembling MOREFRAG chains; hdr.flags has
        NM_MORE_PKTS on all but the last.  No syscall; returns the count."""
        done, item = 0, self._next(whole=True)
        while item is not None and (count <= 0 or done < count):
            following = self._next(whole=True) if count <= 0 or done + 1 < count else None
            hdr, data = item
            if following is not None:
                hdr = PktHdr(hdr.ts, hdr.caplen, hdr.len, NM_MORE_PKTS, hdr.ring, hdr.slot)
            callback(hdr, data)
            done, item = done + 1, following
        return done

    def forward(self, dst: "Port", limit: int = 1 << 30, copy: bool = False) -> int:
        """netmap's bridge step: move whole packets from this port's RX rings
        to dst's TX rings (buffer swap when both share a region, else a
        copy; copy=True forces it).  A copy into smaller buffers splits a slot
        that does not fit them; a packet that could never fit dst's TX ring
        is dropped.  No sync; returns the RX slots moved (and dropped)."""
        if type(dst)._forward_c is not type(self)._forward_c:
            raise os_error(errno.EOPNOTSUPP, "forward from", self.name, f"{dst.name} is a "
                           f"{dst.info.backend} port: forward() joins two native ports or two others")
        to = dst._enter("forward to")
        try:
            return self._c("forward from", self._forward_c, to, limit, int(copy))
        finally:
            dst._leave()

    def stats(self) -> dict:
        """Per-port counters (packets/bytes moved by this port's rings, syncs,
        reinits, wakeups sent, sleeps)."""
        st = ffi.new("struct nmc_port_stats *")
        self._c("read counters of", lib.nmc_port_stats, st)
        return {k: getattr(st, k) for k in dir(st)}

    def xdp_stats(self) -> list:
        """NIC ports: XDP_STATISTICS of each bound queue's AF_XDP socket, plus
        the slots txsync could not send (tx_dropped)."""
        info, out = ffi.new("struct nmc_xsk_info *"), []
        h = self._enter("read counters of")
        try:
            while lib.nmc_xsk_info(h, len(out), info) == 0:
                out.append({f: getattr(info, f) for f in (
                    "queue", "rx_dropped", "rx_invalid_descs", "tx_invalid_descs", "rx_ring_full",
                    "rx_fill_ring_empty_descs", "tx_ring_empty_descs", "tx_dropped")})
        finally:
            self._leave()
        return out

    # -- teardown -------------------------------------------------------
    def close(self) -> None:
        """Unbind and unmap.  A poll() waiting in another thread raises
        PortClosed; the C port is freed once every call in progress has
        returned.  Views handed out then read private zero pages."""
        with self._closing:
            if self._closed:
                return
            self._closed = True                 # no new call from here on
        while self._calls:
            self._interrupt()                   # again: another thread may drain its bell
            self._calls_done.wait(0.05)
        with contextlib.suppress(AttributeError):
            self._mem.close()
        rc = self._release()
        self._h = None
        if self._on_close:
            self._on_close()
        if rc < 0:
            raise os_error(-rc, "close", self.name)

    def __enter__(self) -> "Port":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"mem_id={self.info.mem_id}"
        return f"<Port {self.name} {self.info.backend} {state}>"
