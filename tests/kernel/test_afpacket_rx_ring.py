"""AF_PACKET RX: frames wait in the kernel's ring while the program does not
sync, however sparse the traffic.

The emulated NIC backend receives into a TPACKET_V3 ring, whose blocks the
kernel hands over when they are full or, at the latest, 1 ms after they were
opened.  Sparse traffic therefore takes a block per millisecond however small
its frames are, and a ring of a few large blocks (it had 8 of 1 MiB) lost
every frame after the eighth millisecond a program spent without rxsync, such
as a receiver preempted on a loaded machine.  The ring now has 64 blocks,
each holding the longest frame the interface can hand up (32 KiB without
offloads at MTUs up to 32494, 128 KiB with them): eight times as many
milliseconds.

The frames are sent one by one, 3 ms apart, so that each takes a block of its
own: the spacing is the traffic under test, not a wait for an event.
"""
from __future__ import annotations

import signal
import socket
import struct
import time
from contextlib import closing
from typing import Tuple

import pytest

from nic_support import MAC_A, MAC_B, frame, open_nic, peer_sender, port_collect, port_quiet, quiet, set_mtu
from nmcompat_bench._ethtool import features_set, offloads_off
from nmcompat._ffi import ffi, lib

pytestmark = pytest.mark.kernel

SOL_PACKET, PACKET_VNET_HDR = 263, 15
FRAMES = 48         # more than the old ring's 8 blocks, fewer than the 64 of the new
SPACING = 0.003     # s between two frames: three times the ring's block timeout


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def _sparse_frames_wait_in_the_ring():
    quiet()
    sent = [frame(seq, 60) for seq in range(FRAMES)]
    with open_nic("netmap:va", "afpacket", None) as port, closing(peer_sender()) as tx:
        for f in sent:
            tx.send(f)
            time.sleep(SPACING)
        got = port_collect(port, FRAMES, timeout=5.0)
        got += port_quiet(port, 0.2)
    assert len(got) == FRAMES, f"{FRAMES - len(got)} of {FRAMES} sparse frames lost"
    assert got == sent


def test_sparse_frames_wait_in_the_ring_until_rxsync(netns):
    netns.run(_sparse_frames_wait_in_the_ring)


# -- the ring's geometry: blocks that hold what the interface hands up ----------

def _rx_geometry(port):
    info = ffi.new("struct nmc_pkt_info *")
    assert lib.nmc_pkt_info(port._h, 0, info) == 0
    return info.rx_block_size, info.rx_blocks, info.rx_truncated


def _mtu_frames_whole(offloads: str, mtu: int):
    quiet()
    if offloads != "on":
        offloads_off("va", "vb")
    if offloads not in ("on", "off"):                   # one named feature on
        features_set("va", lambda name: name == offloads, True)
    sent = [frame(seq, size) for seq, size in enumerate((60, mtu + 14, 1514, mtu + 14))]
    with open_nic("netmap:va", "afpacket", None) as port, closing(peer_sender()) as tx:
        for f in sent:
            tx.send(f)
        got = port_collect(port, len(sent), timeout=5.0)
        block, blocks, truncated = _rx_geometry(port)
    return block, blocks, truncated, got == sent, [len(g) for g in got]


@pytest.mark.parametrize("offloads, mtu, block", [
    ("on", 1500, 128 << 10),            # TSO/GSO on (a veth's default): aggregates of 64 KiB
    ("rx-gro", 1500, 128 << 10),        # GRO alone is enough
    ("tx-udp-segmentation", 1500, 128 << 10),   # so is any segmentation offload
    ("tx-gso-list", 1500, 128 << 10),
    ("off", 1500, 32 << 10),            # nothing longer than the MTU: 64 blocks, 2 MiB
    ("off", 9000, 32 << 10),
    ("off", 32494, 32 << 10),           # the longest MTU a 32 KiB block takes whole
    ("off", 32495, 64 << 10),
    ("off", 65000, 64 << 10),           # a block always holds a frame of the MTU
])
def test_blocks_hold_the_longest_frame_the_interface_hands_up(netns, offloads, mtu, block):
    if mtu != 1500:
        set_mtu(netns, mtu)
    got_block, blocks, truncated, same, lens = netns.run(_mtu_frames_whole, offloads, mtu)
    assert (got_block, blocks) == (block, 64)
    assert same and truncated == 0, lens


