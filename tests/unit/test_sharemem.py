"""@share and @extmem through nmcompat.open: a pipe placed in a VALE
port's region (a buffer index valid in both), a region built in a user's
file on tmpfs (its bytes are the file's), and netmap's errnos."""
from __future__ import annotations

import errno
import json
import mmap
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import nmcompat
from nmcompat import NS_BUF_CHANGED
from nmcompat.errors import PortSpecError

RING_OBJ = 69632
IF_POOL = 8192 * 64
PAGE = 4096


def u8(view) -> np.ndarray:
    return np.frombuffer(view, dtype=np.uint8)


def extmem_file(rundir, ring_num: int, buf_num: int, buf_size: int = 2048, name="ext"):
    """A file sized for an @extmem region of ring_num ring objects and buf_num buffers."""
    path = rundir.parent / f"{rundir.name}.{name}"
    size = IF_POOL + ring_num * RING_OBJ + PAGE + buf_num * buf_size
    with open(path, "wb") as f:
        f.truncate(size)
    return path


@pytest.fixture
def extfile(rundir):
    made = []

    def make(*args, **kw):
        made.append(extmem_file(rundir, *args, **kw))
        return made[-1]
    yield make
    for path in made:
        path.unlink(missing_ok=True)


def swap_into(src_ring, src_slot: int, dst_ring, dst_slot: int) -> int:
    """Swap the buffers of two slots (NS_BUF_CHANGED on both); the index moved."""
    a, b = int(src_ring.slots[src_slot]["buf_idx"]), int(dst_ring.slots[dst_slot]["buf_idx"])
    src_ring.slots[src_slot]["buf_idx"], dst_ring.slots[dst_slot]["buf_idx"] = b, a
    src_ring.slots[src_slot]["flags"] |= NS_BUF_CHANGED
    dst_ring.slots[dst_slot]["flags"] |= NS_BUF_CHANGED
    return a


# ---------------------------------------------------------------------------
# @share


def test_share_puts_a_pipe_in_a_vale_ports_region(rundir):
    with nmcompat.open("vale5:a") as v, \
            nmcompat.open("netmap:sh{1@share=vale5:a", slots=8) as m, \
            nmcompat.open("netmap:sh}1") as s:
        assert m.info.mem_id == s.info.mem_id == v.info.mem_id
        # a buffer of the VALE port's TX ring, filled there, sent through the pipe
        vtx, tx, rx = v.tx_rings[0], m.tx_rings[0], s.rx_rings[0]
        vidx = int(vtx.slots[0]["buf_idx"])
        u8(v.buf(vidx))[:9] = np.frombuffer(b"zero-copy", dtype=np.uint8)
        moved = swap_into(vtx, 0, tx, tx.cur)
        assert moved == vidx
        tx.slots[tx.cur]["len"] = 9
        tx.head = tx.cur = tx.next(tx.cur)
        m.txsync()
        s.rxsync()
        assert int(rx.slots[0]["buf_idx"]) == vidx
        assert bytes(u8(s.buf(vidx))[:9]) == b"zero-copy"


_OTHER = """
import sys, nmcompat
with nmcompat.open("vale5:x") as v:
    print("vale", v.info.mem_id, flush=True)
    sys.stdin.readline()                        # the pipe exists, in v's region
    with nmcompat.open("netmap:xp}1") as s:
        assert s.poll(timeout_ms=10000)
        rx = s.rx_rings[0]
        idx, n = int(rx.slots[rx.head]["buf_idx"]), int(rx.slots[rx.head]["len"])
        # read through the VALE port's own view of the region
        print(s.info.mem_id, idx, bytes(v.buf(idx)[:n]).decode(), flush=True)
"""


