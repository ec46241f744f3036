"""Helpers for the AF_XDP kernel tests (test_afxdp*.py).

Everything here runs inside a test's private network namespace (the
``netns`` fixture of conftest.py), in the forked child of ``netns.run``, and
touches only the veth pair va <-> vb created there.

Test frames use the IEEE local experimental ethertype 0x88B5, locally
administered MACs and a magic word, so that whatever else the kernel puts on
a link (IPv6 neighbour discovery, MLD reports) is ignored: receivers filter on
that ethertype, and IPv6 is switched off on both ends anyway.  The payload
depends on the sequence number, so a frame that arrives with bytes of another
one (a buffer reused too early, a fragment glued to the wrong packet) cannot
compare equal.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import struct
import subprocess
import sys
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

import nmcompat

ETH_TEST = 0x88B5
MAC_A = bytes.fromhex("020000000001")      # "va"'s side of the conversation
MAC_B = bytes.fromhex("020000000002")
MAGIC = b"NMCX"
HDR = struct.Struct("!6s6sH4sII")          # dst, src, ethertype, magic, tag, seq
SOL_SOCKET, SO_RCVBUFFORCE, SO_SNDBUFFORCE = socket.SOL_SOCKET, 33, 32


def skip_or_fail(reason: str) -> None:
    """Skip, or fail under NMCOMPAT_STRICT=1 (no kernel test may skip there)."""
    import pytest
    if os.environ.get("NMCOMPAT_STRICT") == "1":
        pytest.fail(f"{reason} (NMCOMPAT_STRICT=1)")
    pytest.skip(reason)


# -- the interfaces ----------------------------------------------------------------

def make_veth(netns, queues: Optional[int] = None, peer_queues: Optional[int] = None,
              mtu: Optional[int] = None, peer_mtu: Optional[int] = None) -> None:
    """Replace the fixture's va/vb with one of the given shape (from the test
    process, through ``ip -n``).  ``queues`` are va's RX and TX queue counts,
    ``peer_queues`` vb's (default: the same)."""
    netns.ip("link", "del", "va")
    shape_a, shape_b = [], []
    if queues:
        shape_a = ["numtxqueues", str(queues), "numrxqueues", str(queues)]
    if peer_queues or queues:
        n = str(peer_queues or queues)
        shape_b = ["numtxqueues", n, "numrxqueues", n]
    netns.ip("link", "add", "va", *shape_a, "type", "veth", "peer", "name", "vb", *shape_b)
    for dev, m in (("va", mtu), ("vb", peer_mtu or mtu)):
        if m:
            netns.ip("link", "set", "dev", dev, "mtu", str(m))
    netns.ip("link", "set", "dev", "va", "up")
    netns.ip("link", "set", "dev", "vb", "up")


def quiet_ipv6(*ifnames: str) -> None:
    """No IPv6 (so no MLD or router solicitations) on these interfaces of the
    current namespace.  Best effort: receivers filter on ETH_TEST anyway."""
    for name in ifnames or ("va", "vb"):
        try:
            with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
                f.write("1")
        except OSError:
            pass


def kernel_version() -> tuple:
    release = os.uname().release
    parts = []
    for piece in release.split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def multibuffer_expected() -> bool:
    """AF_XDP multi-buffer (XDP_USE_SG) exists for copy mode since Linux 6.6."""
    return kernel_version() >= (6, 6)


# -- frames ----------------------------------------------------------------------

def frame(seq: int, size: int, tag: int = 0, src: bytes = MAC_B, dst: bytes = MAC_A) -> bytes:
    """A test frame of exactly ``size`` bytes (>= 22)."""
    head = HDR.pack(dst, src, ETH_TEST, MAGIC, tag, seq)
    body = (np.arange(size - len(head), dtype=np.uint32) * 7 + seq * 13 + tag * 101) & 0xFF
    return head + body.astype(np.uint8).tobytes()


def is_test_frame(data) -> bool:
    return len(data) >= HDR.size and bytes(data[12:18]) == struct.pack("!H", ETH_TEST) + MAGIC[:4]


def tag_seq(data) -> tuple:
    """(tag, seq) of a test frame."""
    _, _, _, _, tag, seq = HDR.unpack_from(bytes(data[:HDR.size]))
    return tag, seq


