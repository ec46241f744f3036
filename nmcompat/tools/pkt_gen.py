"""nmcompat pkt-gen (nmc-pkt-gen): netmap's packet generator and sink.

    nmcompat pkt-gen -i port [-f tx|rx|ping|pong|txseq|rxseq] [-n count]
        [-l size [-l min_size]] [-b burst] [-R rate] [-p threads] [-a cpu]
        [-c cpus] [-T report_ms] [-w wait_s] [-W] [-s ip[:port[-ip:port]]]
        [-d ...] [-S mac] [-D mac] [-4|-6] [-z] [-Z] [-F frags] [-M frag_size]
        [-P file.pcap] [-o bits] [-I] [-r] [-X] [-A] [-B] [-N] [-v] [-h]
        [--pcap file [--pcapng]]

netmap's options, frames, log lines and summaries (see the usage text and
docs in _pktgen_frames.py, _pktgen_run.py and csrc/tools/pktgen.c).  --pcap FILE
writes the frames received (-f rx, rxseq) or sent (tx, txseq, ping) to a
libpcap file, --pcapng makes it a pcapng file.  A bad option or value ends
with one line and status 255 (netmap's usage(-1)); -h prints the usage and
exits 0.  The smallest -l is netmap's 16 with -P (a frame from a file);
frames built here need their headers (42 bytes for IPv4 UDP).  With -p N each thread k binds ring k (the name gets "-k").
Differences from netmap's tool: frames always carry valid IP and UDP
checksums (-o 4096 is always on), random addresses (-z/-Z) and random
sizes rewrite every packet, txseq honours -n, ping/pong also work over
IPv6, the IPv6 defaults are fd00::1 -> fd01::1, and tap:, pcap: and null
devices and virtio-net headers (-H) do not exist here.
"""
from __future__ import annotations

import getopt
import os
import re
import signal
import sys
import threading
from types import SimpleNamespace

from nmcompat.tools import _pcap, _pktgen_frames as frames
from nmcompat.tools._cli import Usage, one_line, run
from nmcompat.tools._dlog import dlog, port_name
from nmcompat.tools import _pktgen_session as session
from nmcompat.tools._pktgen_session import read_sysfs

SHORT = "46a:f:F:Nn:i:Il:d:s:D:S:b:c:o:p:T:w:WvR:XC:H:rP:zZAhBM:"
FUNCS = {"rx": ("receiver", 512), "tx": ("sender", 512), "ping": ("other", 1),
         "pong": ("other", 1), "txseq": ("sender", 512), "rxseq": ("receiver", 512)}
OPT_COPY, OPT_INDIRECT, OPT_DUMP, OPT_RUBBISH = 4, 32, 64, 256
OPT_RANDOM_SRC, OPT_RANDOM_DST, OPT_PPS_STATS = 512, 1024, 2048
MAX_IFNAMELEN = 512
MIN_PKTSIZE, MAX_PKTSIZE = 16, 65536       # netmap's pkt-gen bounds

USAGE = """Usage:
pkt-gen arguments
     -h           Show program usage and exit.
     -i port      netmap port: netmap:eth0, netmap:x{1, vale0:a (a bare name gets netmap:)
     -f function  tx, rx (default), ping, pong, txseq, rxseq
     -n count     packets (tx, rx) or transactions (ping); 0 = forever
     -l size      frame size without CRC (default 60); twice: random sizes in [second, first)
     -b burst     packets per ring and round (default 512, ping/pong 1)
     -4 | -6      IPv4 (default) or IPv6
     -s | -d ip[:port[-ip:port]]   source / destination address and port, or a range
     -S | -D mac  source / destination MAC (default: the interface's / broadcast)
     -a cpu       pin thread i to CPU (cpu + i) % cpus;  -c cpus  CPUs to use (0 = all)
     -p threads   threads, one ring each
     -T ms        report interval (default 1000);  -w s  wait before starting (default 2)
     -W           rx: exit after 1 s without packets
     -R rate      packets per second
     -X           dump every packet;  -P file  send the first frame of a pcap file
     -z | -Z      random source / destination address and port
     -N           do not normalize units;  -A  pps average and deviation;  -B  add framing to bps
     -F frags     slots per packet (1..63);  -M size  bytes per slot
     -I           indirect buffers (VALE);  -r  send the buffers' contents as they are
     -C tx_slots[,rx_slots[,tx_rings[,rx_rings]]]   deprecated, use @conf: in the name
     -o options   OPT_PREFETCH 1, COPY 4, MEMCPY 8, INDIRECT 32, DUMP 64, RUBBISH 256,
                  RANDOM_SRC 512, RANDOM_DST 1024, PPS_STATS 2048, UPDATE_CSUM 4096
     -v           verbose;  --pcap file  write the frames received (or sent) to a pcap file
     --pcapng     write the --pcap file as pcapng
"""


