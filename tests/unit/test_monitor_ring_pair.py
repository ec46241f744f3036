"""Monitors of rings a port does not have, refused with messages that say
so: a ring pair X lacks (X-k/r; EINVAL as in netmap, naming the ring pair
rather than only saying that X is not open, X being open), and host rings
(X^/r: EINVAL, monitors here do not watch host rings)."""
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


@pytest.mark.parametrize("name", ["vale31:h^/r", "vale31:h*/t", "netmap:lo^/rt"])
def test_a_monitor_of_host_rings_is_refused_as_such(rundir, name):
    """Monitors watch NIC, pipe and VALE rings, not host rings: EINVAL
    saying that, not that the port has no host rings (a NIC has them)."""
    with pytest.raises(OSError) as e:
        nmcompat.open(name)
    assert e.value.errno == errno.EINVAL
    assert "a monitor of host rings" in str(e.value), str(e.value)
