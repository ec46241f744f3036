"""The measurements behind `./run bench compare`: one sender and one receiver
per run, nmcompat's or a peer's, and what each run cost in CPU time.

Two kinds of run:

- counted (nmcompat pipe and VALE, and their bare-ring limits): the workers
  of bench_pipe / bench_vale move a fixed number of frames; each reports
  its rate and the CPU time its process spent in its C call;
- timed (everything on the veth pair, and DPDK memif): both sides start
  side by side, the sender is told to go and runs for `seconds`; after a
  warm-up the CPU time of both processes (every thread's runtime from
  /proc/<pid>/task/*/schedstat, the counter getrusage adds up) is read at
  the start and at the end of a window in steady state; testpmd's
  receive counter is read at the same two moments (interactive
  `show port stats`), the other receivers report first-to-last-frame rates.
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from typing import List, Optional

from nmcompat_bench import pipe as bench_pipe, vale as bench_vale
from nmcompat_bench._common import cpu_per_packet, pid_cpu_ns, side_cpu
from nmcompat_bench._env import Env

WORKERS = "nmcompat_bench._workers"
_LIVE: List["Child"] = []
_DPDK_PREFIXES: set = set()


# -- processes ----------------------------------------------------------------------

class Child:
    """One process (in a namespace if ns), its output read as it comes."""

    def __init__(self, argv: List[str], ns: str = "", cpu: int = -1, stdin: bool = False,
                 env: Optional[dict] = None) -> None:
        if ns:
            argv = ["ip", "netns", "exec", ns, *argv]
        pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu >= 0 else None
        self.argv, self.buf, self.pos = argv, b"", 0
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=pin, start_new_session=True)
        _LIVE.append(self)

    def _fill(self, timeout: float) -> bool:
        if select.select([self.proc.stdout], [], [], max(timeout, 0))[0]:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            self.buf += chunk
            return bool(chunk)
        return True

    def expect(self, pattern: str, timeout: float) -> re.Match:
        """The next match of pattern in the output (waiting for it)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern.encode(), re.M)
        while True:
            m = regex.search(self.buf, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(min(left, 0.2)):
                raise RuntimeError(f"{self.name()}: no {pattern!r} within {timeout:.0f} s; "
                                   f"output: {self.tail()}")

    def send(self, text: str) -> None:
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def finish(self, timeout: float) -> str:
        """The whole output once the process has ended (killed after timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._fill(deadline - time.monotonic()):
            pass
        try:
            self.proc.wait(max(0.5, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"{self.name()} did not finish in {timeout:.0f} s: "
                               f"{self.tail()}") from None
        self.close()
        return self.buf.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)     # its own session only
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.close()

    def close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                f.close()
        if self in _LIVE:
            _LIVE.remove(self)

    def cpu_ns(self) -> int:
        """CPU time of every thread so far (0 once it has ended)."""
        return pid_cpu_ns(self.proc.pid)

    def name(self) -> str:
        """For messages: the program and what it was asked to do."""
        argv = self.argv[4:] if self.argv[0] == "ip" else self.argv
        argv = argv[2:] if argv[0] == "stdbuf" else argv
        prog = os.path.basename(argv[0])
        if "testpmd" in prog:
            vdev = argv[argv.index("--vdev") + 1] if "--vdev" in argv else ""
            mode = [a.split("=", 1)[1] for a in argv if a.startswith("--forward-mode=")]
            return f"{prog} {' '.join(mode)} {vdev}"
        return " ".join([prog] + [a for a in argv[1:7] if not a.startswith("-")])

    def tail(self) -> str:
        return self.buf.decode(errors="replace")[-1500:]


def kill_all() -> None:
    """End every process started here (by pid), remove testpmd's runtime files."""
    for child in list(_LIVE):
        child.kill()
    while _DPDK_PREFIXES:
        shutil.rmtree(f"/var/run/dpdk/{_DPDK_PREFIXES.pop()}", ignore_errors=True)


def _busy_ns() -> int:
    """Non-idle time of every CPU (from /proc/stat), in ns."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    tick = 1e9 / os.sysconf("SC_CLK_TCK")
    return int((sum(fields[:8]) - fields[3] - fields[4]) * tick)


def _sample(rx: "Child", tx: "Child") -> tuple:
    """Now, the receiver's and the sender's CPU time, and the machine's busy time."""
    return time.monotonic(), rx.cpu_ns(), tx.cpu_ns(), _busy_ns()


# -- the ends of a timed run ----------------------------------------------------------

class End:
    """A sender or a receiver: ready(), go(), result(); count() where counts (testpmd)."""
    counts = False

    def __init__(self, env: "Env", argv: List[str], ns: str, cpu: int, stdin: bool) -> None:
        self.child = Child(argv, ns, cpu, stdin, env.worker_env)


class Worker(End):
    """_workers nic / scapy: "ready", "go" on stdin, "result {json}"."""

    def __init__(self, env, kind, role, ifname, extra, size, seconds, cpu):
        argv = [sys.executable, "-m", WORKERS, kind, role, ifname, *extra, str(size),
                str(seconds), "30", str(cpu)]
        super().__init__(env, argv, env.ns, -1, role == "tx")

    def ready(self):
        self.child.expect(r"^ready", 90)

    def go(self):
        self.child.send("go\n")

    def result(self, timeout):
        text = self.child.finish(timeout)
        m = re.search(r"^result (.*)$", text, re.M)
        if not m:
            raise RuntimeError(f"{self.child.name()} gave no result: {text[-1500:]}")
        return json.loads(m.group(1))


class Sockets(End):
    """bench/csrc/afpacket_bench.c, plain sockets or (rings) the bare TPACKET rings: the
    sender starts sending at once, so only at go().  Senders send 64 frames a call, the
    rings' 512 a kick (as the engine's bench sender syncs)."""

    def __init__(self, env, role, ifname, size, seconds, cpu, rings=False):
        self.env, self.role, self.cpu = env, role, cpu
        mode = role + ("-ring" if rings else "")
        self.argv = ([env.afpacket, mode, ifname, str(size), str(seconds), "512" if rings else "64"]
                     if role == "tx" else [env.afpacket, mode, ifname, str(seconds), "30", "0.5"])
        self.child = None if role == "tx" else Child(self.argv, env.ns, cpu, False, env.worker_env)

    def ready(self):
        if self.child:
            self.child.expect(r"^ready", 30)

    def go(self):
        self.child = Child(self.argv, self.env.ns, self.cpu, False, self.env.worker_env)
        self.child.expect(r"^ready", 30)

    def result(self, timeout):
        text = self.child.finish(timeout)
        m = re.search(r"^result (.*)$", text, re.M)
        if not m:
            raise RuntimeError(f"afpacket_bench gave no result: {text[-1500:]}")
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


class Testpmd(End):
    """dpdk-testpmd, interactive (its stdout line-buffered through stdbuf): the
    receiver forwards from the start, the sender on "start"; "quit" ends both."""
    counts = True

    def __init__(self, env, role, vdev, size, fwd_cpu, main_cpu, ns, tag):
        self.prefix = f"nmcc{os.getpid()}{tag}"
        _DPDK_PREFIXES.add(self.prefix)
        argv = ["stdbuf", "-oL", env.testpmd, f"--lcores=0@{max(main_cpu, 0)},1@{max(fwd_cpu, 0)}",
                "--no-huge", "-m", "512", "--no-pci", f"--file-prefix={self.prefix}",
                "--log-level=pmd.net:error", "--vdev", vdev, "--", "-i",
                f"--forward-mode={'txonly' if role == 'tx' else 'rxonly'}",
                "--total-num-mbufs=16384", "--no-mlockall"]
        argv += [f"--txpkts={size}"] if role == "tx" else ["--auto-start"]
        super().__init__(env, argv, ns, -1, True)
        self.up = False

    def prompt(self):
        """Its first prompt: ports set up (a memif server listens)."""
        if not self.up:
            self.child.expect(r"testpmd> ", 60)
            self.up = True

    def ready(self):
        """Up, and its link too (a memif link comes up once client and server met)."""
        self.prompt()
        deadline = time.monotonic() + 20
        while True:
            self.child.send("show port info 0\n")
            if self.child.expect(r"Link status: (\w+)", 10).group(1) == b"up":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.child.name()}: the link did not come up in 20 s")
            time.sleep(0.05)

    def go(self):
        self.child.send("start\n")
        self.child.expect(r"packet forwarding - ports=", 10)

    def count(self) -> int:
        self.child.send("show port stats 0\n")
        return int(self.child.expect(r"RX-packets:\s+(\d+)\s+RX-missed", 10).group(1))

    def result(self, timeout):
        if self.child.proc.poll() is None:
            self.child.send("quit\n")
        text = self.child.finish(timeout)
        missed = re.findall(r"RX-missed:\s+(\d+)", text)
        return {"rx_missed": int(missed[-1]) if missed else 0}


