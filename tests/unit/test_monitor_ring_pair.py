"""A monitor of one ring pair (X-k/r) that X does not have: EINVAL, as in
netmap, and the message names the ring pair rather than only saying that
X is not open (X is open)."""
from __future__ import annotations

import errno

import pytest

import nmcompat


def test_monitor_of_a_ring_pair_the_port_lacks_names_the_ring_pair(rundir):
    with nmcompat.open("vale31:a") as port:
        assert port.info.rx_rings == 1
        with pytest.raises(OSError) as e:
            nmcompat.open("vale31:a-5/r")
        assert e.value.errno == errno.EINVAL
        assert "no ring pair 5" in str(e.value), str(e.value)
        with nmcompat.open("vale31:a-0/r") as mon:   # the ring pair it has
            assert mon.info.rx_rings == 1
