"""The cffi extension nmcompat._nmc (out-of-line API mode): the engine's
public headers as cdef, linked against libnmcompat.so, which setup.py builds
with csrc/Makefile next to it (rpath $ORIGIN).  The engine's sources are
compiled once, into that library, not into this module.

Run by setuptools through setup.py's cffi_modules; not installed.
"""
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent


CFLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]


def header_decls(path: Path) -> str:
    """A public header as cffi cdef text: declarations and integer #defines;
    include guards, #includes and the C++ wrapper dropped."""
    out, skipping = [], False
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#ifdef __cplusplus"):
            skipping = True
        elif skipping:
            skipping = not stripped.startswith("#endif")
        elif stripped.startswith("#"):
            parts = stripped.split()
            if parts[0] == "#define" and len(parts) >= 3 and parts[2].isdigit():
                out.append(f"#define {parts[1]} {parts[2]}")
        else:
            out.append(line)
    return "\n".join(out)


ffibuilder = FFI()
ffibuilder.cdef("struct timeval { long tv_sec; long tv_usec; };\n"
                + (HERE / "nmc_cdef.h").read_text()
                + header_decls(HERE / "include" / "nmcompat.h")
                + header_decls(HERE / "include" / "nmcompat_tools.h")
                + header_decls(HERE / "include" / "nmcompat_portspec.h"))
ffibuilder.set_source(
    "nmcompat._nmc",
    '#include <sys/time.h>\n#include "nmcompat.h"\n#include "nmcompat_tools.h"\n'
    '#include "nmcompat_portspec.h"\n',
    include_dirs=[str(Path("csrc") / "include")],
    libraries=["nmcompat"],
    extra_link_args=["-Wl,-rpath,$ORIGIN"],
    extra_compile_args=CFLAGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
