"""AF_PACKET: netmap's emulated ("generic") NIC mode.

Works wherever a raw packet socket can be opened (CAP_NET_RAW): no XDP, no
BPF.  The engine copies between TPACKET rings and netmap buffers
(csrc/transport/nic/pkt.c); this module picks the queues and reports what it did.
Frames larger than a buffer always arrive as NS_MOREFRAG chains.
"""
from __future__ import annotations

import errno
import socket
from contextlib import ExitStack

from nmcompat import _space, config
from nmcompat._ffi import ffi, lib, os_error
from nmcompat._portspec import NR_TX_RINGS_ONLY
from nmcompat.backends._base import COMMON, Opened, Probe
from nmcompat.backends._host import open_host_side
from nmcompat.backends._nic import HOST_MODES, NicBackend

_BUSY = ("a receive queue it binds on {ifname} is bound by another emulated port, of this or "
         "another process (packet sockets would each get every frame: one port per receive "
         "queue), or a transmit queue it binds is held with NR_EXCLUSIVE (/x), or it asks for "
         "NR_EXCLUSIVE on a transmit queue another port holds")


class AfpacketBackend(NicBackend):
    """NIC ports in netmap's emulated mode, over AF_PACKET sockets."""
    name = "afpacket"
    takes = COMMON | {"stack_tx"}

    def probe(self) -> Probe:
        try:
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES):
                return Probe(False, "AF_PACKET needs CAP_NET_RAW (root)")
            if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
                return Probe(False, "this kernel has no AF_PACKET sockets")
            raise
        return Probe(True, "AF_PACKET sockets available")

    def register(self, spec, options: dict) -> Opened:
        """Register NIC port spec.name in emulated mode."""
        ifindex, nq = self.interface(spec, self.host_rings(options))
        conf = dict(options.get("conf") or {})
        for key in ("tx_slots", "rx_slots"):
            conf.setdefault(key, config.default_slots(emulated=True))
        keep: list = []
        req = self.request(spec, ifindex, nq, dict(options, conf=conf), keep)
        queues = self.hw_queues(spec, nq)
        cut = () if spec.flags & NR_TX_RINGS_ONLY else queues
        with ExitStack() as undo:
            side = open_host_side(spec.text, spec.name, ifindex, spec.mode in HOST_MODES, cut,
                                  self.stack_drop(spec, nq, options))
            undo.callback(side.close)
            req.nic_tap_fd = side.tap_fd
            out = ffi.new("struct nmc_port **")
            rc = lib.nmc_pkt_open(req, out)
            if rc == -errno.EBUSY:
                raise os_error(errno.EBUSY, "open", spec.text, _BUSY.format(ifname=spec.name))
            if rc < 0:
                raise os_error(-rc, "open", spec.text, _space.detail(-rc, options))
            undo.pop_all()
        return Opened(out[0], {"queues": queues, "host_tap": side.tap_name}, side.close)
