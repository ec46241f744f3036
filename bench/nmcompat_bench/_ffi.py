"""The benchmark loops (nmcompat_bench._bench), and how a Port opened through
nmcompat is handed to them: both link the one engine library."""
from __future__ import annotations

from nmcompat._ffi import ffi as _engine_ffi, os_error  # loads the engine first

try:
    from nmcompat_bench._bench import ffi, lib
except ImportError as exc:  # pragma: no cover - not built
    raise ImportError(
        f"couldn't import the benchmark loops (nmcompat_bench._bench): {exc}; "
        "build them with './run setup' (or 'python bench/build.py')") from exc

__all__ = ["ffi", "lib", "os_error", "port_handle"]


def port_handle(port):
    """The port's struct nmc_port * as this module's cffi type."""
    return ffi.cast("struct nmc_port *", int(_engine_ffi.cast("uintptr_t", port._h)))
