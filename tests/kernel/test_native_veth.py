"""The native backend on a NIC: Python under `nmcompat exec` with admode=1
registers netmap:va (one end of a veth pair in the test's own network
namespace) through the emulated /dev/netmap, and frames cross the veth both
ways, checked with a plain AF_PACKET socket on vb.  Serving the NIC name
is the emulation's part (docs/DESIGN.md section 14).
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from nic_support import peer_receiver, peer_sender, quiet

pytestmark = pytest.mark.kernel

CHILD = Path(__file__).resolve().parent.parent / "unit" / "native_child.py"
COUNT = 200                     # fewer than a ring holds: AF_PACKET and veth may drop beyond


def _frame(seq: int) -> bytes:
    """What native_child.frame(seq) builds, from vb's MAC to va's."""
    mac = lambda last: bytes([2, 0, 0, 0, 0, last])   # noqa: E731
    return (mac(1) + mac(2) + b"\x88\xb5" + seq.to_bytes(4, "big")).ljust(60, b"\0")


def _exec(rundir: str, *args, **popen):
    argv = [sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", rundir, "--",
            sys.executable, str(CHILD), *map(str, args)]
    return subprocess.Popen(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, NMCOMPAT_RUNDIR=rundir), **popen)


def _report(proc) -> dict:
    out, err = proc.communicate(timeout=120)
    lines = out.splitlines()
    assert lines, f"no report (exit {proc.returncode}): {err}"
    return json.loads(lines[-1])


def _both_ways(rundir: str) -> dict:
    """In the namespace: frames from vb to the native port, then back."""
    quiet()
    sender = peer_sender()
    receiver = _exec(rundir, "recv", "netmap:va", COUNT, "admode=1")
    try:
        ready, _, _ = select.select([receiver.stdout], [], [], 60)
        assert ready, "the receiver neither opened its port nor failed"
        line = receiver.stdout.readline()
        if line != "ready\n":
            receiver.wait(timeout=60)
            return {"refused": json.loads(line)}
        for seq in range(COUNT):
            sender.send(_frame(seq))
        inbound = _report(receiver)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    sink = peer_receiver()
    outbound = _report(_exec(rundir, "send", "netmap:va", COUNT, "admode=1"))
    got = []
    while len(got) < COUNT and select.select([sink], [], [], 5)[0]:
        data, addr = sink.recvfrom(65536)
        if len(data) >= 18 and data[12:14] == b"\x88\xb5":
            got.append(int.from_bytes(data[14:18], "big"))
    return {"inbound": inbound, "outbound": outbound, "at_vb": got}


def test_a_native_veth_port_under_exec(netns, rundir):
    result = netns.run(_both_ways, str(rundir))
    assert "refused" not in result, result
    port = result["inbound"]["ports"][0]
    assert port["backend"] == "native" and port["why"] == "admode 1 (native)", port
    assert port["region"] == "/dev/netmap" and port["bound_rx"] == [0], port
    assert result["inbound"]["got"] == list(range(COUNT))
    assert result["outbound"]["ports"][0]["backend"] == "native"
    assert result["at_vb"] == list(range(COUNT))
