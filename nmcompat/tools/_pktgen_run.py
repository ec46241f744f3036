"""pkt-gen's threads: one Worker per port drives the engine's loop
(nmc_pktgen_run, csrc/tools/pktgen.c) in slices of SLICE_MS with the GIL released;
between slices it writes what the engine captured (pcap file, -X dump) and
logs what netmap's tool logs from its threads (RTTs, sequence gaps, poll
timeouts).  The main thread only reads the counters the engine stores."""
from __future__ import annotations

import os
import struct
import threading
import time

from nmcompat._ffi import check, ffi, lib, os_error
from nmcompat.tools._dlog import dlog

SLICE_MS = 250
CAP_SIZE = 4 << 20
SNAPLEN = 262144
MODES = {"tx": lib.NMC_PG_TX, "rx": lib.NMC_PG_RX, "ping": lib.NMC_PG_PING,
         "pong": lib.NMC_PG_PONG, "txseq": lib.NMC_PG_TXSEQ, "rxseq": lib.NMC_PG_RXSEQ}
_REC = struct.Struct("=IIIHHIIII")
_TIMEOUT_FUNC = {"tx": "sender_body", "txseq": "txseq_body", "ping": "ping_body", "pong": "pong_body"}


class RateLimit:
    """netmap's RD(lps, ...): at most lps lines per second."""

    def __init__(self, lps: int) -> None:
        self.lps, self.second, self.count = lps, 0, 0

    def __call__(self) -> bool:
        now = int(time.monotonic())
        if now != self.second:
            self.second, self.count = now, 0
        self.count += 1
        return self.count <= self.lps


def dump_payload(data: bytes, ring: int, slot: int, buf_idx: int, flags: int, length: int) -> str:
    """-X: netmap's hex dump of one packet."""
    lines = [f"ring {ring} cur {slot:5d} [buf {buf_idx:6d} flags 0x{flags:04x} len {length:5d}]"]
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        hexs = "".join(f"{b:02x} " for b in chunk).ljust(48)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{i:5d}: {hexs}{text}")
    return "\n".join(lines)


