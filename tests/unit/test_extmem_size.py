"""An @extmem file too small for the pools asked: the message says the
size they need (exactly: a file of that size opens) and what shrinks it."""
from __future__ import annotations

import errno
import re

import pytest

import nmcompat


def _need(path, keys):
    with pytest.raises(OSError) as ei:
        nmcompat.open(f"netmap:s{{1@extmem:file={path}{keys}", slots=8)
    text = str(ei.value)
    assert ei.value.errno == errno.EINVAL, text
    found = re.search(r"at least (\d+) bytes \((\d+\.\d) MiB\)", text)
    assert found, text
    assert "ring-num=" in text and "buf-num=" in text and "shrinks" in text, text
    return int(found.group(1)), text


@pytest.mark.parametrize("keys", ["", ",ring-num=8", ",ring-num=8,buf-num=300,buf-size=4096"])
def test_too_small_a_file_says_the_size_the_pools_need(rundir, keys):
    path = rundir.parent / f"{rundir.name}.ext"
    try:
        with open(path, "wb") as f:
            f.truncate(65536)
        path.chmod(0o600)
        need, text = _need(path, keys)
        assert "(65536 bytes)" in text, text
        with open(path, "wb") as f:
            f.truncate(need - 1)
        assert _need(path, keys)[0] == need, "the same need, whatever the file's size"
        with open(path, "wb") as f:
            f.truncate(need)
        with nmcompat.open(f"netmap:s{{1@extmem:file={path}{keys}", slots=8) as port:
            assert port.info.memsize == need
    finally:
        path.unlink(missing_ok=True)
