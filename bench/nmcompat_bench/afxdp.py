"""./run bench afxdp: AF_XDP NIC ports on a veth pair, beside DPDK's
net_af_xdp (testpmd) and plain AF_PACKET, in one run on the same pair.

The tool creates its own network namespace holding a veth pair va <-> vb
(removed at the end, also on failure) and addresses nothing else.  Two
tables, each at 60 and 1514 bytes:

- TX: a sender on vb, the same receiver on va for every sender (nmcompat's
  AF_XDP RX loop, native XDP); the rate is what arrives at va, on the
  receiver's clock.  Senders: nmcompat (``netmap:vb``, AF_XDP, one C call:
  nmc_bench_xsk_tx), DPDK testpmd ``net_af_xdp`` in txonly mode, and an
  AF_PACKET ``sendmmsg()`` loop (bench/csrc/afpacket_bench.c, compiled here
  with cc).
- RX: the same sender on vb for every receiver (nmcompat's AF_XDP TX loop);
  receivers on va: nmcompat (``netmap:va``, nmc_bench_xsk_rx), DPDK testpmd
  in rxonly mode (its Rx-pps samples), and an AF_PACKET ``recvmmsg()`` loop.

CPUs: the sender is pinned to one CPU and the receiver to the other
(testpmd through --lcores, its forwarding lcore on the pinned CPU and its
main lcore on the other one).  On veth the kernel does the receive work
(XDP, the copy into the UMEM) on the sending CPU, so senders carry most of
the cost; the receiver's CPU only runs the receiving application.

DPDK (Debian ``dpdk-dev`` for dpdk-testpmd, ``librte-net-af-xdp23`` for
the driver) is installed with apt-get when missing and we are root, unless
--no-install; a baseline that cannot run is reported with its reason.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

from nmcompat_bench.pipe import machine_info
from nmcompat_bench._common import (CPU_HEAD, emit_report, fmt_cpu, cpu_per_packet,
                                    fmt_ratio, pid_cpu_ns, process_cpu_ns, ratio)

SIZES = (60, 1514)
DEFAULT_SECONDS, QUICK_SECONDS = 4.0, 0.5
DEFAULT_REPEAT = 3
TARGETS = {"dpdk": 1.3, "afpacket": 1.5}        # the goals for nmcompat / baseline
DPDK_PACKAGES = ("dpdk-dev", "librte-net-af-xdp23")
AFPACKET_SRC = Path(__file__).resolve().parents[2] / "bench" / "csrc" / "afpacket_bench.c"
XDP_MODE = "drv"
_WORKER_ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONUNBUFFERED="1")


# -- nmcompat's side of a measurement, in its own process ------------------------

def _worker(argv) -> int:
    """python -m nmcompat_bench.afxdp --worker ROLE IFNAME SIZE SECONDS WAIT CPU [BACKEND]"""
    role, ifname, size, seconds, wait, cpu = argv[:6]
    backend = argv[6] if len(argv) > 6 else "afxdp"
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if int(cpu) >= 0:
        os.sched_setaffinity(0, {int(cpu)})
    import nmcompat
    from nmcompat_bench._ffi import ffi, lib, os_error, port_handle
    opts = {"xdp_mode": XDP_MODE} if backend == "afxdp" else {}   # afpacket ports refuse it
    port = nmcompat.open(f"netmap:{ifname}", backend=backend, **opts)
    res = ffi.new("struct nmc_bench_xsk_result *")
    print(f"ready {port.info.xdp_mode}", flush=True)
    ns = int(float(seconds) * 1e9)
    if role == "tx":
        rc = lib.nmc_bench_xsk_tx(port_handle(port), int(size), 0, ns, 512, res)
    else:
        rc = lib.nmc_bench_xsk_rx(port_handle(port), ns, int(float(wait) * 1e9), 500_000_000, 0, res)
    if rc < 0:
        raise os_error(-rc, "run the benchmark on", port.name)
    out = {k: int(getattr(res, k)) for k in ("elapsed_ns", "packets", "bytes", "batches",
                                             "syncs", "polls")}
    stats = port.xdp_stats()
    # rx_dropped already counts the fill-ring-empty events (also in rx_fill_ring_empty_descs)
    out["kernel_drops"] = sum(s["rx_dropped"] + s["rx_ring_full"] for s in stats)
    out["xdp_stats"] = stats
    port.close()
    out["proc_cpu_ns"] = process_cpu_ns()
    print("result " + json.dumps(out), flush=True)
    return 0


# -- the namespace and the processes in it ----------------------------------------

class Lab:
    """A private network namespace with va <-> vb, and the processes run in it."""

    def __init__(self, cpus: List[int], timeout: float) -> None:
        self.ns = f"nmcbench-{uuid.uuid4().hex[:10]}"
        self.sender_cpu, self.receiver_cpu = (cpus + [-1, -1])[:2] if cpus else (-1, -1)
        self.timeout = timeout
        self.procs: List[subprocess.Popen] = []
        self.tmp = tempfile.mkdtemp(prefix="nmcompat-bench-afxdp-")
        self.rundir = tempfile.mkdtemp(prefix="nmcompat-bench-afxdp-", dir="/dev/shm")
        os.chmod(self.rundir, 0o700)

    def __enter__(self) -> "Lab":
        subprocess.run(["ip", "netns", "add", self.ns], check=True, capture_output=True)
        try:
            for args in (["link", "add", "va", "type", "veth", "peer", "name", "vb"],
                         ["link", "set", "dev", "va", "up"], ["link", "set", "dev", "vb", "up"]):
                subprocess.run(["ip", "-n", self.ns, *args], check=True, capture_output=True)
            # no IPv6 chatter (where the kernel has IPv6); and no offloads, as netmap advises
            # for its emulated mode: no frame longer than the MTU crosses the pair
            # (csrc/transport/nic/pkt.c)
            self.exec(["sh", "-c", "for i in va vb; do echo 1 > "
                       "/proc/sys/net/ipv6/conf/$i/disable_ipv6; done 2>/dev/null"]).wait(10)
            offloads = self.exec([sys.executable, "-m", "nmcompat_bench._ethtool", "va", "vb"])
            try:
                failed = offloads.wait(10) != 0
                why = offloads.stderr.read() if failed else ""
            except subprocess.TimeoutExpired:
                failed, why = True, "couldn't switch the offloads of va vb off: no answer in 10 s"
            if failed:
                raise subprocess.CalledProcessError(1, offloads.args, stderr=why.encode())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
        subprocess.run(["ip", "netns", "del", self.ns], check=False, capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.rundir, ignore_errors=True)

    def exec(self, argv: List[str], cpu: int = -1) -> subprocess.Popen:
        """argv inside the namespace, pinned to cpu (inherited through exec)."""
        pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu >= 0 else None
        env = dict(_WORKER_ENV, NMCOMPAT_RUNDIR=self.rundir)
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, *argv], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, preexec_fn=pin, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        self.procs.clear()

    def wait_line(self, proc: subprocess.Popen, pattern: str, timeout: float, lines: list) -> str:
        """Read proc's stdout (kept in lines) until a line matches pattern."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 0.2)[0]:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if re.search(pattern, line):
                    return line
            elif proc.poll() is not None:
                break
        err = proc.stderr.read() if proc.poll() is not None else ""
        raise RuntimeError(f"no line matching {pattern!r} from {proc.args[4:]!r} within "
                           f"{timeout:.0f} s; output: {''.join(lines)[-1500:]}{err[-1500:]}")

    def finish(self, proc: subprocess.Popen, lines: list, sig: Optional[int] = None) -> str:
        if sig is not None and proc.poll() is None:
            os.killpg(proc.pid, sig)
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise RuntimeError(f"{proc.args[4:]!r} did not finish; {err[-1500:]}")
        if proc in self.procs:
            self.procs.remove(proc)
        text = "".join(lines) + out
        if proc.returncode not in (0, -signal.SIGINT, 130) and sig is None:
            raise RuntimeError(f"{proc.args[4:]!r} failed ({proc.returncode}): {err[-2000:]}")
        return text


