"""An open of netmap:va joins another process's AF_XDP record of va only
when that process is in the same network namespace: another namespace's
va is another interface (docs/DESIGN.md §12, nic_xproc.c).  Before, a port
on va of one namespace joined the record of a port on va of another, which
shares one rundir (the default one is shared by every process of the
user), and its frames left through the other namespace's va."""
from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NetNS, netns_name

import nic_support

pytestmark = pytest.mark.kernel
HERE = Path(__file__).resolve().parent

HOLDER = r"""
import sys, nmcompat
port = nmcompat.open("netmap:va", backend="afxdp", xdp_mode=sys.argv[1])
print("open", flush=True)
sys.stdin.readline()
port.close()
"""


def _send_from_va(xdp_mode: str) -> bool:
    """A frame the port on va sends: whether this namespace's vb sees it."""
    nic_support.quiet()
    rx = nic_support.peer_receiver("vb")
    port = nic_support.open_nic("netmap:va", "afxdp", xdp_mode)
    try:
        nic_support.port_send(port, [nic_support.frame(1, 60, src=nic_support.MAC_A,
                                                       dst=nic_support.MAC_B)])
        while select.select([rx], [], [], 10)[0]:
            if nic_support.is_ours(rx.recv(2048)):
                return True
        return False
    finally:
        port.close()


@pytest.fixture
def other_netns():
    """A second namespace with its own va <-> vb."""
    ns = NetNS(netns_name())
    subprocess.run(["ip", "netns", "add", ns.name], check=True)
    try:
        ns.ip("link", "add", "name", "va", "type", "veth", "peer", "name", "vb")
        ns.ip("link", "set", "dev", "va", "up")
        ns.ip("link", "set", "dev", "vb", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns.name], check=False)


@pytest.mark.parametrize("xdp_mode", ["drv", "skb"])
def test_a_port_does_not_join_a_record_of_another_namespace(netns, other_netns, rundir, xdp_mode):
    holder = subprocess.Popen(["ip", "netns", "exec", other_netns.name, sys.executable, "-c",
                               HOLDER, xdp_mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        assert netns.run(_send_from_va, xdp_mode), \
            "the port's frame did not leave through its own namespace's va"
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
