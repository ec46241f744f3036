"""The engine's environment variables (nmcompat/config.py) are never read
past a bad value.  The engine checks each where it reads it: NMCOMPAT_SPIN_US
when a port is opened or adopted without spin_us, NMCOMPAT_BUF_NUM and
_BUF_SIZE when a region is made without buf_num/buf_size,
NMCOMPAT_BRIDGE_BATCH when a switch is made, NMCOMPAT_VALE_STREAM_MIN at
VALE opens: a value that is set but not a number in its range is EINVAL
(what a C program or the /dev/netmap emulation gets).  The Python layer
checks them first, at any open that may read them, and names the variable.
Before, the engine took its default in silence."""
from __future__ import annotations

import errno

import pytest

import nmcompat
from nmcompat import config, vale
from nmcompat.errors import OptionError
from vale_helpers import swdump, vale_swdump  # noqa: F401

BAD = {
    "NMCOMPAT_SPIN_US": ["x", "-1", "20us", " 20", "2147483648"],
    "NMCOMPAT_BUF_NUM": ["x", "63", "16777217", "1_000"],
    "NMCOMPAT_BUF_SIZE": ["x", "0", "63", "100", "65600", "2k"],
    "NMCOMPAT_BRIDGE_BATCH": ["x", "0", "8193", "08"],
}
CASES = [(var, value) for var, values in BAD.items() for value in values]


def port_for(var: str) -> str:
    return "vale0:a" if var == "NMCOMPAT_BRIDGE_BATCH" else "netmap:strict{1"


