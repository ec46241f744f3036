"""One process of the soak benchmark (nmcompat_bench.soak): a sender or a
receiver of numbered frames on one port.

    python -m nmcompat_bench._soak_worker send PORT SEED FLOW[,FLOW...] [DSTMAC SRCMAC]
    python -m nmcompat_bench._soak_worker recv PORT FLOW[,FLOW...] [MAC]

A frame (FRAME) is an Ethernet header (ethertype 0x88B5), the magic
b"SOAK", the flow id, the flow's sequence number and the frame's length,
then bytes that depend on the flow and the sequence number (PATTERN), so a
frame cut short, lengthened or put together from pieces of two is seen.
Lengths are random from 60 to 9000 bytes (buffers of 2048 bytes: NS_MOREFRAG
chains of up to five slots), with the chain boundaries drawn more often.

The sender sends until SIGTERM, then waits until its TX rings are drained
and prints {"role": "send", "sent": {flow: frames}, "stats": ...}.  The
receiver prints {"ready": ...} (on a switch after announcing its MAC with a
broadcast frame, so that the switch learns where it is), checks every frame
(payload, length, per-flow order), and once it has read {"expect": {flow:
frames sent}} on stdin, stops when every flow is complete or nothing arrived
for IDLE_S seconds, then prints its counts.  Zero-length frames are
counted apart ("empty"): on a switch, a sender that leased more slots of
the receiver's ring than its frames could use, while another sender's
lease follows, pads the rest with len = 0 slots, as netmap does.
"""
from __future__ import annotations

import json
import os
import random
import signal
import struct
import sys
import threading
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import nmcompat  # noqa: E402

FRAME = struct.Struct("!6s6sH4sIQI")       # dst, src, ethertype, magic, flow, seq, length
ETH_TYPE, MAGIC = 0x88B5, b"SOAK"
MAX_LEN, MIN_LEN = 9000, 60
PATTERN = np.random.default_rng(0x50a4).integers(0, 256, MAX_LEN + 2048, dtype=np.uint8)
EDGES = (60, 2047, 2048, 2049, 4096, 4097, 6144, 8192, 8193, 9000)
BATCH = 32
IDLE_S = 5.0
BCAST = b"\xff" * 6


def payload_offset(flow: int, seq: int) -> int:
    return (seq * 31 + flow * 101) % 2048


