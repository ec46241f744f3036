"""pkt-gen after its options: open the ports, print netmap's start-up lines,
start one Worker per thread, print the periodic line every -T ms from the
counters the engine keeps, and the final summary."""
from __future__ import annotations

import math
import sys
import threading
import time

import nmcompat
from nmcompat.tools import _pcap, _pktgen_frames as frames
from nmcompat.tools._dlog import dlog, norm
from nmcompat.tools._pktgen_run import SNAPLEN, Worker

OPT_NAMES = ((1, " prefetch"), (2, " access"), (8, " memcpy"), (32, " indirect"), (4, " copy"),
             (256, " rubbish "))


class PcapOut:
    """The --pcap file, shared by the threads: fmt "pcap" or "pcapng"."""

    def __init__(self, path: str, fmt: str = "pcap") -> None:
        self.file = open(path, "wb")
        self.fmt = fmt
        self.lock = threading.Lock()
        self.writer = _pcap.Writer(self.file, fmt, SNAPLEN)

    def close(self) -> None:
        self.file.close()


def open_ports(g, conf: dict):
    """Thread 0's port, then one per other thread (ring k: "<name>-k")."""
    names = [g.ifname] if g.nthreads <= 1 else [ring_name(g.ifname, k) for k in range(g.nthreads)]
    ports = [nmcompat.open(names[0], **conf)]
    try:
        info = ports[0].info
        tx = g.role == "sender"
        g.devqueues = (info.tx_rings + info.host_tx_rings) if tx else (info.rx_rings + info.host_rx_rings)
        if g.nthreads < 1 or g.nthreads > g.devqueues:
            dlog(f"bad nthreads {g.nthreads}, have {g.devqueues} queues", func="main")
        for name in names[1:]:
            ports.append(nmcompat.open(name, **conf))
    except BaseException:
        for p in ports:
            p.close()
        raise
    return ports


def ring_name(name: str, k: int) -> str:
    """The port name bound to ring pair k only (netmap's -k suffix)."""
    colon = name.index(":") + 1
    end = colon
    while end < len(name) and name[end] not in "-*^/@":
        end += 1
    rest = end
    if rest < len(name) and name[rest] in "-*^":
        rest += 1
        while rest < len(name) and name[rest].isdigit():
            rest += 1
    return f"{name[:end]}-{k}{name[rest:]}"


def check_mtu(g) -> None:
    """A sender's frame must fit the interface's MTU (pipes, VALE: 65536)."""
    if g.role != "sender":
        return
    mtu = 65536
    if g.spec.pipe is None and g.spec.vale_switch is None and g.ifname.startswith("netmap:"):
        text = read_sysfs(g.spec.name, "mtu")
        if text is None:
            dlog(f"ioctl(SIOCGIFMTU) failed: no interface {g.spec.name}", func="get_if_mtu")
            return
        mtu = int(text)
    if g.pkt_size > mtu:
        dlog(f"pkt_size ({g.pkt_size}) must be <= mtu ({mtu})", func="main")
        raise SystemExit(255)


def read_sysfs(ifname: str, what: str):
    try:
        with open(f"/sys/class/net/{ifname}/{what}") as f:
            return f.read().strip()
    except OSError:
        return None


def fragments(g, buf_size: int) -> None:
    """-F/-M: slots per packet and bytes per slot (frames larger than a
    buffer always take several slots)."""
    if g.function != "tx":
        g.frags, g.frag_size = (g.frags if g.function == "txseq" else 1), buf_size
        return
    limit = min(g.frag_size, buf_size) if g.frag_size > 0 else buf_size
    per = math.ceil(g.pkt_size / g.frags)
    if per > limit:
        g.frags, per = math.ceil(g.pkt_size / limit), limit
    g.frag_size = per
    dlog(f"frags {g.frags} frag_size {g.frag_size}", func="sender_body")


def startup_lines(g, ports) -> None:
    what = {"sender": "Sending on", "receiver": "Receiving from"}.get(g.role, "Working on")
    print(f"{what} {g.ifname}: {g.devqueues} queues, {g.nthreads} threads and {g.cpus} cpus.")
    if g.role == "sender":
        print(f"{g.src_name} -> {g.dst_name} ({frames.mac_str(g.src_mac)} -> {frames.mac_str(g.dst_mac)})")
    sys.stdout.flush()
    if g.verbose:
        for p in ports:
            i = p.info
            dlog(f"{p.name}: backend {i.backend}" + (f" ({i.why})" if i.why else ""), func="main")
            dlog(f"nifp at offset {i.nr_offset} ntxqs {i.tx_rings} nrxqs {i.rx_rings} memid {i.mem_id}",
                 func="main")
            for kind, rings, bound in (("TX", p.tx_rings, i.bound_tx), ("RX", p.rx_rings, i.bound_rx)):
                for k, r in zip(bound, rings):
                    dlog(f"   {kind}{k} slots {r.num_slots}", func="main")
    if g.options:
        names = "".join(text for bit, text in OPT_NAMES if g.options & bit)
        dlog(f"--- SPECIAL OPTIONS:{names}", func="main")