def udp_frame(seq: int, sport: int, size: int = 64) -> bytes:
    """An IPv4/UDP frame (so that the kernel's flow hash spreads different
    source ports over TX queues) carrying MAGIC and seq after the UDP header."""
    payload = MAGIC + struct.pack("!I", seq)
    payload = payload.ljust(size - 42, b"\0")
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + len(payload), seq & 0xFFFF, 0, 64, 17, 0,
                     bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1]))
    csum = 0
    for (word,) in struct.iter_unpack("!H", ip):
        csum += word
    while csum >> 16:
        csum = (csum & 0xFFFF) + (csum >> 16)
    ip = ip[:10] + struct.pack("!H", ~csum & 0xFFFF) + ip[12:]
    udp = struct.pack("!HHHH", sport, 9, 8 + len(payload), 0)
    return MAC_A + MAC_B + b"\x08\x00" + ip + udp + payload


def udp_seq(data) -> Optional[int]:
    """seq of a udp_frame, or None for anything else."""
    data = bytes(data)
    if len(data) < 50 or data[12:14] != b"\x08\x00" or data[42:46] != MAGIC:
        return None
    return struct.unpack_from("!I", data, 46)[0]


def udp_sport(data) -> int:
    return struct.unpack_from("!H", bytes(data), 34)[0]


# -- nmcompat ports ----------------------------------------------------------------

def open_xdp(name: str, mode: str, **options):
    """An AF_XDP port, never another backend (errors are the test's to see)."""
    return nmcompat.open(name, backend="afxdp", xdp_mode=mode, **options)


