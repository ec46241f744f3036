"""The processes `./run bench compare` starts (one side of one measurement each).

    python -m nmcompat_bench._workers nic ROLE IFNAME MODE SIZE SECONDS WAIT CPU
        nmcompat on a NIC port: MODE drv / skb (AF_XDP, that XDP mode) or
        afpacket (admode=2, netmap's emulated mode); the C loops of
        bench/csrc/bench_xsk.c (nmc_bench_xsk_tx / nmc_bench_xsk_rx).
    python -m nmcompat_bench._workers scapy ROLE IFNAME SIZE SECONDS WAIT CPU
        Scapy: conf.L2socket().send() in a loop, conf.L2listen().recv() in a loop.

Every worker prints "ready ..." once set up; a sender then waits for a line
on stdin ("go") so that both sides can start (import, open) side by side.
The last line is "result {json}".
"""
from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

IDLE_S = 0.5            # a receiver stops this long after the last frame
ETHERTYPE = 0x88B5      # the frame every sender here sends (as bench/csrc/bench_xsk.c's)


def _pin(cpu: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if int(cpu) >= 0:
        os.sched_setaffinity(0, {int(cpu)})


def _emit(tag: str, data=None) -> None:
    print(tag if data is None else f"{tag} {json.dumps(data)}", flush=True)


def _wait_go() -> None:
    sys.stdin.readline()


def nic(role, ifname, mode, size, seconds, wait, cpu) -> int:
    _pin(cpu)
    import nmcompat
    from nmcompat_bench._ffi import ffi, lib, os_error, port_handle
    if mode == "afpacket":
        port = nmcompat.open(f"netmap:{ifname}", admode=2)
    else:
        port = nmcompat.open(f"netmap:{ifname}", backend="afxdp", xdp_mode=mode)
    info = port.info
    _emit("ready", {"backend": info.backend, "xdp_mode": info.xdp_mode})
    res = ffi.new("struct nmc_bench_xsk_result *")
    ns = int(float(seconds) * 1e9)
    if role == "tx":
        _wait_go()
        rc = lib.nmc_bench_xsk_tx(port_handle(port), int(size), 0, ns, 512, res)
    else:
        rc = lib.nmc_bench_xsk_rx(port_handle(port), ns, int(float(wait) * 1e9), int(IDLE_S * 1e9), 0, res)
    if rc < 0:
        raise os_error(-rc, "run the benchmark on", port.name)
    out = {k: int(getattr(res, k)) for k in ("elapsed_ns", "start_ns", "end_ns", "packets",
                                             "bytes", "batches", "syncs", "polls")}
    out.update(backend=info.backend, xdp_mode=info.xdp_mode)
    port.close()
    _emit("result", out)
    return 0


def _frame(size: int):
    from scapy.all import Ether, Raw
    return (Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02", type=ETHERTYPE)
            / Raw(bytes(k & 0xFF for k in range(14, size))))


def scapy(role, ifname, size, seconds, wait, cpu) -> int:
    _pin(cpu)
    from scapy.all import conf
    limit = float(seconds)
    if role == "tx":
        pkt = _frame(int(size))
        sock = conf.L2socket(iface=ifname)
        _emit("ready")
        _wait_go()
        sent, start = 0, time.monotonic()
        now = start
        while now - start < limit:
            sock.send(pkt)
            sent += 1
            now = time.monotonic()
        sock.close()
        _emit("result", {"packets": sent, "elapsed_ns": int((now - start) * 1e9)})
        return 0
    sock = conf.L2listen(iface=ifname)
    _emit("ready")
    got, first, last, t0 = 0, 0.0, 0.0, time.monotonic()
    while True:
        now = time.monotonic()
        if (first and now - first >= limit) or (not first and now - t0 >= float(wait)) \
                or (first and now - last >= IDLE_S):
            break
        if not select.select([sock], [], [], 0.05)[0]:
            continue
        pkt = sock.recv()
        if pkt is not None and getattr(pkt, "type", None) == ETHERTYPE:
            got += 1
            last = time.monotonic()
            first = first or last
    sock.close()
    _emit("result", {"packets": got, "elapsed_ns": int((last - first) * 1e9)})
    return 0


WORKERS = {"nic": nic, "scapy": scapy}

if __name__ == "__main__":
    sys.exit(WORKERS[sys.argv[1]](*sys.argv[2:]))
