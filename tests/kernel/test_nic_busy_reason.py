"""An AF_XDP open refused with EBUSY names the one cause the engine knows
(nmc_busy_cause): a port of this process with host rings holds the queue's
socket, or an NR_EXCLUSIVE holder in another process; a single queue is
"queue 0", not a range.  The list of possible causes is only for a refusal
whose cause is unknown."""
from __future__ import annotations

import errno

import pytest

from afxdp_support import Child, open_xdp

pytestmark = pytest.mark.kernel

CHILD_HOLDS = """
import sys, nmcompat
p = nmcompat.open(sys.argv[1], backend="afxdp", xdp_mode="skb")
print("ready", flush=True)
sys.stdin.readline()
"""
LIST_OF_CAUSES = "a closed socket is still being released"


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def _open_errno(name):
    try:
        open_xdp(name, "skb").close()
        return 0, ""
    except OSError as exc:
        return exc.errno, str(exc)


def _host_rings_in_this_process():
    with open_xdp("netmap:va", "skb"):
        return _open_errno("netmap:va*")


def _beside_another_process(held, opened):
    holder = Child(CHILD_HOLDS, held)
    try:
        holder.expect("ready")
        return holder.pid, _open_errno(opened)
    finally:
        holder.kill()


def test_host_rings_beside_a_port_of_this_process(netns):
    err, text = netns.run(_host_rings_in_this_process)
    assert err == errno.EBUSY, text
    assert "this process" in text and "another process" not in text, text
    assert LIST_OF_CAUSES not in text, text
    assert "queue 0 of va" in text and "0..0" not in text, text


def test_exclusive_holder_in_another_process(netns):
    pid, (err, text) = netns.run(_beside_another_process, "netmap:va/x", "netmap:va")
    assert err == errno.EBUSY, text
    assert "held with NR_EXCLUSIVE" in text and f"process {pid}" in text, text
    assert LIST_OF_CAUSES not in text, text


def test_exclusive_open_beside_a_holder_in_another_process(netns):
    pid, (err, text) = netns.run(_beside_another_process, "netmap:va", "netmap:va/x")
    assert err == errno.EBUSY, text
    assert "this open asks for NR_EXCLUSIVE" in text and f"process {pid}" in text, text
    assert LIST_OF_CAUSES not in text, text