class Worker:
    """One thread of pkt-gen: its port, its engine loop, its counters."""

    def __init__(self, index: int, port, g, frame: bytes, pcap=None, on_done=None) -> None:
        self.index, self.port, self.g = index, port, g
        self.pcap, self.on_done = pcap, on_done
        self.used, self.completed, self.error = True, False, None
        self.affinity = (g.affinity + index) % g.cpus if g.affinity >= 0 else -1
        self._frame = ffi.new("uint8_t[]", max(len(frame), 1))
        ffi.memmove(self._frame, frame, len(frame))
        self._cap = ffi.new("uint8_t[]", CAP_SIZE) if (pcap or g.dump) else ffi.NULL
        self.pg = pg = ffi.new("struct nmc_pktgen *")
        self._configure(pg, g, len(frame))
        check(lib.nmc_pktgen_init(pg, port._live()), "start pkt-gen on", port.name,
              "the frame, fragment or burst settings do not fit this port")
        self._rtt = dict(count=0, sum=0, min=None, last=time.monotonic())
        self._limits = {k: RateLimit(2) for k in range(1, 5)}
        self._seen = dict(timeouts=0, waits_first=0, cannot_send=0)
        self.thread = threading.Thread(target=self._run, name=f"pkt-gen-{index}", daemon=True)

    def _configure(self, pg, g, frame_len: int) -> None:
        pg.mode, pg.options, pg.af, pg.burst = MODES[g.function], g.options, g.af, g.burst
        pg.npackets = g.npackets // g.nthreads
        pg.rate, pg.period_ns = g.tx_rate, g.period_ns
        pg.frags, pg.frag_size = g.frags, g.frag_size
        pg.pkt_size, pg.pkt_min_size = frame_len, g.pkt_min_size
        pg.forever, pg.vary, pg.raw_frame = int(g.forever), int(g.vary), int(g.raw_frame)
        pg.frame = self._frame
        for end, r in ((pg.src, g.src_ip), (pg.dst, g.dst_ip)):
            ffi.memmove(end.lo, r.lo, len(r.lo))
            ffi.memmove(end.hi, r.hi, len(r.hi))
            end.port_lo, end.port_hi, end.group = r.port_lo, r.port_hi, r.group
        pg.seed = (int(time.time()) * 0x100000001 + self.index) & (2**64 - 1)
        if self._cap != ffi.NULL:
            pg.cap, pg.cap_size, pg.snaplen = self._cap, CAP_SIZE, SNAPLEN
            raw_pcap = not g.dump and self.pcap is not None and self.pcap.fmt == "pcap"
            pg.cap_mode = lib.NMC_PG_CAP_PCAP if raw_pcap else lib.NMC_PG_CAP_FULL

    # -- the thread ------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            if self.affinity >= 0:
                os.sched_setaffinity(threading.get_native_id(), {self.affinity})
            while True:
                rc = lib.nmc_pktgen_run(self.pg, SLICE_MS)
                self._after_slice()
                if rc < 0:
                    raise os_error(-rc, "run pkt-gen on", self.port.name)
                if rc == 1:
                    break
            self._finish()
            self.completed = True
        except Exception as exc:  # reported by the main thread
            self.error = exc
            dlog(f"thread {self.index}: {exc}")
        finally:
            lib.nmc_pktgen_fini(self.pg)
            self.used = False
            if self.on_done:
                self.on_done()

    def _after_slice(self) -> None:
        pg = self.pg
        if pg.cap_count:
            self._write_capture()
        if pg.nevents or pg.lost_events:
            self._seq_events()
        self._warnings()
        if self.g.function == "ping" and time.monotonic() - self._rtt["last"] >= 1:
            self._ping_report()

    def _warnings(self) -> None:
        pg, seen, fn = self.pg, self._seen, self.g.function
        if pg.timeouts > seen["timeouts"] and fn in _TIMEOUT_FUNC:
            dlog(f"poll error on queue {self.index}: timeout", func=_TIMEOUT_FUNC[fn])
        if pg.waits_first > seen["waits_first"]:
            dlog("waiting for initial packets, poll returns 0 0",
                 func="receiver_body" if fn == "rx" else "rxseq_body")
        if pg.cannot_send > seen["cannot_send"]:
            dlog("-- ouch, cannot send", func="ping_body")
        seen.update(timeouts=pg.timeouts, waits_first=pg.waits_first, cannot_send=pg.cannot_send)

    # -- capture ----------------------------------------------------------
    def _write_capture(self) -> None:
        pg = self.pg
        buf = ffi.buffer(self._cap, pg.cap_used)
        if pg.cap_mode == lib.NMC_PG_CAP_PCAP:
            with self.pcap.lock:
                self.pcap.file.write(buf)
            return
        off, records = 0, []
        for _ in range(pg.cap_count):
            ring, slot, idx, flags, nfrags, sec, usec, caplen, wirelen = _REC.unpack_from(buf, off)
            data = buf[off + _REC.size:off + _REC.size + caplen]
            records.append((sec, usec, wirelen, data))
            if self.g.dump:
                print(dump_payload(data, ring, slot, idx, flags, wirelen), flush=True)
            off += (_REC.size + caplen + 7) & ~7
        if self.pcap:
            with self.pcap.lock:
                for sec, usec, wirelen, data in records:
                    self.pcap.writer.write(sec, usec, data, wirelen)

    # -- rxseq ------------------------------------------------------------
    def _seq_events(self) -> None:
        pg = self.pg
        texts = {lib.NMC_PG_EV_GAP: "Sequence GAP: exp {e} found {f}",
                 lib.NMC_PG_EV_ORDER: "Sequence OUT OF ORDER: exp {e} found {f}",
                 lib.NMC_PG_EV_FRAGS: "Received packets with {f} frags, expected {e}",
                 lib.NMC_PG_EV_SHORT: "rxseq_body: packet too small (len={e})"}
        for k in range(pg.nevents):
            ev = pg.ev[k]
            if self._limits[ev.kind]():
                dlog(texts[ev.kind].format(e=ev.expected, f=ev.found), func="rxseq_body")

    # -- ping -------------------------------------------------------------
    def _ping_report(self) -> None:
        pg, acc = self.pg, self._rtt
        count = pg.rtt_count
        av = pg.rtt_sum // count if count else 0
        dlog(f"count {count} RTT: min {pg.rtt_min if count else 0} av {av} ns", func="ping_body")
        used = [k for k in range(64) if pg.rtt_hist[k]]
        if used:
            cells = "".join(f" {pg.rtt_hist[k]:5d}" for k in range(used[0], used[-1] + 1))
            dlog(f"k: {1 << used[0]} .. {1 << used[-1]}\n\t{cells}", func="ping_body")
        self._take_rtts()
        acc["last"] = time.monotonic()

    def _take_rtts(self) -> None:
        pg, acc = self.pg, self._rtt
        if pg.rtt_count:
            acc["count"] += pg.rtt_count
            acc["sum"] += pg.rtt_sum
            acc["min"] = pg.rtt_min if acc["min"] is None else min(acc["min"], pg.rtt_min)
        pg.rtt_count = pg.rtt_sum = pg.rtt_min = 0
        ffi.memmove(pg.rtt_hist, bytes(8 * 64), 8 * 64)

    def _finish(self) -> None:
        pg = self.pg
        if self.g.function == "ping":
            self._take_rtts()
            acc = self._rtt
            if pg.pkts:
                dlog(f"RTT over {pg.pkts} packets: min {acc['min'] or 0} "
                     f"av {acc['sum'] // acc['count'] if acc['count'] else 0} ns", func="ping_body")
        if pg.drain_stuck:
            dlog(f"thread {self.index}: packets left in a TX ring nobody empties", func="sender_body")

    # -- what the main thread reads ------------------------------------------
    def counters(self):
        pg = self.pg
        return int(pg.pkts), int(pg.bytes), int(pg.events)

    def take_min_space(self) -> int:
        value = int(self.pg.min_space)
        self.pg.min_space = 99999
        return value

    def cancel(self) -> None:
        self.pg.stop = 1

    def times(self):
        return int(self.pg.tic_ns), int(self.pg.toc_ns)
