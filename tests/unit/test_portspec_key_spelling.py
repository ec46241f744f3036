"""A message about an option's key names it as the user typed it
("host-rings"), not as the grammar stores it ("host_rings")."""
from __future__ import annotations

import pytest

from nmcompat import _portspec as ps
from nmcompat.errors import PortSpecError


@pytest.mark.parametrize("name, says", [
    ("netmap:lo@conf:host-rings=2^1", "key 'host-rings': invalid number '2^1'"),
    ("netmap:lo@conf:host_rings=2^1", "key 'host_rings': invalid number '2^1'"),
    ("netmap:lo@conf:tx-slots=99999999999", "key 'tx-slots': '99999999999' out of range"),
    ("netmap:lo@conf:host-ringz=1", "unknown key: 'host-ringz'"),
    ("netmap:lo@conf:host-rings=1,host-rings=2", "duplicate key 'host-rings'"),
    ("netmap:lo@conf:host-rings", "missing '=value' for key 'host-rings'"),
    ("netmap:x{1@extmem:file=/f,buf-num=z", "key 'buf-num': invalid number 'z'"),
])
def test_key_messages_use_the_users_spelling(name, says):
    with pytest.raises(PortSpecError) as ei:
        ps.parse(name)
    assert says in str(ei.value), str(ei.value)
