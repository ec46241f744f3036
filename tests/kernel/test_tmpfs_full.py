"""A full runtime tmpfs is an error from open(), never a signal.

Each test mounts its own small tmpfs (removed at the end, also on failure)
and runs the scenario in a child process, so that a SIGBUS shows as the
child's exit status instead of killing the test run.  The child reports
what it saw as JSON; afterwards nothing may be left in the tmpfs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager

import pytest

from testlib import rundir_entries

SIGBUS = 7


@contextmanager
def small_tmpfs(tmp_path, size: str):
    """A tmpfs of `size` mounted under tmp_path; yields the runtime directory
    in it (created by the engine, mode 0700)."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mnt)],
                   check=True, capture_output=True)
    try:
        yield mnt / "rd"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def used_bytes(path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def run_child(rundir, body: str) -> dict:
    """Run body (Python, which sets `out`) with NMCOMPAT_RUNDIR=rundir; the
    child must exit 0 (a SIGBUS is -7) and print `out` as JSON."""
    code = "import errno, json, nmcompat\nout = {}\n" + textwrap.dedent(body) + \
           "\nprint('RESULT ' + json.dumps(out))\n"
    env = dict(os.environ, NMCOMPAT_RUNDIR=str(rundir))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != -SIGBUS, "the child died of SIGBUS:\n" + proc.stderr[-2000:]
    assert proc.returncode == 0, f"child exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def assert_nothing_left(rundir):
    """Nothing but the lock file and the spare regions a close keeps for the
    next region of their shape (checked to be spares by rundir_entries)."""
    left = rundir_entries(rundir)
    assert left in ([], ["lock"]), left
    spares = sum(p.lstat().st_blocks * 512 for p in rundir.iterdir()
                 if p.name not in left and p.is_file()) if rundir.exists() else 0
    assert used_bytes(rundir.parent) <= 64 * 1024 + spares, used_bytes(rundir.parent)


@pytest.mark.parametrize("options", [
    'buf_size=4096',                        # the claims of its rings
    'buf_size=4096, buf_num=2100',          # a pool asked for: checked before anything is made
    'buf_size=4096, buf_num=3000, slots=64, extra_bufs=2000',   # extra buffers: checked first
])
def test_spares_give_their_memory_to_an_open_that_needs_it(tmp_path, options):
    """Two closed VALE ports leave two spares (about 8.7 MB of a 16 MB
    tmpfs); a pipe of another shape that needs about 8 MB still opens,
    because the open that finds the tmpfs full removes the spares first."""
    with small_tmpfs(tmp_path, "16m") as rundir:
        out = run_child(rundir, ERROR_RECORD + """
import os
a, b = nmcompat.open("vale0:a"), nmcompat.open("vale0:b")
a.close(); b.close()
rd = os.environ["NMCOMPAT_RUNDIR"]
out["spares"] = sorted(n for n in os.listdir(rd) if n.startswith("spare."))
try:
    with nmcompat.open("netmap:big{0", OPTIONS) as p:
        out["opened"] = p.info.buf_size
except OSError as exc:
    out["error"] = record(exc)
out["after"] = sorted(n for n in os.listdir(rd) if n.startswith("spare."))
""".replace("OPTIONS", options))
        assert len(out["spares"]) == 2, out
        assert out.get("opened") == 4096, out
        assert out["after"] == [], out
        assert_nothing_left(rundir)


ERROR_RECORD = """
def record(exc):
    return {"errno": exc.errno, "msg": str(exc),
            "nmcompat": isinstance(exc, nmcompat.NmcompatError),
            "oserror": isinstance(exc, OSError)}
"""


def test_ten_pipes_sending_on_an_8m_tmpfs(tmp_path):
    """Ten pipes, each sending 1024 frames of 2048 bytes: the pipes that
    fit move every frame, the others fail to open with ENOSPC."""
    with small_tmpfs(tmp_path, "8m") as rundir:
        out = run_child(rundir, ERROR_RECORD + """
import numpy as np
out["moved"], out["errors"] = [], []
ports = []
frames = np.full((1024, 2048), 0x5a, dtype=np.uint8)
for k in range(10):
    try:
        tx = nmcompat.open(f"netmap:t{{{k}")
        ports.append(tx)
        rx = nmcompat.open(f"netmap:t}}{k}")
        ports.append(rx)
    except OSError as exc:
        out["errors"].append(record(exc))
        continue
    sent = got = 0
    while got < 1024:
        sent += tx.send(frames[sent:sent + 256]) if sent < 1024 else 0
        data, lengths = rx.recv(1024)
        got += len(lengths)
        assert all(lengths == 2048) and (data == 0x5a).all()
    out["moved"].append(got)
for p in ports:
    p.close()
""")
        assert out["moved"] and all(n == 1024 for n in out["moved"]), out
        assert out["errors"], out
        for e in out["errors"]:
            assert e["errno"] == 28 and e["nmcompat"] and e["oserror"], e
            assert "tmpfs" in e["msg"] and "NMCOMPAT_RUNDIR" in e["msg"], e
        assert_nothing_left(rundir)


def test_extra_bufs_beyond_the_tmpfs(tmp_path):
    """extra_bufs=200000 (400 MB) on a 256 MB tmpfs: ENOSPC naming extra_bufs."""
    with small_tmpfs(tmp_path, "256m") as rundir:
        out = run_child(rundir, ERROR_RECORD + """
try:
    nmcompat.open("netmap:eb{1", extra_bufs=200000).close()
except OSError as exc:
    out = record(exc)
""")
        assert out.get("errno") == 28 and out["nmcompat"], out
        assert "extra_bufs=200000" in out["msg"] and "free" in out["msg"], out
        assert_nothing_left(rundir)


@pytest.mark.parametrize("name, size", [("netmap:eb{1", 2048), ("vale0:eb", 2112)])
def test_extra_bufs_message_names_the_port_kinds_buffer_size(tmp_path, name, size):
    """The ENOSPC message reckons with the buffers the open would make: a
    VALE port's are 2112 bytes unless buf_size= or NMCOMPAT_BUF_SIZE says
    otherwise (it said 2048 for every kind)."""
    with small_tmpfs(tmp_path, "64m") as rundir:
        out = run_child(rundir, ERROR_RECORD + f"""
import os
os.environ.pop("NMCOMPAT_BUF_SIZE", None)
try:
    nmcompat.open({name!r}, extra_bufs=100000).close()
except OSError as exc:
    out = record(exc)
""")
        assert out.get("errno") == 28 and out["nmcompat"], out
        need = 100000 * size / 2 ** 20
        assert f"({size}-byte buffers)" in out["msg"] and f"{need:.1f} MiB" in out["msg"], out
        assert_nothing_left(rundir)


@pytest.mark.parametrize("extra, err", [(10 ** 7, 28), (10 ** 9, 12)])
def test_huge_extra_bufs(tmp_path, extra, err):
    """extra_bufs=10**7 fits no small tmpfs (ENOSPC), 10**9 no region at
    all (ENOMEM): refused before any file is made, none left behind."""
    with small_tmpfs(tmp_path, "64m") as rundir:
        out = run_child(rundir, ERROR_RECORD + f"""
try:
    nmcompat.open("netmap:eb{{1", extra_bufs={extra}).close()
except OSError as exc:
    out = record(exc)
""")
        assert out.get("errno") == err and out["nmcompat"], out
        assert f"extra_bufs={extra}" in out["msg"], out
        assert_nothing_left(rundir)


def test_c_extra_bufs_all_ones_is_enomem(tmp_path):
    """The C interface: extra_bufs = 0xffffffff is -ENOMEM, as the header says."""
    with small_tmpfs(tmp_path, "8m") as rundir:
        out = run_child(rundir, """
from nmcompat._nmc import ffi, lib
keep = [ffi.new("char[]", b"eb"), ffi.new("char[]", b"1")]
req = ffi.new("struct nmc_pipe_req *")
req.parent, req.pipe_id, req.mode = keep[0], keep[1], 1
req.extra_bufs = 0xffffffff
port = ffi.new("struct nmc_port **")
out["rc"] = lib.nmc_pipe_open(req, port)
""")
        assert out["rc"] == -12, out
        assert_nothing_left(rundir)


def test_buf_num_beyond_the_tmpfs(tmp_path):
    """buf_num=2**24 (32 GiB of buffers) on an 8 MB tmpfs: ENOSPC naming buf_num."""
    with small_tmpfs(tmp_path, "8m") as rundir:
        out = run_child(rundir, ERROR_RECORD + """
try:
    nmcompat.open("netmap:bn{1", buf_num=2 ** 24).close()
except OSError as exc:
    out = record(exc)
""")
        assert out.get("errno") == 28 and out["nmcompat"], out
        assert f"buf_num={2 ** 24}" in out["msg"], out
        assert_nothing_left(rundir)


def test_vale_ports_on_a_16m_tmpfs(tmp_path):
    """Up to six VALE ports until the tmpfs is full, then each sends 1024
    broadcast frames of 2048 bytes: every buffer of every port that opened
    is written, and each port that did not fit was ENOSPC."""
    with small_tmpfs(tmp_path, "16m") as rundir:
        out = run_child(rundir, ERROR_RECORD + """
import numpy as np
out["errors"] = []
ports = []
for k in range(6):
    try:
        ports.append(nmcompat.open(f"vale0:p{k}"))
    except OSError as exc:
        out["errors"].append(record(exc))
out["opened"] = len(ports)
frames = np.zeros((256, 2048), dtype=np.uint8)
frames[:, :6] = 0xff
got = [0] * len(ports)
for s, sender in enumerate(ports):
    frames[:, 6:12] = [2, 0, 0, 0, 0, s + 1]
    for _ in range(4):
        assert sender.send(frames) == 256
        for i, p in enumerate(ports):
            if i != s:
                got[i] += len(p.recv(1024)[1])
out["got"] = got
for p in ports:
    p.close()
""")
        n = out["opened"]
        assert out["errors"] and all(e["errno"] == 28 for e in out["errors"]), out
        assert n >= 2 and out["got"] == [1024 * (n - 1)] * n, out
        assert_nothing_left(rundir)


def test_open_close_cycles_reuse_claimed_memory(tmp_path):
    """A live region reuses the buffers it claimed: 30 opens and closes of
    a pipe beside another on a 16 MB tmpfs (room for three pipes' buffers)
    all succeed, and the tmpfs holds no more after them than after the first."""
    with small_tmpfs(tmp_path, "16m") as rundir:
        out = run_child(rundir, """
import os
def used():
    st = os.statvfs(os.path.dirname(os.environ["NMCOMPAT_RUNDIR"]))
    return (st.f_blocks - st.f_bfree) * st.f_frsize
bg = nmcompat.open("netmap:c{bg")
nmcompat.open("netmap:c{x").close()
out["first"] = used()
for _ in range(30):
    p = nmcompat.open("netmap:c{x")
    p.close()
out["last"] = used()
bg.close()
""")
        assert out["last"] == out["first"], out
        assert_nothing_left(rundir)


def _umem_beyond_memlock(rundir):
    """In the netns child: without CAP_IPC_LOCK and with an 8 MiB
    RLIMIT_MEMLOCK, an AF_XDP port (a 128 MiB UMEM) is ENOBUFS naming the limit."""
    import ctypes
    import resource
    import nmcompat
    libc = ctypes.CDLL(None, use_errno=True)
    hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)          # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()                      # {effective, permitted, inheritable} x 2
    assert libc.capget(hdr, data) == 0
    data[0] &= ~(1 << 14)                               # CAP_IPC_LOCK out of the effective set
    assert libc.capset(hdr, data) == 0
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (8 << 20, resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]))
    try:
        nmcompat.open("netmap:va", backend="afxdp", xdp_mode="skb").close()
    except OSError as exc:
        return exc.errno, str(exc), isinstance(exc, nmcompat.NmcompatError), rundir_entries(rundir)
    return 0, "opened", False, []


def test_afxdp_umem_beyond_memlock(netns, rundir):
    err, msg, ours, left = netns.run(_umem_beyond_memlock, rundir)
    assert err == 105 and ours, msg                     # ENOBUFS
    assert "RLIMIT_MEMLOCK" in msg and "CAP_IPC_LOCK" in msg, msg
    assert left in ([], ["lock"]), left
