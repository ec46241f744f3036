"""netmap's ctrl-api-test shapes on a tap interface opened as a NIC with
host rings (port_register_hwall_host, hostall, single_host_pair,
hostall_many), and traffic on a second host ring pair."""
from __future__ import annotations

import pytest

import nmcompat
import nic_support
from host_support import (A_IP, GHOST_IP, GHOST_MAC, HOST_TX_BACKENDS, HOST_TX_IDS, arp_request,
                          is_arp, mode_for, peer)


def _tap_ring_counts(backend, xdp_mode):
    out = {}
    for name in ("netmap:nmt0*", "netmap:nmt0^", "netmap:nmt0^0", "netmap:nmt0"):
        port = nmcompat.open(name, backend=backend, xdp_mode=mode_for(name, xdp_mode))
        try:
            i = port.info
            out[name] = (i.tx_rings, i.rx_rings, i.host_tx_rings, i.host_rx_rings,
                         list(i.bound_tx), list(i.bound_rx), bool(i.host_tap))
        finally:
            port.close()
    return out

def test_ctrl_api_test_shape_on_a_tap_interface(nic, netns):
    """netmap's ctrl-api-test opens a tap interface as a NIC with host rings
    (port_register_hwall_host, _hwall, _hostall, _single_host_pair): the ring counts
    and bound rings it checks."""
    backend, xdp_mode = nic
    netns.ip("tuntap", "add", "dev", "nmt0", "mode", "tap")
    netns.ip("link", "set", "dev", "nmt0", "up")
    got = netns.run(_tap_ring_counts, backend, xdp_mode)
    assert got == {
        "netmap:nmt0*": (1, 1, 1, 1, [0, 1], [0, 1], True),
        "netmap:nmt0^": (1, 1, 1, 1, [1], [1], True),
        "netmap:nmt0^0": (1, 1, 1, 1, [1], [1], True),
        "netmap:nmt0": (1, 1, 1, 1, [0], [0], False),     # the adapter's host rings, unbound
    }, got

def _many_host_rings(backend, xdp_mode):
    out = {}
    for name, conf in (("netmap:nmt0^1", {"host_tx_rings": 2, "host_rx_rings": 2}),
                       ("netmap:nmt0^", {"host_tx_rings": 5, "host_rx_rings": 4}),
                       ("netmap:nmt0^4", {"host_tx_rings": 5, "host_rx_rings": 4})):
        port = nmcompat.open(name, backend=backend, xdp_mode=mode_for(name, xdp_mode), **conf)
        try:
            i = port.info
            out[name + str(conf["host_tx_rings"])] = (
                i.tx_rings, i.rx_rings, i.host_tx_rings, i.host_rx_rings, list(i.bound_tx),
                list(i.bound_rx), (port.nifp.ni_host_tx_rings, port.nifp.ni_host_rx_rings))
        finally:
            port.close()
    try:
        nmcompat.open("netmap:nmt0^2", backend=backend,
                      host_tx_rings=2, host_rx_rings=2).close()
        out["^2 of 2"] = "opened"
    except OSError as exc:
        out["^2 of 2"] = exc.errno
    return out

def test_ctrl_api_test_shape_with_several_host_rings(nic, netns):
    """port_register_single_host_pair (2 host rings, ring 1) and
    hostall_many (5 TX and 4 RX host rings); ^4 binds TX host ring 4 and,
    with 4 RX host rings only, the first RX one (netmap_interp_ringid)."""
    backend, xdp_mode = nic
    netns.ip("tuntap", "add", "dev", "nmt0", "mode", "tap")
    netns.ip("link", "set", "dev", "nmt0", "up")
    got = netns.run(_many_host_rings, backend, xdp_mode)
    assert got == {
        "netmap:nmt0^12": (1, 1, 2, 2, [2], [2], (2, 2)),
        "netmap:nmt0^5": (1, 1, 5, 4, [1, 2, 3, 4, 5], [1, 2, 3, 4], (5, 4)),
        "netmap:nmt0^45": (1, 1, 5, 4, [5], [1], (5, 4)),
        "^2 of 2": 22,
    }, got

def _stack_on_second_host_ring(backend, xdp_mode):
    port = nmcompat.open("netmap:va^1", backend=backend,
                         host_tx_rings=2, host_rx_rings=2)
    try:
        txr = port.tx_rings[0]
        nic_support.put_chain(txr, [arp_request(GHOST_MAC, GHOST_IP, A_IP)])
        port.txsync()
        got = []
        nic_support.port_drain(port, lambda: bool(got), lambda h, d: got.append(d),
                               timeout=10, keep=lambda d: is_arp(d, 2, GHOST_IP))
        return [r.ringid for r in port.rx_rings], len(got)
    finally:
        port.close()

@pytest.mark.parametrize("nic", HOST_TX_BACKENDS, ids=HOST_TX_IDS)
def test_second_host_ring_pair_carries_the_stack(nic, netns, peer):
    """va^1 of two host ring pairs: its host TX ring reaches the stack and
    the stack's answer arrives on its host RX ring (the rings share the tap)."""
    backend, xdp_mode = nic
    ids, got = netns.run(_stack_on_second_host_ring, backend, xdp_mode)
    assert ids == [2] and got >= 1, (ids, got)
