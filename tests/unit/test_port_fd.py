"""The port's descriptor with select, poll, epoll and asyncio, for pipes and
VALE ports: readable whenever an rxsync would hand the user packets, and
writable whenever a txsync would find room, from the moment the port is
opened, whatever was called on the port before the descriptor was taken.
The fd is level-triggered and follows the rings at each sync (docs/DESIGN.md
section 8): it stays readable while packets wait, and stops being readable
at the first rxsync that finds nothing left."""
from __future__ import annotations

import asyncio
import select
import threading

import pytest

import nmcompat
from nmcompat import POLLIN, POLLOUT
from testlib import fd_readable, thread_waiting
from vale_helpers import BCAST, frame, mac

WAIT_S = 10.0           # bound on every wait for an event (never a timing assertion)

KINDS = ["pipe", "vale"]


def open_pair(kind: str, **rx_options):
    """(sender, receiver) ports of one kind, in this process."""
    if kind == "pipe":                      # small regions: quick to create and remove
        return (nmcompat.open("netmap:fd{1", slots=64, buf_num=1024),
                nmcompat.open("netmap:fd}1", **rx_options))
    return (nmcompat.open("vale3:tx", slots=64, buf_num=1024),
            nmcompat.open("vale3:rx", slots=64, buf_num=1024, **rx_options))


def packet(kind: str, tag: bytes) -> bytes:
    return tag if kind == "pipe" else frame(BCAST, mac(1), tag)


def tag_of(kind: str, data: bytes) -> bytes:
    return data if kind == "pipe" else data[14:].rstrip(b"\0")


def send(kind: str, tx, *tags: bytes) -> None:
    for tag in tags:
        assert tx.inject(packet(kind, tag))
    tx.txsync()


def take(kind: str, rx) -> list:
    """Everything waiting, read as netmap users do: rxsync, read, rxsync."""
    rx.rxsync()
    out = []
    rx.dispatch(lambda h, d: out.append(tag_of(kind, bytes(d))))
    rx.rxsync()
    return out


def writable(fd: int, timeout: float) -> bool:
    pl = select.poll()
    pl.register(fd, select.POLLOUT)
    return any(ev & select.POLLOUT for _, ev in pl.poll(int(timeout * 1000)))


BEFORE = {
    "nothing": lambda rx: None,
    "rxsync": lambda rx: rx.rxsync(),
    "txsync": lambda rx: rx.txsync(),
    "poll(0)": lambda rx: rx.poll(POLLIN, 0),
    "poll(timeout)": lambda rx: rx.poll(POLLIN, 20),
    "recv": lambda rx: rx.recv(),
}


# every waiter on a fresh port; every earlier call with one waiter
WAITS = [(how, "nothing") for how in ("select", "poll", "epoll")] + \
        [("poll", before) for before in BEFORE if before != "nothing"]


@pytest.mark.parametrize("how,before", WAITS)
@pytest.mark.parametrize("kind", KINDS)
def test_fd_wakes_for_a_packet_sent_while_waiting(rundir, kind, how, before):
    """select() on a just-opened port wakes when a packet comes later."""
    tx, rx = open_pair(kind)
    with tx, rx:
        BEFORE[before](rx)
        fd = rx.fileno()
        assert not fd_readable(fd, how, 0)              # nothing yet, no false alarm
        me = threading.get_native_id()
        sender = threading.Thread(target=lambda: (thread_waiting(me), send(kind, tx, b"later")))
        sender.start()
        try:
            assert fd_readable(fd, how, WAIT_S), "a packet came, the fd did not say so"
        finally:
            sender.join()
        assert take(kind, rx) == [b"later"]
        assert not fd_readable(fd, how, 0)


@pytest.mark.parametrize("how,before", WAITS)
@pytest.mark.parametrize("kind", KINDS)
def test_fd_readable_for_a_packet_queued_before(rundir, kind, how, before):
    """poll() on the fd of a port with a packet already queued reports it."""
    tx, rx = open_pair(kind)
    with tx, rx:
        BEFORE[before](rx)
        send(kind, tx, b"early")
        assert fd_readable(rx.fileno(), how, WAIT_S)


@pytest.mark.parametrize("how", ["select", "poll", "epoll"])
@pytest.mark.parametrize("kind", KINDS)
def test_fd_is_level_triggered(rundir, kind, how):
    """Readable while packets wait, however often it is asked; not readable
    once an rxsync found nothing left; readable again for the next packet."""
    tx, rx = open_pair(kind)
    with tx, rx:
        fd = rx.fileno()
        send(kind, tx, b"one", b"two")
        for _ in range(3):
            assert fd_readable(fd, how, WAIT_S)
        rx.rxsync()                                     # handed out, not yet read
        assert fd_readable(fd, how, 0)
        assert take(kind, rx) == [b"one", b"two"]
        assert not fd_readable(fd, how, 0)
        assert not fd_readable(fd, how, 0)
        send(kind, tx, b"three")
        assert fd_readable(fd, how, WAIT_S)
        assert take(kind, rx) == [b"three"]
        assert not fd_readable(fd, how, 0)


