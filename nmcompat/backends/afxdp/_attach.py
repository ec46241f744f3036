"""The XDP program of an interface, shared by every port of this process on it.

The first port on an interface loads and attaches nmcompat's redirect
program (through a BPF link, so it goes away with this process); later
ports on the same interface add their queues to its XSKMAP; the last
close detaches it.
"""
from __future__ import annotations

import os
import threading
from typing import Dict, Tuple

_lock = threading.Lock()
_attached: Dict[Tuple[int, str], "Attachment"] = {}


def queue_count(ifname: str) -> int:
    """Queues of an interface (the larger of its real RX and TX counts)."""
    base = f"/sys/class/net/{ifname}/queues"
    try:
        names = os.listdir(base)
    except OSError:
        return 1
    rx = sum(n.startswith("rx-") for n in names)
    tx = sum(n.startswith("tx-") for n in names)
    return max(rx, tx, 1)


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
