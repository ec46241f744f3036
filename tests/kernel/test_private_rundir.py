"""Every kernel test has a runtime directory of its own (conftest.py's
autouse fixture), also one that does not ask for ``rundir``: its ports and
its children's are made there, never in the shared default directory, and
the directory goes when the test ends."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import nmcompat
from testlib import SHM, private_rundir

pytestmark = pytest.mark.kernel

DEFAULT = Path(f"/dev/shm/nmcompat-{os.geteuid()}")
SMALL = dict(buf_num=1024, slots=64)
CHILD = "import nmcompat.config as c; print(c.rundir())"


def _assert_private(path: Path) -> None:
    st = path.stat()
    assert path.parent == SHM and path != DEFAULT, path
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid(), oct(st.st_mode)


def test_a_test_without_the_rundir_fixture_opens_its_ports_in_its_own_directory():
    here = Path(os.environ["NMCOMPAT_RUNDIR"])
    _assert_private(here)
    with nmcompat.open(f"netmap:own{os.getpid()}{{1", **SMALL) as port:
        assert Path(port.info.region).parent == here
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                           timeout=60, check=True)
    assert child.stdout.strip() == str(here)


def test_the_rundir_fixture_is_the_tests_own_directory(rundir):
    assert os.environ["NMCOMPAT_RUNDIR"] == str(rundir)
    _assert_private(rundir)


def test_a_private_directory_is_removed_with_what_was_left_open_in_it():
    mp = pytest.MonkeyPatch()
    made = private_rundir(mp)
    path = next(made)
    try:
        assert os.environ["NMCOMPAT_RUNDIR"] == str(path) != str(DEFAULT)
        _assert_private(path)
        port = nmcompat.open(f"netmap:left{os.getpid()}{{1", **SMALL)
        assert Path(port.info.region).parent == path
        with pytest.raises(StopIteration):
            next(made)
        assert port._closed and not path.exists()
    finally:
        next(made, None)            # removed also when the test failed before
        mp.undo()
