"""The messages of a failed open, read as a new user reads them: a bad
option says "bad option <name>: <what it takes>" once, a setting from the
environment names its variable, and a VALE name without its port is a
port-name error pointing at where the port is missing."""
from __future__ import annotations

import subprocess
import sys

import pytest

import nmcompat
from nmcompat.errors import OptionError, PortSpecError

TAKES = "must be 0/best, 1/native or 2/emulated, not 'q'"


@pytest.mark.parametrize("name", ["netmap:om{1", "netmap:nosuchnic0"])
def test_bad_admode_says_the_word_once(rundir, name):
    with pytest.raises(OptionError) as ei:
        nmcompat.open(name, admode="q")
    assert ei.value.strerror == f"couldn't open {name}: bad option admode: {TAKES}"
    assert ei.value.option == "admode"


@pytest.mark.parametrize("name", ["netmap:om{1", "netmap:nosuchnic0"])
def test_bad_backend_says_what_it_takes(rundir, name):
    with pytest.raises(OptionError) as ei:
        nmcompat.open(name, backend="zz")
    assert ei.value.strerror == (f"couldn't open {name}: bad option backend: takes 'native', "
                                 "'afxdp', 'afpacket' or None, not 'zz'")


@pytest.mark.parametrize("variable,option", [("NMCOMPAT_ADMODE", "admode"),
                                             ("NMCOMPAT_BACKEND", "backend")])
def test_bad_environment_setting_names_the_variable(rundir, monkeypatch, variable, option):
    monkeypatch.setenv(variable, "q")
    with pytest.raises(OptionError) as ei:
        nmcompat.open("netmap:nosuchnic0")
    head = f"couldn't open netmap:nosuchnic0: bad environment variable {variable}: "
    assert ei.value.strerror.startswith(head) and ei.value.strerror.endswith(", not 'q'"), \
        ei.value.strerror
    assert ei.value.option == option


@pytest.mark.parametrize("tool", ["status", "gc", "check"])
def test_rundir_tools_do_not_read_unrelated_settings(rundir, tool):
    """status and gc died with a traceback on NMCOMPAT_ADMODE=q (they read
    every setting to find the runtime directory)."""
    env_run = subprocess.run([sys.executable, "-m", "nmcompat.tools", tool],
                             capture_output=True, text=True, timeout=60,
                             env={**__import__("os").environ, "NMCOMPAT_ADMODE": "q",
                                  "NMCOMPAT_BUF_NUM": "x"})
    assert env_run.returncode == 0 and "Traceback" not in env_run.stderr, env_run


def test_engine_backend_forced_on_a_nic_name(rundir):
    with pytest.raises(OptionError) as ei:
        nmcompat.open("netmap:nosuchnic0", backend="pipe")
    assert ei.value.strerror == ("couldn't open netmap:nosuchnic0: bad option backend: this name "
                                 "is a NIC's, served by 'native', 'afxdp', 'afpacket', not 'pipe'")


@pytest.mark.parametrize("name,grammar,at", [("vale0:", "nmport", 6), ("vale:", "nmport", 5),
                                             ("netmap:vale0:", "nmport", 13), ("vale0:/R", "nmport", 6),
                                             ("vale0:-1", "nmport", 6), ("vale0:", "legacy", 6)])
def test_vale_name_without_port_is_a_port_name_error(rundir, name, grammar, at):
    """open('vale0:') raised a plain NmcompatOSError: it is a bad name."""
    with pytest.raises(PortSpecError) as ei:
        nmcompat.open(name, grammar=grammar)
    switch = name.split(":")[-2] if name.startswith("netmap:") else name.split(":")[0]
    assert ei.value.position == at and ei.value.text == name, (ei.value.position, str(ei.value))
    assert ei.value.reason == f"a VALE port name needs a port after '{switch}:' (as in {switch}:a)"
    assert str(ei.value).splitlines()[-1] == "  " + " " * at + "^"
    assert rundir_is_empty(rundir)


def rundir_is_empty(path) -> bool:
    from testlib import rundir_entries
    return [n for n in rundir_entries(path) if n != "lock"] == []


def test_name_without_prefix_shows_the_name_to_type(rundir):
    """README and netmap's docs write pipes as x{1; open() takes netmap:x{1."""
    with pytest.raises(PortSpecError) as ei:
        nmcompat.open("x{1")
    assert ei.value.reason == ("invalid request, prefix unknown or missing (a port name starts "
                               "with 'netmap:' or 'vale': 'netmap:x{1')") and ei.value.position == 0
    with pytest.raises(PortSpecError) as ei:
        nmcompat.open("nemtap:x{1")             # a misspelled prefix: no suggestion
    assert ei.value.reason == ("invalid request, prefix unknown or missing (a port name starts "
                               "with 'netmap:' or 'vale')") and ei.value.position == 0
    with pytest.raises(PortSpecError) as ei:
        nmcompat.open("")
    assert ei.value.reason == ("invalid request, prefix unknown or missing (a port name starts "
                               "with 'netmap:' or 'vale')")
