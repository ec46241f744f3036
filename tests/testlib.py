"""Shared test helpers and fixtures: a private runtime directory per test, child processes
that are always reaped, and the C test programs built against the engine."""
from __future__ import annotations

import gc
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import List, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CSRC = REPO_ROOT / "csrc"
ENGINE_TESTS = REPO_ROOT / "tests" / "engine"
BENCH_DIR = REPO_ROOT / "bench"
SHM = Path("/dev/shm")


def bench_command(name: str, *args: str) -> List[str]:
    """./run bench NAME ARGS, as a command run with bench_env()."""
    return [sys.executable, "-m", "nmcompat_bench", name, *args]


def bench_env() -> dict:
    """The environment for bench_command: bench/ on PYTHONPATH (it is not installed)."""
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=str(BENCH_DIR) + (os.pathsep + path if path else ""))


CPU_COLUMNS = ("tx_cpu_ns_per_pkt", "rx_cpu_ns_per_pkt", "cpu_ns_per_pkt")


def assert_cpu_columns(entry: dict, sides=("tx", "rx")) -> None:
    """A benchmark result's CPU time per packet: each measured side positive and
    finite, and the total their sum (a sanity check, never a speed)."""
    for side in sides:
        value = entry[f"{side}_cpu_ns_per_pkt"]
        assert isinstance(value, (int, float)) and 0 < value < 1e9, (side, entry)
    if set(sides) == {"tx", "rx"}:
        assert entry["cpu_ns_per_pkt"] == pytest.approx(
            entry["tx_cpu_ns_per_pkt"] + entry["rx_cpu_ns_per_pkt"], abs=0.2)


def engine_make_var(name: str) -> List[str]:
    """A list variable of csrc/Makefile (SRCS, INCDIRS), the engine's one list."""
    m = re.search(rf"^{name}\s*=\s*(.+)$", (CSRC / "Makefile").read_text(), re.M)
    assert m, f"csrc/Makefile has no {name} line"
    return m.group(1).split()


def engine_include_flags() -> List[str]:
    """-I flags for code built against the engine's internal headers."""
    return [f"-I{CSRC / d}" for d in engine_make_var("INCDIRS")]

SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer"]
SANITIZER_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:abort_on_error=0:detect_leaks=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}


