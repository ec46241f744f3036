"""What open(), send(), recv() and vale.newif() refuse, and how they say it:
flags and options that are parsed but not implemented (EOPNOTSUPP naming
them), values out of range (EINVAL naming the argument), and errors that
name what was wrong (ring pair, VALE port, runtime directory mode, EMFILE)."""
from __future__ import annotations

import errno
import os
import resource
import tempfile

import numpy as np
import pytest

import nmcompat
from nmcompat import vale
from nmcompat._ffi import ffi, lib
from nmcompat._portspec import NR_MONITOR_RX, NR_MONITOR_TX, NR_ZCOPY_MON
from testlib import SHM, rundir_entries


def _regions(rundir) -> list:
    return [n for n in rundir_entries(rundir) if n.startswith(("mem.", "ctl."))]


@pytest.mark.parametrize("name,names", [
    ("netmap:mm{1/r", "'/r'"),
    ("netmap:mm{1/t", "'/t'"),
    ("netmap:mm{1/z", "'/z'"),
    ("netmap:mm{1/xr", "'/r'"),
    ("vale0:a/t", "'/t'"),
])
def test_unimplemented_flags_and_options_are_refused(rundir, name, names):
    with pytest.raises(nmcompat.NmcompatError) as ei:
        nmcompat.open(name).close()
    exc = ei.value
    assert isinstance(exc, OSError) and exc.errno == errno.EOPNOTSUPP, exc
    assert names in str(exc) and "not supported" in str(exc), str(exc)
    assert _regions(rundir) == []                     # nothing left behind


def test_a_bad_name_is_in_the_one_hierarchy(rundir):
    """PortSpecError: an NmcompatError and an OSError (EINVAL), as well as a ValueError."""
    with pytest.raises(OSError) as ei:
        nmcompat.open("netmap:x{")
    exc = ei.value
    assert all(isinstance(exc, cls) for cls in (nmcompat.NmcompatError, ValueError,
                                                nmcompat.PortSpecError))
    assert (exc.errno, exc.filename) == (errno.EINVAL, "netmap:x{")
    assert exc.strerror == "couldn't parse port name 'netmap:x{': invalid empty pipe name"


@pytest.mark.parametrize("flag", [NR_MONITOR_TX, NR_MONITOR_RX, NR_ZCOPY_MON])
def test_engine_refuses_monitor_flags(rundir, flag):
    """The C API refuses them too, for C programs that fill nr_flags themselves."""
    keep = [ffi.new("char[]", s.encode()) for s in ("cm", "1", str(rundir))]
    req = ffi.new("struct nmc_pipe_req *")
    req.parent, req.pipe_id, req.rundir = keep
    req.mode, req.flags = 1, flag
    out = ffi.new("struct nmc_port **")
    assert lib.nmc_pipe_open(req, out) == -errno.EOPNOTSUPP
    req.flags = 0
    assert lib.nmc_pipe_open(req, out) == 0
    lib.nmc_port_close(out[0])


@pytest.mark.parametrize("name,says", [
    ("netmap:x{1-99", "ring pair 99 does not exist"),
    ("vale0:", "needs a port after 'vale0:'"),
])
def test_einval_on_open_says_why(rundir, name, says):
    with pytest.raises(nmcompat.NmcompatError) as ei:
        nmcompat.open(name)
    assert ei.value.errno == errno.EINVAL and says in str(ei.value), str(ei.value)


@pytest.fixture
def pipe(rundir):
    with nmcompat.open("netmap:s{1") as m, nmcompat.open("netmap:s}1") as s:
        yield m, s


def test_send_refuses_a_length_beyond_the_row(pipe):
    m, s = pipe
    with pytest.raises(nmcompat.BadArgument) as ei:
        m.send(np.zeros((2, 64), np.uint8), [60, 100])
    assert isinstance(ei.value, ValueError) and ei.value.errno == errno.EINVAL
    assert ei.value.argument == "lengths" and "lengths[1] is 100" in str(ei.value)
    assert "[0, 64]" in str(ei.value)
    s.rxsync()
    assert s.rx_rings[0].space() == 0                   # nothing was queued


def test_send_says_what_it_takes_for_a_list_of_bytes(pipe):
    m, _ = pipe
    with pytest.raises(nmcompat.BadArgument) as ei:
        m.send([b"a" * 60], [60])
    assert ei.value.argument == "packets" and "2-D uint8 array" in str(ei.value)


def test_recv_refuses_absurd_sizes_and_allocates_only_what_fits(pipe):
    m, s = pipe
    for kwargs, arg in (({"max_packets": 10 ** 9}, "max_packets"), ({"snaplen": 10 ** 9}, "snaplen"),
                        ({"max_packets": -1}, "max_packets")):
        with pytest.raises(nmcompat.BadArgument) as ei:
            s.recv(**kwargs)
        assert ei.value.argument == arg, ei.value
    m.send(np.full((3, 60), 5, np.uint8))
    data, lens = s.recv(10 ** 6)                      # more than the ring holds: fine
    assert list(lens) == [60, 60, 60] and data.base.shape[0] <= s.rx_rings[0].num_slots


@pytest.mark.parametrize("name", ["a/b", "../../x", "-r", "x@1", "a^", "p{1", "vale0", ""])
def test_persistent_port_names_are_checked_as_open_reads_them(rundir, name):
    with pytest.raises(nmcompat.NmcompatError) as ei:
        vale.newif(name)
    assert ei.value.errno == errno.EINVAL and "couldn't create" in str(ei.value)
    assert _regions(rundir) == [] and not any(n.startswith("parent.") for n in os.listdir(rundir))


@pytest.mark.parametrize("name", [b"a/b", b"../../x", b"-r", b"x@1"])
def test_engine_refuses_persistent_names_open_cannot_read(rundir, name):
    keep = [ffi.new("char[]", name), ffi.new("char[]", str(rundir).encode())]
    req = ffi.new("struct nmc_pipe_req *")
    req.parent, req.rundir, req.mode = keep[0], keep[1], 1
    assert lib.nmc_vale_newif(req) == -errno.EINVAL
    assert _regions(rundir) == []


def test_runtime_directory_with_a_wrong_mode_says_so(monkeypatch):
    path = tempfile.mkdtemp(prefix="nmc-test-mode-", dir=SHM)
    try:
        os.chmod(path, 0o755)                           # ours, but open to others
        monkeypatch.setenv("NMCOMPAT_RUNDIR", path)
        with pytest.raises(PermissionError) as ei:
            nmcompat.open("netmap:m{1")
        text = str(ei.value)
        assert "mode 0755" in text and "0700" in text and "another user" not in text, text
    finally:
        os.rmdir(path)


def test_emfile_names_the_port(rundir):
    """Whichever step runs out of descriptors (the engine's open or the
    mapping made in Python), the error names the port."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    base = len(os.listdir("/proc/self/fd"))
    failures = []
    try:
        for extra in range(12):
            resource.setrlimit(resource.RLIMIT_NOFILE, (base + extra, hard))
            name = f"netmap:f{extra}{{1"
            try:
                nmcompat.open(name).close()
            except OSError as exc:
                failures.append((name, exc))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert failures
    for name, exc in failures:
        assert exc.errno == errno.EMFILE and isinstance(exc, nmcompat.NmcompatError), repr(exc)
        assert name in str(exc), str(exc)
