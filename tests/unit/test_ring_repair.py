"""Every ring repair leaves a working ring.  For each bad value an
application can write into a ring it owns (a slot's buf_idx or len, the
ring's head or cur), on TX and on RX, on a pipe and on a VALE port: the sync
answers as netmap does (EINVAL and a reinit, or nothing to repair), and then
traffic through the repaired ring -- several laps of it, by inject() and by
send() -- arrives exactly, with no buffer lost or shared (`nmcompat check`)."""
from __future__ import annotations

import errno

import numpy as np
import pytest

import nmcompat
from nmcompat import NS_BUF_CHANGED
from nmcompat.tools.check import check_rundir
from vale_helpers import BCAST, frame, mac

SLOTS = 64

# what is written, and whether the next sync must answer EINVAL
TX_CASES = {
    "buf_idx=0": ("buf_idx", 0, True),
    "buf_idx=1": ("buf_idx", 1, True),
    "buf_idx=buf_num": ("buf_idx", "buf_num", True),
    "buf_idx=70000": ("buf_idx", 70000, True),
    "buf_idx=2**32-1": ("buf_idx", 2**32 - 1, True),
    "len=buf_size+1": ("len", "buf_size+1", True),
    "len=65535": ("len", 0xFFFF, True),
    "head=num_slots": ("head", SLOTS, True),
    "head=2**32-1": ("head", 2**32 - 1, True),
    "head<hwcur": ("head", "behind", True),
    "head>tail": ("head", "past_tail", True),
    "cur=num_slots": ("cur", SLOTS, True),
    "cur=2**31": ("cur", 2**31, True),
    "cur<head": ("cur", "behind", True),
}

RX_CASES = {
    "buf_idx=0": ("buf_idx", 0, None),
    "buf_idx=1": ("buf_idx", 1, None),
    "buf_idx=buf_num": ("buf_idx", "buf_num", None),
    "buf_idx=70000": ("buf_idx", 70000, None),
    "buf_idx=2**32-1": ("buf_idx", 2**32 - 1, None),
    "swapped buf_idx=0": ("swapped", 0, True),
    "swapped buf_idx=2**32-1": ("swapped", 2**32 - 1, True),
    "len=65535": ("len", 0xFFFF, False),
    "head=num_slots": ("head", SLOTS, True),
    "head=2**32-1": ("head", 2**32 - 1, True),
    "head<hwcur": ("head", "behind", True),
    "head>tail": ("head", "past_tail", True),
    "cur=num_slots": ("cur", SLOTS, True),
    "cur<head": ("cur", "behind", True),
}


