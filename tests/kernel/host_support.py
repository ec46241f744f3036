"""What the host-ring kernel tests share (test_host_rings.py,
test_host_ctrl_api.py, test_host_transparent.py, test_devnetmap_host.py,
test_host_rx_cut.py, test_host_rx_too_big.py): a second namespace ``peer``
for vb, ICMP echo from a namespace, the XDP and TCX programs on an
interface, frames, and waiting for them in a host RX ring.

Two namespaces per test: ``netns`` (conftest) holds va and the port; vb is
moved into ``peer`` so that each side has its own stack.
"""
from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import time

import pytest
from conftest import NetNS, netns_name

import nmcompat
from nmcompat.bpf import syscall
import nic_support

A_IP, B_IP, GHOST_IP = "10.77.0.1", "10.77.0.2", "10.77.0.9"
GHOST_MAC = bytes.fromhex("02000000009f")
BPF_PROG_QUERY = 16


@pytest.fixture
def peer(netns):
    """vb in its own namespace, addresses on both ends, IPv6 off."""
    name = netns_name()
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        netns.ip("link", "set", "dev", "vb", "netns", name)
        for ns, dev, ip in ((netns.name, "va", A_IP), (name, "vb", B_IP)):
            for key in ("all", "default"):
                subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                                f"net.ipv6.conf.{key}.disable_ipv6=1"], check=True)
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "dev", dev, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)

def echo_replies(ip: str, count: int, wait: float) -> int:
    """ICMP echo requests to ip from this namespace; the replies that came
    back (each awaited up to ``wait`` seconds)."""
    replies = 0
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        ident = os.getpid() & 0xFFFF
        for seq in range(count):
            body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"nmcompat-host-rings"
            csum = _checksum(body)
            s.sendto(body[:2] + struct.pack("!H", csum) + body[4:], (ip, 0))
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([s], [], [], left)[0]:
                    break
                data = s.recv(2048)
                icmp = data[(data[0] & 15) * 4:]
                if icmp[0] == 0 and struct.unpack("!HH", icmp[4:8]) == (ident, seq):
                    replies += 1
                    break
    return replies