WIDEN_STEP_S = 0.01


def _window_end(rx: End, tx: End, first: tuple, run_end: float) -> tuple:
    """The counter and the sample that end the window: widened, while the run
    goes on, until each side has had CPU time in it (on a loaded machine a
    side may get none in a short window; a reading of 0 ns would be an
    artifact).  A side still without any at the run's end is unmeasured."""
    while True:
        last = rx.count() if rx.counts else 0
        sample = _sample(rx.child, tx.child)
        ran = all(now > before for now, before in zip(sample[1:3], first))
        if ran or time.monotonic() + WIDEN_STEP_S >= run_end:
            return last, sample
        time.sleep(WIDEN_STEP_S)


def timed_run(rx: End, tx: End, seconds: float) -> dict:
    """Start both, go, read the CPU (and testpmd's counter) over the steady window
    (_window_end); a side that had no CPU time in it is reported unmeasured
    (None, named in "cpu_unmeasured"), never as 0 ns per packet."""
    warm, window = 0.2 * seconds, 0.6 * seconds
    try:
        rx.ready()
        tx.ready()
        started = time.monotonic()
        tx.go()
        time.sleep(warm)
        first = rx.count() if rx.counts else 0
        t1, rx1, tx1, busy1 = _sample(rx.child, tx.child)
        time.sleep(window)
        last, (t2, rx2, tx2, busy2) = _window_end(rx, tx, (rx1, tx1), started + seconds)
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        sent = tx.result(30 + seconds)
        if rx.counts:
            time.sleep(0.1)
        got = rx.result(30 + seconds)
    finally:
        for end in (tx, rx):
            if end.child:
                end.child.kill()
    span = t2 - t1
    if rx.counts:
        mpps = (last - first) / span / 1e6 if span > 0 else 0.0
        packets = last - first
    else:
        mpps = got["packets"] / got["elapsed_ns"] * 1e3 if got.get("elapsed_ns") else 0.0
        packets = got["packets"]
    in_window = mpps * 1e6 * span
    tx_ns, rx_ns = (end - start if end > start else None for start, end in ((tx1, tx2), (rx1, rx2)))
    return {"mpps": mpps, "packets": packets,
            **cpu_per_packet(tx_ns, rx_ns, in_window),
            "cpu_unmeasured": [side for side, ns in (("tx", tx_ns), ("rx", rx_ns)) if ns is None],
            "cpu_share": round((rx2 - rx1 + tx2 - tx1) / 1e9 / span, 3) if span > 0 else None,
            "busy_share": round((busy2 - busy1) / 1e9 / span, 3) if span > 0 else None,
            "window_s": round(span, 3), "sent": sent, "received": got}


