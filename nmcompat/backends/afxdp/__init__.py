"""AF_XDP: netmap NIC ports (``netmap:eth0``, ``netmap:eth0-k``) over XSK sockets.

The engine owns the sockets and the rings (csrc/transport/nic/xsk.c); this module owns
policy: which queues, the XDP program (nmcompat.bpf, no libbpf) that
redirects each bound queue to its socket, and the errors users can act on.
Requires root (CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW).
"""
from __future__ import annotations

import errno
import os
import socket

from nmcompat.backends.afxdp._attach import attach_program, queue_count

AF_XDP = 44
XDP_COPY, XDP_ZEROCOPY = 1 << 1, 1 << 2


def probe():
    """Can this process create AF_XDP sockets?  Cheap, no side effect kept."""
    from nmcompat.backends import Probe
    try:
        socket.socket(AF_XDP, socket.SOCK_RAW, 0).close()
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            return Probe(False, "AF_XDP needs root (CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF)")
        if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT):
            return Probe(False, "this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)")
        raise
    return Probe(True, "AF_XDP sockets available")


def open(spec, *, xdp_mode="auto", zerocopy=None, multibuffer=True, **options):  # noqa: A001
    """Register NIC port spec.name on AF_XDP; returns (handle, details)."""
    from nmcompat.backends.afxdp._open import open_xsk
    ifname = spec.name
    try:
        ifindex = socket.if_nametoindex(ifname)
    except OSError:
        from nmcompat._ffi import os_error
        raise os_error(errno.ENXIO, "open", spec.text,
                       f"no interface '{ifname}' in this network namespace") from None
    bind = 0 if zerocopy is None else (XDP_ZEROCOPY if zerocopy else XDP_COPY)
    return open_xsk(spec, ifname, ifindex, queue_count(ifname), xdp_mode, bind,
                    multibuffer, options)


__all__ = ["probe", "open", "attach_program", "queue_count", "os"]