def random_length(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.15:
        return rng.choice(EDGES)
    if r < 0.6:
        return rng.randint(MIN_LEN, 1514)
    return rng.randint(1515, MAX_LEN)


def write_frame(row: np.ndarray, dst: bytes, src: bytes, flow: int, seq: int, length: int) -> None:
    FRAME.pack_into(row, 0, dst, src, ETH_TYPE, MAGIC, flow, seq, length)
    off = payload_offset(flow, seq)
    row[FRAME.size:length] = PATTERN[off:off + length - FRAME.size]


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def stats_of(port) -> dict:
    st = port.stats()
    return {k: st[k] for k in ("tx_pkts", "rx_pkts", "rx_dropped", "tx_dropped", "reinits")}


# -- sender --------------------------------------------------------------------------

def sender(port_name: str, seed: int, flows: list, dst: bytes, src: bytes) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rng = random.Random(seed)
    rows = np.zeros((BATCH, MAX_LEN), dtype=np.uint8)
    lens = np.zeros(BATCH, dtype=np.uint32)
    row_flow = [0] * BATCH
    next_seq = {f: 0 for f in flows}
    sent = {f: 0 for f in flows}
    with nmcompat.open(port_name) as port:
        emit({"ready": port_name})
        k = n = 0
        while not stop.is_set():
            if k == n:                          # a new batch
                for i in range(BATCH):
                    f = rng.choice(flows)
                    lens[i] = random_length(rng)
                    write_frame(rows[i], dst, src, f, next_seq[f], int(lens[i]))
                    row_flow[i], next_seq[f] = f, next_seq[f] + 1
                k, n = 0, BATCH
            q = port.send(rows[k:n], lens[k:n])
            for i in range(k, k + q):
                sent[row_flow[i]] += 1
            k += q
            if k < n:
                port.poll(nmcompat.POLLOUT, 100)    # a SIGTERM ends the wait at its timeout
        deadline = time.monotonic() + 30     # the receiver takes what is queued
        port.txsync()
        while any(r.tx_pending() for r in port.tx_rings) and time.monotonic() < deadline:
            port.poll(nmcompat.POLLOUT, 100)
        emit({"role": "send", "port": port_name, "sent": sent, "stats": stats_of(port),
              "drained": not any(r.tx_pending() for r in port.tx_rings)})
    return 0


# -- receiver ------------------------------------------------------------------------

class Flow:
    __slots__ = ("received", "gaps", "reordered", "corrupt", "next")

    def __init__(self) -> None:
        self.received = self.gaps = self.reordered = self.corrupt = self.next = 0


def check_frame(row: np.ndarray, length: int, flows: dict) -> str:
    """'' for a good frame of ours (counted in its flow), else what it is."""
    if length == 0:
        return "empty"          # a VALE sender's unused leased slot, padded (netmap's rule)
    if length < FRAME.size or length > row.shape[0]:
        return "foreign"
    _, _, etype, magic, flow, seq, declared = FRAME.unpack_from(row, 0)
    if etype != ETH_TYPE or magic != MAGIC or flow not in flows:
        return "foreign"
    fl = flows[flow]
    off = payload_offset(flow, seq) if seq < 1 << 40 else 0
    if declared != length or not np.array_equal(row[FRAME.size:length],
                                                PATTERN[off:off + length - FRAME.size]):
        fl.corrupt += 1
        return "corrupt"
    if seq < fl.next:
        fl.reordered += 1
        return "reordered"
    fl.gaps += seq - fl.next
    fl.next = seq + 1
    fl.received += 1
    return ""


def describe(row: np.ndarray, length: int) -> str:
    """A foreign frame: its length, first bytes, and where our header or
    payload pattern shows up in it."""
    head = bytes(row[:min(length, 48)]).hex()
    where = bytes(row[:min(length, row.shape[0])]).find(MAGIC)
    return f"len={length} head={head} magic_at={where}"


def receiver(port_name: str, flow_ids: list, own_mac: bytes) -> int:
    flows = {f: Flow() for f in flow_ids}
    expect: dict = {}
    got_expect = threading.Event()

    def read_expect() -> None:
        for line in sys.stdin:
            msg = json.loads(line)
            if "expect" in msg:
                expect.update({int(k): v for k, v in msg["expect"].items()})
                got_expect.set()
                return

    threading.Thread(target=read_expect, daemon=True).start()
    out = np.zeros((64, MAX_LEN + 216), dtype=np.uint8)
    lens = np.zeros(64, dtype=np.uint32)
    foreign, empty, samples = 0, 0, []
    with nmcompat.open(port_name) as port:
        if own_mac:
            hello = np.zeros((1, 60), dtype=np.uint8)
            hello[0, :14] = np.frombuffer(BCAST + own_mac + b"\x88\xb6", np.uint8)
            port.send(hello)
        emit({"ready": port_name})
        last_progress = time.monotonic()
        while True:
            port.poll(nmcompat.POLLIN, 100)
            data, got = port.recv(64, out=out, lengths=lens)
            for i in range(len(got)):
                kind = check_frame(data[i], int(got[i]), flows)
                empty += kind == "empty"
                if kind == "foreign":
                    foreign += 1
                    if len(samples) < 8:
                        samples.append(describe(data[i], int(got[i]))
                                       + f" after={sum(f.received for f in flows.values())}"
                                       + f" batch={i}/{len(got)}")
            if len(got):
                last_progress = time.monotonic()
            if got_expect.is_set():
                if all(flows[f].next >= expect.get(f, 0) for f in flows):
                    break
                if time.monotonic() - last_progress > IDLE_S:
                    break
        result = {f: {"received": fl.received, "gaps": fl.gaps, "reordered": fl.reordered,
                      "corrupt": fl.corrupt,
                      "missing_at_end": max(0, expect.get(f, 0) - fl.next)}
                  for f, fl in flows.items()}
        emit({"role": "recv", "port": port_name, "flows": result, "foreign": foreign, "empty": empty,
              "foreign_samples": samples,
              "stats": stats_of(port)})
    return 0


def main(argv: list) -> int:
    role, port = argv[0], argv[1]
    if role == "send":
        flows = [int(f) for f in argv[3].split(",")]
        dst, src = (mac(argv[4]), mac(argv[5])) if len(argv) > 5 else (BCAST, b"\x02" + bytes(5))
        return sender(port, int(argv[2]), flows, dst, src)
    flows = [int(f) for f in argv[2].split(",")]
    return receiver(port, flows, mac(argv[3]) if len(argv) > 3 else b"")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
