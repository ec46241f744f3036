"""A NIC port's interface going down and up again.

A packet socket bound to an interface gets ENETDOWN as its pending error
when the interface goes down, and keeps it after the interface is back: it
reads POLLERR until the error is read.  netmap's poll knows no such event (a
ring whose link went down just receives nothing), so a port's poll() reads
the error and sleeps on: it neither spins nor fails, and frames the peer
sends once the link is back arrive.
"""
from __future__ import annotations

import subprocess
from contextlib import closing

import pytest

from nic_support import frame, open_nic, peer_sender, port_drain, quiet, wait_link_up
from nmcompat import POLLIN

pytestmark = pytest.mark.kernel

WAIT_MS = 300                           # one poll() for POLLIN with nothing to receive


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def _flap(backend, xdp_mode):
    quiet()
    with open_nic("netmap:va", backend, xdp_mode) as port, closing(peer_sender()) as tx:
        for dev in ("va", "vb"):
            subprocess.run(["ip", "link", "set", "dev", dev, "down"], check=True)
        for dev in ("va", "vb"):
            subprocess.run(["ip", "link", "set", "dev", dev, "up"], check=True)
        wait_link_up("va")
        before = port.stats()["sleeps"]
        ev = port.poll(POLLIN, WAIT_MS)
        wakeups = port.stats()["sleeps"] - before
        sent = [frame(i, 60 + i) for i in range(8)]
        for f in sent:
            tx.send(f)
        got = []
        port_drain(port, lambda: len(got) >= len(sent), lambda h, d: got.append(d))
        return ev, wakeups, got == sent, len(got)


def test_poll_sleeps_and_receives_after_the_link_flapped(netns, nic):
    ev, wakeups, same, ngot = netns.run(_flap, *nic)
    assert ev == 0, f"poll(POLLIN) gave {ev} with nothing to receive"
    # one wait, or a few: a spin on the socket's error wakes 100,000s of times
    assert wakeups < 100, f"poll() woke {wakeups} times in {WAIT_MS} ms: it spins"
    assert ngot == 8 and same, f"{ngot} of 8 frames after the link came back, intact: {same}"
