"""nmcompat bridge (nmc-bridge): netmap's bridge between two ports.

    nmcompat bridge [-v] [-i ifa] [-i ifb] [-b burst] [-w wait_time] [-c] [-L]
    nmcompat bridge [-v] [-w wait_time] [-c] [-L] [ifa [ifb [burst]]]

Packets move both ways between the two ports, whole (NS_MOREFRAG chains
included).  When the ports share a region (two pipes of one parent, two NIC
ports of one process, a VALE port and its pipes) the RX and TX slots swap
buffers (NS_BUF_CHANGED on both) and no payload is copied; otherwise, or
with -c, the payload is copied.  Burst: 1..8192 slots per direction and
round (default 1024).  -w: seconds to wait before starting (default 4,
at most 100).  -L with one port (or the same one twice) loops its traffic
back onto it.  -v prints a line per round (netmap's "poll ok" line).

With a single port (or the same one twice) and no -L, the NIC is bridged
with its host stack, as netmap does: endpoint 0 is ``ifa^`` (the host
rings), endpoint 1 ``ifa`` (the NIC rings), so a host keeps working with
the bridge in the middle.  Frames from the NIC reach the stack with the
checksum they had on the wire: a peer that leaves checksums to the receiver
(a veth with TX checksum offload, the default) sends frames the stack then
drops, as with netmap; switch it off there (``ethtool -K PEER tx off``).  The inner loop (rxsync, the bridge step each way, txsync, wait
on both descriptors) is one C call per batch (nmc_bridge_step).  SIGINT or
SIGTERM stops it; a last line gives the slots moved each way.
"""
from __future__ import annotations

import errno
import getopt
import signal
import sys
import time

import nmcompat
from nmcompat._ffi import ffi, lib, os_error
from nmcompat.tools._cli import Usage, run
from nmcompat.tools._dlog import dlog, port_name

USAGE = """netmap bridge program: forward packets between two network interfaces
    usage(1): bridge [-v] [-i ifa] [-i ifb] [-b burst] [-w wait_time] [-c] [-L]
    usage(2): bridge [-v] [-w wait_time] [-c] [-L] [ifa [ifb [burst]]]

    ifa and ifb are nmcompat port names (netmap:eth0, netmap:x{1, vale0:a).
    ifa is bridged with its host stack (ifa^) when ifb is missing (or equal
    to ifa); -L loops traffic back on ifa instead.  -c copies instead of
    swapping buffers.

    example: nmcompat bridge -w 10 -i netmap:eth3 -i netmap:eth1
"""

POLL_TIMEOUT_MS = 2500


def _queued(port, tx: bool) -> int:
    rings = port.tx_rings if tx else port.rx_rings
    return sum(r.space() for r in rings)


def _rx_cur(port) -> int:
    return port.rx_rings[0].cur if port.rx_rings else 0


