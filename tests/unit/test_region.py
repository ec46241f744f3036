"""Shared-memory regions: the runtime directory, file modes, the buffer
allocator (reserved buffers, extra buffers, release on close) and reclaim of
what a SIGKILLed process left behind."""
from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest

import nmcompat
from testlib import rundir_entries

SMALL = dict(buf_num=1024, slots=64)        # 128 ring buffers, 894 free


def fs_type(path: str) -> str:
    """File system type of the mount that holds path (from mountinfo)."""
    path = os.path.realpath(path)
    best, kind = "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            mnt = left.split()[4].replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, right.split()[0]
    return kind


def ring_buffers(*ports) -> set:
    """Every buf_idx held by a slot of any bound ring of the given ports."""
    out = set()
    for p in ports:
        for ring in p.tx_rings + p.rx_rings:
            out.update(int(i) for i in ring.slots["buf_idx"])
    return out


def link_of(port, idx) -> np.ndarray:
    """The first uint32 of buffer idx (the extra-buffer list link), writable."""
    return np.frombuffer(port.buf(idx), dtype="<u4", count=1)


def extra_list(port, limit=1 << 20) -> list:
    """Walk the extra-buffer list from bufs_head through the first uint32
    of each buffer (netmap's ni_bufs_head list)."""
    out, idx = [], port.bufs_head
    while idx != 0:
        assert len(out) < limit, "the extra-buffer list does not end"
        out.append(idx)
        idx = int(link_of(port, idx)[0])
    return out


def free_buffers(info, *, rings_x_slots) -> int:
    return info.buf_num - 2 - rings_x_slots


# ---------------------------------------------------------------------------
# the runtime directory


@pytest.mark.parametrize("base", ["/tmp", "/var/tmp"])
def test_rundir_on_disk_is_refused_with_exdev(base):
    if not os.path.isdir(base):
        pytest.skip(f"{base} does not exist")
    if fs_type(base) in ("tmpfs", "hugetlbfs"):
        pytest.skip(f"{base} is {fs_type(base)} here")
    d = tempfile.mkdtemp(prefix="nmc-disk-", dir=base)
    try:
        os.chmod(d, 0o700)
        with pytest.raises(OSError) as ei:
            nmcompat.open("netmap:x{1", rundir=d)
        assert ei.value.errno == errno.EXDEV
        assert "not on tmpfs" in str(ei.value)
        assert "NMCOMPAT_RUNDIR" in str(ei.value)       # says how to fix it
        assert os.listdir(d) == []                      # nothing was created there
    finally:
        os.rmdir(d)


def test_rundir_on_disk_from_environment(monkeypatch):
    if fs_type("/tmp") in ("tmpfs", "hugetlbfs"):
        pytest.skip("/tmp is tmpfs here")
    d = tempfile.mkdtemp(prefix="nmc-disk-", dir="/tmp")
    try:
        monkeypatch.setenv("NMCOMPAT_RUNDIR", d)
        with pytest.raises(OSError) as ei:
            nmcompat.open("netmap:x}1")
        assert ei.value.errno == errno.EXDEV
    finally:
        os.rmdir(d)


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o770, 0o777, 0o701])
def test_rundir_accessible_to_others_is_refused(rundir, mode):
    d = rundir / "shared"
    d.mkdir()
    os.chmod(d, mode)
    with pytest.raises(OSError) as ei:
        nmcompat.open("netmap:x{1", rundir=str(d))
    assert ei.value.errno == errno.EACCES
    assert "NMCOMPAT_RUNDIR" in str(ei.value)
    assert os.listdir(d) == []


def test_rundir_owned_by_someone_else_is_refused(rundir):
    if os.geteuid() == 0:
        d = rundir / "theirs"
        d.mkdir(mode=0o700)
        os.chown(d, 65534, 65534)
        target = str(d)
    else:
        target = "/dev/shm"             # root's
    with pytest.raises(OSError) as ei:
        nmcompat.open("netmap:x{1", rundir=target)
    assert ei.value.errno == errno.EACCES