class Help(Exception):
    """-h: the usage text was printed; exit 0."""


def usage(code: int, why: str = "") -> None:
    """-h (code 0): the usage text.  Otherwise why, on one line,
    and netmap's status for usage(-1): 255."""
    if code == 0:
        sys.stderr.write(USAGE)             # where netmap's tool prints it
        raise Help()
    raise Usage(why, code & 0xFF)


def atoi(text: str, what: str = "a value") -> int:
    """An integer, or a usage error naming what was given (netmap's atoi
    reads "abc" as 0; here nothing given is silently read as something else)."""
    m = re.fullmatch(r"\s*[+-]?\d+\s*", text)
    if not m:
        usage(-1, f"{what} needs an integer, not {text!r}")
    return int(m.group())


def defaults() -> SimpleNamespace:
    return SimpleNamespace(
        function="rx", af=4, src_name=None, dst_name=None, dst_mac_name="ff:ff:ff:ff:ff:ff",
        src_mac_name=None, pkt_size=60, size_given=False, pkt_min_size=0, burst=0, npackets=0,
        nthreads=1, cpus=1, affinity=-1, report_interval=1000, wait_link=2, wait_given=False,
        forever=True, tx_rate=0, frags=1, frag_size=0, options=0, normalize=True, verbose=0,
        framing=0, ifname="", conf="", virt_header=0, packet_file=None, pcap=None,
        pcap_format="pcap")


def parse_args(argv) -> SimpleNamespace:
    g = defaults()
    try:
        opts, rest = getopt.gnu_getopt(argv, SHORT, ["pcap=", "pcapng", "help"])
    except getopt.GetoptError as exc:
        usage(-1, f"bad option {exc.opt}: {exc.msg}")
    for opt, val in opts:
        _option(g, opt, val)
    if rest:
        usage(-1, f"unexpected arguments: {' '.join(rest)}")
    return g


def _option(g, opt: str, val: str) -> None:
    o = opt.lstrip("-")
    if o in ("h", "help"):
        usage(0)
    simple = {"4": ("af", 4), "6": ("af", 6), "N": ("normalize", False), "W": ("forever", False),
              "I": ("options", g.options | OPT_INDIRECT), "X": ("options", g.options | OPT_DUMP),
              "r": ("options", g.options | OPT_RUBBISH), "z": ("options", g.options | OPT_RANDOM_SRC),
              "Z": ("options", g.options | OPT_RANDOM_DST), "A": ("options", g.options | OPT_PPS_STATS),
              "B": ("framing", 24 * 8), "v": ("verbose", g.verbose + 1)}
    ints = {"a": "affinity", "b": "burst", "c": "cpus", "p": "nthreads", "T": "report_interval",
            "R": "tx_rate", "M": "frag_size", "H": "virt_header"}
    strs = {"d": "dst_name", "s": "src_name", "D": "dst_mac_name", "S": "src_mac_name",
            "P": "packet_file", "pcap": "pcap"}
    if o == "pcapng":
        g.pcap_format = "pcapng"
        return
    if o in simple:
        setattr(g, *simple[o])
    elif o in ints:
        setattr(g, ints[o], atoi(val, f"-{o}"))
    elif o in strs:
        setattr(g, strs[o], val)
    elif o == "n":
        g.npackets = max(atoi(val, "-n"), 0)
    elif o == "o":
        g.options |= atoi(val, "-o")
    elif o == "w":
        g.wait_link, g.wait_given = atoi(val, "-w"), True
    elif o == "C":
        dlog("WARNING: the 'C' option is deprecated, use the '+conf:' libnetmap option instead", func="main")
        g.conf = val
    elif o == "F":
        if not 1 <= atoi(val, "-F") <= 63:
            usage(-1, f"invalid frags {atoi(val)} [1..63]")
        g.frags = atoi(val)
    elif o == "f":
        if val in FUNCS:
            g.function = val
        else:
            usage(-1, f"unrecognised function {val} (one of {', '.join(FUNCS)})")
    elif o == "l":
        if g.size_given:
            g.pkt_min_size = atoi(val, "-l")
        else:
            g.pkt_size, g.size_given = atoi(val, "-l"), True
    elif o == "i":
        dlog(f"interface is {val}", func="main")
        if len(val) > MAX_IFNAMELEN - 8:
            usage(-1, f"ifname too long {val}")
        g.ifname = val


