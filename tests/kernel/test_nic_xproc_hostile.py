"""A process on a shared AF_XDP NIC record that garbles the record's share
memory (DESIGN §13): it may lose or duplicate that record's buffers, never
make another process on the record read or write out of bounds or SIGBUS.

The hostile child opens the queue like any opener, then takes its own
description of the share memory's memfd (/proc/self/fd) and rewrites its
header, truncates it or zeroes a queue's ring sizes.  The victim, the other
process on the record, then syncs, lists its buffers and closes: it must
exit normally.
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

HERE = Path(__file__).resolve().parent

VICTIM = r"""
import errno, json, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
sys.path[:0] = [sys.argv[1]]
import nmcompat
from test_nic_lifetime import nic_bufs
try:
    p = nmcompat.open("netmap:va-0", backend="afxdp", xdp_mode="skb")
except OSError as exc:
    print("error", errno.errorcode.get(exc.errno, exc.errno), json.dumps(str(exc)), flush=True)
    sys.exit(0)
print("ready", flush=True)
signal.sigwait({signal.SIGUSR2})
p.rxsync()
print("bufs", len(nic_bufs(p)), flush=True)
p.close()
print("closed", flush=True)
"""

HOSTILE = r"""
import mmap, os, signal, struct, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
import nmcompat
mode = sys.argv[1]
p = nmcompat.open("netmap:va-0", backend="afxdp", xdp_mode="skb")
fd = None
for n in os.listdir("/proc/self/fd"):
    try:
        if os.readlink(f"/proc/self/fd/{n}").startswith("/memfd:nmcompat-nic-share"):
            fd = os.open(f"/proc/self/fd/{n}", os.O_RDWR)   # a description of our own
            break
    except OSError:
        pass
assert fd is not None
m = mmap.mmap(fd, 32768)
magic, nq, buf_num, spare_cap = struct.unpack_from("<4I", m, 0)
print("ready", nq, buf_num, spare_cap, flush=True)
signal.sigwait({signal.SIGUSR1})
QUEUE0 = 16 + 16 * 4 * 257             # header, then 16 process entries (pid + 256 fds)
if mode == "buf_num":
    struct.pack_into("<I", m, 8, 0x7fffffff)
elif mode == "spare_cap":
    struct.pack_into("<I", m, 12, 0x7fffffff)
elif mode == "nq":
    struct.pack_into("<I", m, 4, 0xffff)
elif mode == "rx_size":
    struct.pack_into("<II", m, QUEUE0 + 16, 0, 0)     # q[0].rx_size, tx_size
elif mode == "truncate":
    try:
        os.ftruncate(fd, 0)
    except OSError as exc:
        print("refused", exc.errno, flush=True)
if mode != "rx_size":
    p.close()
print("done", flush=True)
signal.sigwait({signal.SIGUSR1})
"""


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def _spawn(procs, netns, code, *args):
    proc = procs.spawn(["ip", "netns", "exec", netns.name, sys.executable, "-c", code, *args])
    return proc, proc.expect("", timeout=20)


def _victim_survives(victim):
    victim.kill(signal.SIGUSR2)
    victim.expect("closed", timeout=20)
    rc = victim.wait(20)
    assert rc == 0, f"the victim died ({rc})\n" + victim.describe()


@pytest.mark.parametrize("first", ["victim", "hostile"])
@pytest.mark.parametrize("mode", ["buf_num", "spare_cap", "nq", "truncate"])
def test_garbled_share_memory_never_crashes_another_process(netns, procs, mode, first):
    if first == "victim":
        victim, vline = _spawn(procs, netns, VICTIM, HERE)
        hostile, hline = _spawn(procs, netns, HOSTILE, mode)
    else:
        hostile, hline = _spawn(procs, netns, HOSTILE, mode)
        victim, vline = _spawn(procs, netns, VICTIM, HERE)
    assert vline == "ready" and hline.startswith("ready"), victim.describe() + hostile.describe()
    hostile.kill(signal.SIGUSR1)
    out = hostile.expect("done" if mode != "truncate" else "", timeout=20)
    if mode == "truncate":       # sealed at its creation: its size cannot change
        assert out.startswith("refused"), hostile.describe()
    _victim_survives(victim)
    hostile.kill(signal.SIGUSR1)
    assert hostile.wait(20) == 0, hostile.describe()


def test_garbled_ring_sizes_refuse_the_join(netns, procs):
    """A queue's ring sizes, zeroed in the share memory by the process that
    made the socket, are refused by a joiner instead of mapping a ring of
    mask 0xffffffff."""
    hostile, hline = _spawn(procs, netns, HOSTILE, "rx_size")
    assert hline.startswith("ready"), hostile.describe()
    hostile.kill(signal.SIGUSR1)
    hostile.expect("done", timeout=20)
    victim, vline = _spawn(procs, netns, VICTIM, HERE)
    assert vline.startswith("error EPROTO"), vline + "\n" + victim.describe()
    assert victim.wait(20) == 0, victim.describe()
    hostile.kill(signal.SIGUSR1)
    assert hostile.wait(20) == 0, hostile.describe()