def test_world_writable_shm_itself_is_refused():
    with pytest.raises(OSError) as ei:
        nmcompat.open("netmap:x{1", rundir="/dev/shm")
    assert ei.value.errno == errno.EACCES


def test_rundir_symlink_is_refused(rundir):
    real = rundir / "real"
    real.mkdir(mode=0o700)
    link = rundir / "link"
    link.symlink_to(real)
    with pytest.raises(OSError):
        nmcompat.open("netmap:x{1", rundir=str(link))
    assert os.listdir(real) == []


def test_rundir_that_is_a_file_is_refused(rundir):
    f = rundir / "file"
    f.write_text("")
    with pytest.raises(OSError) as ei:
        nmcompat.open("netmap:x{1", rundir=str(f))
    assert ei.value.errno == errno.ENOTDIR


def test_rundir_is_created_private(rundir):
    d = rundir / "new"
    old = os.umask(0)               # the modes must not depend on the umask
    try:
        with nmcompat.open("netmap:x{1", rundir=str(d)) as p:
            assert p.info.region.startswith(str(d) + "/")
            assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    finally:
        os.umask(old)


def test_rundir_argument_beats_environment(rundir):
    d = rundir / "arg"
    with nmcompat.open("netmap:x{1", rundir=str(d)) as p:
        assert Path(p.info.region).parent == d
    assert rundir_entries(rundir) == ["arg"]


def test_default_rundir(monkeypatch):
    monkeypatch.delenv("NMCOMPAT_RUNDIR", raising=False)
    name = f"netmap:dflt{os.getpid()}{{1"
    with nmcompat.open(name, **SMALL) as p:
        assert Path(p.info.region).parent == Path(f"/dev/shm/nmcompat-{os.geteuid()}")


@pytest.mark.parametrize("umask", [0, 0o077])
def test_files_are_reached_through_the_owners_directory_only(rundir, umask):
    """Whatever the umask: the rundir is the owner's alone (0700), so what
    is in it is reached by path by the owner only; the sockets' directory
    wake/ is searchable (0711) and its entries usable by whoever reaches
    them, i.e. through the rundir or a descriptor of wake/ taken by an
    opener that dropped its privileges since: the sockets (0622) and the
    second names of the region files (0666, the files themselves)."""
    old = os.umask(umask)
    try:
        with nmcompat.open("netmap:x{1", **SMALL) as a, nmcompat.open("netmap:x}1") as b:
            assert stat.S_IMODE(os.stat(rundir).st_mode) == 0o700
            seen = set()
            for name in os.listdir(rundir):
                st = os.lstat(rundir / name)
                assert st.st_uid == os.geteuid(), name
                if stat.S_ISLNK(st.st_mode):
                    assert name.startswith("parent.")
                    assert os.readlink(rundir / name) == Path(a.info.region).name
                    seen.add("link")
                    continue
                if name == "wake":      # reached only through the 0700 rundir, or a descriptor of it
                    assert stat.S_IMODE(st.st_mode) == 0o711
                    for entry in os.listdir(rundir / name):
                        st = os.lstat(rundir / name / entry)
                        assert st.st_uid == os.geteuid(), entry
                        if entry.endswith(".sock"):
                            assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o622, entry
                            seen.add("sock")
                            continue
                        mem_id, kind = entry.split(".")[1:]
                        first = rundir / (f"mem.{mem_id}" if kind == "mem" else f"ctl.{mem_id}")
                        assert os.path.samefile(rundir / name / entry, first), entry
                        seen.add("second name")
                    continue
                if name.startswith(("mem.", "ctl.")):
                    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o666, name
                    seen.add("region")
                    continue
                assert stat.S_IMODE(st.st_mode) == 0o600 and stat.S_ISREG(st.st_mode), name
                seen.add(name)
            assert seen == {"link", "lock", "region", "sock", "second name"}
            assert a.info.region == b.info.region
    finally:
        os.umask(old)