def strict() -> bool:
    return os.environ.get("NMCOMPAT_STRICT") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip, unless NMCOMPAT_STRICT=1 asks for every test to really run."""
    if strict():
        pytest.fail(reason + " (NMCOMPAT_STRICT=1)")
    pytest.skip(reason)


# ---------------------------------------------------------------------------
# runtime directory


def _close_leftover_ports(path: Path) -> None:
    """Close ports a failed test left open in path (a traceback keeps them
    alive; closed later, they would recreate the directory)."""
    gc.collect()
    if not any(path.rglob("mem.*")):
        return
    import nmcompat
    for obj in gc.get_objects():
        if isinstance(obj, nmcompat.Port) and not obj._closed \
                and obj.info.region.startswith(str(path) + os.sep):
            try:
                obj.close()
            except OSError:
                pass


def _remove_rundir(path: Path) -> None:
    _close_leftover_ports(path)
    shutil.rmtree(path, ignore_errors=True)


def private_rundir(monkeypatch):
    """Yields a fresh tmpfs runtime directory (mode 0700), set as
    $NMCOMPAT_RUNDIR (child processes inherit it), and removes it afterwards
    with whatever a failed test left open in it."""
    if not SHM.is_dir():
        skip_or_fail("/dev/shm is missing")
    path = Path(tempfile.mkdtemp(prefix="nmc-test-", dir=SHM))
    os.chmod(path, 0o700)
    monkeypatch.setenv("NMCOMPAT_RUNDIR", str(path))
    yield path
    _remove_rundir(path)


@pytest.fixture
def rundir(monkeypatch) -> Path:
    """A fresh private tmpfs runtime directory, set as $NMCOMPAT_RUNDIR."""
    yield from private_rundir(monkeypatch)


def rundir_entries(path: Path) -> List[str]:
    """What is in a runtime directory, but for the spare regions a close
    keeps for the next region of their shape (csrc/core/spare.c): the engine's
    cache, not a leak.  Each is checked to be one: named by a link spare.<k>
    (k < 4), with no port, no holder, and every buffer free; its files'
    second names in wake/ go with it.  The entries of the directory wake/
    (sockets, second names of region files) are listed as wake/<name>;
    wake/ itself, which stays, is not listed."""
    from nmcompat import rundir as rundir_lib

    if not path.exists():
        return []
    names = sorted(os.listdir(path))
    if "wake" in names:             # the ports' sockets (csrc/core/wake.c); the directory itself stays
        names.remove("wake")
        names = sorted(names + [f"wake/{n}" for n in os.listdir(path / "wake")])
    spares = set()
    for name in names:
        if not name.startswith("spare."):
            continue
        target = os.readlink(path / name)
        mem_id = int(target.split(".", 1)[1])
        assert name in ("spare.0", "spare.1", "spare.2", "spare.3"), name
        st = rundir_lib.region(str(path), mem_id)
        assert st["spare"] and not st["ports"] and not st["holders"], (name, st)
        assert st["buf_free"] == st["buf_num"] - 2, ("a spare with buffers in use", name, st)
        seconds = {f"wake/mem.{mem_id}.ctl": f"ctl.{mem_id}", f"wake/mem.{mem_id}.mem": target}
        for second, first in seconds.items():   # a spare keeps its files' second names (region.c)
            assert os.path.samefile(path / second, path / first), (second, first)
        spares |= {name, target, f"ctl.{mem_id}", *seconds}
    return [n for n in names if n not in spares]


# ---------------------------------------------------------------------------
# child processes


class Proc:
    """A child process whose stdout lines are collected by a thread, so a
    test can wait for one line with a timeout.  It leads a process group of
    its own, so that what it starts (the program under `nmcompat exec`) can
    be ended with it."""

    def __init__(self, argv: List[str], env: dict, cwd: Optional[Path] = None) -> None:
        self.argv = argv
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                      text=True, bufsize=1, process_group=0)
        self.pid = self.popen.pid
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.out: List[str] = []
        self.err: List[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.popen.stdout, self.out, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.popen.stderr, self.err, False), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream, sink: List[str], is_stdout: bool) -> None:
        for line in stream:
            sink.append(line)
            if is_stdout:
                self._lines.put(line)
        if is_stdout:
            self._lines.put(None)

    def describe(self) -> str:
        return (f"process {self.pid} {' '.join(map(str, self.argv))[:300]}\n"
                f"--- stdout ---\n{''.join(self.out)[-4000:]}"
                f"--- stderr ---\n{''.join(self.err)[-4000:]}")

    def expect(self, prefix: str, timeout: float = 10.0) -> str:
        """The next stdout line starting with prefix (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no line starting with {prefix!r} within {timeout} s\n" + self.describe())
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self._lines.put(None)
                self.popen.wait(timeout=5)
                pytest.fail(f"process exited ({self.popen.returncode}) before printing {prefix!r}\n"
                            + self.describe())
            if line.startswith(prefix):
                return line.rstrip("\n")

    def wait(self, timeout: float = 30.0) -> int:
        """Exit status; a process still running after timeout fails the test."""
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"still running after {timeout} s, killed\n" + self.describe())
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def finish(self, timeout: float = 30.0) -> str:
        """Wait for a successful exit; returns stdout."""
        rc = self.wait(timeout)
        assert rc == 0, f"exit status {rc}\n" + self.describe()
        return "".join(self.out)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send sig to this process (by pid) and, for SIGKILL, reap it."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        if sig == signal.SIGKILL:
            self.popen.wait(timeout=10)
            for t in self._threads:
                t.join(timeout=5)

    def kill_group(self) -> None:
        """SIGKILL every process still in this process's group.  The group's
        number cannot be another's while a member lives; once our leader is
        reaped and its pid names a process again, the group is empty."""
        if self.popen.returncode is not None and os.path.exists(f"/proc/{self.pid}"):
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @property
    def stdout(self) -> str:
        return "".join(self.out)


