"""./run bench monitor: a pipe's throughput with a copy monitor beside the
same pipe unmonitored.

For each batch size, interleaved runs of two kinds move the same packets
with the pipe benchmark's C loops (nmcompat_bench.pipe: a receiver on
"bench}b<n>" and a sender on "bench{b<n>", pinned to two CPUs):

- plain: the receiver and the sender only, no monitor;
- monitored: a third process opens "bench}b<n>/r" (a copy monitor of the
  receiving end, unpinned) once the receiver is open, and drains it as fast
  as it fills; the receiver's own rxsyncs copy every frame into it.

The receiver's clock gives both rates; the report also says how many frames
the monitor saw (a copy monitor drops what does not fit, as netmap's).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from nmcompat_bench._common import CPU_HEAD, collect_worker, emit_report, fmt_cpu, stop_all
from nmcompat_bench.pipe import (RECEIVER, RESULT_FIELDS, SENDER, _WORKER_ENV, _best, _pick_cpus,
                                 _run_summary, machine_info)

DEFAULT_PACKETS, QUICK_PACKETS = 5_000_000, 200_000
DEFAULT_REPEAT = 3
DEFAULT_BATCHES = (64, 512)
NR_MONITOR_RX = 0x200


def _worker(argv) -> int:
    """python -m nmcompat_bench.monitor --worker RUNDIR PIPE_ID COUNT"""
    rundir, pipe_id, count = argv
    signal.signal(signal.SIGTERM, lambda *_: None)      # interrupts the C wait: report
    from nmcompat_bench._ffi import ffi, lib, os_error
    res = ffi.new("struct nmc_bench_result *")
    rc = lib.nmc_bench_pipe_monitor(rundir.encode(), b"bench", pipe_id.encode(), RECEIVER,
                                    NR_MONITOR_RX, int(count), sys.stdout.fileno(), res)
    if rc < 0:
        print(json.dumps({"error": os_error(-rc, "run", f"monitor of bench}}{pipe_id}").strerror}))
        return 1
    print("\n" + json.dumps({f: int(getattr(res, f)) for f in RESULT_FIELDS}))
    return 0


class Runner:
    """Starts the worker processes and ends them (by pid) whatever happens."""

    def __init__(self, rundir: str, cpus, timeout: float) -> None:
        self.rundir, self.cpus, self.timeout = rundir, cpus, timeout
        self.procs: list = []

    def _start(self, argv) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_WORKER_ENV)
        self.procs.append(proc)
        return proc

    def _end(self, role, pipe_id, batch, size, count) -> subprocess.Popen:
        cpu = self.cpus[0 if role == RECEIVER else 1] if self.cpus else -1
        return self._start(["nmcompat_bench.pipe", "--worker", "pipe", str(role),
                            f"{self.rundir}:{pipe_id}", str(batch), str(size), str(count), str(cpu)])

    def run(self, monitored: bool, pipe_id: str, batch: int, size: int, count: int) -> dict:
        try:
            rx = self._end(RECEIVER, pipe_id, batch, size, count)
            mon = None
            if monitored:
                mon = self._start(["nmcompat_bench.monitor", "--worker", self.rundir, pipe_id,
                                   str(count)])
                if mon.stdout.read(1) != "m":                # open: the sender may start
                    collect_worker(mon, "monitor", self.timeout)
                    raise RuntimeError("the monitor did not open")
            tx = self._end(SENDER, pipe_id, batch, size, count)
            res = {"rx": collect_worker(rx, f"receiver (batch {batch})", self.timeout),
                   "tx": collect_worker(tx, f"sender (batch {batch})", self.timeout)}
            if mon:
                mon.send_signal(signal.SIGTERM)             # done if it saw everything already
                res["monitor"] = collect_worker(mon, f"monitor (batch {batch})", self.timeout)
            return res
        finally:
            stop_all(self.procs)


def measure(rundir: str, batches, size: int, count: int, repeat: int, cpus, timeout: float) -> list:
    runner, rows, n = Runner(rundir, cpus, timeout), [], 0
    for batch in batches:
        runs: dict = {"plain": [], "monitored": []}
        seen = 0
        for _ in range(repeat):
            for kind in runs:
                n += 1
                res = runner.run(kind == "monitored", f"m{n}", batch, size, count)
                runs[kind].append(_run_summary(res, batch))
                seen += res.get("monitor", {}).get("packets", 0)
        plain, mon = _best(runs["plain"]), _best(runs["monitored"])
        rows.append({"batch": batch, "plain": plain, "monitored": mon,
                     "ratio": round(mon["mpps"] / plain["mpps"], 3) if plain["mpps"] else 0.0,
                     "monitor_seen": seen, "monitor_seen_share": round(seen / (count * repeat), 4)})
    return rows


def format_report(report: dict) -> str:
    m, c = report["machine"], report["conditions"]
    lines = [f"machine: Linux {m['kernel']}, {m['cpu']}, {m['nproc']} CPUs, "
             f"load {' '.join(str(x) for x in m['loadavg'])}",
             f"conditions: {c['size']}-byte frames, {c['packets']} packets per run, best of "
             f"{c['repeat']} interleaved runs; the monitor process is not pinned",
             "vs limit: / the plain pipe (the path's limit: the same pipe, unmonitored); "
             "tx ns, rx ns: the sender's and the receiver's process CPU time per packet received",
             "", f"batch | plain Mpps |{CPU_HEAD} | with /r monitor Mpps |{CPU_HEAD} | vs limit | "
             "frames the monitor saw",
             "------+------------+--------+--------+----------------------+--------+--------+"
             "----------+-----------------------"]
    for r in report["rows"]:
        p, mon = r["plain"], r["monitored"]
        lines.append(f"{r['batch']:5} | {p['mpps']:10.2f} | {fmt_cpu(p)} | {mon['mpps']:20.2f} | "
                     f"{fmt_cpu(mon)} | {r['ratio']:8.2f} | {100 * r['monitor_seen_share']:.1f} %")
    return "\n".join(lines)


def _parse(argv):
    ap = argparse.ArgumentParser(prog="./run bench monitor",
                                 description="pipe throughput with a copy monitor beside without")
    ap.add_argument("--packets", type=int, default=None,
                    help=f"packets per run (default {DEFAULT_PACKETS})")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_PACKETS} packets per run, once")
    ap.add_argument("--repeat", type=int, default=None, help=f"runs of each kind (default {DEFAULT_REPEAT})")
    ap.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)),
                    help="comma-separated batch sizes (default %(default)s)")
    ap.add_argument("--size", type=int, default=60, help="frame length (default 60)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    ap.add_argument("--rundir", metavar="DIR", default="/dev/shm",
                    help="where to make the private run directory (tmpfs; default /dev/shm)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the receiver and sender")
    args = ap.parse_args(argv)
    try:
        args.batches = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        ap.error("--batches takes integers, e.g. 64,512")
    if not args.batches or min(args.batches) < 1 or not 8 <= args.size <= 2048:
        ap.error("--batches needs sizes >= 1, --size 8..2048")
    args.packets = args.packets or (QUICK_PACKETS if args.quick else DEFAULT_PACKETS)
    args.repeat = args.repeat or (1 if args.quick else DEFAULT_REPEAT)
    if args.packets < 1 or args.repeat < 1:
        ap.error("--packets and --repeat must be positive")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    cpus = _pick_cpus(args.no_pin)
    report = {"command": "./run bench monitor " + " ".join(argv), "machine": machine_info(),
              "conditions": {"packets": args.packets, "repeat": args.repeat, "size": args.size,
                             "batches": args.batches, "cpus": cpus}}
    rundir = tempfile.mkdtemp(prefix=f"nmcompat-bench-{os.getpid()}-", dir=args.rundir)
    try:
        started = time.monotonic()
        report["rows"] = measure(rundir, args.batches, args.size, args.packets, args.repeat,
                                 cpus, 120 + args.packets / 1e5)
        report["seconds"] = round(time.monotonic() - started, 1)
    except RuntimeError as exc:
        print(f"bench-monitor: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
    emit_report(report, format_report(report), args.json)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(_worker(sys.argv[2:]))
    sys.exit(main())