def test_region_and_links_disappear_with_the_last_port(rundir):
    with nmcompat.open("netmap:x{1", **SMALL) as a:
        region = a.info.region
        with nmcompat.open("netmap:x}1") as b:
            assert b.info.region == region
            socks = [n for n in rundir_entries(rundir) if n.endswith(".sock")]
            assert len(socks) == 2
        assert os.path.exists(region)           # the master still holds the pipe
        assert len([n for n in rundir_entries(rundir) if n.endswith(".sock")]) == 1
    assert rundir_entries(rundir) == ["lock"]


def test_region_file_size_covers_the_memory(rundir):
    with nmcompat.open("netmap:x{1") as p:
        size = os.stat(p.info.region).st_size
        assert size >= p.info.memsize > 0
        assert p.info.memsize % 4096 == 0
        assert p.info.buf_num >= 65536 and p.info.buf_size == 2048
        assert p.info.memsize >= p.info.buf_num * p.info.buf_size


def test_buffer_geometry_options(rundir):
    with nmcompat.open("netmap:x{1", buf_num=4096, buf_size=4096, slots=32) as p:
        assert (p.info.buf_num, p.info.buf_size) == (4096, 4096)
        assert p.tx_rings[0].nr_buf_size == 4096
        assert len(p.buf(4095)) == 4096
    with pytest.raises(OSError) as ei:
        nmcompat.open("netmap:y{1", buf_size=1000)
    assert ei.value.errno == errno.EINVAL
    assert rundir_entries(rundir) == ["lock"]


def test_buffer_geometry_from_environment(rundir, monkeypatch):
    monkeypatch.setenv("NMCOMPAT_BUF_NUM", "20000")
    monkeypatch.setenv("NMCOMPAT_BUF_SIZE", "1024")
    with nmcompat.open("netmap:x{1", slots=64) as p:
        assert (p.info.buf_num, p.info.buf_size) == (20000, 1024)


def test_region_grows_to_fit_its_first_request(rundir):
    with nmcompat.open("netmap:x{1", extra_bufs=70000) as p:
        assert p.info.extra_bufs == 70000
        assert p.info.buf_num >= 70000 + 2


# ---------------------------------------------------------------------------
# buffers


def test_buffers_0_and_1_are_never_handed_out(rundir):
    with nmcompat.open("netmap:x{1@conf:rings=3", **SMALL) as a, nmcompat.open("netmap:x}1") as b:
        held = ring_buffers(a, b)
        assert min(held) >= 2 and max(held) < a.info.buf_num
        free = free_buffers(a.info, rings_x_slots=2 * 3 * 64)
        with nmcompat.open("netmap:x}1", extra_bufs=free) as c:
            extras = extra_list(c)
            assert len(extras) == free
            assert min(extras) >= 2
            # every buffer but 0 and 1 is now in use exactly once
            assert set(extras) | held == set(range(2, a.info.buf_num))


@pytest.mark.parametrize("n", [1, 2, 7, 500])
def test_extra_buffers_are_granted_exactly(rundir, n):
    with nmcompat.open("netmap:x{1@conf:rings=2", **SMALL) as a, \
            nmcompat.open("netmap:x}1", extra_bufs=n) as b:
        assert b.info.extra_bufs == n
        assert a.bufs_head == 0 and a.info.extra_bufs == 0
        extras = extra_list(b)
        assert len(extras) == n
        assert len(set(extras)) == n
        assert all(2 <= i < b.info.buf_num for i in extras)
        assert not set(extras) & ring_buffers(a, b)
        # the slave's rings really are the master's crossed rings
        assert ring_buffers(a) == ring_buffers(b)


