"""An interface's XDP state over rtnetlink, with plain sockets (no pyroute2).

:func:`xdp_query` asks ``RTM_GETLINK`` which XDP program is attached and in
which mode, whatever attached it (a BPF link, ``ip link set ... xdp``,
another library).  :func:`xdp_set_fd` is the legacy ``RTM_SETLINK``
attachment, which outlives its process; nmcompat attaches with BPF links
(:func:`nmcompat.bpf.syscall.link_create_xdp`) and keeps this for tools and
tests.  Both act in the caller's network namespace.
"""
from __future__ import annotations

import itertools
import os
import socket
import struct
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Tuple

from nmcompat._ffi import os_error

RTM_NEWLINK, RTM_GETLINK, RTM_SETLINK = 16, 18, 19
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLMSG_ERROR, NLMSG_DONE = 2, 3
SOL_NETLINK, NETLINK_EXT_ACK = 270, 11
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 1 << 15
NLA_TYPE_MASK = 0x3FFF
IFLA_EXT_MASK, IFLA_XDP = 29, 43
RTEXT_FILTER_SKIP_STATS = 1 << 3
IFLA_XDP_FD, IFLA_XDP_ATTACHED, IFLA_XDP_FLAGS, IFLA_XDP_PROG_ID = 1, 2, 3, 4
IFLA_XDP_DRV_PROG_ID, IFLA_XDP_SKB_PROG_ID, IFLA_XDP_HW_PROG_ID = 5, 6, 7
#: IFLA_XDP_ATTACHED values -> the mode names nmcompat uses.
MODES = {0: None, 1: "drv", 2: "skb", 3: "hw", 4: "multi"}

_HDR = struct.Struct("=IHHII")        # struct nlmsghdr
_IFINFO = struct.Struct("=BxHiII")    # struct ifinfomsg
_ATTR = struct.Struct("=HH")          # struct nlattr
_seq = itertools.count(1)


@dataclass(frozen=True)
class XdpState:
    """The XDP programs attached to one interface."""
    ifindex: int
    mode: Optional[str]     # "drv", "skb", "hw", "multi" (several modes at once), or None
    prog_id: int            # the program's id when exactly one is attached, else 0
    drv_prog_id: int = 0
    skb_prog_id: int = 0
    hw_prog_id: int = 0

    @property
    def attached(self) -> bool:
        return self.mode is not None

    @property
    def prog_ids(self) -> Tuple[int, ...]:
        """Ids of every attached program (one per mode)."""
        ids = (self.prog_id, self.drv_prog_id, self.skb_prog_id, self.hw_prog_id)
        return tuple(sorted({i for i in ids if i}))


def ifname(ifindex: int) -> str:
    """The interface's name for messages, or "ifindex N" when it has none."""
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return f"ifindex {ifindex}"


def _attr(attr_type: int, payload: bytes) -> bytes:
    raw = _ATTR.pack(_ATTR.size + len(payload), attr_type) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _attrs(data: bytes) -> Iterator[Tuple[int, bytes]]:
    pos = 0
    while pos + _ATTR.size <= len(data):
        length, attr_type = _ATTR.unpack_from(data, pos)
        if length < _ATTR.size:
            return
        yield attr_type & NLA_TYPE_MASK, data[pos + _ATTR.size:pos + length]
        pos += (length + 3) & ~3


def _extack(flags: int, body: bytes) -> str:
    """The kernel's explanation in an NLMSG_ERROR reply, or ""."""
    if not flags & NLM_F_ACK_TLVS or len(body) < 4 + _HDR.size:
        return ""
    inner_len = _HDR.size if flags & NLM_F_CAPPED else _HDR.unpack_from(body, 4)[0]
    for attr_type, payload in _attrs(body[4 + ((inner_len + 3) & ~3):]):
        if attr_type == NLMSGERR_ATTR_MSG:
            return payload.split(b"\0", 1)[0].decode("utf-8", "replace")
    return ""


def _transact(msg_type: int, flags: int, payload: bytes, verb: str, obj: str) -> bytes:
    """Send one request; return the RTM_NEWLINK body, or b"" for a bare ack."""
    seq = next(_seq)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        sock.settimeout(5.0)  # rtnetlink answers at once; never hang on a lost reply
        sock.bind((0, 0))
        sock.send(_HDR.pack(_HDR.size + len(payload), msg_type, flags, seq, 0) + payload)
        while True:
            reply = _reply(sock.recv(1 << 16), seq, verb, obj)
            if reply is not None:
                return reply


def _reply(data: bytes, seq: int, verb: str, obj: str) -> Optional[bytes]:
    pos = 0
    while pos + _HDR.size <= len(data):
        length, msg_type, flags, msg_seq, _pid = _HDR.unpack_from(data, pos)
        body = data[pos + _HDR.size:pos + length]
        pos += (length + 3) & ~3
        if msg_seq != seq:
            continue
        if msg_type == NLMSG_ERROR:
            err = -struct.unpack_from("=i", body)[0]
            if err:
                detail = _extack(flags, body)
                raise os_error(err, verb, obj, f"{os.strerror(err)} ({detail})" if detail else "")
            return b""
        if msg_type in (RTM_NEWLINK, NLMSG_DONE):
            return body
    return None


def xdp_query(ifindex: int) -> XdpState:
    """Which XDP program is attached to ``ifindex``, and how.

    Issues socket(AF_NETLINK) and RTM_GETLINK; needs no privilege.
    Raises the errno's OSError (ENODEV for an unknown interface).
    """
    payload = _IFINFO.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0)
    payload += _attr(IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_SKIP_STATS))
    body = _transact(RTM_GETLINK, NLM_F_REQUEST, payload, "query XDP state of",
                     ifname(ifindex))
    xdp: Dict[int, bytes] = {}
    for attr_type, value in _attrs(body[_IFINFO.size:]):
        if attr_type == IFLA_XDP:
            xdp = dict(_attrs(value))
    ids = {k: struct.unpack_from("=I", xdp[k])[0] if k in xdp else 0
           for k in (IFLA_XDP_PROG_ID, IFLA_XDP_DRV_PROG_ID, IFLA_XDP_SKB_PROG_ID,
                     IFLA_XDP_HW_PROG_ID)}
    mode = MODES.get(xdp.get(IFLA_XDP_ATTACHED, b"\0")[0], "unknown")
    return XdpState(ifindex, mode, ids[IFLA_XDP_PROG_ID], ids[IFLA_XDP_DRV_PROG_ID],
                    ids[IFLA_XDP_SKB_PROG_ID], ids[IFLA_XDP_HW_PROG_ID])


def xdp_set_fd(ifindex: int, prog_fd: int, flags: int = 0) -> None:
    """Attach ``prog_fd`` (or detach, with -1) the legacy way: it outlives the caller.

    ``flags``: XDP_FLAGS_* (SKB_MODE, DRV_MODE, UPDATE_IF_NOEXIST...).
    Issues socket(AF_NETLINK) and RTM_SETLINK; needs CAP_NET_ADMIN.
    """
    nested = _attr(IFLA_XDP_FD, struct.pack("=i", prog_fd))
    nested += _attr(IFLA_XDP_FLAGS, struct.pack("=I", flags))
    payload = _IFINFO.pack(socket.AF_UNSPEC, 0, ifindex, 0, 0)
    payload += _attr(IFLA_XDP | NLA_F_NESTED, nested)
    verb = "attach XDP program to" if prog_fd >= 0 else "detach XDP program from"
    _transact(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, payload, verb, ifname(ifindex))
