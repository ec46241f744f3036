"""nmcompat pkt-gen: netmap's packet generator over pipes and VALE.

Each test runs pkt-gen as separate processes (a receiver started first, a
sender), reads their summaries, and checks the frames through pcap files
pkt-gen wrote, parsed here with this file's own reader and checksum code
(cross-checked with tshark and scapy when they are installed).
"""
from __future__ import annotations

import ipaddress
import re
import shutil
import struct
import subprocess
import sys

import pytest

PKTGEN = [sys.executable, "-m", "nmcompat.tools", "pkt-gen"]
NUM = r"\d+\.\d{3} [KMGT]?"
PERIODIC = re.compile(rf"^\d{{3}}\.\d{{6}} main_thread \[\d+\] ({NUM})pps (?:\[avg/std [^\]]*\] )?"
                      rf"\(({NUM})pkts ({NUM})bps in (\d+) usec\) (\d+\.\d\d) avg_batch (\d+) min_space$")
SUMMARY = re.compile(r"^(Sent|Received) (\d+) packets (\d+) bytes (\d+) events (\d+) bytes each "
                     r"in (\d+\.\d\d) seconds\.$")
SPEED = re.compile(rf"^Speed: ({NUM})pps Bandwidth: ({NUM})bps \(raw ({NUM})bps\)\. "
                   r"Average batch: (\d+\.\d\d) pkts$")
START = re.compile(r"^(Sending on|Receiving from|Working on) (\S+): (\d+) queues, (\d+) threads "
                   r"and (\d+) cpus\.$")
ADDRS = re.compile(r"^(\S+) -> (\S+) \(([0-9a-f:]{17}) -> ([0-9a-f:]{17})\)$")
RTT = re.compile(r"RTT over (\d+) packets: min (\d+) av (\d+) ns$")
PAYLOAD = b"netmap pkt-gen DIRECT payload\nhttp://info.iet.unipi.it/~luigi/netmap/ "


# -- this file's own frame and pcap code ------------------------------------------

def csum(data: bytes) -> int:
    """Ones' complement sum of 16-bit big-endian words, folded."""
    data = bytes(data) + (b"\0" if len(data) % 2 else b"")
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return total


def parse_frame(frame: bytes) -> dict:
    """Ethernet + IPv4/IPv6 + UDP; raises AssertionError on any inconsistency."""
    dst, src, etype = frame[:6], frame[6:12], struct.unpack("!H", frame[12:14])[0]
    if etype == 0x0800:
        ip = frame[14:34]
        assert ip[0] == 0x45 and ip[9] == 17, ip.hex()
        total = struct.unpack("!H", ip[2:4])[0]
        assert total == len(frame) - 14
        assert csum(ip) == 0xFFFF, "bad IPv4 header checksum"
        saddr, daddr, udp = ip[12:16], ip[16:20], frame[34:]
        pseudo = saddr + daddr + struct.pack("!HH", 17, len(udp))
    else:
        assert etype == 0x86DD, hex(etype)
        ip = frame[14:54]
        assert ip[0] >> 4 == 6 and ip[6] == 17
        assert struct.unpack("!H", ip[4:6])[0] == len(frame) - 54
        saddr, daddr, udp = ip[8:24], ip[24:40], frame[54:]
        pseudo = saddr + daddr + struct.pack("!IxxxB", len(udp), 17)
    sport, dport, ulen, ucsum = struct.unpack("!HHHH", udp[:8])
    assert ulen == len(udp)
    assert ucsum != 0 and csum(pseudo + udp) == 0xFFFF, "bad UDP checksum"
    return dict(dst=dst, src=src, saddr=ipaddress.ip_address(saddr), daddr=ipaddress.ip_address(daddr),
                sport=sport, dport=dport, payload=udp[8:])


def expected_frame(size=60, src="10.0.0.1", dst="10.1.0.1", sport=1234, dport=1234,
                   smac=bytes(6), dmac=b"\xff" * 6) -> bytes:
    """The IPv4 frame pkt-gen is documented to build, built independently."""
    ulen = size - 34
    body = (PAYLOAD * 64)[:ulen - 8]
    body = body[:-1] + b"\0"
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0x10, size - 14, 0, 0x4000, 64, 17, 0, s, d))
    ip[10:12] = struct.pack("!H", 0xFFFF - csum(ip))
    udp = bytearray(struct.pack("!HHHH", sport, dport, ulen, 0) + body)
    udp[6:8] = struct.pack("!H", (0xFFFF - csum(s + d + struct.pack("!HH", 17, ulen) + udp)) or 0xFFFF)
    return dmac + smac + b"\x08\x00" + bytes(ip) + bytes(udp)


