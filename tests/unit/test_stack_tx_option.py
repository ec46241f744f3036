"""stack_tx (NMCOMPAT_STACK_TX): a NIC-port option; a pipe refuses a value
other than the default, and a bad value or setting is an error, not ignored."""
from __future__ import annotations

import pytest

import nmcompat
from nmcompat import config


def test_a_pipe_refuses_stack_tx(rundir):
    with pytest.raises(nmcompat.OptionError) as ei:
        nmcompat.open("netmap:st{1", rundir=rundir, stack_tx=True)
    assert "stack_tx" in str(ei.value), ei.value


def test_a_bad_stack_tx_value_is_refused(rundir):
    with pytest.raises(nmcompat.OptionError) as ei:
        nmcompat.open("netmap:st{1", rundir=rundir, stack_tx="yes")
    assert "stack_tx" in str(ei.value), ei.value


def test_a_pipe_opens_with_the_setting_on(rundir, monkeypatch):
    """The setting is for NIC ports; it does not make other ports fail."""
    monkeypatch.setenv("NMCOMPAT_STACK_TX", "1")
    nmcompat.open("netmap:st{1", rundir=rundir).close()


@pytest.mark.parametrize("raw, want", [("", False), ("0", False), ("1", True)])
def test_the_setting(monkeypatch, raw, want):
    monkeypatch.setenv("NMCOMPAT_STACK_TX", raw)
    assert config.stack_tx() is want
    assert config.stack_tx(not want) is (not want)      # the keyword beats the setting


def test_a_bad_setting_says_so(monkeypatch):
    monkeypatch.setenv("NMCOMPAT_STACK_TX", "2")
    with pytest.raises(ValueError, match="NMCOMPAT_STACK_TX must be 0 or 1, not '2'"):
        config.stack_tx()
