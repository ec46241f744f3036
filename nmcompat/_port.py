"""Port: one open netmap port (one netmap_if), whatever its backend.

Open is staged (resolve the name -> register in the engine -> map the
memory -> build the rings) and every stage is undone in reverse when a
later one fails.  Ports are context managers; close() is idempotent.
"""
from __future__ import annotations

import contextlib
import select
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

from nmcompat._ffi import check, ffi, lib, os_error
from nmcompat._memory import Memory
from nmcompat._ring import Ring
from nmcompat.errors import PortClosed

POLLIN, POLLOUT, POLLERR = select.POLLIN, select.POLLOUT, select.POLLERR


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


class Port:
    """An open port.  Use nmcompat.open() to make one."""

    def __init__(self, name: str, backend: str, handle, details: Optional[dict] = None,
                 on_close: Optional[Callable[[], None]] = None) -> None:
        self._h = handle
        self.name = name
        self._closed = False
        self._on_close = on_close
        try:
            self.info = self._read_info(backend, details or {})
            self._mem = Memory(self.info.region, self._file_offset, self.info.memsize)
            self.tx_rings = self._rings(self.info.bound_tx, 0)
            self.rx_rings = self._rings(self.info.bound_rx, 1)
        except BaseException:
            lib.nmc_port_close(handle)
            self._closed = True
            if on_close:
                on_close()
            raise
        self._pkt = ffi.new("struct nmc_pkt *")

    # -- construction ---------------------------------------------------
    def _read_info(self, backend: str, details: dict) -> PortInfo:
        ci = ffi.new("struct nmc_port_info *")
        check(lib.nmc_port_info(self._h, ci), "describe", self.name)
        self._file_offset = ci.mem_file_offset
        return PortInfo(
            name=self.name, backend=backend, mem_id=ci.nr_mem_id, memsize=ci.nr_memsize,
            nr_offset=ci.nr_offset, tx_rings=ci.nr_tx_rings, rx_rings=ci.nr_rx_rings,
            tx_slots=ci.nr_tx_slots, rx_slots=ci.nr_rx_slots,
            host_tx_rings=ci.nr_host_tx_rings, host_rx_rings=ci.nr_host_rx_rings,
            extra_bufs=ci.nr_extra_bufs, buf_size=ci.buf_size, buf_num=ci.buf_num,
            bound_tx=range(ci.first_tx_ring, ci.last_tx_ring),
            bound_rx=range(ci.first_rx_ring, ci.last_rx_ring),
            region=ffi.string(ci.region_path).decode(), **details)

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

    # -- data path: one C call each -------------------------------------
    def _live(self):
        if self._closed:
            raise PortClosed(self.name)
        return self._h

    def fileno(self) -> int:
        """The port's pollable descriptor (POLLIN: RX data, POLLOUT: TX room)."""
        return lib.nmc_port_fd(self._live())

    def txsync(self) -> None:
        """NIOCTXSYNC.  Raises OSError(EINVAL) after repairing a ring whose
        head/cur/slots were invalid (netmap's reinit)."""
        check(lib.nmc_txsync(self._live()), "txsync", self.name,
              "invalid head, cur or slot in a TX ring; the ring was reinitialized")

    def rxsync(self) -> None:
        """NIOCRXSYNC.  Raises OSError(EINVAL) after a reinit, as txsync."""
        check(lib.nmc_rxsync(self._live()), "rxsync", self.name,
              "invalid head, cur or slot in an RX ring; the ring was reinitialized")

    def poll(self, events: int = POLLIN, timeout_ms: int = -1) -> int:
        """netmap's poll(): syncs, then waits.  Returns revents (POLLERR after
        a reinit), 0 on timeout.  Releases the GIL while it waits."""
        return check(lib.nmc_poll(self._live(), events, timeout_ms), "poll", self.name)

    def inject(self, data) -> int:
        """nm_inject(): queue one packet (NS_MOREFRAG chain if larger than a
        buffer) on a TX ring with room; no syscall.  Returns len(data) or 0."""
        buf = ffi.from_buffer(data)
        return check(lib.nmc_inject(self._live(), buf, len(buf)), "inject into", self.name)

    def send(self, packets: np.ndarray, lengths: Optional[np.ndarray] = None,
             sync: bool = True) -> int:
        """Queue packets[i][:lengths[i]] for every row of a 2-D uint8 array
        (one C call), then txsync.  Returns how many were queued."""
        packets = np.ascontiguousarray(packets, dtype=np.uint8)
        if packets.ndim != 2:
            raise ValueError("packets must be a 2-D uint8 array (one row per packet)")
        n, stride = packets.shape
        if lengths is None:
            lengths = np.full(n, stride, dtype=np.uint32)
        lengths = np.ascontiguousarray(lengths, dtype=np.uint32)
        if lengths.shape != (n,):
            raise ValueError("lengths must have one entry per packet")
        sent = check(lib.nmc_send_batch(self._live(), ffi.from_buffer("uint8_t[]", packets), stride,
                                        ffi.from_buffer("uint32_t[]", lengths), n), "send to", self.name)
        if sync:
            self.txsync()
        return sent

    def recv(self, max_packets: int = 512, snaplen: int = 2048, sync: bool = True,
             out: Optional[np.ndarray] = None, lengths: Optional[np.ndarray] = None):
        """rxsync, then take up to max_packets whole packets (MOREFRAG chains
        reassembled) in one C call.  Returns (data[:n], lengths[:n]): rows of
        snaplen bytes and each packet's full length."""
        if out is None:
            out = np.empty((max_packets, snaplen), dtype=np.uint8)
        if lengths is None:
            lengths = np.empty(out.shape[0], dtype=np.uint32)
        if not (out.flags.c_contiguous and out.dtype == np.uint8 and out.ndim == 2):
            raise ValueError("out must be a C-contiguous 2-D uint8 array")
        if sync:
            self.rxsync()
        n = check(lib.nmc_recv_batch(self._live(), ffi.from_buffer("uint8_t[]", out), out.shape[1],
                                     ffi.from_buffer("uint32_t[]", lengths), min(max_packets, out.shape[0])),
                  "receive from", self.name)
        return out[:n], lengths[:n]

    def _next(self, whole: bool):
        if lib.nmc_next_packet(self._live(), int(whole), self._pkt) != 1:
            return None
        p = self._pkt
        if p.nfrags == 1:
            data = self._mem.view(p.buf_ofs, p.first_len)
        else:
            dst = bytearray(p.len)
            check(lib.nmc_copy_packet(self._h, p, ffi.from_buffer("uint8_t[]", dst), p.len), "copy", self.name)
            data = memoryview(dst)
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
        copy; copy=True forces it).  No sync; returns the slots moved."""
        return check(lib.nmc_forward(self._live(), dst._live(), limit, int(copy)),
                     "forward from", self.name)

    def stats(self) -> dict:
        """Per-port counters (packets/bytes moved by this port's rings, syncs,
        reinits, wakeups sent, sleeps)."""
        st = ffi.new("struct nmc_port_stats *")
        check(lib.nmc_port_stats(self._live(), st), "read counters of", self.name)
        return {k: getattr(st, k) for k in dir(st)}

    def xdp_stats(self) -> list:
        """NIC ports: XDP_STATISTICS of each bound queue's AF_XDP socket, plus
        the slots txsync could not send (tx_dropped)."""
        info, out, k = ffi.new("struct nmc_xsk_info *"), [], 0
        while lib.nmc_xsk_info(self._live(), k, info) == 0:
            out.append({f: getattr(info, f) for f in (
                "queue", "rx_dropped", "rx_invalid_descs", "tx_invalid_descs", "rx_ring_full",
                "rx_fill_ring_empty_descs", "tx_ring_empty_descs", "tx_dropped")})
            k += 1
        return out

    # -- teardown -------------------------------------------------------
    def close(self) -> None:
        """Unbind and unmap.  Views handed out keep their memory mapped."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(AttributeError):
            self._mem.close()
        rc = lib.nmc_port_close(self._h)
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
