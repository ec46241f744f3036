"""Helpers for the NIC-backend kernel tests (test_nic_backends.py,
test_admode.py, test_vale_nic.py).

Everything that touches an interface runs inside a test's private network
namespace (conftest.py's ``netns`` fixture), in the child forked by
``netns.run``, and addresses only the veth pair va <-> vb created there.

Test frames carry the IEEE local experimental ethertype 0x88B5, locally
administered MACs, a magic word, a tag and a sequence number, and a body that
depends on both, so a frame assembled from pieces of two others cannot
compare equal to either.  IPv6 is switched off on both ends so the kernel
sends nothing of its own; receivers also skip every frame that is not one of
ours.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import struct
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import nmcompat

ETH_TEST = 0x88B5
MAC_A = bytes.fromhex("02000000000a")          # the nmcompat port's side (va)
MAC_B = bytes.fromhex("02000000000b")          # the plain socket's side (vb)
BROADCAST = b"\xff" * 6
MAGIC = b"NMCB"
HEAD = struct.Struct("!6s6sH4sII")             # dst, src, ethertype, magic, tag, seq
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
JUMBO = 9000                                   # MTU and largest frame of the tests

# (backend, xdp_mode) pairs every NIC test runs on, and their ids
BACKENDS = [("afpacket", None), ("afxdp", "drv"), ("afxdp", "skb")]
BACKEND_IDS = ["afpacket", "afxdp-drv", "afxdp-skb"]


# -- the namespace's interfaces (called from the test process) ------------------------

def reshape_veth(netns, queues: int = 1, mtu: Optional[int] = None) -> None:
    """Replace the fixture's va/vb by a pair with ``queues`` RX and TX queues
    on each end and the given MTU on both ends, both up."""
    netns.ip("link", "del", "va")
    shape = ["numtxqueues", str(queues), "numrxqueues", str(queues)]
    netns.ip("link", "add", "va", *shape, "type", "veth", "peer", "name", "vb", *shape)
    for dev in ("va", "vb"):
        if mtu:
            netns.ip("link", "set", "dev", dev, "mtu", str(mtu))
        netns.ip("link", "set", "dev", dev, "up")


def set_mtu(netns, mtu: int) -> None:
    for dev in ("va", "vb"):
        netns.ip("link", "set", "dev", dev, "mtu", str(mtu))


# -- inside the namespace ---------------------------------------------------------

def quiet() -> None:
    """No IPv6 in this namespace (no router solicitations, no MLD reports),
    and this process on one CPU: a veth delivers a frame on the CPU that
    sent it, so a sender that migrates could overtake its own frames."""
    for name in ("all", "default", "va", "vb"):
        path = f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6"
        if os.path.exists(path):
            with open(path, "w") as f:
                f.write("1")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def open_nic(name: str, backend: str, xdp_mode: Optional[str], **options):
    """Open ``name`` on exactly this backend (and XDP mode); check it is so."""
    port = nmcompat.open(name, backend=backend, xdp_mode=xdp_mode or "auto", **options)
    try:
        assert port.info.backend == backend, port.info
        if xdp_mode:
            assert port.info.xdp_mode == xdp_mode, port.info
    except BaseException:
        port.close()
        raise
    return port


def open_nic_retrying(name: str, backend: str, xdp_mode: Optional[str], timeout: float = 5.0,
                      **options):
    """open_nic, retried while the kernel still releases the AF_XDP sockets of
    a port closed a moment ago (EBUSY on the queue for a short while)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_nic(name, backend, xdp_mode, **options)
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# -- frames -------------------------------------------------------------------------

def frame(seq: int, size: int, tag: int = 0, src: bytes = MAC_B, dst: bytes = MAC_A) -> bytes:
    """A test frame of exactly ``size`` bytes (at least HEAD.size)."""
    head = HEAD.pack(dst, src, ETH_TEST, MAGIC, tag, seq)
    body = (np.arange(size - len(head), dtype=np.uint32) * 7 + seq * 13 + tag * 101 + 5) & 0xFF
    return head + body.astype(np.uint8).tobytes()


def is_ours(data) -> bool:
    return len(data) >= HEAD.size and bytes(data[12:18]) == struct.pack("!H", ETH_TEST) + MAGIC


def tag_seq(data) -> Tuple[int, int]:
    _, _, _, _, tag, seq = HEAD.unpack_from(bytes(data[:HEAD.size]))
    return tag, seq


def vlan_frame(seq: int, size: int, tags: Sequence[Tuple[int, int]], src: bytes = MAC_B,
               dst: bytes = MAC_A) -> bytes:
    """A test frame of ``size`` bytes carrying the VLAN headers ``tags``
    ((tpid, tci), outermost first) after its MAC addresses."""
    inner = frame(seq, size - 4 * len(tags), tag=len(tags), src=src, dst=dst)
    return inner[:12] + b"".join(struct.pack("!HH", t, c) for t, c in tags) + inner[12:]