def read_pcap(path) -> list:
    """(caplen data, wire length) per record of a classic little-endian pcap."""
    raw = path.read_bytes()
    magic, major, minor, _, _, snaplen, linktype = struct.unpack_from("<IHHiIII", raw)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    out, off = [], 24
    while off < len(raw):
        _, usec, caplen, wirelen = struct.unpack_from("<IIII", raw, off)
        assert usec < 1_000_000 and caplen <= wirelen and caplen <= snaplen
        out.append((raw[off + 16:off + 16 + caplen], wirelen))
        off += 16 + caplen
    assert off == len(raw)
    return out


def cross_check(path, count: int) -> None:
    """tshark and scapy, when present, agree that every frame is valid UDP."""
    if shutil.which("tshark"):
        proc = subprocess.run(["tshark", "-r", str(path), "-o", "ip.check_checksum:TRUE",
                               "-o", "udp.check_checksum:TRUE", "-T", "fields",
                               "-e", "udp.checksum.status", "-e", "ip.checksum.status"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        rows = [line.split("\t") for line in proc.stdout.splitlines()]
        assert len(rows) == count
        assert all(r[0] == "1" and r[1] in ("1", "") for r in rows), rows[:5]   # 1: "Good"
    try:
        from scapy.all import IP, IPv6, UDP, rdpcap
    except ImportError:
        return
    for pkt in rdpcap(str(path)):
        layer = pkt[IP] if IP in pkt else pkt[IPv6]
        fresh = layer.__class__(bytes(layer))
        del fresh[UDP].chksum
        assert fresh.__class__(bytes(fresh))[UDP].chksum == pkt[UDP].chksum


# -- running pkt-gen ------------------------------------------------------------

def run_pair(procs, rx_args, tx_args, ready="Receiving from", timeout=60.0):
    rx = procs.spawn(PKTGEN + rx_args)
    rx.expect(ready, timeout=30)
    tx = procs.spawn(PKTGEN + tx_args)
    tx_out = tx.finish(timeout)
    rx_out = rx.finish(timeout)
    return tx, rx, tx_out, rx_out


def summary(out: str):
    lines = out.splitlines()
    for i, line in enumerate(lines):
        m = SUMMARY.match(line)
        if m:
            assert SPEED.match(lines[i + 1]), lines[i + 1]
            return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(5))
    raise AssertionError(f"no summary in:\n{out}")


def periodic(proc) -> list:
    return [PERIODIC.match(line.rstrip("\n")) for line in proc.err if " main_thread [" in line]


QUICK = ["-w", "0", "-T", "200"]


def test_tx_rx_over_a_pipe_count_the_same_packets(procs):
    n = 50000
    tx, rx, tx_out, rx_out = run_pair(procs, ["-i", "netmap:pg}1", "-f", "rx", "-n", str(n)] + QUICK,
                                      ["-i", "netmap:pg{1", "-f", "tx", "-n", str(n)] + QUICK)
    assert summary(tx_out) == ("Sent", n, 60 * n, 60)
    assert summary(rx_out) == ("Received", n, 60 * n, 60)
    assert START.match(tx_out.splitlines()[0]).groups() == ("Sending on", "netmap:pg{1", "1", "1", "1")
    assert START.match(rx_out.splitlines()[0]).group(1) == "Receiving from"
    assert ADDRS.match(tx_out.splitlines()[1]).groups() == (
        "10.0.0.1", "10.1.0.1", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff")
    for proc in (tx, rx):
        lines = periodic(proc)
        assert lines and all(lines), "".join(proc.err)
    assert all(m.group(6) == "99999" for m in periodic(tx))     # min_space: netmap's TX sentinel


def test_tx_rx_over_vale_count_the_same_packets(procs):
    n = 1000        # fits the receiver's ring: VALE drops what does not fit, as netmap does
    _, _, tx_out, rx_out = run_pair(procs, ["-i", "vale0:rx", "-f", "rx", "-n", str(n)] + QUICK,
                                    ["-i", "vale0:tx", "-f", "tx", "-n", str(n), "-l", "128"] + QUICK)
    assert summary(tx_out) == ("Sent", n, 128 * n, 128)
    assert summary(rx_out) == ("Received", n, 128 * n, 128)


def test_threads_bind_one_ring_each(procs):
    n = 20000
    _, _, tx_out, rx_out = run_pair(
        procs, ["-i", "netmap:mt}1@conf:rings=2", "-f", "rx", "-n", str(n), "-p", "2"] + QUICK,
        ["-i", "netmap:mt{1@conf:rings=2", "-f", "tx", "-n", str(n), "-p", "2"] + QUICK)
    assert START.match(tx_out.splitlines()[0]).groups()[2:4] == ("2", "2")
    assert summary(tx_out)[1] == summary(rx_out)[1] == n


def test_txseq_rxseq_find_no_gap(procs):
    n = 100000
    _, rx, tx_out, rx_out = run_pair(procs, ["-i", "netmap:sq}1", "-f", "rxseq", "-n", str(n)] + QUICK,
                                     ["-i", "netmap:sq{1", "-f", "txseq", "-n", str(n)] + QUICK)
    assert summary(tx_out)[1] == summary(rx_out)[1] == n
    assert not [line for line in rx.err if "Sequence" in line or "frags" in line], "".join(rx.err)


def test_ping_pong_reports_rtts(procs):
    n = 300
    ping, _, _, _ = run_pair(procs, ["-i", "netmap:pp}1", "-f", "pong", "-n", str(n)] + QUICK,
                             ["-i", "netmap:pp{1", "-f", "ping", "-n", str(n)] + QUICK, ready="Working on")
    found = [RTT.search(line) for line in ping.err if "RTT over" in line]
    assert len(found) == 1 and found[0], "".join(ping.err)
    count, rtt_min, rtt_av = map(int, found[0].groups())
    assert count == n and 0 < rtt_min <= rtt_av < 1_000_000_000


def test_pcap_of_rx_holds_the_frames_tx_sent(procs, tmp_path):
    n = 3000
    sent, got = tmp_path / "tx.pcap", tmp_path / "rx.pcap"
    run_pair(procs, ["-i", "netmap:pc}1", "-f", "rx", "-n", str(n), "--pcap", str(got)] + QUICK,
             ["-i", "netmap:pc{1", "-f", "tx", "-n", str(n), "--pcap", str(sent), "-l", "900", "-l", "64",
              "-s", "10.0.0.1:100-10.0.0.3:102", "-d", "10.1.0.9:7-10.1.0.10:8"] + QUICK)
    tx_frames, rx_frames = read_pcap(sent), read_pcap(got)
    assert len(rx_frames) == n and rx_frames == tx_frames
    order = []
    for data, wirelen in rx_frames:
        assert len(data) == wirelen and 64 <= wirelen < 900
        f = parse_frame(data)
        order.append((int(f["saddr"]) & 0xFF, f["sport"], int(f["daddr"]) & 0xFF, f["dport"]))
    # the source port steps first, then the source address, the destination port, its address
    expect = [(sa, sp, da, dp) for da in (9, 10) for dp in (7, 8) for sa in (1, 2, 3) for sp in (100, 101, 102)]
    assert order == (expect * (n // len(expect) + 1))[:n]
    cross_check(got, n)


def test_default_frame_is_netmaps(procs, tmp_path):
    got = tmp_path / "rx.pcap"
    run_pair(procs, ["-i", "netmap:df}1", "-f", "rx", "-n", "10", "--pcap", str(got)] + QUICK,
             ["-i", "netmap:df{1", "-f", "tx", "-n", "10"] + QUICK)
    frames = read_pcap(got)
    assert frames == [(expected_frame(), 60)] * 10
    assert parse_frame(frames[0][0])["payload"] == b"netmap pkt-gen DI\0"     # 18 bytes, NUL-ended


@pytest.mark.parametrize("af", ["-4", "-6"])
def test_frames_are_valid_udp_with_random_addresses_and_sizes(procs, tmp_path, af):
    n = 2000
    got = tmp_path / "rx.pcap"
    run_pair(procs, ["-i", "netmap:rn}1", "-f", "rx", "-n", str(n), "--pcap", str(got)] + QUICK,
             ["-i", "netmap:rn{1", "-f", "tx", "-n", str(n), af, "-z", "-Z", "-l", "1500", "-l", "100",
              "-b", "16"] + QUICK)
    frames = read_pcap(got)
    assert len(frames) == n
    parsed = [parse_frame(data) for data, _ in frames]
    assert len({(f["saddr"], f["sport"]) for f in parsed}) > n // 2
    assert all(f["saddr"].version == int(af[1]) for f in parsed)
    cross_check(got, n)


BUF_CHANGED_RECEIVER = """
import sys, nmcompat
n, expected = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
seen, counts = set(), dict(first_ok=0, marked_ok=0, unmarked_zero=0, other=0, report=0)
with nmcompat.open("netmap:bc}1") as p:
    ring = p.rx_rings[0]
    print("ready", flush=True)
    got = 0
    while got < n:
        p.poll(nmcompat.POLLIN, 2000)
        while ring.head != ring.tail and got < n:
            j = ring.head
            buf = ring.buf(int(ring.slots["buf_idx"][j]))
            data = bytes(buf[:int(ring.slots["len"][j])])
            if j not in seen:
                key = "first_ok" if data == expected else "other"
            elif j % 2 == 0:
                key = "marked_ok" if data == expected else "other"
            else:
                key = "unmarked_zero" if data == bytes(len(data)) else "other"
            counts[key] += 1
            counts["report"] += int(ring.slots["flags"][j]) & 2     # NS_REPORT: a batch's last slot
            seen.add(j)
            buf[:len(data)] = bytes(len(data))      # the buffer's content changes...
            if j % 2 == 0:
                ring.slots["flags"][j] |= 1         # ...and NS_BUF_CHANGED says so on even slots
            ring.head = ring.cur = ring.next(j)
            got += 1
    p.rxsync()
print("done", " ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
"""


def test_tx_rewrites_only_slots_marked_buf_changed(procs):
    """netmap's pkt-gen writes a frame into a slot only when NS_BUF_CHANGED
    is set on it; applications rely on it.  A receiver zeroes every buffer
    and marks only the even slots changed: later laps bring valid frames in
    even slots and the zeros in odd ones.  NS_REPORT ends every batch."""
    n = 5000
    rx = procs.python(BUF_CHANGED_RECEIVER, str(n), expected_frame().hex())
    rx.expect("ready")
    procs.spawn(PKTGEN + ["-i", "netmap:bc{1", "-f", "tx", "-n", str(n)] + QUICK).finish(60)
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", rx.expect("done", timeout=60))}
    assert counts["other"] == 0 and counts["first_ok"] == 1024, counts
    assert counts["marked_ok"] > 1000 and counts["unmarked_zero"] > 1000, counts
    assert n // 512 <= counts["report"] // 2 <= n // 2, counts


def test_frames_larger_than_a_buffer_count_whole_packets(procs):
    n = 500
    _, _, tx_out, rx_out = run_pair(procs, ["-i", "netmap:fr}1", "-f", "rx", "-n", str(n)] + QUICK,
                                    ["-i", "netmap:fr{1", "-f", "tx", "-n", str(n), "-l", "5000"] + QUICK)
    assert summary(tx_out) == ("Sent", n, 5000 * n, 5000)
    assert summary(rx_out) == ("Received", n, 5000 * n, 5000)


def test_rate_and_silence(procs):
    n = 1000
    _, _, tx_out, rx_out = run_pair(procs, ["-i", "netmap:rt}1", "-f", "rx", "-W"] + QUICK,
                                    ["-i", "netmap:rt{1", "-f", "tx", "-n", str(n), "-R", "4000"] + QUICK)
    assert summary(tx_out)[1] == summary(rx_out)[1] == n
    seconds = float(SUMMARY.match([x for x in tx_out.splitlines() if x.startswith("Sent")][0]).group(6))
    assert 0.2 <= seconds <= 2.0


def test_unit_switches_and_pps_stats(procs):
    _, _, tx_out, _ = run_pair(procs, ["-i", "netmap:un}1", "-f", "rx", "-n", "3000"] + QUICK,
                               ["-i", "netmap:un{1", "-f", "tx", "-n", "3000", "-N", "-A", "-B"] + QUICK)
    assert re.search(r"^Speed: \d+ pps Bandwidth: \d+ bps \(raw \d+ bps\)\. Average batch: \d+\.\d\d pkts$",
                     tx_out, re.M), tx_out


def test_usage_and_bad_options(procs):
    h = procs.spawn(PKTGEN + ["-h"])
    assert h.wait() == 0 and "Usage:" in "".join(h.err)
    for argv in (["-q"], ["-f", "tx"], ["-i", "netmap:x{1", "-l", "8"]):
        p = procs.spawn(PKTGEN + argv)
        assert p.wait() == 255, p.describe()


def test_ring_names_and_ranges():
    from nmcompat.tools._pktgen_frames import parse_range
    from nmcompat.tools._pktgen_session import ring_name
    assert ring_name("netmap:x{1", 3) == "netmap:x{1-3"
    assert ring_name("netmap:eth0-1/T@2", 0) == "netmap:eth0-0/T@2"
    assert ring_name("vale0:a@conf:rings=2", 1) == "vale0:a-1@conf:rings=2"
    r = parse_range("10.0.0.9:20-10.0.0.1:10", 4)
    assert (r.lo, r.hi, r.port_lo, r.port_hi) == (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 9]), 10, 20)
    r = parse_range("3@[fd00::1]:99-[fd00::4]", 6)
    assert (r.group, r.port_lo, r.port_hi, r.describe()) == (3, 99, 99, "range is 3@[fd00::1]:99 to 3@[fd00::4]:99")


def test_pcap_module_round_trip(tmp_path):
    from nmcompat.tools import _pcap
    path = tmp_path / "x.pcap"
    with open(path, "wb") as f:
        _pcap.write_header(f, 128)
        _pcap.write_record(f, 1.25, b"abc")
        _pcap.write_record(f, 2_000_003_000, b"defg", 60)
    assert list(_pcap.read(path)) == [(1.25, b"abc", 3), (2.000003, b"defg", 60)]
    assert read_pcap(path) == [(b"abc", 3), (b"defg", 60)]
