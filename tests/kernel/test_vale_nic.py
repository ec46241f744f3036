"""A NIC on a VALE switch: ``vale-ctl -a vale0:va`` and traffic through it.

netmap attaches a NIC to a switch in the kernel; nmcompat starts a forwarding
process (``nmcompat vale-attachd``) that holds ``netmap:va`` on whichever NIC
backend admode picks and the switch port ``vale0:va``, and moves packets both
ways.  These tests attach va (one end of the namespace's veth pair) to vale0,
open two ephemeral switch ports vale0:p1 and vale0:p2, and talk to a plain
AF_PACKET socket on vb, the other end of the pair:

- a broadcast from vb reaches p1 and p2; p1's reply to vb's MAC reaches vb and
  not p2, and vb's reply to p1's MAC reaches p1 and not p2 (the switch
  learned where each MAC is); a broadcast from p2 reaches vb and p1;
- many frames each way, byte-exact and in order, up to 9000 bytes (MTU 9000
  on both veth ends; NS_MOREFRAG chains through the switch and the NIC);
- ``vale-ctl`` with no arguments lists vale0:va; attaching it again fails
  with EBUSY, ``-h`` with EOPNOTSUPP, an interface that does not exist with
  ENXIO (and leaves no process behind);
- ``-d`` stops the forwarding process (its pid is gone), the listing no longer
  has vale0:va, and (AF_XDP) its XDP program is gone with it;
- a forwarder killed with SIGKILL leaves its switch port to be reclaimed and
  the NIC can be attached again.

Each runs with the forwarder on AF_XDP (admode best) and on AF_PACKET
($NMCOMPAT_ADMODE=2).  Every test has its own network namespace (conftest.py's
``netns``) and runtime directory; the forwarding processes it starts are
stopped by the test, and killed by pid at teardown if one is left.
"""
from __future__ import annotations

import errno
import glob
import os
import signal
import socket
import subprocess
import sys
from contextlib import ExitStack, closing

import pytest

import nmcompat
from nmcompat import vale
from nmcompat.bpf import OUR_PREFIX, attached_programs

from nic_support import (BROADCAST, JUMBO, MAC_B, frame, peer_quiet, peer_receiver, peer_recv,
                         peer_sender, port_collect, port_quiet, port_send, quiet, reshape_veth,
                         set_mtu, udp_frame, udp_seq, wait_until)

pytestmark = pytest.mark.kernel

MAC_P1 = bytes.fromhex("020000000101")
MAC_P2 = bytes.fromhex("020000000102")
FORWARDERS = {"afxdp": {}, "afpacket": {"NMCOMPAT_ADMODE": "2"}}


@pytest.fixture(params=list(FORWARDERS))
def forwarder(request):
    """The NIC backend the forwarding process should use, and its environment."""
    return request.param, FORWARDERS[request.param]


@pytest.fixture
def reap_forwarders(netns, rundir):
    """Kill, by pid, any forwarding process a failed test left running (their
    pidfiles are in this test's runtime directory), before the namespace goes."""
    yield
    for path in glob.glob(os.path.join(str(rundir), "attach.*.pid")):
        pid = _alive_forwarder(path)
        if pid:
            os.kill(pid, signal.SIGKILL)


def _alive_forwarder(pidfile: str):
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return pid if b"vale-attachd" in f.read() else None
    except (OSError, ValueError):
        return None


# -- inside the namespace -----------------------------------------------------------------

def vale_ctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmcompat.tools", "vale-ctl", *args],
                          capture_output=True, text=True, timeout=60)


def listing() -> list:
    """(name, bridge_idx, port_idx) of every port `vale-ctl` lists (it exits
    1 even on success, as netmap's does)."""
    r = vale_ctl()
    assert r.returncode == 1 and r.stderr == "", r
    out = []
    for line in r.stdout.splitlines():
        name, _, bridge, _, port = line.split()
        out.append((name, int(bridge), int(port)))
    return out


def pidfile() -> str:
    return os.path.join(os.environ["NMCOMPAT_RUNDIR"], "attach.vale0.va.pid")


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def our_programs() -> list:
    return sorted(i.name for i in attached_programs(socket.if_nametoindex("va"))[1].values())


def attach(backend: str, env: dict) -> int:
    """vale-ctl -a vale0:va; returns the forwarder's pid, after checking it
    runs on the expected backend (AF_XDP: nmcompat's XDP program on va)."""
    os.environ.update(env)
    r = vale_ctl("-a", "vale0:va")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
    pid = _alive_forwarder(pidfile())
    assert pid, "no forwarding process after vale-ctl -a"
    names = our_programs()
    if backend == "afxdp":
        assert len(names) == 1 and names[0].startswith(OUR_PREFIX), names
    else:
        assert names == [], f"an XDP program on va with the AF_PACKET backend: {names}"
    return pid