class Bridge:
    """Two open ports (or one, looped) and the C loop between them."""

    def __init__(self, ifa: str, ifb: str, burst: int = 1024, copy: bool = False,
                 **open_options) -> None:
        self.burst, self.copy = burst, copy
        self.a = nmcompat.open(ifa, **open_options)
        try:
            self.b = self.a if ifb == ifa else nmcompat.open(ifb, **open_options)
        except BaseException:
            self.a.close()
            raise
        self.stats = ffi.new("struct nmc_bridge_stats *")

    @property
    def zerocopy(self) -> bool:
        """Buffers are swapped, not copied (the ports share a region)."""
        ia, ib = self.a.info, self.b.info
        return not self.copy and ia.region == ib.region and ia.buf_size == ib.buf_size

    def step(self, timeout_ms: int = POLL_TIMEOUT_MS) -> int:
        """One batch each way (waiting up to timeout_ms for one); returns
        the slots moved, 0 on timeout, -1 when a signal interrupted it."""
        rc = lib.nmc_bridge_step(self.a._live(), self.b._live(), self.burst, int(self.copy),
                                 timeout_ms, self.stats)
        if rc == -errno.EINTR:
            return -1
        if rc < 0:
            raise os_error(-rc, "bridge", f"{self.a.name} and {self.b.name}")
        return rc

    def moved(self) -> tuple:
        """Slots moved so far: (a -> b, b -> a)."""
        return int(self.stats.slots[0]), int(self.stats.slots[1])

    def describe_poll(self, ok: bool) -> str:
        """netmap's per-poll line: events, revents, RX queued @ cur, TX room."""
        st, a, b = self.stats, self.a, self.b
        return (f"poll {'ok' if ok else 'timeout'} "
                f"[0] ev {st.events[0]:x} {st.revents[0]:x} rx {_queued(a, False)}@{_rx_cur(a)} "
                f"tx {_queued(a, True)}, [1] ev {st.events[1]:x} {st.revents[1]:x} "
                f"rx {_queued(b, False)}@{_rx_cur(b)} tx {_queued(b, True)}")

    def report_errors(self) -> None:
        for side, port in ((0, self.a), (1, self.b)):
            if self.stats.err_side & (1 << side) and port.rx_rings:
                r = port.rx_rings[0]
                dlog(f"error on fd{side}, rx [{r.head},{r.cur},{r.tail})", func="main")

    def run(self, stop, verbose: int = 0, timeout_ms: int = POLL_TIMEOUT_MS) -> None:
        """Forward until stop() is true (checked at least every timeout_ms)."""
        while not stop():
            n = self.step(timeout_ms)
            if n < 0:
                continue
            if n == 0 or verbose:
                dlog(self.describe_poll(n > 0), func="main")
            if self.stats.err_side:
                self.report_errors()

    def close(self) -> None:
        if self.b is not self.a:
            self.b.close()
        self.a.close()

    def __enter__(self) -> "Bridge":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _parse(argv):
    opts, args = getopt.getopt(argv, "hb:ci:vw:L")
    cfg = dict(burst=1024, wait=4, copy=False, verbose=0, loop=False, ports=[])
    for opt, val in opts:
        if opt == "-h":
            return None
        if opt == "-b":
            cfg["burst"] = int(val)
        elif opt == "-c":
            cfg["copy"] = True
        elif opt == "-i":
            if len(cfg["ports"]) < 2:
                cfg["ports"].append(val)
            else:
                dlog(f"{val} ignored, already have 2 interfaces", func="main")
        elif opt == "-v":
            cfg["verbose"] += 1
        elif opt == "-w":
            cfg["wait"] = int(val)
        elif opt == "-L":
            cfg["loop"] = True
    ports = cfg["ports"] + [None, None]
    for k, val in enumerate(args[:2]):         # positional ifa [ifb [burst]] override -i
        ports[k] = val
    cfg["ports"] = [p for p in ports[:2] if p]
    if len(args) > 2:
        cfg["burst"] = int(args[2])
    return cfg


def _check(cfg) -> tuple:
    """The two port names, after netmap's range checks."""
    if not cfg["ports"]:
        raise Usage("missing interface (-i port)")
    if not 1 <= cfg["burst"] <= 8192:
        dlog(f"invalid burst {cfg['burst']}, set to 1024", func="main")
        cfg["burst"] = 1024
    if not 0 <= cfg["wait"] <= 100:
        dlog(f"invalid wait_link {cfg['wait']}, set to 4", func="main")
        cfg["wait"] = 4
    ifa = port_name(cfg["ports"][0])
    ifb = port_name(cfg["ports"][1]) if len(cfg["ports"]) > 1 else ifa
    if ifa == ifb and not cfg["loop"]:
        dlog("same interface, endpoint 0 goes to host", func="main")
        ifa = _host_name(ifa)
    elif ifa == ifb:
        dlog("same interface, loopbacking traffic", func="main")
    return ifa, ifb


def _host_name(name: str) -> str:
    """The host rings of NIC port ``name`` (netmap's bridge: "%s^")."""
    parts = name.split("@", 1)
    return parts[0] + "^" + ("@" + parts[1] if len(parts) > 1 else "")


def main(argv=None) -> int:
    return run("bridge", _main, argv)


def _main(argv) -> int:
    try:
        cfg = _parse(argv)
    except (getopt.GetoptError, ValueError) as exc:
        raise Usage(str(exc)) from None
    if cfg is None:
        print(USAGE, end="")
        return 0
    ifa, ifb = _check(cfg)
    br = Bridge(ifa, ifb, cfg["burst"], cfg["copy"])
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):     # before the first line: a stop is never lost
        signal.signal(sig, lambda *_: stop.append(1))
    with br:
        dlog(f"------- zerocopy {'' if br.zerocopy else 'NOT '}supported", func="main")
        dlog(f"Wait {cfg['wait']} secs for link to come up...", func="main")
        if not stop:
            time.sleep(cfg["wait"])
        a, b = br.a, br.b
        dlog(f"Ready to go, {a.name} 0x{a.info.bound_rx.start:x}/{a.info.rx_rings} <-> "
             f"{b.name} 0x{b.info.bound_rx.start:x}/{b.info.rx_rings}.", func="main")
        br.run(lambda: bool(stop), cfg["verbose"])
        ab, ba = br.moved()
        dlog(f"{a.name} -> {b.name}: {ab} slots, {b.name} -> {a.name}: {ba} slots", func="main")
    return 0


if __name__ == "__main__":
    sys.exit(main())
