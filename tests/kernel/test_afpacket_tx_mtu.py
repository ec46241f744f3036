"""AF_PACKET TX: the interface's MTU limit holds, frame by frame.

The emulated NIC backend hands TX frames to the kernel with a
virtio_net_hdr (so that the kernel copies them instead of pointing page
fragments at its ring), and the kernel checks no MTU for such frames; the
backend checks it instead, as the kernel does for plain frames: at most
MTU + 14 bytes, 4 more when the frame carries an 802.1Q header.  A frame
over the limit is dropped alone (PACKET_LOSS), the frames after it go out,
and the TX ring is given back whole.
"""
from __future__ import annotations

from contextlib import closing

import pytest

from nic_support import (PACKET_AUXDATA, SOL_PACKET, frame, open_nic, peer_receiver,
                         peer_recv_wire, port_send, quiet, tx_done, vlan_frame)
from nic_support import MAC_A, MAC_B

pytestmark = pytest.mark.kernel

ETH_P_ALL = 3
MTU = 1500                              # the veth pair's MTU (the kernel's default)


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def _mtu_limit():
    quiet()
    plain = lambda seq, size: frame(seq, size, src=MAC_A, dst=MAC_B)
    tagged = lambda seq, size, tpid: vlan_frame(seq, size, [(tpid, 7)], src=MAC_A, dst=MAC_B)
    carried = [plain(0, MTU + 14), tagged(2, MTU + 18, 0x8100), plain(5, 60)]
    dropped = [plain(1, MTU + 15), tagged(3, MTU + 19, 0x8100), tagged(4, MTU + 18, 0x88A8)]
    order = [carried[0], dropped[0], carried[1], dropped[1], dropped[2], carried[2]]
    with open_nic("netmap:va", "afpacket", None) as port, \
            closing(peer_receiver(proto=ETH_P_ALL)) as rx:
        rx.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        port_send(port, order)
        assert tx_done(port), "the TX ring was not given back"
        got = peer_recv_wire(rx, len(carried), timeout=5.0)
        got += peer_recv_wire(rx, 1, timeout=0.3)        # nothing more may come
        assert [len(f) for f in got] == [len(f) for f in carried]
        assert got == carried


def test_tx_frames_over_the_mtu_are_dropped_alone(netns):
    netns.run(_mtu_limit)
