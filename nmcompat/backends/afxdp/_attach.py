"""The XDP program of an interface, shared by every nmcompat port on it.

The first port on an interface loads and attaches nmcompat's redirect
program through a BPF link; later ports, in this process or in others, add
their queues to its XSKMAP, and other processes also take a reference to
the link (BPF_LINK_GET_FD_BY_ID).  The program goes away when the last
process holding the link closes its ports or dies.

Two first opens on one interface in two processes race: the kernel shows
the winner's program on the interface a moment before its link can be
opened by id (the link's id is published after the attach), and a
closing process's link stops being found a moment before its program
leaves the interface.  Either way an attach that finds nmcompat's program
without its link looks again, for at most LINK_WAIT_S: then the link is
there (joined), or the program is gone (attached anew).
"""
from __future__ import annotations

import errno
import os
import socket
import struct
import threading
import time
from typing import Dict

from nmcompat._ffi import os_error
from nmcompat.backends._nic import queue_count

_lock = threading.Lock()
_attached: Dict[int, object] = {}
XSK_MAP = "xsks"
LINK_WAIT_S = 1.0               # how long nmcompat's program may show without its link
_ATTACH_HINTS = {
    errno.ENOSPC: "native XDP on a veth needs at least as many RX queues as its peer has TX "
                  "queues, and {ifname} has {queues} queue(s): give it as many "
                  "(ip link add ... numrxqueues N) or use xdp_mode='skb'",
    errno.ERANGE: "the MTU of {ifname}'s veth peer is too large for native XDP on a program "
                  "without multi-buffer: lower that MTU, or use xdp_mode='skb'",
}


class Attachment:
    """The program this process loaded and attached to one interface."""

    def __init__(self, ifindex: int, mode: str) -> None:
        from nmcompat import bpf
        self.ifindex, self.requested = ifindex, mode
        self.obj = bpf.load_xsk_redirect()
        try:
            self.link = self.obj.attach_xdp(ifindex, mode)
        except OSError as exc:
            self.obj.close()
            hint = _ATTACH_HINTS.get(exc.errno)
            if hint is None:
                raise
            name = socket.if_indextoname(ifindex)
            raise os_error(exc.errno, "attach XDP program to", name,
                           hint.format(ifname=name, queues=queue_count(name))) from exc
        except BaseException:
            self.obj.close()
            raise
        self.mode, self.drv_error = self.link.mode, self.link.drv_error
        self.refs = 0

    def add_queue(self, queue: int, fd: int) -> None:
        self.obj.map_update("xsks", queue, fd)

    def close(self) -> None:
        # no forced detach: other processes may have joined the link; the
        # program goes when the last fd of the link is closed
        self.link.close(detach=False)
        self.obj.close()


class LinkUnseen(Exception):
    """nmcompat's program is on the interface and its link is not (yet, or
    any more) found by id: `error` is what to raise once looking again is over."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class SharedAttachment:
    """nmcompat's program attached by another process: we add our queues to
    its XSKMAP and hold a reference to its link, so it stays while we do."""

    def __init__(self, ifindex: int, mode: str, prog, attached_mode: str) -> None:
        from nmcompat.bpf import syscall
        self.ifindex, self.requested, self.mode, self.drv_error = ifindex, mode, attached_mode, ""
        self.link_fd = self.map_fd = -1
        try:
            self.link_fd = _find_link(syscall, ifindex, prog.id)
            self.map_fd = _find_map(syscall, prog.map_ids, XSK_MAP)
        except BaseException:
            self.close()
            raise
        self.refs = 0

    def add_queue(self, queue: int, fd: int) -> None:
        from nmcompat.bpf import syscall
        syscall.map_update(self.map_fd, struct.pack("=I", queue), struct.pack("=I", fd))

    def close(self) -> None:
        for fd in (self.map_fd, self.link_fd):
            if fd >= 0:
                os.close(fd)
        self.map_fd = self.link_fd = -1


def _find_link(syscall, ifindex: int, prog_id: int) -> int:
    for link_id in syscall.link_ids():
        try:
            fd = syscall.link_get_fd_by_id(link_id)
        except OSError:
            continue
        ltype, _, lprog, lif = syscall.link_info(fd)
        if ltype == syscall.BPF_LINK_TYPE_XDP and lif == ifindex and lprog == prog_id:
            return fd
        os.close(fd)
    raise LinkUnseen(os_error(errno.EBUSY, "share the XDP program of", f"interface {ifindex}",
                              "it is attached without a BPF link, so its lifetime cannot be shared"))


def _find_map(syscall, map_ids, name: str) -> int:
    for map_id in map_ids:
        fd = syscall.map_get_fd_by_id(map_id)
        if syscall.map_info(fd).name == name:
            return fd
        os.close(fd)
    raise os_error(errno.EBUSY, "share the XDP program", "", f"it has no map named {name}")


def _join(ifindex: int, mode: str):
    """Join nmcompat's program already on ifindex, or None if there is none."""
    from nmcompat.bpf import OUR_PREFIX, attached_programs
    attached_mode, infos = attached_programs(ifindex)
    ours = [i for i in infos.values() if i.name.startswith(OUR_PREFIX)]
    if not ours or len(ours) != len(infos):
        return None
    if mode != "auto" and attached_mode != mode:
        raise os_error(errno.EBUSY, "attach XDP program to", f"interface {ifindex}",
                       f"another process attached nmcompat's program in {attached_mode} mode")
    return SharedAttachment(ifindex, mode, ours[0], attached_mode)


