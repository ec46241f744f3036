"""One port used at once by several threads, or by a process and its forked
child (the same holder): a ring is never worked in by two of them at once,
so every packet arrives exactly once and intact.

The C program tests/engine/ring_share.c moves 1,000,000 numbered packets
(built normally and under AddressSanitizer/UBSan); the Python test does the
same through `Port.send`/`Port.recv` from threads (cffi releases the GIL).
"""
from __future__ import annotations

import os
import select
import subprocess
import threading
import time

import numpy as np
import pytest

import nmcompat
from testlib import SANITIZER_ENV, parse_kv

PACKETS = 1_000_000


@pytest.mark.parametrize("mode", ["threads", "fork"])
@pytest.mark.parametrize("build", ["o2", "asan"])
def test_shared_port_delivers_every_packet_once(request, rundir, mode, build):
    exe = request.getfixturevalue("ring_share" if build == "o2" else "ring_share_asan")
    env = dict(SANITIZER_ENV) if build == "asan" else {}
    proc = subprocess.run([str(exe), mode, "-n", str(PACKETS), "-r", str(rundir), "-t", "120"],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    done = parse_kv(proc.stdout.strip().splitlines()[-1])
    assert int(done["packets"]) == PACKETS


PKT = 64
BATCH = 512


def _pattern(stream: int, seq: np.ndarray) -> np.ndarray:
    i = np.arange(8, PKT, dtype=np.uint32)
    s = seq.astype(np.uint32)[:, None]
    return ((stream * 131 + s * 7 + i * 13 + (s >> 8)) & 0xFF).astype(np.uint8)


def _batch(stream: int, first: int, n: int) -> np.ndarray:
    seq = np.arange(first, first + n, dtype=np.uint32)
    rows = np.empty((n, PKT), dtype=np.uint8)
    hdr = rows[:, :8].view(np.uint32)
    hdr[:, 0] = stream
    hdr[:, 1] = seq
    rows[:, 8:] = _pattern(stream, seq)
    return rows


def test_two_threads_on_each_python_port(rundir):
    per = PACKETS // 2
    seen = np.zeros((2, per), dtype=bool)
    lock = threading.Lock()
    errors = []
    deadline = time.monotonic() + 120
    tx = nmcompat.open("netmap:ts{1", rundir=str(rundir))
    rx = nmcompat.open("netmap:ts}1", rundir=str(rundir))
    got = [0]

    def send(stream):
        try:
            nxt = 0
            while nxt < per and not errors and time.monotonic() < deadline:
                n = tx.send(_batch(stream, nxt, min(BATCH, per - nxt)))
                nxt += n
                if n == 0:
                    tx.poll(select.POLLOUT, timeout_ms=5)
        except Exception as e:                          # noqa: BLE001 - reported below
            errors.append(f"sender {stream}: {e!r}")

    def recv():
        last = [-1, -1]
        out = np.empty((BATCH, PKT), dtype=np.uint8)
        try:
            while not errors and got[0] < PACKETS and time.monotonic() < deadline:
                data, lens = rx.recv(BATCH, PKT, out=out)
                if len(data) == 0:
                    rx.poll(timeout_ms=5)
                    continue
                assert np.all(lens == PKT), f"lengths {set(lens.tolist())}"
                hdr = data[:, :8].view(np.uint32)
                for s in (0, 1):
                    rows = data[hdr[:, 0] == s]
                    if len(rows) == 0:
                        continue
                    seq = rows[:, :8].view(np.uint32)[:, 1].copy()
                    assert np.all(seq < per), "sequence number out of range"
                    assert np.array_equal(rows[:, 8:], _pattern(s, seq)), f"stream {s}: payload corrupt"
                    assert seq[0] > last[s] and np.all(np.diff(seq.astype(np.int64)) > 0), \
                        f"stream {s}: out of order in one receiver"
                    last[s] = int(seq[-1])
                    with lock:
                        assert not seen[s, seq].any(), f"stream {s}: a packet received twice"
                        seen[s, seq] = True
                assert np.all(hdr[:, 0] < 2), "bad stream id"
                with lock:
                    got[0] += len(data)
        except Exception as e:                          # noqa: BLE001 - reported below
            errors.append(f"receiver: {e!r}")

    threads = [threading.Thread(target=send, args=(s,)) for s in (0, 1)] + \
              [threading.Thread(target=recv) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
    finally:
        if any(t.is_alive() for t in threads):
            errors.append("a thread did not finish")
        for t in threads:
            t.join(10)
        tx.close()
        rx.close()
    assert errors == [], errors
    assert got[0] == PACKETS and seen.all()
