"""Build the engine as the cffi extension nmcompat._nmc (out-of-line API mode).

Run by setuptools through setup.py's cffi_modules; not installed.
"""
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SOURCES = ["region.c", "alloc.c", "ring.c", "portrec.c", "pipe.c", "wake.c", "port.c", "sync.c",
           "batch.c", "vale_sw.c", "vale.c", "vale_lease.c", "vale_port.c",
           "vale_ctl.c", "xsk.c", "xsk_port.c", "pkt.c", "fwd.c", "bench.c", "bench_xsk.c", "bench_vale.c",
           "tools_fwd.c", "lb.c", "lb_hash.c", "replay.c", "pktgen.c", "pktgen_frame.c"]
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
                + header_decls(HERE / "include" / "nmcompat_tools.h"))
ffibuilder.set_source(
    "nmcompat._nmc",
    '#include <sys/time.h>\n#include "nmcompat.h"\n#include "nmcompat_tools.h"\n',
    sources=[str(Path("csrc") / s) for s in SOURCES],
    include_dirs=[str(Path("csrc") / "include"), "csrc"],
    extra_compile_args=CFLAGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