def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data[:len(data) // 2 * 2]))
    total += data[-1] << 8 if len(data) % 2 else 0
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

def ping(ns: str, ip: str, count: int = 1, wait: float = 1.0) -> bool:
    """Every echo of ``count`` answered, from namespace ns."""
    return NetNS(ns).run(echo_replies, ip, count, wait) == count

def _tcx_count(dev: str, attach_type: int) -> int:
    attr = syscall._Attr()
    attr.put(0, "II", socket.if_nametoindex(dev), attach_type)
    rc, err = syscall._call(BPF_PROG_QUERY, attr)
    assert not err, os.strerror(err)
    return attr.get(24, "I")                # prog_cnt

def programs(dev: str) -> dict:
    from nmcompat.bpf.netlink import xdp_query
    return {"xdp": bool(xdp_query(socket.if_nametoindex(dev)).prog_id),
            "tcx_ingress": _tcx_count(dev, syscall.BPF_TCX_INGRESS),
            "tcx_egress": _tcx_count(dev, syscall.BPF_TCX_EGRESS)}

NOTHING = {"xdp": False, "tcx_ingress": 0, "tcx_egress": 0}

def tc_programs(ns: str, dev: str) -> dict:
    """The XDP and TCX programs attached to dev in namespace ns."""
    return NetNS(ns).run(programs, dev)

def open_port(name: str, backend: str, xdp_mode):
    """nic_support.open_nic, but a port of host rings only attaches no XDP
    program: it is given no mode (it would refuse one)."""
    if "^" not in name:
        return nic_support.open_nic(name, backend, xdp_mode)
    port = nmcompat.open(name, backend=backend)
    assert port.info.backend == backend and port.info.xdp_mode is None, port.info
    return port

def mode_for(name: str, xdp_mode) -> str:
    """The xdp_mode to open name with: a port of host rings only (^, ^N)
    takes none (it has no XDP program, and refuses a mode)."""
    return "auto" if "^" in name else (xdp_mode or "auto")

def host_rings(port):
    """(host TX ring, host RX ring) of a port that binds them."""
    tx = [r for r in port.tx_rings if r.ringid >= port.info.tx_rings]
    rx = [r for r in port.rx_rings if r.ringid >= port.info.rx_rings]
    return tx[0], rx[0]

def arp_request(src_mac: bytes, src_ip: str, dst_ip: str) -> bytes:
    ip = lambda a: bytes(int(x) for x in a.split("."))
    return (b"\xff" * 6 + src_mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
            + src_mac + ip(src_ip) + b"\0" * 6 + ip(dst_ip)).ljust(60, b"\0")

def is_arp(data: bytes, op: int, target_ip: str) -> bool:
    ip = bytes(int(x) for x in target_ip.split("."))
    return len(data) >= 42 and data[12:14] == b"\x08\x06" and \
        struct.unpack("!H", data[20:22])[0] == op and data[38:42] == ip

# Generic (skb mode) XDP lets host TX frames pass because act_mirred, not a
# BPF redirect, puts them into the interface's ingress (docs/DESIGN.md §12).
HOST_TX_BACKENDS = list(nic_support.BACKENDS)
HOST_TX_IDS = [nic_support.BACKEND_IDS[nic_support.BACKENDS.index(b)] for b in HOST_TX_BACKENDS]

def wait_line(proc, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    buf = ""
    while time.monotonic() < deadline:
        if not select.select([proc.stderr], [], [], max(deadline - time.monotonic(), 0))[0]:
            break
        line = proc.stderr.readline()
        if not line:
            break
        buf += line
        if text in line:
            return line
    raise AssertionError(f"no {text!r} from the bridge: {buf!r}")

def tx_checksum_off(dev: str) -> None:
    """ethtool -K dev tx off (ETHTOOL_STXCSUM): frames on the wire carry
    their checksum, as a NIC's do (a veth otherwise leaves it to the
    receiver's stack, and a frame that went through the port's tap would
    arrive with a partial checksum)."""
    from nmcompat_bench._ethtool import ETHTOOL_STXCSUM, ethtool_set
    ethtool_set(dev, ETHTOOL_STXCSUM, 0)

def udp_dport(data: bytes) -> int:
    if len(data) < 38 or data[12:14] != b"\x08\x00" or data[23] != 17:
        return 0
    ihl = (data[14] & 15) * 4
    return struct.unpack("!H", data[14 + ihl + 2:14 + ihl + 4])[0]


def held_frame_lengths(ring) -> list:
    """The byte lengths of the frames in [head, tail) (an NS_MOREFRAG chain
    counts as one frame), not released."""
    from nmcompat._ring import NS_MOREFRAG
    out, h, length = [], ring.head, 0
    while h != ring.tail:
        length += int(ring.slots[h]["len"])
        if not ring.slots["flags"][h] & NS_MOREFRAG:
            out.append(length)
            length = 0
        h = ring.next(h)
    return out


def rxsync_until(port, ring, ready, timeout: float = 10.0) -> list:
    """rxsync the port until ready(held_frame_lengths(ring)) or the timeout;
    returns those lengths (the caller asserts on them)."""
    deadline = time.monotonic() + timeout
    while not ready(held_frame_lengths(ring)) and time.monotonic() < deadline:
        port.rxsync()
        time.sleep(0.01)            # polling the ring, bounded by the deadline
    return held_frame_lengths(ring)


def host_port_for_big_frames(backend: str, slots: int):
    """A port of va's host rings only (netmap:va^, rings of `slots`), after
    va and vb went to MTU 65535, va got A_IP and B_IP became its neighbour
    entered by hand (no ARP first): a UDP datagram to B_IP leaves va's stack
    at once as one frame of up to 64 KiB, for the port's host RX ring."""
    nic_support.quiet()
    for dev in ("va", "vb"):
        subprocess.run(["ip", "link", "set", "dev", dev, "mtu", "65535"], check=True)
    subprocess.run(["ip", "addr", "add", f"{A_IP}/24", "dev", "va"], check=True)
    subprocess.run(["ip", "neigh", "replace", B_IP, "lladdr", "02:00:00:00:00:0b", "dev", "va"],
                   check=True)
    return nmcompat.open(f"netmap:va^@conf:slots={slots}", backend=backend)


def host_info(port):
    """The port's nmc_host_info (rx_truncated, rx_dropped ...)."""
    from nmcompat._ffi import ffi, lib
    info = ffi.new("struct nmc_host_info *")
    assert lib.nmc_host_info(port._h, info) == 0
    return info
