"""The compiled engine, and the one place where C errors become Python ones."""
from __future__ import annotations

import errno as _errno
import os

from nmcompat import config
from nmcompat.errors import os_error, rundir_problem

try:
    from nmcompat._nmc import ffi, lib
except ImportError as exc:  # pragma: no cover - a broken install
    raise ImportError(
        "couldn't import the nmcompat engine (nmcompat._nmc): "
        f"{exc}; build it with 'pip install -e .' from the source tree") from exc

__all__ = ["ffi", "lib", "check", "os_error", "ENGINE_ABI"]

# The engine interface this package is written for: NMC_ABI_VERSION in
# csrc/include/nmcompat.h (a unit test keeps the two equal).  An engine
# built from other sources (a stale build in a source tree, a mixed
# install) reports another value and is refused here, before any call.
ENGINE_ABI = 9


def check_engine_abi(reported: int) -> None:
    """ImportError unless the compiled engine speaks ENGINE_ABI (0: an engine
    older than nmc_abi_version())."""
    if reported != ENGINE_ABI:
        raise ImportError(
            f"couldn't import the nmcompat engine (nmcompat._nmc): it was built for engine "
            f"ABI {reported or '1 or older'}, this package needs ABI {ENGINE_ABI}; rebuild it "
            "with 'pip install -e .' from the source tree, or reinstall nmcompat")


check_engine_abi(lib.nmc_abi_version() if hasattr(lib, "nmc_abi_version") else 0)


def _layout_mismatch() -> str:
    return ("region was created by an incompatible nmcompat build (layout stamp differs from"
            f" this build's {lib.nmc_layout_stamp():#018x}); close every program using it or"
            " use another rundir; one that no program holds is removed by 'nmcompat gc --foreign'")


# what an open whose runtime directory is unusable fails with
_RUNDIR_ERRNOS = (_errno.ENOENT, _errno.ENOTDIR, _errno.EACCES, _errno.EXDEV, _errno.ELOOP,
                  _errno.EROFS, _errno.ENAMETOOLONG)


def rundir_unusable(rundir=None) -> int:
    """0 when rundir (default: the configured one) passes the engine's check
    of a runtime directory (nmc_rundir_verify, nothing created), else its errno."""
    return -lib.nmc_rundir_verify(ffi.NULL if rundir is None else os.fsencode(rundir))


def check(rc: int, verb: str, obj: str, detail: str = "", rundir=None) -> int:
    """Return rc when it is >= 0, else raise the matching NmcompatOSError.
    An errno an unusable runtime directory gives, when the directory (rundir,
    default the configured one) is the cause, names it and says the fix."""
    if rc < 0:
        if rc == -_errno.EPROTO and not detail:
            detail = _layout_mismatch()
        if -rc in _RUNDIR_ERRNOS and not detail and rundir_unusable(rundir):
            where = os.fspath(rundir) if rundir else config.rundir()
            raise os_error(-rc, verb, obj, f"the runtime directory {where} "
                           + rundir_problem(where, -rc, creating=True), fix="")
        raise os_error(-rc, verb, obj, detail)
    return rc
