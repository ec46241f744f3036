"""./run bench: netmap pipe throughput beside a bare shared-memory ring.

For each batch size, two pairs of processes move the same packets:

- nmcompat: a receiver on "bench}b<n>" and a sender on "bench{b<n>", each one
  C call (nmc_bench_pipe) running pkt-gen's loops: fill up to `batch` TX
  slots (a sequence number written into each frame), txsync, poll for
  POLLOUT when full / rxsync, poll for POLLIN when empty, check and release
  up to `batch` slots;
- raw ring: the same work on a bare single-producer/single-consumer ring of
  the same geometry that spins instead of sleeping (nmc_bench_raw), the
  physical limit for this machine at this moment;
- with --shape, also the netmap-shaped ring: that bare ring driven in
  netmap's two-ring shape (nmc_bench_shape: the sender's own TX slots copied
  to the shared ones at each "txsync", the writer's index read afresh at
  each "rxsync"; no checks, no owner, no wakeups), the floor of the API.

The receiver's clock (first packet to last) gives the rate.  Python only
starts the processes, pins them to two CPUs and prints the table; the run
directory is private (under /dev/shm) and removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from nmcompat_bench._common import (CPU_HEAD, collect_worker, emit_report, fmt_cpu, mpps,
                                    process_cpu_ns, side_cpu, stop_all)

DEFAULT_PACKETS = 10_000_000
DEFAULT_REPEAT = 3
QUICK_PACKETS = 200_000
DEFAULT_BATCHES = (1, 64, 512)
SLOTS, BUF_SIZE = 1024, 2048
RESULT_FIELDS = ("elapsed_ns", "start_ns", "end_ns", "packets", "errors", "batches",
                 "syncs", "polls", "sleeps", "wakeups", "drains", "spins")
CPU_FIELDS = ("tx_cpu_ns_per_pkt", "rx_cpu_ns_per_pkt", "cpu_ns_per_pkt")
RECEIVER, SENDER = 1, 0         # roles: the pipe's slave receives, its master sends
PIPE_KINDS = ("pipe", "pipe_nots")  # the second opened with no_timestamp
# importing the package loads numpy: keep its BLAS from starting threads on our CPUs
_WORKER_ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


# -- one side of one measurement, in its own process -------------------------

def _worker(argv) -> int:
    """python -m nmcompat_bench.pipe --worker KIND ROLE TARGET BATCH SIZE COUNT CPU"""
    kind, role, target, batch, size, count, cpu = argv
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if int(cpu) >= 0:
        os.sched_setaffinity(0, {int(cpu)})
    from nmcompat_bench._ffi import ffi, lib, os_error
    res = ffi.new("struct nmc_bench_result *")
    cpu0 = process_cpu_ns()
    if kind in PIPE_KINDS:
        rundir, pipe_id = target.rsplit(":", 1)
        what = f"pipe bench{'}' if int(role) == RECEIVER else '{'}{pipe_id} in {rundir}"
        flags = lib.NMC_BENCH_NO_TIMESTAMP if kind == "pipe_nots" else 0
        rc = lib.nmc_bench_pipe(rundir.encode(), b"bench", pipe_id.encode(), int(role),
                                int(batch), int(size), int(count), flags, res)
    else:
        what = f"{kind} ring {target}"
        if kind == "raw":
            rc = lib.nmc_bench_raw(target.encode(), int(role), int(batch), int(size), int(count), res)
        else:
            rc = lib.nmc_bench_shape(target.encode(), int(role), int(batch), int(size), int(count),
                                     int(kind == "shape_ts"), res)
    cpu_ns = process_cpu_ns() - cpu0
    if rc < 0:
        print(json.dumps({"error": os_error(-rc, "run", what).strerror}))
        return 1
    print(json.dumps(dict({f: int(getattr(res, f)) for f in RESULT_FIELDS}, proc_cpu_ns=cpu_ns)))
    return 0


# -- orchestration --------------------------------------------------------------

class Runner:
    """Starts worker processes and ends them (by pid) whatever happens."""

    def __init__(self, rundir: str, cpus, timeout: float) -> None:
        self.rundir, self.cpus, self.timeout = rundir, cpus, timeout
        self.procs = []

    def _start(self, kind, role, target, batch, size, count) -> subprocess.Popen:
        cpu = self.cpus[0 if role == RECEIVER else 1] if self.cpus else -1
        argv = [sys.executable, "-m", "nmcompat_bench.pipe", "--worker", kind,
                str(role), target, str(batch), str(size), str(count), str(cpu)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_WORKER_ENV)
        self.procs.append(proc)
        return proc

    def _collect(self, proc, what: str) -> dict:
        return collect_worker(proc, what, self.timeout)

    def pair(self, kind: str, batch: int, size: int, count: int) -> dict:
        """Receiver first, then sender; both results."""
        if kind in PIPE_KINDS:
            target = f"{self.rundir}:{'n' if kind == 'pipe_nots' else ''}b{batch}"
        else:
            target = os.path.join(self.rundir, f"{kind}.b{batch}")
        rx = self._start(kind, RECEIVER, target, batch, size, count)
        tx = self._start(kind, SENDER, target, batch, size, count)
        try:
            return {"rx": self._collect(rx, f"{kind} receiver (batch {batch})"),
                    "tx": self._collect(tx, f"{kind} sender (batch {batch})")}
        finally:
            self.stop()

    def stop(self) -> None:
        stop_all(self.procs)


def _run_summary(res: dict, batch: int) -> dict:
    rx, tx = res["rx"], res["tx"]
    nominal = -(-tx["packets"] // batch)               # batches of `batch` packets
    calls = rx["sleeps"] + rx["wakeups"] + tx["sleeps"] + tx["wakeups"]
    return {"mpps": round(mpps(rx), 3), "packets": rx["packets"], "errors": rx["errors"],
            "sent": tx["packets"], "elapsed_ns": rx["elapsed_ns"], "batches": nominal,
            "syscalls": calls, **side_cpu(res, rx["packets"]), "rx": rx, "tx": tx}


def _ratio(a: dict, b: dict) -> float:
    return round(a["mpps"] / b["mpps"], 3) if b["mpps"] else 0.0


def _best(runs: list) -> dict:
    """The fastest run's rate (the least disturbed one), plus totals over all runs."""
    batches = sum(r["batches"] for r in runs)
    calls = sum(r["syscalls"] for r in runs)
    best = max(runs, key=lambda r: r["mpps"])
    return {"mpps": best["mpps"], "mpps_runs": [r["mpps"] for r in runs],
            **{k: best[k] for k in CPU_FIELDS},
            "errors": sum(r["errors"] for r in runs),
            "syscalls_per_batch": round(calls / batches, 4) if batches else 0.0,
            "runs": runs}


