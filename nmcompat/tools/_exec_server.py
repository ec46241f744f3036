"""`nmcompat exec`'s parent: the program as a child, and the control plane
its /dev/netmap emulation asks for NIC ports (_exec_nic.py).

The parent serves a SOCK_SEQPACKET socket in a private 0700 directory,
named to the program by $NMCOMPAT_EXEC_SOCKET (one connection per request,
so a program that closed all its descriptors can still ask), runs the
program with posix_spawn, forwards the signals sent to it, and leaves with
the program's status: its exit code, or death by the same signal.  It is
never in the data path: a port's syncs and polls are the program's own.
"""
from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
from typing import List

from nmcompat.tools._exec_nic import serve_one

SOCKET_ENV = "NMCOMPAT_EXEC_SOCKET"
# signals sent to the parent that the program gets too
FORWARDED = {signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH, signal.SIGALRM, signal.SIGCONT}
SI_KERNEL = 0x80                # the terminal's signals: the whole process group has them
REQUEST_TIMEOUT = 30.0


class Server:
    """The control plane's listening socket and the thread serving it."""

    def __init__(self, prog: str) -> None:
        self.prog = prog
        self.dir = tempfile.mkdtemp(prefix="nmcompat-exec-")
        self.path = os.path.join(self.dir, "ctl")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(self.path)
        self.sock.listen(16)
        self.stop_r, self.stop_w = os.pipe()
        self.thread = threading.Thread(target=self._run, name="nmcompat-exec-ctl", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _log(self, message: str) -> None:
        print(f"{self.prog}: {message}", file=sys.stderr, flush=True)

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self.sock, self.stop_r], [], [])
            if self.stop_r in ready:
                return
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(REQUEST_TIMEOUT)
                serve_one(conn, self._log)

    def close(self) -> None:
        os.write(self.stop_w, b"x")
        self.thread.join()
        for fd in (self.stop_r, self.stop_w):
            os.close(fd)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _wait(pid: int, waited: set) -> int:
    """The program's wait status; signals sent to us go on to it (not the
    terminal's: they reached its process group, the program included)."""
    while True:
        info = signal.sigwaitinfo(waited)
        if info.si_signo == signal.SIGCHLD:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return status
            continue
        if info.si_code == SI_KERNEL and _same_group(pid):
            continue
        try:
            os.kill(pid, info.si_signo)
        except ProcessLookupError:
            pass


def _same_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == os.getpgrp()
    except OSError:
        return False


def _leave_as(status: int) -> int:
    """The exit code for the program's status; death by a signal is passed
    on by dying of it (no core file of our own), 128 + n if we survive."""
    if not os.WIFSIGNALED(status):
        return os.waitstatus_to_exitcode(status)
    sig = os.WTERMSIG(status)
    sys.stdout.flush()
    sys.stderr.flush()
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)
    return 128 + sig


def run(prog: str, path: str, argv: List[str], env: dict) -> int:
    """Run path as a child with the control plane served; its status."""
    waited = FORWARDED | {signal.SIGCHLD}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, waited)     # the server thread's too
    server = Server(prog)
    try:
        server.start()
        env = dict(env, **{SOCKET_ENV: server.path})
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.posix_spawn(path, argv, env, setsigmask=before,
                             setsigdef={signal.SIGPIPE, signal.SIGXFSZ})
        status = _wait(pid, waited)
    finally:
        server.close()
    return _leave_as(status)
