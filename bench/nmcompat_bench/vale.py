"""./run bench vale: VALE switch throughput beside bare copy rings.

For each row (frame size x traffic pattern x batch size), two pairs of
processes move the same frames:

- nmcompat: a receiver process opens the VALE ports "<sw>:r0" .. "<sw>:r<n-1>"
  and a sender process opens "<sw>:tx"; each makes one C call
  (nmc_bench_vale).  The sender fills up to `batch` TX slots (Ethernet header
  written once per buffer, a sequence number per frame) and txsyncs: the
  switch forwards in that txsync.  Unicast goes to r0, whose MAC the switch
  learned from one frame r0 sent first; broadcast goes to all n receiving
  ports.  The receiver drains every port (rxsync, check, release up to
  `batch`), sleeping in poll when they are all empty.  VALE never makes a
  sender wait: what does not fit in a receiving ring is dropped, and counted.
- raw ring: the same work on bare single-producer/single-consumer copy rings
  of the same geometry, one per receiving port, spinning instead of sleeping
  and never dropping (nmc_bench_copy_raw): the physical limit for this
  machine at this moment.

--tx-bufs N: both senders send from N of their 1024 buffers only (VALE: TX
slot j carries slot j mod N's buffer, NS_BUF_CHANGED), hot in the cache, as a
DPDK sender's mempool cache; the default cycles through all 1024 in ring order.

Every run checks its accounting: for each receiving port, frames received +
frames the switch dropped for it == frames sent, and no frame came out of
order.  Python only starts the processes, pins them to two CPUs and prints
the table; the run directory is private (under /dev/shm) and removed at the
end.
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

from nmcompat_bench.pipe import _WORKER_ENV, _on_sigterm, _pick_cpus, machine_info
from nmcompat_bench._common import (CPU_HEAD, collect_worker, fmt_cpu, mpps, process_cpu_ns,
                                    side_cpu, stop_all)

DEFAULT_PACKETS = 4_000_000
DEFAULT_REPEAT = 3
QUICK_PACKETS = 50_000
DEFAULT_SIZES = (60, 1514)
DEFAULT_BATCHES = (1, 64, 1024)
DEFAULT_MODES = ("unicast", "bcast3", "bcast7")
SLOTS = 1024


def _vale_buf_size() -> int:
    """A VALE port's buffer size (the copy ring takes the same, bench_vale.c);
    OptionError for a bad $NMCOMPAT_BUF_SIZE."""
    from nmcompat import config
    return config.vale_buf_size()


MIN_SIZE, MAX_PORTS = 22, 16        # Ethernet header + sequence number; NMC_BENCH_VALE_MAXPORTS
SCALARS = ("elapsed_ns", "start_ns", "end_ns", "cpu_ns", "packets", "errors", "batches", "syncs",
           "polls", "sleeps", "wakeups", "drains", "spins", "sw_sent", "sw_tx_dropped",
           "sw_forwarded", "sw_drops", "nports")
PER_PORT = ("port_packets", "port_gaps", "port_drops", "port_forwarded")
RECEIVER, SENDER = 1, 0
CPU_FIELDS = ("tx_cpu_ns_per_pkt", "rx_cpu_ns_per_pkt", "cpu_ns_per_pkt")


# -- one side of one measurement, in its own process -------------------------

def _worker(argv) -> int:
    """python -m nmcompat_bench.vale --worker KIND ROLE TARGET PORTS BCAST BATCH SIZE
    TX_BUFS COUNT CPU (one side of one run; prints its counters as one JSON line)"""
    kind, role, target, nports, bcast, batch, size, tx_bufs, count, cpu = argv
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if int(cpu) >= 0:
        os.sched_setaffinity(0, {int(cpu)})
    from nmcompat_bench._ffi import ffi, lib, os_error
    res = ffi.new("struct nmc_bench_vale_result *")
    args = (int(role), int(nports), int(bcast), int(batch), int(size), int(tx_bufs), int(count), res)
    cpu0 = process_cpu_ns()
    if kind == "vale":
        rundir, sw = target.rsplit(":", 1)
        what = f"VALE switch {sw} in {rundir}"
        rc = lib.nmc_bench_vale(rundir.encode(), sw.encode(), *args)
    else:
        what = f"copy rings {target}"
        rc = lib.nmc_bench_copy_raw(target.encode(), *args)
    cpu_ns = process_cpu_ns() - cpu0
    if rc < 0:
        print(json.dumps({"error": os_error(-rc, "run", what).strerror}))
        return 1
    out = {f: int(getattr(res, f)) for f in SCALARS}
    out["proc_cpu_ns"] = cpu_ns
    n = out["nports"] if int(role) == RECEIVER else 0
    out.update({f: [int(getattr(res, f)[i]) for i in range(n)] for f in PER_PORT})
    print(json.dumps(out))
    return 0


# -- orchestration --------------------------------------------------------------

def parse_mode(mode: str):
    """'unicast' -> (False, 1); 'bcastN' -> (True, N)."""
    if mode == "unicast":
        return False, 1
    if mode.startswith("bcast") and mode[5:].isdigit() and 1 <= int(mode[5:]) <= MAX_PORTS:
        return True, int(mode[5:])
    raise ValueError(mode)


def mode_label(mode: str) -> str:
    bcast, n = parse_mode(mode)
    return f"bcast to {n}" if bcast else "unicast"


class Runner:
    """Starts worker processes and ends them (by pid) whatever happens."""

    def __init__(self, rundir: str, cpus, timeout: float, tx_bufs: int = 0) -> None:
        self.rundir, self.cpus, self.timeout, self.tx_bufs = rundir, cpus, timeout, tx_bufs
        self.procs = []
        self.serial = 0

    def _start(self, kind, role, target, nports, bcast, batch, size, count) -> subprocess.Popen:
        cpu = self.cpus[0 if role == RECEIVER else 1] if self.cpus else -1
        argv = [sys.executable, "-m", "nmcompat_bench.vale", "--worker", kind, str(role),
                target, str(nports), str(int(bcast)), str(batch), str(size), str(self.tx_bufs),
                str(count), str(cpu)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_WORKER_ENV)
        self.procs.append(proc)
        return proc

    def _collect(self, proc, what: str) -> dict:
        return collect_worker(proc, what, self.timeout)

    def pair(self, kind: str, mode: str, batch: int, size: int, count: int) -> dict:
        """Receiver first, then sender; both results."""
        bcast, nports = parse_mode(mode)
        self.serial += 1
        if kind == "vale":
            target = f"{self.rundir}:valeb{self.serial}"     # a fresh switch every run
        else:
            target = os.path.join(self.rundir, f"copyring.{self.serial}")
        what = f"{kind} {mode} {size} B batch {batch}"
        rx = self._start(kind, RECEIVER, target, nports, bcast, batch, size, count)
        tx = self._start(kind, SENDER, target, nports, bcast, batch, size, count)
        try:
            return {"rx": self._collect(rx, f"{what}: receiver"),
                    "tx": self._collect(tx, f"{what}: sender")}
        finally:
            self.stop()

    def stop(self) -> None:
        stop_all(self.procs)


def _delivery_rate(rx: dict, tx: dict) -> float:
    """Deliveries per microsecond from the sender's first frame to the receiver's last
    (both CLOCK_MONOTONIC): a receiver that saw only a few batches cannot inflate it."""
    span = rx["end_ns"] - min(tx["start_ns"], rx["start_ns"])
    return rx["packets"] / span * 1e3 if rx["packets"] and span > 0 else 0.0


def _share(side: dict) -> float:
    span = side["end_ns"] - side["start_ns"]
    return round(min(side["cpu_ns"] / span, 9.99), 3) if span > 0 else 0.0


def nominal_batches(sent: int, batch: int) -> int:
    """Syncs a sender of `batch` makes: a 1024-slot ring holds 1023 frames at most."""
    per = min(batch, SLOTS - 1)
    return -(-sent // per)


def run_summary(res: dict, kind: str, nports: int, batch: int) -> dict:
    rx, tx = res["rx"], res["tx"]
    sent, received = tx["packets"], rx["packets"]
    drops = rx["sw_drops"] if kind == "vale" else 0
    port_drops = rx["port_drops"] if kind == "vale" else [0] * nports
    balanced = (len(rx["port_packets"]) == nports and sent * nports == received + drops and
                all(got + lost == sent for got, lost in zip(rx["port_packets"], port_drops)))
    if kind == "vale":
        balanced = (balanced and tx["sw_sent"] == sent and tx["sw_tx_dropped"] == 0 and
                    rx["port_forwarded"] == rx["port_packets"])
    nominal = nominal_batches(sent, batch)
    calls = sum(side[k] for side in (rx, tx) for k in ("wakeups", "sleeps", "drains"))
    expected = sent * nports
    return {"in_mpps": round(mpps(tx), 3), "out_mpps": round(_delivery_rate(rx, tx), 3),
            "tx_cpu_ns_per_frame": round(tx["cpu_ns"] / sent, 2) if sent else 0.0,
            # CPU time / wall time: well under 1 when the process was descheduled
            # (or, for the VALE receiver, asleep in poll)
            "tx_cpu_share": _share(tx), "rx_cpu_share": _share(rx),
            "sent": sent, "received": received, "drops": drops, "errors": rx["errors"],
            "drop_pct": round(100.0 * drops / expected, 3) if expected else 0.0,
            "balanced": balanced, "batches": nominal, "syscalls": calls,
            **side_cpu(res, received), "rx": rx, "tx": tx}


def best_of(runs: list) -> dict:
    """The run that delivered fastest (the least disturbed one), plus totals over all runs."""
    best = max(runs, key=lambda r: r["out_mpps"])
    batches = sum(r["batches"] for r in runs)
    calls = sum(r["syscalls"] for r in runs)
    return {"in_mpps": best["in_mpps"], "out_mpps": best["out_mpps"], "drop_pct": best["drop_pct"],
            "tx_cpu_ns_per_frame": best["tx_cpu_ns_per_frame"],
            **{k: best[k] for k in CPU_FIELDS},
            "out_mpps_runs": [r["out_mpps"] for r in runs],
            "errors": sum(r["errors"] for r in runs),
            "balanced": all(r["balanced"] for r in runs),
            "syscalls_per_batch": round(calls / batches, 4) if batches else 0.0,
            "runs": runs}


def rows_plan(sizes, modes, batches):
    return [(size, mode, batch) for size in sizes for mode in modes for batch in batches]


def measure(rundir: str, plan, count: int, repeat: int, cpus, timeout: float,
            progress=None, tx_bufs: int = 0) -> list:
    """For each row, `repeat` raw/VALE pairs of runs, interleaved so that a change
    of vCPU placement during the run hits both kinds alike."""
    runner = Runner(rundir, cpus, timeout, tx_bufs)
    rows = []
    try:
        for size, mode, batch in plan:
            bcast, nports = parse_mode(mode)
            runs = {"raw": [], "vale": []}
            for _ in range(repeat):
                for kind in runs:
                    res = runner.pair(kind, mode, batch, size, count)
                    runs[kind].append(run_summary(res, kind, nports, batch))
            raw, vale = best_of(runs["raw"]), best_of(runs["vale"])
            ratio = vale["out_mpps"] / raw["out_mpps"] if raw["out_mpps"] else 0.0
            rows.append({"size": size, "mode": mode, "broadcast": bcast, "ports": nports,
                         "batch": batch, "nmcompat": vale, "raw": raw, "ratio": round(ratio, 3)})
            if progress:
                progress(rows[-1])
    finally:
        runner.stop()
    return rows


# -- output -------------------------------------------------------------------------

def format_row(r: dict) -> str:
    v, raw = r["nmcompat"], r["raw"]
    return (f"{mode_label(r['mode']):10} | {r['size']:4} | {r['batch']:5} | {v['in_mpps']:7.2f} | "
            f"{v['out_mpps']:7.2f} | {v['drop_pct']:6.2f} | {fmt_cpu(v)} | "
            f"{raw['out_mpps']:7.2f} | {fmt_cpu(raw)} | {r['ratio']:8.2f} | "
            f"{v['syscalls_per_batch']:10.4f}")


def unaccounted(rows) -> list:
    """Rows where a frame went missing, came out of order or was counted twice."""
    return [r for r in rows
            if r["nmcompat"]["errors"] or r["raw"]["errors"]
            or not (r["nmcompat"]["balanced"] and r["raw"]["balanced"])]


def format_report(report: dict) -> str:
    m, c = report["machine"], report["conditions"]
    pin = (f"receiver on cpu {c['cpus'][0]}, sender on cpu {c['cpus'][1]}"
           if c["cpus"] else "not pinned")
    lines = [
        f"machine: Linux {m['kernel']}, {m['cpu']}, {m['nproc']} CPUs, "
        f"load {' '.join(str(x) for x in m['loadavg'])}",
        f"conditions: {c['packets']} frames per run, {c['slots']} slots x {c['buf_size']} B, "
        f"{pin}, spin {c['spin_us']} us, senders' buffers: "
        f"{'all, in ring order' if not c['tx_bufs'] else str(c['tx_bufs']) + ' hot ones'}",
        f"best of {c['repeat']} interleaved runs each (by out); in: frames/s into the switch "
        "(sender's clock), out: deliveries/s over all receiving ports (sender's first frame to "
        "receiver's last), in millions; tx ns, rx ns: the sender's and the receiver's process "
        "CPU time per frame delivered; vs limit: VALE out / the bare copy rings' out (no peer "
        "on this path; bench-compare has memif)",
        "",
        f"pattern    | size | batch | VALE in | VALE out| drop % |{CPU_HEAD} | raw out |{CPU_HEAD} | "
        "vs limit | sysc/batch",
        "-----------+------+-------+---------+---------+--------+--------+--------+---------+"
        "--------+--------+----------+-----------",
    ]
    lines += [format_row(r) for r in report["rows"]]
    bad = unaccounted(report["rows"])
    lines.append("")
    lines.append("accounting: " + ("sent == received + dropped on every port of every run, "
                                   "no frame out of order" if not bad else
                                   f"FAILED in {len(bad)} row(s)"))
    return "\n".join(lines)


def _int_list(text: str):
    return [int(x) for x in text.split(",") if x.strip()]


def _parse(argv):
    ap = argparse.ArgumentParser(prog="./run bench vale",
                                 description="VALE switch throughput beside bare copy rings")
    ap.add_argument("--packets", type=int, default=None,
                    help=f"frames per measurement (default {DEFAULT_PACKETS})")
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_PACKETS} frames per measurement, one run (a smoke test)")
    ap.add_argument("--repeat", type=int, default=None,
                    help=f"runs of each kind per row, best reported "
                         f"(default {DEFAULT_REPEAT}, 1 with --quick)")
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                    help="comma-separated frame lengths (default %(default)s)")
    ap.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)),
                    help="comma-separated batch sizes (default %(default)s; "
                         f"at most {SLOTS - 1} frames fit a TX ring)")
    ap.add_argument("--modes", default=",".join(DEFAULT_MODES),
                    help="comma-separated patterns: unicast, bcastN (broadcast to N receiving "
                         f"ports, 1..{MAX_PORTS}) (default %(default)s)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    ap.add_argument("--rundir", metavar="DIR", default="/dev/shm",
                    help="where to make the private run directory (tmpfs; default /dev/shm)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the two processes")
    ap.add_argument("--tx-bufs", type=int, default=0,
                    help="both senders send from this many buffers only, hot (batch <= N < "
                         f"{SLOTS}); default 0: all {SLOTS}, in ring order")
    args = ap.parse_args(argv)
    try:
        args.sizes, args.batches = _int_list(args.sizes), _int_list(args.batches)
    except ValueError:
        ap.error("--sizes and --batches take integers, e.g. 60,1514")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    try:
        for m in args.modes:
            parse_mode(m)
    except ValueError as exc:
        ap.error(f"--modes: unknown pattern {exc} (unicast, bcast1..bcast{MAX_PORTS})")
    if not args.batches or min(args.batches) < 1:
        ap.error("--batches needs sizes >= 1")
    try:
        args.buf_size = _vale_buf_size()
    except ValueError as exc:           # OptionError: a bad NMCOMPAT_BUF_SIZE
        ap.error(str(exc))
    if not args.sizes or not all(MIN_SIZE <= s <= args.buf_size for s in args.sizes):
        ap.error(f"--sizes must be {MIN_SIZE}..{args.buf_size} "
                 "(an Ethernet header and an 8-byte sequence number)")
    if not args.modes:
        ap.error("--modes needs at least one pattern")
    if args.tx_bufs and not min(max(args.batches), SLOTS - 1) <= args.tx_bufs < SLOTS:
        ap.error(f"--tx-bufs must be 0 or from the largest batch to {SLOTS - 1}")
    args.packets = args.packets or (QUICK_PACKETS if args.quick else DEFAULT_PACKETS)
    args.repeat = args.repeat or (1 if args.quick else DEFAULT_REPEAT)
    if args.packets < 1 or args.repeat < 1:
        ap.error("--packets and --repeat must be positive")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    # [receiver, sender]: the receiver on the second CPU, as bench-compare places it
    cpus = _pick_cpus(args.no_pin)[::-1]
    report = {
        "command": "./run bench vale " + " ".join(argv),
        "machine": machine_info(),
        "conditions": {"packets": args.packets, "repeat": args.repeat, "sizes": args.sizes,
                       "batches": args.batches, "modes": args.modes, "slots": SLOTS,
                       "buf_size": args.buf_size, "cpus": cpus,
                       "spin_us": int(os.environ.get("NMCOMPAT_SPIN_US", "20")),
                       "tx_bufs": args.tx_bufs},
    }
    # generous: a stalled side gives up by itself after 30 s without progress
    timeout = 120 + args.packets / 2e4
    table_out = sys.stderr if args.json == "-" else sys.stdout
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    rundir = tempfile.mkdtemp(prefix=f"nmcompat-bench-vale-{os.getpid()}-", dir=args.rundir)
    try:
        started = time.monotonic()
        report["rows"] = measure(rundir, rows_plan(args.sizes, args.modes, args.batches),
                                 args.packets, args.repeat, cpus, timeout, tx_bufs=args.tx_bufs)
        report["seconds"] = round(time.monotonic() - started, 1)
    except RuntimeError as exc:
        print(f"bench-vale: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-vale: interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
        signal.signal(signal.SIGTERM, old_term)
    print(format_report(report), file=table_out)
    if args.json == "-":
        print(json.dumps(report, indent=2))
    elif args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    if unaccounted(report["rows"]):
        print("bench-vale: some frames are not accounted for (see the JSON)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(_worker(sys.argv[2:]))
    sys.exit(main())
