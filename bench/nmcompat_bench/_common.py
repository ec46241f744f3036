"""What every benchmark tool shares: reading a worker's result, and printing
the table and the JSON report."""
from __future__ import annotations

import glob
import json
import subprocess
import sys
import time


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


# -- CPU time per packet and ratios: the columns every table shares --------------------

def process_cpu_ns() -> int:
    """This process's CPU time so far (user + system, every thread), in ns."""
    return time.process_time_ns()


def pid_cpu_ns(pid: int) -> int:
    """CPU time so far of every thread of a running process (its
    /proc/<pid>/task/*/schedstat, the counter getrusage adds up), in ns; 0 once ended."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def cpu_per_packet(tx_cpu_ns, rx_cpu_ns, packets) -> dict:
    """The sender's, the receiver's and both processes' CPU time per packet
    received, in ns (None where a side was not measured or nothing arrived)."""
    def per(ns):
        return round(ns / packets, 1) if ns is not None and packets else None
    both = (tx_cpu_ns + rx_cpu_ns) if tx_cpu_ns is not None and rx_cpu_ns is not None else None
    return {"tx_cpu_ns_per_pkt": per(tx_cpu_ns), "rx_cpu_ns_per_pkt": per(rx_cpu_ns),
            "cpu_ns_per_pkt": per(both)}


def side_cpu(res: dict, packets: int) -> dict:
    """cpu_per_packet() of a pair of worker results that carry "proc_cpu_ns"."""
    return cpu_per_packet(res["tx"].get("proc_cpu_ns"), res["rx"].get("proc_cpu_ns"), packets)


def ratio(value, base):
    """value / base rounded to 3 places; None when either is missing or base is 0."""
    return round(value / base, 3) if value and base else None


CPU_HEAD = "  tx ns |  rx ns"


def fmt_cpu(cols: dict) -> str:
    """The sender's and the receiver's ns per packet, as CPU_HEAD's columns."""
    return " | ".join(f"{cols[k]:6.1f}" if cols.get(k) is not None else f"{'n/a':>6}"
                      for k in ("tx_cpu_ns_per_pkt", "rx_cpu_ns_per_pkt"))


def fmt_ratio(value, width: int = 5, suffix: str = "") -> str:
    """A ratio to 2 places and `suffix`, or "n/a", right-aligned in width + len(suffix)."""
    if value is None:
        return f"{'n/a':>{width + len(suffix)}}"
    return f"{value:{width}.2f}{suffix}"
