"""The XDP program of an interface, shared by every port of this process on it.

The first port on an interface loads and attaches nmcompat's redirect
program (through a BPF link, so it goes away with this process); later
ports on the same interface add their queues to its XSKMAP; the last
close detaches it.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import threading
from typing import Dict, Tuple

_lock = threading.Lock()
_attached: Dict[Tuple[int, str], "Attachment"] = {}


def queue_count(ifname: str) -> int:
    """Queues of an interface (the larger of its real RX and TX counts).

    Asked through ethtool's GCHANNELS on a socket of the calling thread's
    network namespace; /sys/class/net shows the namespace that mounted
    /sys, which is another one after a bare setns() (the name may even
    exist there, as another interface).  sysfs is the fallback for drivers
    without channel reporting, and only when its ifindex matches.
    """
    channels = _ethtool_channels(ifname)
    if channels:
        return channels
    base = f"/sys/class/net/{ifname}"
    try:
        with open(f"{base}/ifindex") as f:
            if int(f.read()) != socket.if_nametoindex(ifname):
                return 1
        names = os.listdir(f"{base}/queues")
    except (OSError, ValueError):
        return 1
    rx = sum(n.startswith("rx-") for n in names)
    tx = sum(n.startswith("tx-") for n in names)
    return max(rx, tx, 1)


_SIOCETHTOOL, _ETHTOOL_GCHANNELS = 0x8946, 0x3C


def _ethtool_channels(ifname: str) -> int:
    """combined + max(rx, tx) channels, or 0 when the driver does not say."""
    req = struct.pack("=9I", _ETHTOOL_GCHANNELS, *([0] * 8))
    buf = ctypes.create_string_buffer(req, len(req))
    ifr = struct.pack("16sP", ifname.encode()[:15], ctypes.addressof(buf)).ljust(40, b"\0")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s.fileno(), _SIOCETHTOOL, ifr)
    except OSError:
        return 0
    _, _, _, _, _, rx, tx, _, combined = struct.unpack("=9I", buf.raw)
    return combined + max(rx, tx)


class Attachment:
    """One loaded program + its link on one interface, reference counted."""

    def __init__(self, ifindex: int, mode: str) -> None:
        from nmcompat import bpf
        self.ifindex, self.requested = ifindex, mode
        self.obj = bpf.load_xsk_redirect()
        try:
            self.link = self.obj.attach_xdp(ifindex, mode)
        except BaseException:
            self.obj.close()
            raise
        self.refs = 0

    @property
    def mode(self) -> str:
        return self.link.mode

    def add_queue(self, queue: int, fd: int) -> None:
        self.obj.map_update("xsks", queue, fd)

    def remove_queue(self, queue: int) -> None:
        try:
            self.obj.map_delete("xsks", queue)
        except OSError:
            pass        # the socket's close removed it already

    def release(self) -> None:
        with _lock:
            self.refs -= 1
            if self.refs > 0:
                return
            _attached.pop((self.ifindex, self.requested), None)
        self.obj.close()


def attach_program(ifindex: int, mode: str) -> Attachment:
    """The process's attachment on ifindex (created on first use), referenced."""
    with _lock:
        att = _attached.get((ifindex, mode))
        if att is None:
            att = Attachment(ifindex, mode)
            _attached[(ifindex, mode)] = att
        att.refs += 1
        return att
