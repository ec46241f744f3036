"""Kernel tests: root, and a private network namespace per test.

``netns`` creates ``nmc-<pid>-<random>`` (netns_name(): the pid of the
pytest process) holding a veth pair ``va`` <-> ``vb`` (both up), and deletes
it afterwards, also when the test fails or the run is interrupted (SIGINT,
or SIGTERM, which is turned into KeyboardInterrupt so that fixtures tear
down).  A run killed outright (SIGKILL) leaves its namespaces; the next run
deletes every ``nmc-<pid>-*`` whose pid is gone at its start.
``netns.run(fn, *args)`` runs ``fn`` in a forked child that entered the
namespace and returns its (picklable) result; an exception in the child fails
the test with the child's traceback.  Nothing outside the namespace is
touched.  ``nic`` runs a test once per NIC backend (nic_support.BACKENDS).  Without root every test here skips, or fails when
NMCOMPAT_STRICT=1.

Every test runs in a runtime directory of its own (testlib.private_rundir:
a new /dev/shm/nmc-test-* of mode 0700 as $NMCOMPAT_RUNDIR, which child
processes inherit, removed afterwards), never in the default one that other
programs on the machine share; ``rundir`` gives a test its path.  A test of
the default directory removes the variable (monkeypatch.delenv).
"""
from __future__ import annotations

import ctypes
import os
import pickle
import re
import shutil
import signal
import subprocess
import traceback
import uuid

import pytest

import nic_support
from testlib import private_rundir

STRICT = os.environ.get("NMCOMPAT_STRICT") == "1"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def skip_or_fail(reason: str):
    if STRICT:
        pytest.fail(f"{reason} (NMCOMPAT_STRICT=1)")
    pytest.skip(reason)


NETNS_DIR = "/run/netns"
OURS = re.compile(r"nmc-(\d+)-[0-9a-f]+$")


def netns_name() -> str:
    """A new namespace name of this run: nmc-<pid of this process>-<random>."""
    return f"nmc-{os.getpid()}-{uuid.uuid4().hex[:10]}"


def _pid_alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def remove_orphan_namespaces() -> list:
    """Delete the nmc-<pid>-* namespaces of runs whose process is gone (a
    killed run's); the names of runs going on are left alone."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    orphans = [n for n in names if (m := OURS.match(n)) and not _pid_alive(int(m.group(1)))]
    for name in orphans:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
    return orphans


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    """SIGTERM ends the run as Ctrl-C does: each fixture's teardown runs
    (its namespace deleted); leftovers of killed runs go first."""
    if os.geteuid() == 0 and shutil.which("ip"):
        remove_orphan_namespaces()
    signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(autouse=True)
def _kernel_privileges():
    if os.geteuid() != 0:
        skip_or_fail("kernel tests need root (BPF, XDP, network namespaces)")
    if not shutil.which("ip"):
        skip_or_fail("kernel tests need iproute2's ip")


@pytest.fixture(autouse=True)
def _private_rundir(request, monkeypatch):
    """The test's own runtime directory; one that asks for ``rundir`` has it there."""
    if "rundir" in request.fixturenames:
        yield request.getfixturevalue("rundir")
    else:
        yield from private_rundir(monkeypatch)


class NetNS:
    """A named network namespace; ``run`` executes code inside it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True)

    def run(self, fn, *args):
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(rfd)
            self._child(wfd, fn, args)
        os.close(wfd)
        with os.fdopen(rfd, "rb") as r:
            data = r.read()
        _, status = os.waitpid(pid, 0)
        if not data:
            pytest.fail(f"the child in {self.name} died (wait status {status:#x})")
        kind, value = pickle.loads(data)
        if kind == "error":
            pytest.fail(f"in network namespace {self.name}:\n{value}", pytrace=False)
        return value

    def _child(self, wfd: int, fn, args) -> None:  # pragma: no cover - the child
        try:
            with open(f"/run/netns/{self.name}") as f:
                if _libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            out = pickle.dumps(("ok", fn(*args)))
        except BaseException:
            out = pickle.dumps(("error", traceback.format_exc()))
        with os.fdopen(wfd, "wb") as w:
            w.write(out)
        os._exit(0)


@pytest.fixture(params=nic_support.BACKENDS, ids=nic_support.BACKEND_IDS)
def nic(request):
    """(backend, xdp_mode) of the NIC backend under test (nic_support.BACKENDS)."""
    return request.param


def veth_netns():
    """A new namespace (netns_name()) with the veth pair va/vb up; the
    fixtures below yield it and delete the namespace, failed or not."""
    ns = NetNS(netns_name())
    subprocess.run(["ip", "netns", "add", ns.name], check=True)
    try:
        ns.ip("link", "add", "name", "va", "type", "veth", "peer", "name", "vb")
        ns.ip("link", "set", "dev", "va", "up")
        ns.ip("link", "set", "dev", "vb", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns.name], check=False)


@pytest.fixture
def netns():
    yield from veth_netns()
