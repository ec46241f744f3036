"""VALE forwarding seen from independent processes: learning, flooding,
no hairpin, short frames, multi-ring ports, NS_MOREFRAG chains, NS_INDIRECT.

Every port lives in its own child process (an agent, vale_child.py) and
forwarding happens inside the sender's txsync, so when a send() call has
returned the frames are already in the destination rings.
"""
from __future__ import annotations

import pytest

from vale_helpers import BCAST, agents, chains, frame, mac, pattern  # noqa: F401

NS_MOREFRAG = 0x20


def tagged(dst: bytes, src: bytes, tag: str, length: int = 60) -> bytes:
    return frame(dst, src, tag.encode(), length)


def tags(frames) -> list:
    return [f[14:].rstrip(b"\0").decode() for f in frames]


@pytest.fixture
def abc(agents):
    return agents.open("vale0:a"), agents.open("vale0:b"), agents.open("vale0:c")


def test_broadcast_is_learned_then_unicast_reaches_only_its_owner(abc):
    a, b, c = abc
    a.send([tagged(BCAST, mac(1), "hello-from-a")])
    assert tags(b.frames()) == ["hello-from-a"]
    assert tags(c.frames()) == ["hello-from-a"]
    assert a.frames() == []                         # a broadcast does not come back

    b.send([tagged(mac(1), mac(2), "b-to-a")])      # a's MAC is known now
    assert tags(a.frames()) == ["b-to-a"]
    assert c.frames() == []
    assert b.frames() == []

    c.send([tagged(mac(2), mac(3), "c-to-b")])      # b was learned from its unicast
    assert tags(b.frames()) == ["c-to-b"]
    assert a.frames() == [] and c.frames() == []

    a.send([tagged(mac(3), mac(1), "a-to-c"), tagged(mac(2), mac(1), "a-to-b")])
    assert tags(c.frames()) == ["a-to-c"]
    assert tags(b.frames()) == ["a-to-b"]
    assert a.frames() == []
    assert [x.stats()["forwarded"] for x in abc] == [1, 3, 2]
    assert [x.stats()["tx_dropped"] for x in abc] == [0, 0, 0]


def test_unknown_unicast_floods_to_every_port_but_the_sender(abc):
    a, b, c = abc
    a.send([tagged(BCAST, mac(1), "learn-a")])
    b.frames(), c.frames()
    c.send([tagged(mac(0x77), mac(3), "to-nobody-known")])
    assert tags(a.frames()) == ["to-nobody-known"]
    assert tags(b.frames()) == ["to-nobody-known"]
    assert c.frames() == []
    # and c's MAC was learned on the way: a unicast to it is not flooded
    b.send([tagged(mac(3), mac(2), "b-to-c")])
    assert tags(c.frames()) == ["b-to-c"]
    assert a.frames() == []


def test_no_hairpin_and_short_frames_are_dropped_and_counted(abc):
    a, b, c = abc
    a.send([tagged(BCAST, mac(1), "learn-a")])
    b.frames(), c.frames()
    # to its own (learned) MAC: dropped at the source, nobody gets it
    a.send([tagged(mac(1), mac(1), "to-myself"), tagged(mac(1), mac(1), "again")])
    assert a.frames() == [] and b.frames() == [] and c.frames() == []
    assert a.stats()["tx_dropped"] == 2
    # shorter than an Ethernet header: dropped, whatever its destination
    assert a.send([BCAST + mac(1) + b"\x08", b"", BCAST[:5]], ring=0) == 3
    assert b.frames() == [] and c.frames() == []
    assert a.stats()["tx_dropped"] == 5
    # exactly 14 bytes is a frame
    a.send([BCAST + mac(1) + b"\x88\xb5"])
    assert b.frames() == [BCAST + mac(1) + b"\x88\xb5"]
    assert c.frames() == [BCAST + mac(1) + b"\x88\xb5"]
    st = a.stats()
    assert st["tx_dropped"] == 5 and st["tx_pkts"] == 7
    assert b.stats()["rx_dropped"] == 0


