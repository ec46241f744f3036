"""netmap's legacy C API (NETMAP_WITH_LIBS in <net/netmap_user.h>: nm_open,
nm_inject, nm_dispatch, nm_nextpkt, nm_close, nm_mmap, nm_parse) and
nmcompat-config.  tests/devnetmap/nm_legacy_api.c is built as a netmap
program is, `cc $(nmcompat-config --cflags) prog.c $(nmcompat-config --libs)`,
and run with no `nmcompat exec`: libnmcompat-netmap.so, linked before libc,
serves its /dev/netmap.  Built with --cflags only, it runs under exec."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cprograms import DEVNETMAP, NM_RAW
from testlib import SANITIZE_FLAGS, rundir_entries, skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "devnetmap" / "nm_legacy_api.c"
BIN = Path(sys.executable).parent
CONFIG = BIN / "nmcompat-config"
PACKAGE = ROOT / "nmcompat"
CFLAGS = "-O2 -g -Wall -Wextra -Werror"
# "sss.uuuuuu nm_open [line] message", as netmap's D() prints nm_open's failures
D_LINE = r"\d{3}\.\d{6} nm_open \[\d+\] "


def frame_len(i: int) -> int:
    """nm_legacy_api.c's frame_len()."""
    edges = {3: 2048, 13: 4096, 23: 2049, 33: 2047}
    if i % 50 in edges:
        return edges[i % 50]
    return 2050 + (i * 97) % 7000 if i % 5 == 4 else 60 + (i * 37) % 1455


def chains(n: int, buf_size: int = 2048) -> int:
    return sum(frame_len(i) > buf_size for i in range(n))


def config(*args: str) -> subprocess.CompletedProcess:
    if not CONFIG.exists():
        skip_or_fail(f"{CONFIG} is not installed (./run setup)")
    return subprocess.run([str(CONFIG), *args], capture_output=True, text=True, timeout=60)


def build(out: Path, source=SOURCE, libs: bool = True, extra: str = "", cc: str = "gcc") -> Path:
    """cc $(nmcompat-config --cflags) source $(nmcompat-config --libs), through a shell
    (source: a path, or a list of them)."""
    if not shutil.which(cc):
        skip_or_fail(f"{cc} is missing")
    if not CONFIG.exists():
        skip_or_fail(f"{CONFIG} is not installed (./run setup)")
    sources = " ".join(map(str, source if isinstance(source, (list, tuple)) else [source]))
    line = (f"{cc} {CFLAGS} {extra} $(nmcompat-config --cflags) {sources} -o {out}"
            + (" $(nmcompat-config --libs)" if libs else "") + " -lpthread")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, line + "\n" + proc.stderr[-3000:]
    return out


