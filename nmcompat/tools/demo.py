"""./run demo: a sender and a receiver process over a netmap pipe.

The sender queues batches of 60-byte frames carrying a sequence number
(one C call per batch), the receiver takes them back in batches and checks
the sequence; both print their rate once a second, then a summary.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import tempfile
import time

import numpy as np

FRAME = 60


def _sender(name: str, seconds: float, batch: int, q) -> None:
    import nmcompat
    frames = np.zeros((batch, FRAME), dtype=np.uint8)
    frames[:, 0:6] = 0xFF                       # broadcast destination, like pkt-gen
    seqs = frames[:, 14:22].view("<u8").reshape(batch)
    sent, t0, last = 0, time.monotonic(), time.monotonic()
    with nmcompat.open(name) as port:
        while time.monotonic() - t0 < seconds:
            seqs[:] = np.arange(sent, sent + batch, dtype=np.uint64)
            n = port.send(frames)
            sent += n
            if n < batch:
                port.poll(nmcompat.POLLOUT, 100)
            last = _tick(q, "tx", sent, last)
        q.put(("tx-done", sent))


def _receiver(name: str, batch: int, q, ready) -> None:
    import nmcompat
    got, errors, expect, last = 0, 0, 0, time.monotonic()
    with nmcompat.open(name) as port:
        ready.set()
        out = np.empty((batch, 64), dtype=np.uint8)
        lens = np.empty(batch, dtype=np.uint32)
        idle_since = None
        while True:
            data, _ = port.recv(batch, out=out, lengths=lens)
            if len(data):
                seq = data[:, 14:22].copy().view("<u8").reshape(len(data))
                errors += int(np.count_nonzero(seq != np.arange(expect, expect + len(data))))
                expect += len(data)
                got += len(data)
                idle_since = None
            elif port.poll(nmcompat.POLLIN, 200) == 0:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 0.5:
                    break
            last = _tick(q, "rx", got, last)
        q.put(("rx-done", got, errors))


def _tick(q, who: str, count: int, last: float) -> float:
    now = time.monotonic()
    if now - last >= 1.0:
        q.put((who, count, now))
        return now
    return last


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="nmcompat demo", description=__doc__)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--batch", type=int, default=512)
    args = ap.parse_args(argv)
    rundir = tempfile.mkdtemp(prefix="nmcompat-demo-", dir="/dev/shm")
    os.environ["NMCOMPAT_RUNDIR"] = rundir
    ctx = mp.get_context("spawn")
    q, ready = ctx.Queue(), ctx.Event()
    rx = ctx.Process(target=_receiver, args=("netmap:demo}0", args.batch, q, ready))
    tx = ctx.Process(target=_sender, args=("netmap:demo{0", args.seconds, args.batch, q))
    try:
        rx.start()
        ready.wait(10)
        tx.start()
        return _report(q, args)
    finally:
        for p in (tx, rx):
            p.join(5)
            if p.is_alive():
                p.kill()
        shutil.rmtree(rundir, ignore_errors=True)


def _report(q, args) -> int:
    print(f"netmap pipe demo{{0 -> demo}}0: {FRAME}-byte frames, batches of {args.batch}, "
          f"{args.seconds:.0f} s, two processes")
    prev = {"tx": (0, time.monotonic()), "rx": (0, time.monotonic())}
    sent = None
    while True:
        msg = q.get(timeout=args.seconds + 30)
        if msg[0] in ("tx", "rx"):
            who, count, now = msg
            c0, t0 = prev[who]
            print(f"  {'sender  ' if who == 'tx' else 'receiver'} {(count - c0) / (now - t0) / 1e6:8.2f} Mpps")
            prev[who] = (count, now)
        elif msg[0] == "tx-done":
            sent = msg[1]
        elif msg[0] == "rx-done":
            got, errors = msg[1], msg[2]
            print(f"sent {sent}, received {got}, lost {sent - got if sent else '?'}, "
                  f"out of order {errors}")
            return 0 if sent == got and errors == 0 else 1
