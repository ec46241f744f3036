"""`nmcompat exec` as the program's parent (nmcompat/tools/_exec_server.py):
the program's exit status and death by signal come out unchanged, signals
sent to exec reach the program, the control plane's socket is private and
gone afterwards, a nested exec serves its own subtree, and the control
plane refuses what it cannot parse."""
from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys

from nmcompat.tools import _exec_nic

EXEC = [sys.executable, "-m", "nmcompat.tools", "exec", "--"]
SH = "/bin/sh"


def run(*argv, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([*EXEC, *argv], capture_output=True, text=True, timeout=timeout)


def test_exit_codes_pass_through():
    for code in (0, 3, 255):
        assert run(SH, "-c", f"exit {code}").returncode == code


def test_death_by_a_signal_is_exec_dying_of_it():
    for sig in (signal.SIGUSR1, signal.SIGKILL):
        out = run(SH, "-c", f"kill -{sig.name[3:]} $$")
        assert out.returncode == -sig, out
        assert out.stderr == ""


def test_signals_sent_to_exec_reach_the_program():
    code = ("import signal, sys\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR2})\n"
            "print('ready', flush=True)\n"
            "got = [signal.sigwait({signal.SIGTERM, signal.SIGUSR2}) for _ in range(2)]\n"
            "print(*sorted(int(s) for s in got), flush=True)\n"
            "sys.exit(5)\n")
    proc = subprocess.Popen([*EXEC, sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        os.kill(proc.pid, signal.SIGTERM)
        os.kill(proc.pid, signal.SIGUSR2)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 5, err
    assert out.split() == [str(n) for n in sorted((int(signal.SIGTERM), int(signal.SIGUSR2)))]


def test_the_control_socket_is_private_and_goes_with_exec():
    out = run(SH, "-c", 'echo "$NMCOMPAT_EXEC_SOCKET"; stat -c %a "$(dirname "$NMCOMPAT_EXEC_SOCKET")"')
    path, mode = out.stdout.split()
    assert out.returncode == 0 and mode == "700"
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))


def test_a_nested_exec_serves_its_own_programs():
    inner = " ".join([*EXEC, SH, "-c", "'echo $NMCOMPAT_EXEC_SOCKET; test -S $NMCOMPAT_EXEC_SOCKET'"])
    out = run(SH, "-c", f'echo "$NMCOMPAT_EXEC_SOCKET"; {inner}')
    outer, nested = out.stdout.split()
    assert out.returncode == 0, out.stderr
    assert outer != nested


def test_the_control_plane_refuses_what_it_cannot_parse():
    for data, what in ((b"close\n", "not an open or info request"), (b"open\nname=va\nmode=x\nringid=0", "missing"),
                       (b"open\nname=va\nmode=1\nringid=0\nNMCOMPAT_OTHER=1", "unknown keys")):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        logged = []
        with a, b:
            b.send(data)
            _exec_nic.serve_one(a, logged.append)
            reply = b.recv(256).decode()
        assert reply.startswith(f"err {errno.EINVAL} ") and what in reply, reply
        assert logged and what in logged[0]


def test_a_setting_that_is_no_number_is_einval_with_its_name():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    logged = []
    with a, b:
        b.send(b"open\nname=lo\nmode=1\nringid=0\nNMCOMPAT_ADMODE=2\nNMCOMPAT_GENERIC_RINGSIZE=many")
        _exec_nic.serve_one(a, logged.append)
        reply = b.recv(256).decode()
    assert reply.startswith(f"err {errno.EINVAL} "), reply
    assert "NMCOMPAT_GENERIC_RINGSIZE='many' is not a number" in logged[0]


def test_a_missing_interface_is_enxio_from_the_control_plane():
    """Asked directly (the emulation asks only for names that exist)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    logged = []
    with a, b:
        b.send(b"open\nname=nmc-nosuch0\nmode=1\nringid=0\nNMCOMPAT_ADMODE=2")
        _exec_nic.serve_one(a, logged.append)
        reply = b.recv(256).decode()
    assert reply.startswith(f"err {errno.ENXIO} "), reply
    assert "no interface 'nmc-nosuch0'" in logged[0]


def test_the_settings_of_a_request_apply_only_to_it(monkeypatch):
    monkeypatch.setenv("NMCOMPAT_ADMODE", "1")
    with _exec_nic._Settings({"NMCOMPAT_ADMODE": "2", "NMCOMPAT_SLOTS": "64"}):
        assert os.environ["NMCOMPAT_ADMODE"] == "2" and os.environ["NMCOMPAT_SLOTS"] == "64"
    assert os.environ["NMCOMPAT_ADMODE"] == "1" and "NMCOMPAT_SLOTS" not in os.environ
