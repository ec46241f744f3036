"""Frames larger than a netmap buffer over AF_XDP (MTU 9000 on both ends).

With multi-buffer (XDP_USE_SG, Linux 6.6+, and nmcompat's xdp.frags
program) a received jumbo frame is a chain of slots, NS_MOREFRAG on all but
the last, and dispatch() hands it over whole; a chain the user queues for TX
leaves as one frame.  Without it (``multibuffer=False``) such frames are
dropped and counted, never delivered in pieces.

NMCOMPAT_STRICT=1 (and any kernel where the probe says multi-buffer should
work) fails instead of skipping.
"""
from __future__ import annotations

import pytest

import nmcompat

from afxdp_support import (MAC_A, MAC_B, drain, frame, make_veth, mismatch, multibuffer_expected,
                           kernel_version, open_xdp, packet_recv, packet_sender, packet_socket,
                           quiet_ipv6, send_all, skip_or_fail, wait_tx_done)

pytestmark = pytest.mark.kernel

MODES = ["drv", "skb"]
SIZES = [1793, 2048, 2049, 4096, 8000, 9014]       # around the 1792-byte RX frame and 2048 buffers
ROUNDS = 40


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


@pytest.fixture
def jumbo(netns):
    make_veth(netns, mtu=9000)
    return netns


def _need_multibuffer(port):
    if port.info.multibuffer:
        return
    if multibuffer_expected():
        raise AssertionError(f"multi-buffer should work on Linux {kernel_version()} "
                             f"({port.info.xdp_mode} mode) but the port has none")
    return f"no AF_XDP multi-buffer on Linux {kernel_version()} ({port.info.xdp_mode} mode)"


def _jumbo_rx(mode: str):
    quiet_ipv6()
    with open_xdp("netmap:va", mode) as port, packet_sender("vb") as tx:
        why = _need_multibuffer(port)
        if why:
            return why
        # one 9014-byte frame: look at the chain in the ring itself
        big = frame(0, 9014)
        tx.send(big)
        ring = port.rx_rings[0]
        chain = []
        for _ in range(50):
            port.poll(nmcompat.POLLIN, 100)
            chain = [ring.slots[(ring.head + k) % ring.num_slots]
                     for k in range((ring.tail - ring.head) % ring.num_slots)]
            if chain and not chain[-1]["flags"] & nmcompat.NS_MOREFRAG:
                break
        assert len(chain) >= 2, f"a 9014-byte frame in {len(chain)} slot(s)"
        assert all(s["flags"] & nmcompat.NS_MOREFRAG for s in chain[:-1])
        assert not chain[-1]["flags"] & nmcompat.NS_MOREFRAG
        assert all(0 < s["len"] <= ring.nr_buf_size for s in chain)
        assert sum(int(s["len"]) for s in chain) == len(big)
        pieces = b"".join(bytes(ring.buf(int(s["buf_idx"]))[:s["len"]]) for s in chain)
        assert pieces == big, "the fragments, in order, are the frame"
        got = []
        port.dispatch(lambda h, d: got.append((h.len, h.caplen, bytes(d))))
        assert got == [(len(big), len(big), big)], "dispatch() reassembles the chain"
        # many, of several sizes, mixed with small ones
        expected = [frame(i, SIZES[i % len(SIZES)] if i % 3 else 60) for i in range(1, ROUNDS * len(SIZES))]
        frames = []
        for start in range(0, len(expected), 32):
            for f in expected[start:start + 32]:
                tx.send(f)
            drain(port, frames.append, lambda: len(frames) >= min(start + 32, len(expected)), 5.0)
        drain(port, frames.append, lambda: False, 0.2)
        stats = port.xdp_stats()
        problem = mismatch(frames, expected, stats)
        assert not problem, problem
        return ""


@pytest.mark.parametrize("mode", MODES)
def test_jumbo_rx_arrives_as_morefrag_chain(jumbo, mode):
    why = jumbo.run(_jumbo_rx, mode)
    if why:
        skip_or_fail(why)


def _jumbo_tx(mode: str):
    quiet_ipv6()
    with open_xdp("netmap:va", mode) as port, packet_socket("vb") as rx:
        why = _need_multibuffer(port)
        if why:
            return why
        big = frame(0, 9014, src=MAC_A, dst=MAC_B)
        assert port.inject(big) == len(big)
        ring = port.tx_rings[0]
        nslots = -(-len(big) // ring.nr_buf_size)
        flags = [int(ring.slots[(ring.head - nslots + k) % ring.num_slots]["flags"])
                 for k in range(nslots)]
        assert [bool(f & nmcompat.NS_MOREFRAG) for f in flags] == [True] * (nslots - 1) + [False]
        port.txsync()
        got = packet_recv(rx, 1, timeout=5.0)
        assert got == [big], mismatch(got, [big], port.xdp_stats())
        expected = [frame(i, SIZES[i % len(SIZES)] if i % 3 else 60, src=MAC_A, dst=MAC_B)
                    for i in range(1, ROUNDS * len(SIZES))]
        out = []
        for start in range(0, len(expected), 32):
            burst = expected[start:start + 32]
            send_all(port, burst)
            out += packet_recv(rx, len(burst), timeout=5.0)
        out += packet_recv(rx, 1, timeout=0.2)
        assert wait_tx_done(port), port.xdp_stats()
        stats = port.xdp_stats()
        problem = mismatch(out, expected, stats)
        assert not problem, problem
        assert all(s["tx_dropped"] == 0 and s["tx_invalid_descs"] == 0 for s in stats), stats
        return ""


@pytest.mark.parametrize("mode", MODES)
def test_jumbo_tx_chain_arrives_whole(jumbo, mode):
    why = jumbo.run(_jumbo_tx, mode)
    if why:
        skip_or_fail(why)


def _without_multibuffer(mode: str):
    quiet_ipv6()
    with open_xdp("netmap:va", mode, multibuffer=False) as port, \
            packet_sender("vb") as tx, packet_socket("vb") as rx:
        assert port.info.multibuffer is False
        small, big = frame(1, 1500), frame(2, 9014)
        tx.send(big)
        tx.send(small)
        got = []
        drain(port, got.append, lambda: len(got) >= 1, 5.0)
        drain(port, got.append, lambda: False, 0.2)
        rx_stats = port.xdp_stats()[0]
        # TX: a chain cannot go out without multi-buffer: dropped and counted
        send_all(port, [frame(3, 9014, src=MAC_A, dst=MAC_B), frame(4, 1000, src=MAC_A, dst=MAC_B)])
        out = packet_recv(rx, 2, timeout=1.0)
        assert wait_tx_done(port)
        return got, rx_stats, out, port.xdp_stats()[0]["tx_dropped"], small


@pytest.mark.parametrize("mode", MODES)
def test_without_multibuffer_jumbo_frames_are_dropped_and_counted(jumbo, mode):
    got, rx_stats, out, tx_dropped, small = jumbo.run(_without_multibuffer, mode)
    assert got == [small], "only the frame that fits one buffer is delivered"
    assert rx_stats["rx_dropped"] >= 1, f"the kernel counts the jumbo frame it dropped: {rx_stats}"
    assert [len(f) for f in out] == [1000], "the 9014-byte chain is not sent, the next frame is"
    assert tx_dropped >= 1, "the dropped chain is counted"