class Procs:
    """Starts child processes and kills, by pid, every one still running at
    teardown."""

    def __init__(self, env: dict) -> None:
        self.env = env
        self._procs: List[Proc] = []

    def spawn(self, argv, env: Optional[dict] = None) -> Proc:
        full = dict(self.env)
        full.update(env or {})
        proc = Proc([str(a) for a in argv], full, cwd=REPO_ROOT)
        self._procs.append(proc)
        return proc

    def python(self, code: str, *args, env: Optional[dict] = None) -> Proc:
        """Run a Python snippet (dedented) in a new interpreter; sys.argv[1:]
        are args."""
        return self.spawn([sys.executable, "-c", textwrap.dedent(code), *args], env=env)

    def run_python(self, code: str, *args, timeout: float = 30.0, env: Optional[dict] = None) -> str:
        return self.python(code, *args, env=env).finish(timeout)

    def close(self) -> None:
        """SIGKILL every process group started here (a child killed by its
        test may have left children of its own), then reap the children."""
        for proc in self._procs:
            proc.kill_group()
            proc.kill(signal.SIGKILL)


@pytest.fixture
def procs(rundir) -> Procs:
    env = dict(os.environ)
    env["NMCOMPAT_RUNDIR"] = str(rundir)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    pool = Procs(env)
    yield pool
    pool.close()


def parse_kv(line: str) -> dict:
    """'done a=1 b=x:2' -> {'a': '1', 'b': 'x:2'}"""
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S+)", line))


# ---------------------------------------------------------------------------
# C test programs built against the engine


def _cc() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        skip_or_fail("no C compiler (cc) on PATH")
    return cc


