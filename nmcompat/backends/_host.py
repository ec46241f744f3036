"""The host stack's side of a NIC port: host rings and the stack cut-off.

Host rings (``netmap:eth0^``, ``netmap:eth0*``): the port owns a tap device
(no address, IPv6 off, NOARP: it makes no traffic of its own; not persistent,
so it goes when its last descriptor closes).  Two tc programs of
``bpf/host_divert.bpf.c``, attached through TCX links (a link goes when its
fd closes, so a killed port leaves nothing attached):

- on the interface's egress, ``nmc_host_egress`` sends what the stack
  transmits there to the tap, whose descriptor the engine reads into the host
  RX ring (csrc/transport/nic/host.c): those frames no longer leave the NIC;
- on the tap's ingress, ``nmc_host_inject`` puts what the engine wrote on the
  tap (the host TX ring) into the interface's ingress, marked so that the
  port's own NIC RX capture leaves it to the stack.  Where the kernel has
  cls_u32 and act_mirred, the program only marks the frame and a classic
  filter on the tap redirects it (nmcompat/bpf/tc_mirred.py): generic XDP
  lets frames act_mirred redirected pass, so an AF_XDP port in skb mode
  does not take its own host TX frames back; else the program redirects.

Stack cut-off (AF_PACKET ports): ``nmc_nic_cutoff`` on the interface's
ingress drops the frames of the queues whose RX rings a port binds, so they
reach the port only, as in netmap (AF_XDP's XDP program already redirects
them).

Stack TX drop (ports binding NIC TX rings and no host rings, unless
``stack_tx``): ``nmc_stack_drop``, last on the interface's egress, drops
what the stack transmits there, as netmap does; a host-ring port's
``nmc_host_egress`` (attached first) still takes those frames.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from contextlib import ExitStack
from importlib import resources
from typing import Iterable

from nmcompat.bpf import syscall
from nmcompat.bpf.loader import BPFObject
from nmcompat.bpf.tc_mirred import redirect_ingress
from nmcompat.errors import os_error

HOST_DIVERT_OBJECT = "host_divert.bpf.o"
HOST_DIVERT_VERSION = 3

_TUNSETIFF = 0x400454CA
_IFF_TAP, _IFF_NO_PI = 0x0002, 0x1000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _SIOCGIFMTU, _SIOCSIFMTU = 0x8913, 0x8914, 0x8921, 0x8922
_IFF_UP, _IFF_NOARP = 0x1, 0x80
_SIOCGIFHWADDR, _SIOCSIFHWADDR = 0x8927, 0x8924
# a tap's largest MTU (65535 less its Ethernet header); an interface's may
# be larger (a veth's is 65535): the tap then takes less, and the stack's
# longer frames still reach it (a redirect checks no MTU) and are cut at
# 64 KiB by the host RX ring, counted (docs/DESIGN.md §12)
_TAP_MAX_MTU = 65535 - 14


def _object() -> BPFObject:
    path = resources.files("nmcompat.backends.afxdp") / HOST_DIVERT_OBJECT
    return BPFObject.load(str(path), expect_version=HOST_DIVERT_VERSION)


def _ifreq_int(sock: socket.socket, name: str, get: int, put: int, fn) -> None:
    """Read an int field of an ifreq (flags, mtu) and write fn(value) back."""
    req = struct.pack("16si", name.encode(), 0).ljust(40, b"\0")
    value = struct.unpack_from("i", fcntl.ioctl(sock.fileno(), get, req), 16)[0]
    fcntl.ioctl(sock.fileno(), put, struct.pack("16si", name.encode(), fn(value)).ljust(40, b"\0"))


def _make_tap(ifname: str, undo: ExitStack) -> tuple:
    """(fd, name, ifindex) of a new quiet tap with ifname's MTU (at most a
    tap's), up."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    undo.callback(os.close, fd)
    req = struct.pack("16sH", b"nmh%d", _IFF_TAP | _IFF_NO_PI).ljust(40, b"\0")
    name = fcntl.ioctl(fd, _TUNSETIFF, req)[:16].split(b"\0", 1)[0].decode()
    try:
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
            f.write("1")
    except FileNotFoundError:
        pass                            # no IPv6 in this kernel: nothing to silence
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        mtu = struct.unpack_from("i", fcntl.ioctl(
            s.fileno(), _SIOCGIFMTU, struct.pack("16si", ifname.encode(), 0).ljust(40, b"\0")), 16)[0]
        _ifreq_int(s, name, _SIOCGIFMTU, _SIOCSIFMTU, lambda _: min(mtu, _TAP_MAX_MTU))
        # the interface's MAC: a frame the tap takes in gets the packet type
        # (host, broadcast, other host) it would have on the interface, which
        # act_mirred's redirect keeps
        hwaddr = fcntl.ioctl(s.fileno(), _SIOCGIFHWADDR, struct.pack("16s", ifname.encode()).ljust(40, b"\0"))
        fcntl.ioctl(s.fileno(), _SIOCSIFHWADDR, struct.pack("16s", name.encode()) + hwaddr[16:])
        _ifreq_int(s, name, _SIOCGIFFLAGS, _SIOCSIFFLAGS, lambda v: v | _IFF_UP | _IFF_NOARP)
    return fd, name, socket.if_nametoindex(name)


