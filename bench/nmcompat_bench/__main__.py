"""python -m nmcompat_bench [NAME] [args]: run one benchmark (./run bench NAME)."""
from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "pipe": ("nmcompat_bench.pipe", "pipe throughput beside a raw shared-memory ring (the default)"),
    "vale": ("nmcompat_bench.vale", "VALE switch throughput beside bare copy rings"),
    "vale-cost": ("nmcompat_bench.vale_cost",
                  "the CPU cost of VALE forwarding per frame, in one thread"),
    "afxdp": ("nmcompat_bench.afxdp", "AF_XDP on a veth pair beside DPDK af_xdp and AF_PACKET"),
    "compare": ("nmcompat_bench.compare",
                "every backend beside every available peer (DPDK, sockets, Scapy)"),
    "monitor": ("nmcompat_bench.monitor", "pipe throughput with a copy monitor (/r) beside without"),
    "controlplane": ("nmcompat_bench.controlplane",
                     "pipe and VALE ports opened and closed per second, with N ports already open"),
    "devnetmap": ("nmcompat_bench.devnetmap",
                  "a pipe loop through netmap's /dev/netmap interface under exec beside the engine's C API"),
    "fuzz-names": ("nmcompat_bench.fuzz_names",
                   "port names through both grammars (--count, 10^6), no failure allowed"),
    "soak": ("nmcompat_bench.soak",
             "pipe and VALE traffic for --minutes (10), every frame accounted for"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        argv = ["pipe", *argv]
    if argv[0] not in BENCHMARKS:
        print("usage: ./run bench [NAME] [args]\n", file=sys.stderr)
        for name, (_, what) in BENCHMARKS.items():
            print(f"  {name:8} {what}", file=sys.stderr)
        return 2
    return importlib.import_module(BENCHMARKS[argv[0]][0]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