@pytest.mark.parametrize("var, value", CASES)
def test_a_bad_value_fails_the_open_by_name(rundir, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(OptionError) as exc:
        nmcompat.open(port_for(var), rundir=str(rundir))
    assert exc.value.errno == errno.EINVAL
    assert f"bad environment variable {var}: " in str(exc.value) and repr(value) in str(exc.value)


@pytest.mark.parametrize("var, value", CASES)
def test_the_engine_refuses_it_where_it_reads_it(rundir, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    monkeypatch.setattr(config, "check_environment", lambda port, *names: None)
    with pytest.raises(OSError) as exc:
        nmcompat.open(port_for(var), rundir=str(rundir))
    assert exc.value.errno == errno.EINVAL


def test_explicit_values_win_over_a_bad_environment(rundir, monkeypatch):
    for var in ("NMCOMPAT_SPIN_US", "NMCOMPAT_BUF_NUM", "NMCOMPAT_BUF_SIZE"):
        monkeypatch.setenv(var, "x")
    with nmcompat.open("netmap:strict{1", rundir=str(rundir), spin_us=5, buf_size=1024,
                       buf_num=4096) as p:
        assert p.info.buf_size == 1024


def test_a_variable_a_port_does_not_read_does_not_concern_it(rundir, monkeypatch):
    monkeypatch.setenv("NMCOMPAT_BRIDGE_BATCH", "x")
    monkeypatch.setenv("NMCOMPAT_VALE_STREAM_MIN", "x")
    with nmcompat.open("netmap:strict{1", rundir=str(rundir)):
        pass


def test_the_batch_is_read_when_a_switch_is_made_only(rundir, monkeypatch, vale_swdump):
    monkeypatch.setenv("NMCOMPAT_BRIDGE_BATCH", "0x10")
    with nmcompat.open("vale0:a", rundir=str(rundir)):
        dump = __import__("subprocess").run([str(vale_swdump), str(rundir / "vale.vale0")],
                                            capture_output=True, text=True, timeout=30).stdout
        assert " batch=16" in dump.splitlines()[0], dump
        monkeypatch.setenv("NMCOMPAT_BRIDGE_BATCH", "x")
        monkeypatch.setattr(config, "check_environment", lambda port, *names: None)
        with nmcompat.open("vale0:b", rundir=str(rundir)):     # the switch exists
            pass


def test_good_values_are_the_ones_used(rundir, monkeypatch):
    monkeypatch.setenv("NMCOMPAT_BUF_SIZE", "0x400")
    monkeypatch.setenv("NMCOMPAT_BUF_NUM", "0")
    monkeypatch.setenv("NMCOMPAT_SPIN_US", "0")
    with nmcompat.open("netmap:strict{1", rundir=str(rundir)) as p:
        assert p.info.buf_size == 1024
    with nmcompat.open("vale0:a", rundir=str(rundir)) as p:
        assert p.info.buf_size == 1024


def test_newif_and_attach_name_a_bad_variable(rundir, monkeypatch):
    rd = str(rundir)
    monkeypatch.setenv("NMCOMPAT_BUF_SIZE", "100")
    with pytest.raises(OSError) as exc:
        vale.newif("vi7", rundir=rd)
    assert exc.value.errno == errno.EINVAL and "NMCOMPAT_BUF_SIZE" in str(exc.value)
    monkeypatch.setattr(config, "env_problem", lambda *names: None)
    with pytest.raises(OSError) as exc:                         # the engine, on its own
        vale.newif("vi7", rundir=rd)
    assert exc.value.errno == errno.EINVAL
    monkeypatch.undo()
    vale.newif("vi7", rundir=rd)
    try:
        monkeypatch.setenv("NMCOMPAT_BRIDGE_BATCH", "0")
        with pytest.raises(OSError) as exc:
            vale.attach("vale0:vi7", rundir=rd)
        assert exc.value.errno == errno.EINVAL and "NMCOMPAT_BRIDGE_BATCH" in str(exc.value)
        monkeypatch.setattr(config, "env_problem", lambda *names: None)
        with pytest.raises(OSError) as exc:                     # it would make the switch
            vale.attach("vale0:vi7", rundir=rd)
        assert exc.value.errno == errno.EINVAL
    finally:
        monkeypatch.undo()
        vale.delif("vi7", rundir=rd)


def test_a_settings_report_says_what_is_wrong(monkeypatch):
    monkeypatch.setenv("NMCOMPAT_BUF_SIZE", "100")
    monkeypatch.setenv("NMCOMPAT_SPIN_US", "abc")
    report = config.settings()
    assert report["buf_size"].startswith("invalid (") and "multiple of 64" in report["buf_size"]
    assert report["spin_us"] == "invalid (takes a number in 0..2147483647, not 'abc')"


def test_exec_names_a_bad_variable_before_the_program_starts(rundir, tmp_path):
    """A program under the /dev/netmap emulation would only get EINVAL."""
    import os
    import subprocess
    import sys
    marker = tmp_path / "ran"
    env = dict(os.environ, NMCOMPAT_BUF_SIZE="100", NMCOMPAT_RUNDIR=str(rundir))
    out = subprocess.run([sys.executable, "-m", "nmcompat.tools", "exec", "--", "/bin/touch", str(marker)],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2 and not marker.exists(), out
    assert "bad environment variable NMCOMPAT_BUF_SIZE: " in out.stderr and "'100'" in out.stderr, out.stderr


def test_a_refused_switch_leaves_nothing_behind(rundir, monkeypatch):
    from testlib import rundir_entries
    monkeypatch.setenv("NMCOMPAT_BRIDGE_BATCH", "x")
    monkeypatch.setattr(config, "check_environment", lambda port, *names: None)
    with pytest.raises(OSError) as exc:
        nmcompat.open("vale7:a", rundir=str(rundir))
    assert exc.value.errno == errno.EINVAL
    assert rundir_entries(rundir) == ["lock"]


def test_a_port_in_a_region_that_exists_reads_no_region_variable(rundir, monkeypatch):
    """@share (and @mem_id, @extmem) name the region: neither layer reads
    NMCOMPAT_BUF_NUM or _BUF_SIZE for it, with extra buffers too."""
    with nmcompat.open("netmap:r{1", rundir=str(rundir)):
        monkeypatch.setenv("NMCOMPAT_BUF_NUM", "x")
        monkeypatch.setenv("NMCOMPAT_BUF_SIZE", "x")
        with nmcompat.open("netmap:r}1", rundir=str(rundir), extra_bufs=8):
            with nmcompat.open("netmap:s{1@share=netmap:r}1", rundir=str(rundir), extra_bufs=8):
                pass


def test_a_vale_ports_buffer_size_names_a_bad_variable(monkeypatch):
    """config.vale_buf_size(): 2112 unset, the variable when good, and never
    2112 in silence for a bad one (the engine would refuse the open)."""
    monkeypatch.delenv("NMCOMPAT_BUF_SIZE", raising=False)
    assert config.vale_buf_size() == 2112 and config.settings()["vale_buf_size"] == 2112
    monkeypatch.setenv("NMCOMPAT_BUF_SIZE", "4096")
    assert config.vale_buf_size() == 4096
    monkeypatch.setenv("NMCOMPAT_BUF_SIZE", "2000")
    with pytest.raises(OptionError) as ei:
        config.vale_buf_size()
    assert "NMCOMPAT_BUF_SIZE" in str(ei.value) and "multiple of 64" in str(ei.value)
    assert config.settings()["vale_buf_size"].startswith("invalid (")
