"""AF_XDP: netmap NIC ports (``netmap:eth0``, ``netmap:eth0-2`` for one queue pair) over XSK sockets.

The engine owns the sockets and the rings (csrc/transport/nic/xsk.c); this module owns
policy: which queues, the XDP program (nmcompat.bpf, no libbpf) that
redirects each bound queue to its socket, and the errors users can act on.
Requires root (CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW).
"""
from __future__ import annotations

import errno
import socket

from nmcompat.backends._base import COMMON, OPTIONS, Opened, Probe
from nmcompat.backends._host import open_host_side
from nmcompat.backends._nic import HOST_MODES, NicBackend
from nmcompat.errors import OptionError

AF_XDP = 44
XDP_COPY, XDP_ZEROCOPY = 1 << 1, 1 << 2


class AfxdpBackend(NicBackend):
    """NIC ports over AF_XDP sockets, with nmcompat's XDP program."""
    name = "afxdp"
    takes = COMMON | {"xdp_mode", "zerocopy", "multibuffer", "stack_tx"}

    def probe(self) -> Probe:
        """Can this process create AF_XDP sockets?  Cheap, no side effect kept."""
        try:
            socket.socket(AF_XDP, socket.SOCK_RAW, 0).close()
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES):
                return Probe(False, "AF_XDP needs root (CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF)")
            if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT):
                return Probe(False, "this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)")
            raise
        return Probe(True, "AF_XDP sockets available")

    def validate(self, spec, options: dict) -> None:
        """A port of host rings only (IF^, IF^N) has no AF_XDP socket and no
        XDP program: the options of those are refused, not ignored."""
        super().validate(spec, options)
        if spec.mode not in HOST_MODES or self.hw_queues(spec, 1):
            return
        for key in ("xdp_mode", "zerocopy", "multibuffer"):
            if key in options and options[key] != OPTIONS[key].default:
                raise OptionError(spec.text, key, "not used by a port of host rings only (it binds "
                                  "no NIC queue: no AF_XDP socket, no XDP program)")

    def register(self, spec, options: dict) -> Opened:
        """One AF_XDP socket per bound queue, then the XDP program."""
        from nmcompat.backends.afxdp._open import open_xsk
        ifindex, nq = self.interface(spec, self.host_rings(options))
        zerocopy = options.get("zerocopy")
        bind = 0 if zerocopy is None else (XDP_ZEROCOPY if zerocopy else XDP_COPY)
        keep: list = []
        req = self.request(spec, ifindex, nq, options, keep)
        req.xdp_bind, req.no_sg = bind, int(not options.get("multibuffer", True))
        drop = self.stack_drop(spec, nq, options)
        if spec.mode not in HOST_MODES and not drop:
            return open_xsk(spec, req, nq, options.get("xdp_mode", "auto"), options)
        side = open_host_side(spec.text, spec.name, ifindex, spec.mode in HOST_MODES, (), drop)
        try:
            req.nic_tap_fd = side.tap_fd
            opened = open_xsk(spec, req, nq, options.get("xdp_mode", "auto"), options,
                              xdp=bool(self.hw_queues(spec, nq)))
        except BaseException:
            side.close()
            raise
        return Opened(opened.handle, dict(opened.details, host_tap=side.tap_name),
                      lambda: (opened.closer and opened.closer(), side.close()))
