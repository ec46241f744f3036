"""Exceptions raised by nmcompat: one hierarchy.

Every failure of the engine or of a backend is an ``NmcompatError`` and, at
the same time, the ``OSError`` subclass Python itself would pick for its
errno (``FileNotFoundError``, ``PermissionError``, ``BlockingIOError``...),
with ``errno``, ``strerror`` and ``filename`` set::

    try:
        port.txsync()
    except nmcompat.NmcompatError as exc:     # or: except OSError, except PermissionError
        print(exc.errno, exc.filename, exc.strerror)

The errno subclasses are made on first use (``errno_class``) and cached, so
``type(exc)`` is the same class for every raise of one errno.
"""

from __future__ import annotations

import errno as _errno
import os
import stat
import threading
from typing import Dict, Optional, Tuple, Type


class NmcompatError(Exception):
    """Base class of every error that nmcompat raises on purpose."""


class NmcompatOSError(NmcompatError, OSError):
    """A failed system-level operation: the engine's ``-errno``, or a
    backend's.  ``strerror`` is "couldn't <verb> <object>: <reason>"; str()
    is ``[Errno N] <strerror>`` (the object is named in the message, so the
    filename is not repeated)."""

    def __str__(self) -> str:
        if self.errno is None or self.strerror is None:
            return super().__str__()
        return f"[Errno {self.errno}] {self.strerror}"

    def __reduce__(self):
        """Pickle by the declared class: the errno subclass is made again."""
        base = getattr(type(self), "_errno_base", type(self))
        args = (self.errno, self.strerror, self.filename)
        return _rebuild, (base, args, self.__dict__)


def _rebuild(base: type, args: tuple, state: dict) -> NmcompatOSError:
    cls = errno_class(base, args[0])
    exc = OSError.__new__(cls, *args)   # parses args unless the class has its own __init__,
    OSError.__init__(exc, *args)        # and then this one does
    exc.__dict__.update(state)
    return exc


_classes: Dict[Tuple[type, int], type] = {}
_classes_lock = threading.Lock()


def errno_class(base: Type[NmcompatOSError], err: int) -> type:
    """base, or a subclass of both base and the OSError subclass that Python
    maps err to (PermissionError for EPERM/EACCES...).  Cached per (base, err)."""
    key = (base, err)
    cls = _classes.get(key)
    if cls is not None:
        return cls
    builtin = type(OSError(err, ""))
    with _classes_lock:
        cls = _classes.get(key)
        if cls is None:
            if builtin is OSError or issubclass(base, builtin):
                cls = base
            else:
                name = f"{base.__name__}[{builtin.__name__}]"
                cls = type(name, (base, builtin), {"__module__": base.__module__,
                                                   "__qualname__": name, "_errno_base": base})
            _classes[key] = cls
    return cls


_FIXES = {
    _errno.EPERM: " (needs root, or CAP_NET_ADMIN and CAP_BPF for NIC ports)",
    _errno.EACCES: " (the runtime directory or region belongs to another user;"
                   " set NMCOMPAT_RUNDIR to a directory of yours on tmpfs)",
    _errno.EXDEV: " (the runtime directory must be on tmpfs or hugetlbfs,"
                  " e.g. under /dev/shm; set NMCOMPAT_RUNDIR)",
}

_REASONS = {
    _errno.EXDEV: "runtime directory is not on tmpfs",
}


def os_error(err: int, verb: str, obj: str, detail: str = "",
             filename: Optional[str] = None, fix: Optional[str] = None) -> NmcompatOSError:
    """The error for errno err: "couldn't <verb> <obj>: <reason>" plus, for
    EPERM/EACCES/EXDEV, the fix (or the one given; "" for none).  filename
    defaults to obj; the reason alone is kept as exc.reason."""
    reason = detail or _REASONS.get(err) or os.strerror(err)
    cls = errno_class(NmcompatOSError, err)
    fix = _FIXES.get(err, "") if fix is None else fix
    exc = cls(err, f"couldn't {verb} {obj}: {reason}{fix}",
              obj if filename is None else filename)
    exc.reason = reason
    return exc


class OptionError(NmcompatOSError, ValueError):
    """An option of open() that the serving backend rejects (EINVAL):
    ``option`` is its name, the message ("couldn't open X: bad option
    <option>: <reason>") says what values it takes; ``variable`` names the
    environment variable the value came from instead, when it did.
    ``unused`` is True when the value is fine but this backend would not
    use it (selection by admode then tries the next backend)."""

    def __init__(self, port: str, option: str, reason: str, unused: bool = False,
                 variable: Optional[str] = None) -> None:
        what = f"environment variable {variable}" if variable else f"option {option}"
        super().__init__(_errno.EINVAL, f"couldn't open {port}: bad {what}: {reason}", port)
        self.option = option
        self.unused = unused


def _elsewhere(rundir: str) -> str:
    """The fix that always applies: another runtime directory."""
    default = f"/dev/shm/nmcompat-{os.geteuid()}"
    if os.path.abspath(rundir) == default:
        return "use another new directory under /dev/shm (NMCOMPAT_RUNDIR; nmcompat creates it)"
    return (f"use a new directory under /dev/shm (NMCOMPAT_RUNDIR; nmcompat creates it), or the "
            f"default {default} (NMCOMPAT_RUNDIR unset)")


