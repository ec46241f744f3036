"""pkt-gen on a veth pair: what it sends is valid Ethernet/IP/UDP on the wire.

Each test has its own network namespace with va <-> vb (the ``netns``
fixture, removed even when the test fails) and its own runtime directory.
pkt-gen sends on netmap:va (AF_XDP, or AF_PACKET where AF_XDP is missing);
the frames are taken on vb by a plain AF_PACKET socket (what the kernel
carried, independent of nmcompat) or by pkt-gen -f rx --pcap, written to a
pcap file, and parsed by tshark when it is installed (else by scapy when it
is importable), always also by this file's own parser and checksum code.
"""
from __future__ import annotations

import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
PKTGEN = [sys.executable, "-m", "nmcompat.tools", "pkt-gen"]
ETH_P_ALL = 3
PORT = 4321


def _env(rundir) -> dict:
    env = dict(os.environ, NMCOMPAT_RUNDIR=str(rundir), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _quiet_ipv6() -> None:
    for name in ("va", "vb"):
        try:
            with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
                f.write("1")
        except OSError:
            pass


def _ours(data: bytes) -> bool:
    """A UDP frame to PORT (IPv4 or IPv6), whatever else vb sees."""
    etype = struct.unpack_from("!H", data, 12)[0]
    if etype == 0x0800 and len(data) >= 38 and data[23] == 17:
        return struct.unpack_from("!H", data, 36)[0] == PORT
    if etype == 0x86DD and len(data) >= 58 and data[20] == 17:
        return struct.unpack_from("!H", data, 56)[0] == PORT
    return False


def capture_while_sending(argv, env, want: int, timeout: float = 30.0):
    """In the namespace: an AF_PACKET socket on vb, pkt-gen sending on va."""
    _quiet_ipv6()
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)           # SO_RCVBUFFORCE
    sock.bind(("vb", ETH_P_ALL))
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    frames, deadline = [], time.monotonic() + timeout
    try:
        while len(frames) < want and time.monotonic() < deadline:
            if not select.select([sock], [], [], 0.5)[0]:
                if proc.poll() is not None and not select.select([sock], [], [], 1.0)[0]:
                    break
                continue
            data, addr = sock.recvfrom(65536)
            if addr[2] != socket.PACKET_OUTGOING and _ours(data):
                frames.append(data)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err, frames


