"""A port registered on a /dev/netmap descriptor: the kernel's (or the
emulation's) netmap memory mapped from that descriptor, syncs as
NIOCTXSYNC/NIOCRXSYNC, poll() as poll(2) on it (docs/DESIGN.md section 15)."""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import select

from nmcompat._ffi import ffi, lib
from nmcompat._memory import Memory
from nmcompat._port import Port, PortInfo, _counted
from nmcompat.errors import os_error
from nmcompat._portspec import (NR_REG_ALL_NIC, NR_REG_DEFAULT, NR_REG_NIC_SW, NR_REG_NULL,
                                NR_REG_ONE_NIC, NR_REG_ONE_SW, NR_REG_SW, NR_RX_RINGS_ONLY,
                                NR_TX_RINGS_ONLY)
from nmcompat.backends.native._ctrl import DEVICE, NIOCRXSYNC, NIOCTXSYNC


class NativeHandle:
    """The registered descriptor and the kernel's REGISTER reply; a second
    descriptor (an eventfd) lets close() end a poll() of another thread."""

    def __init__(self, fd: int, spec, reply, extmem=None) -> None:
        self.fd = fd
        self.spec = spec
        self.reply = reply
        self.extmem = extmem            # @extmem: the program's mapping is the memory
        self.bell = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.view = ffi.new("struct nmc_rings *")      # no ring until view_of()

    def view_of(self, mem: Memory, pool: int, info, tx: list, rx: list) -> None:
        """The struct nmc_rings of the bound rings at these offsets of mem."""
        view = self.view = ffi.new("struct nmc_rings *")
        view.mem = mem.cast("uint8_t *", 0)
        view.buf_pool_ofs, view.buf_size, view.buf_num = pool, info.buf_size, info.buf_num
        view.mem_id, view.ntx, view.nrx = info.mem_id, len(tx), len(rx)
        self._keep = [mem]
        for direction, offsets in (("tx", tx), ("rx", rx)):
            rings = ffi.new("struct netmap_ring *[]", [mem.cast("struct netmap_ring *", o)
                                                       for o in offsets] or 1)
            slots = ffi.new("uint32_t[]", [int(r.num_slots) for r in rings[0:len(offsets)]] or 1)
            setattr(view, direction, rings)
            setattr(view, f"{direction}_slots", slots)
            self._keep += [rings, slots]

    def sync(self, request: int) -> int:
        try:
            fcntl.ioctl(self.fd, request)
        except OSError as exc:
            return -exc.errno
        return 0

    def txsync(self) -> int:
        return self.sync(NIOCTXSYNC)

    def rxsync(self) -> int:
        return self.sync(NIOCRXSYNC)

    def poll(self, events: int, timeout_ms: int) -> int:
        """poll(2) on the descriptor (netmap's poll does the syncs): its
        revents, 0 on timeout, -ECANCELED once interrupt() was called."""
        waiter = select.poll()
        waiter.register(self.fd, events)
        waiter.register(self.bell, select.POLLIN)
        ready = dict(waiter.poll(None if timeout_ms < 0 else timeout_ms))
        if self.bell in ready:
            return -errno.ECANCELED
        return ready.get(self.fd, 0)

    def interrupt(self) -> None:
        os.eventfd_write(self.bell, 1)

    def close(self) -> int:
        rc = 0
        for fd in (self.fd, self.bell):
            try:
                os.close(fd)
            except OSError as exc:
                rc = rc or -exc.errno
        return rc


def bound_rings(mode: int, ringid: int, flags: int, rings: int, host: int, skip: int) -> range:
    """The ring indexes (netmap_if order: hardware rings, then host rings)
    a registration binds in one direction (netmap_interp_ringid); none when
    flags has `skip` (NR_RX_RINGS_ONLY for TX, NR_TX_RINGS_ONLY for RX)."""
    if flags & skip:
        return range(0)
    if mode in (NR_REG_ALL_NIC, NR_REG_DEFAULT, NR_REG_NULL):
        return range(0, rings)
    if mode == NR_REG_SW:
        return range(rings, rings + host)
    if mode == NR_REG_NIC_SW:
        return range(0, rings + host)
    if mode == NR_REG_ONE_NIC:
        first = ringid if ringid < rings else 0
        return range(first, first + 1)
    if mode == NR_REG_ONE_SW:
        return range(rings + ringid, rings + ringid + 1)
    return range(0)


