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
    diagram below it), or its class name when it has no text."""
    text = str(exc).strip()
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
