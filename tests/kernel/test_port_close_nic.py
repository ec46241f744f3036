"""close() of a NIC port while another thread waits in its poll(): the
waiting thread gets PortClosed (the port's own socket is in the set the
engine waits on) and nothing is freed under it."""
from __future__ import annotations

import pytest

from nic_support import BACKEND_IDS, BACKENDS, open_nic_retrying, quiet
from testlib import close_while_polling


def _close_while_polling(backend, xdp_mode, count):
    quiet()
    return close_while_polling(lambda i: open_nic_retrying("netmap:va", backend, xdp_mode,
                                                           spin_us=0), count)


@pytest.mark.parametrize("backend,xdp_mode", BACKENDS, ids=BACKEND_IDS)
def test_close_while_another_thread_polls_a_nic_port(netns, rundir, backend, xdp_mode):
    count = 30 if backend == "afpacket" else 9         # an AF_XDP open takes longer
    assert netns.run(_close_while_polling, backend, xdp_mode, count) == count
