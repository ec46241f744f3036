"""nmcompat lb (nmc-lb): netmap's load balancer onto netmap pipes.

    nmcompat lb -i port [-p [name:]N]... [-B extra_bufs] [-b batch] [-w wait]
                [-W] [-o seconds] [-s seconds] [-c]

Packets read from the input port are hashed by flow onto the pipes of each
group; both directions of a connection land on the same pipe.  Each -p adds
a group of N pipes (default: one group of 2); the groups form a chain,
every group receiving every packet in turn.  Group k's pipes are the
master ends ``netmap:<name>{<id>/xT@<mem_id of the input>``; readers open
``<name>}<id>``.  The name defaults to the input port's name without
"netmap:" and any suffix; identically named groups number their pipes on
from the previous one.  -B asks for extra buffers (fewer are taken if the
region cannot grant them all) that queue packets for a full pipe; with
none free, the oldest 100 packets of the longest queue are dropped.
-b: input packets per round (2048); -w: seconds before starting (2); -W:
busy-wait instead of sleeping; -o: seconds between statistics lines on
stdout (1; 0 none); -s: seconds between JSON statistics in syslog (600).
-c (nmcompat): copy into the pipes even when they share the input's region.

Differences from netmap's lb: a group name is only a pipe parent name here
(netmap creates a persistent VALE port, which leaks if lb dies); a pipe
whose parent already lives in another region (its readers opened it
first) is fed by copy (and then the next group is fed at once); a packet
spread over several slots is dropped (counted); both ends must agree on
the input region for zero-copy, which holds when lb starts first.  A
packet goes on to the next group as soon as the group's reader releases
it (netmap's lb waits until it reuses the slot, so a group's last
ring-full waits for more traffic).  The chain, like netmap's, needs
read-only readers: a reader that swaps buffers out of its pipe passes the
swapped-in buffer on to the next group.
"""
from __future__ import annotations

import errno
import getopt
import json
import re
import signal
import sys
import time

import nmcompat
from nmcompat._ffi import check, ffi, lib
from nmcompat.tools._cli import Usage, run
from nmcompat.tools._dlog import dlog, norm, port_name

DEF_PIPES, DEF_BATCH, DEF_WAIT, DEF_SYSLOG = 2, 2048, 2, 600

USAGE = f"""usage: lb [options]
where options are:
  -i iface              interface name (required)
  -p [prefix:]npipes    add a new group of output pipes
  -B nbufs              number of extra buffers (default: 0)
  -b batch              batch size (default: {DEF_BATCH})
  -w seconds            wait for link up (default: {DEF_WAIT})
  -W                    busy wait instead of sleeping
  -o seconds            seconds between statistics on stdout (default: 1, 0: none)
  -s seconds            seconds between syslog messages (default: {DEF_SYSLOG})
  -c                    copy into the pipes (no buffer swap)
"""


def base_name(ifname: str) -> str:
    """The input port's name without "netmap:" and from any of -*^{}/@ on."""
    name = ifname[7:] if ifname.startswith("netmap:") else ifname
    return re.split(r"[-*^{}/@]", name, maxsplit=1)[0]


def parse_group(spec: str) -> tuple:
    """'-p' argument -> (name or '', pipes)."""
    name, sep, num = spec.rpartition(":") if ":" in spec else ("", "", spec)
    if sep and not name:
        raise ValueError(f"missing prefix before ':' in '{spec}'")
    n = int(num) if num else DEF_PIPES
    if n < 1:
        raise ValueError(f"invalid number of pipes '{num}' (must be at least 1)")
    return name, n


def pipe_names(ifname: str, groups, mem_id: int) -> list:
    """netmap's pipe names, group by group: [[name, ...], ...]."""
    base, next_id, out = base_name(ifname), {}, []
    for name, n in groups:
        name = name or base
        first = next_id.get(name, 0)
        next_id[name] = first + n
        out.append([f"netmap:{name}{{{first + k}/xT@{mem_id}" for k in range(n)])
    return out


