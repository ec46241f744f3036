"""./run bench devnetmap: the /dev/netmap emulation against the engine's own C API.

One pkt-gen-style loop over a netmap pipe in one process (bench/devnetmap/
pipe_loop.c: BATCH 60-byte frames into the master's TX ring, txsync, rxsync
the slave, each frame's sequence number checked), built twice: against
netmap's own interface (open /dev/netmap, NIOCCTRL, mmap, ioctl syncs; run
under `nmcompat exec`) and against nmcompat.h (nmc_txsync, nmc_rxsync).  The
two alternate, `--rounds` times per batch size, each for `--seconds`; the
table gives each one's median Mpps and the median of the per-round ratios
(netmap interface / engine API; the engine's API is this path's limit, the
emulation only adds to it), and the CPU time per frame of the one process
(sender and receiver alike, CLOCK_PROCESS_CPUTIME_ID over the loop).
Figures, never assertions: the target
(>= 0.9) is read off the table.  The run directory is private (under
/dev/shm, or --rundir) and removed at the end.  The last line is the result
as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import nmcompat

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCE = Path(__file__).resolve().parent.parent / "devnetmap" / "pipe_loop.c"
PACKAGE = Path(nmcompat.__file__).resolve().parent
INCLUDE = ROOT / "csrc" / "include"


def build(work: Path) -> dict:
    """Both programs, or SystemExit naming what failed."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SystemExit("./run bench devnetmap: no C compiler (cc)")
    out = {"netmap": work / "pipe_loop_netmap", "engine": work / "pipe_loop_engine"}
    cmds = {
        "netmap": [cc, "-O2", "-DUSE_NETMAP_FD", f"-I{INCLUDE}", str(SOURCE), "-o", str(out["netmap"])],
        "engine": [cc, "-O2", f"-I{INCLUDE}", str(SOURCE), "-o", str(out["engine"]), f"-L{PACKAGE}",
                   "-lnmcompat", f"-Wl,-rpath,{PACKAGE}"],
    }
    for what, cmd in cmds.items():
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"./run bench devnetmap: couldn't build the {what} loop: {proc.stderr[-800:]}")
    return out


def run_one(kind: str, exe: Path, parent: str, batch: int, seconds: float, rundir: str) -> tuple:
    """Mpps and CPU ns per frame of one run."""
    env = dict(os.environ, NMCOMPAT_RUNDIR=rundir)
    cmd = [str(exe), parent, str(batch), str(seconds)]
    if kind == "netmap":
        cmd = [sys.executable, "-m", "nmcompat.tools", "exec", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60 + 4 * seconds)
    if proc.returncode != 0:
        raise SystemExit(f"./run bench devnetmap: the {kind} loop failed: {proc.stderr[-800:]}")
    words = proc.stdout.split()
    frames = int(words[1])
    return frames / float(words[3]) / 1e6, float(words[5]) * 1e9 / frames if frames else None


def measure(exes: dict, batches: list, rounds: int, seconds: float, rundir: str) -> list:
    rows = []
    for batch in batches:
        runs = {"netmap": [], "engine": []}
        cpu = {"netmap": [], "engine": []}
        for r in range(rounds):
            order = ("netmap", "engine") if r % 2 == 0 else ("engine", "netmap")
            for kind in order:
                mpps, ns = run_one(kind, exes[kind], f"dnb{batch}r{r}{kind[0]}", batch, seconds, rundir)
                runs[kind].append(mpps)
                cpu[kind].append(ns)
        ratios = [a / b for a, b in zip(runs["netmap"], runs["engine"])]
        rows.append({"batch": batch, "netmap_mpps": statistics.median(runs["netmap"]),
                     "engine_mpps": statistics.median(runs["engine"]), "ratio": statistics.median(ratios),
                     **{f"{k}_cpu_ns_per_pkt": _median_cpu(cpu[k]) for k in cpu},
                     "netmap_runs": runs["netmap"], "engine_runs": runs["engine"]})
    return rows


def _median_cpu(values: list):
    """The median CPU ns per frame of the runs that moved frames (None if none did)."""
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def _cpu(value) -> str:
    return f"{value:>14.1f}" if value is not None else f"{'n/a':>14}"


def _parse(argv):
    ap = argparse.ArgumentParser(prog="./run bench devnetmap", description=__doc__.split("\n")[0])
    ap.add_argument("--batches", default="512,64,1", help="comma-separated batch sizes (default 512,64,1)")
    ap.add_argument("--rounds", type=int, default=5, help="alternated runs of each loop per batch (default 5)")
    ap.add_argument("--seconds", type=float, default=1.0, help="time per run (default 1)")
    ap.add_argument("--quick", action="store_true", help="one short round, to check the program works")
    ap.add_argument("--rundir", default="/dev/shm",
                    help="where the private run directory is made (tmpfs; default /dev/shm)")
    args = ap.parse_args(argv)
    try:
        batches = [int(b) for b in args.batches.split(",") if b]
    except ValueError:
        ap.error(f"--batches: {args.batches!r} is not a list of numbers")
    if not batches or min(batches) < 1 or max(batches) > 1024:
        ap.error("--batches: each batch must be 1..1024")
    if args.rounds < 1 or args.seconds <= 0:
        ap.error("--rounds must be >= 1 and --seconds > 0")
    if args.quick:
        args.rounds, args.seconds = 1, 0.05
    return batches, args


def main(argv=None) -> int:
    batches, args = _parse(sys.argv[1:] if argv is None else argv)
    work = Path(tempfile.mkdtemp(prefix="nmc-bench-dn-"))
    rundir = tempfile.mkdtemp(prefix="nmc-bench-dn-", dir=args.rundir)
    os.chmod(rundir, 0o700)
    try:
        rows = measure(build(work), batches, args.rounds, args.seconds, rundir)
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"devnetmap: a pipe loop through netmap's interface under exec / the engine's C API, one "
          f"process, {os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}, "
          f"{args.rounds} alternated rounds of {args.seconds} s")
    print("vs limit: netmap interface / engine API (the path's limit, no peer); CPU ns: the one "
          "process's CPU time per frame (it sends and receives)")
    print(f"{'batch':>5} {'netmap Mpps':>12} {'netmap CPU ns':>14} {'engine Mpps':>12} "
          f"{'engine CPU ns':>14} {'vs limit':>8}")
    for r in rows:
        print(f"{r['batch']:>5} {r['netmap_mpps']:>12.2f} {_cpu(r['netmap_cpu_ns_per_pkt'])} "
              f"{r['engine_mpps']:>12.2f} {_cpu(r['engine_cpu_ns_per_pkt'])} {r['ratio']:>8.2f}")
    print("RESULT " + json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