def _build_engine(outdir: Path, extra_cflags: List[str]) -> None:
    """Build libnmcompat.so with the engine's own Makefile into outdir."""
    cc = _cc()
    if shutil.which("make") is None:
        skip_or_fail("'make' is not on PATH")
    outdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CC=cc, CFLAGS=" ".join(["-O1" if extra_cflags else "-O2", "-g", *extra_cflags]))
    proc = subprocess.run(["make", "-s", "-C", str(CSRC), f"OUT={outdir}"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"couldn't build the engine:\n{proc.stdout}{proc.stderr}"


def _link(outdir: Path, program: str, extra_cflags: List[str]) -> Path:
    """tests/engine/<program>.c linked against the libnmcompat.so in outdir."""
    cc = _cc()
    exe = outdir / program
    cmd = [cc, "-std=gnu11", "-O1" if extra_cflags else "-O2", "-g", "-Wall", "-Wextra", "-Werror",
           *extra_cflags, *engine_include_flags(),
           str(ENGINE_TESTS / f"{program}.c"), "-L", str(outdir), "-lnmcompat",
           f"-Wl,-rpath,{outdir}", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"couldn't build {program}:\n{' '.join(cmd)}\n{proc.stderr}"
    return exe


def _build(outdir: Path, program: str, extra_cflags: List[str]) -> Path:
    """Build the engine into outdir (with extra_cflags) and link
    tests/engine/<program>.c against it."""
    _build_engine(outdir, extra_cflags)
    return _link(outdir, program, extra_cflags)


def _sanitizers_work(cc: str, workdir: Path) -> Optional[str]:
    src = workdir / "probe.c"
    src.write_text("#include <stdlib.h>\nint main(void) { char *p = malloc(4); p[0] = 1;"
                   " int r = p[0] - 1; free(p); return r; }\n")
    exe = workdir / "probe"
    proc = subprocess.run([cc, *SANITIZE_FLAGS, str(src), "-o", str(exe)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return "the C compiler cannot build with -fsanitize=address,undefined: " + proc.stderr[-500:]
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **SANITIZER_ENV))
    if proc.returncode != 0:
        return "sanitized programs do not run here: " + proc.stderr[-500:]
    return None


@pytest.fixture(scope="session")
def engine_o2(tmp_path_factory) -> Path:
    """A directory holding libnmcompat.so built with -O2."""
    outdir = tmp_path_factory.mktemp("engine-o2")
    _build_engine(outdir, [])
    return outdir


@pytest.fixture(scope="session")
def pipe_stream(engine_o2) -> Path:
    """tests/engine/pipe_stream built against the engine (-O2)."""
    return _link(engine_o2, "pipe_stream", [])


@pytest.fixture(scope="session")
def swap_kill(engine_o2) -> Path:
    """tests/engine/swap_kill built against the engine (-O2)."""
    return _link(engine_o2, "swap_kill", [])


@pytest.fixture(scope="session")
def engine_asan(tmp_path_factory) -> Path:
    """A directory holding libnmcompat.so built with AddressSanitizer and UBSan."""
    cc = _cc()
    work = tmp_path_factory.mktemp("engine-asan")
    why = _sanitizers_work(cc, work)
    if why:
        skip_or_fail(why)
    _build_engine(work, SANITIZE_FLAGS)
    return work


@pytest.fixture(scope="session")
def pipe_stream_asan(engine_asan) -> Path:
    """pipe_stream and the engine, both under AddressSanitizer and UBSan."""
    return _link(engine_asan, "pipe_stream", SANITIZE_FLAGS)


@pytest.fixture(scope="session")
def swap_kill_asan(engine_asan) -> Path:
    """swap_kill and the engine, both under AddressSanitizer and UBSan."""
    return _link(engine_asan, "swap_kill", SANITIZE_FLAGS)


@pytest.fixture(scope="session")
def ring_share(engine_o2) -> Path:
    """tests/engine/ring_share built against the engine (-O2)."""
    return _link(engine_o2, "ring_share", [])


@pytest.fixture(scope="session")
def ring_share_asan(engine_asan) -> Path:
    """ring_share and the engine, both under AddressSanitizer and UBSan."""
    return _link(engine_asan, "ring_share", SANITIZE_FLAGS)


# ---------------------------------------------------------------------------
# a Port shared between threads


def _wait_for(cond, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.0005)


def close_while_polling(open_port, count: int) -> int:
    """count times: a thread waits in port.poll(POLLIN, -1) on a fresh
    open_port(i), and close() from this thread must end that poll with
    PortClosed within a bounded time.  close() comes before the poll, while
    it is inside the engine, or while it sleeps (i % 3).  Returns count."""
    import nmcompat
    from nmcompat.errors import PortClosed
    for i in range(count):
        port, got = open_port(i), []

        def poller():
            try:
                got.append(port.poll(nmcompat.POLLIN, -1))
            except BaseException as exc:        # noqa: B902 - reported below
                got.append(exc)

        t = threading.Thread(target=poller)
        t.start()
        if i % 3:
            _wait_for(lambda: port.stats()["polls"] >= 1, "the poller to enter the engine")
        if i % 3 == 2:
            _wait_for(lambda: port.stats()["sleeps"] >= 1, "the poller to sleep")
        port.close()
        t.join(10)
        assert not t.is_alive(), f"{port.name}: poll() still waits after close()"
        exc = got[0]
        assert isinstance(exc, PortClosed) and isinstance(exc, OSError) and exc.errno == 9, \
            f"{port.name}: poll() ended with {exc!r}"
    return count


# ---------------------------------------------------------------------------
# waiting on a port's descriptor


def fd_readable(fd: int, how: str, timeout: float) -> bool:
    """Is fd readable within timeout seconds, asked with select, poll or epoll?"""
    import select
    if how == "select":
        return select.select([fd], [], [], timeout)[0] == [fd]
    if how == "poll":
        pl = select.poll()
        pl.register(fd, select.POLLIN)
        return any(ev & select.POLLIN for _, ev in pl.poll(int(timeout * 1000)))
    ep = select.epoll()
    try:
        ep.register(fd, select.EPOLLIN)
        return any(ev & select.EPOLLIN for _, ev in ep.poll(timeout))
    finally:
        ep.close()


def thread_waiting(tid: int, bound: float = 10.0) -> None:
    """Wait (bounded) until thread tid sleeps in the kernel, so that what the
    caller does next most likely happens while that thread waits.  Either
    order must work; this only makes the interesting one the usual one."""
    stat = f"/proc/self/task/{tid}/stat"
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        with open(stat) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "S":
                return
        time.sleep(0.001)
