"""The forwarding process behind ``vale-ctl -a valeX:eth0`` (a NIC on a switch).

It holds the NIC port ``netmap:eth0`` (any backend, by admode) and the
switch port ``valeX:eth0``, and moves packets both ways until SIGTERM, as
netmap's in-kernel NIC attachment does.  vale-ctl starts it in its own
session and reads one status line from its stdout; ``vale-ctl -d`` stops it
through its pidfile.
"""
from __future__ import annotations

import argparse
import os
import select
import signal
import sys

import nmcompat
from nmcompat import _vale_nic
from nmcompat.tools._cli import one_line, run


def _serve(nic, sw, stop) -> None:
    fds = select.poll()
    fds.register(nic.fileno(), select.POLLIN)
    fds.register(sw.fileno(), select.POLLIN)
    while not stop:
        nic.rxsync()
        sw.rxsync()
        moved = nic.forward(sw, 1024) + sw.forward(nic, 1024)
        sw.txsync()
        nic.txsync()
        if moved == 0:
            fds.poll(100)


def main(argv=None) -> int:
    return run("vale-attachd", _main, argv)


def _main(argv) -> int:
    ap = argparse.ArgumentParser(prog="nmcompat vale-attachd")
    ap.add_argument("name", help="valeX:ifname")
    args = ap.parse_args(argv)
    sw_name, ifname = args.name.split(":", 1)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    try:
        nic = nmcompat.open(f"netmap:{ifname}")
        # the switch port's buffers are the NIC's: the switch splits longer
        # fragments into them, where a copy between the two ports would cut them
        size = {} if nic.info.backend == "native" else {"buf_size": nic.info.buf_size}
        sw = nmcompat.open(args.name, rings=max(1, nic.info.rx_rings), **size)
    except (OSError, ValueError) as exc:
        print(f"error {exc.errno if isinstance(exc, OSError) else 22} {one_line(exc)}", flush=True)
        return 1
    pidfile = _vale_nic.pidfile(sw_name, ifname)
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    print(f"ok {nic.info.backend}", flush=True)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    try:
        _serve(nic, sw, stop)
    finally:
        sw.close()
        nic.close()
        _vale_nic.remove_pidfile(pidfile, os.getpid())
    return 0
