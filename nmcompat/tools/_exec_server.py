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
# signals sent to exec that go on to the program; the terminal's (Ctrl-C,
# hangup, resize) are not when the program is in the terminal's foreground
# process group with us: the kernel gave it them already
TERMINAL = {signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGWINCH}
FORWARDED = TERMINAL | {signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGCONT}
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


class _Forwarder:
    """Signals sent to exec, read from Python's wakeup fd (whichever thread
    the kernel gave one to: native threads of numpy's libraries may take a
    process-directed signal, so neither sigwaitinfo nor a handler run by
    the main thread can be relied on), and the program's exit, from its
    pidfd.  A signal that comes before the program exists waits for it."""

    def __init__(self) -> None:
        self.rfd, self.wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.saved = {sig: signal.signal(sig, lambda *_: None) for sig in FORWARDED}
        self.saved_fd = signal.set_wakeup_fd(self.wfd, warn_on_full_buffer=False)

    def wait(self, pid: int) -> int:
        """The program's wait status, forwarding signals until it exits."""
        pidfd = os.pidfd_open(pid)
        try:
            while True:
                ready, _, _ = select.select([self.rfd, pidfd], [], [])
                if self.rfd in ready:
                    for sig in os.read(self.rfd, 512):
                        self._forward(pid, sig)
                if pidfd in ready:
                    return os.waitpid(pid, 0)[1]
        finally:
            os.close(pidfd)

    @staticmethod
    def _forward(pid: int, sig: int) -> None:
        if sig in TERMINAL and _terminal_gave_it(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def restore(self) -> None:
        signal.set_wakeup_fd(self.saved_fd)
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        os.close(self.rfd)
        os.close(self.wfd)


def _terminal_gave_it(pid: int) -> bool:
    """Is the program in our process group, the terminal's foreground one?"""
    try:
        if os.getpgid(pid) != os.getpgrp():
            return False
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _leave_as(status: int) -> int:
    """The exit code for the program's status; death by a signal is passed
    on by dying of it (no core file of our own), 128 + n if we survive."""
    if not os.WIFSIGNALED(status):
        return os.waitstatus_to_exitcode(status)
    sig = os.WTERMSIG(status)
    sys.stdout.flush()
    sys.stderr.flush()
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    if sig not in (signal.SIGKILL, signal.SIGSTOP):   # those cannot be caught nor blocked
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)
    return 128 + sig


def run(prog: str, path: str, argv: List[str], env: dict) -> int:
    """Run path as a child with the control plane served; its status."""
    server = Server(prog)
    forward = _Forwarder()
    try:
        server.start()
        env = dict(env, **{SOCKET_ENV: server.path})
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.posix_spawn(path, argv, env, setsigdef={signal.SIGPIPE, signal.SIGXFSZ})
        status = forward.wait(pid)
    finally:
        forward.restore()
        server.close()
    return _leave_as(status)