def measure(rundir: str, batches, size: int, count: int, repeat: int, cpus,
            timeout: float, shape: bool = False) -> list:
    """For each batch size, `repeat` raw/pipe (and shape) rounds of runs,
    interleaved so that a change of vCPU placement during the run hits every
    kind alike."""
    runner = Runner(rundir, cpus, timeout)
    rows = []
    try:
        for batch in batches:
            runs = {"raw": [], "pipe": [],
                    **({"shape_ts": [], "shape": [], "pipe_nots": []} if shape else {})}
            for _ in range(repeat):
                for kind in runs:
                    runs[kind].append(_run_summary(runner.pair(kind, batch, size, count), batch))
            raw, pipe = _best(runs["raw"]), _best(runs["pipe"])
            row = {"batch": batch, "nmcompat": pipe, "raw": raw, "ratio": _ratio(pipe, raw)}
            if shape:
                for kind in ("shape_ts", "shape", "pipe_nots"):
                    row[kind] = _best(runs[kind])
                row["vs_shape_ts"] = _ratio(pipe, row["shape_ts"])
                row["vs_shape"] = _ratio(row["pipe_nots"], row["shape"])
            rows.append(row)
    finally:
        runner.stop()
    return rows


# -- machine, conditions, output ------------------------------------------------

def _cpu_model() -> str:
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.processor() or "unknown"
    model = fields.get("model name", platform.processor() or "unknown")
    if "cpu family" in fields and "model" in fields:
        model += f" (family {fields['cpu family']} model {fields['model']})"
    return model


