"""A libpcap-like handle over a netmap port, so pcap-based code ports easily.

    import nmcompat.pcapcompat as pcap
    p = pcap.open_live("netmap:eth0", 65535, True, 100)
    p.loop(-1, lambda hdr, data: print(hdr.ts, hdr.caplen, hdr.len, bytes(data[:14])))

What maps to what:

=========================  =========================================================
libpcap                    here
=========================  =========================================================
pcap_open_live(d, s, p, t) ``open_live(portspec, snaplen, promisc, to_ms)`` (any
                           nmcompat port name: ``netmap:eth0``, ``netmap:x}1``,
                           ``vale0:a``; keyword options go to nmcompat.open)
pcap_dispatch(p, cnt, cb)  ``dispatch(cnt, callback)``: what one rxsync brings, at
                           most cnt (<= 0: all); waits up to to_ms for the first
                           (to_ms 0: no limit) unless non-blocking.  Returns the
                           count, or PCAP_ERROR_BREAK (-2) after breakloop()
pcap_loop(p, cnt, cb)      ``loop(cnt, callback)``: until cnt packets (<= 0: forever)
                           or breakloop(); returns 0 or -2
pcap_next / pcap_next_ex   ``next()`` -> (hdr, bytes) or None on timeout;
                           ``next_ex()`` -> (1, hdr, bytes) or (0, None, None)
pcap_sendpacket / _inject  ``sendpacket(data)`` -> 0 (raises OSError ENOBUFS when no
                           TX room appears within to_ms); ``inject(data)`` -> len
pcap_stats                 ``stats()`` -> PcapStat(ps_recv, ps_drop, ps_ifdrop)
pcap_get_selectable_fd     ``get_selectable_fd()`` / ``fileno()``: POLLIN when
                           packets arrived after a sync found the ring empty,
                           so call dispatch(-1) until it returns 0 before
                           select() (see Port.fileno)
pcap_setnonblock/get...    ``setnonblock(flag)``, ``getnonblock()``
pcap_breakloop             ``breakloop()``
pcap_datalink / snapshot   ``datalink()`` (always DLT_EN10MB), ``snapshot()``
pcap_close                 ``close()`` (also a context manager)
=========================  =========================================================

The callback is ``callback(hdr, data)``: ``hdr.ts`` is seconds (a float),
``hdr.caplen`` the bytes in ``data`` (at most snaplen), ``hdr.len`` the
length of the packet; ``data`` is a memoryview of the packet in the ring
(a copy only for packets spread over several buffers), valid during the
callback only, as libpcap's ``u_char *``.  next()/next_ex() return copies.

Honest differences: ``ts`` is the time of the rxsync that brought the
packet's batch (netmap's ``ring->ts``), not a per-packet kernel timestamp;
promisc is not applied (a NIC's promiscuous mode is an interface setting:
``ip link set eth0 promisc on``); there are no BPF filters (setfilter()
raises), no savefiles (see nmcompat.tools._pcap), no device listing, no
capture direction; packets a handle takes are consumed (netmap rings, not
a tap); dispatch() calls Python once per packet, so heavy capture belongs
in the C batch calls (Port.recv).
"""
from __future__ import annotations

import errno
import select
from dataclasses import dataclass
from typing import Callable

import nmcompat
from nmcompat.errors import os_error

DLT_EN10MB = 1
PCAP_ERROR = -1
PCAP_ERROR_BREAK = -2


@dataclass(frozen=True)
class PcapHdr:
    """struct pcap_pkthdr: ts in seconds, captured and wire lengths."""
    ts: float
    caplen: int
    len: int


@dataclass(frozen=True)
class PcapStat:
    """struct pcap_stat."""
    ps_recv: int
    ps_drop: int
    ps_ifdrop: int