def test_broadcast_and_multicast_flood_to_every_other_port(agents):
    ports = [agents.open(f"vale0:p{i}") for i in range(4)]
    mcast = bytes([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01])
    for i, p in enumerate(ports):
        p.send([tagged(BCAST, mac(10 + i), f"bcast-{i}"), tagged(mcast, mac(10 + i), f"mcast-{i}")])
    for i, p in enumerate(ports):
        got = tags(p.frames())
        want = [t for j in range(4) if j != i for t in (f"bcast-{j}", f"mcast-{j}")]
        assert got == want, f"port p{i}"
        assert p.stats()["forwarded"] == 6
    # a multicast source address is never learned: a unicast to it floods
    ports[0].send([tagged(BCAST, mcast, "from-a-group")])
    for p in ports[1:]:
        assert tags(p.frames()) == ["from-a-group"]
    ports[1].send([tagged(mcast[:5] + b"\x02", mac(11), "x")])   # unknown unicast
    assert [len(p.frames()) for p in ports] == [1, 0, 1, 1]


def test_a_station_that_moves_is_relearned(abc):
    a, b, c = abc
    a.send([tagged(BCAST, mac(1), "a-here")])
    b.frames(), c.frames()
    b.send([tagged(BCAST, mac(1), "a-moved-to-b")])      # same MAC, now behind b
    a.frames(), c.frames()
    c.send([tagged(mac(1), mac(3), "to-the-moved-station")])
    assert tags(b.frames()) == ["to-the-moved-station"]
    assert a.frames() == []


def test_a_closed_port_is_forgotten(agents):
    a, b, c = agents.open("vale0:a"), agents.open("vale0:b"), agents.open("vale0:c")
    b.send([tagged(BCAST, mac(2), "learn-b")])
    a.frames(), c.frames()
    b.close()
    a.send([tagged(mac(2), mac(1), "to-gone-b")])        # unknown again: flooded
    assert tags(c.frames()) == ["to-gone-b"]
    assert a.stats()["tx_dropped"] == 0


# ---------------------------------------------------------------------------
# multi-ring ports


def test_destination_ring_is_source_ring_mod_rx_rings_and_broadcast_uses_ring_0(agents):
    src = agents.open("vale0:src@conf:rings=4")
    dst3 = agents.open("vale0:dst3", rings=3)
    dst1 = agents.open("vale0:dst1")
    assert src.info["bound_tx"] == [0, 1, 2, 3] and dst3.info["bound_rx"] == [0, 1, 2]
    dst3.send([tagged(BCAST, mac(0x33), "learn-dst3")])
    dst1.send([tagged(BCAST, mac(0x31), "learn-dst1")])
    src.frames(), dst1.frames(), dst3.frames()

    for ring in range(4):
        assert src.send([tagged(mac(0x33), mac(0x50), f"u{ring}-{k}") for k in range(3)], ring=ring) == 3
        assert src.send([tagged(mac(0x31), mac(0x50), f"v{ring}")], ring=ring) == 1
        assert src.send([tagged(BCAST, mac(0x50), f"b{ring}")], ring=ring) == 1
    got = chains(dst3.slots())
    by_ring = {r: [tags([p["data"]])[0] for p in got if p["ring"] == r] for r in range(3)}
    assert by_ring[0] == ["u0-0", "u0-1", "u0-2", "b0", "b1", "b2", "u3-0", "u3-1", "u3-2", "b3"]
    assert by_ring[1] == ["u1-0", "u1-1", "u1-2"]
    assert by_ring[2] == ["u2-0", "u2-1", "u2-2"]
    one = chains(dst1.slots())
    assert {p["ring"] for p in one} == {0}
    assert tags(p["data"] for p in one) == ["v0", "b0", "v1", "b1", "v2", "b2", "v3", "b3"]


def test_a_sender_bound_to_one_ring_keeps_its_ring_number(agents):
    agents.open("vale0:src@conf:rings=4")               # creates the 4-ring port, keeps it
    one = agents.open("vale0:src-2")                     # NR_REG_ONE_NIC, ring 2
    dst = agents.open("vale0:dst@conf:rings=4")
    assert one.info["bound_tx"] == [2]
    dst.send([tagged(BCAST, mac(0x44), "learn")])
    one.frames()
    one.send([tagged(mac(0x44), mac(0x45), f"r2-{k}") for k in range(5)])
    got = chains(dst.slots())
    assert [p["ring"] for p in got] == [2] * 5
    assert tags(p["data"] for p in got) == [f"r2-{k}" for k in range(5)]


# ---------------------------------------------------------------------------
# NS_MOREFRAG and NS_INDIRECT


