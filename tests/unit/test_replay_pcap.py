"""The replay tool and the libpcap-like facade over pipes (no root)."""
from __future__ import annotations

import select
import sys
import threading
import time

import numpy as np
import pytest

import nmcompat
from nmcompat import pcapcompat
from nmcompat.tools import _pcap, replay
from tools_helpers import drain, udp

# ---------------------------------------------------------------------------
# replay


def write_pcap(path, frames, gap: float) -> None:
    with open(path, "wb") as f:
        _pcap.write_header(f, 65535)
        for i, fr in enumerate(frames):
            _pcap.write_record(f, 1_700_000_000.0 + i * gap, fr)


def test_replay_schedules():
    lens, ts = np.array([100.0, 100.0, 100.0]), np.array([5.0, 5.5, 7.0])
    assert list(replay.schedule(lens, ts)) == [0.0, 0.5, 2.0]
    assert list(replay.schedule(lens, ts, "real,2")) == [0.0, 0.25, 1.0]
    assert list(replay.schedule(lens, ts, "8k")) == pytest.approx([0.0, 0.1, 0.2])
    assert list(replay.schedule(lens, ts, "ether,9.92k")) == pytest.approx([0.0, 0.1, 0.2])
    assert list(replay.schedule(lens, ts, pps=10)) == pytest.approx([0.0, 0.1, 0.2])
    rng = np.random.default_rng(1)
    t = replay.add_delay(np.array([0.0, 0.001, 0.002]), "uniform,1m,5m", rng)
    assert np.all(np.diff(t) >= 0) and t[0] >= 0.001
    assert replay.keep_mask(lens, "plr,0", rng).all() and not replay.keep_mask(lens, "1", rng).any()


def test_replay_sends_in_order_at_pace(rundir, tmp_path):
    frames = [udp(1, 2, 3, 4, seq=i, size=60 + i % 500) for i in range(1000)]
    write_pcap(tmp_path / "t.pcap", frames, 1e-4)          # 10 kpps recorded
    loaded, ts, wire = replay.load(tmp_path / "t.pcap")
    assert loaded == frames and list(wire) == [len(f) for f in frames]
    rx = nmcompat.open("netmap:r}0")
    got = []
    stop = []

    def reader():
        while not stop:
            drain(rx, got)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    with nmcompat.open("netmap:r{0") as tx:
        res = replay.replay(tx, loaded, replay.schedule(np.array([len(f) for f in loaded]), ts))
    deadline = time.monotonic() + 5
    while len(got) < 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.append(1)
    t.join(5)
    rx.close()
    assert res["sent"] == 1000 and res["errors"] == 0
    assert got == frames
    assert res["elapsed"] >= 0.05


def test_replay_command(rundir, procs, tmp_path):
    frames = [udp(9, 8, 7, 6, seq=i) for i in range(1000)]
    write_pcap(tmp_path / "c.pcap", frames, 1.0)           # 1 s apart: -R must override
    rx = nmcompat.open("netmap:rc}0")
    t0 = time.monotonic()
    proc = procs.spawn([sys.executable, "-m", "nmcompat.tools", "replay", "-f", tmp_path / "c.pcap",
                        "-i", "netmap:rc{0", "-w", "0", "-R", "10k", "-b", "16"])
    got, deadline = [], time.monotonic() + 20
    while len(got) < 1000 and time.monotonic() < deadline:
        drain(rx, got)
    out = proc.finish(20)
    rx.close()
    assert got == frames
    assert "Sent 1000 packets 64000 bytes in" in out
    assert time.monotonic() - t0 >= 0.05


# ---------------------------------------------------------------------------
# the libpcap-like facade


def test_pcap_facade_on_a_pipe(rundir):
    with nmcompat.open("netmap:pc{0") as tx, pcapcompat.open_live("netmap:pc}0", 100, True, 50) as p:
        assert p.datalink() == pcapcompat.DLT_EN10MB and p.snapshot() == 100
        assert p.dispatch(-1, lambda h, d: None) == 0          # to_ms timeout, nothing there
        assert p.next() is None and p.next_ex() == (0, None, None)
        frames = [udp(1, 2, 3, 4, seq=i, size=60 + 40 * i) for i in range(10)]
        for f in frames:
            tx.inject(f)
        tx.txsync()
        seen = []
        assert p.dispatch(3, lambda h, d: seen.append((h, bytes(d)))) == 3
        hdr, data = seen[0]
        assert (hdr.caplen, hdr.len, data) == (60, 60, frames[0])
        assert abs(hdr.ts - time.time()) < 60
        assert [h.caplen for h, _ in seen] == [60, 100, 100] and seen[2][0].len == 140
        assert seen[2][1] == frames[2][:100]
        hdr, data = p.next()
        assert hdr.len == 180 and data == frames[3][:100]
        assert p.next_ex()[0] == 1
        # loop() runs until cnt, breakloop() stops it
        assert p.loop(2, lambda h, d: seen.append(h)) == 0
        assert p.loop(-1, lambda h, d: p.breakloop()) == pcapcompat.PCAP_ERROR_BREAK
        assert p.stats().ps_recv == 3 + 1 + 1 + 2 + 1
        # sending, and a selectable descriptor
        p.sendpacket(frames[9])
        assert p.inject(frames[8]) == len(frames[8])
        tx.rxsync()
        back = [bytes(d) for _, d in iter(lambda: tx.nextpkt(), None)]
        assert back == [frames[9], frames[8]]
        p.setnonblock(True)
        assert p.getnonblock() and p.dispatch(-1, lambda h, d: None) == 2   # the last two
        assert p.dispatch(-1, lambda h, d: None) == 0                       # no wait
        fd = p.get_selectable_fd()
        assert fd == p.fileno()
        tx.inject(frames[0])
        tx.txsync()
        assert select.select([fd], [], [], 5)[0] == [fd]
        assert p.dispatch(-1, lambda h, d: None) >= 1
        with pytest.raises(OSError):
            p.setfilter("udp")