class NativePort(Port):
    """A Port on netmap's own memory: everything reads the rings the kernel
    (or the emulation) maintains; the engine is not involved."""

    def _read_info(self, backend: str, details: dict) -> PortInfo:
        h, reg = self._h, self._h.reply
        spec = h.spec
        tx = bound_rings(spec.mode, spec.ringid, spec.flags, reg.nr_tx_rings,
                         reg.nr_host_tx_rings, NR_RX_RINGS_ONLY)
        rx = bound_rings(spec.mode, spec.ringid, spec.flags, reg.nr_rx_rings,
                         reg.nr_host_rx_rings, NR_TX_RINGS_ONLY)
        return PortInfo(
            name=self.name, backend=backend, mem_id=reg.nr_mem_id, memsize=reg.nr_memsize,
            nr_offset=reg.nr_offset, tx_rings=reg.nr_tx_rings, rx_rings=reg.nr_rx_rings,
            tx_slots=reg.nr_tx_slots, rx_slots=reg.nr_rx_slots,
            host_tx_rings=reg.nr_host_tx_rings, host_rx_rings=reg.nr_host_rx_rings,
            extra_bufs=reg.nr_extra_bufs, buf_size=0, buf_num=0, bound_tx=tx, bound_rx=rx,
            region=DEVICE, **details)

    def _map(self) -> Memory:
        """Map the descriptor; read the buffer geometry from a bound ring
        (netmap's memory ends with the buffer pool) and build the view of
        the bound rings the engine's loops work on (send, recv, ...)."""
        mem = self._h.extmem or Memory(DEVICE, self.info.memsize, self.name, fd=self._h.fd)
        nifp = mem.cast("struct netmap_if *", self.info.nr_offset)
        ntx = int(nifp.ni_tx_rings + nifp.ni_host_tx_rings)
        ofs = mem.array("<i8", ntx + int(nifp.ni_rx_rings + nifp.ni_host_rx_rings),
                        self.info.nr_offset + 56)
        tx = [self.info.nr_offset + int(ofs[i]) for i in self.info.bound_tx]
        rx = [self.info.nr_offset + int(ofs[ntx + i]) for i in self.info.bound_rx]
        if tx or rx:
            ring = mem.cast("struct netmap_ring *", (tx + rx)[0])
            buf_size, pool = int(ring.nr_buf_size), (tx + rx)[0] + int(ring.buf_ofs)
            self.info = dataclasses.replace(self.info, buf_size=buf_size,
                                            buf_num=(self.info.memsize - pool) // buf_size)
            self._h.view_of(mem, pool, self.info, tx, rx)
        return mem

    def _release(self) -> int:
        return self._h.close()

    def _interrupt(self) -> None:
        self._h.interrupt()

    def _live(self):
        """The tools' C loops (pkt-gen, bridge, lb, replay) drive engine
        ports only: refused, saying how to get one."""
        raise os_error(errno.EOPNOTSUPP, "run a tool on", self.name, "nmcompat's tools drive "
                       "engine ports; this one is native (/dev/netmap): open it with backend='pipe', "
                       "'vale' or a NIC backend, or run netmap's own tool")

    def fileno(self) -> int:
        """The registered /dev/netmap descriptor (poll, select, epoll)."""
        return self._c("get the descriptor of", lambda h: h.fd)

    txsync = _counted("txsync", NativeHandle.txsync, "NIOCTXSYNC on the descriptor.")
    rxsync = _counted("rxsync", NativeHandle.rxsync, "NIOCRXSYNC on the descriptor.")

    def poll(self, events: int = select.POLLIN, timeout_ms: int = -1) -> int:
        """poll(2) on the descriptor: netmap syncs the rings and waits.
        Returns revents, 0 on timeout; PortClosed when another thread
        closes the port meanwhile."""
        return self._c("poll", NativeHandle.poll, events, timeout_ms)


def _on_view(fn):
    """A C loop of the engine called on the ring view instead of a port."""
    return staticmethod(lambda h, *args: fn(h.view, *args))


def _inject(h, buf, length: int) -> int:
    lens = ffi.new("uint32_t[1]", [min(length, 0xFFFFFFFF)])
    rc = lib.nmc_rings_send(h.view, buf, length, lens, 1)
    return length if rc == 1 else rc


NativePort._inject_c = staticmethod(_inject)
NativePort._send_c, NativePort._recv_c, NativePort._next_c, NativePort._copy_c = map(
    _on_view, (lib.nmc_rings_send, lib.nmc_rings_recv, lib.nmc_rings_next, lib.nmc_rings_copy))
NativePort._forward_c = staticmethod(lambda h, to, *args: lib.nmc_rings_forward(h.view, to.view, *args))


def _no_counters(verb: str, name: str):
    def refuse(self, *args, **kwargs):
        raise os_error(errno.EOPNOTSUPP, verb, self.name, f"{name}() reads counters of the "
                       "engine's ports; netmap keeps none a program can read per port")
    refuse.__name__ = name
    return refuse


NativePort.stats = _no_counters("read counters of", "stats")
NativePort.xdp_stats = _no_counters("read counters of", "xdp_stats")
