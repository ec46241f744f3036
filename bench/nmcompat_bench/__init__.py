"""nmcompat's benchmarks: pipe, VALE, AF_XDP and the comparison with peers.

Not part of the nmcompat package or its wheel: they live in the source tree's
bench/ and run with ``./run bench [NAME]`` (``python -m nmcompat_bench NAME``
with bench/ on the path).  Their C loops (bench/csrc) are the extension
nmcompat_bench._bench, built by ``bench/build.py`` against the installed
engine library, so that a port opened through nmcompat and the loop that
drives it share one engine.
"""
import os
from pathlib import Path

# The workers are started as "python -m nmcompat_bench.<module>": let them
# find this package whatever their working directory.
_ROOT = str(Path(__file__).resolve().parent.parent)
_PATH = os.environ.get("PYTHONPATH", "")
if _ROOT not in _PATH.split(os.pathsep):
    os.environ["PYTHONPATH"] = _ROOT + (os.pathsep + _PATH if _PATH else "")
