"""AF_PACKET RX: the port's descriptor says readable only when an rxsync
hands out packets.

An AF_PACKET port hands out its kernel socket as its descriptor
(``fileno()``), readable once the kernel has handed a TPACKET_V3 block over.
rxsync spares the block the kernel is filling from repeated looks (the
kernel counts every frame in that block's header line); a first version
skipped looking for a while after an empty rxsync, so a program that
waited on ``fileno()`` with select() and then called rxsync found nothing
in about half the cases.  Here a peer sends frames for a while; the port
alternates rxsync and select(fileno(), timeout 0), and after every
"readable" rxsync must deliver.
"""
from __future__ import annotations

import select
import threading
import time
from contextlib import closing

import pytest

from nic_support import frame, open_nic, peer_sender, quiet

pytestmark = pytest.mark.kernel

RUN_S = 1.5
SPACING_S = 0.0003      # the peer's pace: a block is handed over per ms (its timeout) or so


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def _send_for(tx, stop: threading.Event) -> None:
    seq = 0
    while not stop.is_set():
        tx.send(frame(seq, 60))
        seq += 1
        time.sleep(SPACING_S)


def _readable_means_packets():
    quiet()
    stop = threading.Event()
    readable = empty = 0
    with open_nic("netmap:va", "afpacket", None) as port, closing(peer_sender()) as tx:
        fd = port.fileno()
        sender = threading.Thread(target=_send_for, args=(tx, stop), daemon=True)
        sender.start()
        try:
            deadline = time.monotonic() + RUN_S
            while time.monotonic() < deadline:
                port.recv(4096)                 # rxsync and release everything
                if not select.select([fd], [], [], 0)[0]:
                    continue
                readable += 1
                if len(port.recv(4096)[1]) == 0:
                    empty += 1
        finally:
            stop.set()
            sender.join(5)
    assert readable >= 20, f"the descriptor turned readable only {readable} times"
    assert empty == 0, f"{empty} of {readable} rxsyncs after 'readable' handed out nothing"


def test_readable_descriptor_means_rxsync_delivers(netns):
    netns.run(_readable_means_packets)