class LoadBalancer:
    """The input port, its output pipes and the C state between them."""

    def __init__(self, ifname: str, groups=(("", DEF_PIPES),), extra_bufs: int = 0,
                 batch: int = DEF_BATCH, copy: bool = False, log=lambda msg: None) -> None:
        self._log, self._lb, self.pipes = log, None, []
        self.input = self._open_input(ifname, extra_bufs)
        try:
            names = pipe_names(ifname, groups, self.input.info.mem_id)
            for group in names:
                for k, name in enumerate(group):
                    self.pipes.append(self._open_pipe(name, k))
            self._start(groups, batch, copy)
        except BaseException:
            self.close()
            raise

    def _open_input(self, ifname: str, asked: int):
        want = asked
        if asked:
            self._log(f"requested {asked} extra buffers")
        while True:
            try:
                port = nmcompat.open(ifname, extra_bufs=want)
                break
            except OSError as exc:
                if exc.errno != errno.ENOMEM or want == 0:
                    raise
                want //= 2              # netmap grants fewer; nmcompat all or ENOMEM
        self._log(f"successfully opened {ifname} (tx rings: {port.info.tx_slots})")
        if asked:
            self._log(f"obtained {port.info.extra_bufs} extra buffers")
            if not port.info.extra_bufs:
                self._log("*** overflow queues disabled ***")
        return port

    def _open_pipe(self, name: str, k: int):
        self._log(f"opening pipe named {name}")
        try:
            port = nmcompat.open(name)
        except OSError as exc:          # the parent already lives in another region
            if exc.errno != errno.EINVAL:
                raise
            name = name.rsplit("@", 1)[0]
            port = nmcompat.open(name)
        self._log(f"successfully opened pipe #{k + 1} {name} (tx slots: {port.info.tx_slots})")
        zc = port.info.region == self.input.info.region
        self._log(f"zerocopy {'enabled' if zc else 'disabled'}")
        return port

    def _start(self, groups, batch: int, copy: bool) -> None:
        sizes = ffi.new("uint32_t[]", [n for _, n in groups])
        handles = ffi.new("struct nmc_port *[]", [p._live() for p in self.pipes])
        out = ffi.new("struct nmc_lb **")
        check(lib.nmc_lb_new(self.input._live(), handles, sizes, len(groups), batch,
                             lib.NMC_LB_COPY if copy else 0, out), "start lb on", self.input.name)
        self._lb = out[0]
        self._st = ffi.new("struct nmc_lb_stats *")
        self._per = ffi.new("struct nmc_lb_pipe_stats[]", len(self.pipes))

    def step(self, timeout_ms: int = 10) -> int:
        """One round (at most `batch` input packets); waits for input at most
        timeout_ms.  Returns packets moved, 0 on timeout, -1 on a signal."""
        rc = lib.nmc_lb_step(self._lb, timeout_ms)
        if rc == -errno.EINTR:
            return -1
        return check(rc, "balance", self.input.name)

    def stats(self) -> dict:
        """Totals, and per pipe: {'pipes': [{pkts, drops, queued, zerocopy}, ...]}."""
        lib.nmc_lb_stats(self._lb, self._st, self._per, len(self.pipes))
        st = {k: int(getattr(self._st, k)) for k in (
            "received", "forwarded", "dropped", "non_ip", "oversize", "revoked", "sync_errors",
            "extra_bufs", "free_bufs", "zerocopy_pipes")}
        st["pipes"] = [{k: int(getattr(p, k)) for k in ("pkts", "drops", "queued", "zerocopy")}
                       for p in self._per]
        return st

    def release(self) -> int:
        """Stop: publish what the pipes hold and put every extra buffer back
        on the input port's ni_bufs_head list.  Returns how many."""
        if self._lb is None:
            return 0
        given, self._lb = lib.nmc_lb_free(self._lb), None
        self._log(f"added {given} buffers to netmap free list")
        return given

    def close(self) -> int:
        """release(), then close every port.  Returns the buffers given back."""
        given = self.release()
        for port in self.pipes:
            port.close()
        if getattr(self, "input", None) is not None:
            self.input.close()
        return given

    def __enter__(self) -> "LoadBalancer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Reporter:
    """netmap's statistics lines: per pipe 'pps/dps|', then the aggregate."""

    def __init__(self, lb: LoadBalancer, ifname: str, every: float, syslog_every: float) -> None:
        self.lb, self.ifname, self.every, self.syslog_every = lb, ifname, every, syslog_every
        self.t = self.t_sys = time.monotonic()
        self.prev = lb.stats()

    def due(self) -> float:
        """Seconds until the next line."""
        return max(0.0, self.t + (self.every or 1.0) - time.monotonic())

    def tick(self) -> None:
        now = time.monotonic()
        if now < self.t + (self.every or 1.0):
            return
        cur, dt = self.lb.stats(), now - self.t
        if self.every:
            cells = [f"{norm((c['pkts'] - p['pkts']) / dt)}/{norm((c['drops'] - p['drops']) / dt)}|"
                     for c, p in zip(cur["pipes"], self.prev["pipes"])]
            print("".join(cells))
            fwd = sum(c["pkts"] for c in cur["pipes"]) - sum(p["pkts"] for p in self.prev["pipes"])
            drp = sum(c["drops"] for c in cur["pipes"]) - sum(p["drops"] for p in self.prev["pipes"])
            print(f"===> aggregate {norm(fwd / dt)}pps {norm(drp / dt)}dps", flush=True)
        if self.syslog_every and now >= self.t_sys + self.syslog_every:
            self._syslog(cur)
            self.t_sys = now
        self.prev, self.t = cur, now

    def _syslog(self, cur: dict) -> None:
        import syslog
        syslog.openlog("lb", syslog.LOG_PID | syslog.LOG_NDELAY, syslog.LOG_LOCAL1)
        for j, p in enumerate(cur["pipes"]):
            syslog.syslog(syslog.LOG_INFO, json.dumps({
                "interface": self.ifname, "output_ring": j,
                "packets_forwarded": p["pkts"], "packets_dropped": p["drops"]}, separators=(",", ":")))
        syslog.syslog(syslog.LOG_INFO, json.dumps({
            "interface": self.ifname, "output_ring": None, "packets_forwarded": cur["forwarded"],
            "packets_dropped": cur["dropped"], "non_ip_packets": cur["non_ip"]}, separators=(",", ":")))