# -- runs per system -------------------------------------------------------------------------

def veth_run(env: Env, system: str, size: int, seconds: float) -> dict:
    tx_cpu, rx_cpu = env.tx_cpu, env.rx_cpu
    if system.startswith("nmcompat-"):
        mode = system.split("-", 1)[1]
        rx = Worker(env, "nic", "rx", "va", [mode], size, seconds, rx_cpu)
        tx = Worker(env, "nic", "tx", "vb", [mode], size, seconds, tx_cpu)
    elif system == "scapy":
        rx = Worker(env, "scapy", "rx", "va", [], size, seconds, rx_cpu)
        tx = Worker(env, "scapy", "tx", "vb", [], size, seconds, tx_cpu)
    elif system in ("sockets", "tpacket-ring"):
        rings = system == "tpacket-ring"
        rx = Sockets(env, "rx", "va", size, seconds, rx_cpu, rings)
        tx = Sockets(env, "tx", "vb", size, seconds, tx_cpu, rings)
    else:                                    # dpdk-af_xdp, dpdk-af_packet
        pmd = system.split("-", 1)[1]
        opts = ",start_queue=0,queue_count=1" if pmd == "af_xdp" else ",qpairs=1,qdisc_bypass=1"
        rx = Testpmd(env, "rx", f"net_{pmd}0,iface=va{opts}", size, rx_cpu, tx_cpu, env.ns, "r")
        tx = Testpmd(env, "tx", f"net_{pmd}0,iface=vb{opts}", size, tx_cpu, rx_cpu, env.ns, "t")
        # net_af_packet joins PACKET_FANOUT group (pid ^ ifindex) & 0xffff: two processes
        # started one after the other on a veth pair (pids n and n ^ 1, ifindexes k and
        # k ^ 1) collide, and the second fails with EINVAL.  Start that one again.
        for _ in range(8):
            if pmd != "af_packet" or \
                    (rx.child.proc.pid ^ env.ifindex("va")) != (tx.child.proc.pid ^ env.ifindex("vb")):
                break
            tx.child.kill()
            tx = Testpmd(env, "tx", f"net_{pmd}0,iface=vb{opts}", size, tx_cpu, rx_cpu, env.ns, "t")
    return timed_run(rx, tx, seconds)


