"""Unmodified netmap programs under `nmcompat exec`: tests/devnetmap/nm_raw.c
(with nm_raw_fds.c) speaks only netmap's file-descriptor interface (open /dev/netmap, NIOCCTRL,
NIOCREGIF, mmap, NIOC*SYNC, poll, close) and is linked with nothing of
nmcompat; the /dev/netmap emulation (csrc/devnetmap/) serves it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cprograms import NM_RAW, devnetmap_program
from testlib import rundir_entries, skip_or_fail

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EDGE_MODES = ["pollout-nopeer", "rdnorm", "close-poll", "close-sync", "stale", "exclusive-info", "readonly",
              "open-null", "options", "dup-unbound", "xproc", "reuse-adopted", "bind-closed", "bind-adopted",
              "unbind-emfile", "vale-ctl", "rings-only", "kernel-features"]
FILE_MODES = ("stale", "bind-closed", "bind-adopted")
NAMED_MODES = {"vale-ctl": ["nmcv0", "valenmcv"]}      # a persistent port's name, its switch


@pytest.fixture(scope="module")
def nm_raw(tmp_path_factory) -> Path:
    return devnetmap_program(tmp_path_factory.mktemp("nmraw") / "nm_raw", *NM_RAW)


@pytest.fixture(scope="module")
def nm_edge(tmp_path_factory) -> Path:
    """-rdynamic: the emulation finds the program's nmcompat_test_bind_hook."""
    return devnetmap_program(tmp_path_factory.mktemp("nmedge") / "nm_edge", "nm_edge.c", flags=["-rdynamic"])


def _edge_args(mode: str, tmp_path: Path, rounds: int = 100) -> list:
    if mode.startswith("close-"):
        return [mode, rounds]
    if mode in NAMED_MODES:
        return [mode, *NAMED_MODES[mode]]
    if mode not in FILE_MODES:
        return [mode]
    f = tmp_path / "a-file"
    f.write_text("the file's own bytes\n")
    return [mode, f]


