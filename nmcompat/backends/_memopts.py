"""@share and @extmem: the region a pipe or VALE port is placed in.

``@share=PORT`` asks for PORT's region (its mem_id; PORT must be open: a
region lives while a port holds it).  ``@extmem:file=F,...`` builds a new
region in the user's file F (on the runtime directory's filesystem).
NIC ports live in their process's interface region: they refuse both
(EOPNOTSUPP).  The native backend passes both as netmap's libnetmap does
(native/__init__.py, native/_extmem.py)."""
from __future__ import annotations

import errno
import os
from typing import List

from nmcompat import _portspec
from nmcompat._ffi import check, ffi, lib, os_error
from nmcompat.errors import OptionError

_EXTMEM_ERRORS = {
    errno.ENOENT: "the file {file} does not exist",
    errno.EXDEV: "the file {file} is not on the runtime directory's filesystem (the region "
                 "links it there): put it in the same tmpfs",
    errno.EACCES: "the file {file} is not yours",
    errno.EINVAL: "the file {file} cannot hold the pools asked for (IF pool 512 KiB, "
                  "ring-num ring objects of 69632 bytes (default 1024, at most 1024), then at "
                  "least 64 buffers of buf-size), or the port exists in another region",
}


def refuse(spec, where: str) -> None:
    """EOPNOTSUPP for @share or @extmem on a port `where` cannot place."""
    for given, option in ((spec.share, "@share"), (spec.extmem, "@extmem")):
        if given is not None:
            raise os_error(errno.EOPNOTSUPP, "open", spec.text,
                           f"option '{option}' is not supported for {where}")


def share_mem_id(spec, rundir) -> int:
    """The mem_id @share names (0 without @share)."""
    if spec.share is None:
        return spec.mem_id
    target = _portspec.parse(spec.share)
    parent = target.pipe.parent if target.pipe is not None else target.name
    rc = lib.nmc_name_mem_id(ffi.NULL if rundir is None else os.fsencode(rundir), parent.encode())
    if rc == -errno.ENXIO:
        raise os_error(errno.ENXIO, "open", spec.text, f"@share={spec.share}: no open port "
                       f"holds the region of {parent} (open {spec.share} first)")
    check(rc, "open", spec.text, f"@share={spec.share}", rundir=rundir)
    if spec.mem_id and spec.mem_id != rc:
        raise OptionError(spec.text, "@share", f"{spec.share} is in region {rc}, "
                          f"not @{spec.mem_id}")
    return rc


def extmem(spec, keep: List):
    """A struct nmc_extmem for @extmem (ffi.NULL without it)."""
    if spec.extmem is None:
        return ffi.NULL
    x = ffi.new("struct nmc_extmem *")
    keep.append(x)
    keep.append(ffi.new("char[]", os.fsencode(spec.extmem["file"])))
    x.file = keep[-1]
    for key, value in spec.extmem.items():
        if key != "file":
            setattr(x, key, int(value))
    return x


def extmem_detail(spec, rc: int) -> str:
    """Why an open with @extmem failed with -rc ("" if not an @extmem error)."""
    if spec.extmem is None or -rc not in _EXTMEM_ERRORS:
        return ""
    return "@extmem: " + _EXTMEM_ERRORS[-rc].format(file=spec.extmem["file"])
