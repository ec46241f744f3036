"""Control-plane locking: one lock per region and per switch, a name lock only
to give a name a region, and no open that maps the other ports of a switch.

A test holds a lock itself (an OFD lock on byte 0 of a region or switch
file, as the engine takes it, or the flock on <rundir>/lock) and watches a
child process wait for it in /proc/locks."""
from __future__ import annotations

import ctypes
import fcntl
import os
import struct
import time
from pathlib import Path

import pytest

import nmcompat
from nmcompat import vale
from testlib import rundir_entries

F_OFD_SETLK, F_OFD_SETLKW = 37, 38
IN_OPEN, IN_NONBLOCK = 0x20, 0o4000


def ofd_lock(fd: int, byte: int = 0, kind: int = fcntl.F_WRLCK) -> None:
    """An OFD lock on one byte, as the engine's region and switch locks."""
    fcntl.fcntl(fd, F_OFD_SETLKW, struct.pack("hh4xqqi4x", kind, os.SEEK_SET, byte, 1, 0))


def waiters_on(path: Path) -> int:
    """How many lock requests wait on the file at path (/proc/locks "->")."""
    ino = f":{os.stat(path).st_ino} "
    with open("/proc/locks") as f:
        return sum("->" in line and ino in line for line in f)


def wait_for(pred, timeout: float, what: str, describe=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s\n{describe()}")
        time.sleep(0.005)


OPEN_CLOSE = """
    import sys, nmcompat
    for name in sys.argv[1:]:
        p = nmcompat.open(name)
        print("opened", name, p.info.mem_id, flush=True)
        p.close()
    print("done", flush=True)
"""


def test_ports_of_existing_regions_open_without_the_name_lock(rundir, procs):
    """Only giving a name a region takes <rundir>/lock: a pipe of a parent
    that has a region, and a second holder of a VALE port, open and close
    while another process holds it."""
    with nmcompat.open("netmap:b{0"), nmcompat.open("vale0:v") as v:
        with open(rundir / "lock", "rb") as names:
            fcntl.flock(names, fcntl.LOCK_EX)
            child = procs.python(OPEN_CLOSE, "netmap:b{1", "netmap:b}0", "vale0:v")
            out = child.finish(timeout=20)
        assert f"opened vale0:v {v.info.mem_id}" in out


def test_a_locked_region_holds_up_only_its_own_opens(rundir, procs):
    with nmcompat.open("netmap:a{0") as a, nmcompat.open("netmap:b{0"):
        region = control_file(a)
        with open(region, "rb+") as f:
            ofd_lock(f.fileno())
            other = procs.python(OPEN_CLOSE, "netmap:b{1", "netmap:c{0", "vale0:x")
            other.finish(timeout=20)
            same = procs.python(OPEN_CLOSE, "netmap:a{1")
            wait_for(lambda: waiters_on(region) == 1, 20, "no open waits for the region lock",
                     same.describe)
            assert same.alive()
        assert "opened netmap:a{1" in same.finish(timeout=20)
    assert rundir_entries(rundir) == ["lock"]


def test_killed_mid_open_while_waiting_for_the_switch_lock(rundir, procs):
    """A process killed in the middle of a VALE open (its new region created
    and locked, the switch lock awaited) leaves nothing that blocks or
    breaks the next open of that port."""
    with nmcompat.open("vale0:keep") as keep:
        switch = rundir / "vale.vale0"
        with open(switch, "rb+") as f:
            ofd_lock(f.fileno())
            child = procs.python(OPEN_CLOSE, "vale0:k")
            wait_for(lambda: waiters_on(switch) == 1, 20, "the open does not wait for the switch lock",
                     child.describe)
            child.kill()
        assert sorted(e.name for e in vale.ports()) == ["vale0:keep"]
        with nmcompat.open("vale0:k") as k:
            assert sorted(e.name for e in vale.ports()) == ["vale0:k", "vale0:keep"]
            frame = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x00" + b"after-kill".ljust(46, b".")
            keep.inject(frame)
            keep.txsync()
            k.rxsync()
            assert bytes(k.nextpkt()[1]) == frame
    assert rundir_entries(rundir) == ["lock"]


def control_file(port) -> Path:
    """The control file (ctl.<id>) of a port's region, which holds the region lock."""
    mem = Path(port.info.region)
    return mem.with_name("ctl." + mem.name.split(".", 1)[1])


def region_files(port) -> set:
    return {Path(port.info.region).name, control_file(port).name}


def region_opens(names: set) -> set:
    return {n for n in names if n.startswith(("mem.", "ctl.")) and not n.endswith(".sock")}


class Inotify:
    """Names of the files opened in a directory (inotify IN_OPEN)."""

    def __init__(self, path: Path) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        assert self.libc.inotify_add_watch(self.fd, str(path).encode(), IN_OPEN) >= 0

    def opened(self) -> set:
        names, data = set(), b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            data += chunk
        while data:
            _, _, _, size = struct.unpack_from("iIII", data)
            names.add(data[16:16 + size].rstrip(b"\0").decode())
            data = data[16 + size:]
        return names

    def close(self) -> None:
        os.close(self.fd)


def test_a_vale_open_does_not_open_the_regions_of_the_other_ports(rundir):
    held = [nmcompat.open(f"vale0:bg{i}") for i in range(24)]
    watch = Inotify(rundir)
    try:
        watch.opened()
        with nmcompat.open("vale0:new") as p:
            opened = region_opens(watch.opened())
            # its own two files; of other regions, no memory file (nothing mapped), and
            # at most the control files the open's collection of dead regions probes
            # with one fcntl each (NMC_GC_OPEN_BUDGET)
            others = opened - region_files(p)
            assert region_files(p) <= opened and all(n.startswith("ctl.") for n in others)
            assert len(others) <= 4, others
        # and the first frame it sends to one of them maps that one only
        watch.opened()
        with nmcompat.open("vale0:new") as p:
            bg3, other = b"\x02\x00\x00\x00\x00\x03", b"\x02\x00\x00\x00\x00\x09"
            held[3].inject(b"\xff" * 6 + bg3 + b"\x08\x00" + b"learn".ljust(46, b"."))
            held[3].txsync()
            watch.opened()
            p.inject(bg3 + other + b"\x08\x00" + b"to-bg3".ljust(46, b"."))
            p.txsync()
            assert region_opens(watch.opened()) == region_files(held[3])
    finally:
        watch.close()
        for port in held:
            port.close()
    assert rundir_entries(rundir) == ["lock"]


CHURN = """
    import sys, nmcompat
    from nmcompat import vale
    me, rounds = sys.argv[1], int(sys.argv[2])
    for i in range(rounds):
        names = [f"vale0:p{me}_{i % 3}", "vale0:shared", f"netmap:par{i % 3}{{{me}", "netmap:sh{0"]
        ports = [nmcompat.open(n) for n in names]
        listed = {e.name for e in vale.ports()}
        assert {names[0], names[1]} <= listed, (names, listed)
        for p in ports:
            p.close()
    print("done", flush=True)
"""


def test_concurrent_opens_and_closes_from_several_processes(rundir, procs):
    """Four processes open and close ports of one switch and of several
    pipe regions, their own names and shared ones: no deadlock, no port
    missing from the switch while it is open, nothing left at the end."""
    kids = [procs.python(CHURN, str(k), "40") for k in range(4)]
    for kid in kids:
        kid.finish(timeout=120)
    assert rundir_entries(rundir) == ["lock"]
