"""The NIC with its host stack: netmap's one-port bridge (``nmcompat
bridge -i netmap:va``) and transparent mode (NR_FORWARD / NS_FORWARD), on
the NIC backends where host TX reaches the stack."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import NetNS

import nmcompat
import nic_support
from host_support import (A_IP, HOST_TX_BACKENDS, HOST_TX_IDS, NOTHING, echo_replies, open_port,
                          peer, ping, tc_programs, tx_checksum_off, udp_dport, wait_line)
from nmcompat._ffi import ffi, lib
from nmcompat._ring import NR_FORWARD, NS_FORWARD


@pytest.mark.parametrize("nic", HOST_TX_BACKENDS, ids=HOST_TX_IDS)
def test_one_port_bridge_carries_the_host(nic, netns, peer):
    """nmcompat bridge -i netmap:va: the peer reaches va's stack through the
    bridge (3/3), not when the bridge is stopped, and again after it ends."""
    backend, xdp_mode = nic
    env = dict(os.environ, NMCOMPAT_BACKEND=backend)
    proc = subprocess.Popen(["ip", "netns", "exec", netns.name, sys.executable, "-m",
                             "nmcompat.tools", "bridge", "-w", "0", "-i", "netmap:va"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_line(proc, "Ready to go")
        # va^'s nmc_host_egress first, then va's nmc_stack_drop (it binds the NIC
        # TX rings without host rings), which the diverted frames never reach
        assert tc_programs(netns.name, "va")["tcx_egress"] == 2
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

SENDER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    for port in (7001, 7002):
        s.sendto(b"flow %d #%d" % (port, i), (sys.argv[1], port))
    time.sleep(0.05)
"""

def _mark_released(port, seen: dict) -> None:
    """Every received slot: NS_FORWARD, except UDP to port 7001 on the NIC
    RX ring (that flow is dropped); then released."""
    for r in port.rx_rings:
        h, t = r.head, r.tail
        while h != t:
            s = r.slots[h]
            data = bytes(r.buf(int(s["buf_idx"]))[:int(s["len"])])
            drop = r.ringid == 0 and udp_dport(data) == 7001
            seen["dropped" if drop else "forwarded"] += 1
            r.slots["flags"][h] = 0 if drop else NS_FORWARD
            h = r.next(h)
        r.head = r.cur = t
    port.rxsync()

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

@pytest.mark.parametrize("nic", HOST_TX_BACKENDS, ids=HOST_TX_IDS)
def test_transparent_mode_drops_one_flow_and_forwards_the_rest(nic, netns, peer):
    """NR_FORWARD on both RX rings of netmap:va*: the stack gets every flow
    but the one whose slots were released without NS_FORWARD (ARP goes both
    ways through the port: NIC RX -> stack, and the stack's replies host RX
    -> NIC TX)."""
    backend, xdp_mode = nic
    NetNS(peer).run(tx_checksum_off, "vb")
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
        fd_before = nic_port.fileno()
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
        return got, seen["dropped"], info.fwd_up, info.tap_fd, (fd_before, nic_port.fileno())
    finally:
        sock.close()
        nic_port.close()
        host.close()

@pytest.mark.parametrize("nic", HOST_TX_BACKENDS, ids=HOST_TX_IDS)
def test_transparent_mode_through_a_sibling_ports_tap(nic, netns, peer):
    backend, xdp_mode = nic
    NetNS(peer).run(tx_checksum_off, "vb")
    got, dropped, up, tap_fd, fds = netns.run(_transparent_two_ports, backend, xdp_mode, peer)
    assert (got, dropped) == (5, 5)
    assert up >= 6, up
    assert tap_fd == -1, "the NIC port keeps no tap of its own (the sibling's is used, not kept)"
    # the borrowed tap is only written to: the port's descriptor (for one
    # AF_XDP queue its socket, POLLOUT included) stays the one it had
    assert fds[0] == fds[1], f"the descriptor changed from {fds[0]} to {fds[1]}"

def _send_one(peer_ns: str, dport: int) -> None:
    subprocess.run(["ip", "netns", "exec", peer_ns, sys.executable, "-c",
                    "import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                    ".sendto(b'one', (sys.argv[1], int(sys.argv[2])))", A_IP, str(dport)], check=True)

def _forward_until(port, counts: dict, dport: int) -> bool:
    """Receive on ring 0, every slot released with NS_FORWARD and counted
    by UDP destination port, until a frame to dport came (bounded)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not counts.get(dport):
        port.poll(nmcompat.POLLIN, 50)
        r = port.rx_rings[0]
        h, t = r.head, r.tail
        while h != t:
            s = r.slots[h]
            d = udp_dport(bytes(r.buf(int(s["buf_idx"]))[:int(s["len"])]))
            counts[d] = counts.get(d, 0) + 1
            r.slots["flags"][h] = NS_FORWARD
            h = r.next(h)
        r.head = r.cur = t
        port.rxsync()
    return bool(counts.get(dport))

def _after_the_lender_closed(backend, xdp_mode, peer_ns):
    """netmap:va forwards up through netmap:va^'s tap, then va^ closes: a
    frame forwarded up afterwards must not come back to va (the tap's
    program that marked it is gone with va^)."""
    mac = subprocess.run(["ip", "-br", "link", "show", "va"], capture_output=True, text=True,
                         check=True).stdout.split()[2]
    subprocess.run(["ip", "netns", "exec", peer_ns, "ip", "neigh", "replace", A_IP, "lladdr", mac,
                    "dev", "vb"], check=True)   # no ARP: va's stack cannot answer past the port
    host = open_port("netmap:va^", backend, xdp_mode)
    port = nic_support.open_nic("netmap:va", backend, xdp_mode)
    counts: dict = {}
    try:
        port.rx_rings[0].flags |= NR_FORWARD
        _send_one(peer_ns, 7001)
        assert _forward_until(port, counts, 7001), "no frame before the close"
        host.close()
        _send_one(peer_ns, 7002)
        assert _forward_until(port, counts, 7002), "no frame after the close"
        _send_one(peer_ns, 7003)         # later than 7002's forwarding: a loop shows by now
        assert _forward_until(port, counts, 7003), "no second frame after the close"
        return counts.get(7001), counts.get(7002), counts.get(7003)
    finally:
        port.close()
        host.close()

@pytest.mark.parametrize("nic", HOST_TX_BACKENDS, ids=HOST_TX_IDS)
def test_a_closed_sibling_tap_is_not_used(nic, netns, peer):
    backend, xdp_mode = nic
    assert netns.run(_after_the_lender_closed, backend, xdp_mode, peer) == (1, 1, 1)
