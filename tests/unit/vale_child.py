"""Child processes for the VALE tests (run as a script, never imported by pytest).

    vale_child.py agent <portspec> <json options>
        Open one port and serve JSON commands, one per line on stdin, each
        answered by one JSON line on stdout (see Agent in vale_helpers.py).
    vale_child.py send <portspec> <id> <dst> <count> <batch> <minlen> <maxlen> <seed>
        Numbered frames in the layout of tests/engine/vale_traffic.c, built
        with numpy and queued with Port.send(); count 0 sends forever.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

import nmcompat
from nmcompat._ring import NS_INDIRECT, NS_MOREFRAG

HDR = 28


def _emit(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# agent


def _queue_chain(ring, head: int, frags, flags_extra: int = 0) -> int:
    """Write fragments (bytes) at head as one chain; returns the new head."""
    for k, frag in enumerate(frags):
        s = ring.slots[head]
        ring.buf(int(s["buf_idx"]))[:len(frag)] = frag
        s["len"] = len(frag)
        s["flags"] = (NS_MOREFRAG if k + 1 < len(frags) else 0) | flags_extra
        head = ring.next(head)
    return head


def _split(data: bytes, size: int):
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


class AgentPort:
    def __init__(self, spec: str, options: dict) -> None:
        self.port = nmcompat.open(spec, **options)
        self.keep = []

    def op_info(self, _):
        i = self.port.info
        return {"tx_rings": i.tx_rings, "rx_rings": i.rx_rings, "tx_slots": i.tx_slots,
                "rx_slots": i.rx_slots, "mem_id": i.mem_id, "region": i.region,
                "buf_size": i.buf_size, "bound_tx": [r.ringid for r in self.port.tx_rings],
                "bound_rx": [r.ringid for r in self.port.rx_rings], "pid": os.getpid()}

    def op_tx(self, cmd):
        """frames (hex) into TX ring `ring` (index into the bound rings), or
        with inject() when ring is None; then txsync unless sync is false."""
        frames = [bytes.fromhex(h) for h in cmd["frames"]]
        ring_no = cmd.get("ring")
        queued = 0
        if ring_no is None:
            for f in frames:
                if self.port.inject(f) == 0:
                    break
                queued += 1
        else:
            ring = next(r for r in self.port.tx_rings if r.ringid == ring_no)
            head = ring.head
            for f in frames:
                frags = _split(f, ring.nr_buf_size)
                if len(frags) > (ring.tail - head) % ring.num_slots:
                    break
                head = _queue_chain(ring, head, frags)
                queued += 1
            ring.head = ring.cur = head
        if cmd.get("sync", True):
            self.port.txsync()
        return {"queued": queued}

    def op_tx_indirect(self, cmd):
        """Packets given as lists of fragments (hex), each fragment sent
        NS_INDIRECT from a numpy array of this process."""
        ring = next(r for r in self.port.tx_rings if r.ringid == cmd.get("ring", self.port.tx_rings[0].ringid))
        head = ring.head
        arrays = []
        for pkt in cmd["packets"]:
            frags = [bytes.fromhex(h) for h in pkt]
            for k, frag in enumerate(frags):
                arr = np.frombuffer(frag, dtype=np.uint8).copy()
                arrays.append(arr)
                s = ring.slots[head]
                s["ptr"] = arr.ctypes.data
                s["len"] = len(frag)
                s["flags"] = NS_INDIRECT | (NS_MOREFRAG if k + 1 < len(frags) else 0)
                # the slot's own buffer must not be what arrives
                ring.buf(int(s["buf_idx"]))[:8] = b"WRONGBUF"
                head = ring.next(head)
        ring.head = ring.cur = head
        self.port.txsync()
        for s in ring.slots:                # what a careful user does afterwards
            s["flags"] = int(s["flags"]) & ~NS_INDIRECT & 0xffff
        del arrays
        return {"queued": len(cmd["packets"])}

    def op_rx(self, cmd):
        mode = cmd.get("mode", "raw")
        if cmd.get("sync", True):
            self.port.rxsync()
        if mode == "raw":
            slots = []
            for ring in self.port.rx_rings:
                j = ring.cur
                while j != ring.tail:
                    s = ring.slots[j]
                    slots.append({"ring": ring.ringid, "slot": j, "len": int(s["len"]),
                                  "flags": int(s["flags"]),
                                  "data": bytes(ring.buf(int(s["buf_idx"]))[:int(s["len"])]).hex()})
                    j = ring.next(j)
                ring.head = ring.cur = j
            return {"slots": slots}
        pkts = []
        if mode == "dispatch":
            def cb(hdr, data):
                pkts.append({"len": hdr.len, "caplen": hdr.caplen, "ring": hdr.ring,
                             "data": bytes(data).hex()})
            self.port.dispatch(cb)
        elif mode == "nextpkt":
            while True:
                item = self.port.nextpkt()
                if item is None:
                    break
                hdr, data = item
                pkts.append({"len": hdr.len, "caplen": hdr.caplen, "ring": hdr.ring,
                             "data": bytes(data).hex()})
        elif mode == "recv":
            data, lens = self.port.recv(max_packets=4096, snaplen=int(cmd.get("snaplen", 16384)), sync=False)
            for row, n in zip(data, lens):
                pkts.append({"len": int(n), "data": bytes(row[:n]).hex()})
        return {"packets": pkts}

    def op_stats(self, _):
        return {k: int(v) for k, v in self.port.stats().items()}

    def op_close(self, _):
        self.port.close()
        return {"closed": True}


def agent(spec: str, options_json: str) -> int:
    try:
        ap = AgentPort(spec, json.loads(options_json))
    except OSError as exc:
        _emit({"error": type(exc).__name__, "errno": exc.errno, "message": str(exc)})
        return 1
    _emit({"ready": True, **ap.op_info(None)})
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            reply = getattr(ap, "op_" + cmd["op"])(cmd)
        except OSError as exc:
            reply = {"error": type(exc).__name__, "errno": exc.errno, "message": str(exc)}
        _emit(reply)
        if cmd["op"] == "close":
            return 0
    return 0


# ---------------------------------------------------------------------------
# python sender


def frames(ids: int, dst: int, seqs: np.ndarray, lens: np.ndarray, width: int) -> np.ndarray:
    """Rows of the vale_traffic.c frame layout (seq * 131 + id * 7 + j pattern)."""
    n = len(seqs)
    out = np.empty((n, width), dtype=np.uint8)
    j = np.arange(width, dtype=np.uint64)
    out[:] = ((seqs.astype(np.uint64)[:, None] * np.uint64(131) + np.uint64(ids * 7) + j[None, :])
              & np.uint64(0xff)).astype(np.uint8)
    out[:, 0:6] = 0xff if dst > 0xff else np.array([2, 0, 0, 0, 0, dst], dtype=np.uint8)
    out[:, 6:12] = np.array([2, 0, 0, 0, 0, ids], dtype=np.uint8)
    out[:, 12], out[:, 13], out[:, 14], out[:, 15] = 0x88, 0xb5, ids, 0x5a
    out[:, 16:24] = seqs.astype("<u8").view(np.uint8).reshape(n, 8)
    out[:, 24:28] = lens.astype("<u4").view(np.uint8).reshape(n, 4)
    return out


def send(spec: str, ident: str, dst: str, count: str, batch: str, minlen: str, maxlen: str,
         seed: str) -> int:
    ident_i, count_i, batch_i = int(ident), int(count), int(batch)
    dst_i = 0x100 if dst == "ff" else int(dst, 0)
    lo, hi = int(minlen), int(maxlen)
    rng = np.random.default_rng(int(seed))
    port = nmcompat.open(spec)
    print(f"ready send id={ident_i} port={spec}", flush=True)
    seq, last = 0, 0.0
    while count_i == 0 or seq < count_i:
        n = batch_i if count_i == 0 else min(batch_i, count_i - seq)
        lens = rng.integers(lo, hi + 1, size=n).astype(np.uint32)
        seqs = np.arange(seq, seq + n, dtype=np.uint64)
        rows = frames(ident_i, dst_i, seqs, lens, hi)
        done = port.send(rows, lens)
        seq += done
        if time.monotonic() - last >= 0.02:
            last = time.monotonic()
            print(f"progress {ident_i} {seq}", flush=True)
    st = port.stats()
    print(f"progress {ident_i} {seq}", flush=True)
    print(f"done sent={seq} tx_pkts={st['tx_pkts']} tx_dropped={st['tx_dropped']}", flush=True)
    port.close()
    return 0


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "agent":
        sys.exit(agent(*sys.argv[2:]))
    if what == "send":
        sys.exit(send(*sys.argv[2:]))
    sys.exit(f"unknown subcommand {what}")