def carries_magic(data) -> bool:
    """A test frame, with or without VLAN headers."""
    return MAGIC in bytes(data[12:40])


def udp_frame(seq: int, sport: int, size: int = 80) -> bytes:
    """An IPv4/UDP frame from MAC_B to MAC_A, so that the sender's flow hash
    picks the TX queue (and hence va's RX queue) by source port; carries
    MAGIC and seq right after the UDP header."""
    payload = (MAGIC + struct.pack("!I", seq)).ljust(size - 42, b"\0")
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), seq & 0xFFFF, 0, 64, 17, 0,
                     bytes([10, 9, 0, 2]), bytes([10, 9, 0, 1]))
    total = sum(struct.unpack("!10H", ip))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    ip = ip[:10] + struct.pack("!H", ~total & 0xFFFF) + ip[12:]
    udp = struct.pack("!HHHH", sport, 9, 8 + len(payload), 0)
    return MAC_A + MAC_B + b"\x08\x00" + ip + udp + payload


def udp_seq(data) -> Optional[int]:
    data = bytes(data[:50])
    if len(data) < 50 or data[12:14] != b"\x08\x00" or data[42:46] != MAGIC:
        return None
    return struct.unpack_from("!I", data, 46)[0]


def describe_mismatch(got: Sequence[bytes], expected: Sequence[bytes]) -> str:
    """'' when equal, else what differs (missing, corrupt, duplicate, order)."""
    if list(got) == list(expected):
        return ""
    index = {f: i for i, f in enumerate(expected)}
    seen = [index[g] for g in got if g in index]
    missing = sorted(set(range(len(expected))) - set(seen))
    corrupt = [g for g in got if g not in index]
    out = [f"got {len(got)} frames, expected {len(expected)}"]
    if missing:
        out.append(f"{len(missing)} missing (first {missing[:8]})")
    if corrupt:
        g = corrupt[0]
        out.append(f"{len(corrupt)} never sent (first: {len(g)} B, head {g[:22].hex()})")
    if len(seen) != len(set(seen)):
        out.append(f"{len(seen) - len(set(seen))} duplicates")
    if not missing and not corrupt and len(seen) == len(set(seen)):
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        out.append(f"reordered from index {first}")
    return "; ".join(out)


# -- plain sockets on the peer --------------------------------------------------------

def peer_receiver(ifname: str = "vb", proto: int = ETH_TEST) -> socket.socket:
    """An AF_PACKET socket on ifname that receives ``proto`` (large buffer)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    s.bind((ifname, proto))
    return s


def peer_sender(ifname: str = "vb") -> socket.socket:
    """An AF_PACKET socket on ifname that only sends (protocol 0)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 8 << 20)
    s.bind((ifname, 0))
    return s


def peer_recv(sock: socket.socket, want: int, timeout: float = 10.0,
              keep: Callable[[bytes], bool] = is_ours) -> List[bytes]:
    """Up to ``want`` incoming frames that ``keep`` accepts, in arrival order,
    waiting at most ``timeout`` seconds in all."""
    out: List[bytes] = []
    deadline = time.monotonic() + timeout
    while len(out) < want:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            break
        data, addr = sock.recvfrom(65536)
        if addr[2] != socket.PACKET_OUTGOING and keep(data):
            out.append(data)
    return out


SOL_PACKET, PACKET_AUXDATA = 263, 8
TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 0x10, 0x40
AUXDATA = struct.Struct("=IIIHHHH")    # struct tpacket_auxdata


def peer_recv_wire(sock: socket.socket, want: int, timeout: float = 10.0,
                   keep: Callable[[bytes], bool] = carries_magic) -> List[bytes]:
    """peer_recv for a socket with PACKET_AUXDATA on: each frame as it was on
    the wire, with the VLAN header the kernel moved to metadata put back."""
    out: List[bytes] = []
    deadline = time.monotonic() + timeout
    while len(out) < want:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            break
        data, anc, _, addr = sock.recvmsg(65536, socket.CMSG_SPACE(AUXDATA.size))
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        for level, kind, cdata in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA:
                status, _, _, _, _, tci, tpid = AUXDATA.unpack_from(cdata)
                if status & TP_STATUS_VLAN_VALID:
                    if not (status & TP_STATUS_VLAN_TPID_VALID and tpid):
                        tpid = 0x8100
                    data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
        if keep(data):
            out.append(data)
    return out


