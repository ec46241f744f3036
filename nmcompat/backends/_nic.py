"""What every NIC backend shares: the interface and its queues, the checks
of a NIC port name, and the engine request for a NIC port."""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
from typing import ClassVar, List, Tuple

from nmcompat import config
from nmcompat._portspec import (NR_REG_ALL_NIC, NR_REG_NIC_SW, NR_REG_ONE_NIC, NR_REG_ONE_SW, NR_REG_SW,
                                NR_RX_RINGS_ONLY)
from nmcompat.backends import _memopts
from nmcompat.backends._base import Backend
from nmcompat.backends._request import check_environment, request
from nmcompat.errors import OptionError, os_error


class NicBackend(Backend):
    """A backend for ``netmap:ifname[-k]``: one ring pair per queue."""
    conf_takes = frozenset(("tx_slots", "rx_slots", "host_tx_rings", "host_rx_rings"))
    conf_why: ClassVar[str] = "a NIC port has one TX and one RX ring per queue of the interface"

    def validate(self, spec, options: dict) -> None:
        super().validate(spec, options)
        _memopts.refuse(spec, "a NIC port (it lives in its process's interface region, "
                        "where pipes of the interface join it)")
        if spec.mem_id:
            raise OptionError(spec.text, "@mem_id", "a NIC port lives in its process's NIC "
                              "region; a memory id cannot be chosen", unused=True)

    def interface(self, spec, host_rings: int = 0) -> Tuple[int, int]:
        """(ifindex, queue count) of spec's interface, after checking that
        the name binds rings this interface has (host_rings per direction
        at most, 0: one)."""
        if spec.mode not in (NR_REG_ALL_NIC, NR_REG_ONE_NIC) + HOST_MODES:
            raise os_error(errno.EINVAL, "open", spec.text, f"ring mode {spec.mode} is not one of netmap's")
        if spec.mode == NR_REG_ONE_SW and spec.ringid >= (host_rings or 1):
            raise os_error(errno.EINVAL, "open", spec.text,
                           f"{spec.name} has {host_rings or 1} host ring(s) per direction at most")
        try:
            ifindex = socket.if_nametoindex(spec.name)
        except OSError:
            raise os_error(errno.ENXIO, "open", spec.text,
                           f"no interface '{spec.name}' in this network namespace") from None
        nq = queue_count(spec.name)
        if nq > MAX_QUEUES:
            raise os_error(errno.EINVAL, "open", spec.text, f"{spec.name} has {nq} queues: nmcompat "
                           f"serves interfaces of at most {MAX_QUEUES} (its NIC rings and the stack "
                           "cut-off's queue map are sized for that); fewer channels (ethtool -L) work")
        if spec.mode == NR_REG_ONE_NIC and spec.ringid >= nq:
            raise os_error(errno.EINVAL, "open", spec.text, f"{spec.name} has {nq} queue(s)")
        return ifindex, nq

    @staticmethod
    def request(spec, ifindex: int, nq: int, options: dict, keep: List):
        """The engine request: one ring pair per queue of the interface."""
        req = request(spec, spec.name, options, keep)
        req.tx_rings = req.rx_rings = nq
        req.ifindex = ifindex
        req.nic_tap_fd = -1
        conf = options.get("conf") or {}
        req.host_tx_rings = conf.get("host_tx_rings", 0)
        req.host_rx_rings = conf.get("host_rx_rings", 0)
        check_environment(spec, req, region_vars=("NMCOMPAT_BUF_SIZE",))  # NIC regions set buf_num
        return req

    @staticmethod
    def host_rings(options: dict) -> int:
        """The larger host ring count of @conf (0: none given)."""
        conf = options.get("conf") or {}
        return max(conf.get("host_tx_rings", 0), conf.get("host_rx_rings", 0))

    @staticmethod
    def hw_queues(spec, nq: int) -> Tuple[int, ...]:
        """The interface queues whose NIC rings spec binds."""
        if spec.mode == NR_REG_ONE_NIC:
            return (spec.ringid,)
        return tuple(range(nq)) if spec.mode in (NR_REG_ALL_NIC, NR_REG_NIC_SW) else ()

    @classmethod
    def stack_drop(cls, spec, nq: int, options: dict) -> bool:
        """Whether the host stack's frames for the interface are dropped
        while this port is open: it binds NIC TX rings and no host rings
        (netmap sends them to a host RX ring nobody reads), unless
        ``stack_tx`` (or $NMCOMPAT_STACK_TX) keeps them flowing."""
        binds_tx = bool(cls.hw_queues(spec, nq)) and not (getattr(spec, "flags", 0) & NR_RX_RINGS_ONLY)
        return binds_tx and spec.mode not in HOST_MODES and not config.stack_tx(options.get("stack_tx"))


#: The most queues of an interface a NIC port serves (= NMC_NIC_MAXQ,
#: csrc/transport/nic/nmc_nic.h; the cut map of bpf/host_divert.bpf.c).
MAX_QUEUES = 256

#: The ring modes that bind host rings (netmap.md §1.10).
HOST_MODES = (NR_REG_SW, NR_REG_NIC_SW, NR_REG_ONE_SW)


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


def ethtool_request(ifname: str, data: bytes) -> bytes:
    """One SIOCETHTOOL request on ifname (of this thread's namespace), data
    its argument (the command first); the argument as the kernel left it.
    OSError when it refuses."""
    buf = ctypes.create_string_buffer(data, len(data))
    ifr = struct.pack("16sP", ifname.encode()[:15], ctypes.addressof(buf)).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), _SIOCETHTOOL, ifr)
    return buf.raw


def _ethtool_channels(ifname: str) -> int:
    """combined + max(rx, tx) channels, or 0 when the driver does not say."""
    try:
        raw = ethtool_request(ifname, struct.pack("=9I", _ETHTOOL_GCHANNELS, *([0] * 8)))
    except OSError:
        return 0
    _, _, _, _, _, rx, tx, _, combined = struct.unpack("=9I", raw)
    return combined + max(rx, tx)
