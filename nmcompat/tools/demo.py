"""./run demo: a sender and a receiver process exchanging packets, with rates.

By default (as root, with AF_XDP) the two processes sit on the two ends of
a veth pair the demo creates in its own network namespace (removed at the
end): netmap:vb sends, netmap:va receives, each over AF_XDP.  Without
those, or with --pipe, they use a netmap pipe.  The sender queues batches
of 60-byte frames carrying a sequence number, one C call per batch; the
receiver takes batches back and checks the sequence.  Each prints its rate
once a second, then a summary.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

from nmcompat.tools import _demo_roles as roles
from nmcompat.tools._cli import run


def _veth_ready() -> str:
    """'' if the veth demo can run here, else why not."""
    if os.geteuid() != 0:
        return "the veth demo needs root (network namespaces, AF_XDP)"
    if shutil.which("ip") is None:
        return "the veth demo needs iproute2's ip"
    from nmcompat import backends
    probe = backends.get("afxdp").probe()
    return "" if probe.ok else probe.reason


def _make_veth(ns: str) -> None:
    for cmd in (["ip", "netns", "add", ns],
                ["ip", "-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb"],
                ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
                ["ip", "-n", ns, "link", "set", "va", "up"],
                ["ip", "-n", ns, "link", "set", "vb", "up"]):
        subprocess.run(cmd, check=True, capture_output=True)


def _spawn(prefix, role, port, args):
    cmd = prefix + [sys.executable, "-m", "nmcompat.tools.demo_role", role, port,
                    str(args.seconds), str(args.batch)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def _run(prefix, tx_port, rx_port, args) -> int:
    rx = _spawn(prefix, "rx", rx_port, args)
    if rx.stdout.readline().strip() != "ready":
        rx.kill()
        print("demo: FAILED: the receiver could not start", file=sys.stderr)
        return 1
    tx = _spawn(prefix, "tx", tx_port, args)
    try:
        return _report(tx, rx)
    finally:
        for p in (tx, rx):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def _report(tx, rx) -> int:
    done = {}
    for line in _merge(tx, rx):
        msg = json.loads(line)
        if msg["kind"] == "rate":
            name = "sender  " if msg["who"] == "tx" else "receiver"
            print(f"  {name} {msg['mpps']:8.3f} Mpps")
        else:
            done[msg["who"]] = msg
    sent, r = done.get("tx", {}).get("count"), done.get("rx", {})
    ok, lines = verdict(sent, r)
    print("\n".join(lines))
    return 0 if ok else 1


def verdict(sent, r: dict):
    """(ok, lines saying what happened): ok when frames were sent, none came
    out of order, and every one sent was received or counted as dropped by
    the receiving socket (AF_XDP drops a frame when its queue is full; a
    drop after the last frame received is no gap, but is still counted)."""
    if sent is None or not r:
        return False, ["FAILED: a process did not finish"]
    lost, drops = sent - r["count"], r["kernel_drops"]
    lines = [f"sent {sent}, received {r['count']}, out of order {r['errors']}"]
    if lost > 0:
        lines.append(f"not received {lost}: {drops} dropped by the receiving AF_XDP socket when "
                     f"its queue was full (a receiver that fell behind, as on a NIC); "
                     f"gaps seen {r['gaps']}")
    if sent == 0:
        return False, lines + ["FAILED: nothing was sent"]
    if r["errors"]:
        return False, lines + [f"FAILED: {r['errors']} frames arrived out of order or twice"]
    if lost > drops or r["gaps"] > drops:
        return False, lines + [f"FAILED: {lost - drops} frames were neither received nor "
                               "counted as dropped"]
    how = "received in order" if lost <= 0 else "received in order or counted as dropped"
    return True, lines + [f"OK: every frame sent was {how}"]


def _merge(tx, rx):
    """Lines from both processes as they come, until both are done."""
    import selectors
    sel = selectors.DefaultSelector()
    for p in (tx, rx):
        sel.register(p.stdout, selectors.EVENT_READ)
    open_streams = 2
    while open_streams:
        for key, _ in sel.select():
            line = key.fileobj.readline()
            if not line:
                sel.unregister(key.fileobj)
                open_streams -= 1
            elif line.startswith("{"):
                yield line


def main(argv=None) -> int:
    return run("demo", _main, argv)


def _main(argv) -> int:
    ap = argparse.ArgumentParser(prog="nmcompat demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--pipe", action="store_true", help="use a netmap pipe, not a veth pair")
    args = ap.parse_args(argv)
    if not args.seconds > 0 or not 1 <= args.batch <= 65536:
        ap.error("--seconds takes a time > 0, --batch a count in [1, 65536]")
    rundir = tempfile.mkdtemp(prefix="nmcompat-demo-", dir="/dev/shm")
    os.environ["NMCOMPAT_RUNDIR"] = rundir
    why_not = "--pipe was given" if args.pipe else _veth_ready()
    try:
        if why_not:
            print(f"netmap pipe demo{{0 -> demo}}0 ({why_not}): 60-byte frames, "
                  f"batches of {args.batch}, {args.seconds:.0f} s, two processes")
            return _run([], "netmap:demo{0", "netmap:demo}0", args)
        ns = f"nmc-demo-{uuid.uuid4().hex[:8]}"
        try:
            _make_veth(ns)
        except subprocess.CalledProcessError as exc:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            raise OSError(f"couldn't create the veth pair: {' '.join(exc.cmd)}: "
                          f"{(exc.stderr or b'').decode().strip()}") from None
        try:
            print(f"veth pair vb -> va in network namespace {ns}, AF_XDP on both ends: 60-byte "
                  f"frames, batches of {args.batch}, {args.seconds:.0f} s, two processes")
            return _run(["ip", "netns", "exec", ns], "netmap:vb", "netmap:va", args)
        finally:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    finally:
        shutil.rmtree(rundir, ignore_errors=True)


__all__ = ["main", "roles", "time"]
