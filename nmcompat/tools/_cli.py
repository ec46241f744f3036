"""How every tool ends: a failure is one line on stderr and an exit status,
never a traceback.

``run(prog, body, argv)`` calls ``body(argv)`` and turns what escapes it
into that line: ``Usage`` (a bad command line: the tool's status, 1 unless
the tool says otherwise), nmcompat's errors, OSError and ValueError (1),
Ctrl-C (130).  ``-h``/``--help`` is not a failure: tools print their usage
to stdout and return 0.
"""
from __future__ import annotations

import sys
from typing import Callable, List, Optional


class Usage(Exception):
    """A command line the tool cannot run: args[0] says why, status the exit
    status (netmap's pkt-gen uses 255, for its usage(-1))."""

    def __init__(self, why: str, status: int = 1) -> None:
        super().__init__(why)
        self.status = status


def one_line(exc: BaseException) -> str:
    """The first line of an error's text (a port-name error adds a caret
    diagram below it), or its class name when it has no text.  The text of
    an OSError is its message without str()'s "[Errno N]": nmcompat's says
    "couldn't <verb> <object>: <reason>", the system's is prefixed with the
    file it names."""
    from nmcompat.errors import NmcompatError, PortSpecError
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, PortSpecError):
        text = exc.strerror
        if exc.filename is not None and not isinstance(exc, NmcompatError):
            text = f"{exc.filename}: {text}"
    else:
        text = str(exc)
    text = text.strip()
    return text.splitlines()[0] if text else type(exc).__name__


def fail(prog: str, message: str, status: int = 1) -> int:
    print(f"{prog}: {message}", file=sys.stderr, flush=True)
    return status


def run(prog: str, body: Callable[[List[str]], int], argv: Optional[List[str]] = None) -> int:
    """body(argv) with every failure ended as one line on stderr."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return body(argv)
    except Usage as exc:
        return fail(prog, f"{exc} ({prog} -h for usage)", exc.status)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError) as exc:      # NmcompatError's kinds and the system's
        return fail(prog, one_line(exc))


def rundir_command(prog: str, description: str, argv: Optional[List[str]], flags=()):
    """(args, rundir) of the commands that look at one runtime directory
    (check, status, gc): --rundir DIR (default: $NMCOMPAT_RUNDIR or
    /dev/shm/nmcompat-<uid>), --json, and the command's own (flag, help)
    switches."""
    import argparse
    from nmcompat import config
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--rundir", help="runtime directory (default: $NMCOMPAT_RUNDIR or "
                                     "/dev/shm/nmcompat-<uid>)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    for flag, text in flags:
        ap.add_argument(flag, action="store_true", help=text)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    return args, args.rundir or config.rundir()


def rundir_failure(prog: str, exc: BaseException) -> int:
    """The one line and status 2 of such a command that could not read the directory."""
    return fail(prog, exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc), 2)
