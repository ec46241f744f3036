"""Build and run tests/abi/abi_check.c against csrc/include/net/*.h.

abi_check pins every size, offset, constant and ioctl number of the
netmap API 14 headers (with _Static_assert, so a wrong header fails to
compile) and exercises the netmap_user.h ring helpers on a hand-built
region.  No root is needed.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = REPO_ROOT / "csrc" / "include"
ABI_CHECK_SRC = REPO_ROOT / "tests" / "abi" / "abi_check.c"

CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer", "-g"]
SANITIZER_ENV = {
    "ASAN_OPTIONS": "abort_on_error=0:halt_on_error=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}

# "sss.uuuuuu function [line] message", as printed by D()/RD()
DEBUG_LINE = re.compile(r"^\d{3}\.\d{6} (\w+) \[(\d+)\] (.*)$")


def _strict():
    return os.environ.get("NMCOMPAT_STRICT") == "1"


def _skip_or_fail(reason):
    if _strict():
        pytest.fail(reason + " (NMCOMPAT_STRICT=1)")
    pytest.skip(reason)


def _cc():
    cc = shutil.which("cc")
    if cc is None:
        _skip_or_fail("no C compiler named 'cc' on PATH")
    return cc


def _compile(cc, out, extra=()):
    cmd = [cc, *CFLAGS, *extra, "-I", str(INCLUDE_DIR), str(ABI_CHECK_SRC),
           "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (
        "couldn't compile abi_check.c:\n" + " ".join(cmd) + "\n" + proc.stderr)


def _run(exe, *args, env=None):
    run_env = dict(os.environ)
    run_env.update(env or {})
    return subprocess.run([str(exe), *args], capture_output=True, text=True,
                          timeout=120, env=run_env)


def _sanitizers_work(cc, tmp_path):
    """Return None if -fsanitize=address,undefined builds and runs, else why not."""
    src = tmp_path / "probe.c"
    exe = tmp_path / "probe"
    src.write_text("int main(void) { return 0; }\n")
    proc = subprocess.run([cc, *SANITIZE_FLAGS, str(src), "-o", str(exe)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:]
        return "cc does not support -fsanitize=address,undefined: " + \
            (last[0] if last else "exit status %d" % proc.returncode)
    run = _run(exe, env=SANITIZER_ENV)
    if run.returncode != 0:
        return "sanitized binaries do not run here: " + run.stderr.strip()[:200]
    return None


def test_abi_check(tmp_path):
    exe = tmp_path / "abi_check"
    _compile(_cc(), exe)
    proc = _run(exe, "--print")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "abi_check: OK" in proc.stdout
    assert "MISMATCH" not in proc.stdout + proc.stderr
    # the --print table really covers the pinned structures
    for name in ("struct netmap_ring", "struct netmap_if", "struct nmreq ",
                 "struct nmreq_header", "struct nmreq_register",
                 "struct nmreq_pools_info", "struct nmreq_opt_offsets",
                 "NIOCCTRL"):
        assert name in proc.stdout, name


def test_debug_macros_format(tmp_path):
    exe = tmp_path / "abi_check"
    _compile(_cc(), exe)
    proc = _run(exe, "--demo-debug")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [DEBUG_LINE.match(line) for line in proc.stderr.splitlines()]
    assert all(lines), proc.stderr
    messages = [m.group(3) for m in lines]
    assert messages[:2] == ["nmc debug demo 42",
                            "nmc debug demo without arguments"]
    assert all(m.group(1) == "nmc_test_debug_macros" for m in lines)
    # RD(3, ...) called 10 times in a tight loop: at most 3 lines per
    # second, so 3 (or up to 6 if the loop straddles a second boundary)
    rate_limited = [m for m in messages if m.startswith("nmc rate-limited")]
    assert 3 <= len(rate_limited) <= 6, messages


def test_abi_check_sanitized(tmp_path):
    cc = _cc()
    reason = _sanitizers_work(cc, tmp_path)
    if reason is not None:
        _skip_or_fail(reason)
    exe = tmp_path / "abi_check_san"
    _compile(cc, exe, SANITIZE_FLAGS)
    proc = _run(exe, "--demo-debug", env=SANITIZER_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "abi_check: OK" in proc.stdout
    assert "runtime error" not in proc.stderr
    assert "AddressSanitizer" not in proc.stderr