def run(prog: Path, *args, env=None, timeout=120) -> subprocess.CompletedProcess:
    env = dict(os.environ if env is None else env)
    env.pop("LD_PRELOAD", None)
    return subprocess.run([str(prog), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)


def nmexec(*argv, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmcompat.tools", "exec", "--", *map(str, argv)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def linked(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("nmlegacy") / "nm_legacy_api")


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """Built with --cflags only: nothing of nmcompat linked."""
    return build(tmp_path_factory.mktemp("nmlegacyplain") / "nm_legacy_api", libs=False)


# ---------------------------------------------------------------------------
# nmcompat-config


def test_config_prints_the_flags_together_or_apart_in_any_order():
    cflags, libs = config("--cflags"), config("--libs")
    assert cflags.returncode == 0 and libs.returncode == 0, (cflags.stderr, libs.stderr)
    include = Path(cflags.stdout.strip()[2:])
    assert cflags.stdout.strip().startswith("-I") and (include / "net" / "netmap_user.h").is_file()
    assert (include / "net" / "netmap.h").is_file() and (include / "nmcompat.h").is_file()
    pkg = PACKAGE.resolve()
    assert libs.stdout.split() == [f"-L{pkg}", "-lnmcompat-netmap", "-lnmcompat", f"-Wl,-rpath,{pkg}"]
    both = cflags.stdout.strip() + " " + libs.stdout.strip() + "\n"
    for args in (("--cflags", "--libs"), ("--libs", "--cflags"), ("--libs", "--cflags", "--libs")):
        out = config(*args)
        assert out.returncode == 0 and out.stdout == both and out.stderr == "", args


def test_config_refuses_unknown_options_and_helps():
    out = config("--cflags", "--static", "x")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines()[-1] == "nmcompat-config: unknown options: --static, x"
    out = config("--modversion")
    assert out.returncode == 2 and "unknown option: --modversion" in out.stderr
    out = config()
    assert out.returncode == 2 and "nothing asked" in out.stderr
    out = config("--help")
    assert out.returncode == 0 and out.stdout.startswith("usage: nmcompat-config") and "--libs" in out.stdout


# ---------------------------------------------------------------------------
# linked in: no exec


def test_the_linked_emulation_serves_the_programs_calls(linked, rundir):
    """libnmcompat-netmap.so comes before libc in the program's needed list, and
    the dynamic loader binds the program's open, ioctl, mmap, poll and close to
    it (LD_DEBUG=bindings), with no LD_PRELOAD."""
    if shutil.which("readelf"):
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                            subprocess.run(["readelf", "-d", str(linked)], capture_output=True,
                                           text=True).stdout)
        assert needed.index("libnmcompat-netmap.so") < needed.index("libc.so.6"), needed
    out = run(linked, "notxpoll", "lb", env=dict(os.environ, LD_DEBUG="bindings"))
    assert out.returncode == 0 and out.stdout == "notxpoll ok\n", out.stderr[-3000:]
    bound = {sym: lib for lib, sym in re.findall(
        r"binding file \S*nm_legacy_api \[0\] to (\S+) \[0\]: normal symbol `(\w+)'", out.stderr)}
    for sym in ("ioctl", "mmap", "poll", "close"):
        assert Path(bound[sym]).name == "libnmcompat-netmap.so", (sym, bound.get(sym))
    opens = [s for s in ("open", "open64", "__open_2", "__open64_2") if s in bound]
    assert opens and all(Path(bound[s]).name == "libnmcompat-netmap.so" for s in opens), bound
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("args", [("traffic", "cr{1", "cr}1", 20000), ("epoll", "valecr:a", "valecr:b", 5000),
                                  ("select", "cs{1", "cs}1", 5000)])
def test_a_raw_fd_program_linked_with_the_libs_needs_no_exec(tmp_path, rundir, args):
    """nm_raw.c speaks only netmap's fd interface; linked with --libs it runs
    as it is: open, NIOCCTRL, mmap, the syncs, poll, select, epoll reach the
    emulation."""
    prog = build(tmp_path / "nm_raw", source=[DEVNETMAP / s for s in NM_RAW])
    out = run(prog, *args)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"traffic ok {args[-1]}\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_nm_parse_gives_netmaps_results_for_its_name_vectors(linked):
    out = run(linked, "parse")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "parse ok 45\n" and out.stderr == ""


def test_nm_open_failures_and_their_messages(linked, rundir):
    """NULL with errno 0 for a name that is no netmap name (nothing printed);
    otherwise NULL, the errno, and netmap's D() line on stderr."""
    out = run(linked, "errors")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "errors ok\n"
    lines = out.stderr.splitlines()
    assert len(lines) == 3, out.stderr
    assert re.fullmatch(D_LINE + "unexpected end of port name netmap:eth0-", lines[0]), lines[0]
    assert re.fullmatch(D_LINE + "NIOCREGIF failed: No such device or address netmap:nmcnosuch0", lines[1])
    assert re.fullmatch(D_LINE + "NIOCREGIF failed: Invalid argument vale0:ab/r", lines[2])
    assert rundir_entries(rundir) in (["lock"], [])


@pytest.mark.parametrize("how", ["dispatch", "nextpkt"])
@pytest.mark.parametrize("tx, rx", [("netmap:ca{1", "netmap:ca}1"), ("netmap:ca}2", "netmap:ca{2"),
                                    ("valeca:a", "valeca:b")])
def test_frames_arrive_exact_through_inject_poll_and_receive(linked, rundir, tx, rx, how):
    """20000 frames, a quarter of them NS_MOREFRAG chains of 2 to 5 buffers
    (and 2047, 2048, 2049, 4096 bytes), each checked byte for byte and in
    order; nm_dispatch's hdr.len, caplen, slot and NM_MORE_PKTS on each
    callback but the last.  VALE ports have 2112-byte buffers."""
    want = chains(20000, 2112 if tx.startswith("vale") else 2048)
    out = run(linked, "traffic", tx, rx, 20000, how)
    assert out.returncode == 0, out.stderr
    m = re.fullmatch(r"traffic ok 20000 chains (\d+) whole (\d+)\n", out.stdout)
    assert m and int(m.group(1)) == want and want in (4800, 4365), out.stdout
    if how == "dispatch":
        assert int(m.group(2)) <= want
    assert out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


@pytest.mark.parametrize("how", ["dispatch", "nextpkt"])
def test_round_robin_over_two_ring_pairs(linked, rundir, how):
    """nm_inject fills a ring, skips one without room for a whole chain and
    starts where it stopped; the receiving side takes from both rx rings."""
    out = run(linked, "rings", "cb", 20000, how)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "rings ok 20000\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_no_mmap_and_a_parent_share_one_mapping(linked, rundir):
    """A pipe's slave end opened NM_OPEN_NO_MMAP with its master as parent;
    VALE ports with NM_OPEN_ARG2 (and without: mapped anew); NO_MMAP with no
    parent, then nm_mmap(); per-ring children of a port as pkt-gen opens them."""
    out = run(linked, "share", "cc", 3000)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "share ok\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_netmap_no_tx_poll_goes_into_nr_ringid(linked, rundir):
    out = run(linked, "notxpoll", "cn")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "notxpoll ok\n" and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_the_request_and_the_ring_ranges_of_every_mode(tmp_path, rundir):
    """NIOCREGIF answered by the program itself: host-ring modes (which no
    pipe or VALE port registers) get netmap's ranges; nm_open's request
    (version, ringid mask and poll bits, what NM_OPEN_ARG1/2/3, RING_CFG and
    IFNAME take from a parent); a failing NIOCREGIF."""
    prog = build(tmp_path / "nm_legacy_fake", extra="-DNM_FAKE_REGIF")
    out = run(prog, "fake")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "fake ok\n"
    assert re.fullmatch(D_LINE + "NIOCREGIF failed: Device or resource busy netmap:busy\n", out.stderr), out.stderr


def test_the_header_code_under_asan_and_ubsan(tmp_path, rundir):
    from vale_helpers import ASAN_ENV, sanitizers_unavailable

    why = sanitizers_unavailable()
    if why:
        skip_or_fail(why)
    prog = build(tmp_path / "nm_legacy_asan", extra=" ".join(SANITIZE_FLAGS) + " -O1")
    env = dict(os.environ, **ASAN_ENV)
    for args in (("traffic", "netmap:cz{1", "netmap:cz}1", 5000, "dispatch"),
                 ("traffic", "valecz:a", "valecz:b", 5000, "nextpkt"), ("rings", "cy", 5000, "dispatch"),
                 ("share", "cz", 1000), ("parse",), ("errors",)):
        out = run(prog, *args, env=env, timeout=300)
        assert "Sanitizer" not in out.stderr and "runtime error" not in out.stderr, out.stderr[-4000:]
        assert out.returncode == 0 and out.stdout.startswith(f"{args[0]} ok"), out.stderr[-4000:]
    assert rundir_entries(rundir) == ["lock"]


def test_the_header_compiles_and_runs_as_cpp(tmp_path, rundir):
    src = tmp_path / "legacy.cc"
    src.write_text(r'''
#define NETMAP_WITH_LIBS
#include <net/netmap_user.h>
#include <poll.h>
#include <cstdio>
#include <cstring>

int main()
{
    nm_desc *tx = nm_open("netmap:cx{1", nullptr, 0, nullptr);
    nm_desc *rx = nm_open("netmap:cx}1", nullptr, NM_OPEN_NO_MMAP, tx);
    char frame[3000];
    unsigned got = 0;

    if (!tx || !rx || rx->mem != tx->mem)
        return 1;
    std::memset(frame, 7, sizeof(frame));
    if (nm_inject(tx, frame, sizeof(frame)) != (int)sizeof(frame))
        return 2;
    pollfd p = { rx->fd, POLLIN, 0 };
    if (ioctl(tx->fd, NIOCTXSYNC, nullptr) != 0 || poll(&p, 1, 5000) != 1)
        return 3;
    auto cb = [](unsigned char *arg, const nm_pkthdr *h, const unsigned char *) {
        *(unsigned *)(void *)arg = h->len;
    };
    if (nm_dispatch(rx, 0, cb, (unsigned char *)&got) != 1 || got != sizeof(frame))
        return 4;
    nm_close(rx);
    nm_close(tx);
    std::printf("c++ ok\n");
    return 0;
}
''')
    prog = build(tmp_path / "legacy_cc", source=src, cc="g++", extra="-std=c++11")
    out = run(prog)
    assert out.returncode == 0 and out.stdout == "c++ ok\n", (out.returncode, out.stderr)
    assert rundir_entries(rundir) == ["lock"]


# ---------------------------------------------------------------------------
# not linked: nmcompat exec, or nothing


@pytest.mark.parametrize("args", [("traffic", "netmap:ce{1", "netmap:ce}1", 20000, "dispatch"),
                                  ("traffic", "valece:a", "valece:b", 20000, "nextpkt"),
                                  ("rings", "cf", 5000, "nextpkt"), ("share", "ce", 2000)])
def test_the_same_program_without_the_libs_under_exec(plain, rundir, args):
    out = subprocess.run(["readelf", "-d", str(plain)], capture_output=True, text=True) \
        if shutil.which("readelf") else None
    if out is not None:
        assert "nmcompat" not in out.stdout
    out = nmexec(plain, *args)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{args[0]} ok") and out.stderr == ""
    assert rundir_entries(rundir) == ["lock"]


def test_nm_parse_without_the_libs_under_exec(plain, rundir):
    """nm_parse's weak reference to the engine's parser is bound by the
    emulation that `nmcompat exec` preloads."""
    out = nmexec(plain, "parse")
    assert out.returncode == 0 and out.stdout == "parse ok 45\n" and out.stderr == "", out.stderr


def test_without_the_libs_or_exec_nm_open_finds_no_device(plain, rundir):
    if os.path.exists("/dev/netmap"):
        skip_or_fail("this machine has a /dev/netmap of its own")
    out = run(plain, "traffic", "netmap:cg{1", "netmap:cg}1", 10, "dispatch")
    assert out.returncode == 1 and out.stdout == ""
    first = out.stderr.splitlines()[0]
    assert re.fullmatch(D_LINE + "cannot open /dev/netmap: No such file or directory netmap:cg\\{1", first), first
    assert "FAIL" in out.stderr and "errno 2 " in out.stderr


def test_without_the_libs_or_exec_nm_parse_says_the_parser_is_missing(plain):
    """nm_parse parses with the engine's parser (a weak reference): in a
    program neither linked with the libs nor run under exec it fails with
    ENOSYS and says so, instead of crashing on the missing symbol."""
    out = run(plain, "parse")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines()[-1].endswith(
        "netmap:eth0: rc -1 'libnmcompat is not loaded (nmcompat-config --libs)' "
        "(errno 38 Function not implemented)"), out.stderr
