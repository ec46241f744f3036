"""./run bench compare: every nmcompat backend beside every peer this
machine can run, on the same path, in one run.

Two paths, each measured at 60 and 1514 bytes, one sender and one
receiver process per row (pinned to the two CPUs):

- shared memory: nmcompat's netmap pipe and VALE switch (the loops of
  bench-pipe and bench-vale, a fixed number of frames), beside DPDK memif
  between two testpmd processes (txonly -> rxonly); the bare rings of
  bench-pipe and bench-vale are shown as this machine's limit; VALE and the
  copy ring once more with batches of 64 frames sent from 64 buffers hot in
  the sender's cache (bench-vale --tx-bufs 64), as testpmd's mempool cache
  keeps memif's;
- a veth pair in a private network namespace (created here, removed at the
  end, also on failure or Ctrl-C): nmcompat on AF_XDP (native and generic
  XDP) and on AF_PACKET (admode=2), sender on vb and receiver on va with
  the loops of bench-afxdp; beside DPDK testpmd with net_af_xdp and
  net_af_packet, plain sockets (sendmmsg/recvmmsg, bench/csrc/afpacket_bench.c)
  and Scapy (the Python baseline).

Each row gives the receiver's Mpps and Gbit/s (frame bytes, no preamble or
FCS), the CPU time both processes spent per packet, and the ratio to the
fastest peer of the same path and size.  A system that cannot run here is
listed with its reason.  See docs/BENCHMARKS.md, "Comparison".
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from nmcompat_bench import _peers as peers
from nmcompat_bench._common import CPU_HEAD, emit_report, fmt_cpu, fmt_ratio, ratio
from nmcompat_bench._env import Env
from nmcompat_bench.afxdp import Lab
from nmcompat_bench.pipe import _on_sigterm, _pick_cpus, machine_info

SIZES = (60, 1514)
DEFAULT_SECONDS, QUICK_SECONDS = 3.0, 0.3
DEFAULT_PACKETS, QUICK_PACKETS = 10_000_000, 20_000
DEFAULT_REPEAT, DEFAULT_BATCH = 3, 512
# key: (path, kind, label); kind "nmcompat", "peer" (the ratios' base) or "limit" (a bare
# ring of bench-pipe / bench-vale: what two processes can do here, shown beside)
SYSTEMS = {
    "nmcompat-pipe": ("shm", "nmcompat", "nmcompat pipe"),
    "nmcompat-vale": ("shm", "nmcompat", "nmcompat VALE"),
    "memif": ("shm", "peer", "DPDK memif"),
    "raw-ring": ("shm", "limit", "limit: bare ring"),
    "copy-ring": ("shm", "limit", "limit: bare copy ring"),
    "nmcompat-vale-hot": ("shm", "nmcompat", "nmcompat VALE, 64 hot bufs"),
    "copy-ring-hot": ("shm", "limit", "limit: copy ring, 64 hot bufs"),
    "nmcompat-drv": ("veth", "nmcompat", "nmcompat AF_XDP drv"),
    "nmcompat-skb": ("veth", "nmcompat", "nmcompat AF_XDP skb"),
    "nmcompat-afpacket": ("veth", "nmcompat", "nmcompat AF_PACKET"),
    "dpdk-af_xdp": ("veth", "peer", "DPDK af_xdp"),
    "dpdk-af_packet": ("veth", "peer", "DPDK af_packet"),
    "sockets": ("veth", "peer", "sockets sendmmsg/recvmmsg"),
    "tpacket-ring": ("veth", "limit", "limit: bare TPACKET rings"),
    "scapy": ("veth", "peer", "Scapy"),
}
PATHS = {"shm": "shared memory", "veth": "veth pair"}
# the limit of each system's path: the bare ring of its kind (memif copies every frame, as
# VALE does; the AF_PACKET ports use the kernel's TPACKET rings); on the veth pair a system
# with no bare ring of its kind has the fastest other system of the same run for its limit
LIMIT_OF = {"nmcompat-pipe": "raw-ring", "nmcompat-vale": "copy-ring", "memif": "copy-ring",
            "raw-ring": "raw-ring", "copy-ring": "copy-ring",
            "nmcompat-vale-hot": "copy-ring-hot", "copy-ring-hot": "copy-ring-hot",
            "nmcompat-afpacket": "tpacket-ring", "dpdk-af_packet": "tpacket-ring",
            "tpacket-ring": "tpacket-ring"}
CPU_FIELDS = ("tx_cpu_ns_per_pkt", "rx_cpu_ns_per_pkt", "cpu_ns_per_pkt")


class CompareLab(Lab):
    """bench-afxdp's namespace with va <-> vb, under a name of this tool's."""

    def __init__(self, cpus, timeout):
        super().__init__(cpus, timeout)
        self.ns = f"nmccmp-{uuid.uuid4().hex[:10]}"


def unavailable(key: str, env, lab) -> str:
    path = SYSTEMS[key][0]
    if path == "veth" and lab is None:
        return env.why.get("veth") or "needs root (a network namespace, XDP)"
    if key == "memif":
        return env.why["memif"]
    if key.startswith("dpdk-"):
        return env.why[key[5:]]
    return env.why.get(key, "")


def run_one(key: str, size: int, env, args, rundir: str) -> dict:
    if SYSTEMS[key][0] == "shm" and key != "memif":
        cpus = [env.cpus[1], env.cpus[0]] if len(env.cpus) == 2 else []   # receiver, sender
        return peers.counted_run(key, rundir, cpus, size, args.packets, args.batch)
    if key == "memif":
        return peers.memif_run(env, size, args.seconds, rundir)
    return peers.veth_run(env, key, size, args.seconds)


def _fmt_run(r: dict) -> str:
    cpu = (f", {r['tx_cpu_ns_per_pkt']:.0f} + {r['rx_cpu_ns_per_pkt']:.0f} ns CPU/pkt"
           if r.get("cpu_ns_per_pkt") else "")
    return f"{r['mpps']:.3f} Mpps{cpu}"


def measure(env, lab, args, rundir: str, log) -> list:
    """Every (size, system) `repeat` times, interleaved; the fastest run of each kept."""
    plan = [(size, key) for size in args.sizes for key in args.systems]
    why = {key: unavailable(key, env, lab) for key in args.systems}
    runs = {p: [] for p in plan}
    errors = {}
    total = sum(1 for _, key in plan if not why[key]) * args.repeat
    done = 0
    for rep in range(args.repeat):
        for size, key in plan:
            if why[key] or (size, key) in errors:
                continue
            done += 1
            head = f"[{done:3}/{total}] {PATHS[SYSTEMS[key][0]]}, {size} B, {SYSTEMS[key][2]}"
            log(f"{head}: started")
            t0 = time.monotonic()
            try:
                r = run_one(key, size, env, args, rundir)
                runs[(size, key)].append(r)
                log(f"{head}: {_fmt_run(r)} ({time.monotonic() - t0:.1f} s)")
            except RuntimeError as exc:
                errors[(size, key)] = str(exc)
                log(f"{head}: failed ({time.monotonic() - t0:.1f} s): {str(exc)[:300]}")
            finally:
                peers.kill_all()
    rows = []
    for size, key in plan:
        path, kind, label = SYSTEMS[key]
        row = {"path": path, "size": size, "system": key, "label": label, "kind": kind,
               "mpps": None, "gbps": None, **dict.fromkeys(CPU_FIELDS), "ratio": None,
               "limit": None, "vs_limit": None}
        done_runs = runs[(size, key)]
        if done_runs:
            best = max(done_runs, key=lambda r: r["mpps"])
            row.update(mpps=round(best["mpps"], 4), gbps=round(best["mpps"] * size * 8 / 1e3, 3),
                       **{k: best.get(k) for k in CPU_FIELDS},
                       cpu_unmeasured=best.get("cpu_unmeasured", []),
                       status="ok", mpps_runs=[round(r["mpps"], 4) for r in done_runs],
                       best_run=best)
            if (size, key) in errors:
                row["error"] = errors[(size, key)]
        else:
            reason = why[key] or f"failed: {errors.get((size, key), 'not run')}"
            row["status"] = f"unavailable: {reason}"
        rows.append(row)
    for row in rows:
        mates = [r["mpps"] for r in rows if r["path"] == row["path"] and r["size"] == row["size"]
                 and r["kind"] == "peer" and r["mpps"]]
        if mates and row["mpps"]:
            row["ratio"] = round(row["mpps"] / max(mates), 3)
    for row in rows:
        _set_limit(row, rows)
    return rows


def _set_limit(row: dict, rows: list) -> None:
    """row["limit"]: the system its path's limit is taken from; row["vs_limit"]: its Mpps
    over that one's.  The bare ring of its kind (LIMIT_OF; the bare rings are the limits
    themselves), if measured in this run.  Otherwise, on the veth pair, the fastest system
    that is not a bare ring, measured on the pair at that size in this run, stands for it."""
    same = [r for r in rows if r["path"] == row["path"] and r["size"] == row["size"] and r["mpps"]]
    base = next((r for r in same if r["system"] == LIMIT_OF.get(row["system"])), None)
    if base is None and row["path"] == "veth" and row["kind"] != "limit":
        base = max((r for r in same if r["kind"] != "limit"), key=lambda r: r["mpps"], default=None)
    if base is not None and row["mpps"]:
        row["limit"] = base["system"]
        row["vs_limit"] = ratio(row["mpps"], base["mpps"])


# -- output -------------------------------------------------------------------------

def machine_line(m: dict) -> str:
    return (f"machine: Linux {m['kernel']}, {m['cpu']}, {m['nproc']} CPUs, "
            f"load {' '.join(str(x) for x in m['loadavg'])}")


def format_report(report: dict) -> str:
    c = report["conditions"]
    lines = [
        machine_line(report["machine"]),
        f"conditions: timed rows {c['seconds']} s (CPU read over the middle {0.6 * c['seconds']:.2f} s), "
        f"counted rows {c['packets']} frames (batch {c['batch']}), best of {c['repeat']}, "
        f"CPUs {c['cpus'] or 'not pinned'}"
        + ("; veth pair with aggregation and segmentation offloads off" if c.get("namespace") else ""),
        "Mpps as received; Gbit/s of frame bytes; tx ns, rx ns: the sender's and the receiver's "
        "CPU time per packet received, CPU ns/pkt: both; vs peer: / the fastest peer of the same "
        "path and size; vs limit: / the path's limit (shared memory: the bare ring of its kind, "
        "the copy ring for VALE and memif; veth pair: the bare TPACKET rings for AF_PACKET ports, "
        "for the others, or when those rings were not measured, the fastest system of this run "
        "at that size that is not a bare ring)",
        "",
        f"path          | size | system                        |    Mpps |   Gbit/s |{CPU_HEAD} | "
        "CPU ns/pkt | vs peer | vs limit",
        "--------------+------+-------------------------------+---------+----------+--------+"
        "--------+------------+---------+---------",
    ]
    reasons = {}
    for r in report["rows"]:
        head = f"{PATHS[r['path']]:13} | {r['size']:4} | {r['label']:29}"
        if r["mpps"] is None:
            reasons.setdefault(r["label"], r["status"])
            lines.append(f"{head} | {'unavailable (see below)':^70} |")
            continue
        cpu = f"{r['cpu_ns_per_pkt']:10.0f}" if r["cpu_ns_per_pkt"] else f"{'n/a':>10}"
        lines.append(f"{head} | {r['mpps']:7.3f} | {r['gbps']:8.3f} | {fmt_cpu(r)} | {cpu} | "
                     f"{fmt_ratio(r['ratio'], 6, 'x')} | {fmt_ratio(r['vs_limit'], 7, 'x')}")
    for label, status in reasons.items():
        lines.append(f"{label}: {status.splitlines()[0][:300]}")
    return "\n".join(lines)


def _parse(argv):
    ap = argparse.ArgumentParser(prog="./run bench compare",
                                 description="every nmcompat backend beside every available peer")
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_SECONDS} s / {QUICK_PACKETS} frames per row, once (a smoke test)")
    ap.add_argument("--seconds", type=float, default=None,
                    help=f"length of each timed row (default {DEFAULT_SECONDS})")
    ap.add_argument("--packets", type=int, default=None,
                    help=f"frames per counted row: pipe, VALE, bare rings (default {DEFAULT_PACKETS})")
    ap.add_argument("--repeat", type=int, default=None,
                    help=f"interleaved runs of every row, fastest kept (default {DEFAULT_REPEAT})")
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                    help="batch of the pipe and VALE loops (default %(default)s)")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)),
                    help="comma-separated frame lengths (default %(default)s)")
    ap.add_argument("--only", default="", help="comma-separated systems: " + ", ".join(SYSTEMS))
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    ap.add_argument("--png", metavar="FILE", help="also draw the results as a PNG plot")
    ap.add_argument("--no-install", action="store_true",
                    help="install nothing (DPDK with apt-get, Scapy and matplotlib with pip)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin senders and receivers")
    args = ap.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        ap.error("--sizes takes integers, e.g. 60,1514")
    if not args.sizes or min(args.sizes) < 60 or max(args.sizes) > 1514:
        ap.error("--sizes must be 60..1514 (one buffer, standard MTU)")
    args.systems = [s.strip() for s in args.only.split(",") if s.strip()] or list(SYSTEMS)
    bad = [s for s in args.systems if s not in SYSTEMS]
    if bad:
        ap.error(f"--only: unknown system(s) {', '.join(bad)} (known: {', '.join(SYSTEMS)})")
    args.seconds = args.seconds or (QUICK_SECONDS if args.quick else DEFAULT_SECONDS)
    args.packets = args.packets or (QUICK_PACKETS if args.quick else DEFAULT_PACKETS)
    args.repeat = args.repeat or (1 if args.quick else DEFAULT_REPEAT)
    if args.seconds <= 0 or args.packets < 1 or args.repeat < 1 or args.batch < 1:
        ap.error("--seconds, --packets, --repeat and --batch must be positive")
    return args


def _log(text: str) -> None:
    print(f"bench-compare: {text}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    cpus = _pick_cpus(args.no_pin)              # [sender, receiver] on the veth pair
    root = os.geteuid() == 0 and shutil.which("ip") is not None
    report = {"command": "./run bench compare " + " ".join(argv),
              "machine": machine_info()}
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    rundir = tempfile.mkdtemp(prefix=f"nmcompat-bench-compare-{os.getpid()}-", dir="/dev/shm")
    lab = None
    try:
        lab_why = "" if root else "needs root and iproute2 (a network namespace, XDP)"
        if root:
            try:
                lab = CompareLab(cpus, timeout=60 + 4 * args.seconds).__enter__()
            except subprocess.CalledProcessError as exc:
                lab_why = f"couldn't make the veth pair: {(exc.stderr or b'').decode().strip()}"
        env = Env(lab, cpus, install=not args.no_install, seconds=args.seconds)
        env.why["veth"] = lab_why
        report["conditions"] = {"seconds": args.seconds, "packets": args.packets,
                                "repeat": args.repeat, "batch": args.batch, "sizes": args.sizes,
                                "cpus": cpus, "namespace": lab.ns if lab else None,
                                "testpmd": env.testpmd, "install": not args.no_install}
        report["systems"] = {k: {"path": SYSTEMS[k][0], "kind": SYSTEMS[k][1],
                                 "label": SYSTEMS[k][2],
                                 "status": ("unavailable: " + unavailable(k, env, lab))
                                 if unavailable(k, env, lab) else "ok"} for k in args.systems}
        started = time.monotonic()
        report["rows"] = measure(env, lab, args, rundir, _log)
        report["seconds"] = round(time.monotonic() - started, 1)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"bench-compare: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-compare: interrupted", file=sys.stderr)
        return 130
    finally:
        peers.kill_all()
        if lab is not None:
            lab.__exit__(None, None, None)
        shutil.rmtree(rundir, ignore_errors=True)
        signal.signal(signal.SIGTERM, old_term)
    if args.png:
        from nmcompat_bench._plot import plot
        report["png"] = {"file": args.png, "drawn_with": plot(report, args.png,
                                                              install=not args.no_install)}
    emit_report(report, format_report(report), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
