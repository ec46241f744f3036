"""Exceptions raised by nmcompat."""

from __future__ import annotations

import errno as _errno
from typing import Optional


class NmcompatError(Exception):
    """Base class of every error that nmcompat raises on purpose."""


class PortSpecError(NmcompatError, ValueError):
    """A port name that the netmap name grammar rejects.

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
        super().__init__(text, reason, position, errno)
        self.text = text
        self.reason = reason
        self.position = position
        self.errno = errno

    def __str__(self) -> str:
        head = f"couldn't parse port name '{self.text}': {self.reason}"
        if self.position is None:
            return head
        caret = " " * self.position + "^"
        return f"{head} at position {self.position}\n  {self.text}\n  {caret}"


class BackendUnavailable(NmcompatError, OSError):
    """No backend can open the port; ``reasons`` maps each backend to why."""

    def __init__(self, name: str, reasons: "dict[str, str]") -> None:
        self.reasons = dict(reasons)
        lines = "; ".join(f"{k}: {v}" for k, v in self.reasons.items()) or "no backend"
        super().__init__(_errno.ENXIO, f"couldn't open {name}: no backend can serve it ({lines})")


class BPFLoadError(NmcompatError, OSError):
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


class BackendUnusable(NmcompatError, OSError):
    """A backend's mechanism cannot be used for this port here (the XDP
    program could not be attached, the privilege is missing...): selection
    by admode moves on to the next backend and reports this reason."""
