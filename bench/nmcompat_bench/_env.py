"""What `./run bench compare` can run on this machine: the namespace,
dpdk-testpmd and its drivers (af_xdp, af_packet, memif), bench-afxdp's
AF_PACKET program, Scapy; installed when missing if allowed (DPDK with
apt-get, Python packages with pip into the virtual environment only)."""
from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys

from nmcompat_bench import afxdp as bench_afxdp

PMDS = {"af_xdp": "librte-net-af-xdp23", "af_packet": "librte-net-af-packet23",
        "memif": "librte-net-memif23"}
LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")


class Env:
    """What this machine has: the namespace, testpmd and its drivers, afpacket_bench, Scapy."""

    def __init__(self, lab, cpus, install: bool, seconds: float) -> None:
        self.lab, self.cpus, self.why = lab, cpus, {}
        self.ns = lab.ns if lab else ""
        self.worker_env = dict(bench_afxdp._WORKER_ENV,
                               NMCOMPAT_RUNDIR=lab.rundir if lab else "")
        if not lab:
            self.worker_env.pop("NMCOMPAT_RUNDIR")
        self.tx_cpu, self.rx_cpu = (cpus[0], cpus[1]) if len(cpus) == 2 else (-1, -1)
        self.afpacket, self.testpmd = None, None
        if lab:
            prog = bench_afxdp.Programs(lab, seconds, install)
            self.afpacket, self.testpmd = prog.afpacket, prog.testpmd
            self.why["sockets"] = self.why["tpacket-ring"] = prog.afpacket_why
            dpdk_why = prog.dpdk_why
        else:
            self.why["sockets"] = self.why["tpacket-ring"] = "needs root (a network namespace)"
            dpdk_why = ""
        self.testpmd = self.testpmd or shutil.which("dpdk-testpmd")
        for pmd in PMDS:
            self.why[pmd] = self._pmd(pmd, install) or (dpdk_why if pmd == "af_xdp" else "")
        self.why["scapy"] = _ensure_pip("scapy", "scapy", install)

    def ifindex(self, ifname: str) -> int:
        out = subprocess.run(["ip", "-n", self.ns, "-o", "link", "show", "dev", ifname],
                             capture_output=True, text=True, check=True).stdout
        return int(out.split(":", 1)[0])

    def _pmd(self, pmd: str, install: bool) -> str:
        if self.testpmd and _pmd_installed(pmd):
            return ""
        missing = ([] if self.testpmd else ["dpdk-dev"]) + [PMDS[pmd]]
        if not install:
            return f"{' and '.join(missing)} not installed (--no-install)"
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            return f"{' and '.join(missing)} not installed (needs root and apt-get)"
        print(f"bench-compare: apt-get install {' '.join(missing)}", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-qq", *missing]
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                return f"apt-get install {' '.join(missing)} failed: {proc.stderr.strip()[-300:]}"
        self.testpmd = shutil.which("dpdk-testpmd")
        return "" if self.testpmd and _pmd_installed(pmd) else f"{PMDS[pmd]} still missing"


def _pmd_installed(pmd: str) -> bool:
    name = f"librte_net_{pmd}.so*"
    return any(glob.glob(os.path.join(d, name)) or glob.glob(os.path.join(d, "dpdk", "*", name))
               for d in LIB_DIRS)


def _ensure_pip(module: str, package: str, install: bool) -> str:
    """'' when module imports (installing package into the venv if allowed), else why not."""
    if importlib.util.find_spec(module):
        return ""
    if not install:
        return f"{package} is not installed (--no-install)"
    if sys.prefix == sys.base_prefix:
        return f"{package} is not installed (not in a virtual environment: pip install {package})"
    print(f"bench-compare: pip install {package} (into {sys.prefix})", file=sys.stderr)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", package], capture_output=True, text=True)
    importlib.invalidate_caches()
    if proc.returncode != 0 or not importlib.util.find_spec(module):
        return f"pip install {package} failed: {proc.stderr.strip()[-300:]}"
    return ""