class Pcap:
    """A live capture handle on one netmap port (see open_live)."""

    def __init__(self, port, snaplen: int = 65535, promisc: bool = True, to_ms: int = 1000) -> None:
        self.port = port
        self._snaplen = max(1, int(snaplen))
        self.promisc = bool(promisc)
        self.to_ms = int(to_ms)
        self._nonblock = False
        self._break = False
        self._received = 0

    # -- receiving ------------------------------------------------------
    def _wait(self) -> None:
        if self._nonblock:
            self.port.rxsync()
        else:
            self.port.poll(select.POLLIN, self.to_ms if self.to_ms > 0 else -1)

    def dispatch(self, cnt: int, callback: Callable) -> int:
        """pcap_dispatch(): what the next rxsync brings (waiting up to to_ms),
        at most cnt packets when cnt > 0."""
        if self._take_break():
            return PCAP_ERROR_BREAK
        self._wait()
        snap, done = self._snaplen, 0

        def deliver(hdr, data):
            cap = min(hdr.caplen, snap)
            callback(PcapHdr(hdr.ts, cap, hdr.len), data[:cap])

        while cnt <= 0 or done < cnt:
            if self._break:
                break
            if self.port.dispatch(deliver, 1) == 0:
                break
            done += 1
        self._received += done
        if done == 0 and self._take_break():
            return PCAP_ERROR_BREAK
        return done

    def loop(self, cnt: int, callback: Callable) -> int:
        """pcap_loop(): until cnt packets (cnt <= 0: forever) or breakloop()."""
        done = 0
        while cnt <= 0 or done < cnt:
            n = self.dispatch(cnt - done if cnt > 0 else -1, callback)
            if n == PCAP_ERROR_BREAK or self._take_break():
                return PCAP_ERROR_BREAK
            done += n
        return 0

    def next_ex(self):
        """pcap_next_ex(): (1, hdr, bytes), or (0, None, None) on timeout."""
        got = []
        n = self.dispatch(1, lambda hdr, data: got.append((hdr, bytes(data))))
        if n == PCAP_ERROR_BREAK:
            return PCAP_ERROR_BREAK, None, None
        return (1, *got[0]) if got else (0, None, None)

    def next(self):
        """pcap_next(): (hdr, bytes), or None on timeout."""
        rc, hdr, data = self.next_ex()
        return (hdr, data) if rc == 1 else None

    def breakloop(self) -> None:
        """pcap_breakloop(): the running (or next) dispatch/loop returns -2."""
        self._break = True

    def _take_break(self) -> bool:
        hit, self._break = self._break, False
        return hit

    # -- sending --------------------------------------------------------
    def inject(self, data) -> int:
        """pcap_inject(): queue and send one packet; returns its length."""
        n = self.port.inject(data)
        if n == 0:
            self.port.poll(select.POLLOUT, self.to_ms if self.to_ms > 0 else 1000)
            n = self.port.inject(data)
        if n == 0:
            raise os_error(errno.ENOBUFS, "send on", self.port.name, "no TX room")
        self.port.txsync()
        return n

    def sendpacket(self, data) -> int:
        """pcap_sendpacket(): 0 once the packet is queued and synced."""
        self.inject(data)
        return 0

    # -- the rest -------------------------------------------------------
    def stats(self) -> PcapStat:
        """Packets this handle delivered; drops the port knows of."""
        st = self.port.stats()
        ifdrop = 0
        if self.port.info.backend == "afxdp":
            ifdrop = sum(q["rx_dropped"] for q in self.port.xdp_stats())
        return PcapStat(self._received, int(st.get("rx_dropped", 0)), ifdrop)

    def fileno(self) -> int:
        """The port's descriptor, armed: readable when packets arrive after
        the ring was found empty (drain with dispatch(-1) before select)."""
        fd = self.port.fileno()
        self.port.rxsync()              # arms the empty rings of a bare descriptor
        return fd

    get_selectable_fd = fileno

    def setnonblock(self, nonblock: bool) -> None:
        self._nonblock = bool(nonblock)

    def getnonblock(self) -> bool:
        return self._nonblock

    def datalink(self) -> int:
        return DLT_EN10MB

    def snapshot(self) -> int:
        return self._snaplen

    def setfilter(self, *args, **kwargs):
        raise os_error(errno.EOPNOTSUPP, "set a filter on", self.port.name,
                       "BPF filters are not supported by nmcompat.pcapcompat; filter in the callback")

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> "Pcap":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_live(portspec: str, snaplen: int = 65535, promisc: bool = True, to_ms: int = 1000,
              **open_options) -> Pcap:
    """pcap_open_live() on a netmap port name (options go to nmcompat.open)."""
    return Pcap(nmcompat.open(portspec, **open_options), snaplen, promisc, to_ms)


def open_port(port, snaplen: int = 65535, to_ms: int = 1000) -> Pcap:
    """A handle over a Port already open (closing the handle closes it)."""
    return Pcap(port, snaplen, True, to_ms)


__all__ = ["open_live", "open_port", "Pcap", "PcapHdr", "PcapStat", "DLT_EN10MB",
           "PCAP_ERROR", "PCAP_ERROR_BREAK"]
