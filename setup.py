"""The engine is built once, by csrc/Makefile, as libnmcompat.so inside the
package directory; the cffi module nmcompat._nmc (csrc/ffi_build.py) is a thin
wrapper linked against it (rpath $ORIGIN), so a process holds one copy of the
engine and its process-wide state, whoever else links the same library.
libnmcompat-netmap.so, the /dev/netmap emulation `nmcompat exec` preloads, is
built beside it and linked against it the same way.  A regular build (a
wheel) also puts the public headers (csrc/include) in the package as
include/, for nmcompat-config --cflags; an editable install leaves them where
they are, and nmcompat-config finds them there.  Both builds write the
package's pkg-config files (nmcompat.pc, libnetmap.pc, from
csrc/pkgconfig/*.pc.in; nmcompat-config --pkgconfigdir) into the package
directory: relocatable, their prefix is ${pcfiledir}, the directory they and
the libraries are in, wherever the wheel is installed."""
import glob
import os
import subprocess

from setuptools import setup
from setuptools.command.build_ext import build_ext

ENGINE = "nmcompat._nmc"
LIBRARIES = ("libnmcompat.so", "libnmcompat-netmap.so")
PKGCONFIGS = ("nmcompat.pc", "libnetmap.pc")
BUILT = LIBRARIES + PKGCONFIGS
HEADERS = sorted(os.path.relpath(p, "csrc") for p in glob.glob("csrc/include/**/*.h", recursive=True))


def write_pkgconfig(out, includedir, version):
    """out/nmcompat.pc and out/libnetmap.pc for a package directory `out`
    whose headers are at `includedir` (relative to ${prefix}, the package)."""
    values = {"prefix": "${pcfiledir}", "libdir": "${prefix}", "includedir": includedir, "version": version}
    for name in PKGCONFIGS:
        with open(os.path.join("csrc", "pkgconfig", name + ".in")) as template:
            text = template.read()
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        with open(os.path.join(out, name), "w") as pc:
            pc.write(text)


class BuildEngine(build_ext):
    """build_ext that first builds the engine library next to nmcompat._nmc
    (and copies it into the source tree too for an in-place build)."""

    def _built_paths(self, name=LIBRARIES[0]):
        """Where a file the build writes beside nmcompat._nmc (one of BUILT)
        goes: (in the build directory, in the source tree)"""
        build_py = self.get_finalized_command("build_py")
        inplace, regular = self._get_inplace_equivalent(build_py, self.ext_map[ENGINE])
        return (os.path.join(os.path.dirname(regular), name),
                os.path.join(os.path.dirname(inplace), name))

    def run(self):
        # build_ext.run() clears self.inplace while it builds, and copies
        # into the source tree after: remember which build this is
        self.into_source_tree = self.inplace
        super().run()

    def build_extension(self, ext):
        if ext.name == ENGINE:
            out = os.path.abspath(os.path.dirname(self._built_paths()[0]))
            os.makedirs(out, exist_ok=True)
            subprocess.run(["make", "-s", "-C", "csrc", f"OUT={out}"], check=True)
            ext.library_dirs = [*ext.library_dirs, out]
            # in place, the package is the source tree's nmcompat/, beside csrc/
            includedir = "${prefix}/../csrc/include" if self.into_source_tree else "${prefix}/include"
            write_pkgconfig(out, includedir, self.distribution.get_version())
            if not self.inplace:
                for header in HEADERS:
                    os.makedirs(os.path.join(out, os.path.dirname(header)), exist_ok=True)
                    self.copy_file(os.path.join("csrc", header), os.path.join(out, header),
                                   level=self.verbose)
        super().build_extension(ext)

    def copy_extensions_to_source(self):
        super().copy_extensions_to_source()
        for name in BUILT:
            self.copy_file(*self._built_paths(name), level=self.verbose)

    def _get_output_mapping(self):
        yield from super()._get_output_mapping()
        if self.inplace:
            for name in BUILT:
                yield self._built_paths(name)

    def get_outputs(self):
        outputs = super().get_outputs()
        if self.inplace:
            return outputs
        out = os.path.dirname(self._built_paths()[0])
        return [*outputs, *(self._built_paths(name)[0] for name in BUILT),
                *(os.path.join(out, header) for header in HEADERS)]


setup(cffi_modules=["csrc/ffi_build.py:ffibuilder"], cmdclass={"build_ext": BuildEngine})
