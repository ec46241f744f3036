"""./run bench vale-cost: the CPU cost of VALE forwarding per frame, in one thread.

Each run opens "<sw>:tx" and "<sw>:r0" on a fresh switch in one thread
(nmc_bench_vale_cost) and, `batch` frames at a time, sends, forwards (the
switch's work runs in txsync), receives and checks every frame.  Nothing may
drop and every frame must arrive in order.  The figure is the thread's CPU
time per frame: other load on the machine delays the thread but hardly
changes it, so two builds can be compared on a busy machine (alternate the
runs, compare the minimum and the median).  It leaves out what two processes
add (cross-core transfers, wake-ups): bench-vale measures that.

--tx-bufs N sends from N of the TX ring's buffers only (slot j carries slot
j mod N's buffer, set once with NS_BUF_CHANGED), hot in the cache as a DPDK
sender's mempool cache keeps its mbufs; the default, 0, cycles through the
whole ring's buffers in ring order, as a netmap sender does.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

from nmcompat_bench.pipe import machine_info

DEFAULT_PACKETS, QUICK_PACKETS = 2_000_000, 20_000
DEFAULT_ROUNDS = 7
DEFAULT_SIZES = (60, 1514)
DEFAULT_BATCHES = (64,)


def one_run(rundir: str, sw: str, batch: int, size: int, count: int, tx_bufs: int = 0) -> dict:
    from nmcompat_bench._ffi import ffi, lib, os_error
    res = ffi.new("struct nmc_bench_vale_cost *")
    rc = lib.nmc_bench_vale_cost(rundir.encode(), sw.encode(), batch, size, tx_bufs, count, res)
    if rc < 0:
        raise os_error(-rc, "run", f"VALE switch {sw} in {rundir}")
    return {f: int(getattr(res, f)) for f in ("cpu_ns", "sent", "packets", "errors", "drops")}


def measure(rundir: str, sizes, batches, count: int, rounds: int, tx_bufs: int = 0) -> list:
    rows, serial = [], 0
    for size in sizes:
        for batch in batches:
            runs = []
            for _ in range(rounds):
                serial += 1
                runs.append(one_run(rundir, f"valec{serial}", batch, size, count, tx_bufs))
            ns = [r["cpu_ns"] / r["sent"] for r in runs]
            rows.append({"size": size, "batch": batch, "runs": runs,
                         "ns_min": round(min(ns), 2), "ns_median": round(statistics.median(ns), 2),
                         "accounted": all(r["packets"] == r["sent"] == count and r["errors"] == 0
                                          and r["drops"] == 0 for r in runs)})
    return rows


def format_report(report: dict) -> str:
    lines = [f"VALE forwarding cost in one thread ({report['conditions']['packets']} frames a run, "
             f"{report['conditions']['rounds']} runs, CPU {report['conditions']['cpu']}, "
             f"TX buffers: {report['conditions']['tx_bufs']})",
             "size | batch | ns/frame min | median | all frames in order, none dropped"]
    for r in report["rows"]:
        lines.append(f"{r['size']:4} | {r['batch']:5} | {r['ns_min']:12.1f} | {r['ns_median']:6.1f} | "
                     f"{'yes' if r['accounted'] else 'NO'}")
    return "\n".join(lines)


def _int_list(text: str):
    return [int(x) for x in text.split(",") if x.strip()]


def _parse(argv):
    ap = argparse.ArgumentParser(prog="./run bench vale-cost", description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=0, help=f"frames per run (default {DEFAULT_PACKETS})")
    ap.add_argument("--rounds", type=int, default=0, help=f"runs per row (default {DEFAULT_ROUNDS})")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_PACKETS} frames, one run (a smoke test)")
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                    help="comma-separated frame lengths (default %(default)s)")
    ap.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)),
                    help="comma-separated batch sizes, 1..511: the receiver's slots go back at its "
                         "next rxsync, after the next batch is sent, so two batches must fit the "
                         "ring's 1023 (default %(default)s)")
    ap.add_argument("--tx-bufs", type=int, default=0,
                    help="send from this many TX buffers only, hot (batch <= N < 1024); "
                         "default 0: all of the ring's, in ring order")
    ap.add_argument("--cpu", type=int, default=-1, help="pin to this CPU (default: not pinned)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    ap.add_argument("--rundir", default="/dev/shm", help="where to make the private run directory")
    args = ap.parse_args(argv)
    try:
        args.sizes, args.batches = _int_list(args.sizes), _int_list(args.batches)
    except ValueError:
        ap.error("--sizes and --batches take integers, e.g. 60,1514")
    args.packets = args.packets or (QUICK_PACKETS if args.quick else DEFAULT_PACKETS)
    args.rounds = args.rounds or (1 if args.quick else DEFAULT_ROUNDS)
    if args.packets < 1 or args.rounds < 1 or not args.sizes or not args.batches:
        ap.error("--packets, --rounds, --sizes and --batches must be positive")
    if min(args.sizes) < 22 or max(args.sizes) > 2048:
        ap.error("--sizes must be 22..2048 (an Ethernet header and a sequence number, one buffer)")
    if min(args.batches) < 1 or max(args.batches) > 511:
        ap.error("--batches must be 1..511 (two batches in the 1023 slots of the receiving ring)")
    if args.tx_bufs and not max(args.batches) <= args.tx_bufs <= 1023:
        ap.error("--tx-bufs must be 0 or from the largest batch to 1023")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    report = {"command": "./run bench vale-cost " + " ".join(argv), "machine": machine_info(),
              "conditions": {"packets": args.packets, "rounds": args.rounds, "sizes": args.sizes,
                             "batches": args.batches, "cpu": args.cpu if args.cpu >= 0 else "not pinned",
                             "tx_bufs": args.tx_bufs or "ring order"}}
    rundir = tempfile.mkdtemp(prefix=f"nmcompat-bench-vale-cost-{os.getpid()}-", dir=args.rundir)
    try:
        report["rows"] = measure(rundir, args.sizes, args.batches, args.packets, args.rounds, args.tx_bufs)
    except OSError as exc:
        print(f"bench-vale-cost: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
    print(format_report(report), file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json == "-":
        print(json.dumps(report, indent=2))
    elif args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    if not all(r["accounted"] for r in report["rows"]):
        print("bench-vale-cost: some frames were lost, repeated or out of order", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