@pytest.mark.parametrize("size", [9000, 4096, 2049, 20000])
def test_morefrag_packets_arrive_whole(agents, size):
    a, b, c = agents.open("vale0:a"), agents.open("vale0:b"), agents.open("vale0:c")
    bufsz = a.info["buf_size"]
    big = [frame(BCAST, mac(1), pattern(size - 14, seed=k), size) for k in range(3)]
    small = frame(BCAST, mac(1), b"small", 60)
    for f in (big[0], small, big[1], big[2]):
        assert a.send([f]) == 1                          # nm_inject splits into fragments
    # b: nm_dispatch reassembles
    got = b.packets("dispatch")
    assert [p["len"] for p in got] == [size, 60, size, size]
    assert [p["data"] for p in got] == [big[0], small, big[1], big[2]]
    # c: the raw slots, fragment by fragment
    nfr = -(-size // bufsz)
    slots = c.slots()
    assert len(slots) == 3 * nfr + 1
    for p in chains(slots):
        n = len(p["slots"])
        for k, s in enumerate(p["slots"]):
            assert s["flags"] >> 8 == n, f"NS_RFRAGS of fragment {k} of {n}: {s}"
            assert bool(s["flags"] & NS_MOREFRAG) == (k + 1 < n), s
        if n > 1:
            assert [s["len"] for s in p["slots"]] == [bufsz] * (n - 1) + [size - bufsz * (n - 1)]
    assert [p["data"] for p in chains(slots)] == [big[0], small, big[1], big[2]]
    assert b.stats()["forwarded"] == 4 and c.stats()["rx_dropped"] == 0


def test_morefrag_packet_written_slot_by_slot_into_one_ring(agents):
    a, b = agents.open("vale0:a@conf:rings=2"), agents.open("vale0:b@conf:rings=2")
    b.send([tagged(BCAST, mac(2), "learn")])
    a.frames()
    big = frame(mac(2), mac(1), pattern(9000 - 14, 5), 9000)
    assert a.send([big, tagged(mac(2), mac(1), "after")], ring=1) == 2
    got = chains(b.slots())
    assert [p["ring"] for p in got] == [1, 1]
    assert got[0]["data"] == big and len(got[0]["slots"]) == 5


def test_a_chain_that_does_not_fit_is_dropped_whole(agents):
    a = agents.open("vale0:a")
    b = agents.open("vale0:b", rx_slots=4)               # 3 usable slots
    assert b.info["rx_slots"] == 4
    a.send([frame(BCAST, mac(1), pattern(9000 - 14), 9000)])  # 5 fragments
    assert b.slots() == []
    assert b.stats()["rx_dropped"] == 1
    a.send([frame(BCAST, mac(1), pattern(5000 - 14), 5000)])  # 3 fragments: fits
    assert [len(p["data"]) for p in chains(b.slots())] == [5000]
    assert b.stats()["rx_dropped"] == 1 and b.stats()["forwarded"] == 1


def test_indirect_slots_carry_the_senders_own_memory(agents):
    a, b = agents.open("vale0:a"), agents.open("vale0:b")
    b.send([tagged(BCAST, mac(2), "learn-b")])
    a.frames()
    pkts = [[frame(mac(2), mac(1), pattern(n - 14, seed=n), n)] for n in (60, 1514, 2048)]
    pkts.append([frame(mac(2), mac(1), pattern(1500 - 14, 9), 1500), pattern(1500, 10)])   # indirect chain
    pkts.append([frame(BCAST, mac(1), b"indirect-broadcast", 64)])
    assert a.send_indirect(pkts) == len(pkts)
    got = chains(b.slots())
    assert [p["data"] for p in got] == [b"".join(p) for p in pkts]
    assert [len(p["slots"]) for p in got] == [1, 1, 1, 2, 1]
    assert b"WRONGBUF" not in b"".join(p["data"] for p in got)
    # an ordinary send after the indirect ones uses the ring's own buffers again
    a.send([tagged(mac(2), mac(1), "plain")])
    assert tags(b.frames()) == ["plain"]


# ---------------------------------------------------------------------------
# Ports of different buffer sizes


def _slots_for(size: int, sent_in: int, bufs: int) -> int:
    """Slots a frame of `size` bytes, sent in fragments of `sent_in` bytes,
    takes in a ring of `bufs`-byte buffers: each fragment split into them."""
    frags = [min(sent_in, size - o) for o in range(0, size, sent_in)]
    return sum(-(-f // bufs) for f in frags)


@pytest.mark.parametrize("unicast", [False, True], ids=["broadcast", "unicast"])
@pytest.mark.parametrize("sender_bufs", [4096, 2112])
def test_fragments_longer_than_a_receivers_buffers_are_split_not_cut(agents, sender_bufs, unicast):
    """A fragment is copied into as many of the receiver's buffers as it
    needs, NS_MOREFRAG between them: nothing is cut (the NIC attached to a
    switch has 2048-byte buffers, a VALE port 2112 by default)."""
    a = agents.open("vale0:a", buf_size=sender_bufs)
    b = agents.open("vale0:b", buf_size=2048)
    c = agents.open("vale0:c", buf_size=1024)
    assert (a.info["buf_size"], b.info["buf_size"], c.info["buf_size"]) == (sender_bufs, 2048, 1024)
    receivers = [(b, 2048)] if unicast else [(b, 2048), (c, 1024)]
    if unicast:
        b.send([frame(BCAST, mac(2), b"learn-b", 60)])
        a.frames(), c.frames()
    dst = mac(2) if unicast else BCAST
    sizes = [60, 1024, 1025, 2048, 2049, 2112, sender_bufs, 9000]
    sent = [frame(dst, mac(1), pattern(n - 14, seed=n), n) for n in sizes]
    assert a.send(sent[:5]) == 5                 # single-slot frames in one batch
    for f in sent[5:]:
        assert a.send([f]) == 1                  # chains of the sender's buffers
    for port, bufs in receivers:
        got = chains(port.slots())
        assert [p["data"] for p in got] == sent, f"into {bufs}-byte buffers"
        for p, n in zip(got, sizes):
            k = len(p["slots"])
            assert k == _slots_for(n, sender_bufs, bufs), (n, [s["len"] for s in p["slots"]])
            assert all(0 < s["len"] <= bufs for s in p["slots"]), p["slots"]
            assert [s["flags"] >> 8 for s in p["slots"]] == [k] * k            # NS_RFRAGS
            assert [bool(s["flags"] & NS_MOREFRAG) for s in p["slots"]] == [True] * (k - 1) + [False]
        assert port.stats()["rx_dropped"] == 0 and port.stats()["forwarded"] == len(sent)
    if unicast:
        assert c.slots() == []


@pytest.mark.parametrize("unicast", [False, True], ids=["broadcast", "unicast"])
def test_a_packet_longer_than_a_netmap_chain_in_the_receivers_buffers_is_dropped(agents, unicast):
    """Split into 64-byte buffers, a 4096-byte frame takes 64 slots, netmap's
    longest chain (NETMAP_MAX_FRAGS): delivered.  4097 bytes would take 65:
    dropped for that receiver and counted, as the frames around it go on
    (the split made chains of any length before)."""
    a = agents.open("vale0:a", buf_size=2048)
    b = agents.open("vale0:b", buf_size=64)
    dst = mac(2) if unicast else BCAST
    if unicast:
        b.send([frame(BCAST, mac(2), b"learn-b", 60)])
        a.frames()
    sent = [frame(dst, mac(1), pattern(n - 14, seed=n), n) for n in (60, 4096, 4097, 64)]
    for f in sent:
        assert a.send([f]) == 1
    got = chains(b.slots())
    assert [p["data"] for p in got] == [sent[0], sent[1], sent[3]]
    assert [len(p["slots"]) for p in got] == [1, 64, 1]
    assert [s["flags"] >> 8 for s in got[1]["slots"]] == [64] * 64              # NS_RFRAGS
    assert b.stats()["rx_dropped"] == 1 and b.stats()["forwarded"] == 3


def test_a_vale_port_has_2112_byte_buffers_unless_asked(agents):
    """33 cache lines (docs/DESIGN.md "VALE buffers"); buf_size= and
    NMCOMPAT_BUF_SIZE still choose."""
    assert agents.open("vale0:a").info["buf_size"] == 2112
    assert agents.open("vale0:b", buf_size=2048).info["buf_size"] == 2048
    agents.env = dict(agents.env, NMCOMPAT_BUF_SIZE="4096")
    assert agents.open("vale0:c").info["buf_size"] == 4096
