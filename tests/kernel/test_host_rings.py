"""Host rings of NIC ports (``netmap:va^``, ``netmap:va*``) on both NIC
backends: the stack's frames on the host RX ring, frames of the host TX ring
answered by the stack, the ring counts netmap reports, the stack cut off
from bound NIC rings, and nothing left on the interfaces after close or
SIGKILL (host_support.py has the namespaces)."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import pytest
from conftest import NetNS, netns_name

import nmcompat
import nic_support
from host_support import (A_IP, B_IP, GHOST_IP, GHOST_MAC, HOST_TX_BACKENDS, HOST_TX_IDS, NOTHING,
                          arp_request, echo_replies, host_rings, is_arp, open_port, peer, ping,
                          programs, tc_programs)
from nmcompat._portspec import NR_REG_NIC_SW, NR_REG_ONE_SW, NR_REG_SW

# A reply that must come is awaited this long: after a port let the stack go,
# its neighbour entry for the peer may still be INCOMPLETE (probed once a
# second) or FAILED, and a loaded machine delays each step.
PING_WAIT = 10.0


def _stack_to_host_rx(backend, xdp_mode, ns):
    port = open_port("netmap:va^", backend, xdp_mode)
    try:
        tap = port.info.host_tap
        got = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"to the peer", (B_IP, 9))     # the stack asks for the peer's MAC
            nic_support.port_drain(port, lambda: bool(got), lambda h, d: got.append(d),
                                   timeout=10, keep=lambda d: is_arp(d, 1, B_IP))
        return tap, len(got), port.info.host_rx_rings, port.info.rx_rings
    finally:
        port.close()

def test_stack_frames_reach_host_rx_ring(nic, netns, peer):
    backend, xdp_mode = nic
    tap, got, nhost, nrx = netns.run(_stack_to_host_rx, backend, xdp_mode, netns.name)
    assert tap.startswith("nmh")
    assert got >= 1, "the stack's ARP request for the peer never reached the host RX ring"
    assert nhost == 1 and nrx == 1
    assert ping(netns.name, B_IP, wait=PING_WAIT), "plain ping fails after the port closed"
    assert tc_programs(netns.name, "va") == NOTHING

def _host_tx_answered(backend, xdp_mode):
    port = nic_support.open_nic("netmap:va*", backend, xdp_mode)
    try:
        txr, rxr = host_rings(port)
        nic_support.put_chain(txr, [arp_request(GHOST_MAC, GHOST_IP, A_IP)])
        port.txsync()
        got = []
        nic_support.port_drain(port, lambda: bool(got), lambda h, d: got.append(d),
                               timeout=10, keep=lambda d: is_arp(d, 2, GHOST_IP))
        return [d[:6] == GHOST_MAC for d in got]
    finally:
        port.close()

@pytest.mark.parametrize("nic", HOST_TX_BACKENDS, ids=HOST_TX_IDS)
def test_host_tx_frame_is_answered_by_the_stack(nic, netns, peer):
    backend, xdp_mode = nic
    got = netns.run(_host_tx_answered, backend, xdp_mode)
    assert got and all(got), "the stack did not answer the ARP request put on the host TX ring"

def _ring_counts(backend, xdp_mode):
    out = {}
    for name, mode in (("netmap:va*", NR_REG_NIC_SW), ("netmap:va^", NR_REG_SW),
                       ("netmap:va^0", NR_REG_ONE_SW)):
        port = open_port(name, backend, xdp_mode)
        try:
            i = port.info
            out[name] = (i.tx_rings, i.rx_rings, i.host_tx_rings, i.host_rx_rings,
                         list(i.bound_tx), list(i.bound_rx))
        finally:
            port.close()
    try:
        nmcompat.open("netmap:va^1", backend=backend).close()
        out["^1"] = "opened"
    except OSError as exc:
        out["^1"] = exc.errno
    return out

def test_ring_counts_as_netmap(nic, netns, peer):
    """ctrl-api-test's port_register_hwall_host / hostall / single_host shape."""
    backend, xdp_mode = nic
    got = netns.run(_ring_counts, backend, xdp_mode)
    assert got["netmap:va*"] == (1, 1, 1, 1, [0, 1], [0, 1])
    assert got["netmap:va^"] == (1, 1, 1, 1, [1], [1])
    assert got["netmap:va^0"] == (1, 1, 1, 1, [1], [1])
    assert got["^1"] == 22          # EINVAL: one host ring

