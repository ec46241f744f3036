"""A Port shared between threads, and views kept after close(): close() wakes
a poll() waiting in another thread with PortClosed and frees nothing under a
call in progress; a view kept after close() never reaches the shared memory
that a port opened later uses."""
from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nmcompat
from nmcompat import POLLIN
from nmcompat._ffi import lib
from nmcompat.errors import NmcompatError, PortClosed

_CLOSE_WHILE_POLLING = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[3])
    import nmcompat
    from testlib import close_while_polling

    kind, count = sys.argv[1], int(sys.argv[2])
    names = (lambda i: f"netmap:keep{{{i % 4 + 1}") if kind == "pipe" else (lambda i: f"vale0:p{i % 4}")
    with nmcompat.open("netmap:keep}0"):                   # a region that stays
        print("ok", close_while_polling(lambda i: nmcompat.open(names(i), spin_us=0), count))
""")


@pytest.mark.parametrize("kind", ["pipe", "vale"])
def test_close_while_another_thread_polls(rundir, kind):
    """In a child: a use after free would kill it, not pytest."""
    proc = subprocess.run([sys.executable, "-c", _CLOSE_WHILE_POLLING, kind, "150",
                           str(Path(__file__).parents[1])],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok 150", (proc.returncode, proc.stdout,
                                                                     proc.stderr[-2000:])


def test_interrupt_without_close_is_ecanceled(rundir):
    with nmcompat.open("netmap:z{1") as port:
        assert lib.nmc_port_interrupt(port._live()) == 0
        with pytest.raises(NmcompatError) as ei:
            port.poll(POLLIN, -1)                   # returns at once, every time
        assert ei.value.errno == errno.ECANCELED and not isinstance(ei.value, PortClosed)


def test_view_kept_after_close_never_reaches_shared_memory(rundir):
    old = nmcompat.open("netmap:v{1", slots=16)
    with nmcompat.open("netmap:v}1") as peer:              # keeps the pipe and its region
        ring = old.tx_rings[0]
        slots = ring.slots
        idx = int(slots["buf_idx"][0])
        data = np.frombuffer(ring.buf(idx), np.uint8)
        view = ring.buf(idx)
        data[:4] = 7
        old.close()
        assert not slots["buf_idx"].any() and not data.any() and not any(view)
        with nmcompat.open("netmap:v{1") as new:
            nring = new.tx_rings[0]
            assert nring.num_slots == 16 and int(nring.slots["buf_idx"][0]) == idx
            slots_before, data_before = nring.slots.copy(), bytes(nring.buf(idx))
            peer_before = peer.rx_rings[0].slots.copy()
            slots["len"][:] = 1234
            slots["buf_idx"][:] = 3
            data[:] = 0xAB
            view[:5] = b"stale"
            assert (nring.slots == slots_before).all()
            assert bytes(nring.buf(idx)) == data_before
            assert (peer.rx_rings[0].slots == peer_before).all()
        with pytest.raises(PortClosed):
            ring.head