class Pair:
    """A sender and a receiver port of one kind, in this process."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "pipe":                  # small regions: quick to create and remove
            self.tx = nmcompat.open("netmap:rp{1", slots=SLOTS, buf_num=1024)
            self.rx = nmcompat.open("netmap:rp}1", slots=SLOTS)
        else:
            self.tx = nmcompat.open("vale5:tx", slots=SLOTS, buf_num=1024)
            self.rx = nmcompat.open("vale5:rx", slots=SLOTS, buf_num=1024)
        assert self.tx.tx_rings[0].num_slots == self.rx.rx_rings[0].num_slots == SLOTS

    def close(self) -> None:
        self.tx.close()
        self.rx.close()

    def packet(self, tag: bytes) -> bytes:
        return tag if self.kind == "pipe" else frame(BCAST, mac(1), tag)

    def tag(self, data: bytes) -> bytes:
        return data if self.kind == "pipe" else data[14:].rstrip(b"\0")

    def send(self, tags, via: str = "inject") -> None:
        self.tx.txsync()                             # room the receiver released
        if via == "inject":
            for t in tags:
                assert self.tx.inject(self.packet(t)) == len(self.packet(t))
            self.tx.txsync()
            return
        rows = np.zeros((len(tags), 64), dtype=np.uint8)
        for i, t in enumerate(tags):
            p = self.packet(t)
            rows[i, :len(p)] = np.frombuffer(p, dtype=np.uint8)
        lens = np.array([len(self.packet(t)) for t in tags], dtype=np.uint32)
        assert self.tx.send(rows, lens) == len(tags)

    def receive(self) -> list:
        self.rx.rxsync()
        out = []
        self.rx.dispatch(lambda h, d: out.append(self.tag(bytes(d))))
        self.rx.rxsync()
        return out


@pytest.fixture(params=["pipe", "vale"])
def pair(request, rundir):
    p = Pair(request.param)
    yield p
    p.close()


def check_clean(rundir) -> None:
    """Every buffer in exactly one place, and no slot without one."""
    for region in check_rundir(str(rundir)):
        assert region["violations"] == 0, region
        assert region["empty_slots"] == 0, region


def traffic_arrives(pair: Pair, via: str) -> None:
    """Three laps of each ring, in bursts of half a ring, arrive exactly."""
    pair.receive()                                   # whatever the repair left behind
    for burst in range(6):
        tags = [b"t%d.%d" % (burst, k) for k in range(SLOTS // 2)]
        pair.send(tags, via)
        assert pair.receive() == tags, f"burst {burst} via {via}"


def bad_value(ring, value, port):
    if value == "buf_num":
        return port.info.buf_num
    if value == "buf_size+1":
        return port.info.buf_size + 1       # 2049 on a pipe, 2113 on a VALE port
    if value == "behind":
        return (ring.head - 1) % ring.num_slots
    if value == "past_tail":
        return (ring.tail + 1) % ring.num_slots
    return value


def sync_expect(sync, einval) -> None:
    if einval:
        with pytest.raises(OSError) as ei:
            sync()
        assert ei.value.errno == errno.EINVAL
    else:
        sync()


# every case followed by inject(); the bad buffer indexes by send() too
TX_RUNS = [(case, "inject") for case in TX_CASES] + \
          [(case, "send") for case in TX_CASES if case.startswith("buf_idx")]


@pytest.mark.parametrize("case,via", TX_RUNS)
def test_tx_repair_leaves_a_working_ring(pair, rundir, case, via):
    field, value, einval = TX_CASES[case]
    if value == "past_tail" and pair.kind == "vale":
        einval = False                  # a VALE txsync reclaims all: tail + 1 is head itself
    pair.send([b"warm%d" % k for k in range(5)])
    assert pair.receive() == [b"warm%d" % k for k in range(5)]
    ring = pair.tx.tx_rings[0]
    before = pair.tx.stats()["reinits"]
    if field in ("buf_idx", "len"):
        slot = ring.head
        ring.buf(int(ring.slots[slot]["buf_idx"]))[:4] = b"lost"
        ring.slots[slot]["len"] = 4
        ring.slots[slot][field] = bad_value(ring, value, pair.tx)
        ring.head = ring.cur = ring.next(slot)
    elif field == "cur" and value == "behind":
        ring.head = ring.cur = ring.next(ring.head)
        ring.cur = (ring.head - 1) % SLOTS
    else:
        setattr(ring, field, bad_value(ring, value, pair.tx))
    sync_expect(pair.tx.txsync, einval)
    assert pair.tx.stats()["reinits"] == before + (1 if einval else 0)
    assert pair.receive() == []                      # the bad packet did not go out
    check_clean(rundir)
    traffic_arrives(pair, via)
    check_clean(rundir)


@pytest.mark.parametrize("case", list(RX_CASES))
def test_rx_repair_leaves_a_working_ring(pair, rundir, case):
    field, value, einval = RX_CASES[case]
    if einval is None:                  # a pipe's RX slot mirrors the sender's: nothing to repair
        einval = pair.kind == "vale"
    pair.send([b"warm%d" % k for k in range(5)])
    pair.rx.rxsync()
    ring = pair.rx.rx_rings[0]
    before = pair.rx.stats()["reinits"]
    if field in ("buf_idx", "len", "swapped"):
        slot = ring.head
        ring.slots[slot]["buf_idx" if field == "swapped" else field] = bad_value(ring, value, pair.rx)
        if field == "swapped":
            ring.slots[slot]["flags"] |= NS_BUF_CHANGED
        ring.head = ring.cur = ring.next(slot)       # read it, release it
    elif field == "cur" and value == "behind":
        ring.head = ring.cur = ring.next(ring.head)
        ring.cur = (ring.head - 1) % SLOTS
    else:
        setattr(ring, field, bad_value(ring, value, pair.rx))
    sync_expect(pair.rx.rxsync, einval)
    assert pair.rx.stats()["reinits"] == before + (1 if einval else 0)
    check_clean(rundir)
    traffic_arrives(pair, "inject")
    check_clean(rundir)


def test_repairs_do_not_run_the_region_dry(rundir):
    """Many repairs in a row: the buffers the bad indexes replaced are
    reclaimed, so the region never runs out and every lap still arrives."""
    pair = Pair("pipe")
    try:
        free0 = check_rundir(str(rundir))[0]["free_bufs"]
        for k in range(300):
            ring = pair.tx.tx_rings[0]
            ring.slots[ring.head]["buf_idx"] = 0
            ring.head = ring.cur = ring.next(ring.head)
            sync_expect(pair.tx.txsync, True)
            pair.send([b"after%d" % k])
            assert pair.receive() == [b"after%d" % k]
        assert check_rundir(str(rundir))[0]["free_bufs"] == free0
        check_clean(rundir)
    finally:
        pair.close()


def test_inject_into_a_slot_left_without_a_buffer(pair, rundir):
    """A slot the user broke without syncing: inject() gives it a buffer and
    the packet goes out (it neither reports a packet it never wrote nor
    leaves the ring stuck at that slot)."""
    ring = pair.tx.tx_rings[0]
    for lap in range(3):
        ring.slots[ring.cur]["buf_idx"] = 2**32 - 1
        tags = [b"lap%d.%d" % (lap, k) for k in range(SLOTS // 2)]
        pair.send(tags)
        assert pair.receive() == tags
    check_clean(rundir)
