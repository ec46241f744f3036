"""pcap and pcapng: replay reads both, pkt-gen writes pcap (--pcap FILE) or
pcapng (with --pcapng), and tshark reads what pkt-gen wrote.  tshark is a
system package (./run setup installs it as root); without it these tests
skip loudly, which NMCOMPAT_STRICT=1 turns into a failure."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from nmcompat.tools import _pcap, replay
from testlib import skip_or_fail
from tools_helpers import udp

PKTGEN = [sys.executable, "-m", "nmcompat.tools", "pkt-gen"]
QUICK = ["-w", "0", "-T", "200"]


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        skip_or_fail(f"{tool} is missing (apt-get install tshark; ./run setup does it as root)")
    return path


def tshark(path, *fields: str) -> list:
    """One row per frame tshark reads from path: the fields asked for."""
    args = [_need("tshark"), "-r", str(path), "-o", "udp.check_checksum:TRUE", "-T", "fields"]
    for field in fields:
        args += ["-e", field]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [line.split("\t") for line in proc.stdout.splitlines()]


def file_type(path) -> str:
    """What capinfos calls the file's format ("pcap", "pcapng", "nsecpcap"...)."""
    proc = subprocess.run([_need("capinfos"), "-t", "-M", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("File type:"))
    return line.split(":", 1)[1].strip()


def test_pkt_gen_writes_pcap_and_pcapng_that_tshark_reads(procs, tmp_path):
    n = 200
    sent, got = tmp_path / "tx.pcap", tmp_path / "rx.pcapng"
    rx = procs.spawn(PKTGEN + ["-i", "netmap:ng}1", "-f", "rx", "-n", str(n), "--pcap", str(got),
                               "--pcapng"] + QUICK)
    rx.expect("Receiving from", timeout=30)
    tx = procs.spawn(PKTGEN + ["-i", "netmap:ng{1", "-f", "tx", "-n", str(n), "--pcap", str(sent),
                               "-l", "300", "-l", "64"] + QUICK)
    tx.finish(60)
    rx.finish(60)
    assert (file_type(sent), file_type(got)) == ("pcap", "pcapng")
    assert got.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    rows_tx = tshark(sent, "frame.len", "udp.checksum.status")
    rows_rx = tshark(got, "frame.len", "udp.checksum.status")
    assert len(rows_rx) == n and rows_rx == rows_tx
    assert all(64 <= int(length) < 300 and status == "1" for length, status in rows_rx)  # 1: Good
    assert [d for _, d, _ in _pcap.read(got)] == [d for _, d, _ in _pcap.read(sent)]


@pytest.mark.parametrize("resolution", ["pcap", "nsecpcap"])
def test_replay_reads_pcapng_written_by_tshark(tmp_path, resolution):
    """Microsecond and nanosecond (if_tsresol 9) pcapng, as tshark writes them."""
    frames = [udp(1, 2, 3, 4, seq=i, size=60 + 7 * i) for i in range(50)]
    base = tmp_path / "in.pcap"
    with open(base, "wb") as f:
        _pcap.write_header(f)
        for i, frame in enumerate(frames):
            _pcap.write_record(f, 1_700_000_000 * 10 ** 9 + i * 1_234_000, frame)
    source = tmp_path / f"in.{resolution}"
    subprocess.run([_need("editcap"), "-F", resolution, str(base), str(source)], check=True,
                   capture_output=True, timeout=60)
    out = tmp_path / "out.pcapng"
    subprocess.run([_need("tshark"), "-r", str(source), "-F", "pcapng", "-w", str(out)],
                   check=True, capture_output=True, timeout=120)
    assert file_type(out) == "pcapng"
    loaded, ts, wire = replay.load(out)
    assert loaded == frames and list(wire) == [len(f) for f in frames]
    assert list(ts - ts[0]) == pytest.approx([i * 1.234e-3 for i in range(50)], abs=1e-6)


def test_pcapng_round_trip_and_truncation(tmp_path):
    from nmcompat.tools import _pcapng
    path = tmp_path / "x.pcapng"
    frames = [bytes([i]) * (60 + i) for i in range(5)]
    with open(path, "wb") as f:
        w = _pcap.Writer(f, "pcapng", 128)
        for i, frame in enumerate(frames):
            w.write(10 + i, 250_000 * i, frame, len(frame) + 4)
    got = list(_pcap.read(path))
    assert [d for _, d, _ in got] == frames and [n for _, _, n in got] == [len(f) + 4 for f in frames]
    assert [t for t, _, _ in got] == pytest.approx([10 + i + 0.25 * i for i in range(5)])
    raw = path.read_bytes()
    path.write_bytes(raw[:-6])
    with pytest.raises(ValueError, match="truncated pcapng"):
        list(_pcap.read(path))
    assert raw[:4] == _pcapng.SHB_TYPE.to_bytes(4, "little")
    with pytest.raises(ValueError, match="'pcap' or 'pcapng'"):
        _pcap.Writer(open(tmp_path / "y", "wb"), "pcapx")