def test_extra_buffers_of_two_holders_are_disjoint(rundir):
    with nmcompat.open("netmap:x{1", extra_bufs=100, **SMALL) as a, \
            nmcompat.open("netmap:x}1", extra_bufs=100) as b, \
            nmcompat.open("netmap:x{2", extra_bufs=100, slots=64) as c:
        la, lb, lc = extra_list(a), extra_list(b), extra_list(c)
        assert len(set(la) | set(lb) | set(lc)) == 300
        assert not (set(la) | set(lb) | set(lc)) & ring_buffers(a, b, c)
        assert a.info.mem_id == c.info.mem_id


def test_extra_buffers_exact_or_enomem_and_freed_on_close(rundir):
    with nmcompat.open("netmap:x{1", **SMALL) as keeper:
        free = free_buffers(keeper.info, rings_x_slots=2 * 64)
        for _ in range(3):          # nearly all, then all, repeatedly: nothing leaks
            with nmcompat.open("netmap:x}1", extra_bufs=free - 1) as p:
                assert len(extra_list(p)) == free - 1
            with nmcompat.open("netmap:x}1", extra_bufs=free) as p:
                assert len(extra_list(p)) == free
                with pytest.raises(OSError) as ei:
                    nmcompat.open("netmap:x{1", extra_bufs=1)
                assert ei.value.errno == errno.ENOMEM
        with pytest.raises(OSError) as ei:
            nmcompat.open("netmap:x}1", extra_bufs=free + 1)
        assert ei.value.errno == errno.ENOMEM
        with nmcompat.open("netmap:x}1", extra_bufs=free) as p:      # the failure leaked nothing
            assert p.info.extra_bufs == free


def test_a_new_pipe_that_does_not_fit_leaks_nothing(rundir):
    with nmcompat.open("netmap:x{1", **SMALL) as keeper:
        free = free_buffers(keeper.info, rings_x_slots=2 * 64)
        with pytest.raises(OSError) as ei:
            nmcompat.open("netmap:x{2", slots=512)          # needs 1024 buffers
        assert ei.value.errno == errno.ENOMEM
        with nmcompat.open("netmap:x}1", extra_bufs=free) as p:
            assert p.info.extra_bufs == free


def test_buffers_swapped_into_rings_come_back(rundir):
    """Buffers moved between the extra list and ring slots are all freed,
    wherever they ended up."""
    with nmcompat.open("netmap:x{1", **SMALL) as keeper:
        free = free_buffers(keeper.info, rings_x_slots=2 * 64)
        with nmcompat.open("netmap:x{2", slots=8) as m, nmcompat.open("netmap:x}2", extra_bufs=4) as s:
            extras = extra_list(s)
            tx, rx = m.tx_rings[0], s.rx_rings[0]
            for k in range(3):
                m.inject(bytes([k]) * 10)
            m.txsync()
            s.rxsync()
            old = []
            for j in range(3):              # swap the received buffers for extra ones
                old.append(int(rx.slots[j]["buf_idx"]))
                rx.slots[j]["buf_idx"] = extras[j]
                rx.slots[j]["flags"] |= nmcompat.NS_BUF_CHANGED
            chain = old + extras[3:]        # keep the list complete: the old buffers go on it
            s.bufs_head = chain[0]
            for a, b in zip(chain, chain[1:] + [0]):
                link_of(s, a)[0] = b
            rx.head = rx.cur = 3
            s.rxsync()
            assert [int(i) for i in tx.slots["buf_idx"][:3]] == extras[:3]
        # pipe x{2 is gone: its ring buffers, the swapped ones and the list are free again
        with nmcompat.open("netmap:x}1", extra_bufs=free) as p:
            assert p.info.extra_bufs == free