def memif_run(env: Env, size: int, seconds: float, rundir: str) -> dict:
    """testpmd txonly (memif client) -> testpmd rxonly (memif server), no namespace."""
    sock = os.path.join(rundir, f"memif{time.monotonic_ns()}.sock")
    rx_cpu, tx_cpu = env.rx_cpu, env.tx_cpu
    rx = Testpmd(env, "rx", f"net_memif0,role=server,socket={sock}", size, rx_cpu, tx_cpu, "", "r")
    rx.prompt()            # a client that finds no server when it starts never connects
    tx = Testpmd(env, "tx", f"net_memif0,role=client,socket={sock}", size, tx_cpu, rx_cpu, "", "t")
    return timed_run(rx, tx, seconds)


HOT_BUFS = 64       # testpmd sends bursts of 32 from a per-core mempool cache of 250 mbufs


def counted_run(system: str, rundir: str, cpus, size: int, count: int, batch: int) -> dict:
    timeout = 120 + count / 2e4
    if system in ("nmcompat-pipe", "raw-ring"):
        runner = bench_pipe.Runner(rundir, cpus, timeout)
        res = runner.pair("pipe" if system == "nmcompat-pipe" else "raw", batch, size, count)
        mpps, extra = bench_pipe.mpps(res["rx"]), {"errors": res["rx"]["errors"]}
    else:
        # the "-hot" rows: batches of HOT_BUFS frames from HOT_BUFS buffers, hot in the
        # sender's cache (a batch needs as many buffers as frames)
        hot = system.endswith("-hot")
        batch = HOT_BUFS if hot else batch
        runner = bench_vale.Runner(rundir, cpus, timeout, HOT_BUFS if hot else 0)
        kind = "vale" if system.startswith("nmcompat-vale") else "raw"
        res = runner.pair(kind, "unicast", batch, size, count)
        summary = bench_vale.run_summary(res, kind, 1, batch)
        mpps = summary["out_mpps"]
        extra = {"errors": summary["errors"], "drop_pct": summary["drop_pct"],
                 "balanced": summary["balanced"], "batch": batch, "tx_bufs": HOT_BUFS if hot else 0}
    cpu = res["rx"]["proc_cpu_ns"] + res["tx"]["proc_cpu_ns"]
    got = res["rx"]["packets"]
    return dict(extra, mpps=mpps, packets=got, **side_cpu(res, got),
                sent=res["tx"]["packets"], cpu_ns=cpu)