def _nothing_attached(ifindex: int) -> bool:
    from nmcompat.bpf import attached_programs
    return not attached_programs(ifindex)[1]


def _join_or_attach(ifindex: int, mode: str):
    """Join nmcompat's program on ifindex, or attach it; a program seen
    without its link (another process attaching or detaching it right now)
    is looked at again until LINK_WAIT_S has passed."""
    deadline = time.monotonic() + LINK_WAIT_S
    while True:
        try:
            att = _join(ifindex, mode)
            if att is not None:
                return att
            try:
                return Attachment(ifindex, mode)
            except OSError as exc:      # lost a race with another process: join it
                if exc.errno != errno.EBUSY:
                    raise
                if (att := _join(ifindex, mode)) is not None:
                    return att
                if not _nothing_attached(ifindex):
                    raise               # a program that is not ours
        except LinkUnseen as unseen:
            if time.monotonic() >= deadline:
                raise unseen.error from None
        if time.monotonic() >= deadline:
            raise os_error(errno.EBUSY, "attach XDP program to", f"interface {ifindex}",
                           "another process kept attaching and detaching nmcompat's program")
        time.sleep(0.001)               # the kernel gives no event for a link that settles


def attach_program(ifindex: int, mode: str):
    """This process's attachment on ifindex (created, or joined, on first
    use), referenced; release_program() drops the reference."""
    with _lock:
        att = _attached.get(ifindex)
        if att is None:
            att = _join_or_attach(ifindex, mode)
            _attached[ifindex] = att
        elif mode != "auto" and att.mode != mode:
            raise os_error(errno.EBUSY, "attach XDP program to", f"interface {ifindex}",
                           f"this process attached it in {att.mode} mode already")
        att.refs += 1
        return att


def hold_link(ifindex: int) -> int:
    """A new descriptor of the link of nmcompat's program on ifindex, for a
    port that uses the program without opening it (a descriptor adopted
    under nmcompat exec): it keeps the program, and its XSKMAP, attached
    while open.  EOWNERDEAD when no nmcompat program is attached."""
    deadline = time.monotonic() + LINK_WAIT_S
    while True:
        try:
            att = _join(ifindex, "auto")
            break
        except LinkUnseen as unseen:
            if time.monotonic() >= deadline:
                raise unseen.error from None
        time.sleep(0.001)               # as _join_or_attach
    if att is None:
        raise os_error(errno.EOWNERDEAD, "hold the XDP program of", f"interface {ifindex}",
                       "nmcompat's program is no longer attached (its last port closed)")
    try:
        return os.dup(att.link_fd)
    finally:
        att.close()


def release_program(att) -> None:
    with _lock:
        att.refs -= 1
        if att.refs > 0:
            return
        _attached.pop(att.ifindex, None)
    att.close()
