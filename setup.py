"""The engine is built once, by csrc/Makefile, as libnmcompat.so inside the
package directory; the cffi module nmcompat._nmc (csrc/ffi_build.py) is a thin
wrapper linked against it (rpath $ORIGIN), so a process holds one copy of the
engine and its process-wide state, whoever else links the same library.
libnmcompat-netmap.so, the /dev/netmap emulation `nmcompat exec` preloads, is
built beside it and linked against it the same way.  A regular build (a
wheel) also puts the public headers (csrc/include) in the package as
include/, for nmcompat-config --cflags; an editable install leaves them where
they are, and nmcompat-config finds them there."""
import glob
import os
import subprocess

from setuptools import setup
from setuptools.command.build_ext import build_ext

ENGINE = "nmcompat._nmc"
LIBRARIES = ("libnmcompat.so", "libnmcompat-netmap.so")
HEADERS = sorted(os.path.relpath(p, "csrc") for p in glob.glob("csrc/include/**/*.h", recursive=True))


class BuildEngine(build_ext):
    """build_ext that first builds the engine library next to nmcompat._nmc
    (and copies it into the source tree too for an in-place build)."""

    def _library_paths(self, library=LIBRARIES[0]):
        """(in the build directory, in the source tree)"""
        build_py = self.get_finalized_command("build_py")
        inplace, regular = self._get_inplace_equivalent(build_py, self.ext_map[ENGINE])
        return (os.path.join(os.path.dirname(regular), library),
                os.path.join(os.path.dirname(inplace), library))

    def build_extension(self, ext):
        if ext.name == ENGINE:
            out = os.path.abspath(os.path.dirname(self._library_paths()[0]))
            os.makedirs(out, exist_ok=True)
            subprocess.run(["make", "-s", "-C", "csrc", f"OUT={out}"], check=True)
            ext.library_dirs = [*ext.library_dirs, out]
            if not self.inplace:
                for header in HEADERS:
                    os.makedirs(os.path.join(out, os.path.dirname(header)), exist_ok=True)
                    self.copy_file(os.path.join("csrc", header), os.path.join(out, header),
                                   level=self.verbose)
        super().build_extension(ext)

    def copy_extensions_to_source(self):
        super().copy_extensions_to_source()
        for library in LIBRARIES:
            self.copy_file(*self._library_paths(library), level=self.verbose)

    def _get_output_mapping(self):
        yield from super()._get_output_mapping()
        if self.inplace:
            for library in LIBRARIES:
                yield self._library_paths(library)

    def get_outputs(self):
        outputs = super().get_outputs()
        if self.inplace:
            return outputs
        out = os.path.dirname(self._library_paths()[0])
        return [*outputs, *(self._library_paths(lib)[0] for lib in LIBRARIES),
                *(os.path.join(out, header) for header in HEADERS)]


setup(cffi_modules=["csrc/ffi_build.py:ffibuilder"], cmdclass={"build_ext": BuildEngine})
