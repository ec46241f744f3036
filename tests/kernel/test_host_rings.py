"""Host rings of NIC ports (``netmap:va^``, ``netmap:va*``) on both NIC
backends: the stack's frames on the host RX ring, frames of the host TX ring
answered by the stack, the ring counts netmap reports, and nothing left on
the interfaces after close or SIGKILL.

Two namespaces per test: ``netns`` (conftest) holds va and the port; vb is
moved into a second namespace ``peer`` so that each side has its own stack.
"""
from __future__ import annotations

import ctypes
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid

import pytest
from conftest import NetNS

import nmcompat
from nmcompat._ffi import ffi, lib
from nmcompat.bpf import syscall
from nmcompat._portspec import NR_REG_NIC_SW, NR_REG_ONE_SW, NR_REG_SW
from nmcompat._ring import NR_FORWARD, NS_FORWARD
import nic_support

A_IP, B_IP, GHOST_IP = "10.77.0.1", "10.77.0.2", "10.77.0.9"
GHOST_MAC = bytes.fromhex("02000000009f")
BPF_PROG_QUERY = 16


@pytest.fixture
def peer(netns):
    """vb in its own namespace, addresses on both ends, IPv6 off."""
    name = f"nmc-{uuid.uuid4().hex[:12]}"
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


def _programs(dev: str) -> dict:
    from nmcompat.bpf.netlink import xdp_query
    return {"xdp": bool(xdp_query(socket.if_nametoindex(dev)).prog_id),
            "tcx_ingress": _tcx_count(dev, syscall.BPF_TCX_INGRESS),
            "tcx_egress": _tcx_count(dev, syscall.BPF_TCX_EGRESS)}


NOTHING = {"xdp": False, "tcx_ingress": 0, "tcx_egress": 0}


def tc_programs(ns: str, dev: str) -> dict:
    """The XDP and TCX programs attached to dev in namespace ns."""
    return NetNS(ns).run(_programs, dev)


def open_port(name: str, backend: str, xdp_mode):
    """nic_support.open_nic, but a port of host rings only attaches no XDP
    program: its mode is not checked."""
    if "^" not in name:
        return nic_support.open_nic(name, backend, xdp_mode)
    port = nmcompat.open(name, backend=backend, xdp_mode=xdp_mode or "auto")
    assert port.info.backend == backend and port.info.xdp_mode is None, port.info
    return port


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


def _stack_to_host_rx(backend, xdp_mode, ns):
    port = open_port("netmap:va^", backend, xdp_mode)
    try:
        tap = port.info.host_tap
        got = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"to the peer", (B_IP, 9))     # the stack asks for the peer's MAC
            nic_support.port_drain(port, lambda: bool(got), lambda h, d: got.append(d),
                                   timeout=10, keep=lambda d: is_arp(d, 1, B_IP))
        return tap, len(got), port.info.host_rx_rings, port.info.rx_rings
    finally:
        port.close()


def test_stack_frames_reach_host_rx_ring(nic, netns, peer):
    backend, xdp_mode = nic
    tap, got, nhost, nrx = netns.run(_stack_to_host_rx, backend, xdp_mode, netns.name)
    assert tap.startswith("nmh")
    assert got >= 1, "the stack's ARP request for the peer never reached the host RX ring"
    assert nhost == 1 and nrx == 1
    assert ping(netns.name, B_IP), "plain ping fails after the port closed"
    assert tc_programs(netns.name, "va") == NOTHING


def _host_tx_answered(backend, xdp_mode):
    port = nic_support.open_nic("netmap:va*", backend, xdp_mode)
    try:
        txr, rxr = host_rings(port)
        nic_support.put_chain(txr, [arp_request(GHOST_MAC, GHOST_IP, A_IP)])
        port.txsync()
        got = []
        nic_support.port_drain(port, lambda: bool(got), lambda h, d: got.append(d),
                               timeout=10, keep=lambda d: is_arp(d, 2, GHOST_IP))
        return [d[:6] == GHOST_MAC for d in got]
    finally:
        port.close()


# Generic (skb mode) XDP runs again on a frame put into the interface's
# ingress and cannot read its mark: the port's own XDP program takes the
# frame back (docs/DESIGN.md §12), so host TX is tested where XDP is native.
HOST_TX_BACKENDS = [b for b in nic_support.BACKENDS if b != ("afxdp", "skb")]