def _conf(text: str) -> dict:
    """-C tx_slots[,rx_slots[,tx_rings[,rx_rings]]], zeros are defaults."""
    vals = [atoi(v, "-C") for v in text.split(",")] if text else []
    if len(vals) > 4:
        usage(-1, f"-C takes at most 4 numbers (tx_slots,rx_slots,tx_rings,rx_rings), not {text!r}")
    keys = (("tx_slots", "rx_slots"), ("rx_slots",), ("tx_rings", "rx_rings"), ("rx_rings",))
    out = {}
    for keyset, v in zip(keys, vals):
        for k in keyset:
            out[k] = v
    return {k: v for k, v in out.items() if v > 0}


def check_args(g) -> None:
    """netmap's checks and derived settings, before the port opens."""
    from nmcompat import _portspec
    if not g.ifname:
        usage(-1, "missing ifname (-i port)")
    _check_numbers(g)
    if g.ifname == "null" or g.ifname.startswith(("tap", "pcap:")):
        raise SystemExit(f"pkt-gen: {g.ifname}: tap, pcap and null devices are not supported by nmcompat")
    g.ifname = port_name(g.ifname)
    g.spec = _portspec.parse(g.ifname)
    g.role, default_burst = FUNCS[g.function]
    if g.burst <= 0:
        g.burst = default_burst
        dlog(f"using default burst size: {g.burst}", func="main")
    system = os.cpu_count() or 1
    if g.cpus < 0 or g.cpus > system:
        usage(-1, f"{g.cpus} cpus is too high, have only {system} cpus")
    dlog(f"running on {g.cpus} cpus (have {system})", func="main")
    g.cpus = g.cpus or system
    if not g.wait_given and g.ifname.startswith("vale"):
        g.wait_link = 0
    if g.virt_header not in (0, 10, 12):
        usage(-1, "bad virtio-net-header length")
    if g.virt_header:
        raise SystemExit("pkt-gen: virtio-net headers (-H) are not supported by nmcompat ports")
    if g.function in ("ping", "pong", "txseq") and g.nthreads > 1:
        what = {"ping": "ping", "pong": "reply ping", "txseq": "txseq"}[g.function]
        raise SystemExit(f"pkt-gen: can only {what} with 1 thread")
    if g.function == "txseq":
        g.options |= OPT_COPY
    g.dump = bool(g.options & OPT_DUMP)
    _frame_args(g)


def _check_numbers(g) -> None:
    """Values netmap's tool would take and then misbehave on."""
    if g.tx_rate < 0:
        usage(-1, f"bad rate {g.tx_rate} (-R: packets per second, 0 for no limit)")
    if g.wait_link < 0:
        usage(-1, f"bad wait {g.wait_link} (-w: seconds >= 0)")
    if g.report_interval <= 0:
        usage(-1, f"bad report interval {g.report_interval} (-T: milliseconds > 0)")
    if g.nthreads < 1:
        usage(-1, f"bad nthreads {g.nthreads} (-p: threads >= 1)")
    if g.pcap_format == "pcapng" and not g.pcap:
        usage(-1, "--pcapng chooses the format of the --pcap file; give --pcap FILE too")


