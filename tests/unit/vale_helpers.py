"""Helpers for the VALE tests: frames, port agents in child processes, the
C programs of tests/engine built with the engine sources, the switch dump.

Fixtures here are imported by the test modules (``from vale_helpers import
agents``); the runtime directory and child-process fixtures (``rundir``,
``procs``) come from tests/conftest.py.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from testlib import REPO_ROOT, engine_include_flags, engine_make_var, parse_kv, skip_or_fail

CSRC = REPO_ROOT / "csrc"
ENGINE_TESTS = REPO_ROOT / "tests" / "engine"
CHILD = Path(__file__).resolve().parent / "vale_child.py"

ASAN_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
ASAN_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:abort_on_error=0:detect_leaks=1:allocator_may_return_null=0",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}

BCAST = b"\xff" * 6
ETH_TEST = b"\x88\xb5"


def mac(i: int) -> bytes:
    """Locally administered unicast MAC 02:00:00:00:00:i."""
    return bytes([2, 0, 0, 0, 0, i])


def frame(dst: bytes, src: bytes, payload: bytes = b"", length: int = 60, ethertype: bytes = ETH_TEST) -> bytes:
    """An Ethernet frame of at least `length` bytes (payload, then zero fill)."""
    f = dst + src + ethertype + payload
    return f + bytes(max(0, length - len(f)))


def pattern(n: int, seed: int = 0) -> bytes:
    return bytes((seed * 37 + i * 7 + (i >> 8)) & 0xff for i in range(n))


# ---------------------------------------------------------------------------
# agents: one port per child process, driven by JSON commands


class Agent:
    """A child process holding one port (see vale_child.py)."""

    def __init__(self, spec: str, env: dict, options: Optional[dict] = None) -> None:
        self.spec = spec
        self.popen = subprocess.Popen([sys.executable, str(CHILD), "agent", spec, json.dumps(options or {})],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env=env, cwd=REPO_ROOT, text=True, bufsize=1)
        self.pid = self.popen.pid
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._err: List[str] = []
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()
        self.info = self._reply(timeout=30)
        if "error" in self.info:
            self.error = self.info
        else:
            self.error = None

    def _pump_out(self) -> None:
        for line in self.popen.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_err(self) -> None:
        for line in self.popen.stderr:
            self._err.append(line)

    def _reply(self, timeout: float = 30.0) -> dict:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"agent {self.spec} (pid {self.pid}) did not answer within {timeout} s\n"
                        + "".join(self._err)[-3000:])
        if line is None:
            self._lines.put(None)
            self.popen.wait(timeout=10)
            pytest.fail(f"agent {self.spec} (pid {self.pid}) exited ({self.popen.returncode})\n"
                        + "".join(self._err)[-3000:])
        return json.loads(line)

    def call(self, op: str, **kw) -> dict:
        self.popen.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.popen.stdin.flush()
        reply = self._reply()
        if "error" in reply and not kw.get("allow_error"):
            pytest.fail(f"agent {self.spec}: {op} failed: {reply}")
        return reply

    # conveniences
    def send(self, frames: List[bytes], ring: Optional[int] = None) -> int:
        return self.call("tx", frames=[f.hex() for f in frames], ring=ring)["queued"]

    def send_indirect(self, packets: List[List[bytes]], ring: Optional[int] = None) -> int:
        kw = {} if ring is None else {"ring": ring}
        return self.call("tx_indirect", packets=[[f.hex() for f in p] for p in packets], **kw)["queued"]

    def slots(self) -> List[dict]:
        out = self.call("rx", mode="raw")["slots"]
        for s in out:
            s["data"] = bytes.fromhex(s["data"])
        return out

    def packets(self, mode: str = "dispatch") -> List[dict]:
        out = self.call("rx", mode=mode)["packets"]
        for p in out:
            p["data"] = bytes.fromhex(p["data"])
        return out

    def frames(self) -> List[bytes]:
        """Whole received frames, MOREFRAG chains joined (raw slot walk)."""
        return [p["data"] for p in chains(self.slots())]

    def stats(self) -> dict:
        return self.call("stats")

    def close(self) -> None:
        if self.popen.poll() is None:
            self.call("close")
            self.popen.wait(timeout=10)

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait(timeout=10)


def chains(slots: List[dict]) -> List[dict]:
    """Group raw RX slots (in ring order) into packets: {ring, data, slots}."""
    out, cur = [], None
    for s in slots:
        if cur is None:
            cur = {"ring": s["ring"], "data": b"", "slots": []}
        assert s["ring"] == cur["ring"], f"chain crosses rings: {s}"
        cur["data"] += s["data"]
        cur["slots"].append(s)
        if not s["flags"] & 0x20:
            out.append(cur)
            cur = None
    assert cur is None, f"unterminated NS_MOREFRAG chain: {cur['slots']}"
    return out


class Agents:
    def __init__(self, env: dict) -> None:
        self.env = env
        self.all: List[Agent] = []

    def open(self, spec: str, **options) -> Agent:
        a = Agent(spec, self.env, options)
        self.all.append(a)
        if a.error:
            pytest.fail(f"couldn't open {spec}: {a.error}")
        return a

    def try_open(self, spec: str, **options) -> Agent:
        a = Agent(spec, self.env, options)
        self.all.append(a)
        return a

    def close(self) -> None:
        for a in self.all:
            if a.popen.poll() is None:
                a.kill()


@pytest.fixture
def agents(procs) -> Agents:
    """Port agents in child processes, killed by pid at teardown."""
    pool = Agents(procs.env)
    yield pool
    pool.close()


# ---------------------------------------------------------------------------
# C programs built with the engine sources


def _engine_sources() -> List[Path]:
    return [CSRC / s for s in engine_make_var("SRCS")]


_BUILD_DIR: Optional[Path] = None
_BUILT: Dict[tuple, Path] = {}


def _build_dir() -> Path:
    global _BUILD_DIR
    if _BUILD_DIR is None:
        _BUILD_DIR = Path(tempfile.mkdtemp(prefix="nmc-vale-build-"))
        atexit.register(shutil.rmtree, _BUILD_DIR, True)
    return _BUILD_DIR


def cc() -> str:
    c = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not c:
        skip_or_fail("no C compiler (cc) on PATH")
    return c


def sanitizers_unavailable() -> Optional[str]:
    """Why -fsanitize=address,undefined programs cannot be built and run, or None."""
    work = _build_dir()
    src = work / "asan_probe.c"
    src.write_text("#include <stdlib.h>\nint main(void) { char *p = malloc(8); p[1] = 2;"
                   " int r = p[1] - 2; free(p); return r; }\n")
    exe = work / "asan_probe"
    proc = subprocess.run([cc(), *ASAN_FLAGS, str(src), "-o", str(exe)], capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        return "the C compiler cannot build with -fsanitize=address,undefined: " + proc.stderr[-400:]
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, env=dict(os.environ, **ASAN_ENV))
    if proc.returncode != 0:
        return "sanitized programs do not run here: " + proc.stderr[-400:]
    return None


def build(program: str, sanitize: bool = False, with_engine: bool = True) -> Path:
    """tests/engine/<program>.c compiled together with the engine sources
    (once per test session and set of flags)."""
    key = (program, sanitize, with_engine)
    if key in _BUILT:
        return _BUILT[key]
    sources = [ENGINE_TESTS / f"{program}.c"] + (_engine_sources() if with_engine else [])
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources + sorted(CSRC.rglob("*.h")))).hexdigest()[:12]
    exe = _build_dir() / f"{program}-{'asan' if sanitize else 'o2'}-{digest}"
    flags = ["-O1", "-g", *ASAN_FLAGS] if sanitize else ["-O2", "-g"]
    cmd = [cc(), "-std=gnu11", *flags, "-Wall", "-Wextra", "-Werror", *engine_include_flags(),
           *map(str, sources), "-lpthread", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"couldn't build {program}:\n{' '.join(cmd)}\n{proc.stderr[-4000:]}"
    _BUILT[key] = exe
    return exe


@pytest.fixture(scope="session")
def vale_traffic() -> Path:
    return build("vale_traffic")


@pytest.fixture(scope="session")
def vale_swdump() -> Path:
    return build("vale_swdump", with_engine=False)


def swdump(exe: Path, rundir: Path, sw: str = "vale0") -> Dict[str, dict]:
    """Live entries of the switch file, by port name (no reaping)."""
    proc = subprocess.run([str(exe), str(rundir / f"vale.{sw}")], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    ports = {}
    for line in proc.stdout.splitlines():
        if line.startswith("port "):
            kv = parse_kv(line)
            ports[kv["name"]] = {k: (int(v) if v.isdigit() else v) for k, v in kv.items()}
            ports[kv["name"]]["idx"] = int(line.split()[1])
    return ports


# ---------------------------------------------------------------------------
# small utilities


def done_line(proc) -> dict:
    """key=value pairs of the last 'done' line of a finished program."""
    lines = [ln for ln in proc.out if ln.startswith("done ")]
    assert lines, "no 'done' line\n" + proc.describe()
    return {k: (int(v) if v.isdigit() else v) for k, v in parse_kv(lines[-1]).items()}


def bad_lines(proc) -> List[str]:
    return [ln.rstrip() for ln in proc.out if ln.startswith("bad ")]


def max_seen(proc, ident: int) -> int:
    best = -1
    for line in list(proc.out):
        if line.startswith("seen "):
            parts = line.split()
            if len(parts) == 3 and int(parts[1]) == ident:
                best = max(best, int(parts[2]))
    return best


def max_progress(proc, ident: int) -> int:
    best = -1
    for line in list(proc.out):
        if line.startswith("progress "):
            parts = line.split()
            if len(parts) == 3 and int(parts[1]) == ident:
                best = max(best, int(parts[2]))
    return best


def wait_until(pred, timeout: float, what: str, describe=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.01)
    pytest.fail(f"{what}: not within {timeout} s\n{describe()}")


def per_sender(ids: str) -> Dict[int, tuple]:
    """'1:500:499,2:10:20' -> {1: (500, 499), 2: (10, 20)} (count, last seq)."""
    if ids == "-":
        return {}
    out = {}
    for item in ids.split(","):
        i, c, last = item.split(":")
        out[int(i)] = (int(c), int(last))
    return out
