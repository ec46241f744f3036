"""nmcompat replay (nmc-replay): netmap's nmreplay, a pcap file sent through a port.

    nmcompat replay -f file.pcap -i port [-B bandwidth] [-R pps] [-D delay]
                    [-L loss] [-b batch] [-w wait] [-v]

-B  ``bps`` or ``constant,bps``: back to back at that bit rate, counting the
    frame bytes sent; ``ether,bps``: counting 24 more bytes per frame
    (preamble, inter-frame gap, CRC); ``real[,speedup]``: at the recorded
    timing, speedup times faster (default: real,1).  bps takes k/K, m/M, g/G
    (10^3, 10^6, 10^9).
-R  (nmcompat) at a constant packet rate instead.
-D  extra delay: ``dt`` or ``constant,dt``, ``uniform,dmin,dmax``,
    ``exp,dmin,davg``; times take s, m, u, n suffixes (default seconds).
    Packets are never reordered: a frame leaves no earlier than the one before.
-L  loss: ``x`` or ``plr,x`` (packet loss rate), ``ber,x`` (bit error rate).
-b  at most this many frames per txsync when several are due (default 64).
-w  seconds to wait before sending (default 2).

The whole file is loaded and the schedule computed first (as nmreplay
does); the frames then go out paced in C (nmc_replay_send, one call per
batch): each not before its time, sleeping for gaps and spinning the last
60 us.  Not supported: -C (CPU placement; one thread sends here) and
nmreplay's separate statistics thread (the lines come from the sending
loop, between batches).  Frames are sent as captured (caplen bytes).
"""
from __future__ import annotations

import errno
import getopt
import select
import signal
import sys
import time

import numpy as np

import nmcompat
from nmcompat._ffi import ffi, lib, os_error
from nmcompat.tools import _pcap
from nmcompat.tools._cli import Usage, run
from nmcompat.tools._dlog import dlog, norm, port_name

