"""A monitor that would watch nothing is refused with EINVAL (netmap's errno
for a binding it cannot make) and a message: /T binds none of the monitor's
RX rings, the only ones a monitor fills.  /R binds all of them: /tR watches
TX as netmap's does (test_monitor_rings_only.py).  The engine refuses /T
too, for the C API and /dev/netmap."""
from __future__ import annotations

import errno

import pytest

import nmcompat
from nmcompat._ffi import ffi, lib
from nmcompat._portspec import NR_MONITOR_RX, NR_MONITOR_TX, NR_REG_ALL_NIC, NR_RX_RINGS_ONLY, \
    NR_TX_RINGS_ONLY, NR_ZCOPY_MON

BLIND = ["/rT", "/tT", "/rtT", "/zT", "/Tr"]


@pytest.mark.parametrize("suffix", BLIND)
def test_a_monitor_that_watches_nothing_is_einval_saying_why(rundir, suffix):
    with nmcompat.open("netmap:mb{1", rundir=str(rundir)), nmcompat.open("netmap:mb}1", rundir=str(rundir)):
        with pytest.raises(OSError) as exc:
            nmcompat.open(f"netmap:mb{{1{suffix}", rundir=str(rundir))
    assert exc.value.errno == errno.EINVAL
    assert "would watch nothing" in str(exc.value), str(exc.value)


def _engine_open(rundir, flags):
    keep = [ffi.new("char[]", str(rundir).encode()), ffi.new("char[]", b"mb"), ffi.new("char[]", b"1")]
    req = ffi.new("struct nmc_pipe_req *")
    req.rundir, req.parent, req.pipe_id = keep
    req.mode, req.flags, req.spin_us = NR_REG_ALL_NIC, flags, -1
    out = ffi.new("struct nmc_port **")
    rc = lib.nmc_monitor_open(req, out)
    if rc == 0:
        lib.nmc_port_close(out[0])
    return rc


@pytest.mark.parametrize("flags, rc", [
    (NR_MONITOR_RX | NR_TX_RINGS_ONLY, -errno.EINVAL),
    (NR_ZCOPY_MON | NR_TX_RINGS_ONLY, -errno.EINVAL),
    (NR_MONITOR_TX | NR_RX_RINGS_ONLY, 0),
    (NR_MONITOR_RX | NR_RX_RINGS_ONLY, 0),
    (NR_MONITOR_TX, 0),
])
def test_the_engine_refuses_them_too(rundir, flags, rc):
    with nmcompat.open("netmap:mb{1", rundir=str(rundir)), nmcompat.open("netmap:mb}1", rundir=str(rundir)):
        assert _engine_open(rundir, flags) == rc
