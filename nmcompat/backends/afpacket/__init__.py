"""AF_PACKET: netmap's emulated ("generic") NIC mode.

Works wherever a raw packet socket can be opened (CAP_NET_RAW): no XDP, no
BPF.  The engine copies between TPACKET rings and netmap buffers
(csrc/transport/nic/pkt.c); this module picks the queues and reports what it did.
"""
from __future__ import annotations

import errno
import socket

from nmcompat._ffi import ffi, lib, os_error
from nmcompat._portspec import NR_REG_ALL_NIC, NR_REG_ONE_NIC
from nmcompat.backends.afxdp._attach import queue_count


def probe():
    from nmcompat.backends import Probe
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            return Probe(False, "AF_PACKET needs CAP_NET_RAW (root)")
        if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
            return Probe(False, "this kernel has no AF_PACKET sockets")
        raise
    return Probe(True, "AF_PACKET sockets available")


def open(spec, *, xdp_mode="auto", zerocopy=None, multibuffer=True, **options):  # noqa: A001
    """Register NIC port spec.name in emulated mode; returns (handle, details, None)."""
    if spec.mode not in (NR_REG_ALL_NIC, NR_REG_ONE_NIC):
        raise os_error(errno.EOPNOTSUPP, "open", spec.text,
                       "host rings ('^', '*') are not available in emulated mode")
    try:
        ifindex = socket.if_nametoindex(spec.name)
    except OSError:
        raise os_error(errno.ENXIO, "open", spec.text,
                       f"no interface '{spec.name}' in this network namespace") from None
    nq = queue_count(spec.name)
    if spec.mode == NR_REG_ONE_NIC and spec.ringid >= nq:
        raise os_error(errno.EINVAL, "open", spec.text, f"{spec.name} has {nq} queue(s)")
    from nmcompat import config
    from nmcompat.backends.afxdp._open import _request
    conf = dict(options.get("conf") or {})
    for key in ("tx_slots", "rx_slots"):
        conf.setdefault(key, config.default_slots(emulated=True))
    options = dict(options, conf=conf)
    keep = []
    req = _request(spec, spec.name, ifindex, nq, 0, multibuffer, options, keep)
    out = ffi.new("struct nmc_port **")
    rc = lib.nmc_pkt_open(req, out)
    if rc < 0:
        raise os_error(-rc, "open", spec.text)
    queues = tuple(range(nq)) if spec.mode == NR_REG_ALL_NIC else (spec.ringid,)
    return out[0], {"queues": queues}, None