def set_rate(g) -> None:
    g.period_ns = 0
    if g.tx_rate > 0:
        g.burst = max(1, min(g.burst, g.tx_rate // 300))
        g.period_ns = 1_000_000_000 * g.burst // g.tx_rate
    if g.role == "sender":
        sec, nsec = divmod(g.period_ns, 1_000_000_000)
        dlog(f"Sending {g.burst} packets every  {sec}.{nsec:09d} s", func="main")


class Session:
    """The threads and the reporting loop."""

    def __init__(self, g, ports, frame: bytes, pcap) -> None:
        self.g, self.ports = g, ports
        self._left = len(ports)
        self._lock = threading.Lock()
        self.all_done = threading.Event()
        self.workers = [Worker(k, p, g, frame, pcap, self._one_done) for k, p in enumerate(ports)]
        self.win = [0] * 15
        self.win_idx = 0

    def _one_done(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self.all_done.set()

    def start_threads(self) -> None:
        dlog(f"Wait {self.g.wait_link} secs for phy reset", func="start_threads")
        time.sleep(self.g.wait_link)
        dlog("Ready...", func="start_threads")
        for w in self.workers:
            w.start()

    def cancel(self) -> None:
        dlog(f"received control-C on thread {threading.get_ident():#x}", func="sigint_h")
        for w in self.workers:
            w.cancel()

    def main_thread(self) -> None:
        g = self.g
        prev, prev_t = (0, 0, 0), time.time()
        while True:
            try:
                done = self.all_done.wait(g.report_interval / 1000)
            except KeyboardInterrupt:
                self.cancel()
                continue
            now = time.time()
            usec = max(int((now - prev_t) * 1e6), 1)
            if usec < 10000 and not done:       # too short to mean anything
                continue
            cur = tuple(map(sum, zip(*(w.counters() for w in self.workers))))
            min_space = sum(w.take_min_space() for w in self.workers)
            dlog(self.line(cur, prev, usec, min_space), func="main_thread")
            prev, prev_t = cur, now
            if done:
                break

    def line(self, cur, prev, usec: int, min_space: int) -> str:
        """netmap's periodic line."""
        g, raw = self.g, not self.g.normalize
        pkts, nbytes, events = (c - p for c, p in zip(cur, prev))
        pps = (pkts * 1_000_000 + usec // 2) // usec
        avg_batch = pkts / events if events > 0 else 0
        stats = ""
        if g.options & 2048:
            self.win[self.win_idx] = pps
            self.win_idx = (self.win_idx + 1) % len(self.win)
            samples = [v for v in self.win if v]
            avg = sum(self.win) / len(samples) if samples else 0.0
            dev = math.sqrt(sum((v - avg) ** 2 for v in samples) / len(samples)) if samples else 0.0
            stats = f"[avg/std {norm(avg, raw)}/{norm(dev, raw)}pps] "
        bps = 1_000_000 * (nbytes * 8 + pkts * g.framing) / usec
        return (f"{norm(pps, raw)}pps {stats}({norm(pkts, raw)}pkts {norm(bps, raw)}bps in {usec} usec) "
                f"{avg_batch:.2f} avg_batch {min_space} min_space")

    def final(self) -> int:
        """Join, then netmap's summary (senders and receivers)."""
        g = self.g
        for w in self.workers:
            w.thread.join()
        failed = [w for w in self.workers if not w.completed]
        for w in failed:
            dlog(f"ouch, thread {w.index} exited with error", func="main_thread")
        pkts, nbytes, events = map(sum, zip(*(w.counters() for w in self.workers)))
        tic = max(w.times()[0] for w in self.workers) // 1000
        toc = max(w.times()[1] for w in self.workers) // 1000
        delta = max(toc - tic, 0) / 1e6
        if g.role in ("sender", "receiver"):
            tx_output(g, pkts, nbytes, events, delta, "Sent" if g.role == "sender" else "Received")
        return 1 if failed else 0


def tx_output(g, pkts: int, nbytes: int, events: int, delta: float, msg: str) -> None:
    raw = not g.normalize
    if pkts == 0:
        print(f"{msg} nothing.", flush=True)
        return
    size = nbytes // pkts
    print(f"{msg} {pkts} packets {nbytes} bytes {events} events {size} bytes each in {delta:.2f} seconds.")
    delta = delta or 1e-6
    pps, bw = pkts / delta, 8.0 * nbytes / delta
    raw_bw = (8.0 * nbytes + pkts * g.framing) / delta
    avg_batch = pkts / events if events else float("inf")
    print(f"Speed: {norm(pps, raw)}pps Bandwidth: {norm(bw, raw)}bps (raw {norm(raw_bw, raw)}bps). "
          f"Average batch: {avg_batch:.2f} pkts", flush=True)