@pytest.mark.parametrize("nic", HOST_TX_BACKENDS, ids=[nic_support.BACKEND_IDS[nic_support.BACKENDS.index(b)]
                                                        for b in HOST_TX_BACKENDS])
def test_host_tx_frame_is_answered_by_the_stack(nic, netns, peer):
    backend, xdp_mode = nic
    got = netns.run(_host_tx_answered, backend, xdp_mode)
    assert got and all(got), "the stack did not answer the ARP request put on the host TX ring"


def _ring_counts(backend, xdp_mode):
    out = {}
    for name, mode in (("netmap:va*", NR_REG_NIC_SW), ("netmap:va^", NR_REG_SW),
                       ("netmap:va^0", NR_REG_ONE_SW)):
        port = open_port(name, backend, xdp_mode)
        try:
            i = port.info
            out[name] = (i.tx_rings, i.rx_rings, i.host_tx_rings, i.host_rx_rings,
                         list(i.bound_tx), list(i.bound_rx))
        finally:
            port.close()
    try:
        nmcompat.open("netmap:va^1", backend=backend, xdp_mode=xdp_mode or "auto").close()
        out["^1"] = "opened"
    except OSError as exc:
        out["^1"] = exc.errno
    return out


def test_ring_counts_as_netmap(nic, netns, peer):
    """ctrl-api-test's port_register_hwall_host / hostall / single_host shape."""
    backend, xdp_mode = nic
    got = netns.run(_ring_counts, backend, xdp_mode)
    assert got["netmap:va*"] == (1, 1, 1, 1, [0, 1], [0, 1])
    assert got["netmap:va^"] == (1, 1, 1, 1, [1], [1])
    assert got["netmap:va^0"] == (1, 1, 1, 1, [1], [1])
    assert got["^1"] == 22          # EINVAL: one host ring


KILLED = r"""
import os, sys, time
import nmcompat
port = nmcompat.open(sys.argv[1], backend=sys.argv[2], xdp_mode=sys.argv[3])
print(port.info.host_tap, flush=True)
time.sleep(3600)
"""


def test_sigkill_leaves_nothing_attached(nic, netns, peer):
    backend, xdp_mode = nic
    child = subprocess.Popen(["ip", "netns", "exec", netns.name, sys.executable, "-c", KILLED,
                              "netmap:va*", backend, xdp_mode or "auto"],
                             stdout=subprocess.PIPE, text=True)
    try:
        tap = child.stdout.readline().strip()
        assert tap.startswith("nmh"), tap
        attached = tc_programs(netns.name, "va")
        assert attached["tcx_egress"] == 1, attached
        assert attached["xdp"] == (backend == "afxdp"), attached
        assert not ping(netns.name, B_IP), "the stack reached the peer while the host rings were bound"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    gone = nic_support.wait_until(lambda: subprocess.run(
        ["ip", "-n", netns.name, "link", "show", "dev", tap], capture_output=True).returncode != 0)
    assert gone, f"tap {tap} outlived the killed port"
    assert tc_programs(netns.name, "va") == NOTHING
    assert ping(netns.name, B_IP), "plain ping fails after the port was killed"


def _wait_line(proc, text: str, timeout: float = 20.0) -> str:
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


@pytest.mark.parametrize("nic", HOST_TX_BACKENDS, ids=[nic_support.BACKEND_IDS[nic_support.BACKENDS.index(b)]
                                                        for b in HOST_TX_BACKENDS])