def rx_and_tx(rx_argv, tx_argv, env, timeout: float = 60.0):
    """In the namespace: pkt-gen -f rx on vb (started first), pkt-gen -f tx on va."""
    _quiet_ipv6()
    rx = subprocess.Popen(rx_argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = rx.stdout.readline()
        tx = subprocess.run(tx_argv, env=env, capture_output=True, text=True, timeout=timeout)
        out, err = rx.communicate(timeout=timeout)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    return (tx.returncode, tx.stdout, tx.stderr), (rx.returncode, first + out, err)


# -- this file's own checks ----------------------------------------------------------

def _sum(data: bytes) -> int:
    data = bytes(data) + (b"\0" if len(data) % 2 else b"")
    total = 0
    for (w,) in struct.iter_unpack("!H", data):
        total += w
        total = (total & 0xFFFF) + (total >> 16)
    return total


def check_frame(data: bytes) -> tuple:
    etype = struct.unpack_from("!H", data, 12)[0]
    if etype == 0x0800:
        ip = data[14:34]
        assert _sum(ip) == 0xFFFF, "IPv4 header checksum"
        assert struct.unpack("!H", ip[2:4])[0] == len(data) - 14
        udp, pseudo_addr = data[34:], ip[12:20]
        pseudo = pseudo_addr + struct.pack("!HH", 17, len(udp))
    else:
        assert struct.unpack_from("!H", data, 18)[0] == len(data) - 54
        udp, pseudo_addr = data[54:], data[22:54]
        pseudo = pseudo_addr + struct.pack("!IxxxB", len(udp), 17)
    assert struct.unpack("!H", udp[4:6])[0] == len(udp)
    assert _sum(pseudo + udp) == 0xFFFF, "UDP checksum"
    return etype, struct.unpack("!HH", udp[:4])


def write_pcap(path: Path, frames) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, data in enumerate(frames):
            f.write(struct.pack("<IIII", 1, i, len(data), len(data)) + data)


def read_pcap(path: Path) -> list:
    raw, out, off = path.read_bytes(), [], 24
    assert struct.unpack_from("<I", raw)[0] == 0xA1B2C3D4
    while off < len(raw):
        caplen = struct.unpack_from("<IIII", raw, off)[2]
        out.append(raw[off + 16:off + 16 + caplen])
        off += 16 + caplen
    return out


def dissect(path: Path, count: int, af: int) -> str:
    """tshark, else scapy: every frame UDP to PORT with good checksums.
    Returns which tool checked, or '' when neither is here."""
    if shutil.which("tshark"):
        ipf = "ip" if af == 4 else "ipv6"
        proc = subprocess.run(["tshark", "-r", str(path), "-o", "ip.check_checksum:TRUE",
                               "-o", "udp.check_checksum:TRUE", "-T", "fields", "-e", f"{ipf}.src",
                               "-e", "udp.dstport", "-e", "udp.checksum.status"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        rows = [line.split("\t") for line in proc.stdout.splitlines()]
        assert len(rows) == count and all(r[0] and r[1] == str(PORT) and r[2] == "1" for r in rows), rows[:3]
        return "tshark"
    try:
        from scapy.all import IP, IPv6, UDP, rdpcap
    except ImportError:
        warnings.warn("neither tshark nor scapy here: frames checked by this file's parser only")
        return ""
    for pkt in rdpcap(str(path)):
        layer = pkt[IP] if af == 4 else pkt[IPv6]
        fresh = layer.__class__(bytes(layer))
        del fresh[UDP].chksum
        assert fresh.__class__(bytes(fresh))[UDP].chksum == pkt[UDP].chksum and pkt[UDP].dport == PORT
    return "scapy"


# -- tests --------------------------------------------------------------------------

@pytest.mark.parametrize("af", [4, 6])
def test_frames_sent_on_a_veth_are_valid_udp(netns, rundir, tmp_path, af):
    n = 300
    dst = f"10.1.0.1:{PORT}" if af == 4 else f"[fd01::1]:{PORT}"
    argv = PKTGEN + ["-i", "netmap:va", "-f", "tx", "-n", str(n), f"-{af}", "-d", dst,
                     "-s", "10.0.0.1:1000-10.0.0.1:1009" if af == 4 else "[fd00::1]:1000-[fd00::1]:1009",
                     "-l", "200", "-R", "20000", "-w", "1", "-T", "200"]
    rc, out, err, frames = netns.run(capture_while_sending, argv, _env(rundir), n)
    assert rc == 0, f"pkt-gen failed ({rc}):\n{out}\n{err}"
    assert f"Sent {n} packets {200 * n} bytes" in out, out
    assert len(frames) == n, f"{len(frames)} of {n} frames seen on vb\n{err}"
    ports = [check_frame(f)[1] for f in frames]
    assert all(len(f) == 200 for f in frames)
    assert [p[0] for p in ports] == [1000 + i % 10 for i in range(n)]
    path = tmp_path / "vb.pcap"
    write_pcap(path, frames)
    dissect(path, n, af)


def test_pkt_gen_rx_on_the_peer_writes_a_readable_pcap(netns, rundir, tmp_path):
    n = 500
    path = tmp_path / "rx.pcap"
    env = _env(rundir)
    rx_argv = PKTGEN + ["-i", "netmap:vb", "-f", "rx", "-n", str(n), "-w", "0", "-T", "300",
                        "--pcap", str(path)]
    tx_argv = PKTGEN + ["-i", "netmap:va", "-f", "tx", "-n", str(n), "-6", "-d", f"[fd01::1]:{PORT}",
                        "-l", "1000", "-l", "100", "-R", "10000", "-w", "1", "-T", "300", "-v"]
    (trc, tout, terr), (rrc, rout, rerr) = netns.run(rx_and_tx, rx_argv, tx_argv, env)
    assert trc == 0 and rrc == 0, f"tx {trc}:\n{tout}{terr}\nrx {rrc}:\n{rout}{rerr}"
    assert f"Sent {n} packets" in tout and rout.startswith("Receiving from netmap:vb:")
    frames = [f for f in read_pcap(path) if _ours(f)]
    assert len(frames) == n, f"{len(frames)} of {n} in the capture\n{rout}{rerr}"
    for f in frames:
        assert check_frame(f)[0] == 0x86DD and 100 <= len(f) < 1000
    ours = tmp_path / "ours.pcap"
    write_pcap(ours, frames)
    dissect(ours, n, 6)