def _refuse_second_host_side(ifname: str, ifindex: int) -> None:
    """EBUSY when another port has the host rings of ifname: its divert
    program would take the stack's frames before this one."""
    for prog_id in syscall.tcx_prog_ids(ifindex, syscall.BPF_TCX_EGRESS):
        try:
            fd = syscall.prog_get_fd_by_id(prog_id)
        except FileNotFoundError:
            continue                    # detached meanwhile
        try:
            name = syscall.prog_info(fd).name
        finally:
            os.close(fd)
        if name == "nmc_host_egress":
            raise OSError(errno.EBUSY, f"another port has the host rings of {ifname} (its "
                          f"nmc_host_egress program, id {prog_id}, is on {ifname}'s egress); "
                          "nmcompat gives an interface's host rings to one port at a time")


def _link(undo: ExitStack, links: list, obj: BPFObject, prog: str, ifindex: int, side: int,
          name: str, first: bool = True) -> None:
    fd = syscall.link_create_tcx(obj.program(prog).fileno(), ifindex, side, name, first=first)
    undo.callback(os.close, fd)
    links.append(fd)


def _mirred(tap_ifindex: int, ifindex: int) -> bool:
    """The tap's act_mirred redirect into the interface; False where the
    kernel has no cls_u32 or act_mirred (nmc_host_inject redirects then)."""
    try:
        redirect_ingress(tap_ifindex, ifindex)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        return False
    return True


class HostSide:
    """What a NIC port holds for the host stack; close() undoes all of it.
    ``link_fds``: the TCX links (exec's control plane hands them over)."""

    def __init__(self, undo: ExitStack, tap_fd: int = -1, tap_name: str = "",
                 link_fds: tuple = ()) -> None:
        self._undo, self.tap_fd, self.tap_name, self.link_fds = undo, tap_fd, tap_name, link_fds

    def close(self) -> None:
        self._undo.close()


def open_host_side(text: str, ifname: str, ifindex: int, host: bool,
                   cut_queues: Iterable[int] = (), stack_drop: bool = False) -> HostSide:
    """The tap and programs of host rings (``host``), the cut-off of
    ``cut_queues`` (AF_PACKET ports binding NIC RX rings), and the drop of
    the stack's frames on the egress (``stack_drop``); raises OSError
    "couldn't open TEXT: ..." naming the step that failed."""
    cut, links = tuple(cut_queues), []
    with ExitStack() as undo:
        try:
            obj = undo.enter_context(_object())
            if host:
                _refuse_second_host_side(ifname, ifindex)
            tap = _make_tap(ifname, undo) if host else (-1, "", 0)
            if host:
                obj.map_update("cfg", 0, tap[2])
                obj.map_update("cfg", 1, ifindex)
                _link(undo, links, obj, "nmc_host_egress", ifindex, syscall.BPF_TCX_EGRESS, ifname)
                _link(undo, links, obj, "nmc_host_inject", tap[2], syscall.BPF_TCX_INGRESS, tap[1])
                obj.map_update("cfg", 2, int(_mirred(tap[2], ifindex)))
            for q in cut:
                obj.map_update("cut", q, 1)
            if cut:
                _link(undo, links, obj, "nmc_nic_cutoff", ifindex, syscall.BPF_TCX_INGRESS, ifname)
            if stack_drop:
                _link(undo, links, obj, "nmc_stack_drop", ifindex, syscall.BPF_TCX_EGRESS, ifname,
                      first=False)
        except OSError as exc:
            why = exc.strerror or str(exc)
            if exc.errno == errno.EINVAL and "attach tc" in str(exc):
                why += " (this kernel has no TCX links: Linux 6.6 or later is needed)"
            raise os_error(exc.errno or errno.EIO, "open", text,
                           f"couldn't set up the host stack's side of {ifname}: {why}") from exc
        return HostSide(undo.pop_all(), tap[0], tap[1], tuple(links))