def rundir_problem(rundir: str, err: int, creating: bool = False) -> str:
    """Why rundir is not a runtime directory, with the fix, as the rest of a
    sentence that starts "the runtime directory <rundir> ": err is what the
    engine's check (nmc_rundir_verify) or an open that would have created
    the directory (creating) returned.  The engine decides; this explains."""
    elsewhere = _elsewhere(rundir)
    try:
        st = os.lstat(rundir)
    except OSError as exc:
        if exc.errno != _errno.ENOENT:
            return f"cannot be looked at: {os.strerror(exc.errno)}; {elsewhere}"
        if not creating:
            return "does not exist"
        parent = os.path.dirname(os.path.abspath(rundir))
        why = f"{parent} does not exist" if not os.path.isdir(parent) else \
            f"{os.strerror(err)} (in {parent})"
        return f"does not exist and cannot be created: {why}; {elsewhere}"
    if stat.S_ISLNK(st.st_mode):
        return f"is a symbolic link, and a runtime directory must be a directory itself; {elsewhere}"
    if not stat.S_ISDIR(st.st_mode):
        return f"is not a directory; {elsewhere}"
    if st.st_uid != os.geteuid():
        return f"belongs to uid {st.st_uid}, not to you (uid {os.geteuid()}); {elsewhere}"
    mode = st.st_mode & 0o7777
    if mode & (stat.S_ISVTX | 0o002):
        return (f"has mode {mode:04o}: it is shared with other users, and a runtime directory "
                f"must be private to you (0700); {elsewhere}")
    if mode & 0o077:
        return f"has mode {mode:04o}, it must be 0700 (private): chmod 700 {rundir}, or {elsewhere}"
    if err == _errno.EXDEV:
        return (f"is not on tmpfs or hugetlbfs (netmap memory lives in RAM, where AF_XDP can use "
                f"it); {elsewhere}")
    return f"cannot be used: {os.strerror(err)}"


class BadArgument(NmcompatOSError, ValueError):
    """An argument of a port method out of its range (EINVAL): ``argument``
    is its name, the message says what it takes."""

    def __init__(self, verb: str, port: str, argument: str, reason: str) -> None:
        super().__init__(_errno.EINVAL, f"couldn't {verb} {port}: {argument}: {reason}", port)
        self.argument = argument


class PortClosed(NmcompatOSError, ValueError):
    """The port was closed (EBADF), before the call or while it waited.
    Also a ValueError, as I/O on a closed Python file is."""

    def __init__(self, port: str, verb: str = "use") -> None:
        super().__init__(_errno.EBADF, f"couldn't {verb} {port}: port closed", port)


class PortSpecError(NmcompatOSError, ValueError):
    """A port name that the netmap name grammar rejects: an NmcompatOSError
    (strerror "couldn't parse port name '<text>': <reason>", filename the
    name) and a ValueError.

    Attributes:
        errno: the errno value the C library would leave behind (EINVAL for
            syntax errors, EOPNOTSUPP for a disabled option, 0 when the
            legacy ``nm_open`` does not recognise the name at all).
        text: the port name as given.
        reason: the short explanation, without the surrounding decoration.
        position: index in ``text`` of the offending character (it may be
            ``len(text)`` when the input ended too early), or None.
    """

    def __init__(self, text: str, reason: str, position: Optional[int] = None,
                 errno: int = _errno.EINVAL) -> None:
        super().__init__(errno, f"couldn't parse port name '{text}': {reason}", text)
        self.text = text
        self.reason = reason
        self.position = position

    def __str__(self) -> str:
        head = f"couldn't parse port name '{self.text}': {self.reason}"
        if self.position is None:
            return head
        caret = " " * self.position + "^"
        return f"{head} at position {self.position}\n  {self.text}\n  {caret}"


class BackendUnavailable(NmcompatOSError):
    """No backend can open the port; ``reasons`` maps each backend to why."""

    def __init__(self, name: str, reasons: "dict[str, str]") -> None:
        self.reasons = dict(reasons)
        lines = "; ".join(f"{k}: {v}" for k, v in self.reasons.items()) or "no backend"
        super().__init__(_errno.ENXIO, f"couldn't open {name}: no backend can serve it ({lines})",
                         name)


class BPFLoadError(NmcompatOSError):
    """A BPF object, map or program that could not be loaded.

    ``errno`` is the kernel's answer (EACCES/EINVAL for a verifier reject),
    ``verifier_log`` the kernel verifier's log when there is one, else "".
    ``str()`` includes the log, so a failure report shows it.
    """

    def __init__(self, err: int, message: str, verifier_log: str = "") -> None:
        super().__init__(err, message)
        self.verifier_log = verifier_log

    def __str__(self) -> str:
        text = self.strerror or ""
        if self.verifier_log:
            text += "\nverifier log:\n" + self.verifier_log.rstrip()
        return text


class BPFObjectError(BPFLoadError, ValueError):
    """A BPF ELF object that is malformed or uses what nmcompat cannot load.

    Raised before any system call; ``errno`` is ENOEXEC.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(_errno.ENOEXEC, f"couldn't parse BPF object {source}: {reason}")
        self.source = source
        self.reason = reason


class BackendUnusable(NmcompatOSError):
    """A backend's mechanism cannot be used for this port here (the XDP
    program could not be attached, the privilege is missing...): selection
    by admode moves on to the next backend and reports this reason."""
