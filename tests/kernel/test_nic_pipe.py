"""Pipes of an interface live in the NIC's memory, as in netmap: netmap:va{1
is in the region of the process's NIC port netmap:va, so a buffer moves
between the NIC's rings and the pipe's with no copy, both ways.  @share and
@extmem on a NIC port are refused (EOPNOTSUPP)."""
from __future__ import annotations

import errno
import os
import select
import time

import pytest

import nmcompat
from nic_support import (BACKEND_IDS, BACKENDS, frame, is_ours, open_nic_retrying, peer_receiver,
                         peer_recv, peer_sender, quiet)
from nmcompat import NS_BUF_CHANGED


def swap(src_ring, i: int, dst_ring, j: int) -> int:
    """Swap the buffers of slot i of src_ring and slot j of dst_ring; the
    index that went to dst_ring."""
    a, b = int(src_ring.slots[i]["buf_idx"]), int(dst_ring.slots[j]["buf_idx"])
    src_ring.slots[i]["buf_idx"], dst_ring.slots[j]["buf_idx"] = b, a
    src_ring.slots[i]["flags"] |= NS_BUF_CHANGED
    dst_ring.slots[j]["flags"] |= NS_BUF_CHANGED
    return a


def first_ours(port, timeout: float = 10.0):
    """(ring, slot) of the first test frame on port's RX rings, releasing
    what comes before it; None after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        port.poll(select.POLLIN, 200)
        port.rxsync()
        for ring in port.rx_rings:
            while ring.head != ring.tail:
                i = ring.head
                if is_ours(port.buf(int(ring.slots[i]["buf_idx"]))[:int(ring.slots[i]["len"])]):
                    return ring, i
                ring.head = ring.cur = ring.next(i)
    return None


def send_one(ring, i: int, length: int) -> None:
    ring.slots[i]["len"] = length
    ring.head = ring.cur = ring.next(i)


def _nic_to_pipe_and_back(backend, xdp_mode):
    quiet()
    out = {}
    want = frame(1, 200)
    with open_nic_retrying("netmap:va", backend, xdp_mode) as nic, \
            nmcompat.open("netmap:va{1", slots=64) as m, nmcompat.open("netmap:va}1") as s:
        out["mem_ids"] = (nic.info.mem_id, m.info.mem_id, s.info.mem_id)
        # NIC RX -> pipe: the buffer the frame arrived in is the one the peer reads
        sender = peer_sender()
        sender.send(want)
        found = first_ours(nic)
        assert found is not None, "no frame on the NIC's RX ring"
        rx, i = found
        length = int(rx.slots[i]["len"])
        ptx = m.tx_rings[0]
        moved = swap(rx, i, ptx, ptx.cur)
        send_one(ptx, ptx.cur, length)
        rx.head = rx.cur = rx.next(i)
        m.txsync()
        nic.rxsync()
        s.rxsync()
        prx = s.rx_rings[0]
        j = prx.head
        out["rx_moved"] = (int(prx.slots[j]["buf_idx"]) == moved)
        out["rx_bytes"] = bytes(s.buf(moved)[:int(prx.slots[j]["len"])]) == want
        # pipe -> NIC TX: the buffer the pipe delivered leaves through the NIC
        receiver = peer_receiver()
        back = frame(2, 180, src=bytes.fromhex("02000000000a"), dst=bytes.fromhex("02000000000b"))
        assert s.inject(back) and s.txsync() is None
        m.rxsync()
        mrx = m.rx_rings[0]
        k = mrx.head
        ntx = nic.tx_rings[0]
        idx = swap(mrx, k, ntx, ntx.cur)
        send_one(ntx, ntx.cur, int(mrx.slots[k]["len"]))
        mrx.head = mrx.cur = mrx.next(k)
        m.rxsync()
        nic.txsync()
        out["tx_moved"] = idx == int(ntx.slots[(ntx.cur - 1) % ntx.num_slots]["buf_idx"])
        out["tx_peer"] = peer_recv(receiver, 1) == [back]
        sender.close()
        receiver.close()
    return out


@pytest.mark.parametrize("backend,xdp_mode", BACKENDS, ids=BACKEND_IDS)
def test_pipe_of_an_interface_is_zero_copy_with_the_nic_port(netns, rundir, backend, xdp_mode):
    out = netns.run(_nic_to_pipe_and_back, backend, xdp_mode)
    assert len(set(out["mem_ids"])) == 1, out
    assert out["rx_moved"] and out["rx_bytes"], out
    assert out["tx_moved"] and out["tx_peer"], out


def _peer_in_another_process(backend, xdp_mode):
    quiet()
    with open_nic_retrying("netmap:va", backend, xdp_mode) as nic, nmcompat.open("netmap:va{1"):
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:                                # pragma: no cover - the child
            code = 1
            try:
                with nmcompat.open("netmap:va}1") as s:
                    os.write(wfd, str(s.info.mem_id).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(wfd)
        got = os.read(rfd, 32)
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
        return nic.info.mem_id, int(got or b"0"), os.waitstatus_to_exitcode(status)


def test_the_peer_in_another_process_joins_the_nic_region(netns, rundir):
    nic_id, peer_id, code = netns.run(_peer_in_another_process, "afpacket", None)
    assert code == 0 and peer_id == nic_id


def _pipe_first_then_nic(backend, xdp_mode):
    quiet()
    with nmcompat.open("netmap:va{1") as m, open_nic_retrying("netmap:va", backend, xdp_mode) as nic:
        return m.info.mem_id, nic.info.mem_id


def test_a_pipe_opened_before_the_nic_port_is_in_its_region(netns, rundir):
    pipe_id, nic_id = netns.run(_pipe_first_then_nic, "afpacket", None)
    assert pipe_id == nic_id


def _share_the_nic_region():
    quiet()
    with open_nic_retrying("netmap:va", "afpacket", None) as nic, \
            nmcompat.open("netmap:other{1@share=netmap:va") as m:
        return nic.info.mem_id, m.info.mem_id


def test_share_of_a_nic_port_puts_a_pipe_in_its_region(netns, rundir):
    nic_id, pipe_id = netns.run(_share_the_nic_region)
    assert nic_id == pipe_id


def _refusals():
    quiet()
    out = []
    for name in ("netmap:va@share=netmap:x{1", "netmap:va@extmem:file=/dev/shm/none,ring-num=8"):
        try:
            nmcompat.open(name).close()
            out.append((name, 0, ""))
        except OSError as exc:
            out.append((name, exc.errno, str(exc)))
    return out


def test_share_and_extmem_on_a_nic_port_are_eopnotsupp(netns, rundir):
    for name, err, text in netns.run(_refusals):
        assert err == errno.EOPNOTSUPP and "NIC port" in text, (name, err, text)
