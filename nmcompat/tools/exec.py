"""nmcompat exec: run an unmodified netmap program on nmcompat.

    nmcompat exec [--rundir DIR] [--] PROGRAM [ARGS...]

PROGRAM runs with its /dev/netmap emulated by libnmcompat-netmap.so, loaded
with LD_PRELOAD (which its children inherit: a shell script of netmap
programs works, and so does exec inside exec).  Every open("/dev/netmap"),
NIOCCTRL and legacy NIOCREGIF/NIOCGINFO request, mmap, NIOCTXSYNC/NIOCRXSYNC,
poll/ppoll, dup and close of the program then works on nmcompat's ports
(docs/DESIGN.md section 14 says what is served and what is not yet).
--rundir sets the runtime directory (NMCOMPAT_RUNDIR) for the program.

Refused, with the reason, before anything runs: a file that is neither an
ELF executable nor a script, a static executable (nothing can be preloaded
into it), and a set-user-ID or set-group-ID program the dynamic loader would
run in secure mode (it ignores LD_PRELOAD there), or one with file
capabilities run by another user than root; a runtime directory that is
not one (not yours, not private, not on tmpfs: the check every open makes)
or that cannot be created.  The emulation itself
writes nothing to the program's stdout or stderr.

PROGRAM runs as a child of this command, which serves NIC ports to it
(netmap:eth0 over AF_XDP or AF_PACKET, chosen by admode: the XDP program and
the kernel sockets are set up here and handed over; _exec_server.py), and
writes to stderr why it refused one.  Signals sent to this command go on to
PROGRAM.  Exit status: PROGRAM's (death by a signal: the same signal); 2
when it was refused or not found.
"""
from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import List, Optional

from nmcompat import config
from nmcompat.tools._cli import one_line

PROG = "nmcompat exec"
LIBRARY = Path(__file__).resolve().parent.parent / "libnmcompat-netmap.so"


class Refused(Exception):
    """The program cannot run with the emulation; the message says why."""


def _find(program: str) -> Path:
    found = program if "/" in program else shutil.which(program)
    if not found or not os.path.isfile(found):
        raise Refused(f"couldn't find {program}: no such file" + ("" if "/" in program else " in PATH"))
    return Path(found)


def _interpreter(path: Path, depth: int = 0) -> None:
    """Raise Refused unless path is a dynamically linked ELF executable, or a
    script whose interpreter is (checked in turn)."""
    with open(path, "rb") as f:
        head = f.read(256)
    if head.startswith(b"#!"):
        if depth > 4:
            raise Refused(f"couldn't run {path}: its #! interpreters nest too deep")
        words = head[2:].split(b"\n", 1)[0].split()
        if not words:
            raise Refused(f"couldn't run {path}: its #! line names no interpreter")
        return _interpreter(Path(os.fsdecode(words[0])), depth + 1)
    if not head.startswith(b"\x7fELF"):
        raise Refused(f"couldn't run {path}: not an ELF executable nor a script")
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        if not any(seg["p_type"] == "PT_INTERP" for seg in ELFFile(f).iter_segments()):
            raise Refused(f"couldn't preload into {path}: it is statically linked (no dynamic "
                          "loader to load the /dev/netmap emulation); rebuild it dynamically linked")


def _secure_mode(path: Path) -> None:
    st = path.stat()
    if (st.st_mode & stat.S_ISUID and st.st_uid != os.geteuid()) or \
            (st.st_mode & stat.S_ISGID and st.st_gid != os.getegid()):
        raise Refused(f"couldn't preload into {path}: it is set-user-ID or set-group-ID, and the "
                      "dynamic loader ignores LD_PRELOAD for it; run it as its owner, or a copy "
                      "without the bit")
    try:
        caps = os.getxattr(path, "security.capability")
    except OSError:
        caps = None
    if caps and os.geteuid() != 0:
        raise Refused(f"couldn't preload into {path}: it has file capabilities (setcap), and the "
                      "dynamic loader ignores LD_PRELOAD for it; run it as root, or a copy "
                      "without them")


def _check_rundir(rundir: str) -> None:
    """An OSError naming what is wrong unless rundir is a runtime directory
    (the check every open makes), or one the program's first open creates."""
    from nmcompat import rundir as rd
    if os.path.lexists(rundir) or not os.path.isdir(os.path.dirname(os.path.abspath(rundir))):
        rd.verify(rundir, "use", creating=True)


def environment(base: dict, rundir: Optional[str]) -> dict:
    """base with the emulation preloaded (once, first) and the runtime directory set."""
    env = dict(base)
    preload = [p for p in env.get("LD_PRELOAD", "").replace(" ", ":").split(":") if p]
    if str(LIBRARY) not in preload:
        preload.insert(0, str(LIBRARY))
    env["LD_PRELOAD"] = ":".join(preload)
    if rundir is not None:
        env["NMCOMPAT_RUNDIR"] = rundir
    return env


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description="run a netmap program with /dev/netmap "
                                 "served by nmcompat")
    ap.add_argument("--rundir", help="the runtime directory (default $NMCOMPAT_RUNDIR or "
                    "/dev/shm/nmcompat-<uid>)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="PROGRAM [ARGS...]")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.print_usage(sys.stderr)
        print(f"{PROG}: a program to run is needed", file=sys.stderr)
        return 2
    try:
        if not LIBRARY.is_file():
            raise Refused(f"couldn't find the emulation {LIBRARY}: run ./run setup")
        path = _find(command[0])
        _interpreter(path)
        _secure_mode(path)
        _check_rundir(args.rundir or config.rundir())
        problem = config.env_problem("NMCOMPAT_SPIN_US", "NMCOMPAT_BUF_NUM", "NMCOMPAT_BUF_SIZE")
        if problem:                     # any open may read them, and would get a bare EINVAL
            raise Refused(f"couldn't run {path}: {problem}")
    except (Refused, OSError) as exc:
        print(f"{PROG}: {one_line(exc)}", file=sys.stderr)
        return 2
    from nmcompat.tools._exec_server import run
    try:
        return run(PROG, str(path), command, environment(os.environ, args.rundir))
    except OSError as exc:
        print(f"{PROG}: couldn't run {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