KILLED = r"""
import os, sys, time
import nmcompat
port = nmcompat.open(sys.argv[1], backend=sys.argv[2], xdp_mode=sys.argv[3])
print(port.info.host_tap, flush=True)
time.sleep(3600)
"""

def test_sigkill_leaves_nothing_attached(nic, netns, peer):
    backend, xdp_mode = nic
    child = subprocess.Popen(["ip", "netns", "exec", netns.name, sys.executable, "-c", KILLED,
                              "netmap:va*", backend, xdp_mode or "auto"],
                             stdout=subprocess.PIPE, text=True)
    try:
        tap = child.stdout.readline().strip()
        assert tap.startswith("nmh"), tap
        attached = tc_programs(netns.name, "va")
        assert attached["tcx_egress"] == 1, attached
        assert attached["xdp"] == (backend == "afxdp"), attached
        assert not ping(netns.name, B_IP), "the stack reached the peer while the host rings were bound"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    gone = nic_support.wait_until(lambda: subprocess.run(
        ["ip", "-n", netns.name, "link", "show", "dev", tap], capture_output=True).returncode != 0)
    assert gone, f"tap {tap} outlived the killed port"
    assert tc_programs(netns.name, "va") == NOTHING
    assert ping(netns.name, B_IP, wait=PING_WAIT), "plain ping fails after the port was killed"

def _hold_nic_rings(backend, xdp_mode, peer_ns):
    port = nic_support.open_nic("netmap:va", backend, xdp_mode)
    try:
        attached = programs("va")
        return attached, NetNS(peer_ns).run(echo_replies, A_IP, 2, 1.0)
    finally:
        port.close()

def test_bound_nic_rings_cut_the_stack_off(nic, netns, peer):
    """While a port binds va's RX ring the peer's frames reach only the port
    (AF_PACKET: the TCX cut-off; AF_XDP: the XDP redirect), not va's stack."""
    backend, xdp_mode = nic
    attached, replies = netns.run(_hold_nic_rings, backend, xdp_mode, peer)
    assert replies == 0, "va's stack answered while a port bound its NIC RX ring"
    assert attached["tcx_ingress"] == (1 if backend == "afpacket" else 0), attached
    assert tc_programs(netns.name, "va") == NOTHING
    # the peer's failed ARP entry for va is probed again first: answered within 3 tries
    assert NetNS(peer).run(echo_replies, A_IP, 3, PING_WAIT) >= 1, "plain ping fails after the port closed"

def _two_queue_host_rings(backend, xdp_mode):
    port = nic_support.open_nic("netmap:va*", backend, xdp_mode)
    try:
        i = port.info
        shape = (i.tx_rings, i.host_tx_rings, list(i.bound_tx), list(i.bound_rx))
        _, rxr = host_rings(port)
        got = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"to the peer", (B_IP, 9))
            nic_support.port_drain(port, lambda: bool(got), lambda h, d: got.append(h.ring),
                                   timeout=10, keep=lambda d: is_arp(d, 1, B_IP))
        return shape, rxr.ringid, got
    finally:
        port.close()

def test_host_rings_come_after_every_queue(nic, netns):
    """Two queues: the host ring pair is ring 2 of each direction, and the
    stack's frames arrive there."""
    backend, xdp_mode = nic
    nic_support.reshape_veth(netns, queues=2)
    netns.ip("addr", "add", f"{A_IP}/24", "dev", "va")
    shape, host_id, rings = netns.run(_two_queue_host_rings, backend, xdp_mode)
    assert shape == (2, 1, [0, 1, 2], [0, 1, 2])
    assert host_id == 2 and rings and set(rings) == {2}, (host_id, rings)


def _two_host_ports(backend, xdp_mode):
    first = open_port("netmap:va^", backend, xdp_mode)
    try:
        try:
            open_port("netmap:va*", backend, xdp_mode).close()
            return "opened", ""
        except OSError as exc:
            return exc.errno, str(exc)
    finally:
        first.close()


def test_a_second_port_of_the_host_rings_is_busy(nic, netns):
    """The host rings of an interface go to one port at a time (the first
    port's program would take every frame): EBUSY saying so."""
    backend, xdp_mode = nic
    err, msg = netns.run(_two_host_ports, backend, xdp_mode)
    assert err == 16 and "another port has the host rings of va" in msg, (err, msg)
    assert tc_programs(netns.name, "va") == NOTHING


