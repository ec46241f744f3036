"""NICs on VALE switches: starting and stopping the forwarding process."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from typing import Optional

from nmcompat.errors import NmcompatOSError, errno_class, os_error


def _rundir() -> str:
    return os.environ.get("NMCOMPAT_RUNDIR") or f"/dev/shm/nmcompat-{os.geteuid()}"


def pidfile(sw: str, ifname: str) -> str:
    return os.path.join(_rundir(), f"attach.{sw}.{ifname}.pid")


def remove_pidfile(path: str, pid: int) -> None:
    try:
        with open(path) as f:
            if int(f.read().strip() or 0) == pid:
                os.unlink(path)
    except (OSError, ValueError):
        pass


def _daemon_pid(path: str) -> Optional[int]:
    """The pid in the pidfile if that process is still our forwarder."""
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except (OSError, ValueError):
        return None
    return pid if b"vale-attachd" in cmd else None


def attach(name: str) -> str:
    """Start the forwarder for "valeX:ifname"; returns the NIC backend used."""
    sw, ifname = name.split(":", 1)
    if _daemon_pid(pidfile(sw, ifname)) is not None:
        raise os_error(errno.EBUSY, "attach", name, "it is attached already")
    env = dict(os.environ, NMCOMPAT_RUNDIR=_rundir())
    proc = subprocess.Popen([sys.executable, "-m", "nmcompat.tools", "vale-attachd", name],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    line = proc.stdout.readline().decode().strip()
    proc.stdout.close()
    if line.startswith("ok "):
        return line[3:]
    proc.wait(10)
    code, _, text = (line[6:].partition(" ") if line.startswith("error ") else ("5", "", line))
    err = int(code) if code.isdigit() else errno.EIO
    raise errno_class(NmcompatOSError, err)(
        err, text or f"couldn't attach {name}: the forwarding process failed", name)


def detach(name: str, timeout: float = 10.0) -> bool:
    """Stop the forwarder of "valeX:ifname"; False if there is none."""
    sw, ifname = name.split(":", 1)
    path = pidfile(sw, ifname)
    pid = _daemon_pid(path)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.02)
    if os.path.exists(f"/proc/{pid}"):
        os.kill(pid, signal.SIGKILL)
    remove_pidfile(path, pid)
    return True