def detach(pid: int) -> None:
    r = vale_ctl("-d", "vale0:va")
    assert r.returncode == 0 and r.stderr == "", r
    assert wait_until(lambda: gone(pid), 10), f"forwarder {pid} still running after -d"
    assert not os.path.exists(pidfile())


def stop_if_running(pid) -> None:
    if pid and not gone(pid):
        os.kill(pid, signal.SIGKILL)


def _traffic(backend: str, env: dict):
    quiet()
    pid = None
    with ExitStack() as stack:
        pid = attach(backend, env)
        stack.callback(stop_if_running, pid)
        p1 = stack.enter_context(nmcompat.open("vale0:p1"))
        p2 = stack.enter_context(nmcompat.open("vale0:p2"))
        rx = stack.enter_context(closing(peer_receiver("vb")))
        tx = stack.enter_context(closing(peer_sender("vb")))

        names = {name: port for name, bridge, port in listing() if bridge == 0}
        assert {"vale0:va", "vale0:p1", "vale0:p2"} <= set(names), names
        assert vale.lookup("vale0:va").port_idx == names["vale0:va"]

        # a broadcast from vb reaches both switch ports
        hello = frame(1, 100, src=MAC_B, dst=BROADCAST)
        tx.send(hello)
        assert port_collect(p1, 1) == [hello]
        assert port_collect(p2, 1) == [hello]

        # p1 answers vb's MAC: only vb gets it (learned on va's port)
        reply = frame(2, 100, src=MAC_P1, dst=MAC_B)
        port_send(p1, [reply])
        assert peer_recv(rx, 1) == [reply]
        assert port_quiet(p2, 0.3) == [], "a unicast to vb's MAC reached p2"

        # vb answers p1's MAC: only p1 gets it
        back = frame(3, 100, src=MAC_B, dst=MAC_P1)
        tx.send(back)
        assert port_collect(p1, 1) == [back]
        assert port_quiet(p2, 0.3) == [], "a unicast to p1's MAC reached p2"

        # a broadcast from p2 reaches vb and p1
        shout = frame(4, 100, src=MAC_P2, dst=BROADCAST)
        port_send(p2, [shout])
        assert peer_recv(rx, 1) == [shout]
        assert port_collect(p1, 1) == [shout]

        # many frames, every size up to jumbo, both ways, byte-exact and in order
        sizes = [60, 61, 1514, 2048, 2049, 4096, JUMBO]
        inbound = [frame(100 + i, sizes[i % len(sizes)], tag=1, src=MAC_B, dst=MAC_P1)
                   for i in range(350)]
        outbound = [frame(100 + i, sizes[i % len(sizes)], tag=2, src=MAC_P1, dst=MAC_B)
                    for i in range(350)]
        got_in, got_out = [], []
        for start in range(0, len(inbound), 50):
            for f in inbound[start:start + 50]:
                tx.send(f)
            got_in += port_collect(p1, min(start + 50, len(inbound)) - len(got_in))
            port_send(p1, outbound[start:start + 50])
            got_out += peer_recv(rx, min(start + 50, len(outbound)) - len(got_out))
        assert got_in == inbound, f"vb -> p1: {len(got_in)} of {len(inbound)}"
        assert got_out == outbound, f"p1 -> vb: {len(got_out)} of {len(outbound)}"
        assert port_quiet(p2, 0.3) == [], "unicast traffic reached p2"
        assert peer_quiet(rx, 0.2) == [] and port_quiet(p1, 0.2) == []

        # attaching again, or with the host stack, is refused
        again = vale_ctl("-a", "vale0:va")
        assert again.returncode == 1
        assert again.stderr == (f"failed to attach vale0:va: {os.strerror(errno.EBUSY)} "
                                "(it is attached already)\n")     # netmap's line, then why
        host = vale_ctl("-h", "vale0:va")
        assert host.returncode == 1
        assert host.stderr == f"failed to attach vale0:va: {os.strerror(errno.EOPNOTSUPP)}\n"
        try:
            vale.attach("vale0:va")
            raise AssertionError("a second attach through the API succeeded")
        except OSError as exc:
            assert exc.errno == errno.EBUSY
        assert _alive_forwarder(pidfile()) == pid, "the refused attaches touched the forwarder"

        # -d stops the forwarder; the switch and its other ports stay
        detach(pid)
        names = [name for name, _, _ in listing()]
        assert "vale0:va" not in names and {"vale0:p1", "vale0:p2"} <= set(names), names
        assert our_programs() == [], "the forwarder's XDP program outlived it"
        tx.send(frame(5, 100, src=MAC_B, dst=BROADCAST))
        assert port_quiet(p1, 0.3) == [], "traffic from vb still reaches the switch"
        port_send(p1, [frame(6, 100, src=MAC_P1, dst=BROADCAST)])
        assert peer_quiet(rx, 0.3) == [], "traffic from the switch still reaches vb"
        assert port_collect(p2, 1) == [frame(6, 100, src=MAC_P1, dst=BROADCAST)]

        # and the NIC can be attached again
        pid = attach(backend, env)
        stack.callback(stop_if_running, pid)
        tx.send(frame(7, 100, src=MAC_B, dst=MAC_P1))
        assert port_collect(p1, 1) == [frame(7, 100, src=MAC_B, dst=MAC_P1)]
        detach(pid)
    assert [n for n, _, _ in listing()] == []


