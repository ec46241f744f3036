"""The test harness's process pool: what a failing test leaves running."""
import os
import signal
import time

import pytest

from tests.testlib import Procs


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """pid no longer names a live process (a zombie of ours is reaped by its
    parent; one of init's is gone once init reaps it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    time.sleep(0.01)
                    continue
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("killed_first", [False, True], ids=["at-teardown", "by-the-test"])
def test_close_ends_the_children_of_a_child(killed_first):
    """A child that started a program of its own (as `nmcompat exec` does)
    must not leave that program running after teardown, whether teardown
    kills the child or the test already did (and reaped it)."""
    pool = Procs(dict(os.environ))
    parent = pool.python("""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print("child", child.pid, flush=True)
        time.sleep(600)
    """)
    grandchild = int(parent.expect("child").split()[1])
    if killed_first:
        parent.kill(signal.SIGKILL)
        assert not _gone(grandchild, timeout=0.2), "the test's kill alone ends only the child"
    pool.close()
    assert _gone(grandchild), f"process {grandchild} outlived its parent's teardown"