def machine_info() -> dict:
    return {"kernel": platform.release(), "cpu": _cpu_model(),
            "nproc": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def format_report(report: dict) -> str:
    m, c = report["machine"], report["conditions"]
    pin = (f"receiver on cpu {c['cpus'][0]}, sender on cpu {c['cpus'][1]}"
           if c["cpus"] else "not pinned")
    shaped = any("shape" in r for r in report["rows"])
    lines = [
        f"machine: Linux {m['kernel']}, {m['cpu']}, {m['nproc']} CPUs, "
        f"load {' '.join(str(x) for x in m['loadavg'])}",
        f"conditions: {c['size']}-byte frames, {c['packets']} packets per run, "
        f"{c['slots']} slots x {c['buf_size']} B, {pin}, spin {c['spin_us']} us",
        f"best of {c['repeat']} interleaved runs each; Mpps from the receiver's clock; "
        "vs limit: / the raw ring (no peer on this path); tx ns, rx ns: the sender's and the "
        "receiver's process CPU time per packet received"
        + ("; shape+ts: the raw ring in netmap's two-ring shape with netmap's default ring->ts "
           "stamp at each rxsync, vs shape+ts: nmcompat / it; no-ts: nmcompat opened with "
           "no_timestamp, vs shape: it / the shape without stamps" if shaped else ""),
        "",
        f"batch | nmcompat Mpps |{CPU_HEAD} | raw ring Mpps |{CPU_HEAD} | vs limit | syscalls/batch"
        + (" | shape+ts Mpps | vs shape+ts | no-ts Mpps | shape Mpps | vs shape" if shaped else ""),
        "------+---------------+--------+--------+---------------+--------+--------+----------+"
        "---------------"
        + ("+---------------+-------------+------------+------------+---------" if shaped else ""),
    ]
    for r in report["rows"]:
        n, raw = r["nmcompat"], r["raw"]
        line = (f"{r['batch']:5} | {n['mpps']:13.2f} | {fmt_cpu(n)} | {raw['mpps']:13.2f} | "
                f"{fmt_cpu(raw)} | {r['ratio']:8.2f} | {n['syscalls_per_batch']:14.4f}")
        if "shape" in r:
            line += (f" | {r['shape_ts']['mpps']:13.2f} | {r['vs_shape_ts']:11.2f}"
                     f" | {r['pipe_nots']['mpps']:10.2f} | {r['shape']['mpps']:10.2f}"
                     f" | {r['vs_shape']:8.2f}")
        lines.append(line)
    return "\n".join(lines)


def _parse(argv):
    ap = argparse.ArgumentParser(prog="./run bench pipe",
                                 description="netmap pipe throughput beside a raw ring")
    ap.add_argument("--packets", type=int, default=None,
                    help=f"packets per measurement (default {DEFAULT_PACKETS})")
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_PACKETS} packets per measurement (a smoke test)")
    ap.add_argument("--repeat", type=int, default=None,
                    help=f"runs of each kind per batch size, best reported "
                         f"(default {DEFAULT_REPEAT}, 1 with --quick)")
    ap.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)),
                    help="comma-separated batch sizes (default %(default)s)")
    ap.add_argument("--size", type=int, default=60, help="frame length (default 60)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    ap.add_argument("--rundir", metavar="DIR", default="/dev/shm",
                    help="where to make the private run directory (tmpfs; default /dev/shm)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the two processes")
    ap.add_argument("--shape", action="store_true",
                    help="also run the raw ring in netmap's two-ring shape (the API's floor), "
                         "with and without ring->ts stamps, and nmcompat without stamps")
    args = ap.parse_args(argv)
    try:
        args.batches = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        ap.error("--batches takes integers, e.g. 1,64,512")
    if not args.batches or min(args.batches) < 1:
        ap.error("--batches needs sizes >= 1")
    if not 8 <= args.size <= BUF_SIZE:
        ap.error(f"--size must be 8..{BUF_SIZE} (the sequence number takes 8 bytes)")
    args.packets = args.packets or (QUICK_PACKETS if args.quick else DEFAULT_PACKETS)
    args.repeat = args.repeat or (1 if args.quick else DEFAULT_REPEAT)
    if args.packets < 1 or args.repeat < 1:
        ap.error("--packets and --repeat must be positive")
    return args


def _pick_cpus(no_pin: bool):
    cpus = sorted(os.sched_getaffinity(0))
    return [] if no_pin or len(cpus) < 2 else cpus[:2]


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    cpus = _pick_cpus(args.no_pin)
    report = {
        "command": "./run bench pipe " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "machine": machine_info(),
        "conditions": {"packets": args.packets, "repeat": args.repeat, "size": args.size,
                       "batches": args.batches, "shape": args.shape, "slots": SLOTS, "buf_size": BUF_SIZE, "cpus": cpus,
                       "spin_us": int(os.environ.get("NMCOMPAT_SPIN_US", "20"))},
    }
    # generous: a stalled side gives up by itself after 30 s without progress
    timeout = 120 + args.packets / 1e5
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    rundir = tempfile.mkdtemp(prefix=f"nmcompat-bench-{os.getpid()}-", dir=args.rundir)
    try:
        started = time.monotonic()
        report["rows"] = measure(rundir, args.batches, args.size, args.packets, args.repeat,
                                 cpus, timeout, shape=args.shape)
        report["seconds"] = round(time.monotonic() - started, 1)
    except RuntimeError as exc:
        print(f"bench-pipe: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-pipe: interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
        signal.signal(signal.SIGTERM, old_term)
    emit_report(report, format_report(report), args.json)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(_worker(sys.argv[2:]))
    sys.exit(main())