def test_epoll_registered_once_follows_the_rings(rundir):
    """One epoll registration made at open serves every later packet
    (edge-triggered users get one event per batch that finds the ring empty)."""
    for kind in KINDS:
        tx, rx = open_pair(kind)
        with tx, rx:
            ep = select.epoll()
            ep.register(rx.fileno(), select.EPOLLIN)
            for k in range(20):
                assert ep.poll(0) == []
                send(kind, tx, b"%d" % k)
                assert ep.poll(WAIT_S), f"{kind}: no event for packet {k}"
                assert take(kind, rx) == [b"%d" % k]
            ep.close()


@pytest.mark.parametrize("before", ["txsync", "fileno"])
def test_pipe_fd_writable_exactly_while_a_txsync_finds_room(rundir, before):
    """A fresh port is writable; a full TX ring is not, also when it was
    filled before the fd was taken; it is again once the reader released."""
    with nmcompat.open("netmap:fw{1", slots=64) as tx, nmcompat.open("netmap:fw}1") as rx:
        if before == "fileno":
            fd = tx.fileno()
            assert writable(fd, 0)
        n = 0
        while tx.inject(b"%d" % n):
            n += 1
        tx.txsync()
        assert n == 63
        if before == "txsync":
            fd = tx.fileno()
        assert not writable(fd, 0), "writable while the ring is full"
        tx.txsync()
        assert not writable(fd, 0), "a txsync with nothing to do made it writable"
        rx.rxsync()
        r = rx.rx_rings[0]
        r.head = r.cur = r.tail                         # read everything
        rx.rxsync()                                     # and released it
        assert writable(fd, WAIT_S), "not writable after the reader released"
        tx.txsync()
        assert tx.tx_rings[0].space() == 63


def test_vale_fd_always_writable(rundir):
    """A VALE txsync always finds room (what does not fit is dropped at the
    destination), so its fd is writable even with the TX ring full."""
    with nmcompat.open("vale3:w0") as tx, nmcompat.open("vale3:w1"):
        fd = tx.fileno()
        ring = tx.tx_rings[0]
        ring.head = ring.cur = ring.tail                # queued a full ring, not yet synced
        assert writable(fd, 0)
        tx.txsync()
        assert writable(fd, 0)


# ---------------------------------------------------------------------------
# asyncio, with the sender in another process

ROUNDS, BURST = 30, 32

SENDER = """
    import sys, nmcompat
    from nmcompat import POLLIN
    kind, name, rounds, burst = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with nmcompat.open(name) as p:
        print("ready", flush=True)
        for r in range(rounds):
            for k in range(burst):
                tag = b"%d.%d" % (r, k)
                pkt = tag if kind == "pipe" else (b"\\xff" * 6 + b"\\x02\\0\\0\\0\\0\\x01\\x88\\xb5"
                                                  + tag).ljust(60, b"\\0")
                if not p.inject(pkt):
                    sys.exit("no room in round %d" % r)
            p.txsync()
            acked = []
            while not acked:                # the receiver acknowledges each burst
                if not p.poll(POLLIN, 10000) & POLLIN:
                    sys.exit("no acknowledgement of round %d" % r)
                p.dispatch(lambda h, d: acked.append(bytes(d)))
        p.rxsync()
        print("done", flush=True)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_asyncio_add_reader_receives_from_another_process(procs, rundir, kind):
    names = {"pipe": ("netmap:as{1", "netmap:as}1"), "vale": ("vale4:snd", "vale4:rcv")}[kind]
    expected = [b"%d.%d" % (r, k) for r in range(ROUNDS) for k in range(BURST)]

    async def receive(port) -> list:
        loop = asyncio.get_running_loop()
        got: list = []
        done = loop.create_future()
        wakeups = [0]

        def on_readable() -> None:
            wakeups[0] += 1
            data, lens = port.recv(max_packets=256, snaplen=64)
            before = len(got)
            got.extend(tag_of(kind, bytes(row[:n])) for row, n in zip(data, lens))
            if len(got) // BURST > before // BURST:     # a burst is complete: acknowledge
                send(kind, port, b"ack")
            if len(got) >= len(expected) and not done.done():
                done.set_result(None)

        loop.add_reader(port.fileno(), on_readable)
        try:
            await asyncio.wait_for(done, 30)
        finally:
            loop.remove_reader(port.fileno())
        assert wakeups[0] >= ROUNDS
        return got

    with nmcompat.open(names[1]) as rx:
        child = procs.python(SENDER, kind, names[0], str(ROUNDS), str(BURST))
        child.expect("ready", timeout=20)
        got = asyncio.run(receive(rx))
        assert got == expected
        child.expect("done", timeout=20)
        assert child.wait() == 0