# -- the programs ------------------------------------------------------------------

class Programs:
    """How each side of each kind is started, and what it reports."""

    def __init__(self, lab: Lab, seconds: float, install: bool) -> None:
        self.lab, self.seconds = lab, seconds
        self.afpacket, self.afpacket_why = self._build_afpacket()
        self.testpmd, self.dpdk_why = self._find_testpmd(install)

    # AF_PACKET baseline
    def _build_afpacket(self):
        cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
        if not cc:
            return None, "no C compiler (cc)"
        if not AFPACKET_SRC.exists():
            return None, f"{AFPACKET_SRC} is missing (run from a source tree)"
        exe = Path(self.lab.tmp) / "afpacket_bench"
        proc = subprocess.run([cc, "-O2", "-o", str(exe), str(AFPACKET_SRC)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return None, f"couldn't compile {AFPACKET_SRC.name}: {proc.stderr[-500:]}"
        return str(exe), ""

    # DPDK
    def _find_testpmd(self, install: bool):
        found = shutil.which("dpdk-testpmd")
        if found and _has_af_xdp_pmd():
            return found, ""
        if not install:
            return None, "dpdk-testpmd or its af_xdp driver is not installed (--no-install)"
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            return None, f"dpdk-testpmd is not installed (apt-get install {' '.join(DPDK_PACKAGES)})"
        print(f"bench-afxdp: installing {' '.join(DPDK_PACKAGES)} with apt-get", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-qq", *DPDK_PACKAGES]
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                return None, f"apt-get install failed: {proc.stderr.strip()[-300:]}"
        found = shutil.which("dpdk-testpmd")
        return (found, "") if found else (None, "dpdk-testpmd still missing after apt-get")

    def _testpmd(self, ifname: str, mode: str, size: int, fwd_cpu: int, main_cpu: int,
                 tag: str) -> List[str]:
        lcores = f"0@{max(main_cpu, 0)},1@{max(fwd_cpu, 0)}"
        args = [self.testpmd, f"--lcores={lcores}", "--no-huge", "-m", "1024", "--no-pci",
                f"--file-prefix=nmcb{os.getpid()}{tag}", "--log-level=pmd.net.af_xdp:error",
                "--vdev", f"net_af_xdp0,iface={ifname},start_queue=0,queue_count=1",
                "--", f"--forward-mode={mode}", "--stats-period", "1", "--auto-start",
                "--total-num-mbufs=16384", "--no-mlockall"]
        return args + ([f"--txpkts={size}"] if mode == "txonly" else [])

    def start_receiver(self, kind: str, size: int, wait: float):
        lab, cpu = self.lab, self.lab.receiver_cpu
        lines: list = []
        if kind in NMC_KINDS:
            p = lab.exec([sys.executable, "-m", "nmcompat_bench.afxdp", "--worker", "rx", "va",
                          str(size), str(self.seconds), str(wait), str(cpu), NMC_KINDS[kind]])
            lab.wait_line(p, r"^ready", 60, lines)
        elif kind == "afpacket":
            p = lab.exec([self.afpacket, "rx", "va", str(self.seconds), str(wait), "0.5"], cpu)
            lab.wait_line(p, r"^ready", 30, lines)
        else:
            p = lab.exec(self._testpmd("va", "rxonly", size, cpu, lab.sender_cpu, "rx"))
            lab.wait_line(p, r"packet forwarding - ports=", 60, lines)
        return p, lines

    def start_sender(self, kind: str, size: int, seconds: float):
        lab, cpu = self.lab, self.lab.sender_cpu
        lines: list = []
        if kind in NMC_KINDS:
            p = lab.exec([sys.executable, "-m", "nmcompat_bench.afxdp", "--worker", "tx", "vb",
                          str(size), str(seconds), "0", str(cpu), NMC_KINDS[kind]])
        elif kind == "afpacket":
            p = lab.exec([self.afpacket, "tx", "vb", str(size), str(seconds), "64"], cpu)
        else:
            p = lab.exec(self._testpmd("vb", "txonly", size, cpu, lab.receiver_cpu, "tx"))
        return p, lines

    def result(self, kind: str, proc, lines, sig=None) -> dict:
        """What one side reports, with "proc_cpu_ns": its CPU time over its life (testpmd's
        read just before it is told to stop; the others report their own)."""
        cpu_ns = pid_cpu_ns(proc.pid) if kind == "dpdk" else None
        text = self.lab.finish(proc, lines, sig)
        if kind in NMC_KINDS:
            m = re.search(r"^result (.*)$", text, re.M)
            if not m:
                raise RuntimeError(f"no result from nmcompat: {text[-1500:]}")
            r = json.loads(m.group(1))
        elif kind == "afpacket":
            m = re.search(r"^result (.*)$", text, re.M)
            if not m:
                raise RuntimeError(f"no result from afpacket_bench: {text[-1500:]}")
            r = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}
            r["proc_cpu_ns"] = r.get("cpu_ns")
        else:
            return dict(_testpmd_rates(text), proc_cpu_ns=cpu_ns or None)
        r["mpps"] = r["packets"] / r["elapsed_ns"] * 1e3 if r.get("elapsed_ns") else 0.0
        return r


def _has_af_xdp_pmd() -> bool:
    """Is DPDK's af_xdp driver installed (librte-net-af-xdp)?"""
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
        if any(Path(d).glob("librte_net_af_xdp.so*")) or any(Path(d).glob("dpdk/*/librte_net_af_xdp.so*")):
            return True
    return False


def _testpmd_rates(text: str) -> dict:
    """Median of testpmd's per-second Rx-pps / Tx-pps samples once traffic flows."""
    out = {}
    for key in ("Rx", "Tx"):
        samples = [int(v) for v in re.findall(rf"{key}-pps:\s+(\d+)", text)]
        while samples and samples[0] == 0:
            samples.pop(0)
        while samples and samples[-1] == 0:
            samples.pop()
        if len(samples) > 2:
            samples = samples[1:]           # the first period is partial
        out[f"{key.lower()}_mpps"] = statistics.median(samples) / 1e6 if samples else 0.0
        out[f"{key.lower()}_samples"] = len(samples)
    totals = re.findall(r"RX-packets:\s+(\d+)\s+RX-missed:\s+(\d+)", text)
    if totals:
        out["rx_missed"] = int(totals[-1][1])
        out["rx_packets"] = int(totals[-1][0])
    sent = re.findall(r"TX-packets:\s+(\d+)", text)
    if sent:
        out["tx_packets"] = int(sent[-1])
    return out


# -- measurements ------------------------------------------------------------------

def _measure_tx(prog: Programs, sender: str, size: int) -> dict:
    """sender on vb -> nmcompat's receiver on va; Mpps as received."""
    extra = 3.0 if sender == "dpdk" else 1.0         # testpmd needs a moment to start
    rx, rx_lines = prog.start_receiver("nmcompat", size, wait=30)
    tx, tx_lines = prog.start_sender(sender, size, prog.seconds + extra)
    if sender == "dpdk":
        got = prog.result("nmcompat", rx, rx_lines)      # ends by itself
        sent = prog.result("dpdk", tx, tx_lines, signal.SIGINT)
        sent_mpps, sent_packets = sent.get("tx_mpps", 0.0), sent.get("tx_packets")
    else:
        got = prog.result("nmcompat", rx, rx_lines)
        sent = prog.result(sender, tx, tx_lines)
        sent_mpps, sent_packets = sent["mpps"], sent["packets"]
    return {"mpps": got["mpps"], "sent_mpps": sent_mpps, "received": got["packets"],
            "kernel_drops": got.get("kernel_drops", 0),
            **_cpu(sent, sent_packets, got, got["packets"])}


def _cpu(sent: dict, sent_packets, got: dict, got_packets) -> dict:
    """The sender's CPU time per packet it sent and the receiver's per packet it received,
    each over its process's life (the two do not run over the same interval here)."""
    tx = cpu_per_packet(sent.get("proc_cpu_ns"), None, sent_packets)["tx_cpu_ns_per_pkt"]
    rx = cpu_per_packet(None, got.get("proc_cpu_ns"), got_packets)["rx_cpu_ns_per_pkt"]
    return {"tx_cpu_ns_per_pkt": tx, "rx_cpu_ns_per_pkt": rx,
            "cpu_ns_per_pkt": round(tx + rx, 1) if tx and rx else None}


def _measure_rx(prog: Programs, receiver: str, size: int) -> dict:
    """nmcompat's sender on vb -> receiver on va; Mpps as received."""
    rx, rx_lines = prog.start_receiver(receiver, size, wait=30)
    tx, tx_lines = prog.start_sender("nmcompat", size, prog.seconds + (3.0 if receiver == "dpdk" else 1.0))
    sent = prog.result("nmcompat", tx, tx_lines)
    if receiver == "dpdk":
        got = prog.result("dpdk", rx, rx_lines, signal.SIGINT)
        return {"mpps": got["rx_mpps"], "sent_mpps": sent["mpps"], "samples": got["rx_samples"],
                "kernel_drops": got.get("rx_missed", 0),
                **_cpu(sent, sent["packets"], got, got.get("rx_packets"))}
    got = prog.result(receiver, rx, rx_lines)
    return {"mpps": got["mpps"], "sent_mpps": sent["mpps"], "received": got["packets"],
            "kernel_drops": got.get("kernel_drops", 0),
            **_cpu(sent, sent["packets"], got, got["packets"])}


KINDS = ("nmcompat", "nmc-afpacket", "dpdk", "afpacket")
NMC_KINDS = {"nmcompat": "afxdp", "nmc-afpacket": "afpacket"}   # nmcompat ports and their backend


def measure(prog: Programs, sizes, repeat: int) -> List[dict]:
    unavailable = {"dpdk": prog.dpdk_why if not prog.testpmd else "",
                   "afpacket": prog.afpacket_why if not prog.afpacket else ""}
    rows = []
    for direction, fn in (("tx", _measure_tx), ("rx", _measure_rx)):
        for size in sizes:
            runs: Dict[str, list] = {k: [] for k in KINDS}
            errors: Dict[str, str] = {}
            for _ in range(repeat):                     # interleaved, best of repeat
                for kind in KINDS:
                    if unavailable.get(kind) or kind in errors:
                        continue
                    try:
                        runs[kind].append(fn(prog, kind, size))
                    except RuntimeError as exc:
                        errors[kind] = str(exc)
                    finally:
                        prog.lab.stop_all()
            row = {"direction": direction, "size": size}
            for kind in KINDS:
                if runs[kind]:
                    best = max(runs[kind], key=lambda r: r["mpps"])
                    row[kind] = dict(best, runs=[round(r["mpps"], 4) for r in runs[kind]])
                else:
                    row[kind] = {"mpps": None, "why": unavailable.get(kind) or errors.get(kind, "")}
            for base in ("dpdk", "afpacket"):
                a, b = row["nmcompat"]["mpps"], row[base]["mpps"]
                row[f"vs_{base}"] = round(a / b, 3) if a and b else None
            a, b = row["nmc-afpacket"]["mpps"], row["afpacket"]["mpps"]
            row["nmc_afpacket_vs_afpacket"] = round(a / b, 3) if a and b else None
            _set_limit(row)
            rows.append(row)
    return rows


def _set_limit(row: dict) -> None:
    """This tool measures no bare ring of an AF_XDP socket (bench-compare measures the
    AF_PACKET port's, the bare TPACKET rings): the fastest system of the row (same
    direction, size and run) stands for the path's limit; each system's vs_limit is its
    Mpps over that one's."""
    measured = [k for k in KINDS if row[k]["mpps"]]
    row["limit"] = max(measured, key=lambda k: row[k]["mpps"]) if measured else None
    for kind in KINDS:
        row[kind]["vs_limit"] = (ratio(row[kind]["mpps"], row[row["limit"]]["mpps"])
                                 if row["limit"] else None)


# -- output ------------------------------------------------------------------------

LABELS = {"nmcompat": "nmcompat AF_XDP", "nmc-afpacket": "nmcompat AF_PACKET backend",
          "dpdk": "DPDK af_xdp", "afpacket": "AF_PACKET sendmmsg/recvmmsg"}


def format_cost_table(rows: list) -> List[str]:
    """Every system of every row: its CPU time per packet and its ratio to the limit."""
    lines = ["", "CPU and limit: tx ns = the sender's CPU time per packet sent, rx ns = the "
             "receiver's per packet received (each over its process's life); vs limit: / the "
             "fastest system of the row (bench-compare has the bare TPACKET rings)",
             f"dir | size | system                      |     Mpps |{CPU_HEAD} | vs limit",
             "----+------+-----------------------------+----------+--------+--------+---------"]
    for r in rows:
        for kind in KINDS:
            k = r[kind]
            if k["mpps"] is None:
                continue
            lines.append(f"{r['direction']:>3} | {r['size']:4} | {LABELS[kind]:27} | "
                         f"{k['mpps']:8.3f} | {fmt_cpu(k)} | {fmt_ratio(k['vs_limit'], 7, 'x')}")
    return lines


def format_report(report: dict) -> str:
    m, c = report["machine"], report["conditions"]
    pin = (f"senders on cpu {c['sender_cpu']}, receivers on cpu {c['receiver_cpu']}"
           if c["sender_cpu"] >= 0 else "not pinned")
    lines = [
        f"machine: Linux {m['kernel']}, {m['cpu']}, {m['nproc']} CPUs, "
        f"load {' '.join(str(x) for x in m['loadavg'])}",
        f"conditions: veth pair in a private netns, {c['xdp_mode']} XDP, {c['seconds']} s per run, "
        f"best of {c['repeat']} interleaved runs, {pin}",
        "TX: sender on vb, Mpps received by nmcompat's AF_XDP loop on va;"
        " RX: nmcompat's AF_XDP sender on vb, Mpps received on va",
        "",
        "dir | size | nmcompat | DPDK af_xdp | AF_PACKET | vs DPDK (>=1.3) | vs AF_PACKET (>=1.5)"
        " | nmcompat AF_PACKET backend | its vs AF_PACKET (>=1.5)",
        "----+------+----------+-------------+-----------+-----------------+---------------------"
        "-+----------------------------+-------------------------",
    ]

    def cell(r, width):
        return f"{r['mpps']:{width}.3f}" if r["mpps"] is not None else f"{'n/a':>{width}}"

    def vs_target(v, target):
        return f"{v:5.2f}x {'ok' if v >= target else 'below'}" if v else "  n/a"

    for r in report["rows"]:
        lines.append(f"{r['direction']:>3} | {r['size']:4} | {cell(r['nmcompat'], 8)} | "
                     f"{cell(r['dpdk'], 11)} | {cell(r['afpacket'], 9)} | "
                     f"{vs_target(r['vs_dpdk'], TARGETS['dpdk']):>15} | "
                     f"{vs_target(r['vs_afpacket'], TARGETS['afpacket']):>19} | "
                     f"{cell(r['nmc-afpacket'], 26)} | "
                     f"{vs_target(r.get('nmc_afpacket_vs_afpacket'), TARGETS['afpacket']):>24}")
    lines += format_cost_table(report["rows"])
    notes = {}
    for r in report["rows"]:
        for kind in KINDS:
            if r[kind]["mpps"] is None and r[kind].get("why"):
                notes[kind] = r[kind]["why"]
    for kind, why in notes.items():
        lines.append(f"{kind} unavailable: {why.splitlines()[0][:300]}")
    drops = [(r["direction"], r["size"], k, r[k].get("kernel_drops")) for r in report["rows"]
             for k in KINDS if r[k].get("kernel_drops")]
    if drops:
        lines.append("receiver drops counted by the kernel (best run): " + ", ".join(
            f"{d} {s} B {k}: {n}" for d, s, k, n in drops))
    return "\n".join(lines)


def _parse(argv):
    ap = argparse.ArgumentParser(prog="./run bench afxdp",
                                 description="AF_XDP on veth beside DPDK af_xdp and AF_PACKET")
    ap.add_argument("--seconds", type=float, default=None,
                    help=f"length of each run (default {DEFAULT_SECONDS})")
    ap.add_argument("--repeat", type=int, default=None,
                    help=f"interleaved runs of each kind, best reported (default {DEFAULT_REPEAT})")
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_SECONDS} s runs, once, 60-byte frames only (a smoke test)")
    ap.add_argument("--sizes", default=None, help="comma-separated frame lengths (default 60,1514)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    ap.add_argument("--no-install", action="store_true", help="never apt-get install DPDK")
    ap.add_argument("--no-dpdk", action="store_true", help="leave DPDK out")
    ap.add_argument("--no-pin", action="store_true", help="do not pin senders and receivers")
    args = ap.parse_args(argv)
    args.seconds = args.seconds or (QUICK_SECONDS if args.quick else DEFAULT_SECONDS)
    args.repeat = args.repeat or (1 if args.quick else DEFAULT_REPEAT)
    if args.sizes:
        try:
            args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        except ValueError:
            ap.error("--sizes takes integers, e.g. 60,1514")
    else:
        args.sizes = [60] if args.quick else list(SIZES)
    if not args.sizes or min(args.sizes) < 60 or max(args.sizes) > 1514:
        ap.error("--sizes must be 60..1514 (one buffer, standard MTU)")
    if args.seconds <= 0 or args.repeat < 1:
        ap.error("--seconds and --repeat must be positive")
    return args


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    if os.geteuid() != 0:
        print("bench-afxdp: needs root (network namespaces, XDP, AF_XDP)", file=sys.stderr)
        return 1
    if not shutil.which("ip"):
        print("bench-afxdp: needs iproute2's ip", file=sys.stderr)
        return 1
    cpus = [] if args.no_pin else sorted(os.sched_getaffinity(0))[:2]
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    report = {"command": "./run bench afxdp " + " ".join(argv),
              "machine": machine_info()}
    try:
        with Lab(cpus if len(cpus) == 2 else [], timeout=60 + 4 * args.seconds) as lab:
            prog = Programs(lab, args.seconds, install=not args.no_install and not args.no_dpdk)
            if args.no_dpdk:
                prog.testpmd, prog.dpdk_why = None, "left out (--no-dpdk)"
            report["conditions"] = {"seconds": args.seconds, "repeat": args.repeat,
                                    "sizes": args.sizes, "xdp_mode": XDP_MODE,
                                    "sender_cpu": lab.sender_cpu, "receiver_cpu": lab.receiver_cpu,
                                    "namespace": lab.ns}
            started = time.monotonic()
            report["rows"] = measure(prog, args.sizes, args.repeat)
            report["seconds"] = round(time.monotonic() - started, 1)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        why = getattr(exc, "stderr", None)
        why = why.decode(errors="replace").strip() if isinstance(why, bytes) else (why or "").strip()
        print(f"bench-afxdp: {why or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-afxdp: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, old_term)
    emit_report(report, format_report(report), args.json)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(_worker(sys.argv[2:]))
    sys.exit(main())