ETHER_OVERHEAD = 24         # preamble 8 + inter-frame gap 12 + CRC 4 (bytes)
SLICE_S = 0.5               # at most this much schedule per C call
MAX_CHUNK = 1024
_UNITS = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9}
_TIMES = {"s": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
USAGE = """usage: replay -f pcap-file -i port [-B bps|constant,bps|ether,bps|real[,speedup]]
              [-R pps] [-D dt|constant,dt|uniform,dmin,dmax|exp,dmin,davg]
              [-L x|plr,x|ber,x] [-b batch] [-w wait-link] [-v]
"""


def _number(text: str, units: dict) -> float:
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def load(path):
    """(frames, ts seconds, wire lengths) of a pcap file."""
    frames, ts, wire = [], [], []
    for t, data, wirelen in _pcap.read(path):
        frames.append(data)
        ts.append(t)
        wire.append(wirelen)
    return frames, np.asarray(ts, dtype=np.float64), np.asarray(wire, dtype=np.int64)


def schedule(lens: np.ndarray, ts: np.ndarray, bandwidth: str = "real", pps: float = 0.0) -> np.ndarray:
    """Send times (seconds from the start) of frames of lens bytes."""
    if pps:
        return np.arange(len(lens), dtype=np.float64) / pps
    kind, args = _kind(bandwidth, ("constant", "ether", "real"), "constant")
    if kind == "real":
        speedup = float(args[0]) if args else 1.0
        rel = np.maximum.accumulate(ts - ts[0]) if len(ts) else ts
        return rel / speedup
    bits = 8.0 * (lens + (ETHER_OVERHEAD if kind == "ether" else 0))
    bps = _number(args[0], _UNITS)
    return np.concatenate(([0.0], np.cumsum(bits[:-1]) / bps)) if len(lens) else bits


def add_delay(t: np.ndarray, spec: str, rng) -> np.ndarray:
    """-D: t plus the delay, never earlier than the frame before."""
    kind, args = _kind(spec, ("constant", "uniform", "exp"), "constant")
    vals = [_number(v, _TIMES) for v in args]
    if kind == "constant":
        d = np.full(len(t), vals[0])
    elif kind == "uniform":
        d = rng.uniform(vals[0], vals[1], len(t))
    else:
        d = vals[0] + rng.exponential(max(vals[1] - vals[0], 0.0), len(t))
    return np.maximum.accumulate(t + d)


def keep_mask(lens: np.ndarray, spec: str, rng) -> np.ndarray:
    """-L: True for frames that survive."""
    kind, args = _kind(spec, ("plr", "ber"), "plr")
    x = float(args[0])
    p = x if kind == "plr" else 1.0 - (1.0 - x) ** (8.0 * lens)
    return rng.random(len(lens)) >= p


class Pacer:
    """Sends frames on a port at times relative to start()."""

    def __init__(self, port, burst: int = 64) -> None:
        self.port, self.burst = port, burst
        self.res = ffi.new("struct nmc_replay_result *")
        self.t0 = 0

    def start(self, lead_s: float = 0.001) -> None:
        self.t0 = time.monotonic_ns() + int(lead_s * 1e9)

    def send(self, frames, rel_s: np.ndarray) -> int:
        """frames[i] at t0 + rel_s[i]; returns how many went (fewer: a signal)."""
        flat = b"".join(frames)
        lens = np.fromiter((len(f) for f in frames), dtype=np.uint32, count=len(frames))
        offs = np.zeros(len(frames), dtype=np.uint64)
        np.cumsum(lens[:-1], out=offs[1:])
        when = (self.t0 + np.round(rel_s * 1e9)).astype(np.uint64)
        rc = lib.nmc_replay_send(self.port._live(), ffi.from_buffer("uint8_t[]", flat or b"\0"),
                                 ffi.from_buffer("uint64_t[]", offs), ffi.from_buffer("uint32_t[]", lens),
                                 ffi.from_buffer("uint64_t[]", when), len(frames), self.burst, self.res)
        if rc < 0 and rc != -errno.EINTR:     # nothing sent yet; the caller checks its flag
            raise os_error(-rc, "send to", self.port.name)
        return max(rc, 0)

    def drain(self, timeout_s: float = 1.0) -> None:
        """txsync until the TX rings are empty (a reader took everything)."""
        end = time.monotonic() + timeout_s
        while any(r.tx_pending() for r in self.port.tx_rings) and time.monotonic() < end:
            self.port.poll(select.POLLOUT, 10)


def replay(port, frames, rel_s: np.ndarray, burst: int = 64, stop=lambda: False, every=None) -> dict:
    """Send frames at rel_s (seconds from now, non-decreasing); every(p) is
    called about once a second.  Returns sent, bytes, elapsed, max_late_ns."""
    p, i, n, last = Pacer(port, burst), 0, len(frames), time.monotonic()
    p.start()
    while i < n and not stop():
        now_rel = (time.monotonic_ns() - p.t0) / 1e9
        j = int(np.searchsorted(rel_s, now_rel + SLICE_S, side="right"))
        j = min(max(j, i + 1), i + MAX_CHUNK)
        i += p.send(frames[i:j], rel_s[i:j])
        if every and time.monotonic() - last >= 1.0:
            every(p)
            last = time.monotonic()
    elapsed = (time.monotonic_ns() - p.t0) / 1e9
    p.drain()
    return dict(sent=int(p.res.sent), bytes=int(p.res.bytes), errors=int(p.res.errors),
                elapsed=elapsed, max_late_ns=int(p.res.max_late_ns))


def _parse(argv) -> dict:
    """The command line as a dict; Usage for anything it cannot run."""
    try:
        opts, args = getopt.getopt(argv, "hf:i:B:R:D:L:b:w:vC:", ["help"])
    except getopt.GetoptError as exc:
        raise Usage(str(exc)) from None
    if args:
        raise Usage(f"unexpected argument {args[0]}")
    cfg = dict(file=None, port=None, B="real", R=0.0, D=None, L=None, b=64, w=2.0, v=0, help=False)
    for opt, val in opts:
        if opt in ("-h", "--help"):
            cfg["help"] = True
        elif opt == "-C":
            dlog(f"-C {val} ignored: one thread sends (no CPU placement)", func="main")
        elif opt == "-v":
            cfg["v"] += 1
        else:
            cfg[{"-f": "file", "-i": "port"}.get(opt, opt[1])] = val
    if not cfg["help"]:
        _check_values(cfg)
    return cfg


def _value(opt: str, text: str, convert, low: float, what: str, high: float = float("inf")):
    """convert(text), which must lie in [low, high]; Usage naming opt if not."""
    try:
        value = convert(text)
    except (ValueError, IndexError):
        value = None
    if value is None or not low <= value <= high or value != value:
        raise Usage(f"{opt} {text!r}: {what}")
    return value


def _check_values(cfg: dict) -> None:
    """Every option's value, before the file is read (netmap's nmreplay
    would divide by zero, or schedule frames in the past)."""
    if not cfg["file"] or not cfg["port"]:
        raise Usage("need -f pcap-file and -i port")
    cfg["b"] = _value("-b", str(cfg["b"]), int, 1, f"takes a batch size in [1, {MAX_CHUNK}]",
                      MAX_CHUNK)
    cfg["w"] = _value("-w", str(cfg["w"]), float, 0, "takes seconds >= 0")
    if cfg["R"]:
        cfg["R"] = _value("-R", cfg["R"], lambda t: _number(t, _UNITS), 1e-9,
                          "takes a rate > 0 packets per second (k, M, G suffixes)")
    kind, args = _kind(cfg["B"], ("constant", "ether", "real"), "constant")
    if kind == "real":
        if args:
            _value("-B", cfg["B"], lambda _: float(args[0]), 1e-9, "real,speedup takes a speedup > 0")
    else:
        _value("-B", cfg["B"], lambda _: _number(args[0], _UNITS), 1,
               f"{kind},bps takes a bit rate >= 1 bps (k, M, G suffixes)")
    if cfg["D"]:
        kind, args = _kind(cfg["D"], ("constant", "uniform", "exp"), "constant")
        need = 1 if kind == "constant" else 2
        what = f"{kind} takes {need} time(s) >= 0 (s, m, u, n suffixes)"
        if len(args) < need:
            raise Usage(f"-D {cfg['D']!r}: {what}")
        for arg in args[:need]:
            _value("-D", cfg["D"], lambda _: _number(arg, _TIMES), 0, what)
    if cfg["L"]:
        _value("-L", cfg["L"], lambda t: float(_kind(t, ("plr", "ber"), "plr")[1][0]), 0.0,
               "takes a probability in [0, 1]", 1)


def _kind(spec: str, kinds, default: str):
    """('kind', [args]) of "kind,a,b" or of plain "a,b" (the default kind)."""
    parts = spec.split(",")
    return (parts[0], parts[1:]) if parts[0] in kinds else (default, parts)


def _plan(cfg: dict):
    frames, ts, _ = load(cfg["file"])
    lens = np.fromiter((len(f) for f in frames), dtype=np.float64, count=len(frames))
    rel, rng = schedule(lens, ts, cfg["B"], cfg["R"]), np.random.default_rng()
    if cfg["L"]:
        keep = keep_mask(lens, cfg["L"], rng)
        frames, rel = [f for f, k in zip(frames, keep) if k], rel[keep]
    if cfg["D"]:
        rel = add_delay(rel, cfg["D"], rng)
    dlog(f"loaded {len(frames)} packets, {int(lens.sum())} bytes from {cfg['file']}, "
         f"{rel[-1] if len(rel) else 0:.6f} s of schedule", func="main")
    return frames, rel


def main(argv=None) -> int:
    return run("replay", _main, argv)


def _main(argv) -> int:
    cfg = _parse(argv)
    if cfg["help"]:
        print(USAGE, end="")
        return 0
    frames, rel = _plan(cfg)
    port = nmcompat.open(port_name(cfg["port"]))
    stop, prev = [], [0, time.monotonic()]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(1))

    def every(p):
        now, sent = time.monotonic(), int(p.res.sent)
        dlog(f"{norm((sent - prev[0]) / (now - prev[1]))}pps ({sent} sent)", func="main")
        prev[:] = [sent, now]

    with port:
        dlog(f"Wait {cfg['w']:g} secs for link to come up...", func="main")
        time.sleep(cfg["w"])
        r = replay(port, frames, rel, cfg["b"], lambda: bool(stop), every)
    dt = max(r["elapsed"], 1e-9)
    print(f"Sent {r['sent']} packets {r['bytes']} bytes in {dt:.6f} seconds.")
    print(f"Speed: {norm(r['sent'] / dt)}pps Bandwidth: {norm(8 * r['bytes'] / dt)}bps "
          f"(max lateness {r['max_late_ns'] / 1000:.1f} us)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
