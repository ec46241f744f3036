"""The kernel tests' namespaces do not outlive their run: SIGTERM (how a
run is ended from outside) tears the fixtures down as Ctrl-C does, and a
run killed outright leaves its nmc-<pid>-* namespaces to the next run,
which deletes those whose pid is gone (conftest.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import netns_name, remove_orphan_namespaces

pytestmark = pytest.mark.kernel
HERE = Path(__file__).resolve().parent

WAITING = '''
import time
def test_waits(netns):
    with open({out!r}, "w") as f:
        f.write(netns.name)
    time.sleep(3600)
'''


def _exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def test_sigterm_deletes_the_tests_namespace(tmp_path):
    out = tmp_path / "name"
    (tmp_path / "test_waiting.py").write_text(WAITING.format(out=str(out)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent)]))
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                            "--rootdir", str(tmp_path), str(tmp_path / "test_waiting.py")],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    name = ""
    try:
        deadline = time.monotonic() + 120
        while not out.exists() or not out.read_text():
            assert run.poll() is None, run.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the inner test never started"
            time.sleep(0.05)
        name = out.read_text()
        assert _exists(name)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=120)
        assert not _exists(name), f"{name} outlived the run ended by SIGTERM"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if name and _exists(name):
            subprocess.run(["ip", "netns", "del", name], check=False)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_runs_namespaces_go_at_the_next_run():
    orphan = f"nmc-{_dead_pid()}-0123456789"
    live = netns_name()
    for name in (orphan, live):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        removed = remove_orphan_namespaces()
        assert orphan in removed and not _exists(orphan)
        assert live not in removed and _exists(live), "a namespace of a live run was deleted"
    finally:
        for name in (orphan, live):
            if _exists(name):
                subprocess.run(["ip", "netns", "del", name], check=False)
