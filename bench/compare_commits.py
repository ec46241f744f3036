"""The shared-memory rows of `./run bench compare`, for two commits, on this machine, in
one run:

    python3 bench/compare_commits.py BASE [HEAD] [--rounds N] [--packets P] [--sizes 60,1514]
                                     [--fifo PRIO]

Each commit is checked out into a temporary worktree (detached) and set up there with its
own `./run setup`.  Then the rounds alternate BASE, HEAD, BASE, HEAD, ...: each round is one
`./run bench compare --only nmcompat-pipe,nmcompat-vale,raw-ring,copy-ring --repeat 1`, so a
change of vCPU placement or of load hits both commits alike.  The best run of every row is
kept, and the table gives both and HEAD / BASE.  The bare rings are the same code in both
commits: their ratio shows how far the placement noise goes.  The worktrees are removed at
the end, also after a failure or Ctrl-C.

--fifo PRIO runs each round (not the set-up) under `chrt -f PRIO`, the SCHED_FIFO real-time
class (root or CAP_SYS_NICE): on a machine where other jobs run, the two pinned benchmark
processes are then never preempted by them, which otherwise decides the VALE row (a
receiver taken off its CPU makes the switch drop whatever the sender forwards meanwhile).
The kernel's real-time throttling still leaves the other jobs 5% of each second.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROWS = ["nmcompat-pipe", "nmcompat-vale", "raw-ring", "copy-ring"]
REPO = Path(__file__).resolve().parent.parent


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _log(text: str) -> None:
    print(f"compare-commits: {text}", file=sys.stderr, flush=True)


def setup(commit: str, where: Path, logfile: Path) -> None:
    git("worktree", "add", "--detach", str(where), commit)
    _log(f"setting up {commit[:10]} in {where} (log: {logfile})")
    with open(logfile, "a") as log:
        subprocess.run(["./run", "setup"], cwd=where, stdout=log, stderr=log, check=True)


def one_round(where: Path, args, out: Path, logfile: Path) -> dict:
    fifo = ["chrt", "-f", str(args.fifo)] if args.fifo else []
    cmd = [*fifo, "./run", "bench", "compare", "--only", ",".join(ROWS), "--repeat", "1", "--no-install",
           "--packets", str(args.packets), "--sizes", args.sizes, "--json", str(out)]
    with open(logfile, "a") as log:
        subprocess.run(cmd, cwd=where, stdout=log, stderr=log, check=True, timeout=3600)
    report = json.loads(out.read_text())
    return {(r["system"], r["size"]): r["mpps"] for r in report["rows"]
            if r["system"] in ROWS and r["mpps"]}


def table(base: str, head: str, runs: dict) -> str:
    lines = [f"{'system':15} | size | {'base Mpps':>9} | {'head Mpps':>9} | head/base | "
             f"base runs / head runs",
             "-" * 16 + "+------+-----------+-----------+-----------+" + "-" * 22]
    keys = sorted({k for side in runs.values() for rnd in side for k in rnd},
                  key=lambda k: (k[1], ROWS.index(k[0])))
    for key in keys:
        got = {side: [rnd[key] for rnd in runs[side] if key in rnd] for side in ("base", "head")}
        b, h = max(got["base"], default=0.0), max(got["head"], default=0.0)
        ratio = f"{h / b:9.3f}" if b else "        -"
        series = (" ".join(f"{v:.1f}" for v in got["base"]) + " / "
                  + " ".join(f"{v:.1f}" for v in got["head"]))
        lines.append(f"{key[0]:15} | {key[1]:4} | {b:9.3f} | {h:9.3f} | {ratio} | {series}")
    return f"base {base}\nhead {head}\n" + "\n".join(lines)


def machine() -> str:
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return f"Linux {platform.release()}, {os.cpu_count()} CPUs, load {load}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench/compare_commits.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="the earlier commit (e.g. 45406a6)")
    ap.add_argument("head", nargs="?", default="HEAD", help="the later commit (default HEAD)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per commit, best kept (default 3)")
    ap.add_argument("--packets", type=int, default=10_000_000,
                    help="frames per row and run (default 10000000, bench compare's)")
    ap.add_argument("--sizes", default="60,1514", help="frame lengths (default %(default)s)")
    ap.add_argument("--json", metavar="FILE", help="also write every run as JSON")
    ap.add_argument("--fifo", type=int, metavar="PRIO", default=0,
                    help="run each round under chrt -f PRIO (SCHED_FIFO, 1-99; needs root)")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.packets < 1:
        ap.error("--rounds and --packets must be positive")
    if args.fifo and not 1 <= args.fifo <= 99:
        ap.error(f"--fifo must be 1-99, got {args.fifo}")
    if args.fifo and not shutil.which("chrt"):
        ap.error("--fifo needs chrt (util-linux)")
    commits = {"base": git("rev-parse", args.base), "head": git("rev-parse", args.head)}
    tmp = Path(tempfile.mkdtemp(prefix="nmcompat-commits-"))
    trees = {side: tmp / side for side in commits}
    runs = {"base": [], "head": []}
    done = False
    try:
        for side, commit in commits.items():
            setup(commit, trees[side], tmp / f"{side}.log")
        start = machine()
        _log(f"start: {start}")
        for rnd in range(args.rounds):
            for side in ("base", "head"):
                _log(f"round {rnd + 1}/{args.rounds}: {side}")
                runs[side].append(one_round(trees[side], args, tmp / f"{side}.{rnd}.json",
                                            tmp / f"{side}.log"))
        done = True
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        _log(f"failed: {exc}; the logs are in {tmp}")
        return 1
    except KeyboardInterrupt:
        _log(f"interrupted; the logs are in {tmp}")
        return 130
    finally:
        for tree in trees.values():
            if tree.exists():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                               capture_output=True)
        if done:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {start} at the start, {machine()} at the end")
    sched = f"under chrt -f {args.fifo}, " if args.fifo else ""
    print(f"conditions: ./run bench compare --only {','.join(ROWS)} --repeat 1 --packets "
          f"{args.packets} --sizes {args.sizes}, {sched}{args.rounds} rounds alternating base, "
          f"head; best run kept")
    print(table(commits["base"], commits["head"], runs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"base": commits["base"], "head": commits["head"], "rounds": args.rounds,
                       "packets": args.packets, "sizes": args.sizes, "fifo": args.fifo,
                       "runs": {side: [{f"{k[0]}/{k[1]}": v for k, v in rnd.items()} for rnd in rs]
                                for side, rs in runs.items()}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
