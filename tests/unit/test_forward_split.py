"""forward() (netmap's bridge step) copying into smaller buffers: a slot
longer than the destination's buffers goes on in its next TX slots
(NS_MOREFRAG), never cut.  A VALE port's buffers are 2112 bytes, a pipe's
2048, so `bridge -i vale0:x -i netmap:p{1` is this case."""
from __future__ import annotations

import nmcompat
from vale_helpers import BCAST, frame, mac, pattern

NS_MOREFRAG = 0x20


def rx_chains(port) -> list:
    """Every received packet as its slots' (len, data), the ring released."""
    port.rxsync()
    ring, out, cur = port.rx_rings[0], [], []
    j = ring.head
    while j != ring.tail:
        s = ring.slots[j]
        cur.append((int(s["len"]), bytes(ring.buf(int(s["buf_idx"]))[:int(s["len"])])))
        if not int(s["flags"]) & NS_MOREFRAG:
            out.append(cur)
            cur = []
        j = ring.next(j)
    ring.head = ring.cur = ring.tail
    assert cur == [], "an unterminated chain"
    return out


def test_a_forward_into_smaller_buffers_splits_what_does_not_fit(rundir):
    y, x = nmcompat.open("valefs:y"), nmcompat.open("valefs:x")
    a, b = nmcompat.open("netmap:fs{1"), nmcompat.open("netmap:fs}1")
    try:
        assert (x.info.buf_size, a.info.buf_size) == (2112, 2048)
        sizes = [60, 2048, 2049, 2112, 5000]
        frames = [frame(BCAST, mac(1), pattern(n - 14, seed=n), n) for n in sizes]
        for f in frames:
            assert y.inject(f) == len(f)            # 5000: a chain of 2112, 2112, 776
        y.txsync()
        x.rxsync()
        assert x.forward(a) == 7                    # x's slots: 1 + 1 + 1 + 1 + 3
        a.txsync()
        got = rx_chains(b)
        assert [b"".join(d for _, d in p) for p in got] == frames
        assert [[n for n, _ in p] for p in got] == [
            [60], [2048], [2048, 1], [2048, 64], [2048, 64, 2048, 64, 776]]
    finally:
        for p in (y, x, a, b):
            p.close()


def test_a_packet_waits_whole_for_tx_room_and_tries_the_next_tx_ring(rundir):
    """Split, a packet takes more TX slots than RX slots: it moves only when
    all of them are free in one TX ring, and another TX ring with the room
    takes it meanwhile."""
    y, x = nmcompat.open("valefw:y"), nmcompat.open("valefw:x")
    a, b = nmcompat.open("netmap:fw{1", tx_slots=8, tx_rings=2), nmcompat.open("netmap:fw}1")
    try:
        assert a.info.tx_rings == 2
        big = frame(BCAST, mac(1), pattern(2112 - 14, seed=3), 2112)     # 2 slots of 2048
        ring0 = a.tx_rings[0]
        for _ in range(6):                          # TX ring 0: 1 of its 7 slots left
            assert ring0.head != ring0.tail
            ring0.slots[ring0.head]["len"] = 0
            ring0.head = ring0.cur = ring0.next(ring0.head)
        assert y.inject(big) == 2112
        y.txsync()
        x.rxsync()
        assert x.forward(a) == 1                    # into ring 1, not stopped by ring 0
        ring1 = a.tx_rings[1]
        assert ring1.cur == 2 and ring0.cur == 6
    finally:
        for p in (y, x, a, b):
            p.close()


def test_a_packet_that_can_never_fit_the_tx_ring_is_dropped_not_held(rundir):
    """4 pieces for a TX ring of 3 usable slots: dropped, and the packets
    behind it go on (the switch drops what cannot fit a ring too)."""
    y, x = nmcompat.open("valefd:y"), nmcompat.open("valefd:x")
    a, b = nmcompat.open("netmap:fd{1", tx_slots=4), nmcompat.open("netmap:fd}1")
    try:
        big = frame(BCAST, mac(1), pattern(4224 - 14, seed=3), 4224)    # 2 slots of 2112: 4 of 2048
        small = frame(BCAST, mac(1), b"after", 60)
        assert y.inject(small) == 60 and y.inject(big) == 4224 and y.inject(small) == 60
        y.txsync()
        x.rxsync()
        assert x.forward(a) == 4                    # small, big (dropped), small
        a.txsync()
        assert [b"".join(d for _, d in p) for p in rx_chains(b)] == [small, small]
    finally:
        for p in (y, x, a, b):
            p.close()


def test_a_packet_longer_than_a_netmap_chain_is_dropped(rundir):
    """Into a pipe of 64-byte buffers: a 4224-byte packet (two slots of 2112)
    takes 66 pieces, more than a netmap chain may have (NETMAP_MAX_FRAGS,
    64): dropped; 4096 bytes take 64 and go; the packets around it go on."""
    y, x = nmcompat.open("valefc:y"), nmcompat.open("valefc:x")
    a, b = nmcompat.open("netmap:fc{1", buf_size=64), nmcompat.open("netmap:fc}1")
    try:
        assert (x.info.buf_size, a.info.buf_size) == (2112, 64)
        frames = [frame(BCAST, mac(1), pattern(n - 14, seed=n), n) for n in (60, 4224, 4096, 64)]
        for f in frames:
            assert y.inject(f) == len(f)
        y.txsync()
        x.rxsync()
        assert x.forward(a) == 6                    # x's slots: 1 + 2 (dropped) + 2 + 1
        a.txsync()
        got = rx_chains(b)
        assert [b"".join(d for _, d in p) for p in got] == [frames[0], frames[2], frames[3]]
        assert [len(p) for p in got] == [1, 64, 1]
    finally:
        for p in (y, x, a, b):
            p.close()
