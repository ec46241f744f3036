"""A port's netmap device descriptor (nmc_port_dev_fd): what a /dev/netmap fd
is once registered.  The port's holder lives while any process has it open,
whatever its opener does (docs/DESIGN.md section 5)."""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

import nmcompat
from nmcompat import rundir as rd
from nmcompat._ffi import lib
from testlib import rundir_entries


def dev_fd(port) -> int:
    return port._c("get the device descriptor of", lib.nmc_port_dev_fd)


def holders(rundir, mem_id) -> dict:
    return {h["holder"]: h for h in rd.region(str(rundir), mem_id)["holders"]}


def hold_elsewhere(fd: int) -> subprocess.Popen:
    """Another process that has only fd (as SCM_RIGHTS would give it), until its stdin closes."""
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE,
                            pass_fds=(fd,))


def test_the_holder_lives_while_another_process_has_the_device_fd(rundir):
    master = nmcompat.open("netmap:dv{1")
    mem_id = master.info.mem_id
    (mine,) = holders(rundir, mem_id)
    slave = nmcompat.open("netmap:dv}1")
    fd = dev_fd(master)
    other = hold_elsewhere(fd)
    try:
        os.close(fd)
        master.close()
        assert holders(rundir, mem_id)[mine]["alive"], "closed here, held there: the holder lives"
    finally:
        other.stdin.close()
        assert other.wait(timeout=30) == 0
    slave.close()                               # the last close reaps the holder the other left
    assert rundir_entries(rundir) == ["lock"]


def test_without_another_holder_close_releases_at_once(rundir):
    master = nmcompat.open("netmap:dv{1")
    mem_id = master.info.mem_id
    (mine,) = holders(rundir, mem_id)
    slave = nmcompat.open("netmap:dv}1")
    os.close(dev_fd(master))
    master.close()
    assert mine not in holders(rundir, mem_id)
    slave.close()
    assert rundir_entries(rundir) == ["lock"]


def test_one_device_fd_per_port(rundir):
    with nmcompat.open("netmap:dv{1") as master:
        fd = dev_fd(master)
        with pytest.raises(OSError) as e:
            dev_fd(master)
        assert e.value.errno == errno.EBUSY
        os.close(fd)