def _frame_args(g) -> None:
    g.raw_frame, g.frame = False, None
    if g.packet_file:
        try:
            _, g.frame, _ = next(iter(_pcap.read(g.packet_file)))
        except StopIteration:
            raise SystemExit(f"pkt-gen: failed to read a packet from {g.packet_file}: "
                             "it holds none") from None
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)
            raise SystemExit(f"pkt-gen: failed to read a packet from {g.packet_file}: {why}") from None
        g.raw_frame, g.pkt_size = True, len(g.frame)
    extra = {"ping": 12, "txseq": 4}.get(g.function, 0)       # sequence number, time stamp
    low = 1 if g.raw_frame else frames.headers_len(g.af) + extra
    if not g.size_given and not g.raw_frame:
        g.pkt_size = max(g.pkt_size, low)           # 60 bytes cannot hold IPv6 + UDP
    if not MIN_PKTSIZE <= g.pkt_size <= MAX_PKTSIZE:
        usage(-1, f"bad pktsize {g.pkt_size} [{MIN_PKTSIZE}..{MAX_PKTSIZE}]")
    if g.pkt_size < low:
        usage(-1, f"bad pktsize {g.pkt_size}: the frames of -f {g.function} need {low} bytes "
              f"(Ethernet, IPv{g.af} and UDP headers{' and its payload' if extra else ''}); "
              "-P file sends a smaller frame of a pcap file")
    if g.pkt_min_size > 0 and not (frames.headers_len(g.af) <= g.pkt_min_size <= g.pkt_size):
        usage(-1, f"bad pktminsize {g.pkt_min_size} [{frames.headers_len(g.af)}..{g.pkt_size}]")
    if g.src_mac_name is None:
        nic = g.spec.pipe is None and g.spec.vale_switch is None
        g.src_mac_name = (read_sysfs(g.spec.name, "address") if nic else None) or "00:00:00:00:00:00"
    try:
        g.src_mac, g.dst_mac = frames.parse_mac(g.src_mac_name), frames.parse_mac(g.dst_mac_name)
        g.src_name = g.src_name or ("10.0.0.1" if g.af == 4 else "fd00::1")
        g.dst_name = g.dst_name or ("10.1.0.1" if g.af == 4 else "fd01::1")
        g.src_ip, g.dst_ip = frames.parse_range(g.src_name, g.af), frames.parse_range(g.dst_name, g.af)
    except ValueError as exc:
        usage(-1, str(exc))
    for r in (g.src_ip, g.dst_ip):
        dlog(r.describe(), func="extract_ip_range")
    g.vary = not g.raw_frame and (g.src_ip.varies or g.dst_ip.varies
                                  or bool(g.options & (OPT_RANDOM_SRC | OPT_RANDOM_DST)))
    if g.vary:
        g.options |= OPT_COPY


def run_session(g) -> int:
    session.check_mtu(g)
    ports = session.open_ports(g, _conf(g.conf))
    pcap = None
    try:
        session.fragments(g, ports[0].info.buf_size)
        session.startup_lines(g, ports)
        session.set_rate(g)
        frame = g.frame if g.raw_frame else frames.build_frame(
            g.af, g.pkt_size, g.src_mac, g.dst_mac, g.src_ip, g.dst_ip, bool(g.options & OPT_INDIRECT))
        if g.pcap and g.function == "pong":
            dlog("--pcap: pong writes no capture", func="main")
        elif g.pcap:
            pcap = session.PcapOut(g.pcap, g.pcap_format)
        s = session.Session(g, ports, frame, pcap)
        s.start_threads()
        s.main_thread()
        return s.final()
    finally:
        if pcap:
            pcap.close()
        for p in ports:
            p.close()


def main(argv=None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)    # even if inherited ignored
    return run("pkt-gen", _main, argv)


def _main(argv) -> int:
    try:
        g = parse_args(argv)
        check_args(g)
    except Help:
        return 0
    return run_session(g)


if __name__ == "__main__":
    sys.exit(main())
