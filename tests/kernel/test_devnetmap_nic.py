"""NIC ports for unmodified netmap programs: tests/devnetmap/nm_nic.c (netmap's
fd interface only) under `nmcompat exec` on the namespace's veth va, with a
packet socket on the peer vb sending and receiving the test frames.

exec's parent sets up the XDP program and the sockets and hands them over
(nmcompat/tools/_exec_nic.py); the program's port holds the XDP link, so
nothing stays attached once it has exited."""
from __future__ import annotations

import errno
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cprograms import devnetmap_program
from nic_support import peer_receiver, peer_sender, quiet, reshape_veth
from testlib import skip_or_fail

ETH_TEST = 0x88B5
FRAMES = 256
NR_REG_ALL_NIC, NR_REG_ONE_NIC, NR_REG_ONE_SW = 1, 4, 8


def frame(seq: int, src_last: int) -> bytes:
    """nm_nic.c's test frame seq (its test_frame())."""
    length = 60 + seq % 200
    head = b"\xff" * 6 + bytes([2, 0, 0, 0, 0, src_last]) + struct.pack("!H", ETH_TEST)
    head += struct.pack("=I", seq)
    return head + bytes((seq * 13 + k) & 0xff for k in range(18, length))


@pytest.fixture(scope="module")
def nm_nic(tmp_path_factory) -> Path:
    return devnetmap_program(tmp_path_factory.mktemp("nmnic") / "nm_nic", "nm_nic.c")


