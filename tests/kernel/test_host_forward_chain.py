"""Transparent mode never forwards part of a chain: a jumbo frame on the NIC
RX ring (a chain of NS_MOREFRAG slots) released only in part stays with
the user until its last slot is released, then goes up whole (the stack
gets the datagram).  Before, the ring took the first slots back unsent and
forwarded the rest as a frame of its own."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

from conftest import NetNS

import nic_support
from host_support import A_IP, peer, tx_checksum_off  # noqa: F401  (peer: a fixture)
from nmcompat._ffi import ffi, lib
from nmcompat._ring import NR_FORWARD, NS_FORWARD, NS_MOREFRAG

MTU, SIZE, PORT = 9000, 8000, 7005


def _fwd_up(port) -> int:
    info = ffi.new("struct nmc_host_info *")
    assert lib.nmc_host_info(port._h, info) == 0
    return info.fwd_up


def _find_chain(port, ring):
    """Slots of the jumbo frame's chain once it is all on ring 0; the slots
    before it released unforwarded."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        port.rxsync()
        h, chain, length = ring.head, [], 0
        while h != ring.tail:
            chain.append(h)
            length += int(ring.slots[h]["len"])
            if not ring.slots["flags"][h] & NS_MOREFRAG:
                if length > SIZE:
                    return chain
                ring.head = ring.cur = ring.next(h)     # another frame: not forwarded
                chain, length = [], 0
            h = ring.next(h)
        time.sleep(0.01)            # polling the ring, bounded by the deadline
    raise AssertionError("the jumbo frame never arrived")


def _received(sock, wait: float) -> int:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            return len(sock.recv(65536))
        except BlockingIOError:
            time.sleep(0.01)
    return 0


def _forward_in_two_steps(peer_ns):
    nic_support.quiet()
    mac = subprocess.run(["ip", "-br", "link", "show", "va"], capture_output=True, text=True,
                         check=True).stdout.split()[2]
    subprocess.run(["ip", "netns", "exec", peer_ns, "ip", "neigh", "replace", A_IP, "lladdr", mac,
                    "dev", "vb"], check=True)
    port = nic_support.open_nic("netmap:va*", "afpacket", None)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((A_IP, PORT))
        sock.setblocking(False)
        ring = port.rx_rings[0]
        ring.flags |= NR_FORWARD
        subprocess.run(["ip", "netns", "exec", peer_ns, sys.executable, "-c",
                        "import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                        f".sendto(bytes({SIZE}), (sys.argv[1], {PORT}))", A_IP], check=True)
        chain = _find_chain(port, ring)
        ring.slots["flags"][chain[0]] |= NS_FORWARD
        ring.head = ring.cur = chain[2]                 # two slots of the chain released
        port.rxsync()
        partial = (_fwd_up(port), _received(sock, 0.5))
        ring.head = ring.cur = ring.next(chain[-1])     # and the rest
        port.rxsync()
        return len(chain), partial, _fwd_up(port), _received(sock, 5.0)
    finally:
        sock.close()
        port.close()


def test_a_chain_released_in_part_is_forwarded_whole_once_released(netns, peer):  # noqa: F811
    for ns, dev in ((netns.name, "va"), (peer, "vb")):
        subprocess.run(["ip", "-n", ns, "link", "set", "dev", dev, "mtu", str(MTU)], check=True)
    NetNS(peer).run(tx_checksum_off, "vb")
    slots, partial, up, got = netns.run(_forward_in_two_steps, peer)
    assert slots >= 4, slots
    assert partial == (0, 0), f"a part of the chain went up: {partial}"
    assert (up, got) == (1, SIZE), (up, got)
