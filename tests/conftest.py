"""Fixtures for every tier (defined in testlib.py, which test modules import
directly: a module named conftest exists in more than one folder)."""
from __future__ import annotations

import os

import pytest

from testlib import (engine_asan, engine_o2, pipe_stream, pipe_stream_asan, procs,  # noqa: F401
                     ring_share, ring_share_asan, rundir, swap_kill, swap_kill_asan)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """NMCOMPAT_STRICT=1 (CI): a skipped test is a failed test."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("NMCOMPAT_STRICT") == "1" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under NMCOMPAT_STRICT=1: {report.longrepr}"
