"""Two network namespaces, each with an interface va, one runtime directory:
a NIC record is the interface of its namespace (device and inode of
ns/net, ifindex), never any interface of that name.  An open in the second
namespace makes its own record instead of joining the first's, and a NIC
device descriptor passed into the other namespace is refused (EXDEV), as
its sockets are bound to an interface the receiver cannot name.
"""
from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import veth_netns

pytestmark = pytest.mark.kernel

HERE = Path(__file__).resolve().parent

SENDER = r"""
import json, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
sys.path[:0] = [sys.argv[1]]
import nmcompat
from afxdp_support import MAC_A, MAC_B, frame, quiet_ipv6, send_all, wait_tx_done
quiet_ipv6("va", "vb")
p = nmcompat.open("netmap:va-0", backend="afxdp", xdp_mode="skb")
print("ready", p.info.region, flush=True)
signal.sigwait({signal.SIGUSR1})
if sys.argv[2] == "send":
    send_all(p, [frame(i, 70, 4, src=MAC_A, dst=MAC_B) for i in range(50)])
    print("sent", wait_tx_done(p), flush=True)
p.close()
print("closed", flush=True)
"""

PASSER = r"""
import os, signal, subprocess, sys
import nmcompat
from nmcompat._ffi import ffi, lib
p = nmcompat.open("netmap:va-0", backend="afxdp", xdp_mode="skb")
dfd = lib.nmc_port_dev_fd(p._h)
assert dfd >= 0, dfd
child = subprocess.run(["ip", "netns", "exec", sys.argv[1], sys.executable, "-c", sys.argv[2],
                        str(dfd)], pass_fds=(dfd,), capture_output=True, text=True, timeout=60)
print("child", child.returncode, child.stdout.strip(), child.stderr.strip()[-300:], flush=True)
os.close(dfd)
p.close()
"""

ADOPTER = r"""
import sys
from nmcompat._ffi import ffi, lib
out = ffi.new("struct nmc_port **")
rc = lib.nmc_port_adopt(int(sys.argv[1]), out)
print("adopt", rc, flush=True)
if rc == 0:
    lib.nmc_port_close(out[0])
"""


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


@pytest.fixture
def netns2():
    yield from veth_netns()


def _rx_packets(ns, dev):
    out = subprocess.run(["ip", "-n", ns.name, "-s", "-j", "link", "show", dev],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]["stats64"]["rx"]["packets"]


def _sender(procs, ns, what):
    proc = procs.spawn(["ip", "netns", "exec", ns.name, sys.executable, "-c", SENDER, HERE, what])
    return proc, proc.expect("ready", timeout=20).split()[1]


def test_same_name_in_another_netns_is_another_record(netns, netns2, procs):
    a, region_a = _sender(procs, netns, "idle")
    b, region_b = _sender(procs, netns2, "send")
    assert region_b != region_a, "the second namespace's open joined the first's record"
    before1, before2 = _rx_packets(netns, "vb"), _rx_packets(netns2, "vb")
    b.kill(signal.SIGUSR1)
    assert b.expect("sent", timeout=20) == "sent True"
    b.expect("closed", timeout=20)
    assert _rx_packets(netns, "vb") == before1, "frames went out of the first namespace's va"
    assert _rx_packets(netns2, "vb") - before2 >= 50
    a.kill(signal.SIGUSR1)
    a.expect("closed", timeout=20)
    assert a.wait(20) == 0 and b.wait(20) == 0


def test_device_descriptor_into_another_netns_is_refused(netns, netns2, procs):
    passer = procs.spawn(["ip", "netns", "exec", netns.name, sys.executable, "-c", PASSER,
                          netns2.name, ADOPTER])
    line = passer.expect("child", timeout=60)
    assert passer.wait(30) == 0, passer.describe()
    rc, said = int(line.split()[1]), line.split()[2:4]
    assert rc == 0 and said == ["adopt", str(-errno.EXDEV)], line