def test_one_port_bridge_carries_the_host(nic, netns, peer):
    """nmcompat bridge -i netmap:va: the peer reaches va's stack through the
    bridge (3/3), not when the bridge is stopped, and again after it ends."""
    backend, xdp_mode = nic
    env = dict(os.environ, NMCOMPAT_BACKEND=backend)
    proc = subprocess.Popen(["ip", "netns", "exec", netns.name, sys.executable, "-m",
                             "nmcompat.tools", "bridge", "-w", "0", "-i", "netmap:va"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_line(proc, "Ready to go")
        assert tc_programs(netns.name, "va")["tcx_egress"] == 1
        assert NetNS(peer).run(echo_replies, A_IP, 3, 2.0) == 3, "ping through the bridge"
        proc.send_signal(signal.SIGSTOP)
        try:
            assert NetNS(peer).run(echo_replies, A_IP, 2, 1.0) == 0, \
                "the peer reached va's stack past a stopped bridge"
        finally:
            proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert tc_programs(netns.name, "va") == NOTHING
    assert ping(peer, A_IP), "plain ping fails after the bridge ended"


def _hold_nic_rings(backend, xdp_mode, peer_ns):
    port = nic_support.open_nic("netmap:va", backend, xdp_mode)
    try:
        attached = _programs("va")
        return attached, NetNS(peer_ns).run(echo_replies, A_IP, 2, 1.0)
    finally:
        port.close()


def test_bound_nic_rings_cut_the_stack_off(nic, netns, peer):
    """While a port binds va's RX ring the peer's frames reach only the port
    (AF_PACKET: the TCX cut-off; AF_XDP: the XDP redirect), not va's stack."""
    backend, xdp_mode = nic
    attached, replies = netns.run(_hold_nic_rings, backend, xdp_mode, peer)
    assert replies == 0, "va's stack answered while a port bound its NIC RX ring"
    assert attached["tcx_ingress"] == (1 if backend == "afpacket" else 0), attached
    assert tc_programs(netns.name, "va") == NOTHING
    # the peer's failed ARP entry for va is probed again first: answered within 3 tries
    assert NetNS(peer).run(echo_replies, A_IP, 3, 2.0) >= 1, "plain ping fails after the port closed"


SENDER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    for port in (7001, 7002):
        s.sendto(b"flow %d #%d" % (port, i), (sys.argv[1], port))
    time.sleep(0.05)
"""


def _udp_dport(data: bytes) -> int:
    if len(data) < 38 or data[12:14] != b"\x08\x00" or data[23] != 17:
        return 0
    ihl = (data[14] & 15) * 4
    return struct.unpack("!H", data[14 + ihl + 2:14 + ihl + 4])[0]


def _mark_released(port, seen: dict) -> None:
    """Every received slot: NS_FORWARD, except UDP to port 7001 on the NIC
    RX ring (that flow is dropped); then released."""
    for r in port.rx_rings:
        h, t = r.head, r.tail
        while h != t:
            s = r.slots[h]
            data = bytes(r.buf(int(s["buf_idx"]))[:int(s["len"])])
            drop = r.ringid == 0 and _udp_dport(data) == 7001
            seen["dropped" if drop else "forwarded"] += 1
            r.slots["flags"][h] = 0 if drop else NS_FORWARD
            h = r.next(h)
        r.head = r.cur = t
    port.rxsync()


def _tx_checksum_off(dev: str) -> None:
    """ethtool -K dev tx off (ETHTOOL_STXCSUM): frames on the wire carry
    their checksum, as a NIC's do (a veth otherwise leaves it to the
    receiver's stack, and a frame that went through the port's tap would
    arrive with a partial checksum)."""
    import fcntl
    val = struct.pack("II", 0x17, 0)
    buf = ctypes.create_string_buffer(val, len(val))
    ifr = struct.pack("16sP", dev.encode(), ctypes.addressof(buf)).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), 0x8946, ifr)


def _transparent(backend, xdp_mode, peer_ns):
    port = nic_support.open_nic("netmap:va*", backend, xdp_mode)
    socks = {}
    try:
        for p in (7001, 7002):
            socks[p] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks[p].bind((A_IP, p))
            socks[p].setblocking(False)
        for r in port.rx_rings:
            r.flags |= NR_FORWARD
        sender = subprocess.Popen(["ip", "netns", "exec", peer_ns, sys.executable, "-c", SENDER, A_IP])
        got = {7001: 0, 7002: 0}
        seen = {"dropped": 0, "forwarded": 0}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (sender.poll() is None or got[7002] < 5):
            port.poll(nmcompat.POLLIN, 50)
            _mark_released(port, seen)
            for p, s in socks.items():
                try:
                    while s.recv(64):
                        got[p] += 1
                except BlockingIOError:
                    pass
        sender.wait()
        info = ffi.new("struct nmc_host_info *")
        assert lib.nmc_host_info(port._h, info) == 0
        return got, seen, (info.fwd_up, info.fwd_down, info.tap_fd >= 0)
    finally:
        for s in socks.values():
            s.close()
        port.close()


@pytest.mark.parametrize("nic", HOST_TX_BACKENDS, ids=[nic_support.BACKEND_IDS[nic_support.BACKENDS.index(b)]
                                                        for b in HOST_TX_BACKENDS])
def test_transparent_mode_drops_one_flow_and_forwards_the_rest(nic, netns, peer):
    """NR_FORWARD on both RX rings of netmap:va*: the stack gets every flow
    but the one whose slots were released without NS_FORWARD (ARP goes both
    ways through the port: NIC RX -> stack, and the stack's replies host RX
    -> NIC TX)."""
    backend, xdp_mode = nic
    NetNS(peer).run(_tx_checksum_off, "vb")
    got, seen, (up, down, has_tap) = netns.run(_transparent, backend, xdp_mode, peer)
    assert got == {7001: 0, 7002: 5}, (got, seen)
    assert seen["dropped"] == 5, seen
    assert has_tap and up >= 6 and down >= 1, (up, down)    # + the ARP request; the ARP reply
    assert up + down == seen["forwarded"], (up, down, seen)


def _transparent_two_ports(backend, xdp_mode, peer_ns):
    """netmap:va^ and netmap:va in one process: the NIC port forwards up
    through the tap of the host port; the host port's frames are injected
    on the NIC port (no forwarding down: that port binds no NIC TX ring)."""
    host = open_port("netmap:va^", backend, xdp_mode)
    nic_port = nic_support.open_nic("netmap:va", backend, xdp_mode)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((A_IP, 7002))
        sock.setblocking(False)
        nic_port.rx_rings[0].flags |= NR_FORWARD
        sender = subprocess.Popen(["ip", "netns", "exec", peer_ns, sys.executable, "-c", SENDER, A_IP])
        got, seen = 0, {"dropped": 0, "forwarded": 0}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (sender.poll() is None or got < 5):
            nic_port.poll(nmcompat.POLLIN, 20)
            _mark_released(nic_port, seen)
            host.rxsync()
            for _, data in iter(host.nextpkt, None):
                nic_support.port_send(nic_port, [bytes(data)])
            try:
                while sock.recv(64):
                    got += 1
            except BlockingIOError:
                pass
        sender.wait()
        info = ffi.new("struct nmc_host_info *")
        assert lib.nmc_host_info(nic_port._h, info) == 0
        return got, seen["dropped"], info.fwd_up, info.tap_fd >= 0
    finally:
        sock.close()
        nic_port.close()
        host.close()


@pytest.mark.parametrize("nic", HOST_TX_BACKENDS, ids=[nic_support.BACKEND_IDS[nic_support.BACKENDS.index(b)]
                                                        for b in HOST_TX_BACKENDS])
def test_transparent_mode_through_a_sibling_ports_tap(nic, netns, peer):
    backend, xdp_mode = nic
    NetNS(peer).run(_tx_checksum_off, "vb")
    got, dropped, up, borrowed = netns.run(_transparent_two_ports, backend, xdp_mode, peer)
    assert (got, dropped) == (5, 5)
    assert borrowed and up >= 6, up


def _two_queue_host_rings(backend, xdp_mode):
    port = nic_support.open_nic("netmap:va*", backend, xdp_mode)
    try:
        i = port.info
        shape = (i.tx_rings, i.host_tx_rings, list(i.bound_tx), list(i.bound_rx))
        _, rxr = host_rings(port)
        got = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"to the peer", (B_IP, 9))
            nic_support.port_drain(port, lambda: bool(got), lambda h, d: got.append(h.ring),
                                   timeout=10, keep=lambda d: is_arp(d, 1, B_IP))
        return shape, rxr.ringid, got
    finally:
        port.close()


def test_host_rings_come_after_every_queue(nic, netns):
    """Two queues: the host ring pair is ring 2 of each direction, and the
    stack's frames arrive there."""
    backend, xdp_mode = nic
    nic_support.reshape_veth(netns, queues=2)
    netns.ip("addr", "add", f"{A_IP}/24", "dev", "va")
    shape, host_id, rings = netns.run(_two_queue_host_rings, backend, xdp_mode)
    assert shape == (2, 1, [0, 1, 2], [0, 1, 2])
    assert host_id == 2 and rings and set(rings) == {2}, (host_id, rings)


def _tap_ring_counts(backend, xdp_mode):
    out = {}
    for name in ("netmap:nmt0*", "netmap:nmt0^", "netmap:nmt0^0", "netmap:nmt0"):
        port = nmcompat.open(name, backend=backend, xdp_mode=xdp_mode or "auto")
        try:
            i = port.info
            out[name] = (i.tx_rings, i.rx_rings, i.host_tx_rings, i.host_rx_rings,
                         list(i.bound_tx), list(i.bound_rx), bool(i.host_tap))
        finally:
            port.close()
    return out


def test_ctrl_api_test_shape_on_a_tap_interface(nic, netns):
    """netmap's ctrl-api-test opens a tap interface as a NIC with host rings
    (port_register_hwall_host, _hostall, _single_host_pair): the ring counts
    and bound rings it checks."""
    backend, xdp_mode = nic
    netns.ip("tuntap", "add", "dev", "nmt0", "mode", "tap")
    netns.ip("link", "set", "dev", "nmt0", "up")
    got = netns.run(_tap_ring_counts, backend, xdp_mode)
    assert got == {
        "netmap:nmt0*": (1, 1, 1, 1, [0, 1], [0, 1], True),
        "netmap:nmt0^": (1, 1, 1, 1, [1], [1], True),
        "netmap:nmt0^0": (1, 1, 1, 1, [1], [1], True),
        "netmap:nmt0": (1, 1, 0, 0, [0], [0], False),
    }, got


def _many_host_rings(backend, xdp_mode):
    out = {}
    for name, conf in (("netmap:nmt0^1", {"host_tx_rings": 2, "host_rx_rings": 2}),
                       ("netmap:nmt0^", {"host_tx_rings": 5, "host_rx_rings": 4}),
                       ("netmap:nmt0^4", {"host_tx_rings": 5, "host_rx_rings": 4})):
        port = nmcompat.open(name, backend=backend, xdp_mode=xdp_mode or "auto", **conf)
        try:
            i = port.info
            out[name + str(conf["host_tx_rings"])] = (
                i.tx_rings, i.rx_rings, i.host_tx_rings, i.host_rx_rings, list(i.bound_tx),
                list(i.bound_rx), (port.nifp.ni_host_tx_rings, port.nifp.ni_host_rx_rings))
        finally:
            port.close()
    try:
        nmcompat.open("netmap:nmt0^2", backend=backend, xdp_mode=xdp_mode or "auto",
                      host_tx_rings=2, host_rx_rings=2).close()
        out["^2 of 2"] = "opened"
    except OSError as exc:
        out["^2 of 2"] = exc.errno
    return out


def test_ctrl_api_test_shape_with_several_host_rings(nic, netns):
    """port_register_single_host_pair (2 host rings, ring 1) and
    hostall_many (5 TX and 4 RX host rings); ^4 binds TX host ring 4 and,
    with 4 RX host rings only, the first RX one (netmap_interp_ringid)."""
    backend, xdp_mode = nic
    netns.ip("tuntap", "add", "dev", "nmt0", "mode", "tap")
    netns.ip("link", "set", "dev", "nmt0", "up")
    got = netns.run(_many_host_rings, backend, xdp_mode)
    assert got == {
        "netmap:nmt0^12": (1, 1, 2, 2, [2], [2], (2, 2)),
        "netmap:nmt0^5": (1, 1, 5, 4, [1, 2, 3, 4, 5], [1, 2, 3, 4], (5, 4)),
        "netmap:nmt0^45": (1, 1, 5, 4, [5], [1], (5, 4)),
        "^2 of 2": 22,
    }, got


def _stack_on_second_host_ring(backend, xdp_mode):
    port = nmcompat.open("netmap:va^1", backend=backend, xdp_mode=xdp_mode or "auto",
                         host_tx_rings=2, host_rx_rings=2)
    try:
        txr = port.tx_rings[0]
        nic_support.put_chain(txr, [arp_request(GHOST_MAC, GHOST_IP, A_IP)])
        port.txsync()
        got = []
        nic_support.port_drain(port, lambda: bool(got), lambda h, d: got.append(d),
                               timeout=10, keep=lambda d: is_arp(d, 2, GHOST_IP))
        return [r.ringid for r in port.rx_rings], len(got)
    finally:
        port.close()


@pytest.mark.parametrize("nic", HOST_TX_BACKENDS, ids=[nic_support.BACKEND_IDS[nic_support.BACKENDS.index(b)]
                                                        for b in HOST_TX_BACKENDS])
def test_second_host_ring_pair_carries_the_stack(nic, netns, peer):
    """va^1 of two host ring pairs: its host TX ring reaches the stack and
    the stack's answer arrives on its host RX ring (the rings share the tap)."""
    backend, xdp_mode = nic
    ids, got = netns.run(_stack_on_second_host_ring, backend, xdp_mode)
    assert ids == [2] and got >= 1, (ids, got)
