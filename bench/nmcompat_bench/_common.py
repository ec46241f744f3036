"""What every benchmark tool shares: reading a worker's result, and printing
the table and the JSON report."""
from __future__ import annotations

import json
import subprocess
import sys


def collect_worker(proc: subprocess.Popen, what: str, timeout: float) -> dict:
    """The JSON object a worker prints last; RuntimeError saying why if it
    failed, printed nothing usable or did not finish in time."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} did not finish in {timeout:.0f} s") from None
    last = out.strip().splitlines()[-1:] or ["{}"]
    try:
        data = json.loads(last[0])
    except ValueError:
        data = {}
    if proc.returncode != 0 or "error" in data or "packets" not in data:
        reason = data.get("error") or err.strip() or f"exit status {proc.returncode}"
        raise RuntimeError(f"{what} failed: {reason}")
    return data


def emit_report(report: dict, table: str, json_dest) -> None:
    """The table on stdout (stderr when the JSON goes to stdout), and the
    report as JSON to `json_dest` ("-" for stdout, a path, or None)."""
    print(table, file=sys.stderr if json_dest == "-" else sys.stdout)
    if json_dest == "-":
        print(json.dumps(report, indent=2))
    elif json_dest:
        with open(json_dest, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


def stop_all(procs: list) -> None:
    """SIGKILL (to those pids only) and reap every worker still in `procs`; empties it."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    procs.clear()


def mpps(side: dict) -> float:
    """Packets per microsecond of one side's result (0 when it measured nothing)."""
    return side["packets"] / side["elapsed_ns"] * 1e3 if side["elapsed_ns"] else 0.0