def exec_argv(rundir, *argv) -> list:
    return [sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", str(rundir), "--", *map(str, argv)]


def xdp_attached(ifname: str) -> bool:
    from nmcompat.bpf import attached_programs
    return bool(attached_programs(socket.if_nametoindex(ifname))[1])


def _line(stream, timeout: float) -> str:
    """One line of the program's output, waiting at most timeout."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def exchange(argv, env, n: int, meanwhile=None) -> dict:
    """Inside the namespace: run the program, send it n frames from vb once
    it is ready, take n frames from it on vb.  meanwhile (a command) runs
    once the program is ready, before the frames."""
    quiet()
    rx, tx = peer_receiver("vb"), peer_sender("vb")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = _line(proc.stdout, 20)
        attached = xdp_attached("va") if ready.startswith("ready ") else None
        got, other = [], None
        if ready.startswith("ready ") and meanwhile:
            other = subprocess.run(meanwhile, env=env, capture_output=True, text=True, timeout=60)
            other = (other.returncode, other.stdout, other.stderr)
        if ready.startswith("ready "):
            for seq in range(n):
                tx.send(frame(seq, 0x0b))
            deadline = time.monotonic() + 20
            while len(got) < n and time.monotonic() < deadline:
                if select.select([rx], [], [], 0.5)[0]:
                    got.append(rx.recv(4096))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rx.close()
        tx.close()
    return {"ready": ready, "attached": attached, "got": got, "rc": proc.returncode,
            "out": out, "err": err, "attached_after": xdp_attached("va"), "other": other}


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMCOMPAT_")}
    env.update(extra)
    return env


@pytest.mark.parametrize("admode, xdp, nested, queues", [
    ("0", True, False, 1), ("2", False, False, 1), ("0", True, True, 1), ("0", True, False, 2),
    ("2", False, False, 2)], ids=["afxdp", "afpacket-admode2", "afxdp-exec-in-exec", "afxdp-2-queues",
                                 "afpacket-admode2-2-queues"])
def test_frames_both_ways_on_a_veth_port_under_exec(netns, nm_nic, rundir, admode, xdp, nested, queues):
    """Frames from the peer arrive exact in the program's RX rings and the
    program's TX frames arrive exact at the peer; admode 0 puts AF_XDP
    under the port (XDP attached while it runs), admode 2 AF_PACKET (no
    XDP); either way nothing stays attached after the program exits.  An
    exec inside exec serves its own program; a veth with two queues gives
    the port two ring pairs (a socket per queue, handed over)."""
    if queues > 1:
        reshape_veth(netns, queues)
    argv = [nm_nic, "rxtx", "va", FRAMES]
    if nested:
        argv = [sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", rundir, "--", *argv]
    r = netns.run(exchange, exec_argv(rundir, *argv), _env(NMCOMPAT_ADMODE=admode), FRAMES)
    assert r["ready"] == f"ready {queues}\n", r["err"]
    assert r["rc"] == 0, r["err"]
    assert r["out"] == f"rxtx ok {FRAMES}\n" and r["err"] == ""
    assert r["attached"] is xdp, "AF_XDP under admode 0, AF_PACKET (no XDP) under admode 2"
    assert r["got"] == [frame(seq, 0x0a) for seq in range(FRAMES)]
    assert r["attached_after"] is False, "the XDP program went with the program's port"


def test_netmaps_legacy_api_on_a_veth_port_under_exec(netns, nm_nic, rundir):
    """nm_open("netmap:va") (NIOCREGIF), poll, nm_nextpkt and nm_inject of
    netmap_user.h, over AF_XDP."""
    r = netns.run(exchange, exec_argv(rundir, nm_nic, "legacy", "va", FRAMES), _env(), FRAMES)
    assert r["ready"] == "ready 1\n", r["err"]
    assert r["rc"] == 0 and r["out"] == f"legacy ok {FRAMES}\n" and r["err"] == "", r["err"]
    assert r["attached"] is True and r["attached_after"] is False
    assert r["got"] == [frame(seq, 0x0a) for seq in range(FRAMES)]


def test_a_shell_scripts_netmap_child_asks_the_exec_that_runs_the_script(netns, nm_nic, rundir):
    script = f"{nm_nic} rxtx va {FRAMES}; exit $?"
    r = netns.run(exchange, exec_argv(rundir, "/bin/sh", "-c", script), _env(), FRAMES)
    assert r["ready"] == "ready 1\n", r["err"]
    assert r["rc"] == 0 and r["out"] == f"rxtx ok {FRAMES}\n", r["err"]
    assert r["got"] == [frame(seq, 0x0a) for seq in range(FRAMES)]
    assert r["attached_after"] is False


def _register(argv, env):
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout, out.stderr, xdp_attached("va")


@pytest.mark.parametrize("name, mode, ringid, env, want", [
    ("nosuch0", NR_REG_ALL_NIC, 0, {}, errno.ENXIO),
    ("va", NR_REG_ONE_NIC, 5, {}, errno.EINVAL),
    ("va", NR_REG_ONE_SW, 1, {}, errno.EINVAL),
    ("va", NR_REG_ALL_NIC, 0, {"NMCOMPAT_ADMODE": "1"}, errno.EOPNOTSUPP),
    ("va", NR_REG_ALL_NIC, 0, {"NMCOMPAT_ADMODE": "7"}, errno.EINVAL),
], ids=["no-interface", "no-such-queue", "no-such-host-ring", "admode-native", "admode-bad"])
def test_refused_nic_registers_get_netmaps_errno(netns, nm_nic, rundir, name, mode, ringid, env, want):
    """A missing interface is ENXIO; a queue the veth does not have EINVAL;
    a host ring the NIC does not have (^1) EINVAL; admode 1 (native: no
    netmap module) EOPNOTSUPP; a bad
    admode EINVAL; the control plane says why on stderr; nothing attached."""
    rc, out, err, attached = netns.run(_register, exec_argv(rundir, nm_nic, "register", name, mode, ringid),
                                       _env(**env))
    assert rc == 0, err
    assert out == f"register errno={want}\n"
    if want != errno.ENXIO:
        assert err.startswith("nmcompat exec: couldn't open netmap:va: "), err
    assert attached is False


def test_without_exec_a_nic_name_is_eopnotsupp(netns, nm_nic, rundir):
    """The emulation linked or preloaded without exec's parent has no control
    plane to ask: EOPNOTSUPP, nothing attached."""
    from nmcompat.tools.exec import LIBRARY
    env = _env(LD_PRELOAD=str(LIBRARY), NMCOMPAT_RUNDIR=str(rundir))
    rc, out, err, attached = netns.run(_register, [str(nm_nic), "register", "va", str(NR_REG_ALL_NIC), "0"], env)
    assert (rc, out, err, attached) == (0, f"register errno={errno.EOPNOTSUPP}\n", "", False)


def test_a_second_program_on_a_taken_queue_joins_and_the_first_keeps_working(netns, nm_nic, rundir):
    """Two programs, each under its own exec, on va's one queue: the second
    REGISTER joins the first's port (tests/kernel/test_devnetmap_nic_join.py)
    and closes it again; the XDP program stays for the first, whose frames
    still arrive both ways, and goes with it."""
    second = exec_argv(rundir, nm_nic, "register", "va", NR_REG_ALL_NIC, 0)
    r = netns.run(exchange, exec_argv(rundir, nm_nic, "rxtx", "va", FRAMES), _env(), FRAMES, second)
    assert r["other"] == (0, "register errno=0\n", ""), r["other"]
    assert r["rc"] == 0 and r["out"] == f"rxtx ok {FRAMES}\n", r["err"]
    assert r["got"] == [frame(seq, 0x0a) for seq in range(FRAMES)]
    assert r["attached_after"] is False


def _killed(argv, env) -> tuple:
    """Run the program, SIGKILL it (not exec) once its port is open."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = _line(proc.stdout, 20)
        attached = xdp_attached("va")
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            children = [int(p) for p in f.read().split()]
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return ready, attached, len(children), proc.returncode, xdp_attached("va")


def test_a_killed_program_leaves_no_xdp_and_exec_dies_of_the_same_signal(netns, nm_nic, rundir):
    ready, attached, children, rc, after = netns.run(
        _killed, exec_argv(rundir, nm_nic, "rxtx", "va", FRAMES), _env())
    assert (ready, attached, children) == ("ready 1\n", True, 1)
    assert rc == -signal.SIGKILL
    assert after is False, "the kernel closed the program's link: the XDP program is gone"


@pytest.mark.parametrize("admode, needs", [("0", "AF_XDP needs root"), ("2", "AF_PACKET needs CAP_NET_RAW")])
def test_without_the_capabilities_the_program_gets_eperm_and_exec_says_the_fix(netns, nm_nic, rundir,
                                                                                admode, needs):
    """exec and its program run as root with no capability (setpriv): the
    control plane cannot create the sockets, the program gets EPERM, and
    exec's stderr names what each backend needs."""
    if not shutil.which("setpriv"):
        skip_or_fail("setpriv (util-linux) is needed to drop the capabilities")
    argv = ["setpriv", "--bounding-set=-all", "--inh-caps=-all",
            *exec_argv(rundir, nm_nic, "register", "va", NR_REG_ALL_NIC, 0)]
    rc, out, err, attached = netns.run(_register, argv, _env(NMCOMPAT_ADMODE=admode))
    assert (rc, out) == (0, f"register errno={errno.EPERM}\n"), err
    assert err.startswith("nmcompat exec: couldn't open netmap:va: no backend can serve it") and needs in err
    assert attached is False


@pytest.mark.parametrize("admode", ["0", "2"], ids=["afxdp", "afpacket-admode2"])
def test_nic_ports_under_exec_with_the_emulation_under_asan_and_ubsan(netns, nm_nic, rundir, engine_asan,
                                                                       admode):
    """The program under exec, its emulation and engine replaced (env
    LD_PRELOAD=...) by builds with AddressSanitizer and UBSan (leaks
    checked): the hand-over of the sockets and the port on them."""
    from testlib import SANITIZER_ENV
    runtime = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    preload = f"LD_PRELOAD={runtime}:{engine_asan / 'libnmcompat-netmap.so'}"
    sanitizers = [f"{k}={v}" for k, v in SANITIZER_ENV.items()]
    argv = exec_argv(rundir, "env", preload, *sanitizers, nm_nic, "rxtx", "va", FRAMES)
    r = netns.run(exchange, argv, _env(NMCOMPAT_ADMODE=admode), FRAMES)
    assert "Sanitizer" not in r["err"] and "runtime error" not in r["err"], r["err"][-4000:]
    assert r["ready"] == "ready 1\n" and r["rc"] == 0 and r["out"] == f"rxtx ok {FRAMES}\n", r["err"][-4000:]
    assert r["got"] == [frame(seq, 0x0a) for seq in range(FRAMES)]
    assert r["attached_after"] is False


def _info(argv, env) -> dict:
    """Run `nm_nic info`: its three information lines, whether XDP is
    attached after them, then (after the go-ahead) its REGISTER's lines."""
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = _line(proc.stdout, 20)
        more = first.startswith("info ") and "errno" not in first    # written with it, or EOF
        lines = [first] + ([proc.stdout.readline(), proc.stdout.readline()] if more else [])
        attached = xdp_attached("va")
        out, err = proc.communicate("go\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"info": lines, "attached": attached, "rest": out.splitlines(), "err": err,
            "rc": proc.returncode, "attached_after": xdp_attached("va")}


@pytest.mark.parametrize("admode, queues, slots", [("0", 1, 1024), ("2", 1, 1024), ("0", 2, 1024),
                                                   ("2", 2, 512)],
                         ids=["afxdp", "afpacket-admode2", "afxdp-2-queues", "afpacket-ringsize-512"])
def test_information_requests_on_a_veth_answer_what_its_register_reports(netns, nm_nic, rundir, admode,
                                                                          queues, slots):
    """PORT_INFO_GET, NIOCGINFO and POOLS_INFO_GET on an interface name
    under exec: rings = its queues, the slots and the process's NIC region
    its REGISTER then reports, with no XDP program attached by them."""
    if queues > 1:
        reshape_veth(netns, queues)
    env = _env(NMCOMPAT_ADMODE=admode, NMCOMPAT_GENERIC_RINGSIZE=str(slots))
    r = netns.run(_info, exec_argv(rundir, nm_nic, "info", "va"), env)
    assert r["rc"] == 0 and len(r["info"]) == 3, r
    info, legacy, pools = (line.split() for line in r["info"])
    counts = info[1:]
    assert counts[:4] == [str(queues), str(queues), str(slots), str(slots)]
    assert int(counts[4]) > 0 and int(counts[5]) > 0, "a memory size and a region id"
    assert legacy == ["legacy"] + counts
    assert pools[1:3] == counts[4:6]
    assert r["attached"] is False, "an information request attaches nothing"
    assert r["rest"] == [" ".join(["register"] + counts), " ".join(pools)], r["err"]
    assert r["attached_after"] is False


@pytest.mark.parametrize("name, want", [("nosuch0", errno.ENXIO)], ids=["no-interface"])
def test_information_requests_on_a_missing_interface_get_enxio(netns, nm_nic, rundir, name, want):
    r = netns.run(_info, exec_argv(rundir, nm_nic, "info", name), _env())
    assert (r["rc"], r["info"], r["attached"]) == (0, [f"info errno={want}\n"], False), r["err"]


def test_information_requests_on_lo_agree_with_its_register(netns, nm_nic, rundir):
    """lo: the information request gives what the REGISTER gives (its
    counts, or the same errno)."""
    r = netns.run(_info, exec_argv(rundir, nm_nic, "info", "lo"), _env())
    reg = netns.run(_register, exec_argv(rundir, nm_nic, "register", "lo", NR_REG_ALL_NIC, 0), _env())
    if r["info"][0].startswith("info errno="):
        assert r["info"][0] == f"info errno={reg[1].split('=')[1]}", (r, reg)
    else:
        assert reg[1] == "register errno=0\n", reg
        assert r["rest"][0] == " ".join(["register"] + r["info"][0].split()[1:]), r


def test_without_exec_information_on_a_nic_name_is_eopnotsupp(netns, nm_nic, rundir):
    """No control plane to ask: EOPNOTSUPP, as the REGISTER."""
    from nmcompat.tools.exec import LIBRARY
    env = _env(LD_PRELOAD=str(LIBRARY), NMCOMPAT_RUNDIR=str(rundir))
    r = netns.run(_info, [str(nm_nic), "info", "va"], env)
    assert (r["rc"], r["info"], r["attached"]) == (0, [f"info errno={errno.EOPNOTSUPP}\n"], False), r["err"]
