"""A classic tc redirect into another interface's ingress, over rtnetlink.

:func:`redirect_ingress` gives a device a ``clsact`` qdisc and, on its
ingress, a ``u32`` filter that matches every frame with a ``mirred ingress
redirect`` action to ``to_ifindex`` (``tc filter add dev DEV ingress u32
match u32 0 0 action mirred ingress redirect dev TO``).  Unlike a BPF
redirect, ``act_mirred`` marks the skb as redirected, and generic (skb
mode) XDP on the target lets such frames pass (``netif_receive_generic_xdp``).
Both go with the device.  Acts in the caller's network namespace; needs
CAP_NET_ADMIN.
"""
from __future__ import annotations

import socket
import struct

from nmcompat.bpf.netlink import NLA_F_NESTED, NLM_F_ACK, NLM_F_REQUEST, _attr, _transact, ifname

RTM_NEWQDISC, RTM_NEWTFILTER = 36, 44
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
TC_H_CLSACT, TC_H_MIN_INGRESS = 0xFFFFFFF1, 0xFFF2
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_U32_SEL, TCA_U32_ACT = 5, 7
TC_U32_TERMINAL = 1
TCA_ACT_KIND, TCA_ACT_OPTIONS = 1, 2
TCA_MIRRED_PARMS = 2
TCA_INGRESS_REDIR = 3
TC_ACT_STOLEN = 4
ETH_P_ALL = 3

_TCMSG = struct.Struct("=BxxxiIII")         # struct tcmsg
_U32_SEL = struct.Struct("=BBBxHHhhI")      # struct tc_u32_sel, without its keys
_U32_KEY = struct.Struct("=IIii")           # struct tc_u32_key
_MIRRED = struct.Struct("=IIiiiiI")         # struct tc_mirred (tc_gen, eaction, ifindex)

_FLAGS = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL


def _string(text: str) -> bytes:
    return text.encode() + b"\0"


def _mirred_action(to_ifindex: int) -> bytes:
    parms = _MIRRED.pack(0, 0, TC_ACT_STOLEN, 0, 0, TCA_INGRESS_REDIR, to_ifindex)
    action = _attr(TCA_ACT_KIND, _string("mirred"))
    action += _attr(TCA_ACT_OPTIONS | NLA_F_NESTED, _attr(TCA_MIRRED_PARMS, parms))
    return _attr(1 | NLA_F_NESTED, action)          # the first action of the list


def redirect_ingress(ifindex: int, to_ifindex: int) -> None:
    """Every frame entering ``ifindex`` goes into ``to_ifindex``'s ingress,
    redirected by act_mirred.  Raises the errno's OSError "couldn't ..."
    (ENOENT/EOPNOTSUPP where cls_u32 or act_mirred is not in the kernel)."""
    dev = ifname(ifindex)
    qdisc = _TCMSG.pack(socket.AF_UNSPEC, ifindex, 0xFFFF0000, TC_H_CLSACT, 0)
    _transact(RTM_NEWQDISC, _FLAGS, qdisc + _attr(TCA_KIND, _string("clsact")),
              "add a clsact qdisc to", dev)
    sel = _U32_SEL.pack(TC_U32_TERMINAL, 0, 1, 0, 0, 0, 0, 0) + _U32_KEY.pack(0, 0, 0, 0)
    options = _attr(TCA_U32_SEL, sel) + _attr(TCA_U32_ACT | NLA_F_NESTED, _mirred_action(to_ifindex))
    info = (1 << 16) | socket.htons(ETH_P_ALL)      # priority 1, every protocol
    tfilter = _TCMSG.pack(socket.AF_UNSPEC, ifindex, 0, TC_H_CLSACT & 0xFFFF0000 | TC_H_MIN_INGRESS, info)
    _transact(RTM_NEWTFILTER, _FLAGS, tfilter + _attr(TCA_KIND, _string("u32")) +
              _attr(TCA_OPTIONS | NLA_F_NESTED, options), "add a mirred redirect filter to", dev)
