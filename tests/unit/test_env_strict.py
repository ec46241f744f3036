"""The engine's environment variables (nmcompat/config.py) are never read
past a bad value: NMCOMPAT_SPIN_US, _BUF_NUM and _BUF_SIZE at every open,
_BRIDGE_BATCH and _VALE_STREAM_MIN at VALE opens.  A value that is set but
not a number in its range fails the open: with an OptionError naming the
variable from Python, with EINVAL from the engine itself (what a C program
or the /dev/netmap emulation gets); before, the engine took its default in
silence."""
from __future__ import annotations

import errno

import pytest

import nmcompat
from nmcompat import config
from nmcompat.errors import OptionError

BAD = {
    "NMCOMPAT_SPIN_US": ["x", "-1", "20us", " 20", "2147483648"],
    "NMCOMPAT_BUF_NUM": ["x", "63", "16777217", "1_000"],
    "NMCOMPAT_BUF_SIZE": ["x", "0", "63", "100", "65600", "2k"],
    "NMCOMPAT_BRIDGE_BATCH": ["x", "0", "8193", "08"],
}
CASES = [(var, value) for var, values in BAD.items() for value in values]
VALE_ONLY = {"NMCOMPAT_BRIDGE_BATCH"}


def port_for(var: str) -> str:
    return "vale0:a" if var in VALE_ONLY else "netmap:strict{1"


@pytest.mark.parametrize("var, value", CASES)
def test_a_bad_value_fails_the_open_by_name(rundir, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(OptionError) as exc:
        nmcompat.open(port_for(var), rundir=str(rundir))
    assert exc.value.errno == errno.EINVAL
    assert f"bad environment variable {var}: " in str(exc.value) and repr(value) in str(exc.value)


@pytest.mark.parametrize("var, value", CASES)
def test_the_engine_refuses_it_itself(rundir, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    monkeypatch.setattr(config, "check_environment", lambda port, vale=False: None)
    with pytest.raises(OSError) as exc:
        nmcompat.open(port_for(var), rundir=str(rundir))
    assert exc.value.errno == errno.EINVAL


def test_the_vale_variables_do_not_concern_a_pipe(rundir, monkeypatch):
    monkeypatch.setenv("NMCOMPAT_BRIDGE_BATCH", "x")
    monkeypatch.setenv("NMCOMPAT_VALE_STREAM_MIN", "x")
    with nmcompat.open("netmap:strict{1", rundir=str(rundir)):
        pass


def test_good_values_are_the_ones_used(rundir, monkeypatch):
    monkeypatch.setenv("NMCOMPAT_BUF_SIZE", "0x400")
    monkeypatch.setenv("NMCOMPAT_BUF_NUM", "0")
    monkeypatch.setenv("NMCOMPAT_SPIN_US", "0")
    monkeypatch.setenv("NMCOMPAT_BRIDGE_BATCH", "0x10")
    with nmcompat.open("netmap:strict{1", rundir=str(rundir)) as p:
        assert p.info.buf_size == 1024
    with nmcompat.open("vale0:a", rundir=str(rundir)) as p:
        assert p.info.buf_size == 1024


def test_a_settings_report_says_what_is_wrong(monkeypatch):
    monkeypatch.setenv("NMCOMPAT_BUF_SIZE", "100")
    monkeypatch.setenv("NMCOMPAT_SPIN_US", "abc")
    report = config.settings()
    assert report["buf_size"].startswith("invalid (") and "multiple of 64" in report["buf_size"]
    assert report["spin_us"].startswith("invalid (")
