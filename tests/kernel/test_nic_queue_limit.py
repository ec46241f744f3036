"""An interface of more queues than a NIC port serves (256: its rings, and
the stack cut-off's queue map, whose program would take queue 256 for
queue 0) is refused with EINVAL and a message, on every NIC backend and by
one ring pair too, not with a bare EINVAL from the engine."""
from __future__ import annotations

import errno

import pytest

import nic_support
import nmcompat

QUEUES = 300


def _open_error(name: str, backend: str) -> tuple:
    try:
        nmcompat.open(name, backend=backend).close()
    except OSError as exc:
        return exc.errno, str(exc)
    return 0, "opened"


@pytest.mark.parametrize("backend", ["afpacket", "afxdp"])
@pytest.mark.parametrize("name", ["netmap:va", "netmap:va-0", "netmap:va*"])
def test_an_interface_of_more_than_256_queues_is_refused_saying_so(netns, backend, name):
    nic_support.reshape_veth(netns, queues=QUEUES)
    err, msg = netns.run(_open_error, name, backend)
    assert err == errno.EINVAL, (err, msg)
    assert f"va has {QUEUES} queues: nmcompat serves interfaces of at most 256" in msg, msg
