"""./run bench controlplane: netmap pipes and VALE ports opened and closed per second.

For each kind of port and each N, the benchmark first opens N ports and keeps
them open, then opens and closes one more port as many times as it can for
`--seconds` (or `--cycles` times), through ``nmcompat.open()`` and
``Port.close()``, in one process:

- vale: N ports ``valecp:bg<i>`` on the switch, and the measured port
  ``valecp:x`` on that same switch (each VALE port has a region of its own);
- pipe: N pipes, each with its master end open, in parents ``cpbg<k>`` of at
  most 50 pipes (netmap allows 64 per parent); the measured pipe is
  ``netmap:cpbg0{x`` in the first parent, whose region holds min(N, 50) pipes.

One cycle is one open and one close; opens/s is cycles per second.  The
open and close columns are the mean times of each.  Figures, never
assertions: the targets (>= 2,000 opens/s, and the same rate with 200 ports
as with 1) are read off the table.  The run directory is private (under
/dev/shm, or --rundir) and removed at the end.  The last line is the result as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time

# importing nmcompat loads numpy: keep its BLAS from starting threads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import nmcompat  # noqa: E402

PIPES_PER_PARENT = 50
BG_SLOTS = 64               # small rings for the background pipes, so 50 fit a region
DEFAULT_PORTS = (1, 200)


def _background(kind: str, n: int, rundir: str) -> list:
    if kind == "vale":
        return [nmcompat.open(f"valecp:bg{i}", rundir=rundir) for i in range(n)]
    return [nmcompat.open(f"netmap:cpbg{i // PIPES_PER_PARENT}{{{i % PIPES_PER_PARENT}",
                          rundir=rundir, slots=BG_SLOTS) for i in range(n)]


def _measured_name(kind: str) -> str:
    return "valecp:x" if kind == "vale" else "netmap:cpbg0{x"


def measure(kind: str, n: int, rundir: str, seconds: float, cycles: int) -> dict:
    """Open N ports of `kind`, then open and close one more, repeatedly."""
    held = _background(kind, n, rundir)
    name = _measured_name(kind)
    opens, closes = [], []
    clock = time.perf_counter_ns
    try:
        nmcompat.open(name, rundir=rundir).close()          # warm-up
        start = clock()
        deadline = start + int(seconds * 1e9)
        while (len(opens) < cycles) if cycles else (clock() < deadline):
            t0 = clock()
            port = nmcompat.open(name, rundir=rundir)
            t1 = clock()
            port.close()
            t2 = clock()
            opens.append(t1 - t0)
            closes.append(t2 - t1)
        elapsed = clock() - start
    finally:
        for port in held:
            port.close()
    return {"kind": kind, "ports": n, "cycles": len(opens), "elapsed_s": elapsed / 1e9,
            "opens_per_s": len(opens) / (elapsed / 1e9),
            "open_us": statistics.fmean(opens) / 1e3, "close_us": statistics.fmean(closes) / 1e3}


def _raise_fd_limit(ports: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 64 + 8 * ports
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            raise SystemExit(f"couldn't hold {ports} ports open: the open-files limit is {hard} "
                             f"(needs about {want}; raise it with ulimit -n)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _table(rows: list) -> str:
    lines = [f"{'kind':5} {'N':>5} {'opens/s':>9} {'open us':>8} {'close us':>9} {'cycles':>7}"]
    for r in rows:
        lines.append(f"{r['kind']:5} {r['ports']:>5} {r['opens_per_s']:>9.0f} {r['open_us']:>8.1f} "
                     f"{r['close_us']:>9.1f} {r['cycles']:>7}")
    return "\n".join(lines)


def _ratios(rows: list, ports: list) -> dict:
    """opens/s with the largest N over opens/s with the smallest, per kind."""
    out = {}
    lo, hi = min(ports), max(ports)
    for kind in {r["kind"] for r in rows}:
        rate = {r["ports"]: r["opens_per_s"] for r in rows if r["kind"] == kind}
        if lo != hi and rate.get(lo):
            out[kind] = rate[hi] / rate[lo]
    return out


def _parse(argv):
    ap = argparse.ArgumentParser(prog="./run bench controlplane", description=__doc__.split("\n")[0])
    ap.add_argument("--kinds", default="pipe,vale", help="comma-separated: pipe, vale (default both)")
    ap.add_argument("--ports", default=",".join(map(str, DEFAULT_PORTS)),
                    help="comma-separated numbers of ports already open (default 1,200)")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement (default 3)")
    ap.add_argument("--cycles", type=int, default=0, help="a fixed number of cycles instead of --seconds")
    ap.add_argument("--quick", action="store_true", help="tiny counts, to check the program works")
    ap.add_argument("--rundir", default="/dev/shm",
                    help="where the private run directory is made (tmpfs; default /dev/shm)")
    args = ap.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    bad = [k for k in kinds if k not in ("pipe", "vale")]
    if bad or not kinds:
        ap.error(f"--kinds: unknown kind {bad[0] if bad else '(none)'!r}; use pipe, vale")
    try:
        ports = [int(p) for p in args.ports.split(",") if p]
    except ValueError:
        ap.error(f"--ports: {args.ports!r} is not a list of numbers")
    if not ports or min(ports) < 0 or max(ports) > 250:
        ap.error("--ports: each N must be 0..250 (a switch has 254 ports, two kept free)")
    if args.seconds <= 0 or args.cycles < 0:
        ap.error("--seconds must be > 0 and --cycles >= 0")
    if args.quick:
        args.cycles = args.cycles or 20
    return kinds, ports, args


def main(argv=None) -> int:
    kinds, ports, args = _parse(sys.argv[1:] if argv is None else argv)
    _raise_fd_limit(max(ports))
    rundir = tempfile.mkdtemp(prefix="nmc-bench-cp-", dir=args.rundir)
    os.chmod(rundir, 0o700)
    rows = []
    try:
        for kind in kinds:
            for n in ports:
                rows.append(measure(kind, n, rundir, args.seconds, args.cycles))
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
    ratios = _ratios(rows, ports)
    print(f"control plane: ports opened and closed per second, one process, "
          f"{os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}")
    print(_table(rows))
    for kind, ratio in sorted(ratios.items()):
        print(f"{kind}: opens/s with N={max(ports)} / with N={min(ports)} = {ratio:.2f}")
    print("RESULT " + json.dumps({"rows": rows, "ratio": ratios}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