def test_share_across_processes(rundir):
    """The VALE port's process reads, through that port's memory, the buffer
    another process sent into a pipe it placed there with @share."""
    other = subprocess.Popen([sys.executable, "-c", _OTHER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        vale_id = int(other.stdout.readline().split()[1])
        with nmcompat.open("netmap:xp{1@share=vale5:x") as m:
            assert m.info.mem_id == vale_id
            other.stdin.write("go\n")
            other.stdin.flush()
            idx = int(m.tx_rings[0].slots[m.tx_rings[0].cur]["buf_idx"])
            assert m.inject(b"from another process")
            m.txsync()
            out, _ = other.communicate(timeout=60)
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    assert other.returncode == 0 and out.split(" ", 2) == [str(vale_id), str(idx), "from another process\n"]


def test_without_share_the_pipe_has_a_region_of_its_own(rundir):
    with nmcompat.open("vale5:a") as v, nmcompat.open("netmap:own{1") as m:
        assert m.info.mem_id != v.info.mem_id


def test_share_puts_a_vale_port_in_another_ports_region(rundir):
    with nmcompat.open("vale5:a") as a, nmcompat.open("vale5:b@share=vale5:a") as b:
        assert a.info.mem_id == b.info.mem_id
        frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x0b" + b"\x08\x00" + b"x" * 50
        assert b.inject(frame)
        b.txsync()
        assert a.poll(timeout_ms=5000)
        data, lengths = a.recv()
        assert list(lengths) == [len(frame)] and bytes(data[0][:len(frame)]) == frame


def test_share_of_a_port_nobody_holds_is_enxio(rundir):
    with pytest.raises(OSError) as ei:
        nmcompat.open("netmap:y{1@share=vale5:nobody")
    assert ei.value.errno == errno.ENXIO and "open vale5:nobody first" in str(ei.value)


def test_share_of_a_pipe_whose_parent_is_elsewhere_is_einval(rundir):
    with nmcompat.open("vale5:a"), nmcompat.open("netmap:z{1"), \
            pytest.raises(OSError) as ei:
        nmcompat.open("netmap:z{2@share=vale5:a")
    assert ei.value.errno == errno.EINVAL and "@share" in str(ei.value)


# ---------------------------------------------------------------------------
# @extmem


def test_extmem_region_is_the_users_file(rundir, extfile):
    path = extfile(ring_num=8, buf_num=512)
    with nmcompat.open(f"netmap:e{{1@extmem:file={path},ring-num=8", slots=8) as m, \
            nmcompat.open("netmap:e}1") as s:
        assert m.info.mem_id == s.info.mem_id
        assert m.info.buf_num == 512 and m.info.memsize <= path.stat().st_size
        assert m.inject(b"in the user's file")
        m.txsync()
        s.rxsync()
        idx = int(s.rx_rings[0].slots[0]["buf_idx"])
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
            ofs = IF_POOL + 8 * RING_OBJ + PAGE + idx * 2048
            assert mm[ofs:ofs + 18] == b"in the user's file"
    assert path.exists()                    # the user's file outlives the region


_PEER = '''
import sys, nmcompat
with nmcompat.open("netmap:e}1") as s:
    assert s.poll(timeout_ms=10000)
    data, lengths = s.recv()
    sys.stdout.write("%d %s" % (s.info.mem_id, bytes(data[0][:lengths[0]]).decode()))
'''


def test_extmem_region_is_reached_by_another_process(rundir, extfile):
    path = extfile(ring_num=8, buf_num=512)
    with nmcompat.open(f"netmap:e{{1@extmem:file={path},ring-num=8", slots=8) as m:
        peer = subprocess.Popen([sys.executable, "-c", _PEER], stdout=subprocess.PIPE, text=True)
        try:
            assert m.inject(b"across processes")
            m.txsync()
            out, _ = peer.communicate(timeout=60)
        finally:
            if peer.poll() is None:
                peer.kill()
                peer.wait()
        assert peer.returncode == 0 and out == f"{m.info.mem_id} across processes"


def test_extmem_file_named_through_a_symlink(rundir, extfile):
    path = extfile(ring_num=8, buf_num=512)
    link = path.with_name(path.name + ".link")
    link.symlink_to(path)
    try:
        with nmcompat.open(f"netmap:e{{1@extmem:file={link},ring-num=8", slots=8) as m:
            assert m.info.buf_num == 512
            assert path.stat().st_nlink == 3        # mem.<id> and its name in wake/
    finally:
        link.unlink()


def test_two_ports_in_one_file_share_its_region(rundir, extfile):
    """As netmap's netmap_mem_ext_search: the same memory is the same region."""
    path = extfile(ring_num=8, buf_num=512)
    with nmcompat.open(f"netmap:e{{1@extmem:file={path},ring-num=8", slots=8) as a, \
            nmcompat.open(f"netmap:f{{1@extmem:file={path},ring-num=8", slots=8) as b:
        assert a.info.mem_id == b.info.mem_id
        assert path.stat().st_nlink == 3            # one region: mem.<id> and its name in wake/


_HOLDER = """
import sys, time, nmcompat
port = nmcompat.open(f"netmap:k{{1@extmem:file={sys.argv[1]},ring-num=8", slots=8)
print(port.info.mem_id, flush=True)
time.sleep(600)
"""


def test_extmem_region_of_a_killed_holder_is_reaped_and_the_file_stays(rundir, extfile):
    path = extfile(ring_num=8, buf_num=512)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        first = int(holder.stdout.readline())
    finally:
        holder.kill()
        holder.wait()
    assert path.stat().st_nlink == 3                # the dead holder's region is still linked
    with nmcompat.open(f"netmap:k{{1@extmem:file={path},ring-num=8", slots=8) as port:
        assert port.info.mem_id != first            # reaped, and built again in the file
    assert path.stat().st_nlink == 1
    assert not [n for n in os.listdir(rundir) if n.startswith(("mem.", "ctl.", "parent."))]


def test_a_region_of_ports_from_both_options_checks_clean(rundir, extfile):
    """A pipe in a file, a VALE port placed beside it by @share: every
    buffer of the region in exactly one place (nmcompat check)."""
    from nmcompat.tools.check import check_region
    path = extfile(ring_num=8, buf_num=512)
    with nmcompat.open(f"netmap:c{{1@extmem:file={path},ring-num=8", slots=8) as m, \
            nmcompat.open("netmap:c}1"), nmcompat.open("vale9:q@share=netmap:c{1", slots=8) as v:
        assert v.info.mem_id == m.info.mem_id
        assert m.inject(b"x" * 60)
        m.txsync()
        report = check_region(str(rundir), m.info.mem_id)
    assert report["violations"] == 0 and report["holders"] == 3, report
    assert report["free_bufs"] + report["in_rings"] + 2 == report["buf_num"] == 512, report


def test_extmem_buf_num_and_size_are_taken(rundir, extfile):
    path = extfile(ring_num=4, buf_num=400, buf_size=4096)
    with nmcompat.open(f"netmap:e{{1@extmem:file={path},ring-num=4,buf-num=300,buf-size=4096",
                       slots=8) as m:
        assert (m.info.buf_num, m.info.buf_size) == (300, 4096)


def test_extmem_vale_port(rundir, extfile):
    path = extfile(ring_num=8, buf_num=4096)
    with nmcompat.open(f"vale6:x@extmem:file={path},ring-num=8") as x:
        assert x.info.buf_num == 4096


def test_extmem_with_too_few_buffers_for_the_rings_is_enomem(rundir, extfile):
    path = extfile(ring_num=8, buf_num=1024)        # a VALE port's rings need 2048
    with pytest.raises(OSError) as ei:
        nmcompat.open(f"vale6:x@extmem:file={path},ring-num=8")
    assert ei.value.errno == errno.ENOMEM


@pytest.mark.parametrize("opts, err", [
    ("ring-num=8", errno.EINVAL),                    # a file with room for 32 buffers (64 at least)
    ("ring-num=8,buf-num=600", errno.EINVAL),        # more buffers than the file holds
    ("ring-num=2000", errno.EINVAL),                 # more ring objects than a region has
    ("ring-num=8,ring-size=100000", errno.EINVAL),   # a ring larger than a ring object
    ("ring-num=8,if-num=100,if-size=8192", errno.EINVAL),    # beyond the IF pool
    ("ring-num=8,buf-size=100", errno.EINVAL),       # not a multiple of 64
])
def test_extmem_pools_that_do_not_fit_are_einval(rundir, extfile, opts, err):
    small = opts == "ring-num=8"
    path = extfile(ring_num=8, buf_num=32 if small else 512)
    with pytest.raises(OSError) as ei:
        nmcompat.open(f"netmap:e{{1@extmem:file={path},{opts}")
    assert ei.value.errno == err and "@extmem" in str(ei.value)
    assert not [n for n in os.listdir(rundir) if n.startswith(("mem.", "ctl."))]
    assert path.stat().st_nlink == 1


def test_extmem_default_ring_objects_need_a_large_file(rundir, extfile):
    path = extfile(ring_num=8, buf_num=512)          # too small for 1024 ring objects
    with pytest.raises(OSError) as ei:
        nmcompat.open(f"netmap:e{{1@extmem:file={path}")
    assert ei.value.errno == errno.EINVAL


def test_extmem_missing_file_is_enoent(rundir):
    with pytest.raises(FileNotFoundError) as ei:
        nmcompat.open(f"netmap:e{{1@extmem:file={rundir}.nothing,ring-num=8")
    assert "does not exist" in str(ei.value)


def test_extmem_on_another_filesystem_is_exdev(rundir):
    with tempfile.NamedTemporaryFile(dir="/var/tmp") as f:
        if os.stat(f.name).st_dev == os.stat(rundir).st_dev:
            pytest.fail("/var/tmp is on the runtime directory's filesystem here")
        f.truncate(IF_POOL + 8 * RING_OBJ + PAGE + 512 * 2048)
        with pytest.raises(OSError) as ei:
            nmcompat.open(f"netmap:e{{1@extmem:file={f.name},ring-num=8")
    assert ei.value.errno == errno.EXDEV and "same tmpfs" in str(ei.value)


def test_duplicate_extmem_is_einval(rundir, extfile):
    path = extfile(ring_num=8, buf_num=512)
    with pytest.raises(PortSpecError) as ei:
        nmcompat.open(f"netmap:e{{1@extmem:file={path},ring-num=8@extmem:file={path}")
    assert ei.value.errno == errno.EINVAL


def test_extmem_for_a_pipe_whose_parent_has_a_region_is_einval(rundir, extfile):
    path = extfile(ring_num=8, buf_num=512)
    with nmcompat.open("netmap:e{1"), pytest.raises(OSError) as ei:
        nmcompat.open(f"netmap:e{{2@extmem:file={path},ring-num=8")
    assert ei.value.errno == errno.EINVAL


def test_extmem_region_is_never_kept_as_a_spare(rundir, extfile):
    path = extfile(ring_num=8, buf_num=4096)
    with nmcompat.open(f"vale6:x@extmem:file={path},ring-num=8"):
        pass
    assert path.stat().st_nlink == 1         # only the user's own name is left
    assert not [n for n in os.listdir(rundir) if n.startswith(("mem.", "spare."))]


# ---------------------------------------------------------------------------
# the native backend (tested under nmcompat exec, whose /dev/netmap speaks its ABI)

_NATIVE = """
import json, mmap, sys, nmcompat
path = sys.argv[1]
with nmcompat.open("vale8:a", backend="native") as v, \\
        nmcompat.open("netmap:nv{1@share=vale8:a", backend="native") as m:
    out = [v.info.mem_id, m.info.mem_id]
with nmcompat.open(f"netmap:ne{{1@extmem:file={path},ring-num=8", backend="native", slots=8) as a, \\
        nmcompat.open("netmap:ne}1", backend="native") as b:
    assert a.inject(b"native extmem")
    a.txsync()
    b.rxsync()
    idx = int(b.rx_rings[0].slots[0]["buf_idx"])
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
        ofs = 8192 * 64 + 8 * 69632 + 4096 + idx * 2048
        out.append([a.info.mem_id, b.info.mem_id, mm[ofs:ofs + 13].decode()])
try:
    nmcompat.open(f"netmap:nf{{1@extmem:file={path}", backend="native")
except OSError as exc:
    out.append([exc.errno, str(exc)])
print(json.dumps(out))
"""


def test_native_backend_passes_share_and_extmem(rundir, extfile):
    path = extfile(ring_num=8, buf_num=512)
    argv = [sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", str(rundir), "--",
            sys.executable, "-c", _NATIVE, str(path)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    vale_id, pipe_id, (ext_a, ext_b, text), (err, why) = json.loads(out.stdout.splitlines()[-1])
    assert vale_id == pipe_id and ext_a == ext_b and text == "native extmem"
    assert err == errno.EINVAL and "they need at least" in why        # 1024 ring objects