def test_switch_with_nic_and_two_ports(netns, forwarder, reap_forwarders):
    set_mtu(netns, JUMBO)
    netns.run(_traffic, *forwarder)


def _killed(backend: str, env: dict):
    quiet()
    pid = attach(backend, env)
    try:
        with nmcompat.open("vale0:p1") as p1, closing(peer_sender("vb")) as tx:
            os.kill(pid, signal.SIGKILL)
            assert wait_until(lambda: gone(pid), 10)
            # the dead forwarder's switch port is reclaimed by the next listing
            assert [n for n, _, _ in listing()] == ["vale0:p1"]
            assert wait_until(lambda: our_programs() == [], 10), "XDP program outlived its owner"
            # a stale pidfile does not block a new attach
            pid = attach(backend, env)
            f = frame(1, 200, src=MAC_B, dst=BROADCAST)
            tx.send(f)
            assert port_collect(p1, 1) == [f]
            detach(pid)
    finally:
        stop_if_running(pid)


def test_killed_forwarder_is_reclaimed(netns, forwarder, reap_forwarders):
    netns.run(_killed, *forwarder)


def _refused(backend: str, env: dict):
    quiet()
    os.environ.update(env)
    r = vale_ctl("-a", "vale0:nosuch0")
    assert r.returncode == 1
    assert r.stderr == f"failed to attach vale0:nosuch0: {os.strerror(errno.ENXIO)}\n", r
    assert not glob.glob(os.path.join(os.environ["NMCOMPAT_RUNDIR"], "attach.*"))
    lines = [n for n, _, _ in listing()]
    assert lines == [], lines
    d = vale_ctl("-d", "vale0:va")                      # nothing attached
    assert d.returncode == 1 and d.stderr.startswith("failed to detach vale0:va: "), d
    h = vale_ctl("-h", "vale0:va")
    assert h.returncode == 1
    assert h.stderr == f"failed to attach vale0:va: {os.strerror(errno.EOPNOTSUPP)}\n"
    assert our_programs() == []


def test_attach_errors(netns, forwarder, reap_forwarders):
    netns.run(_refused, *forwarder)


def _four_queues(backend: str, env: dict):
    quiet()
    pid = attach(backend, env)
    try:
        keep = lambda d: udp_seq(d) is not None        # noqa: E731
        with nmcompat.open("vale0:p1") as p1, closing(peer_sender("vb")) as tx, \
                closing(peer_receiver("vb", proto=0x0800)) as rx:
            assert vale.port_info("vale0:va")["rx_rings"] == 4
            inbound = [MAC_P1 + f[6:] for f in (udp_frame(i, 4000 + i % 64) for i in range(256))]
            for f in inbound:
                tx.send(f)
            got = port_collect(p1, len(inbound), keep=keep)
            assert sorted(got) == sorted(inbound), f"{len(got)} of {len(inbound)}"
            for flow in range(64):          # each flow (one queue) in order
                sent = [f for f in inbound if udp_seq(f) % 64 == flow]
                assert [f for f in got if udp_seq(f) % 64 == flow] == sent
            outbound = [MAC_B + MAC_P1 + f[12:] for f in (udp_frame(1000 + i, 5000 + i % 64)
                                                          for i in range(256))]
            port_send(p1, outbound)
            back = peer_recv(rx, len(outbound), keep=keep)
            assert sorted(back) == sorted(outbound), f"{len(back)} of {len(outbound)}"
        detach(pid)
    finally:
        stop_if_running(pid)


def test_four_queue_nic_on_switch(netns, forwarder, reap_forwarders):
    """A NIC with four queues: the forwarder's switch port gets four rings,
    and frames of every queue reach p1 (each flow in order), and back."""
    reshape_veth(netns, 4)
    netns.run(_four_queues, *forwarder)