# A TCP segment of GSO_PAYLOAD bytes that vb's segmentation offload leaves
# whole: the veth hands it to va's receive path as one frame of 64 KiB.
GSO_PAYLOAD = 64000


def _gso_frame() -> Tuple[bytes, bytes]:
    """A virtio_net_hdr asking for TCPv4 segmentation, and the frame."""
    total = 20 + 20 + GSO_PAYLOAD
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 6, 0,
                               bytes([10, 9, 0, 2]), bytes([10, 9, 0, 1])))
    words = struct.unpack("!10H", bytes(ip))
    s = sum(words)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    ip[10:12] = struct.pack("!H", ~s & 0xFFFF)
    tcp = struct.pack("!HHIIBBHHH", 40000, 5001, 1, 0, 5 << 4, 0x10, 65535, 0, 0)
    body = bytes(k * 7 & 0xFF for k in range(GSO_PAYLOAD))
    # flags NEEDS_CSUM, gso TCPV4, hdr_len, gso_size, csum_start, csum_offset
    vnet = struct.pack("<BBHHHH", 1, 1, 14 + 40, 1448, 14 + 20, 16)
    return vnet, MAC_A + MAC_B + b"\x08\x00" + bytes(ip) + tcp + body


def _gso_frame_whole(va_offloads: bool):
    quiet()
    if not va_offloads:
        offloads_off("va")
    vnet, data = _gso_frame()
    with open_nic("netmap:va", "afpacket", None) as port, \
            closing(socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)) as tx:
        tx.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        tx.bind(("vb", 0))
        tx.send(vnet + data)
        got = port_collect(port, 1, timeout=5.0, keep=lambda d: len(d) > 1514)
        block, _, truncated = _rx_geometry(port)
    return len(data), block, truncated, [len(g) for g in got], bool(got) and got[0] == data


def test_an_aggregate_arrives_whole_while_the_interface_segments(netns):
    """va's TSO/GSO on (the default): its blocks hold a 64 KiB aggregate,
    and vb's unsegmented TCP frame arrives whole, as one chain."""
    size, block, truncated, lens, same = netns.run(_gso_frame_whole, True)
    assert block == 128 << 10
    assert lens == [size] and same and truncated == 0


def test_an_aggregate_is_cut_and_counted_when_only_the_peer_segments(netns):
    """va's offloads off, vb's on: va's blocks hold frames of its MTU, and
    vb's unsegmented frame arrives cut to a block, counted in rx_truncated
    (docs/DESIGN.md section 12: switch offloads off on both ends)."""
    size, block, truncated, lens, same = netns.run(_gso_frame_whole, False)
    assert block == 32 << 10
    assert len(lens) == 1 and lens[0] < block < size and not same and truncated == 1


def _open_on_a_huge_mtu():
    signal.alarm(20)                    # the open looped forever: end the child instead
    offloads_off("lo")
    with open_nic("netmap:lo", "afpacket", None) as port:
        info = ffi.new("struct nmc_pkt_info *")
        assert lib.nmc_pkt_info(port._h, 0, info) == 0
        geometry = info.rx_block_size, info.tx_frame_size
    signal.alarm(0)
    return geometry


def test_an_interface_of_any_mtu_opens(netns):
    """A loopback takes any MTU up to 2^31 - 1: the rings are sized for
    the longest frame a netmap port could mean, 64 KiB, not for the MTU
    (sizing the TX frame for it never ended)."""
    netns.ip("link", "set", "dev", "lo", "mtu", str(2**31 - 1))
    netns.ip("link", "set", "dev", "lo", "up")
    assert netns.run(_open_on_a_huge_mtu) == (128 << 10, 128 << 10)