def _parse(argv) -> dict:
    opts, args = getopt.getopt(argv, "hi:p:b:B:s:o:w:Wc")
    if args:
        raise getopt.GetoptError(f"unexpected argument {args[0]}")
    cfg = dict(ifname="", groups=[], extra=0, batch=DEF_BATCH, wait=DEF_WAIT, busy=False,
               every=1.0, syslog=DEF_SYSLOG, copy=False)
    for opt, val in opts:
        if opt == "-h":
            return None
        if opt == "-i":
            dlog(f"interface is {val}", func="main")
            cfg["ifname"] = port_name(val)
        elif opt == "-p":
            cfg["groups"].append(parse_group(val))
        elif opt in ("-B", "-b", "-w"):
            cfg[{"-B": "extra", "-b": "batch", "-w": "wait"}[opt]] = int(val)
        elif opt in ("-o", "-s"):
            cfg["every" if opt == "-o" else "syslog"] = float(val)
        else:
            cfg["busy" if opt == "-W" else "copy"] = True
    if not cfg["ifname"]:
        raise Usage("missing interface name (-i port)")
    cfg["groups"] = cfg["groups"] or [("", DEF_PIPES)]
    for key, opt, low in (("wait", "-w", 0), ("extra", "-B", 0), ("batch", "-b", 1),
                          ("every", "-o", 1e-3), ("syslog", "-s", 0)):
        if key == "every" and cfg[key] == 0:
            continue                    # -o 0: no statistics on stdout
        if not cfg[key] >= low:
            raise Usage(f"{opt} {cfg[key]}: must be 0 or at least {low}" if key == "every"
                        else f"{opt} {cfg[key]}: must be at least {low}")
    return cfg


def _serve(lb: LoadBalancer, cfg: dict) -> None:
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(1))
    rep = Reporter(lb, cfg["ifname"], cfg["every"], cfg["syslog"])
    while not stop:
        lb.step(0 if cfg["busy"] else max(1, min(100, int(rep.due() * 1000))))
        rep.tick()


def main(argv=None) -> int:
    return run("lb", _main, argv)


def _main(argv) -> int:
    try:
        cfg = _parse(argv)
    except (getopt.GetoptError, ValueError) as exc:
        raise Usage(str(exc)) from None
    if cfg is None:
        print(USAGE, end="")
        return 0
    lb = LoadBalancer(cfg["ifname"], cfg["groups"], cfg["extra"], cfg["batch"], cfg["copy"],
                      log=lambda msg: dlog(msg, func="main"))
    with lb:
        time.sleep(cfg["wait"])
        _serve(lb, cfg)
        st = lb.stats()
    print(f"{st['forwarded']} packets forwarded.  {st['dropped']} packets dropped. "
          f"Total {st['forwarded'] + st['dropped']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
