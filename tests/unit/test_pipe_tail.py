"""The pipe's TX tail (csrc/transport/pipe/pipe.c, tail_wanted; docs/DESIGN.md
section 6, "The TX tail"): a txsync that queued slots may keep the tail it
saw last, but never when that would leave the ring looking full to a
program that waits for room."""
from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nmcompat
from nmcompat import POLLOUT
from testlib import skip_or_fail
from vale_helpers import build

ROOT = Path(__file__).resolve().parent.parent.parent


def _release_all(s):
    rx = s.rx_rings[0]
    s.rxsync()
    rx.head = rx.cur = rx.tail
    s.rxsync()


def test_a_txsync_that_leaves_cur_at_the_tail_fetches_the_releases(rundir):
    """netmap's way to wait for more room than the ring shows: cur = tail,
    then poll(POLLOUT) (pkt-gen does it when a batch does not fit).  The
    txsync of that poll queued a slot, yet it must report the receiver's
    releases: by the tail seen last the ring is full up to cur, and a
    poll(POLLOUT, 0), or the /dev/netmap emulation's poll, which then waits
    on the reader's filler, found no room while 14 slots were free."""
    with nmcompat.open("netmap:x{1", slots=16, buf_num=1024) as m, nmcompat.open("netmap:x}1") as s:
        tx = m.tx_rings[0]
        assert m.inject(b"a")
        m.txsync()
        assert tx.tail == 15                    # nothing released yet
        _release_all(s)
        assert m.inject(b"b")                   # queued: head 2
        tx.cur = tx.tail                        # wake me when there is more room
        assert m.poll(POLLOUT, 0) == POLLOUT
        assert tx.tail == 0 and tx.head == 2


def test_a_txsync_with_cur_at_the_tail_reports_the_releases(rundir):
    """The same through NIOCTXSYNC alone: with cur at the tail it seen last,
    a txsync that queued slots still reports what the receiver released."""
    with nmcompat.open("netmap:x{1", slots=16, buf_num=1024) as m, nmcompat.open("netmap:x}1") as s:
        tx = m.tx_rings[0]
        for k in range(3):
            assert m.inject(b"a%d" % k)
        m.txsync()
        _release_all(s)
        assert m.inject(b"b")
        tx.cur = tx.tail
        m.txsync()
        assert tx.tail == 2 and tx.cur != tx.tail


@pytest.mark.parametrize("slots", [2, 3, 4, 5, 16])
def test_a_sending_txsync_shows_half_the_ring_or_every_release(rundir, slots):
    """The bound of the rule, at every ring size (n // 2 is 1 for 2 and 3
    slots): after a txsync that queued slots, the ring shows at least
    min(n // 2, what is really free) free slots; and when the user's cur is
    at the tail it shows exactly what is free.  Random batches and random
    partial releases; every packet arrives, in order."""
    rng = random.Random(slots)
    with nmcompat.open("netmap:y{1", slots=slots, buf_num=256) as m, nmcompat.open("netmap:y}1") as s:
        tx, rx = m.tx_rings[0], s.rx_rings[0]
        sent = released = 0
        for rnd in range(300):
            tx.cur = tx.head
            k = rng.randint(1, tx.space()) if tx.space() else 0
            for _ in range(k):
                assert m.inject(b"%d" % sent)
                sent += 1
            if k and rng.random() < 0.3:
                tx.cur = tx.tail                # wait for more room than shown
            m.txsync()
            free = slots - 1 - (sent - released)
            assert tx.space() >= min(slots // 2, free), (rnd, tx, free)
            if tx.cur == tx.tail:
                assert tx.space() == free, (rnd, tx, free)
            s.rxsync()
            take = rng.randint(0, (rx.tail - rx.head) % slots)
            for _ in range(take):
                assert bytes(rx.buf(int(rx.slots[rx.cur]["buf_idx"]))[:len(b"%d" % released)]) \
                    == b"%d" % released
                released += 1
                rx.cur = rx.next(rx.cur)
            rx.head = rx.cur
            s.rxsync()
        s.rxsync()
        assert released + (rx.tail - rx.head) % slots == sent > 100


def test_a_stray_write_to_the_tx_kring_hwtail_gives_no_room(rundir):
    """tests/engine/pipe_tail.c: the TX kring's hwtail overwritten in the
    control state with one more free slot than there is.  Every txsync used
    to fetch the tail over it; a sending txsync that keeps its tail must not
    take that value (it would let the sender fill the slot the receiver's
    hwcur is behind, and a published tail equal to that hwcur hides every
    packet the receiver holds)."""
    exe = build("pipe_tail", sanitize=True)
    proc = subprocess.run([str(exe), str(rundir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "done tail=15\n", proc.stdout + proc.stderr


def test_the_dev_netmap_poll_finds_the_room_a_reader_released(rundir, tmp_path):
    """tests/devnetmap/nm_pipe_tail.c under nmcompat exec: the emulation's
    poll(POLLOUT) after a sending sync with cur at the tail returns with the
    slot the (now idle) reader released; it used to wait until its timeout
    (here: none) for the reader to drain the filler it was sent."""
    if not shutil.which("gcc"):
        skip_or_fail("gcc is missing")
    exe = tmp_path / "nm_pipe_tail"
    subprocess.run(["gcc", "-O1", "-g", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'csrc' / 'include'}", "-o",
                    str(exe), str(ROOT / "tests" / "devnetmap" / "nm_pipe_tail.c"), "-lpthread"], check=True)
    out = subprocess.run([sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", str(rundir), "--", str(exe),
                          "pz"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout == "pollout ok\n", out.stdout + out.stderr