def _two_queue_cutoffs(backend, xdp_mode, peer_ns):
    a = nic_support.open_nic("netmap:va-0", backend, xdp_mode)
    b = nic_support.open_nic("netmap:va-1", backend, xdp_mode)
    try:
        return programs("va"), NetNS(peer_ns).run(echo_replies, A_IP, 3, 1.0)
    finally:
        b.close()
        a.close()


def test_cutoffs_of_two_ports_both_apply(netns):
    """AF_PACKET ports on queues 0 and 1 of a two-queue veth: each cut-off
    program passes what is not its own on to the next (the port of queue 1
    attached last, so first in the chain), so the peer's frames, which a
    veth delivers on queue 0, reach neither stack."""
    nic_support.reshape_veth(netns, queues=2)
    peer_ns = netns_name()
    subprocess.run(["ip", "netns", "add", peer_ns], check=True)
    try:
        netns.ip("link", "set", "dev", "vb", "netns", peer_ns)
        netns.ip("addr", "add", f"{A_IP}/24", "dev", "va")
        subprocess.run(["ip", "-n", peer_ns, "addr", "add", f"{B_IP}/24", "dev", "vb"], check=True)
        subprocess.run(["ip", "-n", peer_ns, "link", "set", "dev", "vb", "up"], check=True)
        attached, replies = netns.run(_two_queue_cutoffs, "afpacket", None, peer_ns)
        assert attached["tcx_ingress"] == 2, attached
        assert replies == 0, "the stack answered past two cut-off programs"
        assert NetNS(peer_ns).run(echo_replies, A_IP, 3, PING_WAIT) >= 1, "no ping after the ports closed"
    finally:
        subprocess.run(["ip", "netns", "del", peer_ns], check=False)


def _status_while_open(backend, xdp_mode, rundir):
    port = nic_support.open_nic("netmap:va*", backend, xdp_mode)
    try:
        r = subprocess.run([sys.executable, "-m", "nmcompat.tools", "status", "--rundir", str(rundir),
                            "--json"], capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr
    finally:
        port.close()


def test_status_lists_the_tc_programs(nic, netns, rundir):
    backend, xdp_mode = nic
    rc, out, err = netns.run(_status_while_open, backend, xdp_mode, rundir)
    assert rc == 0, err
    tcx = {(t["ifname"], t["hook"]): t["names"] for t in json.loads(out)["tcx"]}
    assert tcx[("va", "egress")] == ["nmc_host_egress"]
    assert [n for (ifname, hook), names in tcx.items() if hook == "ingress" and ifname != "va"
            for n in names] == ["nmc_host_inject"]
    assert tcx.get(("va", "ingress"), []) == (["nmc_nic_cutoff"] if backend == "afpacket" else [])


def _nic_then_host(backend, xdp_mode):
    nic_port = nic_support.open_nic("netmap:va", backend, xdp_mode)
    try:
        host = open_port("netmap:va^", backend, xdp_mode)
        try:
            return list(host.info.bound_rx), host.info.host_rx_rings, bool(host.info.host_tap)
        finally:
            host.close()
    finally:
        nic_port.close()


def test_host_rings_beside_an_open_nic_port(nic, netns):
    """va^ opened after va in one process gets a record of its own (the
    NIC port's, shared by other openers of its queues, has no host rings)."""
    backend, xdp_mode = nic
    assert netns.run(_nic_then_host, backend, xdp_mode) == ([1], 1, True)


def _host_only_with(option, value):
    try:
        nmcompat.open("netmap:va^", backend="afxdp", **{option: value}).close()
        return "opened", ""
    except nmcompat.OptionError as exc:
        return exc.errno, str(exc)


@pytest.mark.parametrize("option, value", [("xdp_mode", "drv"), ("xdp_mode", "skb"), ("zerocopy", True),
                                           ("zerocopy", False), ("multibuffer", False)])
def test_an_afxdp_option_on_a_port_of_host_rings_only_is_refused(netns, option, value):
    """va^ binds no NIC queue: no AF_XDP socket, no XDP program, so an
    XDP mode, zero-copy or multi-buffer setting would go unused: an
    OptionError naming it, as for any option a port does not use."""
    err, msg = netns.run(_host_only_with, option, value)
    assert err == 22 and f"bad option {option}: " in msg and "host rings only" in msg, (err, msg)
    assert tc_programs(netns.name, "va") == NOTHING