def open_retrying(name: str, mode: str, timeout: float = 3.0, **options):
    """open_xdp, retried while the kernel still releases a previous socket on
    the queue (EBUSY for a short while after close or death)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_xdp(name, mode, **options)
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def drain(port, on_frame: Callable[[bytes], None], until: Callable[[], bool],
          timeout: float = 5.0) -> bool:
    """poll() + dispatch() until ``until()`` or timeout; every received test
    frame (others are ignored) goes to on_frame.  True when until() held."""
    deadline = time.monotonic() + timeout

    def cb(hdr, data):
        if is_test_frame(data) or udp_seq(data) is not None:
            on_frame(bytes(data))

    while not until():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        port.poll(nmcompat.POLLIN, int(min(left, 0.1) * 1000) + 1)
        port.dispatch(cb)
    return True


def take(port, on_frame: Callable[[bytes, int], None]) -> int:
    """rxsync, then dispatch: on_frame(frame, ring index) for every received
    test frame (others are ignored).  No waiting.  Returns how many."""
    n = 0

    def cb(hdr, data):
        nonlocal n
        if is_test_frame(data) or udp_seq(data) is not None:
            on_frame(bytes(data), hdr.ring)
            n += 1

    port.rxsync()
    port.dispatch(cb)
    return n


def send_all(port, frames: Sequence[bytes], timeout: float = 5.0) -> None:
    """inject() every frame (waiting for room with poll(POLLOUT)), then txsync."""
    deadline = time.monotonic() + timeout
    for f in frames:
        while port.inject(f) == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no TX room for {len(frames)} frames in {timeout} s; "
                                   f"xdp_stats={port.xdp_stats()}")
            port.poll(nmcompat.POLLOUT, 100)
    port.txsync()


def send_batch(port, frames: Sequence[bytes], timeout: float = 5.0) -> None:
    """Port.send() of equal-sized frames (one C call per try), waiting for
    room with poll(POLLOUT) until all are queued; send() txsyncs."""
    size = len(frames[0])
    arr = np.frombuffer(b"".join(frames), np.uint8).reshape(len(frames), size)
    deadline = time.monotonic() + timeout
    queued = 0
    while True:
        queued += port.send(arr[queued:])
        if queued == len(frames):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"queued {queued} of {len(frames)} frames in {timeout} s; "
                               f"xdp_stats={port.xdp_stats()}")
        port.poll(nmcompat.POLLOUT, 100)


def wait_tx_done(port, timeout: float = 5.0) -> bool:
    """True once every TX slot came back (the kernel completed them all)."""
    deadline = time.monotonic() + timeout
    while True:
        port.txsync()
        if all(not r.tx_pending() for r in port.tx_rings):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


# -- plain AF_PACKET peers -----------------------------------------------------------

def packet_socket(ifname: str, proto: int = ETH_TEST, rcvbuf: int = 64 << 20) -> socket.socket:
    """An AF_PACKET socket bound to ifname (receives proto; sends anything)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    s.setsockopt(SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
    s.setsockopt(SOL_SOCKET, SO_SNDBUFFORCE, 4 << 20)
    s.bind((ifname, proto))
    return s


def packet_sender(ifname: str) -> socket.socket:
    """An AF_PACKET socket that only sends (protocol 0 receives nothing)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(SOL_SOCKET, SO_SNDBUFFORCE, 4 << 20)
    s.bind((ifname, 0))
    return s


def packet_recv(sock: socket.socket, want: int, timeout: float = 5.0,
                keep: Callable[[bytes], bool] = is_test_frame) -> List[bytes]:
    """Up to ``want`` frames from sock (outgoing copies and non-test frames
    skipped), waiting at most timeout seconds in total."""
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


# -- comparing ---------------------------------------------------------------------

def mismatch(got: Sequence[bytes], expected: Sequence[bytes], stats=None) -> str:
    """'' when got == expected, else a short description of the difference."""
    if list(got) == list(expected):
        return ""
    lines = [f"received {len(got)} frames, expected {len(expected)}"]
    want = {f: i for i, f in enumerate(expected)}
    unknown = [g for g in got if g not in want]
    seen = {want[g] for g in got if g in want}
    missing = [i for i in range(len(expected)) if i not in seen]
    if missing:
        lines.append(f"missing {len(missing)}, first indexes {missing[:10]}")
    if unknown:
        g = unknown[0]
        lines.append(f"{len(unknown)} frames that were never sent (corrupt), first: len {len(g)} "
                     f"head {g[:24].hex()}")
        if is_test_frame(g):
            tag, seq = tag_seq(g)
            if seq < len(expected):
                ref = expected[seq]
                diff = next((k for k in range(min(len(ref), len(g))) if ref[k] != g[k]), None)
                lines.append(f"  it claims seq {seq} (len {len(ref)}); first differing byte {diff}")
    if len(got) != len(set(got)):
        lines.append(f"{len(got) - len(set(got))} duplicates")
    if not missing and not unknown and len(got) == len(expected):
        order = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        lines.append(f"reordered from index {order}")
    if stats is not None:
        lines.append(f"xdp_stats: {stats}")
    return "; ".join(lines)


# -- other processes in the same namespace -------------------------------------------

class Child:
    """A Python process (in the caller's network namespace) running ``code``;
    its stdout lines are read on demand.  kill() by pid; always use in a
    try/finally."""

    def __init__(self, code: str, *args: str) -> None:
        self.popen = subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, bufsize=1)
        self.pid = self.popen.pid

    def expect(self, prefix: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError(f"child {self.pid}: no {prefix!r} line in {timeout} s; "
                                     f"stderr: {self.popen.stderr.read()[-3000:]}")
            if select.select([self.popen.stdout], [], [], left)[0]:
                line = self.popen.stdout.readline()
                if not line:
                    self.popen.wait(5)
                    raise AssertionError(f"child {self.pid} exited ({self.popen.returncode}) "
                                         f"before {prefix!r}; stderr: "
                                         f"{self.popen.stderr.read()[-3000:]}")
                if line.startswith(prefix):
                    return line.rstrip("\n")

    def say(self, text: str) -> None:
        self.popen.stdin.write(text + "\n")
        self.popen.stdin.flush()

    def kill(self, sig: int = 9) -> None:
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        if sig == 9:
            self.popen.wait(10)

    def finish(self, timeout: float = 20.0) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"child {self.pid} still running after {timeout} s")


def kill_all(children: Iterable[Optional[Child]]) -> None:
    for c in children:
        if c is not None:
            c.kill()


def group(frames: Iterable[bytes], key: Callable[[bytes], object]) -> Dict[object, List[bytes]]:
    out: Dict[object, List[bytes]] = {}
    for f in frames:
        out.setdefault(key(f), []).append(f)
    return out
