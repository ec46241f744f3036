"""A process holding NIC ports is SIGKILLed: the next open (of anything, in
the same runtime directory) gives the tmpfs back, and no XDP program stays
attached to the interface (nmcompat attaches through BPF links, which the
kernel drops with the process).  Each test runs in its own network namespace
and runtime directory."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

import nmcompat
from nmcompat import rundir as rd
from nmcompat.bpf.netlink import xdp_query

from nic_support import BACKEND_IDS, BACKENDS

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("rundir")]

HOLDER = textwrap.dedent("""
    import sys, nmcompat
    p = nmcompat.open("netmap:va", backend=sys.argv[1], xdp_mode=sys.argv[2])
    p.inject(b"\\xff" * 6 + b"\\x02" * 6 + b"\\x08\\x00" + b"x" * 46)
    p.txsync()
    print("ready", p.info.region, flush=True)
    __import__("time").sleep(600)
""")


def _kill_then_open(backend, mode, rundir):
    with nmcompat.open("netmap:base{0"):
        pass
    baseline = rd.usage(rundir)
    child = subprocess.Popen([sys.executable, "-c", HOLDER, backend, mode or "auto"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        if not line.startswith("ready"):
            return {"error": line + child.stderr.read()}
        held = rd.usage(rundir)
        attached = xdp_query(_ifindex("va")).attached
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    with nmcompat.open("netmap:after{0"):
        pass
    return {"baseline": baseline, "held": held, "after": rd.usage(rundir),
            "attached_while_held": attached, "attached_after": xdp_query(_ifindex("va")).attached,
            "entries": _entries(rundir)}


def _entries(rundir: str) -> list:
    """The runtime directory's files, the wakeup sockets' directory wake/
    (which stays) listed as its sockets."""
    names = sorted(os.listdir(rundir))
    if "wake" in names:
        names.remove("wake")
        names += [f"wake/{n}" for n in sorted(os.listdir(os.path.join(rundir, "wake")))]
    return names


def _ifindex(name: str) -> int:
    return socket.if_nametoindex(name)


@pytest.mark.parametrize("nic", BACKENDS, ids=BACKEND_IDS)
def test_killed_nic_holder_is_reclaimed_by_the_next_open(netns, nic, rundir):
    out = netns.run(_kill_then_open, *nic, str(rundir))
    assert "error" not in out, out["error"]
    assert out["held"] > out["baseline"]
    assert out["attached_while_held"] == (nic[0] == "afxdp")
    assert out["after"] == out["baseline"], out
    assert not out["attached_after"]
    assert out["entries"] == ["lock"]