@pytest.mark.parametrize("corruption", ["loop", "out_of_range", "reserved", "zero_head"])
def test_corrupted_extra_list_cannot_hang_or_crash_close(rundir, corruption):
    with nmcompat.open("netmap:x{1", **SMALL) as keeper:
        free = free_buffers(keeper.info, rings_x_slots=2 * 64)
        p = nmcompat.open("netmap:x}1", extra_bufs=10)
        extras = extra_list(p)
        if corruption == "loop":
            link_of(p, extras[5])[0] = extras[0]
        elif corruption == "out_of_range":
            link_of(p, extras[2])[0] = 0xFFFFFFF0
        elif corruption == "reserved":
            p.bufs_head = 1
        else:
            p.bufs_head = 0
        p.close()
        # whatever the list said, the region is still consistent
        with nmcompat.open("netmap:x}1", extra_bufs=min(free - 10, 100)) as q:
            got = extra_list(q)
            assert len(set(got)) == len(got) and not set(got) & ring_buffers(keeper)
    assert rundir_entries(rundir) == ["lock"]


def test_allocator_is_shared_across_processes(rundir, procs):
    with nmcompat.open("netmap:x{1", **SMALL) as keeper:
        free = free_buffers(keeper.info, rings_x_slots=2 * 64)
        child = procs.python("""
            import json, sys, numpy, nmcompat
            p = nmcompat.open("netmap:x}1", extra_bufs=int(sys.argv[1]))
            idx, out = p.bufs_head, []
            while idx:
                out.append(idx)
                idx = int(numpy.frombuffer(p.buf(idx), dtype="<u4", count=1)[0])
            print("list", json.dumps(out), flush=True)
            import time; time.sleep(60)
            """, str(free - 10))
        theirs = set(json.loads(child.expect("list ", timeout=20)[5:]))
        assert len(theirs) == free - 10
        with nmcompat.open("netmap:x{1", extra_bufs=10) as p:
            assert not set(extra_list(p)) & theirs
            with pytest.raises(OSError) as ei:
                nmcompat.open("netmap:x{1", extra_bufs=1)
            assert ei.value.errno == errno.ENOMEM
        child.kill()
        # the killed holder's buffers are reclaimed by the next open
        with nmcompat.open("netmap:x}1", extra_bufs=free) as p:
            assert len(extra_list(p)) == free


# ---------------------------------------------------------------------------
# stale state of killed processes

HOLD = """
    import os, sys, time, nmcompat
    p = nmcompat.open(sys.argv[1], extra_bufs=int(sys.argv[2]), buf_num=1024, slots=64)
    if len(sys.argv) > 3:
        for k in range(int(sys.argv[3])):
            p.inject(b"%d" % k)
        p.txsync()
    print("ready", p.info.mem_id, p.info.region, flush=True)
    time.sleep(60)
"""


def test_killed_holder_is_reclaimed_while_the_region_lives(rundir, procs):
    with nmcompat.open("netmap:x}1", **SMALL) as keeper:
        free = free_buffers(keeper.info, rings_x_slots=2 * 64)
        child = procs.python(HOLD, "netmap:x{1", str(free))
        child.expect("ready", timeout=20)
        socks_before = {n for n in rundir_entries(rundir) if n.endswith(".sock")}
        assert len(socks_before) == 2
        child.kill()
        # nobody noticed yet: the dead holder's socket is still there
        assert {n for n in rundir_entries(rundir) if n.endswith(".sock")} == socks_before
        with nmcompat.open("netmap:x{1", extra_bufs=free) as p:      # all its buffers are back
            assert len(extra_list(p)) == free
            socks = {n for n in rundir_entries(rundir) if n.endswith(".sock")}
            assert len(socks) == 2              # the dead one's was removed or reused
        assert len([n for n in rundir_entries(rundir) if n.endswith(".sock")]) == 1
    assert rundir_entries(rundir) == ["lock"]