def peer_quiet(sock: socket.socket, wait: float = 0.3,
               keep: Callable[[bytes], bool] = is_ours) -> List[bytes]:
    """Whatever ``keep`` accepts that arrives within ``wait`` seconds."""
    return peer_recv(sock, 1 << 30, wait, keep)


# -- nmcompat ports -----------------------------------------------------------------

def port_drain(port, until: Callable[[], bool], sink: Callable[[object, bytes], None],
               timeout: float = 10.0, keep: Callable[[bytes], bool] = is_ours) -> bool:
    """poll(POLLIN) + dispatch() until ``until()`` holds or timeout; every
    received frame that ``keep`` accepts goes to sink(hdr, bytes)."""
    deadline = time.monotonic() + timeout

    def cb(hdr, data):
        if keep(data):
            sink(hdr, bytes(data))

    while True:
        port.dispatch(cb)
        if until():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        port.poll(nmcompat.POLLIN, int(min(left, 0.1) * 1000) + 1)


def port_collect(port, want: int, timeout: float = 10.0,
                 keep: Callable[[bytes], bool] = is_ours) -> List[bytes]:
    got: List[bytes] = []
    port_drain(port, lambda: len(got) >= want, lambda h, d: got.append(d), timeout, keep)
    return got


def port_quiet(port, wait: float = 0.3, keep: Callable[[bytes], bool] = is_ours) -> List[bytes]:
    """Frames ``keep`` accepts that the port receives within ``wait`` seconds."""
    return port_collect(port, 1 << 30, wait, keep)


def port_send(port, frames: Sequence[bytes], timeout: float = 10.0) -> None:
    """inject() every frame, waiting for TX room with poll(POLLOUT); txsync."""
    deadline = time.monotonic() + timeout
    for f in frames:
        while port.inject(f) == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no TX room for {len(f)} B in {timeout} s")
            port.poll(nmcompat.POLLOUT, 100)
    port.txsync()


def wait_link_up(dev: str, timeout: float = 10.0) -> None:
    """Wait (bounded) until dev, just set up, has its carrier (LOWER_UP)."""
    deadline = time.monotonic() + timeout
    while "LOWER_UP" not in subprocess.run(["ip", "-o", "link", "show", "dev", dev], check=True,
                                           capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, f"{dev} did not come back up"
        time.sleep(0.01)                # polling the interface state, bounded


def tx_done(port, timeout: float = 10.0) -> bool:
    """True once the kernel gave back every TX slot (tail == head - 1)."""
    deadline = time.monotonic() + timeout
    while True:
        port.txsync()
        if all(not r.tx_pending() for r in port.tx_rings):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def ring_frames(port, ring) -> List[Tuple[List[dict], bytes]]:
    """Every packet in [head, tail) of an RX ring as (its slots, its bytes),
    slot by slot (MOREFRAG followed by hand); moves head and cur past them."""
    out = []
    chain: List[dict] = []
    data = b""
    while ring.head != ring.tail:
        s = ring.slots[ring.head]
        info = {"slot": ring.head, "buf_idx": int(s["buf_idx"]), "len": int(s["len"]),
                "flags": int(s["flags"])}
        chain.append(info)
        data += bytes(ring.buf(info["buf_idx"])[:info["len"]])
        ring.head = ring.cur = ring.next(ring.head)
        if not info["flags"] & nmcompat.NS_MOREFRAG:
            out.append((chain, data))
            chain, data = [], b""
    assert not chain, f"a chain runs past tail: {chain}"
    return out


def put_chain(ring, pieces: Sequence[bytes], flags: int = 0, more: bool = False) -> None:
    """Write one packet at ring.head as a chain of the given pieces (one slot
    each, NS_MOREFRAG on all but the last, and on the last too when ``more``;
    ``flags`` on every slot); moves head and cur past it.  The caller checked
    the room."""
    for k, piece in enumerate(pieces):
        j = ring.head
        slot = ring.slots[j]
        ring.buf(int(slot["buf_idx"]))[:len(piece)] = piece
        slot["len"] = len(piece)
        slot["flags"] = flags | (nmcompat.NS_MOREFRAG if more or k + 1 < len(pieces) else 0)
        ring.head = ring.cur = ring.next(j)


# -- extra buffers ---------------------------------------------------------------------

def take_extra(port) -> int:
    """Unlink the first extra buffer from port.bufs_head; returns its index."""
    idx = port.bufs_head
    assert idx != 0, "no extra buffer left"
    port.bufs_head = struct.unpack_from("<I", port.buf(idx), 0)[0]
    return idx


def give_extra(port, idx: int) -> None:
    """Link buffer idx back at the head of port.bufs_head."""
    struct.pack_into("<I", port.buf(idx), 0, port.bufs_head)
    port.bufs_head = idx


def group_by(items, key) -> Dict[object, list]:
    out: Dict[object, list] = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return out