@pytest.mark.parametrize("mode", EDGE_MODES)
def test_edge_cases(nm_edge, rundir, tmp_path, mode):
    """poll that must return at its timeout, close from another thread while
    in poll or a sync (100 rounds: a leaked entry left the port's files open
    and mapped in 2 of 5 runs of 10 rounds, 5 of 5 of 100), a number closed
    behind our back and reused, info of an exclusive port, a read-only device
    fd, open(NULL), option chains, a REGISTER racing another thread's close,
    open or adoption, its undo out of descriptors."""
    out = nmexec(nm_edge, *_edge_args(mode, tmp_path), rundir=rundir, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{mode} ok\n"
    assert rundir_entries(rundir) in (["lock"], [])


def test_a_port_made_with_newif_is_on_the_switch_vale_ctl_lists(nm_edge, rundir):
    """VALE_NEWIF and VALE_ATTACH through NIOCCTRL make a port `nmcompat
    vale-ctl` lists on its switch; VALE_DETACH and VALE_DELIF take it away."""
    env = dict(os.environ, NMCOMPAT_RUNDIR=str(rundir))
    listing = [sys.executable, "-m", "nmcompat.tools", "vale-ctl"]
    out = nmexec(nm_edge, "vale-make", "nmcl0", "valenmcl", rundir=rundir)
    assert out.returncode == 0 and out.stdout == "vale-make ok\n", out.stderr
    try:
        listed = subprocess.run(listing, capture_output=True, text=True, timeout=60, env=env)
        assert "valenmcl:nmcl0" in listed.stdout, listed.stdout + listed.stderr
    finally:
        out = nmexec(nm_edge, "vale-drop", "nmcl0", "valenmcl", rundir=rundir)
    assert out.returncode == 0 and out.stdout == "vale-drop ok\n", out.stderr
    listed = subprocess.run(listing, capture_output=True, text=True, timeout=60, env=env)
    assert "nmcl0" not in listed.stdout + listed.stderr
    assert rundir_entries(rundir) in (["lock"], [])


def test_null_ports_on_the_memory_of_an_open_pipe(rundir, tmp_path):
    """NR_REG_NULL as netmap's null adapter: EINVAL without an existing
    nr_mem_id; the rings asked for in that region; TX slots never handed back,
    RX never filled (tests/devnetmap/nm_null.c)."""
    prog = devnetmap_program(tmp_path / "nm_null", "nm_null.c")
    out = nmexec(prog, rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "null ok\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"], "the null port went with its fd, the region with the pipe"


def test_niocunregif_and_nioconfig_answer_eopnotsupp(rundir, tmp_path):
    """NIOCUNREGIF (deprecated) and NIOCCONFIG are EOPNOTSUPP on a netmap
    fd, bound or not, as netmap's legacy ioctl answers on Linux; the port
    stays registered (tests/devnetmap/nm_unregif.c)."""
    prog = devnetmap_program(tmp_path / "nm_unregif", "nm_unregif.c")
    out = nmexec(prog, rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "unregif ok\n" and out.stderr == ""


def test_register_with_the_mem_id_an_info_request_gave(rundir, tmp_path):
    """PORT_INFO_GET (or legacy NIOCGINFO) of a port nobody holds, then
    REGISTER with the nr_mem_id it answered (tests/devnetmap/nm_infoid.c):
    the registration succeeds, as on netmap whose default allocator keeps
    that id, where it was EINVAL (the id named the region the request had
    made and closed)."""
    prog = devnetmap_program(tmp_path / "nm_infoid", "nm_infoid.c")
    out = nmexec(prog, rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "infoid ok\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def nmexec(*argv, rundir=None, timeout=120) -> subprocess.CompletedProcess:
    pre = ["--rundir", str(rundir)] if rundir else []
    return subprocess.run([sys.executable, "-m", "nmcompat.tools", "exec", *pre, "--", *map(str, argv)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("tx, rx", [("dn{1", "dn}1"), ("dn}1", "dn{1"), ("valedn:a", "valedn:b")])
def test_frames_arrive_exact_through_poll_and_the_sync_ioctls(nm_raw, rundir, tx, rx):
    out = nmexec(nm_raw, "traffic", tx, rx, 20000, rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "traffic ok 20000\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"], "every port went with its last fd"


@pytest.mark.parametrize("how", ["select", "epoll"])
@pytest.mark.parametrize("tx, rx", [("dq{1", "dq}1"), ("valedq:a", "valedq:b")])
def test_select_pselect_and_epoll_wait_for_netmap_fds(nm_raw, rundir, tx, rx, how):
    out = nmexec(nm_raw, how, tx, rx, 20000, rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "traffic ok 20000\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_a_port_lives_while_a_forked_child_has_its_fd(nm_raw, rundir):
    """The parent closes the sending end right after fork(); the child, the
    last holder of its fd, sends every frame through it (a pipe: back-pressure,
    so every frame arrives)."""
    out = nmexec(nm_raw, "fork", "dk{1", "dk}1", 20000, rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "fork ok 20000\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_an_fd_passed_with_scm_rights_is_mapped_and_synced_by_its_receiver(nm_raw, rundir):
    """The receiver exec()s a fresh image that never opened the fd: its mmap
    adopts the port; the sender closes its copy at once."""
    out = nmexec(nm_raw, "pass", "dp{1", "dp}1", 20000, rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "pass ok 20000\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_an_fd_received_by_a_process_with_a_malformed_setting_is_refused(nm_raw, rundir):
    """The receiver's adoption reads NMCOMPAT_SPIN_US, which is malformed
    there: its ioctl and its mmap of the fd fail with EINVAL.  (They went to
    the kernel instead: ENOTTY, and an mmap of the region's control file.)"""
    out = nmexec(nm_raw, "passbadenv", "db{1", rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "passbadenv ok\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("via", ["scm", "exec"])
@pytest.mark.parametrize("how", ["poll", "select", "epoll"])
def test_a_received_fds_first_call_may_be_a_wait(nm_raw, rundir, how, via):
    """The receiver's first call on an fd that came with SCM_RIGHTS or across
    exec is poll, select or epoll_ctl: its empty RX ring must not be readable
    (the wait times out), and frames sent then must make it readable."""
    out = nmexec(nm_raw, "firstwait", how, via, "fw{1", "fw}1", 2000, rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "firstwait ok 2000\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("how", ["recvmsg", "recvmmsg"])
def test_fds_received_in_a_truncated_message_beside_other_files(nm_raw, rundir, how):
    """A netmap fd and a regular file's arrive in one message cut short
    (MSG_CTRUNC, MSG_CMSG_CLOEXEC): the netmap fd's first poll is netmap's,
    the file's is the kernel's, and errno is left as it was."""
    out = nmexec(nm_raw, "arrivals", how, "fa{1", "fa}1", rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "arrivals ok\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_a_process_that_only_inherits_an_fd_leaves_its_wakeups_alone(nm_raw, rundir):
    """A child exec()s with the fd and exits without using it: its arrival is
    marked, not adopted (an adoption binds the port's wakeup socket anew), so
    a poll in the opener is still woken by the frame its peer sends."""
    out = nmexec(nm_raw, "bystander", "fb{1", "fb}1", rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "bystander ok\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("tx, rx", [("dd{1", "dd}1"), ("valedd:a", "valedd:b")])
def test_a_daemon_that_closed_fds_0_to_2(nm_raw, rundir, tx, rx):
    """The program closes 0, 1 and 2, so its netmap fds take those numbers;
    the emulation writes nothing anywhere (the exit status is the report)."""
    out = nmexec(nm_raw, "daemon", tx, rx, 20000, rundir=rundir)
    assert out.returncode == 0, out.returncode
    assert out.stdout == "" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_legacy_niocregif_pipe_modes(nm_raw, rundir):
    out = nmexec(nm_raw, "legacy", "dl", 5000, rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "legacy ok 5000\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_netmaps_errnos_for_bad_requests(nm_raw, rundir):
    out = nmexec(nm_raw, "errors", "de", rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "errors ok\n"
    assert rundir_entries(rundir) == ["lock"]


def test_virtio_net_headers_on_vale_ports(rundir, tmp_path):
    """PORT_HDR_SET/GET of 0, 10 and 12 with netmap's errnos, EIO for a
    REGISTER without NR_ACCEPT_VNET_HDR, and frames between ports of equal
    and different header lengths, learned past the headers
    (tests/devnetmap/nm_vnethdr.c)."""
    prog = devnetmap_program(tmp_path / "nm_vnethdr", "nm_vnethdr.c")
    out = nmexec(prog, "valevh", rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "vnethdr ok\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"], "every port went with its last fd"


def test_without_exec_nothing_is_emulated(nm_raw, rundir):
    if os.path.exists("/dev/netmap"):
        skip_or_fail("this machine has a /dev/netmap of its own")
    out = subprocess.run([str(nm_raw), "errors", "dx"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "open /dev/netmap" in out.stderr and "No such file" in out.stderr


def test_exec_inside_a_script_inside_exec(nm_raw, rundir, tmp_path):
    script = tmp_path / "run.sh"
    script.write_text(f"#!/bin/sh\nset -e\n{nm_raw} traffic ds{{1 ds}}1 3000\n"
                      f"{sys.executable} -m nmcompat.tools exec -- {nm_raw} traffic ds{{2 ds}}2 3000\n")
    script.chmod(0o755)
    out = nmexec(script, rundir=rundir)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "traffic ok 3000\ntraffic ok 3000\n"
    assert rundir_entries(rundir) == ["lock"]


def test_exec_refuses_what_it_cannot_serve(tmp_path):
    static = tmp_path / "nm_raw_static"
    try:
        devnetmap_program(static, *NM_RAW, flags=["-static"])
    except subprocess.CalledProcessError as exc:
        skip_or_fail(f"no static libc to link a static program with: {exc.stderr[-300:]}")
    out = nmexec(static, "errors", "x")
    assert out.returncode == 2 and "statically linked" in out.stderr and out.stdout == ""
    data = tmp_path / "data.bin"
    data.write_bytes(b"\0" * 64)
    data.chmod(0o755)
    out = nmexec(data)
    assert out.returncode == 2 and "not an ELF executable nor a script" in out.stderr
    out = nmexec("nmc-no-such-program-xyz")
    assert out.returncode == 2 and "couldn't find nmc-no-such-program-xyz" in out.stderr
    out = subprocess.run([sys.executable, "-m", "nmcompat.tools", "exec"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "a program to run is needed" in out.stderr


def test_the_preload_is_added_once(monkeypatch):
    from nmcompat.tools import exec as nexec

    env = nexec.environment({"LD_PRELOAD": "/x/other.so"}, "/dev/shm/r")
    assert env["LD_PRELOAD"] == f"{nexec.LIBRARY}:/x/other.so" and env["NMCOMPAT_RUNDIR"] == "/dev/shm/r"
    assert nexec.environment(env, None)["LD_PRELOAD"] == env["LD_PRELOAD"]


@pytest.fixture(scope="module")
def asan_emulation(tmp_path_factory) -> dict:
    """The engine and the emulation in one shared library built with
    AddressSanitizer and UBSan, and the environment that preloads it."""
    from testlib import SANITIZE_FLAGS, engine_include_flags, engine_make_var
    from vale_helpers import ASAN_ENV, cc, sanitizers_unavailable

    why = sanitizers_unavailable()
    if why:
        skip_or_fail(why)
    csrc = ROOT / "csrc"
    lib = tmp_path_factory.mktemp("nmdasan") / "libnmcompat-netmap-asan.so"
    sources = [str(csrc / s) for s in engine_make_var("SRCS") + engine_make_var("DEV_SRCS")]
    cmd = [cc(), "-std=gnu11", "-O1", "-g", "-fPIC", "-shared", *SANITIZE_FLAGS, "-Wall", "-Wextra", "-Werror",
           *engine_include_flags(), f"-I{csrc / 'devnetmap'}", *sources, "-ldl", "-lpthread", "-o", str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runtime = subprocess.run([cc(), "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return dict(os.environ, **ASAN_ENV, LD_PRELOAD=f"{runtime}:{lib}")


@pytest.mark.parametrize("args", [("traffic", "za{1", "za}1", 20000), ("epoll", "valeza:a", "valeza:b", 5000),
                                  ("select", "zb{1", "zb}1", 5000), ("pass", "zp{1", "zp}1", 5000),
                                  ("fork", "zf{1", "zf}1", 5000), ("legacy", "zl", 3000), ("errors", "ze"),
                                  ("firstwait", "poll", "scm", "zw{1", "zw}1", 2000),
                                  ("firstwait", "epoll", "exec", "zx{1", "zx}1", 2000),
                                  ("bystander", "zy{1", "zy}1"), ("arrivals", "recvmmsg", "zr{1", "zr}1")])
def test_the_emulation_under_asan_and_ubsan(nm_raw, rundir, asan_emulation, args):
    env = dict(asan_emulation, NMCOMPAT_RUNDIR=str(rundir))
    out = subprocess.run([str(nm_raw), *map(str, args)], capture_output=True, text=True, timeout=300, env=env)
    assert "Sanitizer" not in out.stderr and "runtime error" not in out.stderr, out.stderr[-4000:]
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.startswith(f"{args[0]} ok") or out.stdout == "traffic ok 5000\n", out.stdout
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("mode", EDGE_MODES)
def test_edge_cases_under_asan_and_ubsan(nm_edge, rundir, tmp_path, asan_emulation, mode):
    """The close races run 100 rounds: a sync on a number another thread
    closed, reused by the engine's own close of the port, once adopted that
    control file as a device descriptor (a leaked entry; LeakSanitizer saw it
    in about half the 10-round runs, the program's own check of what is left
    open and mapped sees it too)."""
    env = dict(asan_emulation, NMCOMPAT_RUNDIR=str(rundir))
    out = subprocess.run([str(nm_edge), *map(str, _edge_args(mode, tmp_path))], capture_output=True, text=True,
                         timeout=300, env=env)
    assert "Sanitizer" not in out.stderr and "runtime error" not in out.stderr, out.stderr[-4000:]
    assert out.returncode == 0 and out.stdout == f"{mode} ok\n", out.stderr[-4000:]


def test_null_ports_under_asan_and_ubsan(rundir, tmp_path, asan_emulation):
    prog = devnetmap_program(tmp_path / "nm_null", "nm_null.c")
    env = dict(asan_emulation, NMCOMPAT_RUNDIR=str(rundir))
    out = subprocess.run([str(prog)], capture_output=True, text=True, timeout=300, env=env)
    assert "Sanitizer" not in out.stderr and "runtime error" not in out.stderr, out.stderr[-4000:]
    assert out.returncode == 0 and out.stdout == "null ok\n", out.stderr[-4000:]
    assert rundir_entries(rundir) == ["lock"]


def test_virtio_net_headers_under_asan_and_ubsan(rundir, tmp_path, asan_emulation):
    """The header copies (strip, prepend) and the lookup past a header."""
    prog = devnetmap_program(tmp_path / "nm_vnethdr", "nm_vnethdr.c")
    env = dict(asan_emulation, NMCOMPAT_RUNDIR=str(rundir))
    out = subprocess.run([str(prog), "valezh"], capture_output=True, text=True, timeout=300, env=env)
    assert "Sanitizer" not in out.stderr and "runtime error" not in out.stderr, out.stderr[-4000:]
    assert out.returncode == 0 and out.stdout == "vnethdr ok\n", out.stderr[-4000:]
    assert rundir_entries(rundir) == ["lock"]