def test_killed_last_holder_region_is_removed_by_the_next_open(rundir, procs):
    child = procs.python(HOLD, "netmap:y{1", "10", "3")
    _, mem_id, region = child.expect("ready", timeout=20).split()
    ino = os.stat(region).st_ino
    child.kill()
    assert os.path.exists(region)
    stale = set(rundir_entries(rundir))
    assert any(n.endswith(".sock") for n in stale)
    # the dead pipe is gone: a new open creates it afresh (its queued packets with it)
    with nmcompat.open("netmap:y}1", slots=64) as p:
        assert not os.path.exists(region) or os.stat(region).st_ino != ino
        p.rxsync()
        assert p.rx_rings[0].tail == 0
        assert (p.rx_rings[0].head, p.rx_rings[0].num_slots) == (0, 64)
    assert rundir_entries(rundir) == ["lock"]


def test_killed_holder_is_reclaimed_on_close_too(rundir, procs):
    """Stale state is reaped under the region lock on close as well."""
    with nmcompat.open("netmap:z{1", **SMALL):
        child = procs.python(HOLD, "netmap:z}1", "5")
        child.expect("ready", timeout=20)
        child.kill()
    assert rundir_entries(rundir) == ["lock"]


def test_many_killed_processes_leak_nothing(rundir, procs):
    with nmcompat.open("netmap:x}1", **SMALL) as keeper:
        free = free_buffers(keeper.info, rings_x_slots=2 * 64)
        for round_ in range(4):
            kids = [procs.python(HOLD, "netmap:x{1", str(free // 4 - 1)) for _ in range(3)]
            for k in kids:
                k.expect("ready", timeout=20)
            for k in kids:
                k.kill()
            with nmcompat.open("netmap:x{1", extra_bufs=free) as p:
                assert p.info.extra_bufs == free
        assert len([n for n in rundir_entries(rundir) if n.endswith(".sock")]) == 1


def test_corrupted_region_header_is_not_trusted(rundir):
    with nmcompat.open("netmap:x{1", **SMALL) as a:
        with open(a.info.region, "r+b") as f:
            f.write(b"\xff" * 64)           # magic, version, mem id, geometry
        try:
            nmcompat.open("netmap:x}1").close()       # refused, or served elsewhere
        except OSError:
            pass
        a.inject(b"still fine")
        a.txsync()
    assert rundir_entries(rundir) == ["lock"]


def test_views_outlive_close(rundir):
    """A view kept after close() stays valid memory, detached from the region:
    private zero pages (test_port_close.py checks a later port is untouched)."""
    p = nmcompat.open("netmap:x{1", **SMALL)
    slots = p.tx_rings[0].slots
    buf = np.frombuffer(p.buf(int(slots[0]["buf_idx"])), dtype=np.uint8)
    buf[:5] = list(b"hello")
    p.close()
    assert not buf.any() and not slots["len"].any()     # mapped, not dangling: zeros
    buf[:5] = list(b"later")
    assert bytes(buf[:5]) == b"later"
    with pytest.raises(ValueError):
        p.tx_rings[0].head
    del slots, buf


def _references_to(ino: int) -> list:
    """This process's descriptors and mappings of the file with inode ino
    (on /dev/shm), also once it is removed."""
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.stat(f"/proc/self/fd/{fd}").st_ino == ino:
                fds.append(fd)
        except OSError:
            pass
    with open("/proc/self/maps") as maps:
        mapped = [ln for ln in maps if len(ln.split()) > 4 and ln.split()[4] == str(ino)]
    return fds + mapped


def test_a_closed_port_with_views_holds_nothing_of_its_region(rundir):
    """Views kept after close() keep a mapping of private zeros, never the
    region's file: no descriptor, no shared mapping (which would keep a
    removed region's memory allocated on the tmpfs)."""
    p = nmcompat.open("netmap:held{1", **SMALL)
    ino = os.stat(p.info.region).st_ino
    slots = p.tx_rings[0].slots
    assert _references_to(ino)
    p.close()
    assert _references_to(ino) == []
    assert not slots["len"].any()
    del slots
