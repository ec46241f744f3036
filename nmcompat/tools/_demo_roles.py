"""The two processes of the demo: a sender and a receiver of sequenced frames."""
from __future__ import annotations

import json
import time

import numpy as np

FRAME = 60
ETHERTYPE = b"\x88\xb5"         # local experimental: the receiver counts only these
SRC = b"\x02\x00\x00\x00\x00\x02"
DST = b"\x02\x00\x00\x00\x00\x01"


def _emit(**msg) -> None:
    print(json.dumps(msg), flush=True)


def _frames(batch: int) -> np.ndarray:
    frames = np.zeros((batch, FRAME), dtype=np.uint8)
    frames[:, 0:6] = np.frombuffer(DST, np.uint8)
    frames[:, 6:12] = np.frombuffer(SRC, np.uint8)
    frames[:, 12:14] = np.frombuffer(ETHERTYPE, np.uint8)
    return frames


def sender(name: str, seconds: float, batch: int) -> None:
    import nmcompat
    frames = _frames(batch)
    seqs = frames[:, 14:22].view("<u8").reshape(batch)
    sent, t0 = 0, time.monotonic()
    last = (t0, 0)
    with nmcompat.open(name) as port:
        while time.monotonic() - t0 < seconds:
            seqs[:] = np.arange(sent, sent + batch, dtype=np.uint64)
            n = port.send(frames)
            sent += n
            if n < batch:
                port.poll(nmcompat.POLLOUT, 100)
            last = _tick("tx", sent, last)
        for _ in range(50):                 # let the last frames leave
            if not port.tx_rings[0].tx_pending():
                break
            port.poll(nmcompat.POLLOUT, 20)
    _emit(kind="done", who="tx", count=sent)


def receiver(name: str, batch: int) -> None:
    import nmcompat
    got = errors = expect = gaps = 0
    last = (time.monotonic(), 0)
    with nmcompat.open(name) as port:
        print("ready", flush=True)
        out = np.empty((batch, 64), dtype=np.uint8)
        lens = np.empty(batch, dtype=np.uint32)
        quiet_since, started = None, False
        while True:
            data, _ = port.recv(batch, out=out, lengths=lens)
            ours = data[(data[:, 12] == 0x88) & (data[:, 13] == 0xB5)]
            if len(ours):
                seq = ours[:, 14:22].copy().view("<u8").reshape(len(ours)).astype(np.int64)
                prev = np.concatenate(([expect - 1], seq[:-1]))
                errors += int(np.count_nonzero(seq <= prev))        # reordered or repeated
                gaps += int(np.sum(np.maximum(seq - prev - 1, 0)))   # lost on the way
                expect = int(seq[-1]) + 1
                got += len(ours)
                quiet_since, started = None, True
            elif port.poll(nmcompat.POLLIN, 100) == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > (1.0 if started else 15.0):
                    break
            last = _tick("rx", got, last)
        drops = sum(q["rx_dropped"] + q["rx_ring_full"]     # rx_dropped counts FILL-empty ones
                    for q in port.xdp_stats()) if port.info.backend == "afxdp" else 0
    _emit(kind="done", who="rx", count=got, errors=errors, gaps=gaps, kernel_drops=drops)


def _tick(who: str, count: int, last):
    now = time.monotonic()
    if now - last[0] >= 1.0:
        _emit(kind="rate", who=who, mpps=(count - last[1]) / (now - last[0]) / 1e6)
        return (now, count)
    return last
