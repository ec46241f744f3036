"""nmcompat-config: compiler and linker flags for C programs written for netmap.

    nmcompat-config [--cflags] [--libs] | --pkgconfigdir
    cc $(nmcompat-config --cflags) prog.c $(nmcompat-config --libs)
    PKG_CONFIG_PATH=$(nmcompat-config --pkgconfigdir) pkg-config --cflags --libs libnetmap

--cflags  -I of the directory holding <net/netmap.h>, <net/netmap_user.h>
          (netmap's legacy nm_open() API with NETMAP_WITH_LIBS),
          <libnetmap.h> (netmap's nmport_* API) and <nmcompat.h>: the package's include/ in an installed wheel, the
          source tree's csrc/include/ in a checkout (./run setup installs the
          package editable)
--libs    -L and -rpath of the package directory, -lnmcompat-netmap (the
          /dev/netmap emulation: linked before libc, its open, ioctl, mmap,
          poll, select, epoll and close come first, so the program needs no
          `nmcompat exec`; it holds libnetmap too) and -lnmcompat (the engine)
--pkgconfigdir
          the directory holding the package's nmcompat.pc (the engine's
          API, -lnmcompat) and libnetmap.pc (netmap's API: --cflags, and
          of --libs the -L, -rpath and -lnmcompat-netmap, kept linked
          under --as-needed), for PKG_CONFIG_PATH: the package directory;
          given alone

Given together, --cflags and --libs print on one line, --cflags' first,
whatever the order asked.  Exit status 2 for an unknown option, none, or
--pkgconfigdir with another, 1 when the package's headers, libraries or
pkg-config files are missing (not built: ./run setup).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

PROG = "nmcompat-config"
PACKAGE = Path(__file__).resolve().parent.parent
LIBRARIES = ("libnmcompat-netmap.so", "libnmcompat.so")
PKGCONFIGS = ("nmcompat.pc", "libnetmap.pc")
USAGE = f"usage: {PROG} [--cflags] [--libs] | --pkgconfigdir | --help"


class Missing(Exception):
    """A file the flags point at is not there; the message says which."""


def include_dir() -> Path:
    """The directory holding net/netmap_user.h: the package's own copy (a
    wheel), else the source tree's (a checkout)."""
    for where in (PACKAGE / "include", PACKAGE.parent / "csrc" / "include"):
        if (where / "net" / "netmap_user.h").is_file():
            return where
    raise Missing(f"couldn't find nmcompat's headers (net/netmap_user.h) in {PACKAGE / 'include'} "
                  f"nor {PACKAGE.parent / 'csrc' / 'include'}")


def cflags() -> List[str]:
    return [f"-I{include_dir()}"]


def require_built(names) -> None:
    for name in names:
        if not (PACKAGE / name).is_file():
            raise Missing(f"couldn't find {PACKAGE / name}: the package is not built (./run setup)")


def libs() -> List[str]:
    require_built(LIBRARIES)
    return [f"-L{PACKAGE}", "-lnmcompat-netmap", "-lnmcompat", f"-Wl,-rpath,{PACKAGE}"]


def pkgconfigdir() -> List[str]:
    """The package directory: its .pc files name it as ${pcfiledir}, for the
    libraries beside them and the headers of include_dir()."""
    include_dir()
    require_built(LIBRARIES + PKGCONFIGS)
    return [str(PACKAGE)]


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        print(__doc__.split("\n\n", 2)[2].rstrip())
        return 0
    unknown = [a for a in args if a not in ("--cflags", "--libs", "--pkgconfigdir")]
    if unknown:
        print(USAGE, file=sys.stderr)
        print(f"{PROG}: unknown option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
              file=sys.stderr)
        return 2
    if not args:
        print(USAGE, file=sys.stderr)
        print(f"{PROG}: nothing asked: give --cflags, --libs or both, or --pkgconfigdir", file=sys.stderr)
        return 2
    if "--pkgconfigdir" in args and set(args) != {"--pkgconfigdir"}:
        print(USAGE, file=sys.stderr)
        print(f"{PROG}: --pkgconfigdir prints a directory, it goes alone: not with --cflags or --libs",
              file=sys.stderr)
        return 2
    try:
        if "--pkgconfigdir" in args:
            flags = pkgconfigdir()
        else:
            flags = (cflags() if "--cflags" in args else []) + (libs() if "--libs" in args else [])
    except Missing as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    print(" ".join(flags))
    return 0


if __name__ == "__main__":
    sys.exit(main())
