"""A program under `nmcompat exec` whose REGISTER finds the NIC queue held
by another process's live AF_XDP port joins that port, as a plain process
does (tests/kernel/test_nic_xproc.py), and holds the XDP link from exec's
control plane (tests/devnetmap/nm_join.c on the namespace's veth va, a
packet socket on the peer vb).  Before, its REGISTER was EBUSY."""
from __future__ import annotations

import errno
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cprograms import devnetmap_program
from nic_support import peer_receiver, peer_sender, quiet
from test_devnetmap_nic import frame
from testlib import rundir_entries, skip_or_fail

pytestmark = pytest.mark.kernel

FRAMES = 200
WAIT = 20.0


@pytest.fixture(scope="module")
def nm_join(tmp_path_factory) -> Path:
    return devnetmap_program(tmp_path_factory.mktemp("nmjoin") / "nm_join", "nm_join.c")


class Program:
    """nm_join under its own nmcompat exec, read line by line."""

    def __init__(self, nm_join, mode: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "nmcompat.tools", "exec", "--", str(nm_join), "va",
                                      mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        self.rx, self.buf = [], b""

    def line(self, timeout: float = WAIT) -> str:
        """Its next line ("" if none within timeout); frames it reports go to rx."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return ""
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return ""
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        text = raw.decode() + "\n"
        if text.startswith("rx "):
            self.rx.append(int(text.split()[1]))
        return text

    def until(self, want: str) -> str:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            text = self.line(deadline - time.monotonic())
            if text in (want, ""):
                return text
        return ""

    def send(self, n: int) -> str:
        self.proc.stdin.write(f"send {n}\n".encode())
        return self.until(f"sent {n}\n")

    def finish(self):
        """Close its port (end of stdin): (exit status, what it said after, stderr)."""
        try:
            out, err = self.proc.communicate(b"", timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        rest = (self.buf + out).decode()
        self.buf = b""
        for text in rest.splitlines():
            if text.startswith("rx "):
                self.rx.append(int(text.split()[1]))
        return self.proc.returncode, rest, err.decode()


def _collect(progs, n: int) -> None:
    """Read the programs' lines until they reported n frames in all."""
    deadline = time.monotonic() + WAIT
    while sum(len(p.rx) for p in progs) < n and time.monotonic() < deadline:
        for p in progs:
            while b"\n" in p.buf:          # lines read already
                p.line(0)
        if sum(len(p.rx) for p in progs) >= n:
            break
        ready = select.select([p.proc.stdout for p in progs], [], [], 0.5)[0]
        for p in progs:
            if p.proc.stdout in ready:
                p.line(0.1)


def _peer_frames(rx, n: int) -> list:
    got, deadline = [], time.monotonic() + WAIT
    while len(got) < n and time.monotonic() < deadline:
        if select.select([rx], [], [], 0.5)[0]:
            data = rx.recv(4096)
            if data[11] == 0x0a:
                got.append(data)
    return got


def _two_programs(nm_join, first_mode, second_mode, n):
    quiet()
    rx, tx = peer_receiver("vb"), peer_sender("vb")
    a = Program(nm_join, first_mode)
    b = None
    try:
        ready = [a.line()]
        if ready[0] == "ready\n":
            b = Program(nm_join, second_mode)
            ready.append(b.line())
        sent = got = None
        if ready == ["ready\n", "ready\n"]:
            for seq in range(n):
                tx.send(frame(seq, 0x0b))
            _collect([a, b], n)
            sent = (a.send(n) if first_mode != "rx" else "", b.send(n) if second_mode != "rx" else "")
            got = _peer_frames(rx, n * sum(m != "rx" for m in (first_mode, second_mode)))
        ends = [a.finish()] + ([b.finish()] if b else [])
        return {"ready": ready, "rx": (a.rx, b.rx if b else None), "sent": sent, "got": got, "ends": ends}
    finally:
        for p in (a, b):
            if p and p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
        rx.close()
        tx.close()


def test_two_programs_under_exec_share_a_queue_as_rx_and_tx(netns, nm_join, rundir):
    """netmap:va/R and netmap:va/T, each under its own exec: the peer's
    frames reach the RX program, the TX program's frames reach the peer."""
    r = netns.run(_two_programs, nm_join, "rx", "tx", FRAMES)
    assert r["ready"] == ["ready\n", "ready\n"], r["ends"]
    assert r["rx"] == (list(range(FRAMES)), []), r["ends"]
    assert r["sent"] == ("", f"sent {FRAMES}\n"), r["ends"]
    assert r["got"] == [frame(seq, 0x0a) for seq in range(FRAMES)]
    assert [e[0] for e in r["ends"]] == [0, 0], r["ends"]
    assert rundir_entries(rundir) == ["lock"]


def test_two_programs_under_exec_on_one_queue_get_each_frame_once(netns, nm_join, rundir):
    """netmap:va-0 twice, each under its own exec: one kring, so each of the
    peer's frames reaches one of them, once; both send."""
    r = netns.run(_two_programs, nm_join, "one0", "one0", FRAMES)
    assert r["ready"] == ["ready\n", "ready\n"], r["ends"]
    first, second = r["rx"]
    assert sorted(first + second) == list(range(FRAMES)), r["ends"]
    assert r["sent"] == (f"sent {FRAMES}\n", f"sent {FRAMES}\n"), r["ends"]
    assert sorted(r["got"], key=lambda f: f[14:18]) == sorted(
        [frame(seq, 0x0a) for seq in range(FRAMES)] * 2, key=lambda f: f[14:18])
    assert [e[0] for e in r["ends"]] == [0, 0], r["ends"]
    assert rundir_entries(rundir) == ["lock"]


def _python_then_program(nm_join, n):
    """This process opens va; a program under exec joins it; this process
    closes its port; then the peer sends n frames."""
    import nmcompat
    quiet()
    tx = peer_sender("vb")
    prog = None
    try:
        with nmcompat.open("netmap:va", backend="afxdp"):
            prog = Program(nm_join, "all")
            ready = prog.line()
        if ready == "ready\n":
            for seq in range(n):
                tx.send(frame(seq, 0x0b))
            _collect([prog], n)
        rc, out, err = prog.finish()
        return ready, prog.rx, rc, err
    finally:
        if prog and prog.proc.poll() is None:
            prog.proc.kill()
            prog.proc.wait()
        tx.close()


def test_a_program_under_exec_joins_a_python_port_and_keeps_it_after_its_opener_closed(netns, nm_join,
                                                                                       rundir):
    """The program joined the Python opener's port and holds the XDP link:
    once the opener closed, the program and its XSKMAP entry stay, and the
    peer's frames reach the program."""
    ready, got, rc, err = netns.run(_python_then_program, nm_join, FRAMES)
    assert ready == "ready\n", err
    assert got == list(range(FRAMES)), err
    assert rc == 0, err
    assert rundir_entries(rundir) == ["lock"]


def _refused_join(nm_join):
    """This process opens va, not dumpable; the program under exec has no
    CAP_SYS_PTRACE (dropped from its bounding set), so the kernel refuses
    it the duplicates of this process's sockets."""
    import ctypes
    import nmcompat
    quiet()
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)             # PR_SET_DUMPABLE 0
    with nmcompat.open("netmap:va", backend="afxdp"):
        argv = ["setpriv", "--bounding-set", "-sys_ptrace", "--inh-caps", "-sys_ptrace", sys.executable,
                "-m", "nmcompat.tools", "exec", "--", str(nm_join), "va", "all"]
        out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    return os.getpid(), out.returncode, out.stdout, out.stderr


def test_a_refused_join_under_exec_is_ebusy_with_the_reason(netns, nm_join, rundir):
    if not shutil.which("setpriv"):
        skip_or_fail("setpriv is missing")
    pid, rc, out, err = netns.run(_refused_join, nm_join)
    assert (rc, out) == (0, f"register errno={errno.EBUSY}\n"), err
    assert err.startswith("nmcompat exec: couldn't open netmap:va: Device or resource busy: va's port is "
                          f"held by process {pid}, "), err
    assert "pidfd_getfd" in err and "no ptrace rights" in err, err
    assert rundir_entries(rundir) == ["lock"]
